"""Training throughput of the paper's binary MNIST network (784-500-10) with EP.

One training step = a free phase of 100 steps, a nudged phase of 50 steps (beta = +-0.5),
and the first-order weight update, on a minibatch of 20 MNIST training images; neurons are
sigma-delta encoders with predictive coding (lambda = 0.275) and OSA step sizes
(nu_bar = 0.0346) -- every spike is emulated.  Three runs share the same
process and the same minibatches:

- ``neuroemu.learn.eqprop.Trainer`` (lockstep sessions, numba kernels), 1 thread and 2 threads;
- the baseline: a plain NumPy implementation of the same training step, vectorised over
  the minibatch (spike delivery as a dense float32 matrix product), one BLAS thread.

The two thread counts are bit-identical (checked here); the NumPy baseline sums the float32
deliveries in BLAS order, so it agrees only to float32 rounding (its distance from the
kernel is printed).  Every figure is the median of ``--repeats`` timings (the machine is
shared: look at the spread, printed in the table); the JSON lines also carry the best
repeat (``best``), which is what the code does when nothing else runs.

    .venv/bin/python benchmarks/bench_train.py [--batches 25] [--repeats 3]
    .venv/bin/python benchmarks/bench_train.py --stages     # where a minibatch's time goes
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the baseline gets one thread, like the kernel
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import common  # noqa: E402  (a NumPy neuron step shared with bench_train_conv.py)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neuroemu.engines import compiled as C  # noqa: E402
from neuroemu.learn import datasets
from neuroemu.learn import eqprop
from neuroemu import describe  # noqa: E402
from neuroemu.engines import kernels as K  # noqa: E402
from neuroemu.engines import fixedpoint  # noqa: E402


# ----------------------------------------------------------------------------- baseline

class NumpyEP:
    """Plain NumPy EP training step for a network whose layers all use sigma-delta with
    predictive coding (constant lambda) and OSA step sizes (docs/model.md sections 3-4)."""

    def __init__(self, net, hyper):
        lp = net.lp
        if not (np.all(lp[:, K.LP_ENC] == K.ENC_SIGMA_DELTA) and np.all(lp[:, K.LP_PRED] == 1)
                and np.all(lp[1:, K.LP_ANNK] == K.ANN_OSA)
                and np.all(lp[:, K.LP_LAMK] == K.SCHED_CONSTANT)):
            raise SystemExit("NumpyEP: only sigma-delta + predictive + OSA networks")
        self.lam = float(lp[0, K.LP_LAMA])
        self.nu_bar = float(lp[1, K.LP_ANNA])
        self.reg = float(lp[1, K.LP_ANNB])
        self.sizes = net.sizes
        self.L = len(self.sizes) - 1
        self.W = [net.weights(l).astype(np.float64) for l in range(self.L)]
        self.b = [net.biases(l).copy() for l in range(self.L + 1)]
        self.hyper = hyper

    def reset(self, x):
        B = len(x)
        z = lambda n: np.zeros((B, n))  # noqa: E731
        self.x = x
        self.t = 0
        self.nu = 1.0
        self.s = [x] + [z(n) for n in self.sizes[1:]]
        self.v = [None] + [z(n) for n in self.sizes[1:]]
        self.osa = [None] + [[z(n) for _ in range(4)] for n in self.sizes[1:]]
        self.phi = [z(n) for n in self.sizes]
        self.xm = [z(n) for n in self.sizes]
        self.q = [np.zeros((B, n), np.float32) for n in self.sizes]
        self.spikes = np.zeros(B)

    def run(self, steps, beta=0.0, y=None):
        lam, L = self.lam, self.L
        W32 = [w.astype(np.float32) for w in self.W]
        for _ in range(steps):
            self.t += 1
            self.nu = self.nu / (1.0 + self.nu - self.nu_bar)
            nu = self.nu
            u = []
            for l in range(1, L + 1):
                acc = self.q[l - 1] @ W32[l - 1]
                if l < L:
                    acc = acc + self.q[l + 1] @ W32[l].T
                u.append(acc)
            for l in range(1, L + 1):
                s = self.s[l]
                common.osa_neuron_step(
                    s, self.v[l], u[l - 1], self.b[l], self.osa[l], lam, nu, self.reg,
                    self.t == 1, 2.0 * beta * (y - s) if l == L and beta != 0.0 else None)
            for l in range(L + 1):
                c = np.clip(self.s[l], 0.0, 1.0)
                cq = (c - (1.0 - lam) * self.xm[l]) / lam
                self.xm[l] = c
                p = self.phi[l] + cq
                fire = p > 0.5
                self.phi[l] = p - fire
                self.q[l] = fire.astype(np.float32)
                self.spikes += fire.sum(axis=1)

    def train_batch(self, x, y, beta_signed):
        hp = self.hyper
        self.reset(x)
        self.run(hp.n_free)
        s_free = [s.copy() for s in self.s]
        self.run(hp.n_nudged, beta_signed, y)
        s_nudged = [s.copy() for s in self.s]
        B = len(x)
        for l in range(self.L):   # first-order rule as BLAS matrix products
            a0, a1, b0, b1 = s_free[l], s_free[l + 1], s_nudged[l], s_nudged[l + 1]
            dw = (a0.T @ (b1 - a1) + (b0 - a0).T @ a1) / (beta_signed * B)
            self.W[l] += hp.rates[l] * dw
            self.b[l + 1] += hp.rates[l] * (b1 - a1).mean(axis=0) / beta_signed
        return s_free


# ----------------------------------------------------------------------------- timing

def timed(fn, n):
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t0


def stages(trainer, X, Y, B, n):
    """Mean ms per minibatch of each stage of Trainer.train_batch, over n minibatches."""
    hp = trainer.hyper
    T = dict.fromkeys(("reset", "free phase", "nudged phase", "weight update"), 0.0)
    for i in range(n):
        x, y = np.ascontiguousarray(X[i * B:(i + 1) * B]), Y[i * B:(i + 1) * B]
        t0 = time.perf_counter()
        sess = trainer._session(x, np.arange(B) + i * B)
        t1 = time.perf_counter()
        trainer.advance(sess, hp.n_free)
        s_free = trainer._states(sess, x)
        t2 = time.perf_counter()
        trainer.advance(sess, hp.n_nudged, 0.5, y)
        s_nudged = trainer._states(sess, x)
        t3 = time.perf_counter()
        trainer.apply_update(s_free, s_nudged, 0.5)
        t4 = time.perf_counter()
        for k, dt in zip(T, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            T[k] += dt
    return {k: 1e3 * v / n for k, v in T.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=25, help="minibatches per timing")
    ap.add_argument("--baseline-batches", type=int, default=4,
                    help="minibatches per timing of the NumPy baseline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also append the JSON lines to FILE")
    ap.add_argument("--stages", action="store_true",
                    help="only time the stages of a training step (ms per minibatch)")
    args = ap.parse_args(argv)

    ds = datasets.load("mnist")
    B = 20
    n_img = B * max(args.batches, args.baseline_batches)
    X = ds.images[:n_img]
    Y = datasets.one_hot(ds.labels[:n_img])
    nl = describe.load(ROOT / "neuroemu" / "data" / "netlists" / "mnist-binary.toml")

    def make(threads=1, bits=None):
        net = C.build(nl if bits is None else fixedpoint.to_fixed(nl, bits))
        return eqprop.Trainer(net, eqprop.Hyper.for_network(net), seed=0, threads=threads)

    if args.stages:
        print("ms per minibatch of 20 (mean of --batches minibatches, after 3 warm-up ones)")
        for threads in (1, 2):
            tr = make(threads)
            for i in range(3):
                tr.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])
            T = stages(tr, X, Y, B, args.batches)
            print(f"  {threads} thread{'s' if threads > 1 else ''}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in T.items())
                  + f"; total {sum(T.values()):.2f} -> {B * 1e3 / sum(T.values()):.0f} samples/s")
        return 0

    # exactness: one thread and two threads train bit for bit alike
    one, two = make(1), make(2)
    for i in range(2):
        one.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])
        two.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B])
    identical = all(np.array_equal(a, b) for a, b in zip(one.W, two.W))

    # the baseline against the kernel on the same minibatch (free-phase states)
    ref = make()
    base = NumpyEP(ref.net, ref.hyper)
    s_np = base.train_batch(X[:B], Y[:B], 0.5)
    s_k, _, _ = ref.phases(X[:B], Y[:B], 0.5)
    agree = max(float(np.abs(a - b).max()) for a, b in zip(s_np[1:], s_k[1:]))

    t1, t2 = make(1), make(2)
    t2.train_batch(X[:B], Y[:B])  # compile the parallel build
    runs = {"numpy": (lambda i: base.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B], 0.5),
                      args.baseline_batches),
            "1thread": (lambda i: t1.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
                        args.batches),
            "2threads": (lambda i: t2.train_batch(X[i * B:(i + 1) * B], Y[i * B:(i + 1) * B]),
                         args.batches)}
    # the same training with 8-bit weights (docs/arithmetic.md): float masters, every phase
    # on the grid, the spiking layers summing int8 mantissas
    f1 = make(1, bits=8)
    f1.train_batch(X[:B], Y[:B])
    runs["fixed8_1thread"] = (lambda i: f1.train_batch(X[i * B:(i + 1) * B],
                                                       Y[i * B:(i + 1) * B]), args.batches)
    # interleaved repeats, so that a change of machine load hits every implementation alike
    results = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for _ in range(args.repeats):
        for key, (fn, nb) in runs.items():
            c0 = time.process_time()
            t = timed(fn, nb)
            results[key].append(nb * B / t)
            cpu[key].append(nb * B / (time.process_time() - c0))

    base_sps = statistics.median(results["numpy"])
    lines = []
    for key, label in (("1thread", "train_binary_784-500-10_1thread"),
                       ("2threads", "train_binary_784-500-10_2threads")):
        v = statistics.median(results[key])
        lines.append({"name": label, "value": round(v, 1), "unit": "samples/s",
                      "best": round(max(results[key]), 1),
                      "baseline": round(base_sps, 1), "ratio": round(v / base_sps, 2)})
    v = statistics.median(results["fixed8_1thread"])
    float1 = statistics.median(results["1thread"])
    lines.append({"name": "train_fixed8_784-500-10_1thread", "value": round(v, 1),
                  "unit": "samples/s", "best": round(max(results["fixed8_1thread"]), 1),
                  "baseline": round(float1, 1), "ratio": round(v / float1, 2),
                  "baseline_is": "train_binary_784-500-10_1thread"})
    for d in lines:
        print(json.dumps(d))
    if args.json:
        with open(args.json, "a") as f:
            for d in lines:
                f.write(json.dumps(d) + "\n")
    print()
    print(f"EP training step, 784-500-10 binary, batch {B}, 100 free + 50 nudged steps "
          f"(samples/s of wall time, median of {args.repeats} interleaved repeats, min..max; "
          f"and per CPU-second of this process)")
    for key in ("numpy", "1thread", "2threads", "fixed8_1thread"):
        r = results[key]
        print(f"  {key:<22} {statistics.median(r):8.1f}   ({min(r):.1f} .. {max(r):.1f})"
              f"   per CPU-second {statistics.median(cpu[key]):8.1f}")
    print(f"  1 thread == 2 threads bit for bit: {identical}; "
          f"NumPy baseline vs kernel, max |s| difference after the free phase: {agree:.2e}")
    print(f"  load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
