"""``neuroemu train``: EP training (or, with ``--method ide``, training by implicit
differentiation at the equilibrium, :mod:`neuroemu.learn.ide_train`) from the command line, with a progress bar, per-epoch
validation, checkpoints and ``--resume``, a learning-curve PNG, the final test error and the
paper's training error (the training images classified after training).

The training is :mod:`neuroemu.learn.eqprop` (one minibatch) and :mod:`neuroemu.learn.train`
(the epochs, shared with ``neuroemu.train``); this module reads the options and the dataset,
writes the files and draws the curve (:mod:`neuroemu.learn.plots`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .. import describe, engines
from ..files import netlist_inputs, replacing, write_text
from ..learn.datasets import one_hot
from ..learn.eqprop import (NUDGES, RULES, Hyper, TrainError, Trainer, glorot_weights,
                            load_checkpoint, save_checkpoint, save_netlist)
from ..learn.plots import PAPER_TEST_ERROR, plot_learning_curve
from ..learn.train import TRAIN_ERROR_AFTER, run_epochs, score_after
from ..learn.ide import LOSSES
from ..learn.ide_train import IDEHyper, IDETrainer
from .options import check_outputs, check_plot, dumps, integer, integers, number, numbers, seed


# ---------------------------------------------------------------------------- CLI

EXAMPLE = """example:
  neuroemu train mnist-binary --dataset mnist --epochs 25 \\
      --out runs/mnist-binary-trained.toml
  (--resume CKPT continues a run; --epochs N counts from the start of the run)

files: --out, its checkpoint (<out>.ckpt.npz), <out>-history.json and <out>-curve.png are
refused if they exist (two trainings of one netlist share the default --out), unless --force,
or unless this is the run that made them: --resume of their own checkpoint advances them
figures (docs/training.md, "The command"): per epoch the running error (each minibatch's
free phase before its update) and the validation error (images 50,000-59,999); at the end
the test error (official 10,000 test images) and the paper's training error (the images
trained on, 0-49,999, classified after training; --no-train-eval skips it)

defaults by network kind (the paper's, docs/model.md section 4; override with the options):
  continuous       784-500-10           beta 0.5, steps 20/4,  rates 0.1,0.05
  binary           784-500-10           beta 0.5, steps 100/50, rates 0.1,0.05
  continuous-deep  784-500-500-500-10   beta 1.0, steps 50/8,  rates 0.128,0.032,0.008,0.002
  binary-deep      784-500-500-500-10   beta 1.0, steps 100/50, rates 0.128,0.032,0.008,0.002
  (binary = every population spikes; deep = more than one hidden layer; rule first-order,
  minibatch 20)

--method ide (feedback networks of IF/LIF neurons, docs/training.md "Training at the
equilibrium (IDE)"; the paper's settings by default):
  neuroemu train feedback-lif --method ide --dataset fashion-mnist --epochs 100 \\
      --out runs/feedback-lif-ide.toml
  T 5 counted steps after a warm-up of the network's depth (2 for feedback-lif), loss ce,
  SGD lr 0.05 momentum 0.9 weight decay 5e-4, batch 128, lr x0.1 after epochs 30,60,90,
  feedback spectral norm <= 0.5 x threshold; evaluate the result with
  neuroemu eval OUT --steps T --warmup K (printed at the end)"""

EP_OPTIONS = (("beta", "--beta"), ("n_free", "--steps-free"), ("n_nudged", "--steps-nudged"),
              ("rates", "--rates"), ("rule", "--rule"), ("nudge", "--nudge"))
IDE_OPTIONS = (("T", "--ide-steps"), ("warmup", "--ide-warmup"), ("loss", "--loss"),
               ("lr", "--lr"), ("momentum", "--momentum"), ("weight_decay", "--weight-decay"),
               ("feedback_bound", "--feedback-bound"), ("iterations", "--adjoint-iterations"),
               ("surrogate", "--surrogate"))
SCHEDULE_OPTIONS = (("milestones", "--lr-milestones"), ("gamma", "--lr-gamma"))   # both


def _milestones(text: str) -> tuple:
    """``--lr-milestones``: comma-separated increasing epochs, or ``none``."""
    import argparse
    if str(text).strip().lower() == "none":
        return ()
    try:
        ms = integers(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated epochs >= 1 or none "
                                         f"(got {text})") from None
    if list(ms) != sorted(set(ms)):
        raise argparse.ArgumentTypeError(f"must be increasing epochs (got {text})")
    return ms


def add_train_arguments(p) -> None:
    p.epilog = EXAMPLE
    p.add_argument("netlist", help="netlist (.toml or .h5): topology, neuron components, "
                   "initial weights")
    p.add_argument("--dataset", default="mnist", help="mnist | fashion-mnist (default mnist)")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: $NEUROEMU_DATA or "
                   "../shared/datasets)")
    p.add_argument("--epochs", type=integer(0), default=1, help="epochs to train (default 1)")
    p.add_argument("--out", metavar="FILE", help="trained netlist to write (.toml + .npy "
                   "files, or .h5); default <netlist name>-trained.toml (refused if it exists: "
                   "give --out or --force)")
    p.add_argument("--force", action="store_true", help="replace existing output files "
                   "(--out, the checkpoint, the history and the curve)")
    p.add_argument("--method", choices=("ep", "ide"), default="ep",
                   help="ep: Equilibrium Propagation (default); ide: implicit differentiation "
                   "at the equilibrium of the firing rates (IF/LIF networks, Xiao et al. 2021)")
    g = p.add_argument_group("hyper-parameters of EP (defaults: the paper's, by network kind)")
    g.add_argument("--beta", type=number(positive=True),
                   help="nudge strength (sign drawn per minibatch)")
    g.add_argument("--steps-free", type=integer(1), dest="n_free", help="free-phase steps")
    g.add_argument("--steps-nudged", type=integer(1), dest="n_nudged",
                   help="nudged-phase steps")
    g.add_argument("--rates", type=numbers(0.0),
                   help="learning rates per projection, e.g. 0.1,0.05")
    g.add_argument("--rule", choices=RULES, help="EP update rule (default first-order)")
    g.add_argument("--nudge", choices=NUDGES,
                   help="one nudged phase with a random sign of beta (the paper's), or "
                   "symmetric: +beta and -beta phases from the free state (docs/model.md 7.4; "
                   "default random-sign)")
    g.add_argument("--batch", type=integer(1), help="minibatch size (default 20; 128 with "
                   "--method ide)")
    i = p.add_argument_group("hyper-parameters of --method ide (defaults: the paper's)")
    i.add_argument("--ide-steps", type=integer(1), dest="T", metavar="T",
                   help="counted steps per forward pass: the rates are taken over them "
                   "(default 5)")
    i.add_argument("--ide-warmup", type=integer(0), dest="warmup", metavar="K",
                   help="steps run before the counted ones, so that every population "
                   "receives input (default: the network's depth, 2 for input-hidden-output)")
    i.add_argument("--loss", choices=LOSSES, help="ce: softmax cross-entropy on the outputs' "
                   "unclamped rates (default); mse: squared error of the output rates")
    i.add_argument("--lr", type=number(positive=True), help="SGD learning rate (default 0.05)")
    i.add_argument("--momentum", type=number(0.0), help="SGD momentum, in [0, 1) "
                   "(default 0.9)")
    i.add_argument("--weight-decay", type=number(0.0), dest="weight_decay",
                   help="L2 weight decay on weights and biases (default 5e-4)")
    i.add_argument("--lr-milestones", type=_milestones, dest="milestones", metavar="EPOCHS",
                   help="epochs after which the learning rate (EP: every rate of --rates) is "
                   "multiplied by --lr-gamma (IDE default 30,60,90; EP default none: "
                   "constant rates, the paper's)")
    i.add_argument("--lr-gamma", type=number(positive=True), dest="gamma",
                   help="learning-rate factor at each milestone (default 0.1)")
    i.add_argument("--feedback-bound", type=number(0.0), dest="feedback_bound",
                   help="spectral norm of each population-to-itself projection kept <= this "
                   "times the population's threshold after every update, in [0, 1] "
                   "(default 0.5; 0: no bound)")
    i.add_argument("--adjoint-iterations", type=integer(0), dest="iterations",
                   help="fixed-point iterations of the adjoint solve (default 30)")
    i.add_argument("--surrogate", type=number(0.0), help="derivative of the rate clamp "
                   "outside [0, 1], in [0, 1] (default 0: exact)")
    g.add_argument("--init", choices=("netlist", "glorot"), default="netlist",
                   help="initial weights: the netlist's, or fresh Glorot (zero biases)")
    p.add_argument("--validation", type=integer(1), default=10000,
                   help="validation images carved from the end of the training set")
    p.add_argument("--train-limit", type=integer(1), metavar="N",
                   help="use only the first N training images")
    p.add_argument("--val-limit", type=integer(1), metavar="N",
                   help="evaluate on the first N validation images")
    p.add_argument("--shuffle", action="store_true",
                   help="shuffle the training images each epoch (default: file order)")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument("--no-train-eval", action="store_true",
                   help="skip the paper's training error at the end (classifying the images "
                   "trained on after training: 50,000 free phases by default)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the +-beta signs (IDE: of the power iteration's start) and "
                   "shuffling, 0..2**63-1 (default 0)")
    p.add_argument("--threads", type=integer(1), default=1,
                   help="numba threads (opt-in, default 1)")
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint written every epoch "
                   "(default <out>.ckpt.npz)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint; when it is "
                   "this run's own checkpoint, the run's existing outputs advance without "
                   "--force")
    p.add_argument("--plot", metavar="PNG", help="learning curve (default <out>-curve.png)")


def _load_data(args):
    from ..learn import datasets
    full = datasets.load(args.dataset, data_dir=args.data, split="train")
    fit, val = datasets.train_validation_split(full, n_validation=args.validation)
    test = None if args.no_test else datasets.load(args.dataset, data_dir=args.data,
                                                   split="test")
    return fit, val, test


def train_main(args) -> int:
    quiet = not sys.stderr.isatty()
    nl = describe.load(args.netlist)
    out = Path(args.out or f"{nl.name}-trained.toml")
    if out.suffix.lower() not in (".toml", ".h5", ".hdf5"):
        raise TrainError(f"--out {out}: unknown netlist file type (use .toml, .h5 or .hdf5)")
    ckpt = Path(args.checkpoint or out.with_name(out.stem + ".ckpt.npz"))
    plot = Path(args.plot or out.with_name(out.stem + "-curve.png"))
    hist_path = out.with_name(out.stem + "-history.json")
    outputs = [("--out", out), ("--checkpoint", ckpt), ("--plot", plot),
               ("history", hist_path)]
    # Before any work: never onto an input, a folder or a FIFO; existing files only with
    # --force, or when this run resumes from its own checkpoint (its outputs advance).
    own = bool(args.resume) and Path(args.resume).is_file() and ckpt.is_file() \
        and Path(args.resume).resolve() == ckpt.resolve()
    check_outputs(outputs, inputs=netlist_inputs(describe.resolve(args.netlist))
                  + ([] if own else [args.resume]), force=args.force,
                  resumable=[p for _, p in outputs] if own else [])
    check_plot(plot, "--plot")
    ide = args.method == "ide"
    for attr, opt in (EP_OPTIONS if ide else IDE_OPTIONS):
        if getattr(args, attr, None) is not None:
            raise TrainError(f"{opt}: only with --method {'ep' if ide else 'ide'} (this run "
                             f"trains with --method {args.method})")
    net = engines.build(nl)
    if ide:
        hp = IDEHyper.for_network(net, batch=args.batch,
                                  **{a: getattr(args, a) for a, _ in IDE_OPTIONS + SCHEDULE_OPTIONS})
    else:
        hp = Hyper.for_network(net, beta=args.beta, n_free=args.n_free,
                               n_nudged=args.n_nudged, rates=args.rates, rule=args.rule,
                               batch=args.batch, nudge=args.nudge,
                               milestones=args.milestones, gamma=args.gamma)
    fit, val, test = _load_data(args)
    first_val = len(fit)            # the validation images follow the fit images in the file
    if args.train_limit:
        fit = replace(fit, images=fit.images[:args.train_limit], labels=fit.labels[:args.train_limit])
    if args.val_limit:
        val = replace(val, images=val.images[:args.val_limit], labels=val.labels[:args.val_limit])
    if fit.images.shape[1] != net.n_in or net.n_out != 10:
        raise TrainError(f"{args.netlist}: the network has {net.n_in} inputs and {net.n_out} "
                         f"outputs ({'-'.join(map(str, net.sizes))}) but {args.dataset} needs "
                         f"{fit.images.shape[1]} inputs and 10 outputs")
    if args.init == "glorot" and net.graph:
        raise TrainError(f"{args.netlist}: --init glorot: fresh weights are drawn for chains of "
                         f"dense layers only; give a graph network's initial weights in its "
                         f"netlist (weights = {{ init = \"glorot_uniform\" }})")
    if args.init == "glorot" and ide:      # into the network before the trainer copies it
        for l, w in enumerate(glorot_weights(net.sizes, args.seed)):
            net.set_weights(l, w.astype(np.float32))
        for l in range(net.n_layers):
            net.biases(l)[:] = 0.0
    trainer = (IDETrainer if ide else Trainer)(net, hp, seed=args.seed, threads=args.threads)
    if args.init == "glorot" and not ide:
        trainer.set_params(glorot_weights(net.sizes, args.seed),
                           [np.zeros(n) for n in net.sizes])
    method = "IDE" if ide else "EP"
    kind = "ide" if ide else Hyper.preset_name(net)
    fit_images = f"images 0-{len(fit) - 1:,}"
    val_images = f"images {first_val:,}-{first_val + len(val) - 1:,}"
    val_label = f"validation error ({val_images})"
    test_label = None if test is None else f"test error (official {len(test):,} test images)"
    settings = {"netlist": str(args.netlist), "dataset": args.dataset, "seed": args.seed,
                "shuffle": args.shuffle, "n_train": len(fit), "n_val": len(val),
                "train_images": f"{args.dataset} training {fit_images}",
                "validation_images": f"{args.dataset} training {val_images}",
                "command": " ".join(sys.argv), "method": args.method}
    if ide:
        settings["eval"] = f"neuroemu eval OUT --steps {hp.T} --warmup {hp.warmup}"
    start, history = 0, []
    if args.resume:
        start, history, _ = load_checkpoint(args.resume, trainer)
        print(f"resumed from {args.resume} after epoch {start}")
    if ide:
        ms = ",".join(map(str, hp.milestones)) or "none"
        hyper_line = (f"method=ide T={hp.T} warmup={hp.warmup} loss={hp.loss} lr={hp.lr:g} "
                      f"momentum={hp.momentum:g} weight_decay={hp.weight_decay:g} "
                      f"milestones={ms} gamma={hp.gamma:g} "
                      f"feedback_bound={hp.feedback_bound:g} batch={hp.batch}")
    else:
        hyper_line = (f"beta={hp.beta} steps={hp.n_free}/{hp.n_nudged} "
                      f"rates={','.join(f'{r:g}' for r in hp.rates)} rule={hp.rule} "
                      f"nudge={hp.nudge} batch={hp.batch}")
        if hp.milestones:
            hyper_line += (f" rates x{hp.gamma:g} after epochs "
                           f"{','.join(map(str, hp.milestones))}")
    print(f"training {nl.name} ({'-'.join(map(str, net.sizes))}, "
          f"{kind}) on {args.dataset}: training {fit_images}, validation "
          f"{val_images} (of the training set); {hyper_line} "
          f"threads={args.threads}", flush=True)

    def saved(rec):  # after each epoch: a checkpoint and the netlist so far
        save_checkpoint(ckpt, trainer, rec["epoch"], history, settings)
        save_netlist(net, out, description=f"{nl.name} trained with {method} for {rec['epoch']} "
                     f"epochs on {args.dataset}",
                     provenance={"validation error": f"{rec['val_error']:.4f}"})

    run_epochs(trainer, fit.images, one_hot(fit.labels), epochs=args.epochs, start=start,
               history=history, shuffle=args.shuffle, seed=args.seed,
               validation=(val.images, val.labels), progress=not quiet,
               log=lambda line: print(line, flush=True), on_epoch=saved, val_label=val_label)
    # After training (the netlist with these weights is written already): the test images,
    # then the images trained on -- the paper's training error.  Both only read the weights.
    if test is not None and history:
        t0 = time.perf_counter()
        test_err, test_spk = score_after(trainer, test.images, test.labels,
                                         progress=not quiet, desc="test")
        history[-1]["test_error"] = test_err
        history[-1]["test_spikes_per_sample"] = test_spk
        print(f"{test_label} {100 * test_err:.2f}%, {test_spk:.0f} spikes/sample "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        save_checkpoint(ckpt, trainer, history[-1]["epoch"], history, settings)
    if not args.no_train_eval and history:
        t0 = time.perf_counter()
        fit_err, fit_spk = score_after(trainer, fit.images, fit.labels, progress=not quiet,
                                       desc="train error after training")
        history[-1]["train_error_after"] = fit_err
        history[-1]["train_spikes_per_sample_after"] = fit_spk
        print(f"{TRAIN_ERROR_AFTER} {100 * fit_err:.2f}% on training {fit_images}, "
              f"{fit_spk:.0f} spikes/sample ({time.perf_counter() - t0:.0f} s)", flush=True)
        save_checkpoint(ckpt, trainer, history[-1]["epoch"], history, settings)
    if history:
        total = sum(h["wall_seconds"] for h in history)
        last = history[-1]
        desc = (f"{nl.name} trained with {method} for {last['epoch']} epochs on {args.dataset} "
                f"(training {fit_images}): validation error {100 * last['val_error']:.2f}%"
                + (f", test error {100 * last['test_error']:.2f}%"
                   if last.get("test_error") is not None else "")
                + (f", train error after training {100 * last['train_error_after']:.2f}%"
                   if last.get("train_error_after") is not None else "")
                + (f"; evaluate with --steps {hp.T} --warmup {hp.warmup}" if ide else ""))
        save_netlist(net, out, description=desc,
                     provenance={"command": settings["command"], "wall seconds": f"{total:.0f}",
                                 "hyper": json.dumps(asdict(hp))})
        write_text(hist_path, dumps({"settings": settings, "hyper": asdict(hp),
                                          "history": history}, indent=1))
        subset = f" (a subset: the first {len(fit)} training images)" if args.train_limit else ""
        if ide:
            title = (f"IDE training of {nl.name} ({'-'.join(map(str, net.sizes))}) on "
                     f"{args.dataset}{subset}\nT {hp.T} (+{hp.warmup} warm-up), loss "
                     f"{hp.loss}, lr {hp.lr:g}, momentum {hp.momentum:g}, batch {hp.batch}")
        else:
            title = (f"EP training of {nl.name} ({'-'.join(map(str, net.sizes))}, {kind}) on "
                     f"{args.dataset}{subset}\nbeta {hp.beta}, steps {hp.n_free}/{hp.n_nudged}, "
                     f"rates {','.join(f'{r:g}' for r in hp.rates)}, batch {hp.batch}")
        with replacing(plot) as tmp:        # atomic: the old curve or the new one
            plot_learning_curve(
                history, tmp, title,
                PAPER_TEST_ERROR.get((kind, args.dataset)) if len(fit) >= 50000 else None,
                val_label=val_label, test_label=test_label)
        print(f"wrote {out}, {ckpt}, {plot}, {hist_path}; wall time {total:.0f} s")
        if ide:
            print(f"evaluate it as validation did: neuroemu eval {out} --dataset "
                  f"{args.dataset} --steps {hp.T} --warmup {hp.warmup}")
    return 0
