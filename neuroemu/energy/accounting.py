"""Energy accounting: exact event counts of a run -> joules on a hardware profile.

The kernels count events as exact integers per sample (``spikes``, ``syn_events``,
``updates``; see :data:`neuroemu.engines.COUNTER_DOC`).  This module

1. collects them per phase, with per-neuron message counts from recorded spikes
   (:class:`Activity`: :func:`run_network` runs a netlist, :func:`trace_phases` reads a
   trace), and reads each population's components from the netlist (:class:`Coding`);
2. builds the same counters for the network sending real-valued b-bit words from every
   neuron at every step (:func:`dense_activity`), the baseline of the headline ratio;
3. has :mod:`neuroemu.energy.hardware` turn both into counts per event kind and part, with the
   packets and XY hops of a placement (:func:`~neuroemu.energy.hardware.count_events`), and price
   them with a profile (:func:`~neuroemu.energy.hardware.energy_pj`);
4. reports joules by kind, population, projection, phase and sample (:func:`report`),
   as text, JSON or a plot.

``neuroemu energy NETLIST|TRACE --profile NAME`` is the command line
(:mod:`neuroemu.cli.energy`).  The model and
the source of every number are in ``docs/energy-model.md``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

import neuroemu.energy.hardware as hw
from ..errors import ProfileError

KINDS = hw.KINDS



# --------------------------------------------------------------------------- counts

@dataclass(frozen=True)
class Coding:
    """Per population (bool arrays, shape (layers,)): how it talks and what it runs."""

    real: np.ndarray        # sends real-valued words (encoder 'none'), else spikes
    predictive: np.ndarray  # predictive-coding wrapper steps per encoder step (0, 1; 2 poles: 2)
    decoder: np.ndarray     # predictive decoder steps per state update (non-input; 2 poles: 2)
    osa: np.ndarray         # OSA step-size annealer (non-input populations only)
    paper: np.ndarray | None = None   # the paper's neuron model (else IF/LIF); None: all are


def coding_of(net) -> Coding:
    """Read the components of every population of a Netlist.  IF/LIF neurons send spikes
    and have no predictive wrapper, decoder or step-size annealer; a two-pole predictive
    code (``lam2``) runs its wrapper and its decoder twice per step (two filters each)."""
    pops = net.populations
    paper = np.array([getattr(p.neuron, "model", "paper") == "paper" for p in pops])
    nonin = np.array([p.role != "input" for p in pops])
    poles = np.array([2 if getattr(p.neuron, "lam2", None) is not None else 1 for p in pops])
    return Coding(paper & np.array([p.neuron.encoder == "none" for p in pops]),
                  poles * (paper & np.array([bool(p.neuron.predictive) for p in pops])),
                  poles * (paper & nonin
                           & np.array([p.neuron.decoder == "predictive" for p in pops])),
                  paper & nonin & np.array([p.neuron.eps.kind == "osa" for p in pops]),
                  paper)


def real_valued_coding(c: Coding) -> Coding:
    """The same neurons sending their values as words: no encoder, wrapper or decoder."""
    f = np.zeros_like(c.real)
    return Coding(np.ones_like(c.real), f, f.copy(), c.osa.copy(), c.paper)


@dataclass
class Activity:
    """What a run did, per sample: kernel counters (int64, leading axis = sample) and,
    when known, per-neuron emitted message counts ``messages`` (B, N)."""

    name: str
    steps: int
    counters: dict
    messages: np.ndarray | None = None
    t_start: int = 0        # clock before the activity (0: it starts from the reset state)

    @property
    def batch(self) -> int:
        return int(self.counters["spikes"].shape[0])

    def __add__(self, other: "Activity") -> "Activity":
        msgs = None if self.messages is None or other.messages is None \
            else self.messages + other.messages
        return Activity(f"{self.name}+{other.name}", self.steps + other.steps,
                        {k: self.counters[k] + other.counters[k] for k in self.counters}, msgs,
                        min(self.t_start, other.t_start))


def activity_from_phase(phase) -> Activity:
    """An engine Phase -> Activity; its spike array counts only if recorded every step."""
    msgs = None
    if phase.spikes is not None and phase.every == 1 and phase.spikes.shape[0] == phase.steps:
        msgs = phase.spikes.sum(axis=0, dtype=np.int64)
    counters = {k: np.asarray(v, dtype=np.int64) for k, v in phase.counters.items()}
    return Activity(phase.name, phase.steps, counters, msgs, phase.t_start)


def dense_activity(sizes, steps: int, batch: int, t_start: int = 0,
                   name: str = "real-valued", topology=None) -> Activity:
    """Every neuron sends one word every step: the exact counts of the real-valued network.

    Mirrors the kernels' counting: step t delivers the messages of step t-1 through every
    delivery (on a chain: to every non-input neighbour), so a run from the reset state
    (``t_start`` 0) delivers full fan-out -- every synapse of a projection, in each direction
    it delivers -- at ``steps - 1`` steps (nothing was sent before step 1) and a continuation
    at ``steps``; every population runs its encoder slot and every non-input population its
    state update once per step.  ``topology``: the network's projections
    (:class:`~neuroemu.energy.graph.Topology`; default a chain of layers ``sizes``).
    """
    from .graph import chain_topology
    sizes = np.asarray(sizes, dtype=np.int64)
    topo = topology if topology is not None else \
        chain_topology([str(i) for i in range(len(sizes))], sizes)
    delivered = steps - 1 if t_start == 0 and steps > 0 else steps
    L1, P = len(sizes), len(topo.links)
    spikes = np.tile(sizes * steps, (batch, 1))
    syn = np.zeros((batch, P, 2), dtype=np.int64)
    for p, link in enumerate(topo.links):
        syn[:, p, 0] = link.synapses * delivered
        if link.back:
            syn[:, p, 1] = link.synapses * delivered
    upd = np.zeros((batch, L1, 2), dtype=np.int64)
    upd[:, :, 0] = sizes * steps * ~topo.inputs
    upd[:, :, 1] = sizes * steps
    msgs = np.full((batch, int(sizes.sum())), steps, dtype=np.int64)
    return Activity(name, steps, {"spikes": spikes, "syn_events": syn, "updates": upd}, msgs,
                    t_start)


# --------------------------------------------------------------------------- reports

def _num(x):
    return int(x) if float(x).is_integer() else float(x)


def summarise(counts: hw.Counts, profile: hw.Profile, sample: int | None = None) -> dict:
    """Totals (``sample=None``: the whole batch) in joules, by kind, population, projection."""
    e = hw.energy_pj(counts, profile) * 1e-12
    ev = counts.events
    if sample is not None:
        one = slice(sample, sample + 1)
        e, ev, msgs = e[one], ev[one], counts.messages[one]
    else:
        msgs = counts.messages
    L1 = len(counts.sizes)
    by_kind_e, by_kind_n = e.sum(axis=(0, 2)), ev.sum(axis=(0, 2))
    by_part = e.sum(axis=(0, 1))
    hop = ev[:, [KINDS.index("hop_ew"), KINDS.index("hop_ns")], :L1].sum(axis=1)
    pk = ev[:, KINDS.index("packet"), :L1]
    out = {
        "total_j": float(e.sum()),
        "by_kind": {k: float(v) for k, v in zip(KINDS, by_kind_e)},
        "counts": {k: _num(v) for k, v in zip(KINDS, by_kind_n)},
        "by_population": {n: float(v) for n, v in zip(counts.names, by_part[:L1])},
        "by_projection": {n: float(v) for n, v in zip(counts.parts[L1:], by_part[L1:])},
        "by_projection_total": {n: float(by_part[L1 + 2 * p] + by_part[L1 + 2 * p + 1])
                                for p, n in enumerate(counts.labels)},
    }
    out["counts"].update({
        "messages": int(msgs.sum()),
        "syn_events": _num(ev[:, [KINDS.index("synaptic_op"), KINDS.index("synaptic_mac")]].sum()),
        "flits": _num((pk * counts.flits[:L1]).sum()),
        "bits": _num((pk * counts.bits).sum()),
        "bit_hops": _num((hop * counts.bits).sum()),
    })
    return out


def neurobench(counts: hw.Counts, dense: hw.Counts, batch: int) -> dict:
    """NeuroBench-style figures per sample: synaptic operations and activation sparsity."""
    ev = counts.events.sum(axis=(0, 2)) / batch
    slots = sum(counts.sizes) * counts.steps
    msgs = counts.messages.sum() / batch
    return {"effective_acs": float(ev[KINDS.index("synaptic_op")]),
            "effective_macs": float(ev[KINDS.index("synaptic_mac")]),
            "dense_synaptic_ops": float(dense.events[0, [KINDS.index("synaptic_op"),
                                                         KINDS.index("synaptic_mac")]].sum()),
            "activation_sparsity": float(1.0 - msgs / slots) if slots else 0.0,
            "messages_per_neuron_step": float(msgs / slots) if slots else 0.0}


@dataclass
class Setup:
    """Everything that turns activity into counts (shared by all phases and profiles).
    ``topology``: the network's projections (:class:`~neuroemu.energy.graph.Topology`);
    None: a chain of the layers ``names``."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    coding: Coding
    placement: hw.Placement
    routes: hw.RouteTable
    topology: object = None
    quanta: int | None = None      # the bus engine's quanta per tick, when it ran the network
    arithmetic: object = None      # fixed-point widths (describe.arithmetic.Arithmetic), if any

    def __post_init__(self):
        if self.topology is None:
            from .graph import chain_topology
            self.topology = chain_topology(self.names, self.sizes)

    def counts(self, act, profile, coding=None, weights=False) -> hw.Counts:
        return hw.count_events(act, coding or self.coding, self.names, self.sizes, self.placement,
                               self.routes, profile, weights, self.topology)


def report(setup: Setup, phases: list[Activity], profile: hw.Profile, sample_ids=None,
           ann_bits: int | None = None) -> dict:
    """The full report of a run (list of phases) on one profile; see docs/energy-model.md.
    ``sample_ids`` label the samples (default 0, 1, ...); ``ann_bits``: the width of the ANN
    baseline's weights and activations (default the profile's ``memory.ann_bits``, else 8)."""
    from . import ann
    profile, widths = hw.for_arithmetic(profile, setup.arithmetic)
    B = phases[0].batch
    ids = list(range(B)) if sample_ids is None else [int(i) for i in sample_ids]
    total = phases[0]
    for ph in phases[1:]:
        total = total + ph
    real = real_valued_coding(setup.coding)

    def both(act, weights=False):
        spk = setup.counts(act, profile, weights=weights)
        den = setup.counts(dense_activity(setup.sizes, act.steps, B, act.t_start,
                                          topology=setup.topology), profile, real, weights)
        return spk, den

    spk, den = both(total)
    out = {"profile": profile.name, "profile_file": profile.path,
           "scope": f"totals over the batch of {B} sample(s); per-sample figures in 'samples'",
           "batch": B, "steps": {ph.name: ph.steps for ph in phases},
           "mesh": setup.placement.mesh, "neurons_per_core": setup.placement.neurons_per_core,
           "placement": setup.placement.policy, "cores_used": setup.placement.cores_used,
           "routing": "multicast" if setup.routes.multicast else "unicast",
           "word_bits": profile.word_bits,
           "packet_bits": {"spike": hw.packet_bits(setup.placement, profile, False),
                           "word": hw.packet_bits(setup.placement, profile, True)},
           "flit_bits": profile.flit_bits, "hops_exact": spk.hops_exact}
    s, r = summarise(spk, profile), summarise(den, profile)
    out.update(s)
    out["graph"] = not setup.topology.chain
    syn = total.counters["syn_events"].sum(axis=0)
    out["syn_events_by_projection"] = {n: [int(syn[p, 0]), int(syn[p, 1])]
                                       for p, n in enumerate(setup.topology.labels)}
    out["total_j_per_sample"] = s["total_j"] / B
    out["real_valued_total_j"] = r["total_j"]
    out["real_valued_total_j_per_sample"] = r["total_j"] / B
    out["real_valued_by_kind"] = r["by_kind"]
    out["real_valued_counts"] = r["counts"]
    out["spike_vs_real_ratio"] = s["total_j"] / r["total_j"] if r["total_j"] else None
    out["neurobench"] = neurobench(spk, den, B)
    out["neurobench"]["parameters"] = ann.n_parameters(setup.topology)
    out["neurobench"]["memory_footprint"] = ann.footprint(
        setup.topology, setup.coding, None if widths is None else widths["weight_bits"])
    out["phases"] = {}
    for ph in phases:
        ps, pd = both(ph)
        a, b = summarise(ps, profile), summarise(pd, profile)
        out["phases"][ph.name] = {"steps": ph.steps, "total_j": a["total_j"],
                                  "by_kind": a["by_kind"], "counts": a["counts"],
                                  "real_valued_total_j": b["total_j"]}
    out["per_inference_j"] = out["phases"][phases[0].name]["total_j"] / B
    out.update(_inference(setup, phases[0], profile, out["per_inference_j"], ann_bits))
    out.update(_latency(setup, phases[0], profile, out["per_inference_j"]))
    out["per_training_update_j"] = None
    if len(phases) > 1:
        ts, td = both(total, weights=True)
        tsum = summarise(ts, profile)
        mem, why = ann.training_memory(setup.topology, profile)
        mem_j = mem["j"] if mem else 0.0
        out["per_training_update_j"] = tsum["total_j"] / B + mem_j
        out["per_training_update_real_valued_j"] = summarise(td, profile)["total_j"] / B + mem_j
        out["weight_update_modelled"] = profile.pj("weight_update") is not None
        out["training"] = {
            "scope": "per sample: every phase, the weight-update operations and the weight "
                     "memory traffic (read + write of every weight and bias)",
            "phases_j": {n: ph["total_j"] / B for n, ph in out["phases"].items()},
            "weight_update_ops": tsum["counts"]["weight_update"] / B,
            "weight_update_ops_j": tsum["by_kind"]["weight_update"] / B,
            "weight_update_modelled": out["weight_update_modelled"],
            "weight_memory": mem, "weight_memory_j": mem_j,
            "total_j": out["per_training_update_j"]}
        if mem is None:
            out["training"]["weight_memory_note"] = why
    out["samples"] = []
    for b in range(B):
        a, d = summarise(spk, profile, b), summarise(den, profile, b)
        out["samples"].append({"sample": ids[b], "profile": profile.name, "total_j": a["total_j"],
                               "by_kind": a["by_kind"], "counts": a["counts"],
                               "real_valued_total_j": d["total_j"],
                               "spike_vs_real_ratio": a["total_j"] / d["total_j"]
                               if d["total_j"] else None})
    if widths is not None:
        out["arithmetic"] = widths
    _check_finite(out, profile)
    return out


def _latency(setup: Setup, free: Activity, profile: hw.Profile, per_inference_j: float) -> dict:
    """Time per inference (the free phase) from the profile's unit latencies and the mesh, and
    the energy-delay product (:func:`neuroemu.energy.timing.latency_report`); None where the
    profile gives no latencies.  Without a recorded raster the messages are spread evenly over
    the steps (docs/energy-model.md)."""
    from . import timing
    ticks = None if setup.quanta is None else timing.bus_ticks(free, setup.quanta)
    lat = timing.latency_report(setup.counts(free, profile), setup, profile,
                                messages=free.messages, energy_j=per_inference_j,
                                bus_ticks=ticks)
    if lat is None:
        return {"latency": None, "latency_per_inference_s": None, "edp_j_s": None,
                "latency_note": f"profile {profile.name!r} gives no latencies ([latency_ns])"}
    return {"latency": lat, "latency_per_inference_s": lat["latency_per_inference_s"],
            "edp_j_s": lat["edp_j_s"]}


def _inference(setup: Setup, free: Activity, profile: hw.Profile, per_inference_j: float,
               ann_bits) -> dict:
    """Per inference (the free phase, per sample): messages, synaptic events, events per
    weight against the published break-even, and the one-pass ANN baseline
    (:mod:`neuroemu.energy.ann`)."""
    from . import ann
    B = free.batch
    syn = free.counters["syn_events"].sum(axis=0) / B          # (projections, 2)
    base, why = ann.ann_baseline(setup.topology, profile, ann_bits)
    out = {"spikes_per_inference": float(free.counters["spikes"].sum() / B),
           "syn_events_per_inference": float(syn.sum()),
           "syn_events_per_weight": ann.events_per_weight(syn, setup.topology),
           "syn_events_per_synapse": ann.events_per_weight(syn, ann.link_synapses(setup.topology)),
           "weights": ann.n_weights(setup.topology),
           "synapses": int(sum(ann.link_synapses(setup.topology))),
           "break_even": ann.BREAK_EVEN,
           "ann": base, "ann_total_j": base["total_j"] if base else None,
           "spike_vs_ann_ratio": per_inference_j / base["total_j"]
           if base and base["total_j"] else None}
    if base is None:
        out["ann_note"] = why
    return out


def _check_finite(value, profile, key: str = "report") -> None:
    """Every number of a report must be finite (JSON has no NaN or Infinity): a
    ProfileError naming the first that is not.  Bounded profiles (hardware.MAX_PJ) and
    int64 counters keep every total finite; this guards what they cannot (damaged counts)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, profile, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, profile, f"{key}[{i}]")
    elif isinstance(value, (float, np.floating)) and not np.isfinite(value):
        raise ProfileError(f"{profile.path or profile.name}: energy {key} is not finite "
                           f"(got {float(value)}): event counts x energies overflow float64")


# --------------------------------------------------------------------------- running

def run_network(cn, x, steps: int, nudge_steps: int = 0, beta: float = 0.5, target=None,
                seed: int | None = None, engine: str = "lockstep", sample_ids=None,
                progress: bool = False, chunk_bytes: int = 1 << 25) -> list[Activity]:
    """Run a free phase (and a nudged one) recording spikes in chunks of steps, so that
    the per-neuron message counts are exact without holding every step in memory."""
    from ..engines import session
    kw = {"seed": seed} if sample_ids is None else {"seed": seed, "sample_ids": sample_ids}
    sess = session(cn, x, engine=engine, **kw)
    B, N = sess.batch, cn.n_neurons
    chunk = max(1, chunk_bytes // max(1, B * N))
    plan = [("free", steps, 0.0, None)]
    if nudge_steps:
        plan.append(("nudged", nudge_steps, beta, target))
    from tqdm import tqdm
    out = []
    with tqdm(total=steps + nudge_steps, desc="emulating", unit="step",
              disable=not (progress and sys.stderr.isatty())) as bar:
        for name, n, b, y in plan:
            act = None
            done = 0
            while done < n or act is None:
                k = min(chunk, n - done)
                ph = sess.run(k, beta=b, target=y, name=name, record_spikes=True)
                part = activity_from_phase(ph)
                act = part if act is None else act + part
                done += k
                bar.update(k)
            act.name = name
            out.append(act)
    return out


def trace_phases(tr):
    """Phases (consecutive blocks with the same name) of an open trace, with per-phase
    counters and exact per-neuron message counts, for the samples the trace recorded."""
    from ..errors import TraceError
    from ..record.layout import pop_name
    net = tr.netlist()
    tr.counters()
    upto = tr.counters_step
    cg = tr.ne["counters"]
    t_end = cg["t_end"][:tr.rows[cg["t_end"].name]]
    blocks = tr.blocks()
    blocks = blocks[blocks["t_start"] + blocks["steps"] <= upto]
    if not len(blocks):
        raise TraceError(f"{tr.path}: holds no complete block of steps to count")
    if blocks["t_start"][0] != 0:
        raise TraceError(f"{tr.path}: starts at step {blocks['t_start'][0]}: the counters of "
                         f"the steps before it are not in the file")
    spans = []
    for row in blocks:
        name = row["phase"].decode("utf-8")
        t0, t1 = int(row["t_start"]), int(row["t_start"] + row["steps"])
        if spans and spans[-1][0] == name and spans[-1][2] == t0:
            spans[-1][2] = t1
        else:
            spans.append([name, t0, t1])
    samples = list(tr.samples)

    def cum(t):
        if t == 0:
            return {k: 0 for k in ("spikes", "syn_events", "updates")}
        i = int(np.searchsorted(t_end, t))
        return {k: cg[k][i] for k in ("spikes", "syn_events", "updates")}

    phases = []
    for name, t0, t1 in spans:
        c0, c1 = cum(t0), cum(t1)
        counters = {k: np.asarray(c1[k] - c0[k], dtype=np.int64)[samples] for k in c1}
        msgs = np.stack([np.concatenate([tr.counts(pop_name(layer, s, len(samples)), t0 + 1,
                                                   t1 + 1) for layer in tr.layers])
                         for s in samples])
        phases.append(Activity(name, t1 - t0, counters, msgs, t0))
    desc = f"trace {tr.path.name}: {len(samples)} recorded of a batch of {tr.batch} samples"
    return (net, phases, desc + ("" if tr.complete else f" (unfinished trace: steps 1..{upto})"),
            samples)


def fmt_n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def fmt_j(j: float) -> str:
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9)):
        if abs(j) >= scale:
            return f"{j / scale:.4g} {unit}"
    return f"{j / 1e-12:.4g} pJ"
