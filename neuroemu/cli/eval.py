"""``neuroemu eval``: a network's error on a dataset split, with the spikes and synaptic
events it took per sample (in total, per population, per projection).

The computation is :func:`neuroemu.learn.evaluate.evaluate` (the free phase training
validates with); this module reads the options and the dataset and prints.
"""

from __future__ import annotations

import time
from dataclasses import replace

from .. import describe, engines
from ..errors import DataError
from ..files import netlist_inputs
from .options import check_outputs, check_plot, dumps, integer, integers, seed

EXAMPLE = """examples:
  neuroemu eval mnist-binary-trained --dataset mnist
  neuroemu eval mnist-binary-trained --dataset mnist --split fit    (the paper's training error)
  neuroemu eval mnist-binary-trained --dataset mnist --data /path/to/datasets --limit 1000
  neuroemu eval runs/fashion-trained.h5 --dataset fashion-mnist --threads 4 --json
  neuroemu eval mnist-binary-trained --dataset mnist --curve 10,20,50,100,200 --plot curve.png
(the dataset folder: --data DIR, else $NEUROEMU_DATA, else ../shared/datasets)"""

SPLITS = ("test", "train", "fit", "validation")

# What each split's error is called, then which images of which file it covers (the first
# and last index go in the braces).
LABELS = {
    "test": ("test error", "official test images {}-{}"),
    "train": ("error on all training images", "training images {}-{}"),
    "fit": ("train error (the paper's: training images after training)",
            "training images {}-{}, the ones neuroemu train fits"),
    "validation": ("validation error", "training images {}-{}, held out for validation"),
}


def add_eval_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("netlist", help="trained network: a .toml/.h5 file or a shipped name")
    p.add_argument("--dataset", required=True, help="mnist | fashion-mnist")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: $NEUROEMU_DATA or "
                   "../shared/datasets)")
    p.add_argument("--split", default="test", choices=SPLITS, help="test (default: the official test set), "
                   "train (all 60,000 training images), fit (training images 0-49,999: the "
                   "ones neuroemu train fits by default; the paper's training error), or "
                   "validation (training images 50,000-59,999)")
    p.add_argument("--steps", type=integer(1), help="free-phase steps per sample (default: the "
                   "paper's for this kind of network, as in training: 100 for spiking ones)")
    p.add_argument("--warmup", type=integer(0), default=0, metavar="K",
                   help="steps run before the --steps that are read out (default 0); for a "
                   "network trained with neuroemu train --method ide give its --ide-steps and "
                   "--ide-warmup (docs/training.md). Integrate-and-fire outputs are read by "
                   "their mean drive (spike count and membrane), other outputs by their states")
    p.add_argument("--limit", type=integer(1), metavar="N", help="classify only the first N images of the split")
    p.add_argument("--batch", type=integer(1), default=100, help="samples per session (default 100; "
                   "results do not depend on it)")
    p.add_argument("--threads", type=integer(1), default=1, help="numba threads (default 1)")
    p.add_argument("--seed", type=seed, help="session seed, 0..2**63-1 (default: the netlist's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with the "
                   "prediction of every sample)")
    p.add_argument("--curve", type=integers(1, 1_000_000), metavar="STEPS",
                   help="error against inference length instead: comma-separated step counts, "
                   "e.g. 10,20,50,100 (each sample runs once to the largest; the point at k "
                   "steps is what --steps k gives), with spikes and synaptic events per sample")
    p.add_argument("--plot", metavar="PNG", help="with --curve: error against spikes per "
                   "sample as a picture")
    p.add_argument("--force", action="store_true", help="replace an existing --plot file")
    p.add_argument("--workers", type=integer(1), metavar="N", help="classify on N local Dask "
                   "worker processes (the same result as one process; docs/sweep.md)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="classify on the workers of the Dask "
                   "cluster at ADDRESS, tcp://HOST:PORT (the same result as one process)")


def load_split(name: str, data_dir, split: str):
    """(the images and labels of one split, the index of its first image in its file).
    ``fit`` and ``validation`` divide the training file as ``neuroemu train`` does by
    default (:func:`neuroemu.learn.datasets.train_validation_split`): images 0-49,999 are
    trained on, the last 10,000 validate."""
    from ..learn import datasets
    if split not in SPLITS:
        raise DataError(f"--split: must be one of {', '.join(SPLITS)} (got {split!r})")
    if split in ("fit", "validation"):
        full = datasets.load(name, data_dir, split="train")
        fit, val = datasets.train_validation_split(full)
        return (fit, 0) if split == "fit" else (val, len(fit))
    return datasets.load(name, data_dir, split=split), 0


def eval_main(args) -> int:
    from ..learn.evaluate import evaluate
    if args.plot and not args.curve:
        raise DataError(f"--plot {args.plot}: draws the --curve (give --curve STEPS)")
    if args.curve and args.steps:
        raise DataError(f"--steps {args.steps}: --curve gives the step counts (got both)")
    if args.curve and (args.workers or args.scheduler):
        raise DataError(f"--curve: runs in one process (got --"
                        f"{'workers' if args.workers else 'scheduler'})")
    if args.workers or args.scheduler:
        from ..sweep.cluster import check_where
        check_where(args.workers, args.scheduler)
    if args.plot:
        check_plot(args.plot, "--plot")
        check_outputs([("--plot", args.plot)], inputs=netlist_inputs(
            describe.resolve(args.netlist)), force=args.force)
    net = describe.load(args.netlist)
    cn = engines.build(net)
    ds, first = load_split(args.dataset, args.data, args.split)
    if ds.images.shape[1] != cn.n_in:
        raise DataError(f"{args.netlist}: input population has {cn.n_in} neurons, but "
                        f"{ds.name} images have {ds.images.shape[1]} pixels "
                        f"(got --dataset {args.dataset})")
    if cn.n_out < int(ds.labels.max(initial=0)) + 1:
        raise DataError(f"{args.netlist}: output population has {cn.n_out} neurons, too few "
                        f"for {ds.name}'s labels 0..{int(ds.labels.max())}")
    if args.limit is not None:
        ds = replace(ds, images=ds.images[:args.limit], labels=ds.labels[:args.limit])
    if args.curve:
        return _curve(args, net, cn, ds, first)
    t0 = time.perf_counter()
    if args.workers or args.scheduler:
        from ..sweep.parallel_eval import evaluate_distributed
        res = evaluate_distributed(cn, ds.images, ds.labels, steps=args.steps,
                                   batch=args.batch, threads=args.threads, seed=args.seed,
                                   progress=True, warmup=args.warmup, workers=args.workers,
                                   scheduler=args.scheduler)
    else:
        res = evaluate(cn, ds.images, ds.labels, steps=args.steps, batch=args.batch,
                       threads=args.threads, seed=args.seed, progress=True,
                       warmup=args.warmup)
    wall = time.perf_counter() - t0
    label, images = LABELS[args.split]
    images = images.format(f"{first:,}", f"{first + res.n - 1:,}")
    if args.json:
        out = {"netlist": str(args.netlist), "network": net.name, "sizes": list(cn.sizes),
               "dataset": ds.name, "split": args.split, "data": str(ds.path),
               "images": f"{ds.name} {images}", "first_image": first,
               "batch": args.batch, "threads": args.threads, "wall_seconds": wall,
               "arithmetic": arithmetic_of(cn), **res.to_dict()}
        print(dumps(out, indent=1))
        return 0
    names = cn.names
    warm = f" after {res.warmup} warm-up steps" if res.warmup else ""
    print(f"{net.name} ({'-'.join(map(str, cn.sizes))}) on {ds.name} {images} (from "
          f"{ds.path}): {res.steps} free-phase steps each{warm}, seed {res.seed}")
    if cn.fixed is not None:
        a = arithmetic_of(cn)
        print(f"fixed point: {a['weight_bits']}-bit weights (exponents "
              f"{', '.join(map(str, a['exponents']))}), {a['message_bits']}-bit messages, "
              f"{a['accumulator_bits']}-bit accumulator"
              + (f", integer neurons (state k / 2**{a['state_bits']}, steps k / "
                 f"2**{a['step_bits']})" if a['state_bits'] else "") + " (docs/arithmetic.md)")
    print(f"{label} {100 * res.error:.2f}% ({res.errors} of {res.n} misclassified; "
          f"accuracy {100 * res.accuracy:.2f}%)")
    print(f"spikes per sample: {res.spikes_per_sample:.1f} = " + " + ".join(
        f"{res.spikes_per_population[n]:.1f} {n}" for n in names))
    proj = res.syn_events_per_projection
    print(f"synaptic events per sample: {res.syn_events_per_sample:.1f} = " + " + ".join(
        f"{v:.1f} {k}" for k, v in proj.items()))
    print(per_inference_line(res))
    print(f"wall time {wall:.1f} s ({res.n / wall:.0f} samples/s, batch {args.batch}, "
          f"{args.threads} thread{'s' if args.threads != 1 else ''})")
    return 0


def arithmetic_of(cn) -> dict:
    """The network's arithmetic as the JSON outputs state it: "float", or its fixed-point
    widths and each projection's exponent."""
    if cn.fixed is None:
        return {"kind": "float"}
    a = cn.fixed.arithmetic
    return {"kind": "fixed", "weight_bits": a.weights.bits, "message_bits": a.message_bits,
            "accumulator_bits": a.accumulator_bits,
            "exponents": [int(e) for e in cn.fixed.exponents],
            "state_bits": a.state_bits or None, "step_bits": a.step_bits if a.state_bits else None}


def per_inference_line(res) -> str:
    """Spikes per inference and synaptic events per weight (and per synapse, where conv
    weights are shared) per inference, beside the published break-even
    (docs/energy-model.md)."""
    from ..energy.ann import BREAK_EVEN
    lo, hi = BREAK_EVEN["range"]
    epw, eps = res.syn_events_per_weight, res.syn_events_per_synapse
    if epw is None:
        tail = "no weights"
    else:
        tail = f"{epw:.4g} synaptic events per weight ({res.weights:,} weights"
        if res.synapses != res.weights:
            tail += f"), {eps:.4g} per synapse ({res.synapses:,} synapses"
        tail += f"; published break-even {lo}-{hi} per synapse, Dampfhoffer et al. 2023)"
    warm = f" (counting the {res.warmup} warm-up steps)" if res.warmup else ""
    return f"per inference{warm}: {res.spikes_per_sample:.1f} spikes, {tail}"


def _curve(args, net, cn, ds, first) -> int:
    """``--curve``: error, spikes and synaptic events per sample at each step count."""
    import sys

    from tqdm import tqdm

    from ..files import replacing
    from ..learn.evaluate import error_curve
    from ..learn.plots import plot_error_curve
    t0 = time.perf_counter()
    with tqdm(total=len(ds.images), desc="classifying", unit="sample", leave=False,
              disable=not sys.stderr.isatty()) as bar:
        points = error_curve(cn, ds.images, ds.labels, args.curve, batch=args.batch,
                             threads=args.threads, seed=args.seed, progress=bar,
                             warmup=args.warmup)
    wall = time.perf_counter() - t0
    label, images = LABELS[args.split]
    images = images.format(f"{first:,}", f"{first + len(ds.images) - 1:,}")
    if args.plot:
        with replacing(args.plot) as tmp:       # atomic: the old picture or the new one
            plot_error_curve(points, path=tmp, title=f"{net.name} on {ds.name} {images}")
    if args.json:
        print(dumps({"netlist": str(args.netlist), "network": net.name,
                     "dataset": ds.name, "split": args.split, "images": f"{ds.name} {images}",
                     "n": len(ds.images), "seed": cn.netlist.seed if args.seed is None
                     else args.seed, "wall_seconds": wall, "curve": points}, indent=1))
        return 0
    print(f"{net.name} on {ds.name} {images}: {label} against free-phase steps")
    print(f"{'steps':>7} {'error':>8} {'spikes/sample':>14} {'synaptic events/sample':>23} "
          f"{'events/weight':>14}")
    for pt in points:
        epw = pt["syn_events_per_weight"]
        print(f"{pt['steps']:>7} {100 * pt['error']:>7.2f}% {pt['spikes_per_sample']:>14.1f} "
              f"{pt['syn_events_per_sample']:>23.1f} "
              + (f"{epw:>14.4g}" if epw is not None else f"{'-':>14}"))
    tail = f"; wrote {args.plot}" if args.plot else ""
    print(f"wall time {wall:.1f} s ({len(ds.images) / wall:.0f} samples/s){tail}")
    return 0
