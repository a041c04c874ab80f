"""The engine on networks as graphs (issue 13) against the graph reference
(tests/reference_graph.py): whole runs spike for spike and state for state with their
counters, every projection kind's delivery in both directions against the matrix it implies,
and the graph kernel against the chain kernel on chains.

The networks are the format-2 dicts of test_graph_reference.py, loaded here through
``describe.from_dict`` (the stand-in objects of that file are checked against the loader).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import reference as ref
from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import kernels as K
from test_graph_reference import (CONVS, NETWORKS, conv_case, inputs, network, pop, proj,
                                  sparse_weights, stand_in, targets)
from test_kernels import VARIANTS


def load(raw):
    return describe.from_dict(raw, path="<test>")


def run_graph_both(net, x, steps, beta=0.0, y=None, free=None, seed=11):
    """The engine (recording everything) and GraphNetwork per sample: both records and the
    counters (engine summed over its phases, reference per sample)."""
    cn = build(net)
    sess = engines.session(cn, x, seed=seed)
    f = steps if free is None else free
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    ph = [sess.run(f, **rec)]
    if f < steps:
        ph.append(sess.run(steps - f, beta=beta, target=y, **rec))
    got = {"spikes": np.concatenate([p.spikes for p in ph]),
           "states": np.concatenate([p.states for p in ph]),
           "membranes": np.concatenate([p.extra[:, :, 0] for p in ph]),
           "syn_events": sum(p.counters["syn_events"] for p in ph),
           "spike_counts": sum(p.counters["spikes"] for p in ph)}
    qs, ss, vs, syn, cnt = [], [], [], [], []
    for b in range(x.shape[0]):
        r = ref.GraphNetwork(net, x[b], seed=int(sess.seeds[b]))
        q_b, s_b, v_b = [], [], []
        for t in range(1, steps + 1):
            nudged = t > f and y is not None
            q_b.append(r.step(beta if nudged else 0.0, y[b] if nudged else None))
            s_b.append(r.states())
            v_b.append(r.membranes())
        qs.append(q_b)
        ss.append(s_b)
        vs.append(v_b)
        syn.append(r.syn_events)
        cnt.append(r.spikes)
    want = {"spikes": np.array(qs).transpose(1, 0, 2) != 0,
            "states": np.array(ss).transpose(1, 0, 2),
            "membranes": np.array(vs).transpose(1, 0, 2),
            "syn_events": np.array(syn), "spike_counts": np.array(cnt)}
    return cn, got, want


def columns(net, keep):
    """Neuron columns of the populations for which keep(population) holds."""
    cols, k = [], 0
    for p in net.populations:
        if keep(p):
            cols += range(k, k + p.size)
        k += p.size
    return np.array(cols, dtype=int)


# --------------------------------------------------------------------------- the loader


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_loader_reads_the_networks_as_the_stand_in_does(name):
    """The reference tests' stand-in objects mean what describe.from_dict makes of the same
    dicts: implied matrices, synapses, biases and neuron parameters."""
    raw = NETWORKS[name]()
    net, alt = load(raw), stand_in(raw)
    assert net.format == 2
    assert [p.name for p in net.populations] == [p.name for p in alt.populations]
    for p, a in zip(net.populations, alt.populations):
        assert (p.role, p.size, p.dims) == (a.role, a.size, a.dims)
        assert np.array_equal(p.bias, a.bias)
        assert p.neuron.model == a.neuron.model
        keys = (("encoder", "predictive", "decoder") if a.neuron.model == "paper"
                else ("threshold", "leak", "reset", "v0"))
        for k in keys:
            assert getattr(p.neuron, k) == getattr(a.neuron, k), (p.name, k)
        if a.neuron.model == "paper":
            assert p.neuron.lam.as_dict() == a.neuron.lam.as_dict()
            assert p.neuron.eps.as_dict() == a.neuron.eps.as_dict()
    assert len(net.projections) == len(alt.projections)
    for pj, aj in zip(net.projections, alt.projections):
        assert (pj.pre, pj.post, pj.kind, pj.symmetric) == (aj.pre, aj.post, aj.kind,
                                                             aj.symmetric)
        assert np.array_equal(ref.dense_matrix(net, pj), ref.dense_matrix(alt, aj))
        assert np.array_equal(ref.structure(net, pj), ref.structure(alt, aj))


# --------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_graph_run_matches_reference(name, seed):
    """Free then nudged phase (clocks straight through): every message, every non-input state
    exactly, and the counters: spikes per population, synaptic events per projection and
    direction (a conv spike counts the weights it touches)."""
    raw = NETWORKS[name]()
    net = load(raw)
    x, y = inputs(raw, 3, seed), targets(raw, 3, seed)
    cn, got, want = run_graph_both(net, x, 45, beta=0.5, y=y, free=30, seed=seed)
    assert cn.graph
    assert got["spikes"].shape == want["spikes"].shape
    cols = columns(net, lambda p: p.role != "input")
    mem = columns(net, lambda p: p.neuron.model != "paper")  # IF/LIF: extra's v is V
    for t in range(45):  # the first step that differs, not a wall of numbers
        assert np.array_equal(got["spikes"][t], want["spikes"][t]), f"messages at step {t + 1}"
        assert np.array_equal(got["states"][t][:, cols], want["states"][t][:, cols]), \
            f"states at step {t + 1}"
        assert np.array_equal(got["membranes"][t][:, mem], want["membranes"][t][:, mem]), \
            f"membrane potentials at step {t + 1}"
    assert np.array_equal(got["spike_counts"], want["spike_counts"])
    assert np.array_equal(got["syn_events"], want["syn_events"])
    assert got["spikes"].any()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_graph_kernel_equals_chain_kernel_on_chains(variant):
    """A format-1 chain forced onto the graph kernel gives the chain kernel's bits; and the
    graph reference agrees with both."""
    net = make_netlist([7, 5, 4, 3], VARIANTS[variant], seed=3, bias=0.05, gain=1.5)
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.2, 1.2, (3, 7))
    y = np.eye(3)[rng.integers(0, 3, size=3)]
    chain, graph = build(net), build(net)
    assert not chain.graph
    graph.graph = True
    out = []
    for cn in (chain, graph):
        sess = engines.session(cn, x, seed=4)
        ph = [sess.run(40, record_spikes=True, record_states=True),
              sess.run(20, beta=0.5, target=y, record_spikes=True, record_states=True)]
        out.append(ph)
    for a, b in zip(*out):
        assert np.array_equal(a.spikes, b.spikes)
        assert np.array_equal(a.states[:, :, 7:], b.states[:, :, 7:])
        for k in a.counters:
            assert np.array_equal(a.counters[k], b.counters[k]), k
    _, got, want = run_graph_both(net, x, 60, beta=0.5, y=y, free=40, seed=4)
    assert np.array_equal(got["spikes"], want["spikes"])
    assert np.array_equal(got["syn_events"], want["syn_events"])


# --------------------------------------------------------------------------- one delivery


def single(kind, pre_shape, post_shape, weights=None, **kw):
    """input -> a (the pre under test, so it can receive backwards) -> b (output)."""
    pops = [pop("i", "input", size=1), pop("a", shape=pre_shape),
            pop("b", "output", shape=post_shape)]
    n_a = int(np.prod(pre_shape))
    raw = network(pops, [proj("i", "a", [[0.5] * n_a]),
                         proj("a", "b", weights, kind=kind, **kw)])
    return load(raw)


def delivery_cases():
    rng = np.random.default_rng(21)
    cases = []
    for c, (in_shape, co, k, s, p) in enumerate(CONVS):
        _, pj, wt, out = conv_case(in_shape, co, k, s, p, seed=c)
        cases.append((f"conv{c}", lambda i=in_shape, o=out, w=wt, k=k, s=s, p=p: single(
            "conv2d", i, o, w.tolist(), kernel_size=list(k), stride=list(s), padding=list(p))))
    for shape, k, s in (((2, 4, 6), (2, 2), (2, 2)), ((1, 5, 7), (2, 3), (2, 3)),
                        ((3, 5, 5), (3, 3), (1, 1))):
        out = (shape[0], (shape[1] - k[0]) // s[0] + 1, (shape[2] - k[1]) // s[1] + 1)
        cases.append((f"pool{k}{s}", lambda i=shape, o=out, k=k, s=s: single(
            "avgpool2d", i, o, kernel_size=list(k), stride=list(s))))
    sw = sparse_weights(rng, 9, 7, 0.3, 1.0)
    cases.append(("sparse", lambda: single("sparse", (9,), (7,), sw)))
    dw = rng.normal(size=(6, 5)).tolist()
    cases.append(("dense", lambda: single("dense", (6,), (5,), dw)))
    ow = rng.normal(size=8).tolist()
    cases.append(("one_to_one", lambda: single("one_to_one", (2, 2, 2), (8,), ow)))
    return cases


DELIVERY = delivery_cases()


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("d", [0, 1])
@pytest.mark.parametrize("case", [c[0] for c in DELIVERY])
def test_deliver_projection_equals_implied_matrix(case, d, binary):
    """K.deliver_projection of projection a -> b, forward (d = 0: a's messages into b with W)
    and backward (d = 1: b's into a with W^T), equals the reference's delivery with the rows of
    float32(dense_matrix) exactly, into an accumulator already holding values, and returns the
    weights touched."""
    net = dict(DELIVERY)[case]()
    cn = build(net)
    pj = net.projections[1]
    m = ref.dense_matrix(net, pj)
    has = ref.structure(net, pj)
    W32 = m.astype(np.float32) if d == 0 else m.T.astype(np.float32)
    fan = has.sum(axis=1) if d == 0 else has.sum(axis=0)
    n_send, n_recv = W32.shape
    rng = np.random.default_rng(zlib.crc32(f"{case} {d} {binary}".encode()))
    for density in (0.1, 0.5, 1.0):
        s_lo, u_lo = 5, 3
        q = np.zeros(s_lo + n_send + 4)
        msg = (rng.random(n_send) < density).astype(float)
        if not binary:
            msg *= rng.uniform(-0.5, 1.5, n_send)
        q[s_lo:s_lo + n_send] = msg
        ev = np.zeros(len(q), dtype=np.int32)
        nz = np.flatnonzero(msg).astype(np.int32)
        ev[s_lo:s_lo + len(nz)] = nz
        u = np.zeros(u_lo + n_recv + 2, dtype=np.float32)
        u[u_lo:u_lo + n_recv] = rng.normal(size=n_recv).astype(np.float32)
        want = u[u_lo:u_lo + n_recv].copy()
        ref.deliver_into(want, msg, W32)
        n = K.deliver_projection(cn.pj, 1, d, q, ev, s_lo, len(nz), binary, cn.wf, cn.wb,
                                 cn.ix, u, u_lo)
        assert np.array_equal(u[u_lo:u_lo + n_recv], want)
        assert not u[:u_lo].any() and not u[u_lo + n_recv:].any()
        assert n == int(fan[nz].sum())


@pytest.mark.parametrize("name", ["conv", "mixed"])
def test_threads_give_the_reference_bits(name):
    """The parallel graph kernel (threads = 2) gives the single-threaded run's bits."""
    raw = NETWORKS[name]()
    net = load(raw)
    x, y = inputs(raw, 4, 7), targets(raw, 4, 7)
    out = []
    for threads in (1, 2):
        sess = engines.session(build(net), x, seed=3, threads=threads)
        ph = [sess.run(20, record_spikes=True, record_states=True),
              sess.run(10, beta=0.5, target=y, record_spikes=True, record_states=True)]
        out.append(ph)
    for a, b in zip(*out):
        assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.states, b.states)
        for k in a.counters:
            assert np.array_equal(a.counters[k], b.counters[k]), k


def test_continuous_graph_engine_follows_matmul_dynamics():
    """Real-valued messages on a graph of every kind: the engine follows the float64 dense
    dynamics (continuous_graph_run) to float32 delivery's rounding, free and nudged."""
    raw = NETWORKS["continuous"]()
    net = load(raw)
    x, y = inputs(raw, 3, 4), targets(raw, 3, 4)
    sess = engines.session(build(net), x)
    sess.run(40)
    sess.run(15, beta=0.7, target=y)
    s = ref.continuous_graph_run(net, x, 40)
    s = ref.continuous_graph_run(net, x, 15, beta=0.7, y=y, s=s)
    for r, p in enumerate(net.populations):
        if p.role != "input":
            np.testing.assert_allclose(sess.state(p.name), s[r], rtol=0, atol=1e-5)
