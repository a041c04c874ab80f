"""Emulate a netlist on a bundled MNIST digit, record an HDF5 spike trace, draw its raster.

    python examples/emulate_raster.py [OUT_DIR] [--netlist NAME|FILE] [--steps N] [--digit I]

OUT_DIR defaults to a new temporary folder; existing outputs there are kept unless --force.
A network whose input is not 784 pixels gets a seeded random input instead of a digit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import neuroemu
from neuroemu.record import plots


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
    p.add_argument("--netlist", default="mnist-binary-trained",
                   help="a shipped network or a netlist file (default mnist-binary-trained)")
    p.add_argument("--steps", type=int, default=100, help="free-phase steps (default 100)")
    p.add_argument("--digit", type=int, default=0, help="which bundled digit (0-299)")
    p.add_argument("--force", action="store_true", help="replace earlier outputs")
    args = p.parse_args(argv)
    out = out_dir(args, ["run.h5", "raster.png"])

    net = neuroemu.load(args.netlist)
    images, labels = neuroemu.digits()
    if net.sizes[0] == images.shape[1]:
        x, what = images[args.digit:args.digit + 1], f"bundled digit {args.digit} " \
                                                      f"(label {labels[args.digit]})"
    else:
        x, what = np.random.default_rng(0).random((1, net.sizes[0])), "a seeded random input"
    result = neuroemu.run(net, x, args.steps, record_spikes=True)
    print(f"{net.name} ({'-'.join(map(str, net.sizes))}) on {what}, {args.steps} steps: "
          f"prediction {result.final_states[net.populations[-1].name].argmax()}")
    trace = neuroemu.write_trace(out / "run.h5", net, result, x=x)

    with neuroemu.open_trace(trace) as tr:
        for row in tr.summary():
            print(f"  {row['population']:<8} {row['size']:>5} neurons {row['spikes']:>7} spikes "
                  f"({row['rate_per_step']:.3f} per neuron and step)")
        png = out / "raster.png"
        if hasattr(plots, "raster"):      # the Axes-taking form: returns the figure
            plots.raster(tr, png, sample=0)
        else:                             # the older file-only form
            plots.draw_raster(tr, png, 0, 1, args.steps + 1)
    print(f"wrote {trace} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
