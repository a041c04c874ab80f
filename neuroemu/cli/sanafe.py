"""``neuroemu sanafe``: neuroemu against SANA-FE on the same recorded traffic and the same
architecture file.

Runs a netlist on bundled MNIST test digits (or reads a trace written by ``neuroemu run
--trace``), prices the recorded spikes on a SANA-FE architecture with neuroemu's architecture
model (:mod:`neuroemu.energy.sanafe_arch`, :mod:`neuroemu.energy.timing`), exports the network,
its placement and the spikes as a SANA-FE traffic replay
(:mod:`neuroemu.interop.sanafe_export`), replays them in SANA-FE and prints both side by side:
counts, joules per component, latency and the wall time of each tool.  ``docs/sanafe.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import EngineError, InteropError
from .options import check_outputs, dumps, integer, mesh

EXAMPLE = """examples:
  neuroemu sanafe mnist-binary-trained --digits 20 --steps 100
  neuroemu sanafe mnist-binary-trained --arch sanafe-loihi --last-step drop --json
  neuroemu sanafe trace.h5 --arch path/to/loihi.yaml --export replay.yaml"""

ARCH_HELP = ("SANA-FE architecture: sanafe:NAME for a file of the installed SANA-FE package "
             "(sanafe:loihi, sanafe:truenorth), a shipped profile (sanafe-loihi, "
             "sanafe-truenorth) or a .yaml path (default sanafe:loihi)")


def add_sanafe_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLE
    p.add_argument("source", help="netlist to run on bundled MNIST test digits, or a trace file")
    p.add_argument("--arch", default="sanafe:loihi", help=ARCH_HELP)
    p.add_argument("--digits", type=integer(1, 300), default=20,
                   help="bundled MNIST test digits 0..N-1 as input (default 20)")
    p.add_argument("--input", metavar="FILE.npy", help="input batch (B, n_input) instead")
    p.add_argument("--steps", type=integer(1), default=100, help="steps (default 100)")
    p.add_argument("--seed", type=integer(0), help="run seed (default: the netlist's)")
    p.add_argument("--last-step", choices=("deliver", "drop"), default="deliver",
                   help="neuroemu's figures with the synaptic events of a spike in the step it "
                        "is sent (deliver: SANA-FE's convention, default) or in the next step "
                        "(drop: neuroemu's, the last step's spikes never delivered)")
    g = p.add_argument_group("placement")
    g.add_argument("--mesh", type=mesh, help="WIDTHxHEIGHT of neuroemu's cores (default: "
                   "the smallest square that fits)")
    g.add_argument("--neurons-per-core", type=integer(1), default=256, help="default 256")
    g.add_argument("--placement", default="layer", help="layer (default), packed or a .npy map")
    g.add_argument("--cores-per-tile", type=integer(1), default=1,
                   help="neuroemu cores per SANA-FE tile (default 1: one core per tile)")
    o = p.add_argument_group("SANA-FE and output")
    o.add_argument("--timing-model", choices=("detailed", "simple"), default="detailed",
                   help="SANA-FE's timing model (default detailed)")
    o.add_argument("--export", metavar="FILE.yaml", help="keep the SANA-FE replay file here")
    o.add_argument("--no-sanafe", action="store_true",
                   help="export and print neuroemu's side only (SANA-FE not run)")
    o.add_argument("--force", action="store_true", help="replace an existing --export file")
    o.add_argument("--json", action="store_true", help="print JSON")


def arch_path(arg: str) -> str:
    """``sanafe:NAME`` -> the installed SANA-FE package's example file; a shipped profile name
    -> its file; anything else: a path."""
    from ..energy import hardware as hw
    if arg.startswith("sanafe:"):
        try:
            from importlib import resources
            path = Path(str(resources.files("sanafe.examples") / f"{arg[7:]}.yaml"))
        except ImportError:
            raise InteropError(f"--arch {arg}: SANA-FE is not installed (pip install sanafe)") \
                from None
        if not path.is_file():
            raise InteropError(f"--arch {arg}: the SANA-FE package has no {path.name} "
                               f"(it holds: loihi, truenorth, example_chip)")
        return str(path)
    if arg in hw.shipped_profiles() and not Path(arg).exists():
        return str(hw.shipped_profile_path(arg))
    if not arg.endswith((".yaml", ".yml")):
        raise InteropError(f"--arch: must be sanafe:NAME, a shipped SANA-FE profile "
                           f"(sanafe-loihi, sanafe-truenorth) or a .yaml file (got {arg})")
    return arg


def _source(args):
    """(netlist, raster (T, B, N), description, sample ids, neuroemu seconds)."""
    from .. import describe, engines, record
    from ..record.layout import looks_like_trace
    t0 = time.perf_counter()
    path = Path(args.source)
    if looks_like_trace(path):
        with record.open(path) as trc:
            return _trace_raster(trc, t0)
    net = describe.load(args.source)
    cn = engines.build(net)
    if args.input:
        from .options import read_input
        x, desc = read_input(args.input, cn.n_in), f"input {args.input}"
    else:
        from ..learn.datasets import digits
        imgs, _ = digits()
        if imgs.shape[1] != cn.n_in:
            raise EngineError(f"{args.source}: the bundled digits have {imgs.shape[1]} pixels, "
                              f"the network's input has {cn.n_in} neurons (give --input)")
        x = imgs[:args.digits]
        desc = f"{len(x)} bundled MNIST test digits (test images 0..{len(x) - 1})"
    seed = net.seed if args.seed is None else args.seed
    ph = engines.session(cn, x, seed=seed).run(args.steps, record_spikes=True, name="free")
    return net, ph.spikes, ph, f"{desc} x {args.steps} steps", None, t0


def _trace_raster(trc, t0):
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
    return net, raster, ph, f"{desc}, phase {ph.name} ({T} steps)", samples, t0


def sanafe_main(args) -> int:
    from ..energy import hardware as hw
    from ..energy.accounting import Activity, activity_from_phase, fmt_j, summarise
    from ..energy.report import make_setup
    from ..energy import traffic as tr
    from ..interop import sanafe_export as sx
    arch_file = arch_path(args.arch)
    outputs = [("--export", args.export)] if args.export else []
    inputs = [args.source, arch_file] + [p for p in (args.input, args.placement)
                                         if p and p not in ("layer", "packed")]
    check_outputs(outputs, inputs=inputs, force=args.force)
    profile = hw.load_profile(arch_file)
    net, raster, ph, desc, ids, t0 = _source(args)
    t_run = time.perf_counter() - t0
    setup = make_setup(net, args.mesh, args.neurons_per_core, args.placement)
    hwm = tr.hw_map(setup.placement, args.cores_per_tile)
    sx.check_fits(hwm, profile.arch)
    act = ph if isinstance(ph, Activity) else activity_from_phase(ph)
    counts = setup.counts(act, profile)
    ours = sx.arch_side(setup, counts, profile, raster, last_step=args.last_step,
                        cores_per_tile=args.cores_per_tile)
    native = summarise(counts, profile)
    mean_ours = sx.mean_side(ours)
    t_ne = time.perf_counter() - t0
    fan = tr.fanout(setup.topology, hwm)
    with tempfile.TemporaryDirectory() as tmp:
        snn = Path(args.export) if args.export else Path(tmp) / "replay.yaml"
        t1 = time.perf_counter()
        sx.export_snn(snn, setup.topology, fan, profile.arch, raster, ids, net.name,
                      note=f"neuroemu: {net.name}, {desc}, on {Path(arch_file).name}")
        t_export = time.perf_counter() - t1
        theirs = None
        if not args.no_sanafe:
            import sys
            from tqdm import tqdm
            with tqdm(total=int(raster.shape[1]), desc="SANA-FE", unit="sample",
                      disable=not sys.stderr.isatty()) as bar:
                theirs = sx.sanafe_side(sx.run_sanafe(
                    snn, arch_file, timing_model=args.timing_model,
                    progress=lambda done, total: bar.update(done - bar.n)))
    out = {"network": net.name, "input": desc, "arch": arch_file, "arch_name": profile.arch.name,
           "placement": {"mesh": setup.placement.mesh, "policy": setup.placement.policy,
                         "neurons_per_core": setup.placement.neurons_per_core,
                         "cores_used": setup.placement.cores_used,
                         "cores_per_tile": args.cores_per_tile},
           "last_step": args.last_step, "samples": len(ours["per_sample"]),
           "steps": int(raster.shape[0]),
           "neuroemu": dict(mean_ours, network_split_j=ours["network_split_j"]),
           "neuroemu_latency": ours["latency"],
           "neuroemu_event_kinds": {
               "what": "neuroemu's own counting (synaptic events one step later, the last "
                       "step's never delivered) priced per event kind with this architecture's "
                       "profile mapping (docs/sanafe.md section 2)",
               "total_j_per_sample": native["total_j"] / len(ours["per_sample"]),
               "syn_events_per_sample": native["counts"]["syn_events"] / len(ours[
                   "per_sample"])},
           "wall_s": {"neuroemu": t_ne, "neuroemu_run": t_run, "export": t_export},
           "export": str(args.export) if args.export else None}
    if theirs is not None:
        out["sanafe"] = sx.mean_side(theirs)
        out["sanafe_timing_model"] = args.timing_model
        out["agreement_max_rel"] = sx.agreement(ours, theirs)
        out["wall_s"]["sanafe"] = theirs["wall_s"]
        out["per_sample"] = [{"neuroemu": a, "sanafe": b} for a, b in
                             zip(ours["per_sample"], theirs["per_sample"])]
    if args.json:
        print(dumps(out, indent=1))
        return 0
    _print(out, mean_ours, fmt_j)
    return 0


def _print(out, ne, fmt_j) -> None:
    sf = out.get("sanafe")
    ag = out.get("agreement_max_rel", {})
    pl = out["placement"]
    print(f"{out['network']}: {out['input']}")
    print(f"architecture {out['arch_name']} ({out['arch']}); placement {pl['policy']} on a "
          f"{pl['mesh']} mesh, {pl['cores_used']} cores, {pl['cores_per_tile']} per tile, "
          f"{pl['neurons_per_core']} neurons per core")
    print(f"--last-step {out['last_step']}: " + (
        "a spike's synaptic events in the step it is sent, as SANA-FE"
        if out["last_step"] == "deliver" else
        "a spike's synaptic events in the next step, as neuroemu (the last step's dropped)"))
    head = f"  {'per sample (mean of ' + str(out['samples']) + ')':<28}{'neuroemu':>16}"
    print(head + (f"{'SANA-FE':>16}{'max rel diff':>14}" if sf else ""))

    def row(label, a, b=None, key=None, j=False):
        f = (lambda v: fmt_j(v)) if j else (lambda v: f"{v:,.1f}")
        line = f"  {label:<28}{f(a):>16}"
        if sf is not None:
            line += f"{f(b):>16}{ag.get(key, 0.0):>14.2e}"
        print(line)

    for k, label in (("spikes", "spikes"), ("messages", "messages (packets)"), ("hops", "hops"),
                     ("syn_events", "synaptic events"), ("updated", "soma updates")):
        row(label, ne[k], sf[k] if sf else None, k)
    for k in ("synapse", "dendrite", "soma", "network", "total"):
        row(f"energy {k}", ne["energy_j"][k], sf["energy_j"][k] if sf else None,
            f"energy_{k}", j=True)
    lat = out["neuroemu_latency"]
    steps = out["steps"]
    line = (f"  latency per step: neuroemu {lat['latency_per_step_s'] * 1e6:.2f} us (serial), "
            f"{lat['overlap_model']['latency_per_step_s'] * 1e6:.2f} us (overlapped)")
    if sf:
        line += (f"; SANA-FE ({out['sanafe_timing_model']}) "
                 f"{sf['latency_per_inference_s'] / steps * 1e6:.2f} us")
    print(line)
    print(f"  EDP per inference (neuroemu): {lat['edp_j_s']:.4g} J s")
    kinds = out["neuroemu_event_kinds"]
    print(f"  neuroemu's own counting priced per event kind: {fmt_j(kinds['total_j_per_sample'])}"
          f" per sample, {kinds['syn_events_per_sample']:,.1f} synaptic events")
    w = out["wall_s"]
    print(f"wall time: neuroemu {w['neuroemu']:.2f} s (run {w['neuroemu_run']:.2f} s), export "
          f"{w['export']:.2f} s" + (f", SANA-FE {w['sanafe']:.2f} s" if "sanafe" in w else ""))
    if out["export"]:
        print(f"SANA-FE replay written to {out['export']}")
