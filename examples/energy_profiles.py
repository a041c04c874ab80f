"""The energy of the trained MNIST network on every shipped hardware profile.

    python examples/energy_profiles.py [OUT_DIR] [--digits N] [--steps N] [--mesh WxH]

Runs the shipped ``mnist-binary-trained`` network on N bundled MNIST digits once (recording
spikes: the hop counts need each neuron's message count), prices that one run on every
profile, prints a table and writes ``energy.json`` (what ``neuroemu energy --json`` prints,
one entry per profile) and ``energy.png``.  OUT_DIR defaults to a new temporary folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import neuroemu
from neuroemu.energy.report import plot_reports


def out_dir(args, names) -> Path:
    """The output folder, refusing to replace earlier outputs without --force."""
    out = Path(args.out or tempfile.mkdtemp(prefix="neuroemu-example-"))
    out.mkdir(parents=True, exist_ok=True)
    taken = [n for n in names if (out / n).exists()]
    if taken and not args.force:
        sys.exit(f"{out / taken[0]}: already exists (use --force to replace it)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", help="output folder (default: a new temporary folder)")
    p.add_argument("--digits", type=int, default=20, help="bundled digits to run (default 20)")
    p.add_argument("--steps", type=int, default=100, help="free-phase steps (default 100)")
    p.add_argument("--mesh", help="WIDTHxHEIGHT of cores (default: the smallest that fits)")
    p.add_argument("--force", action="store_true", help="replace earlier outputs")
    args = p.parse_args(argv)
    out = out_dir(args, ["energy.json", "energy.png"])

    net = neuroemu.load("mnist-binary-trained")
    images, _ = neuroemu.digits()
    result = neuroemu.run(net, images[:args.digits], args.steps, record_spikes=True)
    reports = neuroemu.estimate_energy(result, "all", net=net, mesh=args.mesh)

    print(f"{net.name}: {args.digits} digits, {args.steps} steps, "
          f"{reports[0].setup.placement.mesh} mesh; energy per classified digit")
    print(f"  {'profile':<14}{'spikes':>12}{'32-bit words':>14}{'ratio':>8}   largest part")
    for rep in reports:
        top = max(rep.by_kind, key=rep.by_kind.get)
        print(f"  {rep.profile.name:<14}{rep.per_inference_j * 1e6:>9.2f} uJ"
              f"{rep.real_valued_per_sample_j * 1e6:>11.2f} uJ{rep.ratio:>8.3f}   {top} "
              f"({100 * rep.by_kind[top] / rep.total_j:.0f} %)")
    (out / "energy.json").write_text(json.dumps([r.to_dict() for r in reports], indent=1))
    plot_reports(reports, out / "energy.png")
    print(f"wrote {out / 'energy.json'} and {out / 'energy.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
