"""Training throughput of a feedback spiking network trained at its equilibrium (IDE,
Xiao et al. 2021; docs/model.md section 8), against a plain NumPy implementation of the same
training step, measured in the same run.

    .venv/bin/python benchmarks/bench_train_ide.py [--net feedback-lif] [--dataset fashion-mnist]
                     [--batches 3] [--baseline-batches 3] [--repeats 5] [--threads 2]

One training step on a minibatch of 128 training images, with the trainer's defaults
(``IDEHyper.for_network``: T = 5 counted steps after a warm-up of the network's depth, 2 for
``feedback-lif``; cross-entropy on the outputs' unclamped rates; SGD with momentum 0.9, weight
decay 5e-4, lr 0.05; adjoint by at most 30 fixed-point iterations; feedback spectral norm kept
<= 1/2 threshold by power iteration).  Network: the shipped ``feedback-lif``, 784 (pixels as
real-valued input currents) -> 400 LIF (leak 0.95) with 400x400 one-way feedback -> 10 IF.

Implementations, from the same initial weights on the same minibatches:

- ``neuroemu.learn.ide_train.IDETrainer`` (``neuroemu train --method ide``): the forward pass
  on the lockstep engine (event-driven numba kernels; ``threads`` 1 and 2, the trainer's and
  the engine's option: samples in parallel), the gradient by
  ``neuroemu.learn.ide.ide_gradients`` (NumPy), the update in NumPy;
- the baseline, written here in plain vectorised NumPy for this network: the spiking
  simulation of docs/model.md 7.3 (``V = l V + u + b``, spike at ``V >= th``, reset by
  subtraction; every delivery one step late, so the input reaches the hidden layer at step 2
  and the output at step 3) with each delivery a dense float32 matmul of the whole batch's
  messages (one BLAS thread, benchmarks/common.py; the constant input current is recomputed
  every step, as the engine delivers it every step), the rates over the counted window, the
  rate map's drive, the adjoint fixed-point iteration and the parameter gradients as dense
  float64 matmuls, and the same SGD-momentum update and power-iteration bound.

Agreement (printed, and as JSON lines):

- the backward pass alone: both gradients computed at the *same* rates (neuroemu's forward);
  they should agree to float64 rounding;
- the whole step: each implementation's gradient at its *own* forward pass.  The baseline
  sums each delivery's float32 terms in BLAS order, the kernels in sender order, so the
  membranes differ in the last bits and a neuron sitting at its threshold may spike in one
  and not the other; a few rates (multiples of 1/T) then differ and the gradients agree only
  loosely.  Reported: the fraction of differing rates, and the largest per-array
  ``max |g_numpy - g_neuroemu| / max |g_neuroemu|`` (in parts per billion; and the
  smallest cosine).

Then where the time goes in one training step, for neuroemu (engine forward, ide_gradients,
update; ide_gradients split into its rate-map set-up, drive, adjoint solve and parameter
gradients) and for the baseline (forward, backward, update).

Timings are medians of interleaved repeats (a change of machine load hits every
implementation alike); they are wall-clock figures of whatever load the machine carries
(printed with the load average).  Prints one JSON line per figure (benchmarks/common.py),
then a table on stderr.  No figure is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import common  # noqa: F401  (one BLAS thread for NumPy, before NumPy loads)
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neuroemu import describe  # noqa: E402
from neuroemu.engines import compiled as C  # noqa: E402
from neuroemu.engines import kernels as K  # noqa: E402
from neuroemu.learn import datasets, ide  # noqa: E402
from neuroemu.learn import ide_train  # noqa: E402

B = 128


# ----------------------------------------------------------------------------- baseline

class NumpyIDE:
    """The IDE training step of an ``input -> hidden (IF/LIF, self-feedback) -> output (IF/LIF)``
    network of dense one-way projections, in plain NumPy, starting from ``trainer``'s
    weights, biases and power-iteration vectors (after its initial contraction)."""

    def __init__(self, trainer: ide_train.IDETrainer):
        net, hp = trainer.net, trainer.hyper
        if net.n_pops != 3 or len(net.inputs) != 1 or list(net.outputs) != [2]:
            raise SystemExit("NumpyIDE: needs populations input, hidden, output (in order)")
        kinds = [int(net.pj[p, K.PJ_KIND]) for p in range(net.n_projections)]
        ends = [(int(net.pj[p, K.PJ_PRE]), int(net.pj[p, K.PJ_POST]), int(net.pj[p, K.PJ_BWD]))
                for p in range(net.n_projections)]
        if kinds != [K.PK_DENSE] * 3 or [e[:2] for e in ends] != [(0, 1), (1, 1), (1, 2)] \
                or any(e[2] for e in ends):
            raise SystemExit("NumpyIDE: needs dense one-way projections input->hidden, "
                             "hidden->hidden, hidden->output (in that order)")
        lp = net.lp
        for r in (1, 2):
            if lp[r, K.LP_MODEL] == K.MODEL_PAPER or lp[r, K.LP_RESET] != K.RESET_SUBTRACT:
                raise SystemExit("NumpyIDE: hidden and output must be IF/LIF, reset subtract")
        if lp[0, K.LP_ENC] != K.ENC_NONE:
            raise SystemExit("NumpyIDE: the input must send real values (encoder none)")
        self.hp = hp
        self.lr = trainer.lr
        self.leak = [float(lp[r, K.LP_LEAK]) for r in range(3)]
        self.th = [float(lp[r, K.LP_THR]) for r in range(3)]
        self.v0 = [float(lp[r, K.LP_V0]) for r in range(3)]
        self.shift = [(1.0 - self.leak[r]) * ide.LEAK_OFFSET * self.th[r] for r in range(3)]
        self.W = [w.copy() for w in trainer.W]                 # float64 masters
        self.b = [b.copy() for b in trainer.b]
        self.mW = [np.zeros_like(w) for w in self.W]
        self.mb = [np.zeros_like(b) for b in self.b]
        self.pv = trainer.power[1].copy()
        self.W32 = [w.astype(np.float32) for w in self.W]
        self.times = {"forward": 0.0, "backward": 0.0, "update": 0.0}
        self.adjoint_iterations = []

    # -- the forward spiking simulation (docs/model.md 7.3): warm-up + T counted steps
    def forward(self, x):
        hp, W32 = self.hp, self.W32
        n = x.shape[0]
        m_in = np.clip(x, 0.0, 1.0)
        q_in_msg = m_in.astype(np.float32)                    # what the input sends
        q_in = np.zeros_like(q_in_msg)                        # sent at step t-1
        nh, no = W32[1].shape[0], W32[2].shape[1]
        q_h = np.zeros((n, nh), np.float32)
        V_h = np.full((n, nh), self.v0[1])
        V_o = np.full((n, no), self.v0[2])
        c_h = np.zeros((n, nh))
        c_o = np.zeros((n, no))
        lh, lo_, th_h, th_o = self.leak[1], self.leak[2], self.th[1], self.th[2]
        Vo_start = None
        for t in range(1, hp.warmup + hp.T + 1):
            if t == hp.warmup + 1:
                c_h[:] = 0.0
                c_o[:] = 0.0
                Vo_start = V_o.copy()
            u_h = q_in @ W32[0] + q_h @ W32[1]                 # float32 deliveries of t-1
            u_o = q_h @ W32[2]
            V_h = lh * V_h + u_h.astype(np.float64) + self.b[1]
            V_o = lo_ * V_o + u_o.astype(np.float64) + self.b[2]
            s_h = V_h >= th_h
            s_o = V_o >= th_o
            V_h -= th_h * s_h
            V_o -= th_o * s_o
            c_h += s_h
            c_o += s_o
            q_h = s_h.astype(np.float32)
            q_in = q_in_msg                                    # the input encodes last
        if Vo_start is None:
            Vo_start = np.full((n, no), self.v0[2])
        a_h, a_o = c_h / hp.T, c_o / hp.T
        readout = (th_o * c_o + V_o - Vo_start) / (hp.T * th_o)   # IF outputs' mean drive
        return [m_in, a_h, a_o], readout

    # -- the rate map's drive, the adjoint by fixed-point iteration, the gradients (8.2)
    def gradients(self, y, rates):
        hp, W = self.hp, self.W
        m_in, a_h, a_o = rates
        th_h, th_o = self.th[1], self.th[2]
        z_h = (m_in @ W[0] + a_h @ W[1] + self.b[1] - self.shift[1]) / th_h
        z_o = (a_h @ W[2] + self.b[2] - self.shift[2]) / th_o
        sur = float(hp.surrogate)
        D_h = np.where((z_h >= 0.0) & (z_h <= 1.0), 1.0, sur)
        D_o = np.where((z_o >= 0.0) & (z_o <= 1.0), 1.0, sur)
        n = y.shape[0]
        if hp.loss == "ce":
            zs = z_o - z_o.max(axis=1, keepdims=True)
            logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
            loss = float(-np.sum(y * logp) / n)
            h_o = (np.exp(logp) * y.sum(axis=1, keepdims=True) - y) / n
        else:                                                  # mse on the output rates
            diff = a_o - y
            loss = float(np.sum(diff ** 2) / n)
            h_o = D_o * (2.0 * diff / n)
        h_h = np.zeros_like(a_h)
        # (I - D Z^T) delta = h: the output sends to no non-input population, so delta_o
        # stays h_o; delta_h <- h_h + D_h (delta_h W_fb^T / th_h + delta_o W_out^T / th_o)
        d_h, d_o = h_h.copy(), h_o.copy()
        scale = max(float(np.abs(h_h).max()), float(np.abs(h_o).max()), 1e-300)
        back_o = (d_o / th_o) @ W[2].T                         # constant: delta_o never moves
        k = 0
        for k in range(1, hp.iterations + 1):
            new_h = h_h + D_h * ((d_h / th_h) @ W[1].T + back_o)
            res = float(np.abs(new_h - d_h).max()) / scale
            d_h = new_h
            if res <= 1e-12:
                break
        self.adjoint_iterations.append(k)
        g_h, g_o = d_h / th_h, d_o / th_o
        dW = [m_in.T @ g_h, a_h.T @ g_h, a_h.T @ g_o]
        db = [None, g_h.sum(axis=0), g_o.sum(axis=0)]
        return dW, db, loss

    # -- SGD with momentum and weight decay, then the feedback's spectral bound
    def update(self, dW, db):
        hp, lr = self.hp, self.lr
        for p in range(3):
            g = dW[p] + hp.weight_decay * self.W[p]
            self.mW[p] = hp.momentum * self.mW[p] + g
            self.W[p] -= lr * self.mW[p]
        for r in (1, 2):
            g = db[r] + hp.weight_decay * self.b[r]
            self.mb[r] = hp.momentum * self.mb[r] + g
            self.b[r] -= lr * self.mb[r]
        if hp.feedback_bound > 0:
            Wf, v, sigma = self.W[1], self.pv, 0.0
            for k in range(ide_train.POWER_MAX_ITERATIONS):
                prev = sigma
                u = v @ Wf
                u /= np.linalg.norm(u)
                w = Wf @ u
                sigma = float(np.linalg.norm(w))
                v = w / sigma
                if k + 1 >= ide_train.POWER_ITERATIONS and \
                        abs(sigma - prev) <= ide_train.POWER_TOL * sigma:
                    break
            self.pv = v
            lim = hp.feedback_bound * self.th[1]
            if sigma > lim:
                Wf *= lim / sigma
        self.W32 = [w.astype(np.float32) for w in self.W]

    def train_batch(self, x, y):
        t0 = time.perf_counter()
        rates, out = self.forward(x)
        t1 = time.perf_counter()
        dW, db, loss = self.gradients(y, rates)
        t2 = time.perf_counter()
        self.update(dW, db)
        t3 = time.perf_counter()
        self.times["forward"] += t1 - t0
        self.times["backward"] += t2 - t1
        self.times["update"] += t3 - t2
        return loss, int((out.argmax(1) != y.argmax(1)).sum())


# ----------------------------------------------------------------------------- checks

def compare(gn, gr):
    """Largest per-array max|gn - gr| / max|gr| and smallest cosine, over the weight and
    bias gradients (gr: neuroemu's, the reference)."""
    rel, cos = 0.0, 1.0
    for a, b in zip(gn, gr):
        if a is None or b is None:
            continue
        a, b = np.ravel(a), np.ravel(b)
        scale = float(np.abs(b).max())
        if scale > 0:
            rel = max(rel, float(np.abs(a - b).max()) / scale)
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 0 and nb > 0:
            cos = min(cos, float(a @ b / (na * nb)))
    return rel, cos


def stages(trainer, X, Y, nb):
    """Seconds per minibatch of each stage of :meth:`IDETrainer.train_batch` (on copies of
    its steps, in order), and ide_gradients split into its parts."""
    T = dict.fromkeys(("forward (engine)", "ide_gradients", "update"), 0.0)
    S = dict.fromkeys(("rate map set-up", "drive z", "adjoint solve", "parameter gradients",
                       "loss and rest"), 0.0)
    hp = trainer.hyper
    its = []
    for i in range(nb):
        x, y = X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]
        t0 = time.perf_counter()
        rates, _, _ = trainer.forward(x)
        t1 = time.perf_counter()
        g = trainer.gradients(x, y, rates)
        t2 = time.perf_counter()
        trainer.apply_gradients(g.dW, g.db)
        t3 = time.perf_counter()
        its.append(int(g.info["iterations"]))
        T["forward (engine)"] += t1 - t0
        T["ide_gradients"] += t2 - t1
        T["update"] += t3 - t2
        # the parts of ide_gradients, replayed on the same rates with its own functions
        biases = [None if r in trainer.inputs else b for r, b in enumerate(trainer.b)]
        s0 = time.perf_counter()
        rm = ide.RateMap(trainer.net, ide.LEAK_OFFSET, trainer.W, biases)
        s1 = time.perf_counter()
        a = [np.asarray(v, dtype=np.float64) for v in rates]
        z = rm.drive(a)
        s2 = time.perf_counter()
        D = {r: np.where((z[r] >= 0) & (z[r] <= 1), 1.0, hp.surrogate) for r in rm.hidden}
        outs = trainer.net.outputs
        z_out = np.concatenate([z[r] for r in outs], axis=1)
        a_out = np.concatenate([a[r] for r in outs], axis=1)
        _, dLda, dLdz = ide.loss_terms(hp.loss, a_out, z_out, y)
        h = rm.zeros(B)
        h[outs[0]] += dLdz if dLdz is not None else D[outs[0]] * dLda
        s3 = time.perf_counter()
        delta, _ = ide.solve_adjoint(rm, D, h, iterations=hp.iterations)
        s4 = time.perf_counter()
        rm.param_grads(a, delta)
        s5 = time.perf_counter()
        S["rate map set-up"] += s1 - s0
        S["drive z"] += s2 - s1
        S["adjoint solve"] += s4 - s3
        S["parameter gradients"] += s5 - s4
        S["loss and rest"] += (t2 - t1) - (s1 - s0) - (s2 - s1) - (s4 - s3) - (s5 - s4)
    return {k: v / nb for k, v in T.items()}, {k: v / nb for k, v in S.items()}, its


# ----------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="feedback-lif", help="shipped name or netlist file")
    ap.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist or mnist")
    ap.add_argument("--batches", type=int, default=3, help="minibatches of 128 per timing")
    ap.add_argument("--baseline-batches", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="also time this many threads")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args(argv)

    ds = datasets.load(args.dataset)
    n_img = B * max(args.batches, args.baseline_batches, 2)
    X = np.ascontiguousarray(ds.images[:n_img], dtype=np.float64)
    Y = datasets.one_hot(ds.labels[:n_img])
    nl = describe.load(args.net)

    def make(threads=1):
        net = C.build(nl)
        return ide_train.IDETrainer(net, ide_train.IDEHyper.for_network(net), seed=0,
                                    threads=threads)

    ref = make()
    hp = ref.hyper
    label = Path(args.net).stem
    shape = "-".join(str(n) for n in ref.net.sizes)
    rep = common.Report(f"bench_train_ide: IDE training step, {label} ({shape}), batch {B}, "
                        f"warm-up {hp.warmup} + T {hp.T} steps, loss {hp.loss} "
                        f"(samples/s, median of {args.repeats} interleaved repeats)")
    load0 = os.getloadavg()[0]
    print(f"# {label}: {shape}; warm-up {hp.warmup}, T {hp.T}, loss {hp.loss}, lr {hp.lr}, "
          f"momentum {hp.momentum}, weight decay {hp.weight_decay}, adjoint iterations <= "
          f"{hp.iterations}; {args.dataset}; load average {load0:.2f} on {os.cpu_count()} "
          f"CPUs", file=sys.stderr)

    # --- agreement on the first minibatch, from the same weights
    x0, y0 = X[:B], Y[:B]
    base = NumpyIDE(ref)
    rates_k, out_k, _ = ref.forward(x0)
    g_k = ref.gradients(x0, y0, rates_k)
    rates_n, out_n = base.forward(x0)
    readout_diff = float(np.abs(out_n - out_k).max())
    dW_same, db_same, loss_same = base.gradients(y0, rates_k)
    dW_own, db_own, loss_own = base.gradients(y0, rates_n)
    ref_grads = list(g_k.dW) + list(g_k.db)
    rel_same, cos_same = compare(dW_same + db_same, ref_grads)
    rel_own, cos_own = compare(dW_own + db_own, ref_grads)
    differ = [float(np.mean(rates_n[r] != rates_k[r])) for r in (1, 2)]
    rep.add(f"grad_{label}_same_rates_max_rel_diff", rel_same * 1e9, "ppb",
            max_rel_diff=float(f"{rel_same:.4g}"), cosine_min=cos_same,
            loss_numpy=round(loss_same, 6), loss_neuroemu=round(g_k.loss, 6),
            note="backward only: both at neuroemu's rates")
    rep.add(f"grad_{label}_own_forward_max_rel_diff", rel_own * 1e9, "ppb",
            max_rel_diff=float(f"{rel_own:.4g}"), cosine_min=cos_own,
            rates_differing_hidden=round(differ[0], 5), rates_differing_output=round(differ[1], 5),
            readout_max_abs_diff=float(f"{readout_diff:.4g}"),
            note="each at its own forward pass: spikes may differ by float32 rounding")
    base.adjoint_iterations.clear()

    # --- 1 thread == 2 threads (the engine's samples in parallel) on two minibatches
    one, two = make(1), make(args.threads)
    for i in range(2):
        one.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])
        two.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])
    identical = all(np.array_equal(a, b) for a, b in zip(one.W, two.W)) and \
        all(np.array_equal(a, b) for a, b in zip(one.b, two.b))

    # --- throughput, interleaved repeats
    base = NumpyIDE(make())
    t1, t2 = make(1), make(args.threads)
    for tr in (t1, t2):
        tr.train_batch(x0, y0)                             # compile / warm
    base.train_batch(x0, y0)
    base.times = dict.fromkeys(base.times, 0.0)
    nb = {"numpy": args.baseline_batches, "1thread": args.batches,
          f"{args.threads}threads": args.batches}
    fns = {"numpy": lambda i: base.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
           "1thread": lambda i: t1.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
           f"{args.threads}threads":
               lambda i: t2.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])}
    res = {k: [] for k in fns}
    for _ in range(args.repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            for i in range(nb[key]):
                fn(i)
            res[key].append(nb[key] * B / (time.perf_counter() - t0))
    base_sps = statistics.median(res["numpy"])
    rep.add(f"train_ide_{label}_numpy", base_sps, "samples/s",
            best=round(max(res["numpy"]), 2), min=round(min(res["numpy"]), 2))
    for key in list(fns)[1:]:
        v = statistics.median(res[key])
        rep.add(f"train_ide_{label}_{key}", v, "samples/s", base_sps, v / base_sps,
                best=round(max(res[key]), 2), min=round(min(res[key]), 2))
    n_np = args.repeats * nb["numpy"]
    tot_np = sum(base.times.values())
    for k, v in base.times.items():
        rep.add(f"stage_{label}_numpy_{k}", v / n_np * 1e3, "ms/minibatch",
                share=round(v / tot_np, 3))

    if not args.no_profile:
        for threads, tr in ((1, t1), (args.threads, t2)):
            T, S, its_k = stages(tr, X, Y, max(args.batches, 1))
            total = sum(T.values())
            for k, v in T.items():
                rep.add(f"stage_{label}_{threads}thread_{k.split(' (')[0]}", v * 1e3,
                        "ms/minibatch", share=round(v / total, 3))
            if threads == 1:
                g = T["ide_gradients"]
                for k, v in S.items():
                    rep.add(f"stage_{label}_1thread_ide_{k.replace(' ', '_')}", v * 1e3,
                        "ms/minibatch",
                            share_of_ide_gradients=round(v / g, 3) if g else None)

    rep.table()
    its = base.adjoint_iterations
    its_k = its_k if not args.no_profile else []
    print(f"\n  NumPy baseline {base_sps:.1f} samples/s ({min(res['numpy']):.1f} .. "
          f"{max(res['numpy']):.1f}); " + "; ".join(
              f"neuroemu {k.replace('thread', ' thread')} {statistics.median(res[k]):.1f} "
              f"({min(res[k]):.1f} .. {max(res[k]):.1f})" for k in list(fns)[1:]),
          file=sys.stderr)
    print(f"  gradient, NumPy vs neuroemu at the same rates: max rel diff {rel_same:.2e} "
          f"(min cosine {cos_same:.12f}); each at its own forward pass: {rel_own:.2e} "
          f"(min cosine {cos_own:.6f}), rates differing: hidden {differ[0]:.2%}, output "
          f"{differ[1]:.2%}, outputs' readout (mean drive) max |diff| {readout_diff:.1e} "
          f"(float32 sums in BLAS order vs sender order: spikes at the "
          f"threshold can flip, so this comparison is loose by nature)", file=sys.stderr)
    print(f"  1 thread == {args.threads} threads bit for bit: {identical}; adjoint iterations "
          f"per minibatch: baseline {min(its)}..{max(its)}" + (
              f", neuroemu {min(its_k)}..{max(its_k)}" if its_k else ""),
          file=sys.stderr)
    print(f"  load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, on "
          f"{os.cpu_count()} CPUs: wall-clock figures taken under that load (other "
          f"processes share the cores; the 2-thread figure most of all)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
