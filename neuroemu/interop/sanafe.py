"""neuroemu against SANA-FE on the same recorded traffic and the same architecture file, in one
call: :func:`compare_with_sanafe` (``neuroemu.compare_with_sanafe``; the ``neuroemu sanafe``
command prints its result).

It runs a network on bundled MNIST test digits or a given input (or reads a trace), prices the
recorded spikes on a SANA-FE architecture with neuroemu's architecture model
(:mod:`neuroemu.energy.sanafe_arch`, :mod:`neuroemu.energy.timing`), exports the network, its
placement and the spikes as a SANA-FE traffic replay (:mod:`.sanafe_export`), replays them in
SANA-FE and returns both sides: counts, joules per component, latency and the wall time of each
tool.  ``docs/sanafe.md``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import EngineError, InteropError

__all__ = ["compare_with_sanafe", "arch_path", "bundled_digits"]

SHIPPED_ARCHS = ("sanafe-loihi", "sanafe-truenorth")
MAX_DIGITS = 300
_WHAT = "compare_with_sanafe"


def arch_path(arg, option: str = f"{_WHAT}: arch") -> str:
    """A SANA-FE architecture as a file path: ``sanafe:NAME`` -> the installed SANA-FE
    package's example file (``sanafe:loihi``, ``sanafe:truenorth``); a shipped profile name
    (``sanafe-loihi``, ``sanafe-truenorth``) -> its file; anything else: a ``.yaml`` path.
    ``option`` names the argument in messages (the command's ``--arch``)."""
    from ..energy import hardware as hw
    arg = str(arg)
    if arg.startswith("sanafe:"):
        try:
            from importlib import resources
            path = Path(str(resources.files("sanafe.examples") / f"{arg[7:]}.yaml"))
        except ImportError:
            raise InteropError(f"{option} {arg}: SANA-FE is not installed (pip install sanafe)") \
                from None
        if not path.is_file():
            raise InteropError(f"{option} {arg}: the SANA-FE package has no {path.name} "
                               f"(it holds: loihi, truenorth, example_chip)")
        return str(path)
    if arg in hw.shipped_profiles() and not Path(arg).exists():
        return str(hw.shipped_profile_path(arg))
    if not arg.endswith((".yaml", ".yml")):
        raise InteropError(f"{option}: must be sanafe:NAME, a shipped SANA-FE profile "
                           f"({', '.join(SHIPPED_ARCHS)}) or a .yaml file (got {arg})")
    return arg


def bundled_digits() -> np.ndarray:
    """The images of the 300 MNIST test digits shipped in the package (those of
    ``neuroemu.digits()``), (300, 784) floats in [0, 1]."""
    from importlib import resources
    path = resources.files("neuroemu") / "data" / "mnist_test_digits.npz"
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        return z["images"].reshape(len(z["images"]), -1) / 255.0


def _count(name: str, v, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or \
            (hi is not None and v > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise EngineError(f"{_WHAT}: {name}: must be an integer {rng} (got {v!r})")
    return int(v)


def _choice(name: str, v, allowed) -> str:
    if v not in allowed:
        raise EngineError(f"{_WHAT}: {name}: must be one of {', '.join(allowed)} (got {v!r})")
    return v


def _input(x, n_in: int):
    """``x``: an array (B, n_in) or the path of a ``.npy`` file holding one (the command's
    ``--input``) -> (checked array, description)."""
    from ..engines import check_input
    if isinstance(x, (str, Path)):
        from ..describe.arrays import read_npy
        from ..engines.session import MAX_STATE_CELLS
        arr = read_npy(x, max_items=MAX_STATE_CELLS, error=EngineError, what="input",
                       expect=f"must hold numbers of shape (batch, {n_in}) or ({n_in},)")
        if arr.ndim not in (1, 2):
            raise EngineError(f"{x}: must hold numbers of shape (batch, {n_in}) or ({n_in},) "
                              f"(got shape {arr.shape})")
        return check_input(arr, n_in, str(x)), f"input {x}"
    arr = check_input(x, n_in, "x")
    return arr, f"input x of {len(arr)} sample(s)"


def _network_raster(source, x, digits, steps, seed):
    """Run a network (a Netlist, CompiledNetwork, netlist file or shipped name) with recorded
    spikes: (netlist, raster (T, B, N), phase, description, None)."""
    from ..describe import Netlist, load
    from ..engines import CompiledNetwork, build, session
    cn = source if isinstance(source, CompiledNetwork) else \
        build(source if isinstance(source, Netlist) else load(source))
    net = cn.netlist
    if x is not None:
        x, desc = _input(x, cn.n_in)
    else:
        imgs = bundled_digits()
        if imgs.shape[1] != cn.n_in:
            raise EngineError(f"{net.path or net.name}: the bundled digits have {imgs.shape[1]} "
                              f"pixels, the network's input has {cn.n_in} neurons (give an "
                              f"input: x=, at the command line --input)")
        x = imgs[:digits]
        desc = f"{len(x)} bundled MNIST test digits (test images 0..{len(x) - 1})"
    seed = net.seed if seed is None else _count("seed", seed, 0)
    ph = session(cn, x, seed=seed).run(steps, record_spikes=True, name="free")
    return net, ph.spikes, ph, f"{desc} x {steps} steps", None


def trace_raster(trc):
    """The first phase of an open trace as a raster: (netlist, raster (T, B, N), activity,
    description, sample ids)."""
    from ..energy.accounting import trace_phases
    from ..record.layout import pop_name
    net, phases, desc, samples = trace_phases(trc)
    ph = phases[0]
    T, B, N = ph.steps, len(samples), sum(net.sizes)
    raster = np.zeros((T, B, N), dtype=bool)
    off = np.concatenate([[0], np.cumsum(net.sizes)])
    for b, s in enumerate(samples):
        for l, layer in enumerate(trc.layers):
            steps, ids = trc.spikes(pop_name(layer, s, len(samples)), 1, T + 1)
            raster[steps - 1, b, off[l] + ids.astype(np.int64)] = True
    return net, raster, ph, f"{desc}, phase {ph.name} ({T} steps)", samples


def _is_trace(source) -> bool:
    from ..record import Trace
    from ..record.layout import looks_like_trace
    return isinstance(source, Trace) or (isinstance(source, (str, Path))
                                         and looks_like_trace(Path(source)))


def compare_with_sanafe(source, arch="sanafe:loihi", *, x=None, digits=None, steps: int = 100,
                        seed: int | None = None, last_step: str = "deliver", mesh=None,
                        neurons_per_core: int = 256, placement: str = "layer",
                        cores_per_tile: int = 1, timing_model: str = "detailed",
                        export=None, force: bool = False, sanafe: bool = True,
                        progress: bool = False) -> dict:
    """neuroemu against SANA-FE on the same recorded spikes and the same architecture file:
    the dict ``neuroemu sanafe --json`` prints.

    ``source``: a network to run here -- a Netlist, a CompiledNetwork, a netlist file or a
    shipped name -- on ``x`` (an array (B, n_input) or a ``.npy`` file) or else the first
    ``digits`` bundled MNIST test digits (default 20), for ``steps`` steps with ``seed``
    (default the netlist's); or a trace (a path or an open Trace: its first phase is replayed;
    ``x``, ``digits`` and ``seed`` are refused then).  ``arch``: ``sanafe:NAME`` (a file of the
    installed SANA-FE package), a shipped profile (``sanafe-loihi``, ``sanafe-truenorth``) or a
    ``.yaml`` path.  ``last_step``: ``"deliver"`` (a spike's synaptic events in the step it is
    sent, SANA-FE's convention) or ``"drop"`` (neuroemu's: the next step).  ``mesh``,
    ``neurons_per_core``, ``placement``: neuroemu's placement, as for ``estimate_energy``;
    ``cores_per_tile``: neuroemu cores behind one SANA-FE router.  ``timing_model``: SANA-FE's
    (``"detailed"`` or ``"simple"``).  ``export``: keep the replay file there (an existing file
    is refused unless ``force``).  ``sanafe=False``: export and price neuroemu's side only.
    ``progress``: a progress bar over the samples SANA-FE replays.
    """
    from ..energy import hardware as hw
    from ..energy import traffic as tr
    from ..energy.accounting import Activity, activity_from_phase, summarise
    from ..energy.report import make_setup
    from ..files import check_output
    from .sanafe_export import (agreement, arch_side, check_fits, export_snn, mean_side,
                                sanafe_side)
    arch_file = arch_path(arch)
    trace = _is_trace(source)
    if trace:
        for name, v in (("x", x), ("digits", digits), ("seed", seed)):
            if v is not None:
                raise EngineError(f"{_WHAT}: {name}: not used with a trace (it ran already)")
    else:
        if x is not None and digits is not None:
            raise EngineError(f"{_WHAT}: digits: give x or digits, not both")
        digits = 20 if digits is None else _count("digits", digits, 1, MAX_DIGITS)
        steps = _count("steps", steps, 1)
    _choice("last_step", last_step, ("deliver", "drop"))
    _choice("timing_model", timing_model, ("detailed", "simple"))
    neurons_per_core = _count("neurons_per_core", neurons_per_core, 1)
    cores_per_tile = _count("cores_per_tile", cores_per_tile, 1)
    if export is not None:
        inputs = [arch_file] + [str(p) for p in (source, x, placement)
                                if isinstance(p, (str, Path)) and p not in ("layer", "packed")]
        check_output(export, inputs=inputs, force=force, option="export")
    profile = hw.load_profile(arch_file)
    t0 = time.perf_counter()
    if not trace:
        net, raster, ph, desc, ids = _network_raster(source, x, digits, steps, seed)
    elif isinstance(source, (str, Path)):
        from ..record import Trace
        with Trace(source) as trc:
            net, raster, ph, desc, ids = trace_raster(trc)
    else:
        net, raster, ph, desc, ids = trace_raster(source)
    t_run = time.perf_counter() - t0
    setup = make_setup(net, mesh, neurons_per_core, placement)
    hwm = tr.hw_map(setup.placement, cores_per_tile)
    check_fits(hwm, profile.arch)
    act = ph if isinstance(ph, Activity) else activity_from_phase(ph)
    counts = setup.counts(act, profile)
    ours = arch_side(setup, counts, profile, raster, last_step=last_step,
                        cores_per_tile=cores_per_tile)
    native = summarise(counts, profile)
    n = len(ours["per_sample"])
    t_ne = time.perf_counter() - t0
    fan = tr.fanout(setup.topology, hwm)
    with tempfile.TemporaryDirectory() as tmp:
        snn = Path(export) if export is not None else Path(tmp) / "replay.yaml"
        t1 = time.perf_counter()
        export_snn(snn, setup.topology, fan, profile.arch, raster, ids, net.name,
                      note=f"neuroemu: {net.name}, {desc}, on {Path(arch_file).name}")
        t_export = time.perf_counter() - t1
        theirs = None
        if sanafe:
            theirs = sanafe_side(_replay(snn, arch_file, timing_model, int(raster.shape[1]),
                                         progress))
    out = {"network": net.name, "input": desc, "arch": arch_file, "arch_name": profile.arch.name,
           "placement": {"mesh": setup.placement.mesh, "policy": setup.placement.policy,
                         "neurons_per_core": setup.placement.neurons_per_core,
                         "cores_used": setup.placement.cores_used,
                         "cores_per_tile": cores_per_tile},
           "last_step": last_step, "samples": n, "steps": int(raster.shape[0]),
           "neuroemu": dict(mean_side(ours), network_split_j=ours["network_split_j"]),
           "neuroemu_latency": ours["latency"],
           "neuroemu_event_kinds": {
               "what": "neuroemu's own counting (synaptic events one step later, the last "
                       "step's never delivered) priced per event kind with this architecture's "
                       "profile mapping (docs/sanafe.md section 2)",
               "total_j_per_sample": native["total_j"] / n,
               "syn_events_per_sample": native["counts"]["syn_events"] / n},
           "wall_s": {"neuroemu": t_ne, "neuroemu_run": t_run, "export": t_export},
           "export": str(export) if export is not None else None}
    if theirs is not None:
        out["sanafe"] = mean_side(theirs)
        out["sanafe_timing_model"] = timing_model
        out["agreement_max_rel"] = agreement(ours, theirs)
        out["wall_s"]["sanafe"] = theirs["wall_s"]
        out["per_sample"] = [{"neuroemu": a, "sanafe": b} for a, b in
                             zip(ours["per_sample"], theirs["per_sample"])]
    return out


def _replay(snn, arch_file, timing_model, samples, progress):
    """The replay run in SANA-FE sample after sample (a tqdm bar if ``progress``)."""
    from tqdm import tqdm
    from .sanafe_export import run_sanafe
    with tqdm(total=samples, desc="SANA-FE", unit="sample", disable=not progress) as bar:
        return run_sanafe(snn, arch_file, timing_model=timing_model,
                          progress=lambda done, total: bar.update(done - bar.n))
