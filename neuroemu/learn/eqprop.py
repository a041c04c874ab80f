"""Equilibrium Propagation training (docs/model.md section 4) on top of the engine.

Per minibatch: a free phase of ``n_free`` steps from the zero state (``s-``), then -- without
resetting anything -- a nudged phase of ``n_nudged`` steps with ``beta' = +-beta`` (the sign
drawn at random per minibatch) towards the one-hot targets (``s+``).  The weights then move
by the first-order or the full EP rule computed from the end-of-phase *continuous states*
(``s_0 = x``), divided by the signed ``beta'``.  The dynamics are whatever the netlist's
neurons are: real-valued messages for the continuous network, exact spikes (sigma-delta,
predictive coding, OSA) for the binary one -- every step runs in the lockstep engine's
numba kernels; nothing here approximates spikes by rates.

Public API::

    trainer = Trainer(compiled, Hyper.for_network(compiled), seed=0, threads=1)
    stats = trainer.train_batch(x, y)          # one EP update; returns a BatchStats
    err, spikes = trainer.evaluate(images, labels)
    grads = ep_update(s_free, s_nudged, beta_signed, rule)   # [(dW_l, db_{l+1}), ...]

CLI: ``neuroemu train NETLIST --dataset mnist --epochs N --out FILE`` (see
:mod:`neuroemu.cli.train`; the epoch loop is :mod:`neuroemu.learn.train`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..describe import save as save_description
from ..describe.tomlwriter import _toml_tables as toml_tables, toml_value
from ..engines import CompiledNetwork
from ..engines import kernels as K
from ..engines import session as open_session
from ..errors import TrainError
from ..files import check_target, replace_text_with_arrays, replacing, save_npy
from .graph_ep import graph_update

RULES = ("first-order", "full")
NUDGES = ("random-sign", "symmetric")
GRAPH_RATE = 0.05   # every projection's rate on a graph network unless given (model.md 7.4)

# The paper's hyper-parameters (docs/model.md section 4 table), chosen by network kind.
PRESETS = {
    "continuous": dict(beta=0.5, n_free=20, n_nudged=4, rates=(0.1, 0.05)),
    "binary": dict(beta=0.5, n_free=100, n_nudged=50, rates=(0.1, 0.05)),
    "continuous-deep": dict(beta=1.0, n_free=50, n_nudged=8,
                            rates=(0.128, 0.032, 0.008, 0.002)),
    "binary-deep": dict(beta=1.0, n_free=100, n_nudged=50,
                        rates=(0.128, 0.032, 0.008, 0.002)),
}


@dataclass
class Hyper:
    """EP hyper-parameters: nudge strength, phase lengths, per-projection rates, rule, batch,
    and an epoch schedule: every rate times ``gamma`` after each epoch in ``milestones``
    (none by default: constant rates, the paper's)."""

    beta: float = 0.5
    n_free: int = 100
    n_nudged: int = 50
    rates: tuple[float, ...] = (0.1, 0.05)
    rule: str = "first-order"
    batch: int = 20
    nudge: str = "random-sign"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def rate_scale(self, epoch: int) -> float:
        """The factor on every rate in epoch ``epoch`` (1-based): ``gamma ** (milestones
        passed)``; exactly 1 without milestones."""
        return self.gamma ** sum(1 for m in self.milestones if epoch > m)

    @staticmethod
    def preset_name(net: CompiledNetwork) -> str:
        kind = "binary" if net.binary else "continuous"
        return kind + ("-deep" if net.n_layers > 3 and not net.graph else "")

    @classmethod
    def for_network(cls, net: CompiledNetwork, **overrides) -> "Hyper":
        """The paper's settings for this kind of network, with ``overrides`` applied
        (``None`` values are ignored)."""
        base = dict(PRESETS[cls.preset_name(net)])
        if net.graph:
            base["rates"] = (GRAPH_RATE,) * net.n_projections
        base.update({k: v for k, v in overrides.items() if v is not None})
        hp = cls(**base)
        hp.rates = tuple(float(r) for r in hp.rates)
        hp.check(net)
        return hp

    def check(self, net: CompiledNetwork) -> None:
        n_proj = net.n_projections
        if len(self.rates) != n_proj:
            shape = ", ".join(p.label for p in net.netlist.projections) if net.graph else \
                "-".join(map(str, net.sizes))
            raise TrainError(f"rates: need one learning rate per projection ({n_proj} for "
                             f"{shape}) (got {len(self.rates)}: "
                             f"{','.join(f'{r:g}' for r in self.rates)})")
        for r in self.rates:
            if not math.isfinite(r) or r < 0:
                raise TrainError(f"rates: must be finite and >= 0 (got {r})")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise TrainError(f"beta: must be a positive number (got {self.beta})")
        for name in ("n_free", "n_nudged", "batch"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise TrainError(f"{name.replace('n_', 'steps_')}: must be a positive "
                                 f"integer (got {v!r})")
        if self.rule not in RULES:
            raise TrainError(f"rule: must be one of {', '.join(RULES)} (got {self.rule!r})")
        if self.nudge not in NUDGES:
            raise TrainError(f"nudge: must be one of {', '.join(NUDGES)} (got {self.nudge!r})")
        ms = tuple(self.milestones)
        if any(isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1
               for m in ms) or list(ms) != sorted(set(ms)):
            raise TrainError(f"milestones: must be increasing epochs >= 1 (got {list(ms)})")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise TrainError(f"gamma: must be a positive number (got {self.gamma})")


def glorot_weights(sizes, seed: int) -> list[np.ndarray]:
    """Glorot-uniform ``U(-a, a)``, ``a = sqrt(6 / (n_in + n_out))``, one matrix per projection."""
    rng = np.random.default_rng(seed)
    out = []
    for n0, n1 in zip(sizes[:-1], sizes[1:]):
        a = math.sqrt(6.0 / (n0 + n1))
        out.append(rng.uniform(-a, a, size=(n0, n1)))
    return out


def _f64(z):
    return np.ascontiguousarray(z, dtype=np.float64)


def _ep_terms(a0, a1, b0, b1, rule: str):
    """(A, B, C, D) with ``A^T B + C^T D`` = the rule's sum over the batch (float64,
    C-contiguous): free states ``a``, nudged states ``b`` of layers l and l+1."""
    if rule == "full":
        r = lambda s: _f64(np.clip(s, 0.0, 1.0))  # noqa: E731
        return r(b0), r(b1), -r(a0), r(a1)
    return _f64(a0), _f64(b1 - a1), _f64(b0 - a0), _f64(a1)


def ep_update(s_free, s_nudged, beta_signed: float, rule: str = "first-order"):
    """The EP update direction (without learning rates) from end-of-phase states.

    ``s_free`` / ``s_nudged``: lists of (B, n_l) continuous states, layer 0 = the input x.
    Returns ``[(dW_l, db_{l+1}) for each projection l]`` with (model.md section 4)

    - first-order: ``dW_l = (1/beta') (1/B) [s-_l^T (s+_{l+1} - s-_{l+1}) + (s+_l - s-_l)^T s-_{l+1}]``
    - full:        ``dW_l = (1/beta') (1/B) [rho(s+_l)^T rho(s+_{l+1}) - rho(s-_l)^T rho(s-_{l+1})]``
    - ``db_{l+1} = (1/beta') mean_B (s+_{l+1} - s-_{l+1})``.

    For small beta this approximates minus the gradient of the mean cost at the fixed point.
    """
    B = s_free[0].shape[0]
    out = []
    for l in range(len(s_free) - 1):
        a0, a1 = s_free[l], s_free[l + 1]
        b0, b1 = s_nudged[l], s_nudged[l + 1]
        dw = np.empty((a0.shape[1], a1.shape[1]))
        K.ep_outer(*_ep_terms(a0, a1, b0, b1, rule), dw)
        dw /= beta_signed * B
        db = (b1 - a1).mean(axis=0) / beta_signed
        out.append((dw, db))
    return out


@dataclass
class BatchStats:
    loss: float          # mean over the batch of ||y - s_L||^2 at the end of the free phase
    errors: int          # misclassified samples (argmax of the free-phase output)
    spikes: float        # messages sent per sample during the free phase (all layers)
    beta: float          # the signed beta' used


class Trainer:
    """Holds a compiled network and trains its weights in place with EP.

    Master weights are float64; after each update they are copied (as float32) into the
    compiled network, which is what the engine runs.
    """

    def __init__(self, net: CompiledNetwork, hyper: Hyper, *, seed: int = 0, threads: int = 1,
                 engine_name: str = "lockstep"):
        hyper.check(net)
        self.net = net
        self.hyper = hyper
        self.threads = int(threads)
        self.engine_name = engine_name
        self.rng = np.random.default_rng(seed)
        self.L = net.n_layers - 1
        self.W = [net.weights(p).astype(np.float64) for p in range(net.n_projections)]
        self.b = [net.biases(l).astype(np.float64).copy() for l in range(net.n_layers)]
        self.seed = int(seed)
        self.rates = tuple(hyper.rates)     # this epoch's rates (hyper.rates x the schedule)
        self._batches = 0
        self._sess = None           # reused from minibatch to minibatch (same batch size)

    # ------------------------------------------------------------------ weights
    def set_params(self, W, b=None) -> None:
        for l, w in enumerate(W):
            self.W[l] = np.array(w, dtype=np.float64).reshape(self.W[l].shape)
            self.net.set_weights(l, self.W[l].astype(np.float32))
        if b is not None:
            for l, bb in enumerate(b):
                self.b[l] = np.array(bb, dtype=np.float64)
                self.net.biases(l)[:] = self.b[l]
        self._requantise()

    def _requantise(self) -> None:
        """Fixed point (docs/arithmetic.md): the float master weights stay here, the network
        runs every phase with them on its grid (quantisation-aware training)."""
        if self.net.fixed is not None:
            self.net.set_fixed_weights(self.W)

    def _session(self, x, sample_ids=None):
        """A session clamped to ``x``: the previous one reset in place if the batch size
        matches (zeroing buffers is cheaper than allocating them), else a new one."""
        sess = self._sess
        if sess is not None and sess.batch == len(x):
            sess.reset(x, sample_ids)
            return sess
        self._sess = open_session(self.net, x, engine=self.engine_name,
                                    threads=self.threads, seed=self.seed,
                                    sample_ids=sample_ids)
        return self._sess

    def _states(self, sess, x):
        if self.net.graph:
            return [sess.state(p) for p in range(self.net.n_pops)]
        return [x] + [sess.state(l) for l in range(1, self.L + 1)]

    def _output(self, states):
        """The output populations' states side by side (on a chain: the last layer's)."""
        outs = self.net.outputs
        return states[outs[0]] if len(outs) == 1 else \
            np.concatenate([states[p] for p in outs], axis=1)

    # ------------------------------------------------------------------ training
    def advance(self, sess, steps: int, beta: float = 0.0, target=None) -> np.ndarray:
        """Advance a session ``steps`` steps (nothing recorded); returns the spikes per
        sample sent meanwhile."""
        ph = sess.run(steps, beta=beta, target=target)
        return ph.counters["spikes"].sum(axis=1)

    def phases(self, x, y, beta_signed: float):
        """Free then nudged phase on one batch; returns (s_free, s_nudged, free-phase
        spikes per sample)."""
        hp = self.hyper
        x = np.ascontiguousarray(x, dtype=np.float64)
        sess = self._session(x, np.arange(len(x)) + self._batches * len(x))
        spikes = self.advance(sess, hp.n_free)
        s_free = self._states(sess, x)
        self.advance(sess, hp.n_nudged, beta_signed, y)
        s_nudged = self._states(sess, x)
        return s_free, s_nudged, spikes

    def symmetric_phases(self, x, y):
        """Free phase, then from its end state one phase nudged with +beta and one with
        -beta; returns (s_free, s_plus, s_minus, free-phase spikes per sample)."""
        hp = self.hyper
        x = np.ascontiguousarray(x, dtype=np.float64)
        sess = self._session(x, np.arange(len(x)) + self._batches * len(x))
        if not hasattr(sess, "snapshot"):
            raise TrainError(f"nudge: symmetric nudging restarts from the free state, which "
                             f"the {self.engine_name} engine cannot do (use the lockstep engine)")
        spikes = self.advance(sess, hp.n_free)
        s_free = self._states(sess, x)
        snap = sess.snapshot()
        self.advance(sess, hp.n_nudged, hp.beta, y)
        s_plus = self._states(sess, x)
        sess.restore(snap)
        self.advance(sess, hp.n_nudged, -hp.beta, y)
        s_minus = self._states(sess, x)
        return s_free, s_plus, s_minus, spikes

    def train_batch(self, x, y) -> BatchStats:
        """One EP step: free phase, nudged phase(s), weight update.  One-sided nudging
        (the paper's) draws the sign of beta per minibatch; symmetric nudging runs both."""
        hp = self.hyper
        if hp.nudge == "symmetric":
            beta_signed = hp.beta
            s_free, s_plus, s_minus, spikes = self.symmetric_phases(x, y)
            self.apply_graph_update(*graph_update(self.net, s_free, s_minus, s_plus,
                                                  2.0 * hp.beta, hp.rule))
        else:
            beta_signed = hp.beta if self.rng.random() < 0.5 else -hp.beta
            s_free, s_nudged, spikes = self.phases(x, y, beta_signed)
            if self.net.graph:
                self.apply_graph_update(*graph_update(self.net, s_free, s_free, s_nudged,
                                                      beta_signed, hp.rule))
            else:
                self.apply_update(s_free, s_nudged, beta_signed)
        self._batches += 1
        out = self._output(s_free)
        y = np.asarray(y)
        return BatchStats(loss=float(((y - out) ** 2).sum(axis=1).mean()),
                          errors=int((out.argmax(1) != y.argmax(1)).sum()),
                          spikes=float(spikes.mean()),
                          beta=beta_signed)

    def apply_update(self, s_free, s_nudged, beta_signed: float) -> None:
        """``W_l += rate_l * dW_l`` and ``b += rate_l * db`` with :func:`ep_update`'s
        direction, bit for bit, and the new float32 weights into the compiled network.

        The weight part runs in one fused kernel per projection (threaded when the
        trainer is), which skips the rows of silent input pixels instead of building
        the (n_l, n_l+1) update matrix."""
        hp, net = self.hyper, self.net
        step = K.ep_step_parallel if self.threads > 1 else K.ep_step
        B = s_free[0].shape[0]
        for l in range(self.L):
            a1, b1 = s_free[l + 1], s_nudged[l + 1]
            terms = _ep_terms(s_free[l], a1, s_nudged[l], b1, hp.rule)
            with K.threads(self.threads, chunk=0):      # rows cost alike: static blocks
                step(*terms, beta_signed * B, self.rates[l], self.W[l], net.wf,
                     int(net.wf_off[l]), net.wb, int(net.wb_off[l]))
            self.b[l + 1] += self.rates[l] * ((b1 - a1).mean(axis=0) / beta_signed)
            net.biases(l + 1)[:] = self.b[l + 1]
        self._requantise()

    def start_epoch(self, epoch: int) -> None:
        """Called by the epoch loop before each epoch: this epoch's rates."""
        scale = self.hyper.rate_scale(epoch)
        self.rates = tuple(r * scale for r in self.hyper.rates) if scale != 1.0 \
            else tuple(self.hyper.rates)

    def bias_rate(self, r: int) -> float | None:
        """The learning rate of population r's biases: that of the first projection
        delivering forwards into it (on a chain, projection r-1), None if there is none."""
        for p in range(self.net.n_projections):
            if self.net.pj[p, K.PJ_POST] == r:
                return self.rates[p]
        return None

    def apply_graph_update(self, dW, db) -> None:
        """``W_p += rate_p * dW_p`` for the projections EP trains, ``b_r += rate * db_r``
        (:meth:`bias_rate`), and the new float32 weights into the compiled network."""
        net = self.net
        for p, d in enumerate(dW):
            if d is None:
                continue
            self.W[p] += self.rates[p] * d
            net.set_weights(p, self.W[p].astype(np.float32))
        for r, d in enumerate(db):
            rate = None if d is None else self.bias_rate(r)
            if rate is None:
                continue
            self.b[r] += rate * d
            net.biases(r)[:] = self.b[r]
        self._requantise()

    # ------------------------------------------------------------------ evaluation
    def predict(self, x):
        """Free phase of ``n_free`` steps from zero; returns (argmax, output states, spikes
        per sample (B,) summed over all layers)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        sess = self._session(x)
        spikes = self.advance(sess, self.hyper.n_free)
        out = self._output([None if p not in self.net.outputs else sess.state(p)
                            for p in range(self.net.n_pops)])
        return out.argmax(1), out, spikes

    def evaluate(self, images, labels, batch: int = 100, progress=None):
        """Classification error (fraction) and mean messages (spikes) per classified sample."""
        wrong, spikes = 0, 0.0
        for i in range(0, len(images), batch):
            pred, _, spk = self.predict(images[i:i + batch])
            wrong += int((pred != labels[i:i + batch]).sum())
            spikes += float(spk.sum())
            if progress is not None:
                progress.update(len(pred))
        n = max(len(images), 1)
        return wrong / n, spikes / n


# ---------------------------------------------------------------------------- files

def save_netlist(net: CompiledNetwork, path, *, name: str | None = None,
                 description: str = "", provenance: dict | None = None) -> Path:
    """Write the compiled network's current weights and biases as a netlist.

    ``.h5``: through :func:`neuroemu.describe.save` (self-contained).  Otherwise a TOML file
    with every weight matrix and bias vector in a float32/float64 ``.npy`` file beside it
    (``{ file = "..." }``, named by content: :func:`neuroemu.files.save_npy`), which
    :func:`neuroemu.describe.load` reads back exactly.

    Atomic in both forms (:mod:`neuroemu.files`): the ``.npy`` files are written first under
    new names and the TOML replaced last, so a crash during an epoch's save leaves the previous
    epoch's netlist complete (never weights and biases of different epochs).  Replaces an
    existing regular file (``neuroemu train`` checks ``--force`` first).
    """
    path = check_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    nl = net.netlist
    name = name or f"{nl.name}-trained"
    if net.graph:       # through the netlist writers of format 2 (TOML: .npy files beside)
        import dataclasses
        renamed = dataclasses.replace(net.to_netlist(), name=name,
                                      description=description or name)
        return save_description(renamed, path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        import dataclasses
        renamed = dataclasses.replace(nl, name=name, description=description or name)
        return save_description(
            renamed, path,
            weights=[net.weights(l).astype(np.float64) for l in range(net.n_layers - 1)],
            biases=[None] + [net.biases(l).copy() for l in range(1, net.n_layers)])
    stem, written = path.stem, []
    lines = [f"# {description or name}", "# written by neuroemu train (docs/training.md)"]
    for k, v in (provenance or {}).items():
        lines.append(f"# {k}: {v}")
    lines += ["", "[network]", f"name = {toml_value(name)}", f"seed = {nl.seed}",
              f"description = {toml_value(description or name)}", ""]
    for l, pop in enumerate(nl.populations):
        lines += ["[[population]]", f"name = {toml_value(pop.name)}", f"size = {pop.size}",
                  f"role = {toml_value(pop.role)}",
                  f"neuron = {toml_value(pop.neuron.as_dict())}"]
        if l > 0:
            fname = save_npy(path.parent, stem, f"{pop.name}.bias",
                                   np.asarray(net.biases(l), dtype=np.float64))
            written.append(fname)
            lines.append(f"bias = {{ file = {toml_value(fname)} }}")
        lines.append("")
    for l, pr in enumerate(nl.projections):
        fname = save_npy(path.parent, stem, f"{pr.pre}-{pr.post}.weights",
                               np.ascontiguousarray(net.weights(l), dtype=np.float32))
        written.append(fname)
        lines += ["[[projection]]", f"pre = {toml_value(pr.pre)}",
                  f"post = {toml_value(pr.post)}",
                  f"weights = {{ file = {toml_value(fname)} }}", ""]
    if nl.hardware:       # the chip it runs on, fixed-point arithmetic included
        lines += toml_tables(["hardware"], nl.hardware)
    return replace_text_with_arrays(path, "\n".join(lines), written)


def upgrade_history(history: list) -> list:
    """Rename, in place, the running error of epoch records written before it had its own
    name (``train_error`` -> ``running_error``: the free-phase prediction of each minibatch
    before its update, not the paper's training error); returns ``history``.  New records
    never hold a ``train_error`` key, so the old key is unambiguous."""
    for rec in history:
        if isinstance(rec, dict) and "train_error" in rec and "running_error" not in rec:
            rec["running_error"] = rec.pop("train_error")
    return history


def save_checkpoint(path, trainer: Trainer, epoch: int, history: list, settings: dict) -> None:
    """Write the training state (weights, biases, RNG, counters, history) to ``path``
    atomically (:func:`neuroemu.files.replacing`)."""
    path = Path(path)
    arrays = {f"W{l}": w for l, w in enumerate(trainer.W)}
    arrays.update({f"b{l}": b for l, b in enumerate(trainer.b)})
    meta = {"epoch": epoch, "history": history, "settings": settings,
            "hyper": asdict(trainer.hyper), "batches": trainer._batches,
            "rng": trainer.rng.bit_generator.state}
    method = getattr(trainer, "method", "ep")
    if method != "ep":      # EP checkpoints stay as they were (no key, no extra arrays)
        meta["method"] = method
        arrays.update(trainer.checkpoint_arrays())
    with replacing(path) as tmp:      # atomic: the previous checkpoint or this one
        with open(tmp, "xb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path, trainer: Trainer) -> tuple[int, list, dict]:
    """Restore weights, biases, RNG and counters; returns (epochs done, history, settings).
    A history written before the running error had its own name is renamed on the way in
    (:func:`upgrade_history`).

    One error boundary: a missing, damaged, truncated, foreign or crafted file is a one-line
    :class:`TrainError` naming the file and the field.  Every array's header is checked
    (dtype, the netlist's shape) before it is read, then its values (finite, within the
    engine's bounds); the metadata's types and ranges are checked before anything of the
    trainer changes."""
    import struct
    import zipfile
    import zlib

    from ..describe.arrays import open_regular
    path = Path(path)

    def bad(field, rule):
        raise TrainError(f"{path}: {field}: {rule}")

    try:
        with open_regular(path, TrainError, "checkpoint") as fp, zipfile.ZipFile(fp) as z:
            names = set(z.namelist())
            meta = _checkpoint_meta(z, names, bad)
            method = getattr(trainer, "method", "ep")
            if meta.get("method", "ep") != method:
                bad("meta.method", f"the checkpoint was written by --method "
                                   f"{meta.get('method', 'ep')!r:.20}, this run trains with "
                                   f"--method {method}")
            W = [_checkpoint_array(z, names, f"W{l}", trainer.W[l].shape, bad)
                 for l in range(len(trainer.W))]
            b = [_checkpoint_array(z, names, f"b{l}", trainer.b[l].shape, bad)
                 for l in range(len(trainer.b))]
            extra = {k: _checkpoint_array(z, names, k, shape, bad)
                     for k, shape in trainer.checkpoint_shapes().items()} \
                if method != "ep" else {}
    except TrainError:
        raise
    except (OSError, EOFError, KeyError, ValueError, NotImplementedError, RuntimeError,
            struct.error, zlib.error, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        # what zipfile and numpy raise for damaged archives: bad CRCs, truncated headers,
        # unknown versions or compression methods, encrypted members
        raise TrainError(f"{path}: not a readable neuroemu training checkpoint ({exc})") from None
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = meta["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        bad("meta.rng", f"is not the state of a {type(rng.bit_generator).__name__} generator "
                        f"({exc})")
    trainer.set_params(W, b)
    if extra:
        trainer.restore_arrays(extra)
    trainer.rng.bit_generator.state = meta["rng"]
    trainer._batches = meta["batches"]
    return meta["epoch"], upgrade_history(meta["history"]), meta["settings"]


_CKPT_BYTES = 1 << 20   # the metadata member is JSON text: history, settings, RNG state


def _checkpoint_meta(z, names, bad) -> dict:
    if "meta.npy" not in names:
        bad("meta", "missing (not a neuroemu training checkpoint)")
    if z.getinfo("meta.npy").file_size > _CKPT_BYTES:
        bad("meta", f"larger than {_CKPT_BYTES} bytes")
    with z.open("meta.npy") as f:
        raw = np.lib.format.read_array(f, allow_pickle=False)
    if raw.dtype.kind != "U" or raw.shape != ():
        bad("meta", f"must be one JSON text (got {raw.dtype} {raw.shape})")
    try:
        meta = json.loads(str(raw))
    except ValueError as exc:
        bad("meta", f"is not JSON ({exc})")
    if not isinstance(meta, dict):
        bad("meta", "must be a JSON object")
    for key, kind in (("epoch", int), ("batches", int), ("history", list), ("rng", dict)):
        v = meta.get(key)
        if not isinstance(v, kind) or isinstance(v, bool):
            bad(f"meta.{key}", f"must be {'an integer' if kind is int else 'a JSON ' + kind.__name__}"
                               f" (got {v!r:.60})")
    if meta["epoch"] < 0 or meta["batches"] < 0:
        bad("meta.epoch" if meta["epoch"] < 0 else "meta.batches",
            f"must be >= 0 (got {min(meta['epoch'], meta['batches'])})")
    for i, rec in enumerate(meta["history"]):
        if not isinstance(rec, dict):
            bad(f"meta.history[{i}]", f"must be a JSON object (got {rec!r:.60})")
    settings = meta.get("settings", {})
    if not isinstance(settings, dict):
        bad("meta.settings", f"must be a JSON object (got {settings!r:.60})")
    meta["settings"] = settings
    return meta


def _checkpoint_array(z, names, key, shape, bad) -> np.ndarray:
    """One array of a checkpoint: its header (float dtype, the netlist's shape) first, then
    its values (finite, within the engine's bound)."""
    from ..describe.arrays import npy_header
    from ..describe.neurons import MAX_VALUE
    if f"{key}.npy" not in names:
        bad(key, "missing")
    with z.open(f"{key}.npy") as f:
        dims, fortran, dtype = npy_header(f, f"{z.filename or 'checkpoint'}:{key}", TrainError)
        if dtype.kind != "f" or tuple(dims) != tuple(shape):
            bad(key, f"must be floats of shape {tuple(shape)}, the netlist's (got {dtype} "
                     f"{tuple(dims)})")
    with z.open(f"{key}.npy") as f:
        arr = np.lib.format.read_array(f, allow_pickle=False)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.abs(arr).max(initial=0.0) > MAX_VALUE:
        idx = tuple(int(k) for k in np.argwhere(~np.isfinite(arr) | (np.abs(arr) > MAX_VALUE))[0])
        bad(f"{key}{list(idx)}", f"must be finite and within +-{MAX_VALUE:g} (got {arr[idx]})")
    return arr
