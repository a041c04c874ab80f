"""Time per network step (sigma-delta + predictive + OSA neurons) against a plain NumPy
implementation of the same step, measured in the same run.

    python benchmarks/bench_step.py [--steps 300] [--repeats 5] [--threads 2]

Prints one JSON line per figure, then a table on stderr.  ``ratio`` = NumPy time /
neuroemu time.  Inputs: for 784-500-10 a fixed synthetic MNIST-like batch (19% of pixels
on, mean intensity 0.13, so about 13% of the inputs spike per step); for 500-500-10 (the
Fig. 2 network) inputs uniform in [0, 1].  The ``step_fixed8_*`` rows run the same
networks with 8-bit weights (docs/arithmetic.md): their ``ratio`` is against the NumPy float32
step, ``vs_float`` against the float kernel's one-thread time of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common  # noqa: F401  (sets single-threaded BLAS before numpy loads)
import numpy as np

from neuroemu.engines import compiled as compiler
from neuroemu import engines
from neuroemu import describe
from neuroemu.engines import kernels as K
from neuroemu.engines import fixedpoint

NEURON = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
          "lam": {"kind": "constant", "value": 0.275}, "eps": {"kind": "osa", "nu_bar": 0.0346}}


def network(sizes):
    names = ["input"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["output"]
    raw = {"network": {"name": "bench", "seed": 1}, "neuron": NEURON,
           "population": [{"name": n, "size": s} for n, s in zip(names, sizes)],
           "projection": [{"pre": a, "post": b} for a, b in zip(names[:-1], names[1:])]}
    return compiler.build(describe.from_dict(raw, path="<bench>"))


def mnist_like(B, rng):
    return np.where(rng.random((B, 784)) < 0.19, rng.uniform(0.4, 1.0, (B, 784)), 0.0)


class NumpyStep:
    """The same step in plain vectorised NumPy (dense float32 matmuls for delivery)."""

    def __init__(self, cn, x):
        self.W = [cn.weights(l) for l in range(cn.n_layers - 1)]
        self.sizes = cn.sizes
        self.x = x
        B = x.shape[0]
        z = lambda n: np.zeros((B, n))  # noqa: E731
        n = self.sizes
        self.q = [np.zeros((B, k), dtype=np.float32) for k in n]
        self.s, self.v = [z(k) for k in n], [z(k) for k in n]
        self.xm, self.phi = [z(k) for k in n], [z(k) for k in n]
        self.th, self.ob, self.od, self.ol = ([z(k) for k in n] for _ in range(4))
        self.nu, self.t, self.lam, self.nu_bar, self.e = 1.0, 0, 0.275, 0.0346, 1e-15

    def step(self):
        self.t += 1
        L = len(self.sizes) - 1
        lam = self.lam
        self.nu = self.nu / (1 + self.nu - self.nu_bar)
        nu = self.nu
        for l in range(1, L + 1):
            u = self.q[l - 1] @ self.W[l - 1]
            if l < L:
                u = u + self.q[l + 1] @ self.W[l].T
            self.v[l] = (1 - lam) * self.v[l] + lam * u
            a = self.v[l]
            err = a - self.th[l]
            self.ob[l] = (1 - nu) * self.ob[l] + nu * err
            self.od[l] = (1 - nu) * self.od[l] + nu * err * err
            if self.t == 1:
                alpha = np.ones_like(a)
            else:
                var = (self.od[l] - self.ob[l] ** 2) / (1 + self.ol[l])
                alpha = 1 - (var + self.e) / (self.od[l] + self.e)
            self.ol[l] = (1 - alpha) ** 2 * self.ol[l] + alpha ** 2
            self.th[l] = (1 - alpha) * self.th[l] + alpha * a
            self.s[l] = np.clip((1 - alpha) * self.s[l] + alpha * a, 0, 1)
        for l in range(L + 1):
            c = np.clip(self.x if l == 0 else self.s[l], 0, 1)
            cp = (c - (1 - lam) * self.xm[l]) / lam
            self.xm[l] = c
            p = self.phi[l] + cp
            q = (p > 0.5).astype(np.float32)
            self.phi[l] = p - q
            self.q[l] = q


def fixed_rows(rep, args, name, cn, x, t_float, t_np):
    """The same network with 8-bit weights (docs/arithmetic.md), whose spiking layers sum
    int8 mantissas: time per step against the NumPy float32 step (``ratio``) and against
    the float kernel (``vs_float``); beside them the same 8-bit grid on the float32 kernels
    (``grid_f32_us``: what the int8 delivery saves) and the fixed-point network with silent
    inputs (``silent_input_us``: the neuron arithmetic, next to no deliveries).  All are timed
    in turn, ``--repeats`` rounds, so that the machine's load changes hit them alike; each
    figure is the median of its rounds."""
    fx = compiler.build(fixedpoint.to_fixed(cn.netlist, 8))
    assert fx.lp[1:, K.LP_FAST].all()
    grid = compiler.build(fixedpoint.to_fixed(cn.netlist, 8))
    grid.lp[:, K.LP_FAST] = 0.0          # the same grid on the float32 kernels
    for threads in (1, args.threads) if args.threads > 1 else (1,):
        ss = {"float": engines.session(cn, x, threads=threads),
              "fixed": engines.session(fx, x, threads=threads),
              "grid_f32": engines.session(grid, x, threads=threads),
              "silent": engines.session(fx, np.zeros_like(x), threads=threads)}
        ref = NumpyStep(cn, x)
        for sess in ss.values():
            sess.run(20)
        rounds = {k: [] for k in list(ss) + ["numpy"]}
        for _ in range(args.repeats):
            for key, sess in ss.items():
                t0 = time.perf_counter()
                sess.run(args.steps)
                rounds[key].append((time.perf_counter() - t0) / args.steps)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                ref.step()
            rounds["numpy"].append((time.perf_counter() - t0) / args.steps)
        t = {k: statistics.median(v) for k, v in rounds.items()}
        tag = "" if threads == 1 else f"_{threads}threads"
        rep.add(name.replace("step_", "step_fixed8_") + tag, t["fixed"] * 1e6, "us",
                t["numpy"] * 1e6, t["numpy"] / t["fixed"], threads=threads,
                float_us=round(t["float"] * 1e6, 3), vs_float=round(t["float"] / t["fixed"], 3),
                grid_f32_us=round(t["grid_f32"] * 1e6, 3),
                silent_input_us=round(t["silent"] * 1e6, 3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="also time this many threads")
    args = ap.parse_args()
    rep = common.Report("bench_step: time per network step (median of repeats)")
    rng = np.random.default_rng(0)
    cases = [("step_784-500-10_b1", (784, 500, 10), mnist_like(1, rng)),
             ("step_784-500-10_b20", (784, 500, 10), mnist_like(20, rng)),
             ("step_500-500-10_b20", (500, 500, 10), rng.random((20, 500)))]
    for name, sizes, x in cases:
        cn = network(sizes)
        sess = engines.session(cn, x)
        sess.run(20)  # compile, and leave the start-up transient

        def ours():
            sess.run(args.steps)
        t_ours = common.best_of(ours, args.repeats) / args.steps
        ref = NumpyStep(cn, x)
        for _ in range(20):
            ref.step()

        def numpy_version():
            for _ in range(args.steps):
                ref.step()
        t_np = common.best_of(numpy_version, max(1, args.repeats // 2)) / args.steps
        before = sess.counters()["syn_events"].sum()
        sess.run(args.steps)
        events = (sess.counters()["syn_events"].sum() - before) / args.steps
        spikes_in = sess.phases[-1].counters["spikes"][:, 0].sum() / args.steps / x.shape[0]
        rep.add(name, t_ours * 1e6, "us", t_np * 1e6, t_np / t_ours, threads=1,
                input_spike_fraction=round(spikes_in / sizes[0], 3))
        rep.add(name.replace("step_", "synevents_"), events / t_ours, "events/s", threads=1)
        if args.threads > 1 and x.shape[0] > 1:
            sess2 = engines.session(cn, x, threads=args.threads)
            sess2.run(20)
            t2 = common.best_of(lambda: sess2.run(args.steps), args.repeats) / args.steps
            rep.add(f"{name}_{args.threads}threads", t2 * 1e6, "us", t_ours * 1e6, t_ours / t2,
                    threads=args.threads)
        if x.shape[0] > 1:
            fixed_rows(rep, args, name, cn, x, t_ours, t_np)
    # the machine's limit for the same delivery loop: the row-add kernel alone on the
    # 784-500-10 input projection, all rows resident, no neuron arithmetic
    cn = network((784, 500, 10))
    q = (rng.random(784) < 0.13).astype(np.float64)
    ev = np.flatnonzero(q).astype(np.int32)
    u = np.zeros(cn.n_neurons, dtype=np.float32)

    def deliver_only():
        for _ in range(2000):
            K.deliver(q, ev, 0, len(ev), True, cn.wf, 0, 500, u, 784)
    t_d = common.best_of(deliver_only, args.repeats) / 2000
    rep.add("delivery_loop_limit", len(ev) * 500 / t_d, "events/s", threads=1)
    integer_rows(rep, args, mnist_like(20, rng))
    rep.table()


def integer_rows(rep, args, x):
    """Integer neurons (docs/arithmetic.md) have no OSA, so they are timed on 784-500-10 with
    a constant step size (eps 0.5, otherwise the rows above): float, 8-bit weights, and 8-bit
    weights with integer neurons (state_bits 16, step_bits 12), in turn, median of rounds;
    ``ratio`` = float time / this time."""
    neuron = {**NEURON, "eps": {"kind": "constant", "eps0": 0.5}}
    names = ["input", "h1", "output"]
    raw = {"network": {"name": "bench", "seed": 1}, "neuron": neuron,
           "population": [{"name": n, "size": s} for n, s in zip(names, (784, 500, 10))],
           "projection": [{"pre": a, "post": b} for a, b in zip(names[:-1], names[1:])]}
    net = describe.from_dict(raw, path="<bench>")
    ss = {"float": engines.session(compiler.build(net), x),
          "fixed8": engines.session(compiler.build(fixedpoint.to_fixed(net, 8)), x),
          "int_neurons": engines.session(
              compiler.build(fixedpoint.to_fixed(net, 8, state_bits=16)), x)}
    for sess in ss.values():
        sess.run(20)
    rounds = {k: [] for k in ss}
    for _ in range(args.repeats):
        for key, sess in ss.items():
            t0 = time.perf_counter()
            sess.run(args.steps)
            rounds[key].append((time.perf_counter() - t0) / args.steps)
    t = {k: statistics.median(v) for k, v in rounds.items()}
    for key in ("fixed8", "int_neurons"):
        rep.add(f"step_{key}_const-eps_784-500-10_b20", t[key] * 1e6, "us", t["float"] * 1e6,
                t["float"] / t[key], threads=1)


if __name__ == "__main__":
    main()
