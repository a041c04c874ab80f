"""Training throughput of a spiking convolutional network with symmetric-nudging EP
(the Lin, Bal & Sengupta 2024 kind), against a plain NumPy implementation of the same
training step with dense convolutions, measured in the same run.

    .venv/bin/python benchmarks/bench_train_conv.py [--net conv-ep|paper|FILE]
                     [--batches 2] [--repeats 3] [--steps-free 100] [--steps-nudged 30]

One training step on a minibatch of 20 MNIST training images: a free phase, then from its
end state one phase nudged with +beta and one with -beta (symmetric nudging, docs/model.md
7.4), then the first-order EP update of every conv, dense and bias parameter.  Every spike
is emulated: sigma-delta encoders with predictive coding, predictive decoders and OSA step
sizes, as the network's netlist says.  Networks:

- ``conv-ep`` (default): the shipped netlist, 1x28x28 -> conv 5x5 (32) -> avgpool 2 ->
  conv 5x5 (64) -> avgpool 2 -> 10, the pooled and unpooled maps both populations;
- ``paper``: the 2C2FC network proposed for the paper's MNIST run, with each "conv 5x5 +
  avgpool 2" folded into one conv 6x6 stride 2 (neurons on the pooled maps only, as in the
  energy of Laborieux et al. 2021 and Lin et al. 2024): 1x28x28 -> 32x12x12 -> 64x4x4 ->
  500 -> 10;
- a netlist file or shipped name (dense, conv2d and avgpool2d projections).

Implementations, all on the same minibatches and initial weights:

- ``neuroemu.learn.eqprop.Trainer`` (lockstep sessions, event-driven numba kernels),
  ``threads`` 1 and 2 (bit-identical; checked);
- the baseline: NumPy, vectorised over the minibatch, every delivery a dense float32
  operation on the whole spike map (convolutions as sliding-window tensordot, i.e.
  im2col + one BLAS thread; the transposed convolution on the zero-dilated map with the
  flipped kernel; average pooling by reshape), the same neuron arithmetic in float64, and
  the update as dense correlations.  It sums float32 deliveries in BLAS order, so it agrees
  with the kernels only to rounding (the largest state difference after the free phase is
  printed; spiking dynamics amplify rounding, so a few spikes may differ).

Then where neuroemu's time goes (``--no-profile`` skips it): the stages of a training step
(free phase, two nudged phases with the snapshot/restore, EP update), and, replayed on the
spikes recorded during a real free phase, the time of every delivery (projection x
direction) per sample and step, with its synaptic events; the rest of a step is the neuron
update (decoders, OSA step sizes, states, encoders).  The same split for the baseline.

Prints one JSON line per figure (benchmarks/common.py), then tables on stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import common  # noqa: F401  (one BLAS thread for the baseline, before NumPy loads)
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numba import njit  # noqa: E402

from neuroemu import describe  # noqa: E402
from neuroemu.engines import compiled as C  # noqa: E402
from neuroemu.engines import kernels as K  # noqa: E402
from neuroemu.learn import datasets, eqprop  # noqa: E402
from neuroemu.learn.graph_ep import graph_update  # noqa: E402

B = 20

NEURON = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
          "lam": {"kind": "constant", "value": 0.275},
          "eps": {"kind": "osa", "nu_bar": 0.0346}}


def paper_netlist():
    """The proposed 2C2FC MNIST network (conv 5x5 + avgpool 2 folded into conv 6x6 / 2)."""
    g = {"init": "glorot_uniform"}
    raw = {"network": {"name": "lin2c2fc", "format": 2, "seed": 13},
           "neuron": NEURON,
           "population": [{"name": "image", "shape": [1, 28, 28], "role": "input"},
                          {"name": "c1", "shape": [32, 12, 12]},
                          {"name": "c2", "shape": [64, 4, 4]},
                          {"name": "fc", "size": 500},
                          {"name": "output", "size": 10, "role": "output"}],
           "projection": [{"pre": "image", "post": "c1", "kind": "conv2d", "kernel_size": 6,
                           "stride": 2, "weights": g},
                          {"pre": "c1", "post": "c2", "kind": "conv2d", "kernel_size": 6,
                           "stride": 2, "weights": g},
                          {"pre": "c2", "post": "fc", "weights": g},
                          {"pre": "fc", "post": "output", "weights": g}]}
    return describe.from_dict(raw, path="<bench_train_conv>")


def load_netlist(name):
    if name == "paper":
        return paper_netlist()
    return describe.load(name)


# ----------------------------------------------------------------------------- baseline

def conv_fwd(x, w, stride, pad):
    """(B, Ci, H, W) -> (B, Co, Ho, Wo): cross-correlation, zero padding, stride."""
    (sy, sx), (py, px) = stride, pad
    if py or px:
        x = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)))
    win = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::sy, ::sx]
    return np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def conv_bwd(y, w, stride, pad, in_hw):
    """The transpose of conv_fwd: (B, Co, Ho, Wo) -> (B, Ci, H, W)."""
    (sy, sx), (py, px) = stride, pad
    kh, kw = w.shape[2:]
    b, co, ho, wo = y.shape
    if sy > 1 or sx > 1:
        yd = np.zeros((b, co, (ho - 1) * sy + 1, (wo - 1) * sx + 1), dtype=y.dtype)
        yd[:, :, ::sy, ::sx] = y
        y = yd
    yp = np.pad(y, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    win = sliding_window_view(yp, (kh, kw), axis=(2, 3))
    full = np.tensordot(win, w[:, :, ::-1, ::-1], axes=([1, 4, 5], [0, 2, 3]))
    full = full.transpose(0, 3, 1, 2)                  # rows: padded-input coordinates
    H, W = in_hw
    out = np.zeros((b, w.shape[1], H + 2 * py, W + 2 * px), dtype=full.dtype)
    hh, ww = min(full.shape[2], H + 2 * py), min(full.shape[3], W + 2 * px)
    out[:, :, :hh, :ww] = full[:, :, :hh, :ww]
    return out[:, :, py:py + H, px:px + W]


def conv_grad(X, Y, kshape, stride, pad):
    """dK[co, ci, ky, kx] = sum_(b, oy, ox) X[b, ci, oy sy - py + ky, ...] Y[b, co, oy, ox]."""
    (sy, sx), (py, px) = stride, pad
    if py or px:
        X = np.pad(X, ((0, 0), (0, 0), (py, py), (px, px)))
    ho, wo = Y.shape[2:]
    win = sliding_window_view(X, kshape[2:], axis=(2, 3))[:, :, :(ho - 1) * sy + 1:sy,
                                                         :(wo - 1) * sx + 1:sx]
    return np.tensordot(Y, win, axes=([0, 2, 3], [0, 2, 3]))     # (co, ci, kh, kw)


class NumpyGraphEP:
    """Plain NumPy EP training step (symmetric nudging, first-order rule) for a graph of
    dense, conv2d and avgpool2d symmetric projections between populations of the paper's
    neuron (sigma-delta + predictive coding with constant lambda, predictive decoder, OSA
    step sizes): docs/model.md sections 3 and 7."""

    def __init__(self, net, hyper):
        lp = net.lp
        if not (np.all(lp[:, K.LP_MODEL] == K.MODEL_PAPER)
                and np.all(lp[:, K.LP_ENC] == K.ENC_SIGMA_DELTA)
                and np.all(lp[:, K.LP_PRED] == 1)
                and np.all(lp[:, K.LP_LAMK] == K.SCHED_CONSTANT)
                and np.all(lp[net.xoff < 0, K.LP_ANNK] == K.ANN_OSA)
                and np.all(lp[net.xoff < 0, K.LP_DEC] == K.DEC_PREDICTIVE)):
            raise SystemExit("NumpyGraphEP: only sigma-delta + predictive + OSA networks")
        nl = net.netlist
        self.net, self.hyper = net, hyper
        self.lam = float(lp[0, K.LP_LAMA])
        self.nu_bar, self.reg = float(lp[-1, K.LP_ANNA]), float(lp[-1, K.LP_ANNB])
        self.dims = [tuple(p.shape) if p.shape else (p.size,) for p in nl.populations]
        self.sizes = [int(np.prod(d)) for d in self.dims]
        self.inputs = [r for r in range(len(self.sizes)) if net.xoff[r] >= 0]
        self.outputs = list(net.outputs)
        self.proj = []
        for p, pr in enumerate(nl.projections):
            if not pr.symmetric or pr.kind not in ("dense", "conv2d", "avgpool2d"):
                raise SystemExit(f"NumpyGraphEP: projection {p} ({pr.kind}) not supported")
            prm = dict(pr.params)
            g = net.pj[p]
            self.proj.append(dict(kind=pr.kind, pre=int(g[K.PJ_PRE]), post=int(g[K.PJ_POST]),
                                  bwd=bool(g[K.PJ_BWD]),
                                  k=tuple(prm.get("kernel", (0, 0))),
                                  stride=tuple(prm.get("stride", (1, 1))),
                                  pad=tuple(prm.get("padding", (0, 0)))))
        self.W = [None if pr["kind"] == "avgpool2d" else net.weights(p).astype(np.float64)
                  for p, pr in enumerate(self.proj)]
        self.b = [net.biases(r).astype(np.float64).copy() for r in range(len(self.sizes))]
        self.bias_rate = []
        for r in range(len(self.sizes)):
            rates = [hyper.rates[p] for p, pr in enumerate(self.proj) if pr["post"] == r]
            self.bias_rate.append(rates[0] if rates else None)
        self.t_deliver = self.t_neuron = 0.0

    # -- one delivery, dense, on the whole (B, n) message array of the sender
    def deliver(self, p, d, q, W32):
        pr = self.proj[p]
        src, dst = (pr["pre"], pr["post"]) if d == 0 else (pr["post"], pr["pre"])
        n = q.shape[0]
        if pr["kind"] == "dense":
            return q @ W32[p] if d == 0 else q @ W32[p].T
        x = q.reshape((n,) + self.dims[src])
        if pr["kind"] == "conv2d":
            out = conv_fwd(x, W32[p], pr["stride"], pr["pad"]) if d == 0 else \
                conv_bwd(x, W32[p], pr["stride"], pr["pad"], self.dims[dst][1:])
            return out.reshape(n, -1)
        kh, kw = pr["k"]
        if pr["stride"] != (kh, kw):
            raise SystemExit("NumpyGraphEP: avgpool2d with stride != kernel")
        c, ho, wo = self.dims[pr["post"]]
        wv = np.float32(1.0 / (kh * kw))
        if d == 0:
            xx = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)
            return (xx.sum(axis=(3, 5), dtype=np.float32) * wv).reshape(n, -1)
        H, W = self.dims[dst][1:]
        up = np.zeros((n, c, H, W), dtype=np.float32)
        up[:, :, :ho * kh, :wo * kw] = np.repeat(np.repeat(x * wv, kh, axis=2), kw, axis=3)
        return up.reshape(n, -1)

    def reset(self, x):
        n = len(x)
        z = lambda k: np.zeros((n, k))  # noqa: E731
        P = len(self.sizes)
        self.t = 0
        self.nu = 1.0
        self.x = x
        self.s, off = [], 0
        for r in range(P):
            if r in self.inputs:
                self.s.append(np.ascontiguousarray(x[:, off:off + self.sizes[r]]))
                off += self.sizes[r]
            else:
                self.s.append(z(self.sizes[r]))
        self.v = [z(k) for k in self.sizes]
        self.osa = [[z(k) for _ in range(4)] for k in self.sizes]
        self.phi = [z(k) for k in self.sizes]
        self.xm = [z(k) for k in self.sizes]
        self.q = [np.zeros((n, k), np.float32) for k in self.sizes]
        self.spikes = np.zeros(n)

    def state(self):
        return {k: [a.copy() if a is not None else None for a in getattr(self, k)]
                for k in ("s", "v", "phi", "xm", "q")} | \
            {"osa": [[a.copy() for a in o] for o in self.osa], "t": self.t, "nu": self.nu}

    def restore(self, st):
        for k in ("s", "v", "phi", "xm", "q"):
            setattr(self, k, [a.copy() for a in st[k]])
        self.osa = [[a.copy() for a in o] for o in st["osa"]]
        self.t, self.nu = st["t"], st["nu"]

    def run(self, steps, beta=0.0, y=None):
        lam, P = self.lam, len(self.sizes)
        W32 = [None if w is None else w.astype(np.float32) for w in self.W]
        for _ in range(steps):
            self.t += 1
            self.nu = self.nu / (1.0 + self.nu - self.nu_bar)
            nu = self.nu
            t0 = time.perf_counter()
            u = [None] * P
            for r in range(P):
                if r in self.inputs:
                    continue
                acc = np.zeros((len(self.x), self.sizes[r]), np.float32)
                for p, pr in enumerate(self.proj):          # forwards, projection order
                    if pr["post"] == r:
                        acc += self.deliver(p, 0, self.q[pr["pre"]], W32)
                for p, pr in enumerate(self.proj):          # then backwards
                    if pr["pre"] == r and pr["bwd"]:
                        acc += self.deliver(p, 1, self.q[pr["post"]], W32)
                u[r] = acc
            t1 = time.perf_counter()
            for r in range(P):
                if r in self.inputs:
                    continue
                s = self.s[r]
                common.osa_neuron_step(
                    s, self.v[r], u[r], self.b[r], self.osa[r], lam, nu, self.reg,
                    self.t == 1,
                    2.0 * beta * (y - s) if r in self.outputs and beta != 0.0 else None)
            for r in range(P):
                c = np.clip(self.s[r], 0.0, 1.0)
                cq = (c - (1.0 - lam) * self.xm[r]) / lam
                self.xm[r] = c
                ph = self.phi[r] + cq
                fire = ph > 0.5
                self.phi[r] = ph - fire
                self.q[r] = fire.astype(np.float32)
                self.spikes += fire.sum(axis=1)
            t2 = time.perf_counter()
            self.t_deliver += t1 - t0
            self.t_neuron += t2 - t1

    def train_batch(self, x, y):
        hp = self.hyper
        self.reset(x)
        self.run(hp.n_free)
        s0 = [s.copy() for s in self.s]
        snap = self.state()
        self.run(hp.n_nudged, hp.beta, y)
        sp = [s.copy() for s in self.s]
        self.restore(snap)
        self.run(hp.n_nudged, -hp.beta, y)
        sm = [s.copy() for s in self.s]
        scale = 2.0 * hp.beta * len(x)
        for p, pr in enumerate(self.proj):
            if self.W[p] is None:
                continue
            a, b = pr["pre"], pr["post"]
            if pr["kind"] == "dense":
                g = s0[a].T @ (sp[b] - sm[b]) + (sp[a] - sm[a]).T @ s0[b]
            else:
                n = len(x)
                rs = lambda z, r: z.reshape((n,) + self.dims[r])  # noqa: E731
                g = conv_grad(rs(s0[a], a), rs(sp[b] - sm[b], b), self.W[p].shape,
                              pr["stride"], pr["pad"]) + \
                    conv_grad(rs(sp[a] - sm[a], a), rs(s0[b], b), self.W[p].shape,
                              pr["stride"], pr["pad"])
            self.W[p] += hp.rates[p] * g / scale
        for r, rate in enumerate(self.bias_rate):
            if rate is not None and r not in self.inputs:
                self.b[r] += rate * (sp[r] - sm[r]).mean(axis=0) / (2.0 * hp.beta)
        return s0


# ----------------------------------------------------------------------------- profile

@njit(cache=False)
def _replay(pj, p, d, ev_all, ev_off, n_src, n_recv, binary, wf, wb, ix, loops):
    """Deliver every recorded event list ``ev_all[ev_off[k]:ev_off[k+1]]`` through
    projection p, direction d, ``loops`` times; returns the synaptic events of one pass."""
    q = np.zeros(n_src)
    u = np.zeros(n_recv, dtype=np.float32)
    syn = 0
    for rep in range(loops):
        for k in range(ev_off.shape[0] - 1):
            lo, hi = ev_off[k], ev_off[k + 1]
            if not binary:
                for i in range(lo, hi):
                    q[ev_all[i]] = 1.0
            u[:] = np.float32(0.0)
            s = K.deliver_projection(pj, p, d, q, ev_all[lo:hi], 0, hi - lo, binary,
                                     wf, wb, ix, u, 0)
            if rep == 0:
                syn += s
    return syn


def profile_deliveries(net, x, steps, every, repeats):
    """Seconds per sample and step of every delivery (p, d) of the network, replayed on
    the spikes of a free phase of ``steps`` steps on ``x`` (every ``every``-th step kept)."""
    from neuroemu import engines
    sess = engines.session(net, x)
    ph = sess.run(steps, record_spikes=True)
    rq = ph.spikes[::every]                               # (R, B, N) booleans
    out = []
    for r in range(net.n_pops):
        for k in range(net.dl_off[r], net.dl_off[r + 1]):
            p, d = int(net.dl[k, 0]), int(net.dl[k, 1])
            src = int(net.pj[p, K.PJ_PRE if d == 0 else K.PJ_POST])
            lo, hi = int(net.off[src]), int(net.off[src + 1])
            lists = [np.flatnonzero(rq[t, b, lo:hi]).astype(np.int32)
                     for t in range(rq.shape[0]) for b in range(rq.shape[1])]
            ev_off = np.zeros(len(lists) + 1, dtype=np.int64)
            ev_off[1:] = np.cumsum([len(e) for e in lists])
            ev_all = np.concatenate(lists) if ev_off[-1] else np.zeros(1, np.int32)
            binary = bool(net.lp[src, K.LP_ENC] != K.ENC_NONE)
            args = (net.pj, p, d, ev_all, ev_off, hi - lo, int(net.sizes[r]), binary,
                    net.wf, net.wb, net.ix)
            syn = _replay(*args, 1)
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                _replay(*args, 1)
                ts.append(time.perf_counter() - t0)
            n = len(lists)
            kind = ("dense", "sparse", "conv", "pool", "one_to_one")[int(net.pj[p, K.PJ_KIND])]
            out.append(dict(proj=net.netlist.projections[p].label, kind=kind,
                            direction="forward" if d == 0 else "backward",
                            seconds=min(ts) / n, events=syn / n,
                            spikes=float(ev_off[-1]) / n))
    return out


def stages(trainer, X, Y, n):
    """Mean seconds per minibatch of each stage of a symmetric-nudging training step."""
    hp = trainer.hyper
    T = dict.fromkeys(("reset", "free phase", "nudged phases (+snapshot/restore)",
                       "EP update"), 0.0)
    for i in range(n):
        x, y = np.ascontiguousarray(X[i * B:(i + 1) * B]), Y[i * B:(i + 1) * B]
        t0 = time.perf_counter()
        sess = trainer._session(x, np.arange(B) + i * B)
        t1 = time.perf_counter()
        trainer.advance(sess, hp.n_free)
        s0 = trainer._states(sess, x)
        t2 = time.perf_counter()
        snap = sess.snapshot()
        trainer.advance(sess, hp.n_nudged, hp.beta, y)
        sp = trainer._states(sess, x)
        sess.restore(snap)
        trainer.advance(sess, hp.n_nudged, -hp.beta, y)
        sm = trainer._states(sess, x)
        t3 = time.perf_counter()
        trainer.apply_graph_update(*graph_update(trainer.net, s0, sm, sp, 2.0 * hp.beta,
                                                 hp.rule))
        t4 = time.perf_counter()
        for k, dt in zip(T, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            T[k] += dt
    return {k: v / n for k, v in T.items()}


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="conv-ep",
                    help="conv-ep (shipped), paper (the proposed 2C2FC), or a netlist file or "
                    "shipped name such as conv-2c2fc")
    ap.add_argument("--batches", type=int, default=2, help="minibatches of 20 per timing")
    ap.add_argument("--baseline-batches", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps-free", type=int, default=100)
    ap.add_argument("--steps-nudged", type=int, default=30)
    ap.add_argument("--beta", type=float, default=0.4)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args(argv)

    rep = common.Report(f"bench_train_conv: symmetric-nudging EP step, {args.net}, batch {B}, "
                        f"{args.steps_free} free + 2 x {args.steps_nudged} nudged steps "
                        f"(samples/s, median of {args.repeats} interleaved repeats)")
    ds = datasets.load("mnist")
    n_img = B * max(args.batches, args.baseline_batches, 3)
    X = ds.images[:n_img].astype(np.float64)
    Y = datasets.one_hot(ds.labels[:n_img])
    nl = load_netlist(args.net)

    def make(threads=1):
        net = C.build(nl)
        hp = eqprop.Hyper.for_network(net, beta=args.beta, n_free=args.steps_free,
                                      n_nudged=args.steps_nudged, nudge="symmetric")
        return eqprop.Trainer(net, hp, seed=0, threads=threads)

    label = f"{args.net if args.net in ('conv-ep', 'paper') else Path(args.net).stem}"
    ref = make()
    shape = "-".join(str(n) for n in ref.net.sizes)
    print(f"# network {label}: {shape} ({ref.net.n_projections} projections), "
          f"rates {ref.hyper.rates}", file=sys.stderr)

    # exactness: 1 thread == 2 threads; baseline vs kernel on the same minibatch
    one, two = make(1), make(2)
    one.train_batch(X[:B], Y[:B])
    two.train_batch(X[:B], Y[:B])
    identical = all(np.array_equal(a, b) for a, b in zip(one.W, two.W)) and \
        all(np.array_equal(a, b) for a, b in zip(one.b, two.b))
    base = NumpyGraphEP(ref.net, ref.hyper)
    s_np = base.train_batch(X[:B], Y[:B])
    s_k, _, _, _ = ref.symmetric_phases(X[:B], Y[:B])
    hidden = [r for r in range(ref.net.n_pops) if ref.net.xoff[r] < 0]
    agree = max(float(np.abs(s_np[r] - s_k[r]).max()) for r in hidden)
    mean_diff = statistics.mean(float(np.abs(s_np[r] - s_k[r]).mean()) for r in hidden)

    t1, t2 = make(1), make(2)
    t2.train_batch(X[:B], Y[:B])                      # compile / warm the threaded build
    t1.train_batch(X[:B], Y[:B])
    base.t_deliver = base.t_neuron = 0.0
    nb = {"numpy": args.baseline_batches, "1thread": args.batches, "2threads": args.batches}
    fns = {"numpy": lambda i: base.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
           "1thread": lambda i: t1.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
           "2threads": lambda i: t2.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])}
    res = {k: [] for k in fns}
    for _ in range(args.repeats):                    # interleaved: load hits all alike
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for i in range(nb[key]):
                fn(i)
            res[key].append(nb[key] * B / (time.perf_counter() - t0))
    base_sps = statistics.median(res["numpy"])
    for key in ("1thread", "2threads"):
        v = statistics.median(res[key])
        rep.add(f"train_conv_{label}_{key}", v, "samples/s", base_sps, v / base_sps,
                best=round(max(res[key]), 2), min=round(min(res[key]), 2))
    steps = args.steps_free + 2 * args.steps_nudged
    n_np = args.repeats * nb["numpy"] * B * steps
    rep.add(f"numpy_{label}_delivery_per_sample_step", base.t_deliver / n_np * 1e6, "us")
    rep.add(f"numpy_{label}_neurons_per_sample_step", base.t_neuron / n_np * 1e6, "us")

    if not args.no_profile:
        T = stages(t1, X, Y, max(args.batches, 1))
        total = sum(T.values())
        for k, v in T.items():
            rep.add(f"stage_{label}_1thread_{k.split(' (')[0].replace(' ', '_')}",
                    v * 1e3, "ms/minibatch", share=round(v / total, 3))
        free_us = T["free phase"] / (B * args.steps_free) * 1e6
        prof = profile_deliveries(t1.net, np.ascontiguousarray(X[:B]), args.steps_free,
                                  every=5, repeats=3)
        d_sum = 0.0
        for d in prof:
            us = d["seconds"] * 1e6
            d_sum += us
            rep.add(f"deliver_{label}_{d['proj']}_{d['kind']}_{d['direction']}", us,
                    "us/sample-step", share_of_free_step=round(us / free_us, 3),
                    syn_events=round(d["events"]), spikes_in=round(d["spikes"], 1),
                    events_per_s=round(d["events"] / d["seconds"]) if d["seconds"] else None)
        rep.add(f"free_step_{label}_1thread", free_us, "us/sample-step")
        rep.add(f"free_step_{label}_deliveries", d_sum, "us/sample-step",
                share=round(d_sum / free_us, 3))
        rep.add(f"free_step_{label}_neurons_and_rest", free_us - d_sum, "us/sample-step",
                share=round(1 - d_sum / free_us, 3))

    rep.table()
    print(f"\n  NumPy baseline {statistics.median(res['numpy']):.2f} samples/s "
          f"({min(res['numpy']):.2f} .. {max(res['numpy']):.2f}); 1 thread "
          f"{statistics.median(res['1thread']):.2f} ({min(res['1thread']):.2f} .. "
          f"{max(res['1thread']):.2f}); 2 threads {statistics.median(res['2threads']):.2f} "
          f"({min(res['2threads']):.2f} .. {max(res['2threads']):.2f})", file=sys.stderr)
    print(f"  1 thread == 2 threads bit for bit: {identical}; NumPy baseline vs kernel after "
          f"the free phase: max |s| difference {agree:.2e}, mean {mean_diff:.2e}",
          file=sys.stderr)
    print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
