"""``neuroemu train``: EP training from the command line, with a progress bar, per-epoch
validation, checkpoints and ``--resume``, a learning-curve PNG and the final test error.

The training itself is :mod:`neuroemu.eqprop`; this module reads the options and the
dataset, runs the epochs, writes the files and draws the curve.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .. import describe, engines
from ..learn.eqprop import (RULES, Hyper, TrainError, Trainer, glorot_weights, load_checkpoint,
                     save_checkpoint, save_netlist)


def plot_learning_curve(history: list, path, title: str, paper: float | None = None) -> None:
    """Training and validation error per epoch (log scale), the final test error as a star,
    and optionally the paper's test error as a dotted line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.4), dpi=110)
    ax.plot(ep, [100 * h["train_error"] for h in history], "o-", ms=4,
            label="training error (each minibatch's free phase, before its update)")
    ax.plot(ep, [100 * h["val_error"] for h in history], "s-", ms=4,
            label="validation error (images held out of the training set)")
    for h in history:
        if h.get("test_error") is not None:
            ax.plot([h["epoch"]], [100 * h["test_error"]], "r*", ms=13,
                    label=f"official test error after epoch {h['epoch']}: "
                          f"{100 * h['test_error']:.2f}%")
    if paper is not None:
        ax.axhline(paper, color="k", ls=":", lw=1, label=f"paper's test error ({paper}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("classification error (%, log scale)")
    ax.set_yscale("log")
    vals = [100 * h[k] for h in history for k in ("train_error", "val_error", "test_error")
            if h.get(k)] + ([paper] if paper else [])
    if vals:
        lo, hi = min(vals), max(vals)
        ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50,
                             70, 100) if lo / 1.3 <= t <= hi * 1.3]
        ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# The paper's official-test errors (docs/model.md section 4), drawn on learning curves.
PAPER_TEST_ERROR = {("binary", "mnist"): 2.37, ("continuous", "mnist"): 2.51,
                    ("binary-deep", "mnist"): 3.65, ("continuous-deep", "mnist"): 2.42}


# ---------------------------------------------------------------------------- CLI

EXAMPLE = """example:
  neuroemu train netlists/mnist-binary.toml --dataset mnist --epochs 25 \\
      --out runs/mnist-binary-trained.toml
  (--resume CKPT continues a run; --epochs N counts from the start of the run)

defaults by network kind (the paper's, docs/model.md section 4; override with the options):
  continuous       784-500-10           beta 0.5, steps 20/4,  rates 0.1,0.05
  binary           784-500-10           beta 0.5, steps 100/50, rates 0.1,0.05
  continuous-deep  784-500-500-500-10   beta 1.0, steps 50/8,  rates 0.128,0.032,0.008,0.002
  binary-deep      784-500-500-500-10   beta 1.0, steps 100/50, rates 0.128,0.032,0.008,0.002
  (binary = every population spikes; deep = more than one hidden layer; rule first-order,
  minibatch 20)"""


def _rates(text):
    try:
        return tuple(float(r) for r in text.split(","))
    except ValueError:
        raise TrainError(f"--rates: must be comma-separated numbers (got {text!r})") from None


def add_train_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("netlist", help="netlist (.toml or .h5): topology, neuron components, "
                   "initial weights")
    p.add_argument("--dataset", default="mnist", help="mnist | fashion-mnist (default mnist)")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: $NEUROEMU_DATA or "
                   "../shared/datasets)")
    p.add_argument("--epochs", type=int, default=1, help="epochs to train (default 1)")
    p.add_argument("--out", metavar="FILE", help="trained netlist to write (.toml + .npy "
                   "files, or .h5); default <netlist name>-trained.toml")
    g = p.add_argument_group("hyper-parameters (defaults: the paper's, by network kind)")
    g.add_argument("--beta", type=float, help="nudge strength (sign drawn per minibatch)")
    g.add_argument("--steps-free", type=int, dest="n_free", help="free-phase steps")
    g.add_argument("--steps-nudged", type=int, dest="n_nudged", help="nudged-phase steps")
    g.add_argument("--rates", type=_rates, help="learning rates per projection, e.g. 0.1,0.05")
    g.add_argument("--rule", choices=RULES, default="first-order", help="EP update rule")
    g.add_argument("--batch", type=int, default=20, help="minibatch size (default 20)")
    g.add_argument("--init", choices=("netlist", "glorot"), default="netlist",
                   help="initial weights: the netlist's, or fresh Glorot (zero biases)")
    p.add_argument("--validation", type=int, default=10000,
                   help="validation images carved from the end of the training set")
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--val-limit", type=int, help="evaluate on the first N validation images")
    p.add_argument("--shuffle", action="store_true",
                   help="shuffle the training images each epoch (default: file order)")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument("--seed", type=int, default=0, help="seed of the +-beta signs and shuffling")
    p.add_argument("--threads", type=int, default=1, help="numba threads (opt-in, default 1)")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint written every epoch "
                   "(default <out>.ckpt.npz)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint")
    p.add_argument("--plot", metavar="PNG", help="learning curve (default <out>-curve.png)")


def _load_data(args):
    from ..learn import datasets
    full = datasets.load(args.dataset, data_dir=args.data, split="train")
    fit, val = datasets.train_validation_split(full, n_validation=args.validation)
    test = None if args.no_test else datasets.load(args.dataset, data_dir=args.data,
                                                   split="test")
    return fit, val, test


def train_main(args) -> int:
    from tqdm import tqdm
    quiet = not sys.stderr.isatty()
    if args.epochs < 0:
        raise TrainError(f"--epochs: must be >= 0 (got {args.epochs})")
    nl = describe.load(args.netlist)
    net = engines.build(nl)
    hp = Hyper.for_network(net, beta=args.beta, n_free=args.n_free, n_nudged=args.n_nudged,
                           rates=args.rates, rule=args.rule, batch=args.batch)
    fit, val, test = _load_data(args)
    if args.train_limit:
        fit = replace(fit, images=fit.images[:args.train_limit], labels=fit.labels[:args.train_limit])
    if args.val_limit:
        val = replace(val, images=val.images[:args.val_limit], labels=val.labels[:args.val_limit])
    if fit.images.shape[1] != net.sizes[0] or net.sizes[-1] != 10:
        raise TrainError(f"{args.netlist}: the network is {'-'.join(map(str, net.sizes))} but "
                         f"{args.dataset} needs {fit.images.shape[1]} inputs and 10 outputs")
    from ..learn.datasets import one_hot
    out = Path(args.out or f"{nl.name}-trained.toml")
    ckpt = Path(args.checkpoint or out.with_name(out.stem + ".ckpt.npz"))
    plot = Path(args.plot or out.with_name(out.stem + "-curve.png"))
    trainer = Trainer(net, hp, seed=args.seed, threads=args.threads)
    if args.init == "glorot":
        trainer.set_params(glorot_weights(net.sizes, args.seed),
                           [np.zeros(n) for n in net.sizes])
    settings = {"netlist": str(args.netlist), "dataset": args.dataset, "seed": args.seed,
                "shuffle": args.shuffle, "n_train": len(fit), "n_val": len(val),
                "command": " ".join(sys.argv)}
    start, history = 0, []
    if args.resume:
        start, history, _ = load_checkpoint(args.resume, trainer)
        print(f"resumed from {args.resume} after epoch {start}")
    print(f"training {nl.name} ({'-'.join(map(str, net.sizes))}, "
          f"{Hyper.preset_name(net)}) on {args.dataset}: {len(fit)} train / {len(val)} "
          f"validation images; beta={hp.beta} steps={hp.n_free}/{hp.n_nudged} "
          f"rates={','.join(f'{r:g}' for r in hp.rates)} rule={hp.rule} batch={hp.batch} "
          f"threads={args.threads}", flush=True)
    y_fit = one_hot(fit.labels)
    order_rng = np.random.default_rng(args.seed + 1)
    for _ in range(start):  # keep the shuffles of a resumed run identical
        if args.shuffle:
            order_rng.permutation(len(fit))
    for epoch in range(start + 1, args.epochs + 1):
        order = order_rng.permutation(len(fit)) if args.shuffle else np.arange(len(fit))
        t0 = time.perf_counter()
        wrong = seen = 0
        loss = spk = 0.0
        nb = len(fit) // hp.batch
        with tqdm(total=nb * hp.batch, desc=f"epoch {epoch}/{args.epochs}", unit="img",
                  disable=quiet, leave=False) as bar:
            for k in range(nb):
                idx = order[k * hp.batch:(k + 1) * hp.batch]
                st = trainer.train_batch(fit.images[idx], y_fit[idx])
                wrong += st.errors
                seen += len(idx)
                loss += st.loss * len(idx)
                spk += st.spikes * len(idx)
                bar.update(len(idx))
                if k % 50 == 0:
                    bar.set_postfix(err=f"{100 * wrong / seen:.2f}%", loss=f"{loss / seen:.3f}")
                if quiet and k and k % 500 == 0:  # a log file still shows progress
                    print(f"  epoch {epoch}: {seen}/{nb * hp.batch} images, running train error "
                          f"{100 * wrong / seen:.2f}%, {time.perf_counter() - t0:.0f} s",
                          flush=True)
                if not np.isfinite(trainer.W[0]).all():
                    raise TrainError(f"training diverged at epoch {epoch}, minibatch {k} "
                                     f"(non-finite weights); lower --rates")
        t_train = time.perf_counter() - t0
        with tqdm(total=len(val), desc="validation", unit="img", disable=quiet,
                  leave=False) as bar:
            val_err, val_spk = trainer.evaluate(val.images, val.labels, progress=bar)
        rec = {"epoch": epoch, "train_error": wrong / max(seen, 1), "train_loss": loss / max(seen, 1),
               "train_spikes_per_sample": spk / max(seen, 1), "val_error": val_err,
               "val_spikes_per_sample": val_spk, "train_seconds": t_train,
               "wall_seconds": time.perf_counter() - t0,
               "samples_per_second": seen / t_train if t_train > 0 else None}
        history.append(rec)
        print(f"epoch {epoch}: train error {100 * rec['train_error']:.2f}% "
              f"(loss {rec['train_loss']:.4f}), validation error {100 * val_err:.2f}%, "
              f"{val_spk:.0f} spikes/sample, {t_train:.0f} s training "
              f"({rec['samples_per_second']:.0f} samples/s), {rec['wall_seconds']:.0f} s total",
              flush=True)
        save_checkpoint(ckpt, trainer, epoch, history, settings)
        save_netlist(net, out, description=f"{nl.name} trained with EP for {epoch} epochs "
                     f"on {args.dataset}", provenance={"validation error": f"{val_err:.4f}"})
    if test is not None and history:
        t0 = time.perf_counter()
        with tqdm(total=len(test), desc="test", unit="img", disable=quiet, leave=False) as bar:
            test_err, test_spk = trainer.evaluate(test.images, test.labels, progress=bar)
        history[-1]["test_error"] = test_err
        history[-1]["test_spikes_per_sample"] = test_spk
        print(f"test error {100 * test_err:.2f}% on {len(test)} official test images, "
              f"{test_spk:.0f} spikes/sample ({time.perf_counter() - t0:.0f} s)", flush=True)
        save_checkpoint(ckpt, trainer, history[-1]["epoch"], history, settings)
    if history:
        total = sum(h["wall_seconds"] for h in history)
        last = history[-1]
        desc = (f"{nl.name} trained with EP for {last['epoch']} epochs on {args.dataset}: "
                f"validation error {100 * last['val_error']:.2f}%"
                + (f", test error {100 * last['test_error']:.2f}%"
                   if last.get("test_error") is not None else ""))
        save_netlist(net, out, description=desc,
                     provenance={"command": settings["command"], "wall seconds": f"{total:.0f}",
                                 "hyper": json.dumps(asdict(hp))})
        hist_path = out.with_name(out.stem + "-history.json")
        hist_path.write_text(json.dumps({"settings": settings, "hyper": asdict(hp),
                                         "history": history}, indent=1))
        kind = Hyper.preset_name(net)
        plot_learning_curve(
            history, plot, f"EP training of {nl.name} ({'-'.join(map(str, net.sizes))}, {kind}) "
            f"on {args.dataset}\nbeta {hp.beta}, steps {hp.n_free}/{hp.n_nudged}, rates "
            f"{','.join(f'{r:g}' for r in hp.rates)}, batch {hp.batch}",
            PAPER_TEST_ERROR.get((kind, args.dataset)) if len(fit) >= 50000 else None)
        print(f"wrote {out}, {ckpt}, {plot}, {hist_path}; wall time {total:.0f} s")
    return 0
