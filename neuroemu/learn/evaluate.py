"""Classifying a dataset with a network: error, spikes and synaptic events per sample.

One procedure, the one training validates with and the demo uses: each sample runs a free
phase of ``n_free`` steps from the zero state (the paper's setting for this kind of
network, ``Hyper.for_network(net).n_free``, unless ``steps`` says otherwise) in the
lockstep engine, seeded with the netlist's seed; the prediction is the argmax of the output
populations' *readout* at the end (:func:`readout`): their states, except that
integrate-and-fire outputs (model ``if``, or ``lif`` with leak 1, reset by subtraction) are
read by their mean drive ``z = (th * count + V(t) - V(0)) / (t th)``, exact from the spike
count and the membrane (docs/model.md 8.3): their rates are quantised to multiples of 1/t and
tie at small t; ``z`` orders the neurons as their counts do and breaks the ties.
``warmup`` runs that many steps first and reads over the steps after them only (feedback
networks trained at their equilibrium, docs/training.md).  Nothing is approximated: the
counters are the kernels' exact integers (they count the warm-up steps too).

Usage::

    from neuroemu.learn.evaluate import evaluate
    res = evaluate(net, images, labels)            # net: Netlist or CompiledNetwork
    res.error, res.spikes_per_sample, res.spikes_per_population["hidden"]
    res.to_dict()                                  # JSON-ready

CLI: ``neuroemu eval NETLIST --dataset mnist`` (:mod:`neuroemu.cli.eval`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from ..engines import as_compiled, check_input
from ..engines import kernels as K
from ..engines import session as open_session
from ..errors import EngineError
from ..energy.ann import events_per_weight
from .eqprop import PRESETS, Hyper

__all__ = ["EvalResult", "evaluate", "score", "classify", "default_steps", "error_curve",
           "readout", "window_start", "if_outputs"]


def default_steps(net) -> int:
    """The free-phase length training uses for this kind of network
    (``Hyper.for_network(net).n_free``: 100 for spiking networks, 20 or 50 for continuous)."""
    return int(PRESETS[Hyper.preset_name(as_compiled(net))]["n_free"])


def check_labels(labels, n: int) -> np.ndarray:
    """``labels`` as an array of ``n`` integers, one per image, or a one-line EngineError."""
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n or (y.size and y.dtype.kind not in "iu"):
        raise EngineError(f"labels: must be {n} integers, one per image (got {y.dtype} "
                          f"shape {y.shape})")
    return y


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise EngineError(f"{name}: must be a non-negative integer (got {value!r})")
    return int(value)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise EngineError(f"{name}: must be a positive integer (got {value!r})")
    return int(value)


@dataclass
class Classified:
    """What :func:`classify` returns, one row per sample."""

    predictions: np.ndarray     # int64 (n,): argmax of the outputs' readout
    outputs: np.ndarray         # float64 (n, n_out): the readout (:func:`readout`) at the end
    counters: dict              # the session counters per sample, e.g. spikes (n, layers)


def projection_parts(cn) -> list[tuple[str, str | None]]:
    """(forward, backward) names of each projection's two directions, as the energy reports
    name them: ``pre->post`` and ``post->pre`` (``NAME`` and ``NAME (backward)`` where that
    would be ambiguous); backward None for a graph's projection that never delivers
    backwards (one-way, or out of a clamped input).  A chain lists both directions of every
    projection, as it always has."""
    from ..energy.graph import part_labels
    from ..engines import kernels as K
    projs = cn.netlist.projections
    ends = [(cn.names.index(pr.pre), cn.names.index(pr.post)) for pr in projs]
    parts = part_labels([pr.label for pr in projs], ends, cn.names)
    return [(f, b if (not cn.graph or cn.pj[p, K.PJ_BWD]) else None)
            for p, (f, b) in enumerate(parts)]


def output_states(sess) -> np.ndarray:
    """The output populations' states side by side, (B, n_out) (on a chain: the last
    layer's); the prediction is their argmax."""
    outs = sess.net.outputs
    return sess.state(outs[0]) if len(outs) == 1 else \
        np.concatenate([sess.state(p) for p in outs], axis=1)


def if_outputs(net) -> bool:
    """True if every output population is integrate-and-fire without leak (model ``if``, or
    ``lif`` with leak 1) and resets by subtraction: its mean drive is then exact from its
    spike count and membrane (:func:`readout`)."""
    cn = as_compiled(net)
    return all(cn.lp[r, K.LP_MODEL] != K.MODEL_PAPER and cn.lp[r, K.LP_LEAK] == 1.0
               and cn.lp[r, K.LP_RESET] == K.RESET_SUBTRACT for r in cn.outputs)


def window_start(sess):
    """Where a readout window starts (:func:`readout`): the step, and per output population
    its spike count so far and its membrane (IF/LIF), or None (the paper's neuron)."""
    net, t = sess.net, sess.t
    marks = []
    for r in net.outputs:
        if net.lp[r, K.LP_MODEL] == K.MODEL_PAPER:
            marks.append(None)
        else:
            marks.append((np.rint(sess.state(r) * t),
                          sess.v[:, net.off[r]:net.off[r + 1]].copy()))
    return t, marks


def readout(sess, start=None) -> np.ndarray:
    """The output populations' readout side by side, (B, n_out); the prediction is its
    argmax (ties: the lowest index).  ``start``: a :func:`window_start` mark (None: the
    start of the run, count 0 and membrane ``v0``).  Per output population over the steps
    since ``start`` (T of them):

    - the paper's neuron: its state (the window does not apply);
    - IF/LIF whose outputs are all IF (:func:`if_outputs`): the mean drive over the
      threshold, ``z = (th * count + V(t) - V(start)) / (T th)``, exactly
      ``(mean delivered input + bias) / th`` (summing ``V(t) = V(t-1) + u + b - th q``);
    - other IF/LIF: the firing rate ``count / T``."""
    net = sess.net
    drive = if_outputs(net)
    t = sess.t
    if start is None:
        start = (0, [None if net.lp[r, K.LP_MODEL] == K.MODEL_PAPER else
                     (0.0, np.full((sess.batch, net.sizes[r]), net.lp[r, K.LP_V0]))
                     for r in net.outputs])
    t0, marks = start
    T = t - t0
    parts = []
    for r, mark in zip(net.outputs, marks):
        s = sess.state(r)
        if mark is None:
            parts.append(s)
            continue
        if T < 1:
            raise EngineError("readout: the window holds no steps (run at least one step)")
        count = np.rint(s * t) - mark[0]
        if drive:
            th = float(net.lp[r, K.LP_THR])
            v = sess.v[:, net.off[r]:net.off[r + 1]]
            parts.append((th * count + (v - mark[1])) / (T * th))
        else:
            parts.append(count / T)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _sessions(cn, x, batch: int, seed: int, threads: int):
    """(first sample, batch of x, a session clamped to it) for every ``batch`` rows of x in
    turn: one session, reset in place while the batch size stays; sample i of the set is
    sample id i (the stochastic encoders' streams depend on it, not on the batching)."""
    sess = None
    for i in range(0, len(x), batch):
        xb, ids = x[i:i + batch], np.arange(i, min(i + batch, len(x)))
        if sess is not None and sess.batch == len(xb):
            sess.reset(xb, ids)
        else:
            sess = open_session(cn, xb, seed=seed, threads=threads, sample_ids=ids)
        yield i, xb, sess


def classify(net, images, steps: int | None = None, *, batch: int = 100, threads: int = 1,
             seed: int | None = None, progress=None, warmup: int = 0) -> Classified:
    """Run the free phase on every row of ``images`` (n, n_input), ``batch`` rows at a time,
    ``warmup`` steps and then ``steps`` read out (:func:`readout`; without warm-up the
    readout of a network without IF outputs is the output states, as it always was).

    Sample i of the set is sample id i of the session (the stochastic encoders' streams
    depend on it), so the result does not depend on ``batch`` or ``threads``.  One session
    is reused from batch to batch (reset in place).  ``progress``: an object with
    ``update(n)`` (a tqdm bar), or None."""
    cn = as_compiled(net)
    x = check_input(images, cn.n_in, "images")
    steps = default_steps(cn) if steps is None else _positive("steps", steps)
    batch = _positive("batch", batch)
    threads = _positive("threads", threads)
    warmup = _count("warmup", warmup)
    seed = cn.netlist.seed if seed is None else int(seed)
    n = len(x)
    preds = np.empty(n, dtype=np.int64)
    outs = np.empty((n, cn.n_out))
    counters: dict[str, np.ndarray] = {}
    for i, xb, sess in _sessions(cn, x, batch, seed, threads):
        start = None
        if warmup:
            sess.run(warmup)
            start = window_start(sess)
        sess.run(steps)
        out = readout(sess, start)
        preds[i:i + len(xb)] = out.argmax(axis=1)
        outs[i:i + len(xb)] = out
        for k, v in sess.counters().items():
            if k not in counters:
                counters[k] = np.zeros((n,) + v.shape[1:], dtype=v.dtype)
            counters[k][i:i + len(xb)] = v
        if progress is not None:
            progress.update(len(xb))
    return Classified(preds, outs, counters)


@dataclass
class EvalResult:
    """A network's classification of a labelled set (all "per sample" figures are means)."""

    error: float                    # fraction misclassified
    n: int                          # samples classified
    errors: int                     # samples misclassified
    steps: int                      # free-phase steps per sample read out (after warmup)
    seed: int                       # the session seed
    spikes_per_sample: float        # non-zero messages sent, all populations
    spikes_per_population: dict     # {population: spikes per sample}
    syn_events_per_sample: float    # synaptic events, all projections both ways
    syn_events_per_projection: dict  # {"pre->post": ..., "post->pre": ...} per sample
    predictions: np.ndarray = field(repr=False)     # int64 (n,)
    labels: np.ndarray = field(repr=False)          # int64 (n,)
    warmup: int = 0                 # steps run before the ``steps`` read out
    weights: int = 0                # distinct weights of the network (a pool has none)
    # synaptic events through weighted projections per distinct weight, and per synapse (a
    # conv weight serves many synapses), per sample -- an inference; None: no weights
    syn_events_per_weight: float | None = None
    synapses: int = 0
    syn_events_per_synapse: float | None = None

    @property
    def accuracy(self) -> float:
        return 1.0 - self.error

    def to_dict(self, predictions: bool = True) -> dict:
        """Plain Python values (JSON-ready); ``predictions=False`` leaves the per-sample
        predictions out."""
        d = {"error": self.error, "accuracy": self.accuracy, "n": self.n, "errors": self.errors,
             "steps": self.steps, "warmup": self.warmup, "seed": self.seed,
             "spikes_per_sample": self.spikes_per_sample,
             "spikes_per_population": dict(self.spikes_per_population),
             "syn_events_per_sample": self.syn_events_per_sample,
             "syn_events_per_projection": dict(self.syn_events_per_projection),
             "weights": self.weights, "syn_events_per_weight": self.syn_events_per_weight,
             "synapses": self.synapses, "syn_events_per_synapse": self.syn_events_per_synapse}
        if predictions:
            d["predictions"] = self.predictions.tolist()
        return d


def evaluate(net, images, labels, steps: int | None = None, batch: int = 100,
             threads: int = 1, seed: int | None = None, progress: bool = False,
             warmup: int = 0) -> EvalResult:
    """Classify ``images`` (n, n_input) and score against ``labels`` (n,) integers.

    ``steps``: free-phase steps (default: training's, :func:`default_steps`), read out after
    ``warmup`` steps (:func:`classify`); ``seed``: the
    session seed (default: the netlist's); ``progress``: a tqdm bar on stderr, shown only
    when stderr is a terminal."""
    cn = as_compiled(net)
    x = check_input(images, cn.n_in, "images")
    y = check_labels(labels, len(x))
    from tqdm import tqdm
    with tqdm(total=len(x), desc="classifying", unit="sample", leave=False,
              disable=not (progress and sys.stderr.isatty())) as bar:
        c = classify(cn, x, steps, batch=batch, threads=threads, seed=seed, progress=bar,
                     warmup=warmup)
    return score(cn, c, y, steps=steps, seed=seed, warmup=warmup)


def score(net, c: Classified, labels, *, steps: int | None = None, seed: int | None = None,
          warmup: int = 0) -> EvalResult:
    """The :class:`EvalResult` of a classification ``c`` (:func:`classify`'s rows, in the
    order of ``labels``) run with these ``steps``, ``seed`` and ``warmup`` (None: the
    defaults :func:`classify` used); what :func:`evaluate` returns.  Also for rows classified
    elsewhere and put together (``neuroemu.sweep.parallel_eval``)."""
    cn = as_compiled(net)
    y = np.asarray(labels)
    wts, syns = _weights(cn)
    n = len(y)
    wrong = int((c.predictions != y).sum())
    spk = c.counters["spikes"].sum(axis=0) / n                 # (layers,)
    syn = c.counters["syn_events"].sum(axis=0) / n             # (projections, 2)
    names = cn.names
    per_proj = {}
    for p, (fwd, bwd) in enumerate(projection_parts(cn)):
        per_proj[fwd] = float(syn[p, 0])
        if bwd is not None:
            per_proj[bwd] = float(syn[p, 1])
    return EvalResult(
        error=wrong / n, n=n, errors=wrong,
        steps=default_steps(cn) if steps is None else int(steps),
        seed=cn.netlist.seed if seed is None else int(seed),
        spikes_per_sample=float(spk.sum()),
        spikes_per_population={name: float(v) for name, v in zip(names, spk)},
        syn_events_per_sample=float(syn.sum()), syn_events_per_projection=per_proj,
        predictions=c.predictions, labels=y.astype(np.int64), warmup=int(warmup),
        weights=int(sum(wts)), syn_events_per_weight=events_per_weight(syn, wts),
        synapses=int(sum(syns)), syn_events_per_synapse=events_per_weight(syn, syns))


def _weights(cn) -> tuple[list[int], list[int]]:
    """Distinct weights and synapses of each projection (a pool: none), as the energy report
    counts them (:mod:`neuroemu.energy.ann`)."""
    from ..energy.ann import link_synapses, link_weights
    from ..energy.graph import topology
    topo = topology(cn.netlist)
    return link_weights(topo), link_synapses(topo)


def error_curve(net, images, labels, steps, *, batch: int = 100, threads: int = 1,
                seed: int | None = None, progress=None, warmup: int = 0) -> list[dict]:
    """Error against inference length and its cost: each sample's free phase runs once to
    the largest of ``steps``, and the prediction is read after each listed number of steps
    -- the first k steps of that run are the run :func:`evaluate` makes with ``steps=k``, so
    each point is exactly its figure (``warmup``: as for :func:`classify`, the step counts
    follow it; the spikes count it).  Returns one dict per step count (increasing):
    ``steps``, ``error``, ``errors``, ``spikes_per_sample`` and ``syn_events_per_sample``
    (messages and synaptic events of all populations and projections up to that step) and
    ``syn_events_per_weight`` and ``syn_events_per_synapse`` (as :class:`EvalResult`'s, at
    that step).
    ``progress``: an object with ``update(n)`` (a tqdm bar), or None."""
    cn = as_compiled(net)
    x = check_input(images, cn.n_in, "images")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(x) or (y.size and y.dtype.kind not in "iu"):
        raise EngineError(f"labels: must be {len(x)} integers, one per image (got {y.dtype} "
                          f"shape {y.shape})")
    try:
        ks = sorted({_positive("steps", k) for k in steps})
    except TypeError:
        raise EngineError(f"steps: must be a list of positive integers (got {steps!r})") from None
    if not ks:
        raise EngineError("steps: must list at least one number of steps (got none)")
    batch, threads = _positive("batch", batch), _positive("threads", threads)
    warmup = _count("warmup", warmup)
    seed = cn.netlist.seed if seed is None else int(seed)
    n = len(x)
    wrong = np.zeros(len(ks), dtype=np.int64)
    spikes = np.zeros(len(ks))
    syn = np.zeros(len(ks))
    wts, syns = _weights(cn)
    synp = np.zeros((len(ks), len(wts), 2))
    for i, xb, sess in _sessions(cn, x, batch, seed, threads):
        done, start = 0, None
        if warmup:
            sess.run(warmup)
            start = window_start(sess)
        for j, k in enumerate(ks):
            sess.run(k - done)
            done = k
            wrong[j] += int((readout(sess, start).argmax(axis=1) != y[i:i + len(xb)]).sum())
            c = sess.counters()
            spikes[j] += float(c["spikes"].sum())
            syn[j] += float(c["syn_events"].sum())
            synp[j] += c["syn_events"].sum(axis=0)
        if progress is not None:
            progress.update(len(xb))
    return [{"steps": k, "error": int(wrong[j]) / n, "errors": int(wrong[j]),
             "spikes_per_sample": spikes[j] / n, "syn_events_per_sample": syn[j] / n,
             "syn_events_per_weight": events_per_weight(synp[j] / n, wts),
             "syn_events_per_synapse": events_per_weight(synp[j] / n, syns)}
            for j, k in enumerate(ks)]
