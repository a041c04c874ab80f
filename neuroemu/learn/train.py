"""Training loops: epochs of Equilibrium Propagation over a set of images, for the library
(:func:`train`, ``neuroemu.train``) and the command line (``neuroemu train`` runs its epochs
through :func:`run_epochs` and adds the files: checkpoints, the trained netlist, the curve).

One minibatch is :meth:`neuroemu.learn.eqprop.Trainer.train_batch`; this module orders the
images (file order, or a fresh permutation each epoch), counts the training error, loss and
spikes of each epoch, checks the weights stay finite, and evaluates the validation images
after each epoch.  A run resumed after ``start`` epochs draws the same permutations as an
uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..describe import Netlist
from ..engines import CompiledNetwork, as_compiled, check_input
from ..errors import TrainError
from .datasets import one_hot
from .eqprop import Hyper, Trainer, glorot_weights
from .plots import plot_learning_curve

__all__ = ["run_epochs", "train", "TrainResult"]


def run_epochs(trainer: Trainer, images, targets, *, epochs: int, start: int = 0,
               history: list | None = None, shuffle: bool = False, seed: int = 0,
               validation=None, progress: bool = False, log=None, on_epoch=None) -> list[dict]:
    """Train epochs ``start + 1 .. epochs`` on ``images`` (n, n_input) with one-hot
    ``targets`` (n, n_output), in minibatches of ``trainer.hyper.batch`` (a last partial
    minibatch is left out).

    ``shuffle``: a new permutation of the images each epoch, drawn from ``seed + 1``;
    ``validation``: (images, labels) evaluated after each epoch; ``progress``: tqdm bars;
    ``log``: a function taking a line of text (``print``) for a line per epoch (and, without
    bars, a line every 500 minibatches); ``on_epoch(record)``: called after each epoch.
    Appends one record per epoch to ``history`` (a new list by default) and returns it."""
    from tqdm import tqdm
    history = [] if history is None else history
    hp, n = trainer.hyper, len(images)
    order_rng = np.random.default_rng(seed + 1)
    for _ in range(start):  # keep the shuffles of a resumed run identical
        if shuffle:
            order_rng.permutation(n)
    for epoch in range(start + 1, epochs + 1):
        order = order_rng.permutation(n) if shuffle else np.arange(n)
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
                    log(f"  epoch {epoch}: {seen}/{nb * hp.batch} images, running train error "
                        f"{100 * wrong / seen:.2f}%, {time.perf_counter() - t0:.0f} s")
                if not np.isfinite(trainer.W[0]).all():
                    raise TrainError(f"training diverged at epoch {epoch}, minibatch {k} "
                                     f"(non-finite weights); lower the learning rates (--rates)")
        t_train = time.perf_counter() - t0
        val_err = val_spk = None
        if validation is not None:
            vx, vy = validation
            with tqdm(total=len(vx), desc="validation", unit="img", disable=not progress,
                      leave=False) as bar:
                val_err, val_spk = trainer.evaluate(vx, vy, progress=bar)
        rec = {"epoch": epoch, "train_error": wrong / max(seen, 1),
               "train_loss": loss / max(seen, 1), "train_spikes_per_sample": spk / max(seen, 1),
               "val_error": val_err, "val_spikes_per_sample": val_spk, "train_seconds": t_train,
               "wall_seconds": time.perf_counter() - t0,
               "samples_per_second": seen / t_train if t_train > 0 else None}
        history.append(rec)
        if log:
            val = "" if val_err is None else \
                f", validation error {100 * val_err:.2f}%, {val_spk:.0f} spikes/sample"
            rate = "" if rec["samples_per_second"] is None else \
                f" ({rec['samples_per_second']:.0f} samples/s)"
            log(f"epoch {epoch}: train error {100 * rec['train_error']:.2f}% "
                f"(loss {rec['train_loss']:.4f}){val}, {t_train:.0f} s training{rate}, "
                f"{rec['wall_seconds']:.0f} s total")
        if on_epoch is not None:
            on_epoch(rec)
    return history


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained compiled network ``net``, one record per
    epoch in ``history`` (dicts: ``epoch``, ``train_error``, ``train_loss``,
    ``train_spikes_per_sample``, ``val_error``, ``val_spikes_per_sample`` -- None without
    validation --, timings), the hyper-parameters used and the :class:`Trainer` (to go on
    training: ``result.trainer.train_batch(x, y)``).  Score it on a test set with
    ``neuroemu.evaluate(result.net, images, labels)``."""

    net: CompiledNetwork
    history: list[dict]
    hyper: Hyper
    trainer: Trainer = field(repr=False)

    def netlist(self, name: str | None = None) -> Netlist:
        """The trained network as a Netlist (to save with ``neuroemu.save``)."""
        nl = self.net.to_netlist()
        return nl if name is None else replace(nl, name=name)

    def plot(self, ax=None, path=None, title: str | None = None):
        """The learning curve (:func:`neuroemu.learn.plots.plot_learning_curve`); returns the
        figure."""
        if title is None:
            hp = self.hyper
            title = (f"EP training of {self.net.netlist.name} "
                     f"({'-'.join(map(str, self.net.sizes))}): beta {hp.beta}, steps "
                     f"{hp.n_free}/{hp.n_nudged}, batch {hp.batch}")
        return plot_learning_curve(self.history, path, title, ax=ax)

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else None
        tail = "" if last is None else (
            f", epoch {last['epoch']}: train error {100 * last['train_error']:.2f}%"
            + ("" if last.get("val_error") is None
               else f", validation error {100 * last['val_error']:.2f}%"))
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


def _hyper(cn, hyper, batch) -> Hyper:
    if hyper is None:
        return Hyper.for_network(cn, batch=batch)
    if isinstance(hyper, dict):
        return Hyper.for_network(cn, **{**hyper, "batch": batch or hyper.get("batch")})
    if isinstance(hyper, Hyper):
        hp = replace(hyper, rates=tuple(float(r) for r in hyper.rates))
        if batch is not None:
            hp.batch = batch
        hp.check(cn)
        return hp
    raise TypeError(f"hyper: expected a Hyper, a dict of its fields or None "
                    f"(got {type(hyper).__name__})")


def train(net, images, labels, *, epochs: int = 1, hyper=None, batch: int | None = None,
          seed: int = 0, validation=None, shuffle: bool = False, threads: int = 1,
          init: str = "netlist", progress: bool = False, log=None) -> TrainResult:
    """Train a network with Equilibrium Propagation; returns a :class:`TrainResult`.

    ``net``: a Netlist (built here) or a CompiledNetwork (trained in place).  ``images``:
    (n, n_input) floats, ``labels``: n integers in 0..n_output-1 (one-hot targets are made
    here).  ``hyper``: a :class:`~neuroemu.learn.eqprop.Hyper`, a dict of its fields
    (``beta``, ``n_free``, ``n_nudged``, ``rates``, ``rule``) or None for the paper's settings
    for this kind of network; ``batch`` overrides its minibatch size (default 20).
    ``validation``: None, a number of images to hold out from the end of ``images``, or
    (images, labels) -- evaluated after each epoch.  ``shuffle``: a new order each epoch
    (from ``seed``, which also draws the signs of beta).  ``init="glorot"``: fresh Glorot
    weights and zero biases instead of the netlist's.  ``progress``: tqdm bars; ``log``: a
    function for a line of text per epoch (``print``).

    The same settings give the same weights as ``neuroemu train`` bit for bit."""
    cn = as_compiled(net)
    for name, v, lo in (("epochs", epochs, 0), ("threads", threads, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise TrainError(f"{name}: must be an integer >= {lo} (got {v!r})")
    if init not in ("netlist", "glorot"):
        raise TrainError(f"init: must be 'netlist' or 'glorot' (got {init!r})")
    hp = _hyper(cn, hyper, batch)
    x = check_input(images, cn.sizes[0], "images")
    y = _labels(labels, len(x), cn.sizes[-1])
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
        vx = check_input(vx, cn.sizes[0], "validation images")
        val = (vx, _labels(vy, len(vx), cn.sizes[-1]))
    if len(x) < hp.batch:
        raise TrainError(f"images: fewer training images ({len(x)}) than one minibatch "
                         f"(batch {hp.batch})")
    trainer = Trainer(cn, hp, seed=seed, threads=threads)
    if init == "glorot":
        trainer.set_params(glorot_weights(cn.sizes, seed), [np.zeros(n) for n in cn.sizes])
    history = run_epochs(trainer, x, one_hot(y, cn.sizes[-1]), epochs=int(epochs),
                         shuffle=shuffle, seed=seed, validation=val, progress=progress, log=log)
    return TrainResult(cn, history, hp, trainer)
