"""Time per step and per inference on a mesh of cores, and the energy-delay product.

The model (``docs/sanafe.md`` section 4), per step ``t`` and sample, with the per-core counts
of :func:`neuroemu.energy.traffic.step_counts`:

* every core works through its events one after another:
  ``compute_c(t) = soma_c(t) + out_c(t) + in_c(t) + syn_c(t)`` -- the soma of each of its
  neurons (an access every step, an update when updated, a cost per spike), each message it
  sends and receives, and each synaptic event it processes;
* the network: the longest route a message took that step (hops x latency per hop of each
  direction) or, if longer, the busiest link's occupation (the flits it carried x its latency
  per hop: a link carries one flit at a time);
* a synchronisation barrier ends the step.

``latency(t) = max_c compute_c(t) + network(t) + barrier`` (no overlap between the phases of a
step: an upper bound of this model), summed over the steps of an inference.  The report also
gives SANA-FE's "simple" timing model, ``max(max_c (soma_c + out_c), max_c (in_c + syn_c)) +
barrier``, where a core's neuron updates and its message processing overlap and the network
is free.  With a recorded raster every step is exact; without one each neuron's messages are
spread evenly over the steps (one mean step, times the steps), every message's synaptic
events counted, and every neuron that can receive updated every step: an estimate (the max of
means understates the busiest core's sum, the updates overstate it; on the shipped network it
is within 1% of the exact figure).

The unit latencies come from a SANA-FE architecture (``profile.arch``, per unit) or from a
profile's ``[latency_ns]`` table (per event kind: the neuron kinds per neuron-step, the
synaptic kinds per synaptic event, ``packet`` per flit sent, ``hop_ew``/``hop_ns`` per hop,
``barrier`` per step).  :func:`latency_report` is the entry point.
"""

from __future__ import annotations

import numpy as np

from . import hardware as hw
from . import traffic as tr
from ..errors import ProfileError

NEURON_KINDS = ("neuron_update", "input_update", "encoder_update", "predictive_update",
                "decoder_update", "annealer_update")


class Latencies:
    """Unit latencies in seconds: per population ``access``/``update``/``spike`` (P,), per
    delivery ``syn`` (K,), per message ``out`` (P,) and ``inn``, per hop ``hop`` (4,) east,
    west, north, south, ``flits`` per message (P,) and the ``barrier`` per step."""

    def __init__(self, P, K):
        self.access, self.update, self.spike = np.zeros(P), np.zeros(P), np.zeros(P)
        self.syn, self.out, self.inn = np.zeros(K), np.zeros(P), 0.0
        self.hop, self.flits, self.barrier = np.zeros(4), np.ones(P), 0.0


def latencies(profile: hw.Profile, counts: hw.Counts, fan: tr.Fanout) -> Latencies | None:
    """The unit latencies of ``profile`` for the network of ``fan``; None when the profile
    gives none."""
    topo = fan.topo
    P, K = len(topo.sizes), len(fan.deliveries)
    lat = Latencies(P, K)
    arch = getattr(profile, "arch", None)
    if arch is not None:
        somas = tr.soma_units(arch, topo, fan.hw)
        syns = tr.synapse_units(arch, topo)
        dend = arch.dendrite.latency["update"]
        for l, name in enumerate(somas):
            u = next(s for s in arch.somas if s.name == name)
            lat.access[l] = u.latency["access_neuron"] + (dend if arch.per_step_dendrite else 0)
            lat.update[l] = u.latency["update_neuron"]
            lat.spike[l] = u.latency["spike_out"]
        for k, dl in enumerate(fan.deliveries):
            u = next(s for s in arch.synapses if s.name == syns[dl.post])
            lat.syn[k] = u.latency["process_spike"] + (dend if arch.per_event_dendrite else 0)
        lat.out[:] = arch.axon_out.latency["message_out"]
        lat.inn = arch.axon_in.latency["message_in"]
        lat.hop[:] = [arch.hop_latency[d] for d in tr.DIRS]
        lat.barrier = arch.barrier_s(fan.hw.tiles_used)
        return lat
    ns = profile.latency_ns
    if not ns:
        return None
    s = 1e-9
    K_ = {k: i for i, k in enumerate(hw.KINDS)}
    ev = counts.events.sum(axis=0)          # (kinds, parts)
    steps = max(1, counts.steps)
    B = counts.events.shape[0]
    for l, n in enumerate(topo.sizes):
        slots = n * steps * B
        if slots:
            lat.access[l] = sum(ns.get(k, 0.0) * ev[K_[k], l] for k in NEURON_KINDS) / slots * s
    for k, dl in enumerate(fan.deliveries):
        kind = "synaptic_mac" if counts.real[dl.pre] else "synaptic_op"
        lat.syn[k] = ns.get(kind, 0.0) * s
    lat.flits = np.asarray(counts.flits[:P], dtype=float)
    lat.out = ns.get("packet", 0.0) * s * lat.flits
    lat.hop[:] = [ns.get("hop_ew", 0.0) * s] * 2 + [ns.get("hop_ns", 0.0) * s] * 2
    lat.barrier = ns.get("barrier", 0.0) * s
    return lat


def step_latency(sc: tr.StepCounts, lat: Latencies) -> dict:
    """Per step and sample (T, B) latencies of the model and their parts."""
    soma = sc.neurons @ lat.access + (sc.updated @ lat.update) + (sc.fired @ lat.spike)
    out = sc.msgs_out @ lat.out
    inn = sc.msgs_in * lat.inn
    syn = sc.syn @ lat.syn
    compute = soma + out + inn + syn                         # (T, B, C)
    link_lat = lat.hop[sc.link_dir]
    busy = (sc.links * link_lat).max(axis=2) if sc.links.shape[2] else np.zeros(sc.route.shape)
    network = np.maximum(sc.route, busy)
    serial = compute.max(axis=2) + network + lat.barrier
    overlap = np.maximum((soma + out).max(axis=2), (inn + syn).max(axis=2)) + lat.barrier
    who = compute.argmax(axis=2)
    return {"serial": serial, "overlap": overlap, "compute": compute.max(axis=2),
            "network": network, "route": sc.route, "links": busy, "busiest": who,
            "parts": {"soma": soma, "axon_out": out, "axon_in": inn, "synapse": syn}}


def latency_report(counts: hw.Counts, setup, profile: hw.Profile, *, raster=None,
                   messages=None, energy_j=None, last_step: str = "drop",
                   cores_per_tile: int = 1, bus_ticks=None) -> dict | None:
    """Latency per step and per inference of a run, and its energy-delay product.

    ``counts``: the :class:`~neuroemu.energy.hardware.Counts` of the inference (one phase from
    the reset state; its ``steps``, batch, flits, coding and, for a TOML profile, the events of
    the neuron kinds); ``setup``: the :class:`~neuroemu.energy.accounting.Setup` that counted
    it (placement, topology); ``profile``: its ``arch`` or ``[latency_ns]`` give the unit
    latencies (None is returned when it has neither).  ``raster``: the recorded spikes, bool
    ``[step, sample, neuron]``, for exact per-step figures; else ``messages`` (B, N) per-neuron
    message counts (the Activity's), or the populations' counts spread over their neurons, are
    spread evenly over the steps.  ``energy_j``: joules per inference (a number, or one per
    sample) for ``edp_j_s``; ``last_step``: when the synaptic events of a step's spikes happen
    ("drop": the next step, neuroemu's convention; "deliver": the same step, SANA-FE's);
    ``bus_ticks``: the bus engine's elapsed ticks per sample, when it ran the inference.

    Returns seconds per step and per inference (means over the samples), ``edp_j_s``, the
    breakdown (``compute_s``, ``network_s``, ``barrier_s`` per inference, the busiest core and
    its parts), SANA-FE's overlapped model, and ``per_sample``."""
    hwm = tr.hw_map(setup.placement, cores_per_tile)
    fan = tr.fanout(setup.topology, hwm)
    lat = latencies(profile, counts, fan)
    if lat is None:
        return None
    T, B = int(counts.steps), int(counts.events.shape[0])
    always = tr.always_updated(getattr(profile, "arch", None), setup.topology, hwm)
    exact = raster is not None
    if exact:
        r = np.asarray(raster)
        if r.shape[:2] != (T, B):
            raise ProfileError(f"spike raster: must have shape ({T}, {B}, neurons) for {T} "
                               f"steps of {B} samples (got {r.shape})")
        sc = tr.step_counts(fan, r, last_step, lat.hop, lat.flits, always=always)
        scale = 1.0
    else:
        m = _messages(counts, setup.topology, messages)
        sc = tr.step_counts(fan, (m / max(1, T))[None], last_step, lat.hop, lat.flits,
                            spread=True, always=always)
        scale = float(T)
    st = step_latency(sc, lat)
    per = st["serial"].sum(axis=0) * scale                   # (B,) per inference
    over = st["overlap"].sum(axis=0) * scale
    mean = float(per.mean()) if B else 0.0
    steps = max(1, T)
    e = None if energy_j is None else np.broadcast_to(np.asarray(energy_j, dtype=float), (B,))
    parts = {k: float(_at(v, st["busiest"]).sum(axis=0).mean() * scale)
             for k, v in st["parts"].items()}
    counts_busiest = np.bincount(st["busiest"].reshape(-1), minlength=hwm.cores.size)
    busiest = int(np.argmax(counts_busiest))
    out = {
        "profile": profile.name,
        "latency_per_step_s": mean / steps,
        "latency_per_inference_s": mean,
        "edp_j_s": None if e is None else float((e * per).mean()),
        "exact": exact,
        "spread": None if exact else "each neuron's messages spread evenly over the steps; "
                                     "every neuron that can receive updated every step",
        "last_step": last_step,
        "steps": T,
        "breakdown": {
            "compute_s": float(st["compute"].sum(axis=0).mean() * scale),
            "network_s": float(st["network"].sum(axis=0).mean() * scale),
            "barrier_s": lat.barrier * T,
            "barrier_per_step_s": lat.barrier,
            "busiest_core": {"core": int(hwm.cores[busiest]),
                             "tile_xy": [int(hwm.x[busiest]), int(hwm.y[busiest])],
                             "busiest_in_steps_fraction": float(counts_busiest[busiest]
                                                                / max(1, counts_busiest.sum()))},
            "busiest_parts_s": parts,
            "longest_route_s": float(st["route"].max()) if st["route"].size else 0.0,
            "busiest_link_s": float(st["links"].max()) if st["links"].size else 0.0,
        },
        "overlap_model": {"latency_per_inference_s": float(over.mean()) if B else 0.0,
                          "latency_per_step_s": float(over.mean()) / steps if B else 0.0,
                          "what": "SANA-FE's simple timing model: max(busiest core's neuron "
                                  "updates and sends, busiest core's receives and synaptic "
                                  "events) + barrier; network free"},
        "per_sample": [{"latency_per_inference_s": float(per[b]),
                        "overlap_latency_per_inference_s": float(over[b]),
                        "edp_j_s": None if e is None else float(e[b] * per[b])}
                       for b in range(B)],
        "cores_per_tile": cores_per_tile, "tiles_used": hwm.tiles_used,
    }
    if bus_ticks is not None:
        ticks = float(np.mean(bus_ticks))
        out["bus_engine"] = {
            "elapsed_ticks_per_inference": ticks,
            "ticks_per_step": ticks / steps,
            "latency_per_inference_s": ticks * mean / steps,
            "what": "the bus engine's simulated time (clock drift, barriers, queueing) in its "
                    "nominal ticks, at this model's mean time per step"}
    return out


def _at(v, idx):
    """v[t, b, idx[t, b]] for (T, B, C) v."""
    return np.take_along_axis(v, idx[..., None], axis=2)[..., 0]


def _messages(counts: hw.Counts, topo, messages) -> np.ndarray:
    """(B, N) messages per neuron: given, or each population's spread over its neurons."""
    B = counts.messages.shape[0]
    N = int(topo.off[-1])
    if messages is not None:
        m = np.asarray(messages, dtype=float)
        if m.shape != (B, N):
            raise ProfileError(f"messages: must have shape ({B}, {N}) (got {m.shape})")
        return m
    out = np.zeros((B, N))
    for l, n in enumerate(topo.sizes):
        if n:
            out[:, topo.off[l]:topo.off[l + 1]] = counts.messages[:, l:l + 1] / n
    return out


def bus_ticks(activity, quanta: int) -> np.ndarray | None:
    """The bus engine's elapsed ticks per sample of an Activity (its ``elapsed`` counter, in
    quanta), or None when the activity was not run by the bus engine."""
    el = activity.counters.get("elapsed")
    return None if el is None else np.asarray(el, dtype=float) / float(quanta)


def edp(energy_j, latency_s) -> float:
    """Energy-delay product in J s."""
    return float(energy_j) * float(latency_s)
