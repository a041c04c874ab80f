"""Energy reports: one call from a run, a trace or a netlist to joules, for the library and the
``neuroemu energy`` command alike.

:func:`estimate_energy` is the public entry point (``neuroemu.estimate_energy``); it and the
command both assemble their placement, routes and profiles with :func:`make_setup` and
:func:`profiles`, price the phases with :func:`reports` (which calls
:func:`neuroemu.energy.accounting.report`) and get :class:`EnergyReport` objects back: the
command prints their :meth:`~EnergyReport.summary` or :meth:`~EnergyReport.to_dict` and draws
:func:`plot_reports`, so the library and the command give the same numbers, text and JSON.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..describe import Netlist, load
from ..engines import CompiledNetwork, RunResult, build, check_input, session
from ..errors import EngineError, ProfileError
from . import hardware as hw
from .graph import topology
from .accounting import (KINDS, Activity, Setup, activity_from_phase, coding_of, fmt_j, fmt_n,
                         report, run_network, trace_phases)
from .ann import check_memory, fmt_bytes
from .ann import ann_bits as ann_width
from .plots import plot_reports

__all__ = ["EnergyReport", "estimate_energy", "make_setup", "profiles", "reports",
           "plot_reports", "result_phases"]


# --------------------------------------------------------------------------- assembling

def profiles(names="loihi", word_bits: int | None = None) -> list[hw.Profile]:
    """Hardware profiles: a shipped name, a profile ``.toml`` path, a :class:`Profile`, or a
    list of those; ``"all"`` stands for every shipped profile.  ``word_bits`` overrides the
    bits of a real-valued word in each."""
    if isinstance(names, (str, Path, hw.Profile)):
        names = [names]
    names = list(names or ["loihi"])
    if "all" in names:
        names = [n for n in names if n != "all"] + hw.shipped_profiles()
    out, seen = [], set()
    for n in names:
        key = n.path or n.name if isinstance(n, hw.Profile) else str(n)
        if key in seen:
            continue
        seen.add(key)
        prof = n if isinstance(n, hw.Profile) else hw.load_profile(n)
        if word_bits is not None:
            if isinstance(word_bits, bool) or not isinstance(word_bits, (int, np.integer)) \
                    or not 1 <= word_bits <= 4096:
                raise ProfileError(f"--word-bits: must be an integer in [1, 4096] "
                                   f"(got {word_bits!r})")
            prof = replace(prof, word_bits=int(word_bits))
        check_memory(prof)
        out.append(prof)
    return out


def make_setup(net, mesh=None, neurons_per_core: int = 256, placement: str = "layer",
               multicast: bool = True) -> Setup:
    """Placement, routes and coding of a network (a Netlist or CompiledNetwork).  ``mesh``:
    ``"4x4"``, ``(4, 4)`` or None (the smallest square that fits); ``placement``: ``layer``,
    ``packed`` or a ``.npy`` file of one core index per neuron."""
    nl = net.netlist if isinstance(net, CompiledNetwork) else net
    if isinstance(mesh, str):
        mesh = hw.parse_mesh(mesh)
    names, sizes = tuple(p.name for p in nl.populations), nl.sizes
    pl = hw.place(sizes, mesh, neurons_per_core, str(placement))
    topo = topology(nl)
    return Setup(names, sizes, coding_of(nl), pl, hw.route_table(pl, topo, bool(multicast)),
                 topo, arithmetic=_arithmetic(nl))


def _arithmetic(nl):
    """The network's fixed-point widths (None: float)."""
    from ..describe.arithmetic import parse_arithmetic
    arith = parse_arithmetic(nl.hardware, nl.path, [p.label for p in nl.projections])
    return arith if arith.fixed else None


def cluster_setup(cn: CompiledNetwork, seed=None) -> Setup | None:
    """For the bus engine on the ``[hardware]`` mesh of a network: the energy model's
    placement of its circuit clusters on the engine's own cores (one packet per destination
    core, XY hops: the engine's routing), so the energy is priced on the chip that was
    emulated.  None when the ``[hardware]`` topology is a bus (no mesh to place on)."""
    sess = session(cn, np.zeros((1, cn.n_in)), engine="async", seed=seed)
    hwc, lay = sess.hw, sess.layout
    if hwc.topology != "mesh":
        return None
    core = np.asarray(lay.port, dtype=np.int64)[lay.cluster_of]
    npc = int(max(hi - lo for lo, hi in zip(lay.lo, lay.hi)))
    pl = hw.Placement(hwc.mesh[0], hwc.mesh[1], npc, core, "hardware-clusters")
    nl = cn.netlist
    names, sizes = tuple(p.name for p in nl.populations), nl.sizes
    topo = topology(nl)
    return Setup(names, sizes, coding_of(nl), pl, hw.route_table(pl, topo, True), topo,
                 int(hwc.quanta), _arithmetic(nl))


def reports(setup: Setup, phases: list[Activity], profs: list[hw.Profile], sample_ids=None, *,
            source: str = "", network: str = "", input: str = "",
            ann_bits: int | None = None) -> list["EnergyReport"]:
    """One :class:`EnergyReport` per profile of the same phases; ``source``, ``network`` and
    ``input`` describe the run (the command's JSON carries them); ``ann_bits``: the ANN
    baseline's width (default each profile's ``memory.ann_bits``, else 8)."""
    out = []
    for prof in profs:
        data = report(setup, phases, prof, sample_ids, ann_bits)
        data.update({"source": source, "network": network, "input": input})
        out.append(EnergyReport(data, setup, prof))
    return out


def result_phases(result: RunResult) -> list[Activity]:
    """The phases of a RunResult as activities (consecutive phases of one name merged), with
    exact per-neuron message counts; an EngineError if spikes were not recorded every step."""
    out: list[Activity] = []
    for i, ph in enumerate(result.phases):
        if ph.spikes is None or ph.every != 1 or ph.spikes.shape[0] != ph.steps:
            why = "recorded no spikes" if ph.spikes is None else \
                f"recorded spikes every {ph.every} steps, not every step"
            raise EngineError(
                f"estimate_energy: result.phases[{i}] ('{ph.name}'): {why}; the energy model "
                f"needs exact per-neuron message counts: run with record_spikes=True (every=1), "
                f"or pass the netlist and its input: estimate_energy(net, x=...)")
        act = activity_from_phase(ph)
        if out and out[-1].name == act.name and out[-1].t_start + out[-1].steps == act.t_start:
            merged = out[-1] + act
            merged.name = act.name
            out[-1] = merged
        else:
            out.append(act)
    if not out:
        raise EngineError("estimate_energy: result: has no phases (it ran no steps)")
    return out


def _trace_file(path: Path) -> bool:
    """True if ``path`` is a neuroemu/SONATA trace (or the ``.partial`` an unfinished writer
    left), not an HDF5 netlist or a TOML file (:func:`neuroemu.record.layout.looks_like_trace`)."""
    from ..record.layout import looks_like_trace
    return looks_like_trace(path)


# --------------------------------------------------------------------------- one call

def estimate_energy(source, profile="loihi", *, net=None, x=None, target=None, steps: int = 100,
                    nudge_steps: int = 0, beta: float = 0.5, seed: int | None = None,
                    engine: str = "lockstep", mesh=None, neurons_per_core: int = 256,
                    placement: str = "layer", multicast: bool = True,
                    word_bits: int | None = None, sample_ids=None, ann_bits: int | None = None):
    """Energy of a run on a hardware profile, in one call.

    ``source`` is one of

    - a :class:`~neuroemu.engines.RunResult` that recorded spikes every step
      (``neuroemu.run(..., record_spikes=True)``), with ``net=`` the Netlist or
      CompiledNetwork it ran;
    - a trace: an open :class:`~neuroemu.record.Trace` or the path of a trace file;
    - a network to run here: a Netlist, a CompiledNetwork, a netlist file or a shipped name,
      with ``x`` the input batch (B, n_input), ``steps`` free-phase steps and optionally
      ``nudge_steps`` nudged ones (strength ``beta`` towards ``target``), ``seed``, ``engine``.

    ``profile``: a shipped name (``"loihi"``), a profile file, a Profile -- one
    :class:`EnergyReport` back -- or a list of those or ``"all"`` -- a list of reports of the
    same run.  ``mesh``, ``neurons_per_core``, ``placement``, ``multicast`` and ``word_bits``
    are the command's ``--mesh``, ``--neurons-per-core``, ``--placement``, ``--routing`` and
    ``--word-bits``; ``ann_bits`` its ``--ann-bits`` (the width of the one-pass ANN
    baseline).  A network run here on the bus engine (``engine="async"``) whose
    ``[hardware]`` is a mesh is priced on that mesh, its circuit clusters on their cores
    (:func:`cluster_setup`); placement options are an error then.
    """
    from ..record import Trace
    profs = profiles(profile, word_bits)
    for prof in profs:       # a bad --ann-bits before anything runs
        ann_width(prof, ann_bits)
    ids, setup = sample_ids, None
    if isinstance(source, RunResult):
        if net is None:
            raise EngineError("estimate_energy: net: required with a RunResult (a result does "
                              "not carry its netlist): pass the Netlist or CompiledNetwork it ran")
        _no_run_args(x, target, "a RunResult")
        nl = _netlist(net)
        if tuple(source.names) != tuple(p.name for p in nl.populations) or \
                tuple(source.sizes) != nl.sizes:
            raise EngineError(f"estimate_energy: net: {nl.name} "
                              f"({'-'.join(map(str, nl.sizes))}) is not the network of the "
                              f"result ({'-'.join(map(str, source.sizes))})")
        phases = result_phases(source)
        meta = source.metadata
        src, desc = "RunResult", (f"a RunResult of {source.batch} sample(s); seed "
                                  f"{meta.get('seed')}, engine {meta.get('engine')}")
    elif isinstance(source, Trace) or (isinstance(source, (str, Path))
                                       and _trace_file(Path(source))):
        if net is not None:
            raise EngineError("estimate_energy: net: not used with a trace (the trace carries "
                              "its netlist)")
        _no_run_args(x, target, "a trace")
        if isinstance(source, Trace):
            src = str(source.path)
            nl, phases, desc, ids = trace_phases(source)
        else:
            src = str(source)
            with Trace(source) as tr:
                nl, phases, desc, ids = trace_phases(tr)
    elif isinstance(source, (str, Path, Netlist, CompiledNetwork)):
        src = str(source) if isinstance(source, (str, Path)) else type(source).__name__
        cn, phases, desc = _run(source, net, x, target, steps, nudge_steps, beta, seed, engine,
                                sample_ids)
        nl = cn.netlist
        setup = cluster_setup(cn, seed) if engine == "async" else None
        given = [(k, v) for k, v, default in (("mesh", mesh, None), ("placement", placement, "layer"),
                                               ("neurons_per_core", neurons_per_core, 256),
                                               ("multicast", multicast, True)) if v != default]
        if setup is not None and given:
            raise EngineError(f"estimate_energy: {given[0][0]}: the bus engine ran on the mesh "
                              f"of {nl.path or nl.name}'s [hardware]; the energy is priced on "
                              f"that placement (got {given[0][0]} = {given[0][1]!r})")
    else:
        raise TypeError(f"estimate_energy: source: expected a RunResult, a Trace, a trace or "
                        f"netlist path, a Netlist or a CompiledNetwork "
                        f"(got {type(source).__name__})")
    if setup is None:
        setup = make_setup(nl, mesh, neurons_per_core, placement, multicast)
    out = reports(setup, phases, profs, ids, source=src, network=nl.name, input=desc,
                  ann_bits=ann_bits)
    single = isinstance(profile, (str, Path, hw.Profile)) and profile != "all"
    return out[0] if single else out


def _netlist(net) -> Netlist:
    if isinstance(net, CompiledNetwork):
        return net.netlist
    if isinstance(net, Netlist):
        return net
    raise TypeError(f"estimate_energy: net: expected a Netlist or a CompiledNetwork "
                    f"(got {type(net).__name__})")


def _no_run_args(x, target, what):
    for name, v in (("x", x), ("target", target)):
        if v is not None:
            raise EngineError(f"estimate_energy: {name}: not used with {what} (it ran already)")


def _run(source, net, x, target, steps, nudge_steps, beta, seed, engine, sample_ids):
    if net is not None:
        raise EngineError("estimate_energy: net: give the network once, as the source")
    if x is None:
        raise EngineError("estimate_energy: x: the input batch (B, n_input) is required to run "
                          "a network")
    cn = source if isinstance(source, CompiledNetwork) else build(
        source if isinstance(source, Netlist) else load(source))
    for name, v in (("steps", steps), ("nudge_steps", nudge_steps)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise EngineError(f"estimate_energy: {name}: must be a non-negative integer "
                              f"(got {v!r})")
    x = check_input(x, cn.n_in, "x")
    seed = cn.netlist.seed if seed is None else seed
    phases = run_network(cn, x, steps, nudge_steps, beta, target, seed, engine,
                         sample_ids=sample_ids)
    return cn, phases, f"input x of {len(x)} sample(s); seed {seed}, engine {engine}"


# --------------------------------------------------------------------------- the report

class EnergyReport:
    """The energy of one run on one hardware profile.

    Totals in joules: ``total_j`` (the whole batch), ``per_sample_j``, ``per_inference_j``
    (the first -- free -- phase per sample), ``per_training_update_j`` (both phases and the
    weight updates per sample; None without a nudged phase) and the same network sending
    real-valued words every step, ``real_valued_per_sample_j`` (``ratio`` = this run / that).
    Breakdowns (joules over the batch): ``by_kind``, ``by_population``, ``by_projection``
    (each projection in each direction), ``by_projection_total`` (each projection, both
    directions and its weight updates, by its name or ``pre->post``), ``by_phase``; the
    synaptic events of each projection in ``syn_events_by_projection``; event counts in ``counts``; per-sample figures in ``samples``.
    :meth:`to_dict` is the dict ``neuroemu energy --json`` prints, :meth:`summary` the text
    it prints, :meth:`plot` its figure.
    """

    def __init__(self, data: dict, setup: Setup, profile: hw.Profile):
        self._data, self.setup, self.profile = data, setup, profile

    # ---------------------------------------------------------------- figures
    @property
    def batch(self) -> int:
        return int(self._data["batch"])

    @property
    def total_j(self) -> float:
        return self._data["total_j"]

    @property
    def per_sample_j(self) -> float:
        return self._data["total_j_per_sample"]

    @property
    def per_inference_j(self) -> float:
        return self._data["per_inference_j"]

    @property
    def per_training_update_j(self) -> float | None:
        return self._data["per_training_update_j"]

    @property
    def real_valued_per_sample_j(self) -> float:
        return self._data["real_valued_total_j_per_sample"]

    @property
    def ratio(self) -> float | None:
        return self._data["spike_vs_real_ratio"]

    @property
    def ann_total_j(self) -> float | None:
        """The one-pass quantised ANN baseline per inference (None: the profile has no
        ``[memory]`` figures for it)."""
        return self._data["ann_total_j"]

    @property
    def ann_ratio(self) -> float | None:
        """``per_inference_j / ann_total_j``: below 1 the spiking inference costs less."""
        return self._data["spike_vs_ann_ratio"]

    @property
    def syn_events_per_weight(self) -> float | None:
        """Synaptic events per distinct weight per inference (the free phase)."""
        return self._data["syn_events_per_weight"]

    @property
    def syn_events_per_synapse(self) -> float | None:
        """Synaptic events per synapse per inference: per weight, except that a conv weight
        serves a synapse at every output position (the break-even's unit)."""
        return self._data["syn_events_per_synapse"]

    @property
    def training(self) -> dict | None:
        """Per sample: every phase, the weight-update operations and the weight memory
        traffic of a training update (None without a nudged phase)."""
        return copy.deepcopy(self._data.get("training"))

    @property
    def by_kind(self) -> dict[str, float]:
        return dict(self._data["by_kind"])

    @property
    def by_population(self) -> dict[str, float]:
        return dict(self._data["by_population"])

    @property
    def by_projection(self) -> dict[str, float]:
        return dict(self._data["by_projection"])

    @property
    def by_projection_total(self) -> dict[str, float]:
        return dict(self._data["by_projection_total"])

    @property
    def syn_events_by_projection(self) -> dict[str, list[int]]:
        return copy.deepcopy(self._data["syn_events_by_projection"])

    @property
    def by_phase(self) -> dict[str, float]:
        return {n: ph["total_j"] for n, ph in self._data["phases"].items()}

    @property
    def counts(self) -> dict:
        return dict(self._data["counts"])

    @property
    def samples(self) -> list[dict]:
        return copy.deepcopy(self._data["samples"])

    def to_dict(self) -> dict:
        """Everything, as the JSON-ready dict ``neuroemu energy --json`` prints (a copy)."""
        return copy.deepcopy(self._data)

    # ---------------------------------------------------------------- text
    def __repr__(self) -> str:
        d = self._data
        ratio = f", {d['spike_vs_real_ratio']:.3g} of real-valued words" \
            if d["spike_vs_real_ratio"] else ""
        return (f"<EnergyReport {d['network']} on {d['profile']}: {fmt_j(self.per_sample_j)} "
                f"per sample (batch {self.batch}, steps "
                f"{', '.join(f'{k} {v}' for k, v in d['steps'].items())}){ratio}>")

    def summary(self, header: bool = True) -> str:
        """The text ``neuroemu energy`` prints for this profile (``header``: with the lines
        describing the run and the placement first)."""
        rep, setup, prof = self._data, self.setup, self.profile
        B, pl = rep["batch"], setup.placement
        binary = not setup.coding.real.any()
        out = []
        if header:
            steps = ", ".join(f"{n} {s}" for n, s in rep["steps"].items())
            out.append(f"{rep['source']}: network {rep['network']} "
                       f"({'-'.join(map(str, setup.sizes))}), steps {steps}, batch {B}; "
                       f"{rep['input']}")
            out.append(f"placement {pl.policy} on a {pl.mesh} mesh ({pl.cores_used} of "
                       f"{pl.n_cores} cores, {pl.neurons_per_core} neurons per core), "
                       f"{rep['routing']} XY routing; hop counts "
                       + ("exact (per-neuron message counts)" if rep["hops_exact"]
                          else "ESTIMATED (no per-neuron counts)"))
        out.append(f"\nprofile {prof.name}: {prof.description}")
        if rep.get("arithmetic"):
            a = rep["arithmetic"]
            out.append(f"  fixed point: {a['weight_bits']}-bit weights, {a['message_bits']}-bit "
                       f"real-valued messages (the profile's word: {a['word_bits_profile']} "
                       f"bits); {a['weight_read']}")
            if a.get("state"):
                out.append(f"  {a['state']}")
        out.append(f"  packets: spike {rep['packet_bits']['spike']} bits, {rep['word_bits']}-bit "
                   f"word {rep['packet_bits']['word']} bits; flits of {rep['flit_bits']} bit(s)")
        this = "this run (spikes)" if binary else "this run (words, zeros skipped)"
        out.append(f"  energy per sample (mean of {B})   {this:>28}   "
                   f"{'real-valued words, every step':>30}")
        out.append(f"  {'kind':<18}{'count':>14}{'energy':>12}{'share':>7}   {'count':>14}"
                   f"{'energy':>12}")
        tot, rtot = rep["total_j"], rep["real_valued_total_j"]
        for k in KINDS:
            n, e = rep["counts"][k] / B, rep["by_kind"][k] / B
            rn, re = rep["real_valued_counts"][k] / B, rep["real_valued_by_kind"][k] / B
            if n == 0 and rn == 0:
                continue
            out.append(f"  {k:<18}{fmt_n(n):>14}{fmt_j(e):>12}"
                       f"{100 * e * B / tot if tot else 0:>6.1f}%   {fmt_n(rn):>14}{fmt_j(re):>12}")
        out.append(f"  {'total':<18}{'':>14}{fmt_j(tot / B):>12}{'':>7}   {'':>14}"
                   f"{fmt_j(rtot / B):>12}")
        ratio = rep["spike_vs_real_ratio"]
        if ratio:
            out.append(f"  this run / real-valued energy ratio: {ratio:.4f} (real-valued costs "
                       f"{1 / ratio:.3g}x this run)")
        c, rc = rep["counts"], rep["real_valued_counts"]
        out.append("  traffic per sample: " + ", ".join(
            f"{fmt_n(c[k] / B)} {k.replace('_', '-')} (real-valued {fmt_n(rc[k] / B)})"
            for k in ("messages", "bits", "bit_hops")))
        out.append("  by population (neuron updates and the traffic it sends):  "
                   + ", ".join(f"{n} {fmt_j(e / B)}" for n, e in rep["by_population"].items()))
        out.append("  by projection (synaptic events; weight updates):  "
                   + ", ".join(f"{n} {fmt_j(e / B)}" for n, e in rep["by_projection"].items()
                               if e))
        if rep.get("graph"):   # a chain's projections are its directions' pairs above
            syn = rep["syn_events_by_projection"]
            out.append("  by projection, both directions (synaptic events forward/backward "
                       "per sample):  " + ", ".join(
                           f"{n} {fmt_j(e / B)} ({fmt_n(syn[n][0] / B)}/{fmt_n(syn[n][1] / B)})"
                           for n, e in rep["by_projection_total"].items()))
        nb = rep["neurobench"]
        fp = nb["memory_footprint"]
        out.append(f"  NeuroBench-style per sample: {fmt_n(nb['effective_acs'])} effective ACs, "
                   f"{fmt_n(nb['effective_macs'])} effective MACs, "
                   f"{fmt_n(nb['dense_synaptic_ops'])} dense synaptic ops; activation sparsity "
                   f"{nb['activation_sparsity']:.4f}; memory footprint {fmt_bytes(fp['bytes'])} "
                   f"({fp['precision'].split(' (')[0]}: weights {fmt_bytes(fp['weights_bytes'])}, biases "
                   f"{fmt_bytes(fp['biases_bytes'])}, state {fmt_bytes(fp['state_bytes'])})")
        out.extend(self._ann_lines())
        if len(rep["phases"]) > 1:
            for name, ph in rep["phases"].items():
                out.append(f"  phase {name}: {ph['steps']} steps, {fmt_j(ph['total_j'] / B)} per "
                           f"sample (real-valued {fmt_j(ph['real_valued_total_j'] / B)})")
        line = f"  per inference (free phase): {fmt_j(rep['per_inference_j'])}"
        if rep["per_training_update_j"] is not None:
            line += (f"; per training update (phases + weight updates + weight memory): "
                     f"{fmt_j(rep['per_training_update_j'])}")
            if not rep["weight_update_modelled"]:
                line += " [this profile has no weight-update figure: counted as 0]"
        out.append(line)
        lat = rep.get("latency")
        if lat:
            t, st = lat["latency_per_inference_s"], lat["latency_per_step_s"]
            how = "exact per step" if lat["exact"] else "messages spread evenly over the steps"
            out.append(f"  time per inference: {t * 1e3:.4g} ms ({st * 1e6:.4g} us per step, "
                       f"{how}); energy-delay product {lat['edp_j_s']:.4g} J s")
            if lat.get("bus_engine"):
                be = lat["bus_engine"]
                out.append(f"  bus engine's simulated time: {be['elapsed_ticks_per_inference']:.4g} "
                           f"ticks per inference ({be['ticks_per_step']:.4g} per step) = "
                           f"{be['latency_per_inference_s'] * 1e3:.4g} ms at this model's time "
                           f"per step")
        elif rep.get("latency_note"):
            out.append(f"  time per inference: not modelled ({rep['latency_note']})")
        if rep.get("training"):
            out.append(self._training_line())
        return "\n".join(out)

    def _ann_lines(self) -> list[str]:
        """Per inference: messages, synaptic events per weight against the break-even, and
        the one-pass ANN baseline."""
        rep = self._data
        epw, be = rep["syn_events_per_weight"], rep["break_even"]["range"]
        line = (f"  per inference (free phase, per sample): {fmt_n(rep['spikes_per_inference'])} "
                f"messages, {fmt_n(rep['syn_events_per_inference'])} synaptic events = ")
        if epw is None:
            line += "no weights"
        else:
            line += f"{epw:.4g} per weight ({fmt_n(rep['weights'])} weights"
            if rep["synapses"] != rep["weights"]:
                line += (f"), {rep['syn_events_per_synapse']:.4g} per synapse "
                         f"({fmt_n(rep['synapses'])} synapses")
            line += (f"); published break-even {be[0]}-{be[1]} per synapse (Dampfhoffer et al. "
                     f"2023)")
        out = [line]
        a = rep["ann"]
        if a is None:
            out.append(f"  ANN baseline: none ({rep.get('ann_note', '')})")
            return out
        c, j = a["counts"], a["by_kind_j"]
        where = "on chip" if a["weights_fit_onchip"] else \
            f"{fmt_n(c['weight_dram_reads'])} words from DRAM"
        out.append(f"  ANN baseline (one pass, {a['bits']}-bit weights and activations): "
                   f"{fmt_j(a['total_j'])} per inference = {fmt_n(c['macs'])} MACs "
                   f"{fmt_j(j['mac'])}, {fmt_n(c['adds'])} adds {fmt_j(j['add'])}, "
                   f"{fmt_n(c['param_words'])} parameter words ({where}) "
                   f"{fmt_j(j['weight_sram_read'] + j['weight_dram_read'])}, activations "
                   f"{fmt_n(c['activation_reads'])} words read / {fmt_n(c['activation_writes'])} "
                   f"written {fmt_j(j['activation_sram_read'] + j['activation_sram_write'])}")
        r = rep["spike_vs_ann_ratio"]
        if r:
            out.append(f"  spiking inference / ANN inference: {r:.4g} "
                       + ("(the spiking inference costs less)" if r < 1 else
                          "(the spiking inference costs more)"))
        return out

    def _training_line(self) -> str:
        t = self._data["training"]
        parts = [f"{n} {fmt_j(j)}" for n, j in t["phases_j"].items()]
        parts.append(f"weight-update ops {fmt_j(t['weight_update_ops_j'])}"
                     + ("" if t["weight_update_modelled"] else " (not priced)"))
        m = t["weight_memory"]
        if m is None:
            parts.append("weight memory not priced")
        else:
            dram = f", {fmt_n(m['dram_reads'])} from DRAM" if m["dram_reads"] else ""
            parts.append(f"weight memory {fmt_j(m['j'])} (read + write of "
                         f"{fmt_n(m['parameters'])} 32-bit weights and biases{dram})")
        return f"  training update per sample: {' + '.join(parts)} = {fmt_j(t['total_j'])}"

    def __str__(self) -> str:
        return self.summary()

    # ---------------------------------------------------------------- picture
    def plot(self, ax=None, path=None):
        """Where the energy goes: stacked bars of this run and of real-valued words by event
        kind.  Without ``ax`` a new figure (a second row leaves the synaptic events out so
        the smaller kinds show); with ``ax`` (a matplotlib Axes) one panel drawn into it.
        ``path``: also write a PNG.  Returns the figure."""
        return plot_reports([self], path, ax=ax)
