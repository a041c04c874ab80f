"""Event-driven delivery on graph networks against the same operation done densely in
NumPy, measured in the same run.

    python benchmarks/bench_graph.py [--repeats 5]

1. conv delivery: one sample's spikes through the two convolutions of the shipped conv-ep
   network (image 1x28x28 -> 32x24x24 and pool1 32x12x12 -> 64x8x8, 5x5 kernels), forwards
   and backwards (the transposed scatter), with 1%, 10% and 50% of the sending population
   spiking, against the same convolution done densely in NumPy (float32: a sliding-window
   tensordot forwards, its transpose -- a full correlation with the flipped kernel --
   backwards).  ``ratio`` = NumPy time / neuroemu time (> 1: event-driven is faster).
2. synaptic events per second of each projection kind (weights touched per second of
   ``deliver_projection``), at 10% of the senders spiking.
3. the price of generality: a step of the 784-500-10 binary network (batch 20) on the graph
   kernel against the chain kernel it runs on (the same bits), and a step of each shipped
   graph network (batch 20, MNIST-like synthetic input).

Prints one JSON line per figure, then a table on stderr.
"""

from __future__ import annotations

import argparse

import common
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neuroemu import describe
from neuroemu.engines import compiled as compiler
from neuroemu.engines import kernels as K

LOOPS = 20


def conv_forward_numpy(x, w):
    """out[co, oy, ox] = sum_(ci, ky, kx) w[co, ci, ky, kx] x[ci, oy + ky, ox + kx]."""
    win = sliding_window_view(x, w.shape[2:], axis=(1, 2))      # (ci, ho, wo, kh, kw)
    return np.tensordot(w, win, axes=([1, 2, 3], [0, 3, 4]))    # (co, ho, wo)


def conv_backward_numpy(y, w):
    """The transpose: in[ci, iy, ix] = sum_(co, ky, kx) w[co, ci, ky, kx] y[co, iy-ky, ix-kx]."""
    kh, kw = w.shape[2:]
    yp = np.pad(y, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    win = sliding_window_view(yp, (kh, kw), axis=(1, 2))        # (co, hi, wi, kh, kw)
    return np.tensordot(w[:, :, ::-1, ::-1], win, axes=([0, 2, 3], [0, 3, 4]))


def one_projection(raw_pops, proj):
    """A compiled two-population network holding one projection (continuous senders so
    that every message is delivered as its value; binary delivery is timed with
    ``binary=True``)."""
    raw = {"network": {"name": "bench", "format": 2, "seed": 3},
           "neuron": {"encoder": "sigma_delta"}, "population": raw_pops, "projection": [proj]}
    return compiler.build(describe.from_dict(raw, path="<bench>"))


def timed_delivery(cn, p, d, frac, rng, repeats):
    """Seconds per delivery of one sample's spikes (a fraction ``frac`` of the senders)
    through projection p in direction d, and the synaptic events it counts."""
    src = int(cn.pj[p, K.PJ_PRE if d == 0 else K.PJ_POST])
    dst = int(cn.pj[p, K.PJ_POST if d == 0 else K.PJ_PRE])
    n_src, n_dst = cn.sizes[src], cn.sizes[dst]
    q = (rng.random(n_src) < frac).astype(np.float64)
    ev = np.flatnonzero(q).astype(np.int32)
    u = np.zeros(n_dst, dtype=np.float32)
    syn = K.deliver_projection(cn.pj, p, d, q, ev, 0, len(ev), True, cn.wf, cn.wb, cn.ix, u, 0)

    def run():
        for _ in range(LOOPS):
            u[:] = 0.0
            K.deliver_projection(cn.pj, p, d, q, ev, 0, len(ev), True, cn.wf, cn.wb, cn.ix,
                                 u, 0)
    return common.best_of(run, repeats) / LOOPS, int(syn), q, u


CONVS = {
    "conv1": ([{"name": "a", "shape": [1, 28, 28], "role": "input"},
               {"name": "b", "shape": [32, 24, 24], "role": "output"}]),
    "conv2": ([{"name": "a", "shape": [32, 12, 12], "role": "input"},
               {"name": "b", "shape": [64, 8, 8], "role": "output"}]),
}


def bench_conv(rep, rng, repeats):
    for name, pops in CONVS.items():
        # the backward direction needs a receiving population that is not clamped
        pops = [dict(pops[0], role="hidden"), pops[1],
                {"name": "in", "size": 1, "role": "input"}]
        cn = one_projection(pops, {"pre": "a", "post": "b", "kind": "conv2d",
                                   "kernel_size": 5, "weights": {"init": "glorot_uniform"}})
        w = cn.weights(0)
        for d, direction in ((0, "forward"), (1, "backward")):
            for frac in (0.01, 0.10, 0.50):
                t, syn, q, u = timed_delivery(cn, 0, d, frac, rng, repeats)
                shape = tuple(cn.netlist.populations[0 if d == 0 else 1].dims)
                x = q.reshape(shape).astype(np.float32)
                dense = (lambda: conv_forward_numpy(x, w)) if d == 0 else \
                    (lambda: conv_backward_numpy(x, w))
                got = dense().reshape(-1)
                assert np.allclose(got, u, rtol=1e-4, atol=1e-5), "NumPy baseline disagrees"
                t_np = common.best_of(lambda: [dense() for _ in range(LOOPS)], repeats) / LOOPS
                rep.add(f"{name}_{direction}_{int(frac * 100)}pct", t * 1e6, "us", t_np * 1e6,
                        t_np / t, syn_events=syn, spikes=int(q.sum()))


def bench_kinds(rep, rng, repeats):
    flat = [{"name": "a", "size": 784}, {"name": "b", "size": 500, "role": "output"},
            {"name": "in", "size": 1, "role": "input"}]
    maps = [{"name": "a", "shape": [32, 24, 24]}, {"name": "b", "shape": [32, 12, 12],
                                                   "role": "output"},
            {"name": "in", "size": 1, "role": "input"}]
    same = [{"name": "a", "size": 4608}, {"name": "b", "size": 4608, "role": "output"},
            {"name": "in", "size": 1, "role": "input"}]
    cases = [("dense_784x500", flat, {"pre": "a", "post": "b"}),
             ("sparse_784x500_10pct", flat, {"pre": "a", "post": "b", "kind": "sparse",
                                              "weights": {"init": "glorot_uniform",
                                                          "density": 0.1}}),
             ("conv_32x12x12_to_64x8x8", list(CONVS["conv2"]), None),
             ("avgpool_32x24x24", maps, {"pre": "a", "post": "b", "kind": "avgpool2d",
                                         "kernel_size": 2}),
             ("one_to_one_4608", same, {"pre": "a", "post": "b", "kind": "one_to_one",
                                        "weights": 0.5})]
    for name, pops, proj in cases:
        if proj is None:
            pops = [dict(pops[0], role="hidden"), pops[1],
                    {"name": "in", "size": 1, "role": "input"}]
            proj = {"pre": "a", "post": "b", "kind": "conv2d", "kernel_size": 5,
                    "weights": {"init": "glorot_uniform"}}
        cn = one_projection(pops, proj)
        for d, direction in ((0, "forward"), (1, "backward")):
            t, syn, q, _ = timed_delivery(cn, 0, d, 0.10, rng, repeats)
            rep.add(f"synevents_{name}_{direction}", syn / t, "events/s", syn_events=syn)


def mnist_like(B, rng):
    return np.where(rng.random((B, 784)) < 0.19, rng.uniform(0.4, 1.0, (B, 784)), 0.0)


def bench_networks(rep, rng, repeats, steps=100):
    from neuroemu import engines
    x = mnist_like(20, rng)
    cn = compiler.build(describe.load("mnist-binary"))
    times = {}
    for graph in (False, True):
        cn.graph = graph
        sess = engines.session(cn, x)
        sess.run(20)
        times[graph] = common.best_of(lambda: sess.run(steps), repeats) / steps
    rep.add("step_784-500-10_b20_graph_kernel", times[True] * 1e6, "us", times[False] * 1e6,
            times[False] / times[True])
    for name in ("skip-binary", "feedback-lif", "conv-ep"):
        cn = compiler.build(describe.load(name))
        sess = engines.session(cn, x)
        sess.run(20)
        before = sess.counters()["syn_events"].sum()
        t = common.best_of(lambda: sess.run(steps), repeats) / steps
        events = (sess.counters()["syn_events"].sum() - before) / ((repeats + 1) * steps)
        rep.add(f"step_{name}_b20", t * 1e6, "us", syn_events_per_step=int(events))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rep = common.Report("bench_graph: event-driven delivery per projection kind")
    rng = np.random.default_rng(0)
    bench_conv(rep, rng, args.repeats)
    bench_kinds(rep, rng, args.repeats)
    bench_networks(rep, rng, args.repeats)
    rep.table()


if __name__ == "__main__":
    main()
