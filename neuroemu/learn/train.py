"""Training loops: epochs of Equilibrium Propagation over a set of images, for the library
(:func:`train`, ``neuroemu.train``) and the command line (``neuroemu train`` runs its epochs
through :func:`run_epochs` and adds the files: checkpoints, the trained netlist, the curve).

One minibatch is :meth:`neuroemu.learn.eqprop.Trainer.train_batch`; this module orders the
images (file order, or a fresh permutation each epoch), counts the running error, loss and
spikes of each epoch, checks the weights stay finite, and evaluates the validation images
after each epoch.  A run resumed after ``start`` epochs draws the same permutations as an
uninterrupted one.

The figures keep the names of what they measure (docs/training.md, "The command"):

- ``running_error``: the free-phase prediction of each minibatch *before* its update,
  accumulated over an epoch (with ``train_loss`` and ``train_spikes_per_sample``, the same
  running figures); cheap, but not the paper's training error.  Histories written before
  this name existed call it ``train_error``; :func:`upgrade_history` renames it.
- ``val_error``: the validation images, classified after the epoch.
- ``train_error_after``: **the paper's training error**, the training images the network
  was fitted on classified after training (:func:`score_after`), by the same procedure as
  validation and test (docs/model.md section 4.5); stored on the last epoch's record.
- ``test_error``: the test images (``neuroemu train`` stores it on the last record).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..describe import Netlist
from ..engines import CompiledNetwork, as_compiled, check_input
from ..errors import TrainError
from .datasets import one_hot
from .eqprop import Hyper, Trainer, glorot_weights, upgrade_history
from .plots import plot_learning_curve

__all__ = ["run_epochs", "score_after", "train", "TrainResult", "upgrade_history",
           "RUNNING_ERROR", "TRAIN_ERROR_AFTER"]

# How the figures are labelled in printed lines (the history keys are in the docstring above).
RUNNING_ERROR = "running error"
TRAIN_ERROR_AFTER = "train error (the paper's: training images after training)"


def score_after(trainer: Trainer, images, labels, *, progress: bool = False,
                desc: str = "train error") -> tuple[float, float]:
    """Classify ``images`` with the trainer's current network as validation does
    (:meth:`Trainer.evaluate`: a free phase of ``n_free`` steps from zero, then the argmax);
    returns (error as a fraction, spikes per sample).  Reads the weights, never writes
    them, and draws nothing from the trainer's sign RNG, so training goes on unchanged."""
    from tqdm import tqdm
    with tqdm(total=len(images), desc=desc, unit="img", disable=not progress,
              leave=False) as bar:
        return trainer.evaluate(images, labels, progress=bar)


def run_epochs(trainer: Trainer, images, targets, *, epochs: int, start: int = 0,
               history: list | None = None, shuffle: bool = False, seed: int = 0,
               validation=None, progress: bool = False, log=None, on_epoch=None,
               val_label: str = "validation error") -> list[dict]:
    """Train epochs ``start + 1 .. epochs`` on ``images`` (n, n_input) with one-hot
    ``targets`` (n, n_output), in minibatches of ``trainer.hyper.batch`` (a last partial
    minibatch is left out).

    ``shuffle``: a new permutation of the images each epoch, drawn from ``seed + 1``;
    ``validation``: (images, labels) evaluated after each epoch, labelled ``val_label`` in
    the log lines (say which images they are); ``progress``: tqdm bars;
    ``log``: a function taking a line of text (``print``) for a line per epoch (and, without
    bars, a line every 500 minibatches); ``on_epoch(record)``: called after each epoch.
    Appends one record per epoch to ``history`` (a new list by default; records of an
    older run are renamed by :func:`upgrade_history`) and returns it."""
    from tqdm import tqdm
    history = [] if history is None else upgrade_history(history)
    hp, n = trainer.hyper, len(images)
    order_rng = np.random.default_rng(seed + 1)
    for _ in range(start):  # keep the shuffles of a resumed run identical
        if shuffle:
            order_rng.permutation(n)
    for epoch in range(start + 1, epochs + 1):
        order = order_rng.permutation(n) if shuffle else np.arange(n)
        if hasattr(trainer, "start_epoch"):     # an epoch schedule (IDE's learning rate)
            trainer.start_epoch(epoch)
        t0 = time.perf_counter()
        wrong = seen = 0
        loss = spk = 0.0
        nb = n // hp.batch
        with tqdm(total=nb * hp.batch, desc=f"epoch {epoch}/{epochs}", unit="img",
                  disable=not progress, leave=False) as bar:
            for k in range(nb):
                idx = order[k * hp.batch:(k + 1) * hp.batch]
                st = trainer.train_batch(images[idx], targets[idx])
                wrong += st.errors
                seen += len(idx)
                loss += st.loss * len(idx)
                spk += st.spikes * len(idx)
                bar.update(len(idx))
                if k % 50 == 0:
                    bar.set_postfix(err=f"{100 * wrong / seen:.2f}%", loss=f"{loss / seen:.3f}")
                if log and not progress and k and k % 500 == 0:  # a log file still shows progress
                    log(f"  epoch {epoch}: {seen}/{nb * hp.batch} images, {RUNNING_ERROR} "
                        f"{100 * wrong / seen:.2f}%, {time.perf_counter() - t0:.0f} s")
                if not np.isfinite(trainer.W[0]).all():
                    hint = getattr(trainer, "rate_options", "--rates")
                    raise TrainError(f"training diverged at epoch {epoch}, minibatch {k} "
                                     f"(non-finite weights); lower the learning rates ({hint})")
        t_train = time.perf_counter() - t0
        val_err = val_spk = None
        if validation is not None:
            vx, vy = validation
            with tqdm(total=len(vx), desc="validation", unit="img", disable=not progress,
                      leave=False) as bar:
                val_err, val_spk = trainer.evaluate(vx, vy, progress=bar)
        rec = {"epoch": epoch, "running_error": wrong / max(seen, 1),
               "train_loss": loss / max(seen, 1), "train_spikes_per_sample": spk / max(seen, 1),
               "val_error": val_err, "val_spikes_per_sample": val_spk, "train_seconds": t_train,
               "wall_seconds": time.perf_counter() - t0,
               "samples_per_second": seen / t_train if t_train > 0 else None}
        history.append(rec)
        if log:
            val = "" if val_err is None else \
                f", {val_label} {100 * val_err:.2f}%, {val_spk:.0f} spikes/sample"
            rate = "" if rec["samples_per_second"] is None else \
                f" ({rec['samples_per_second']:.0f} samples/s)"
            log(f"epoch {epoch}: {RUNNING_ERROR} {100 * rec['running_error']:.2f}% "
                f"(each minibatch before its update; loss {rec['train_loss']:.4f}){val}, "
                f"{t_train:.0f} s training{rate}, "
                f"{rec['wall_seconds']:.0f} s total")
        if on_epoch is not None:
            on_epoch(rec)
    return history


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained compiled network ``net``, one record per
    epoch in ``history`` (dicts: ``epoch``, ``running_error``, ``train_loss``,
    ``train_spikes_per_sample`` -- running figures, each minibatch before its update --,
    ``val_error``, ``val_spikes_per_sample`` -- None without validation --, timings), the
    hyper-parameters used and the :class:`Trainer` (to go on training:
    ``result.trainer.train_batch(x, y)``).  ``train_error``: the paper's training error
    (the training images classified after training; also ``train_error_after`` in the last
    record), None unless ``train(..., train_error=True)``.  Score it on a test set with
    ``neuroemu.evaluate(result.net, images, labels)``."""

    net: CompiledNetwork
    history: list[dict]
    hyper: Hyper
    trainer: Trainer = field(repr=False)
    train_error: float | None = None

    def netlist(self, name: str | None = None) -> Netlist:
        """The trained network as a Netlist (to save with ``neuroemu.save``)."""
        nl = self.net.to_netlist()
        return nl if name is None else replace(nl, name=name)

    def plot(self, ax=None, path=None, title: str | None = None):
        """The learning curve (:func:`neuroemu.learn.plots.plot_learning_curve`); returns the
        figure."""
        if title is None and not hasattr(self.hyper, "beta"):
            hp = self.hyper
            title = (f"IDE training of {self.net.netlist.name}: T {hp.T} (+{hp.warmup} "
                     f"warm-up), lr {hp.lr:g}, batch {hp.batch}")
        if title is None:
            hp = self.hyper
            title = (f"EP training of {self.net.netlist.name} "
                     f"({'-'.join(map(str, self.net.sizes))}): beta {hp.beta}, steps "
                     f"{hp.n_free}/{hp.n_nudged}, batch {hp.batch}")
        return plot_learning_curve(self.history, path, title, ax=ax)

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else None
        tail = "" if last is None else (
            f", epoch {last['epoch']}: {RUNNING_ERROR} {100 * last['running_error']:.2f}%"
            + ("" if last.get("val_error") is None
               else f", validation error {100 * last['val_error']:.2f}%")
            + ("" if self.train_error is None
               else f", {TRAIN_ERROR_AFTER} {100 * self.train_error:.2f}%"))
        return (f"<TrainResult {self.net.netlist.name} "
                f"({'-'.join(map(str, self.net.sizes))}), {len(self.history)} epoch(s){tail}>")


def _labels(labels, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise TrainError(f"labels: must be a 1-D integer array of {n} class labels, one per "
                         f"image (got {y.dtype} shape {y.shape})")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise TrainError(f"labels: must lie in 0..{n_classes - 1}, one per output neuron "
                         f"(got {bad})")
    return y.astype(np.int64)


def _hyper(cn, hyper, batch, method: str = "ep"):
    """The hyper-parameters of a training method from None (the defaults for this network),
    a dict of fields, or an instance (copied, checked against the network)."""
    if method == "ep":
        cls, tuples = Hyper, {"rates": float}
    else:
        from .ide_train import IDEHyper
        cls, tuples = IDEHyper, {"milestones": lambda v: v}   # check() judges each value
    if hyper is None:
        return cls.for_network(cn, batch=batch)
    if isinstance(hyper, dict):
        return cls.for_network(cn, **{**hyper, "batch": batch or hyper.get("batch")})
    if isinstance(hyper, cls):
        hp = replace(hyper, **{k: tuple(f(v) for v in getattr(hyper, k))
                               for k, f in tuples.items()})
        if batch is not None:
            hp.batch = batch
        hp.check(cn)
        return hp
    raise TypeError(f"hyper: expected {'a' if method == 'ep' else 'an'} {cls.__name__}, a dict "
                    f"of its fields or None (got {type(hyper).__name__})")


def train(net, images, labels, *, epochs: int = 1, hyper=None, batch: int | None = None,
          seed: int = 0, validation=None, shuffle: bool = False, threads: int = 1,
          init: str = "netlist", progress: bool = False, log=None,
          train_error: bool = False, method: str = "ep") -> TrainResult:
    """Train a network with Equilibrium Propagation (``method="ep"``) or by implicit
    differentiation at its equilibrium (``method="ide"``: IF/LIF networks,
    :mod:`neuroemu.learn.ide_train`; ``hyper`` an :class:`~neuroemu.learn.ide_train.IDEHyper`,
    a dict of its fields or None for the paper's settings); returns a :class:`TrainResult`.

    ``net``: a Netlist (built here) or a CompiledNetwork (trained in place).  ``images``:
    (n, n_input) floats, ``labels``: n integers in 0..n_output-1 (one-hot targets are made
    here).  ``hyper``: a :class:`~neuroemu.learn.eqprop.Hyper`, a dict of its fields
    (``beta``, ``n_free``, ``n_nudged``, ``rates``, ``rule``) or None for the paper's settings
    for this kind of network; ``batch`` overrides its minibatch size (default 20).
    ``validation``: None, a number of images to hold out from the end of ``images``, or
    (images, labels) -- evaluated after each epoch.  ``shuffle``: a new order each epoch
    (from ``seed``, which also draws the signs of beta).  ``init="glorot"``: fresh Glorot
    weights and zero biases instead of the netlist's.  ``progress``: tqdm bars; ``log``: a
    function for a line of text per epoch (``print``).  ``train_error=True``: after the last
    epoch, classify the images trained on (``images`` less a held-out validation count) as
    validation does and return the paper's training error in ``result.train_error`` (and
    ``train_error_after`` of the last record); it reads the weights, never changes them.

    The same settings give the same weights as ``neuroemu train`` bit for bit."""
    cn = as_compiled(net)
    for name, v, lo in (("epochs", epochs, 0), ("threads", threads, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise TrainError(f"{name}: must be an integer >= {lo} (got {v!r})")
    if init not in ("netlist", "glorot"):
        raise TrainError(f"init: must be 'netlist' or 'glorot' (got {init!r})")
    if method not in ("ep", "ide"):
        raise TrainError(f"method: must be one of ep, ide (got {method!r})")
    hp = _hyper(cn, hyper, batch, method)
    x = check_input(images, cn.n_in, "images")
    y = _labels(labels, len(x), cn.n_out)
    val = None
    if isinstance(validation, (int, np.integer)) and not isinstance(validation, bool):
        if not 0 < validation < len(x):
            raise TrainError(f"validation: must hold out 1..{len(x) - 1} of the {len(x)} "
                             f"images (got {validation})")
        x, vx, y, vy = x[:-validation], x[-validation:], y[:-validation], y[-validation:]
        val = (vx, vy)
    elif validation is not None:
        try:
            vx, vy = validation
        except (TypeError, ValueError):
            raise TrainError(f"validation: must be None, a number of images or (images, "
                             f"labels) (got {type(validation).__name__})") from None
        vx = check_input(vx, cn.n_in, "validation images")
        val = (vx, _labels(vy, len(vx), cn.n_out))
    if len(x) < hp.batch:
        raise TrainError(f"images: fewer training images ({len(x)}) than one minibatch "
                         f"(batch {hp.batch})")
    if method == "ide":
        from .ide_train import IDETrainer
        if init == "glorot" and not cn.graph:     # before the trainer copies them
            for l, w in enumerate(glorot_weights(cn.sizes, seed)):
                cn.set_weights(l, w.astype(np.float32))
            for l in range(cn.n_layers):
                cn.biases(l)[:] = 0.0
        trainer = IDETrainer(cn, hp, seed=seed, threads=threads)
    else:
        trainer = Trainer(cn, hp, seed=seed, threads=threads)
    if init == "glorot" and cn.graph:
        raise TrainError("init: fresh Glorot weights are drawn for chains of dense layers only; "
                         "give a graph network's initial weights in its netlist")
    if init == "glorot" and method == "ep":
        trainer.set_params(glorot_weights(cn.sizes, seed), [np.zeros(n) for n in cn.sizes])
    held_out = val is not None and isinstance(validation, (int, np.integer))
    val_label = f"validation error (the last {validation} images)" if held_out \
        else "validation error"
    history = run_epochs(trainer, x, one_hot(y, cn.n_out), epochs=int(epochs),
                         shuffle=shuffle, seed=seed, validation=val, progress=progress, log=log,
                         val_label=val_label)
    after = None
    if train_error and history:
        after, spk = score_after(trainer, x, y, progress=progress)
        history[-1]["train_error_after"] = after
        history[-1]["train_spikes_per_sample_after"] = spk
        if log:
            log(f"{TRAIN_ERROR_AFTER} {100 * after:.2f}% on the {len(x)} images trained on, "
                f"{spk:.0f} spikes/sample")
    return TrainResult(cn, history, hp, trainer, after)
