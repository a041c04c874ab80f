"""Training feedback spiking networks at their equilibrium (IDE; Xiao et al., NeurIPS 2021)
with the same loop, files and checkpoints as EP training (docs/training.md, "Training at
the equilibrium (IDE)").

Per minibatch (:meth:`IDETrainer.train_batch`):

1. **Forward**: the engine runs ``warmup`` steps on the batch from the zero state, then the
   ``T`` counted steps.  The rates are taken over the counted steps only, from the
   cumulative rates ``s(t) = count / t`` the sessions keep: spikes in ``(t1, t2]`` are
   ``s(t2) t2 - s(t1) t1`` (rounded: they are integers), rate = spikes / T.  The warm-up
   (default: the network's depth, the deliveries from the inputs to the farthest output)
   lets every population receive input before the counted steps start: neuroemu delays
   every delivery one step (docs/model.md 7.2, 8.1).
2. **Backward**: :func:`neuroemu.learn.ide.ide_gradients` at those rates (the rate map with
   the master float64 weights, the adjoint by fixed-point iteration).
3. **Update**: SGD with momentum and weight decay, as PyTorch's ``torch.optim.SGD`` (the
   paper's optimiser), on every projection's parameters and every non-input population's
   biases: ``g = grad + wd * p``, ``buf = momentum * buf + g`` (``buf`` starts at zero, so
   the first step is ``buf = g``), ``p -= lr * buf``.  The learning rate is ``lr`` times
   ``gamma`` per milestone passed (epochs ``e > m``: PyTorch's ``MultiStepLR`` stepped per
   epoch; the paper: 0.05, x0.1 after epochs 30, 60, 90).
4. **Contraction**: every projection from a population to itself (the feedback) is scaled
   after each update so that its matrix ``M_p`` has spectral norm at most ``bound * th``
   (``th`` the population's threshold; ``feedback_bound`` = 1/2 by default: the paper's
   ``||W|| <= 1`` at ``V_th = 2``); the recurrent part of the map's Jacobian then has norm
   <= ``bound`` and the adjoint iteration converges geometrically.  The norm is estimated by
   power iteration from the previous update's vector (as PyTorch's ``spectral_norm``, which
   the paper's code uses with one iteration per step), repeated until the estimate moves by
   less than 1e-6 (relative; at most 100 iterations, at least 30 when the trainer starts,
   where the initial weights are projected too).  One iteration per step was not enough in
   a test with large steps (a 12x12 feedback ended at 1.4x its bound after 10 updates at
   lr 0.5): the estimate never exceeds the true norm, and lags when the top singular
   vector turns.  From the stored vector it usually takes a few iterations.

Prediction (running error, validation, test): :func:`neuroemu.learn.evaluate.classify` with
``steps=T, warmup=warmup`` -- the argmax of the output populations' readout over the counted
steps; IF outputs are read by their mean drive ``z`` (from the spike count and the
membrane), the quantity the cross-entropy loss trains.  ``neuroemu eval NET --steps T
--warmup K`` gives the same figures.

Public API::

    hp = IDEHyper.for_network(compiled, lr=0.05)     # defaults: the paper's, warmup = depth
    trainer = IDETrainer(compiled, hp, seed=0)
    stats = trainer.train_batch(x, y_onehot)          # one update; a BatchStats
    err, spikes = trainer.evaluate(images, labels)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..engines import CompiledNetwork
from ..engines import kernels as K
from ..engines import session as open_session
from ..errors import CompileError, EngineError, TrainError
from . import ide
from .evaluate import classify, readout, window_start

__all__ = ["IDEHyper", "IDETrainer", "IDEBatchStats", "depth", "feedback_projections",
           "lr_at", "PAPER"]

# The paper's settings (pkuxmq/IDE-FSNN, fashionmnist_fc.py defaults; /work notes in
# docs/model.md 8): SGD, momentum 0.9, lr 0.05, weight decay 5e-4, batch 128, 100 epochs,
# lr x0.1 after epochs 30, 60, 90, T = 5; cross-entropy on a linear readout.
PAPER = dict(T=5, loss="ce", lr=0.05, momentum=0.9, weight_decay=5e-4, batch=128,
             milestones=(30, 60, 90), gamma=0.1)
INIT_POWER_ITERATIONS = 30     # power iterations when the trainer starts (at least)
POWER_ITERATIONS = 1           # at least, per update
POWER_MAX_ITERATIONS = 100     # at most, per update: until the estimate moves < POWER_TOL
POWER_TOL = 1e-6


def depth(net) -> int:
    """Deliveries from the input populations to the farthest output population along the
    shortest paths (a population ``k`` deliveries away first receives input at step
    ``k + 1``): 2 for input -> hidden -> output."""
    rm = net if isinstance(net, ide.RateMap) else ide.RateMap(net)
    cn = rm.net
    dist = {r: 0 for r in cn.inputs}
    changed = True
    while changed:
        changed = False
        for r in rm.hidden:
            ds = [dist[src] + 1 for _, _, src in rm.into[r] if src in dist]
            if ds and (r not in dist or min(ds) < dist[r]):
                dist[r] = min(ds)
                changed = True
    missing = [cn.names[r] for r in cn.outputs if r not in dist]
    if missing:
        raise TrainError(f"output population {missing[0]!r}: receives nothing from the "
                         f"inputs (no path of projections)")
    return max(dist[r] for r in cn.outputs)


def feedback_projections(net) -> list[int]:
    """The projections from a population to itself with parameters (the feedback that the
    contraction bound keeps in check)."""
    return [p for p in range(net.n_projections)
            if net.pj[p, K.PJ_PRE] == net.pj[p, K.PJ_POST]
            and net.pj[p, K.PJ_KIND] != K.PK_POOL]


def lr_at(hp: "IDEHyper", epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (1-based): ``lr * gamma ** (milestones < epoch)``."""
    return hp.lr * hp.gamma ** sum(1 for m in hp.milestones if epoch > m)


@dataclass
class IDEHyper:
    """IDE hyper-parameters: counted steps ``T`` and ``warmup`` steps per forward pass, the
    loss, SGD (``lr``, ``momentum``, ``weight_decay``, ``batch``), the epoch schedule
    (``lr`` times ``gamma`` after each of ``milestones``), the feedback bound (spectral
    norm of a self-projection <= ``feedback_bound`` x threshold; 0 switches it off), the
    adjoint solver's ``iterations`` and the clamp's ``surrogate`` derivative."""

    T: int = 5
    warmup: int = 2
    loss: str = "ce"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 128
    milestones: tuple[int, ...] = (30, 60, 90)
    gamma: float = 0.1
    feedback_bound: float = 0.5
    iterations: int = 30
    surrogate: float = 0.0

    @classmethod
    def for_network(cls, net: CompiledNetwork, **overrides) -> "IDEHyper":
        """The paper's settings, ``warmup`` the network's :func:`depth`, with ``overrides``
        applied (``None`` values are ignored); checked."""
        base = dict(PAPER)
        if overrides.get("warmup") is None:
            try:
                base["warmup"] = depth(net)
            except (CompileError, EngineError) as exc:
                raise TrainError(f"--method ide: {exc}") from None
        base.update({k: v for k, v in overrides.items() if v is not None})
        hp = cls(**base)
        hp.milestones = tuple(int(m) for m in hp.milestones)
        hp.check(net)
        return hp

    def check(self, net: CompiledNetwork | None = None) -> None:
        for name in ("T", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise TrainError(f"{OPTION[name]}: must be a positive integer (got {v!r})")
        for name in ("warmup", "iterations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise TrainError(f"{OPTION[name]}: must be a non-negative integer (got {v!r})")
        if self.loss not in ide.LOSSES:
            raise TrainError(f"--loss: must be one of {', '.join(ide.LOSSES)} "
                             f"(got {self.loss!r})")
        for name, lo, hi in (("lr", 0.0, math.inf), ("momentum", 0.0, 1.0),
                             ("weight_decay", 0.0, math.inf), ("gamma", 0.0, math.inf),
                             ("feedback_bound", 0.0, 1.0), ("surrogate", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) \
                    or not math.isfinite(v) or not lo <= v <= hi or \
                    (name in ("lr", "gamma") and v <= 0) or (name == "momentum" and v >= 1):
                rule = {"lr": "> 0", "gamma": "> 0", "momentum": "in [0, 1)",
                        "feedback_bound": "in [0, 1] (0: no bound)",
                        "surrogate": "in [0, 1]"}.get(name, ">= 0")
                raise TrainError(f"{OPTION[name]}: must be a finite number {rule} (got {v!r})")
        ms = self.milestones
        if any(isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1
               for m in ms) or list(ms) != sorted(set(ms)):
            raise TrainError(f"--lr-milestones: must be increasing positive epochs, e.g. "
                             f"30,60,90 (got {','.join(map(str, ms))})")
        if net is not None:
            try:
                ide.RateMap(net)
            except (CompileError, EngineError) as exc:
                raise TrainError(f"--method ide: {exc}") from None


OPTION = {"T": "--ide-steps", "warmup": "--ide-warmup", "batch": "--batch",
          "iterations": "--adjoint-iterations", "lr": "--lr", "momentum": "--momentum",
          "weight_decay": "--weight-decay", "gamma": "--lr-gamma",
          "feedback_bound": "--feedback-bound", "surrogate": "--surrogate"}


@dataclass
class IDEBatchStats:
    loss: float          # the batch-mean loss at the counted steps' rates (before the update)
    errors: int          # misclassified samples (argmax of the readout, before the update)
    spikes: float        # messages sent per sample in the warm-up and counted steps
    info: dict = field(default_factory=dict)   # the adjoint solver's report


class IDETrainer:
    """Holds a compiled network of IF/LIF populations and trains its weights and biases in
    place by implicit differentiation (module docstring).  Master weights, biases and
    momentum buffers are float64; after each update the weights are copied (float32) into
    the compiled network, which is what the engine runs.  Same interface as
    :class:`neuroemu.learn.eqprop.Trainer` for :func:`neuroemu.learn.train.run_epochs` and
    the checkpoint files."""

    method = "ide"
    rate_options = "--lr"

    def __init__(self, net: CompiledNetwork, hyper: IDEHyper, *, seed: int = 0,
                 threads: int = 1, engine_name: str = "lockstep"):
        hyper.check(net)
        self.net = net
        self.hyper = hyper
        self.threads = int(threads)
        self.engine_name = engine_name
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        P = net.n_pops
        self.inputs = set(net.inputs)
        self.trained = [p for p in range(net.n_projections)
                        if net.pj[p, K.PJ_KIND] != K.PK_POOL]
        self.W = [net.weights(p).astype(np.float64) for p in range(net.n_projections)]
        self.b = [net.biases(r).astype(np.float64).copy() for r in range(P)]
        self.mW = [np.zeros_like(w) for w in self.W]
        self.mb = [np.zeros_like(b) for b in self.b]
        self.feedback = feedback_projections(net)
        self.power = {}
        for p in self.feedback:
            n = int(net.pj[p, K.PJ_NPRE])
            v = self.rng.standard_normal(n)
            self.power[p] = v / np.linalg.norm(v)
        self.lr = hyper.lr
        self.epoch = 1
        self._batches = 0
        self._sess = None
        self.norms = {}             # projection -> last estimated spectral norm (before scaling)
        self.constrain(INIT_POWER_ITERATIONS)

    # ------------------------------------------------------------------ weights
    def set_params(self, W, b=None) -> None:
        for p, w in enumerate(W):
            self.W[p] = np.array(w, dtype=np.float64).reshape(self.W[p].shape)
            self.net.set_weights(p, self.W[p].astype(np.float32))
        if b is not None:
            for r, bb in enumerate(b):
                self.b[r] = np.array(bb, dtype=np.float64).reshape(self.b[r].shape)
                self.net.biases(r)[:] = self.b[r]
        self._requantise()

    def _requantise(self) -> None:
        """Fixed point (docs/arithmetic.md): the forward runs with the float master weights
        on the network's grid; the gradient is taken with the masters."""
        if self.net.fixed is not None:
            self.net.set_fixed_weights(self.W)

    def bound(self, p: int) -> float:
        """The spectral-norm bound of feedback projection ``p``: ``feedback_bound`` times
        the receiving population's threshold."""
        r = int(self.net.pj[p, K.PJ_POST])
        return self.hyper.feedback_bound * float(self.net.lp[r, K.LP_THR])

    def constrain(self, iterations: int = POWER_ITERATIONS) -> None:
        """Scale every feedback projection down to its :meth:`bound` (power iteration from
        the stored vector, ``iterations`` times; the vector is kept for the next call)."""
        if self.hyper.feedback_bound <= 0:
            return
        for p in self.feedback:
            op = ide._Op(self.net, p, self.W[p])
            v = self.power[p]
            sigma = 0.0
            for k in range(max(iterations, POWER_MAX_ITERATIONS)):
                prev = sigma
                u = op.forward(v[None, :])[0]           # v M
                nu = np.linalg.norm(u)
                if nu == 0.0:
                    break
                u /= nu
                w = op.backward(u[None, :])[0]          # u M^T
                sigma = float(np.linalg.norm(w))
                if sigma == 0.0:
                    break
                v = w / sigma
                if k + 1 >= iterations and abs(sigma - prev) <= POWER_TOL * sigma:
                    break
            self.power[p] = v
            self.norms[p] = sigma
            lim = self.bound(p)
            if sigma > lim:
                self.W[p] *= lim / sigma
                self.net.set_weights(p, self.W[p].astype(np.float32))
        self._requantise()

    def start_epoch(self, epoch: int) -> None:
        """Called by the epoch loop before each epoch: the learning rate of the schedule."""
        self.epoch = int(epoch)
        self.lr = lr_at(self.hyper, self.epoch)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_shapes(self) -> dict:
        shapes = {f"mW{p}": self.W[p].shape for p in self.trained}
        shapes.update({f"mb{r}": self.b[r].shape for r in range(len(self.b))})
        shapes.update({f"pv{p}": v.shape for p, v in self.power.items()})
        return shapes

    def checkpoint_arrays(self) -> dict:
        """The momentum buffers and power-iteration vectors (weights, biases and the RNG are
        saved by :func:`neuroemu.learn.eqprop.save_checkpoint` as for EP)."""
        out = {f"mW{p}": self.mW[p] for p in self.trained}
        out.update({f"mb{r}": b for r, b in enumerate(self.mb)})
        out.update({f"pv{p}": v for p, v in self.power.items()})
        return out

    def restore_arrays(self, arrays: dict) -> None:
        for key, arr in arrays.items():
            k = int(key[2:])
            if key.startswith("mW"):
                self.mW[k] = arr.copy()
            elif key.startswith("mb"):
                self.mb[k] = arr.copy()
            else:
                self.power[k] = arr.copy()

    # ------------------------------------------------------------------ training
    def _session(self, x, sample_ids=None):
        sess = self._sess
        if sess is not None and sess.batch == len(x):
            sess.reset(x, sample_ids)
            return sess
        self._sess = open_session(self.net, x, engine=self.engine_name, threads=self.threads,
                                  seed=self.seed, sample_ids=sample_ids)
        return self._sess

    def forward(self, x, sample_ids=None):
        """Warm-up then ``T`` counted steps on ``x``; returns (rates over the counted steps
        per population -- inputs: ``clip(x, 0, 1)`` --, the outputs' readout over them
        (B, n_out), messages sent per sample (B,))."""
        hp, net = self.hyper, self.net
        x = np.ascontiguousarray(x, dtype=np.float64)
        sess = self._session(x, sample_ids)
        spikes = np.zeros(len(x))
        if hp.warmup:
            spikes += sess.run(hp.warmup).counters["spikes"].sum(axis=1)
        t1 = sess.t
        before = [None if r in self.inputs else np.rint(sess.state(r) * t1)
                  for r in range(net.n_pops)]
        start = window_start(sess)
        spikes += sess.run(hp.T).counters["spikes"].sum(axis=1)
        t2 = sess.t
        rates = []
        for r in range(net.n_pops):
            s = sess.state(r)
            rates.append(np.clip(s, 0.0, 1.0) if r in self.inputs
                         else (np.rint(s * t2) - before[r]) / hp.T)
        return rates, readout(sess, start), spikes

    def gradients(self, x, y, rates):
        """:func:`neuroemu.learn.ide.ide_gradients` at ``rates`` with the master weights."""
        hp = self.hyper
        return ide.ide_gradients(self.net, x, y, rates=rates, loss=hp.loss,
                                 iterations=hp.iterations, surrogate=hp.surrogate,
                                 weights=self.W, biases=[None if r in self.inputs else b
                                                         for r, b in enumerate(self.b)])

    def apply_gradients(self, dW, db) -> None:
        """One SGD step with momentum and weight decay (PyTorch's order), then the
        contraction of the feedback projections, and the float32 weights into the network."""
        hp, lr = self.hyper, self.lr
        for p in self.trained:
            if dW[p] is None:
                continue
            g = dW[p] + hp.weight_decay * self.W[p]
            self.mW[p] = hp.momentum * self.mW[p] + g
            self.W[p] -= lr * self.mW[p]
            self.net.set_weights(p, self.W[p].astype(np.float32))
        for r, d in enumerate(db):
            if d is None or r in self.inputs:
                continue
            g = d + hp.weight_decay * self.b[r]
            self.mb[r] = hp.momentum * self.mb[r] + g
            self.b[r] -= lr * self.mb[r]
            self.net.biases(r)[:] = self.b[r]
        self.constrain()
        self._requantise()

    def train_batch(self, x, y) -> IDEBatchStats:
        """Forward (engine), gradient (implicit differentiation), update; the loss and
        errors are those of the forward pass, before the update."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        rates, out, spikes = self.forward(x, np.arange(len(x)) + self._batches * len(x))
        g = self.gradients(x, y, rates)
        self.apply_gradients(g.dW, g.db)
        self._batches += 1
        return IDEBatchStats(loss=g.loss, errors=int((out.argmax(1) != y.argmax(1)).sum()),
                             spikes=float(spikes.mean()), info=g.info)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, images, labels, batch: int = 100, progress=None):
        """Classification error (fraction) and messages per sample, exactly as
        ``neuroemu eval NET --steps T --warmup K`` (:func:`classify`)."""
        hp = self.hyper
        c = classify(self.net, images, hp.T, batch=batch, threads=self.threads,
                     progress=progress, warmup=hp.warmup)
        n = max(len(images), 1)
        wrong = int((c.predictions != np.asarray(labels)).sum())
        return wrong / n, float(c.counters["spikes"].sum()) / n
