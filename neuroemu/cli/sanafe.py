"""``neuroemu sanafe``: neuroemu against SANA-FE on the same recorded traffic and the same
architecture file.

Runs a netlist on bundled MNIST test digits (or reads a trace written by ``neuroemu run
--trace``), prices the recorded spikes on a SANA-FE architecture, replays them in SANA-FE and
prints both side by side: counts, joules per component, latency and the wall time of each
tool.  The work is :func:`neuroemu.compare_with_sanafe` (:mod:`neuroemu.interop.sanafe`), whose
dict ``--json`` prints; this module parses the arguments and prints.  ``docs/sanafe.md``.
"""

from __future__ import annotations

import argparse

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
    p.add_argument("--digits", type=integer(1, 300),
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


def sanafe_main(args) -> int:
    """Parse, check the output before any work, and print what
    :func:`neuroemu.compare_with_sanafe` returns."""
    import sys
    from ..energy.accounting import fmt_j
    from ..interop.sanafe import arch_path, compare_with_sanafe
    arch_file = arch_path(args.arch, "--arch")
    outputs = [("--export", args.export)] if args.export else []
    inputs = [args.source, arch_file] + [p for p in (args.input, args.placement)
                                         if p and p not in ("layer", "packed")]
    check_outputs(outputs, inputs=inputs, force=args.force)
    out = compare_with_sanafe(
        args.source, arch_file, x=args.input, digits=args.digits, steps=args.steps,
        seed=args.seed, last_step=args.last_step, mesh=args.mesh,
        neurons_per_core=args.neurons_per_core, placement=args.placement,
        cores_per_tile=args.cores_per_tile, timing_model=args.timing_model,
        export=args.export, force=args.force, sanafe=not args.no_sanafe,
        progress=sys.stderr.isatty())
    if args.json:
        print(dumps(out, indent=1))
        return 0
    _print(out, out["neuroemu"], fmt_j)
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
