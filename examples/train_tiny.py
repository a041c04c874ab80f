"""Train a small spiking network with Equilibrium Propagation on the bundled MNIST digits,
in a few seconds and with no dataset.

    python examples/train_tiny.py [OUT_DIR] [--epochs N] [--hidden N]

250 of the 300 bundled test digits train a 784-32-10 network of the paper's spiking
neurons (sigma-delta, predictive coding, OSA step sizes; 30 free and 15 nudged steps per
minibatch; 50 of the 250 validate after each epoch); the other 50 digits test it.  Writes the
trained network (``tiny-trained.h5``) and the learning curve (``curve.png``).  Far too few
digits to learn MNIST: the point is the API, not the error.  OUT_DIR defaults to a new
temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import neuroemu


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
    p.add_argument("--epochs", type=int, default=5, help="epochs (default 5)")
    p.add_argument("--hidden", type=int, default=32, help="hidden neurons (default 32)")
    p.add_argument("--force", action="store_true", help="replace earlier outputs")
    args = p.parse_args(argv)
    out = out_dir(args, ["tiny-trained.h5", "curve.png"])

    images, labels = neuroemu.digits()
    net = neuroemu.layered([784, args.hidden, 10], "binary", seed=1, name="tiny-digits")
    result = neuroemu.train(net, images[:250], labels[:250], epochs=args.epochs,
                            hyper={"n_free": 30, "n_nudged": 15}, validation=50,
                            shuffle=True, seed=0, log=print)
    test = neuroemu.evaluate(result.net, images[250:], labels[250:], steps=30)
    print(f"{result}\ntest error on the other 50 digits: {100 * test.error:.0f} % "
          f"({test.spikes_per_sample:.0f} spikes per digit)")
    neuroemu.save(result.netlist(name="tiny-digits-trained"), out / "tiny-trained.h5")
    result.plot(path=out / "curve.png")
    print(f"wrote {out / 'tiny-trained.h5'} and {out / 'curve.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
