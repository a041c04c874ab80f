"""The bus engine on graph networks (issue 13): with one shared clock and packets that reach
their receivers within a tick it is the lockstep engine spike for spike, state for state and
counter for counter, however the populations are cut into clusters, on a bus and on a mesh;
forced onto a chain it is the chain's bus engine bit for bit under any timing; and with
clocks, latency and bandwidth of their own its packets are conserved and counted.

The networks are the shared format-2 networks of test_graph_reference.py: convolutions with
stride and padding, average pools, sparse, one-to-one, skip connections, a symmetric lateral
and one-way recurrent projections, IF and LIF populations, several inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import asyncbus
from test_asyncbus import SD, SD_PRED_OSA, STOCH, CONT
from test_graph_reference import NETWORKS, inputs, targets

COMMON = ("spikes", "syn_events", "updates")
EXTRA = asyncbus.EXTRA_COUNTERS


def load(raw, hardware=None):
    if hardware is not None:
        raw = dict(raw, hardware=hardware)
    return build(describe.from_dict(raw, path="<test>"))


def two_phases(cn, x, y, engine, seed, free=30, nudged=15, **kw):
    sess = engines.session(cn, x, engine=engine, seed=seed, **kw)
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    p1 = sess.run(free, name="free", **rec)
    p2 = sess.run(nudged, beta=0.5, target=y, name="nudged", **rec)
    return sess, (p1, p2)


def assert_same(lock, asyn):
    """Every record (the first step that differs, not a wall of numbers), every phase's
    counters, the totals and the final states, exactly."""
    (ls, lphases), (as_, aphases) = lock, asyn
    for lp, ap in zip(lphases, aphases):
        assert (lp.t_start, lp.steps) == (ap.t_start, ap.steps)
        for t in range(lp.steps):
            assert np.array_equal(lp.spikes[t], ap.spikes[t]), f"{lp.name}: messages, step {t + 1}"
            assert np.array_equal(lp.states[t], ap.states[t]), f"{lp.name}: states, step {t + 1}"
            assert np.array_equal(lp.extra[t], ap.extra[t]), f"{lp.name}: v/eps/phi, step {t + 1}"
        for k in COMMON:
            assert np.array_equal(lp.counters[k], ap.counters[k]), k
    lc, ac = ls.counters(), as_.counters()
    for k in COMMON:
        assert lc[k].shape == ac[k].shape and np.array_equal(lc[k], ac[k]), k
    for name in ls.net.names:
        assert np.array_equal(ls.state(name), as_.state(name)), name


# Hardware under which every packet arrives after its sender's tick and before the receiver's
# next one: the bus engine must then be lockstep, bit for bit.
EQUIVALENT = {
    "default": None,                                   # one cluster per population
    "clusters_of_3": {"cluster_size": 3},
    "clusters_of_5_quanta_7": {"quanta": 7, "cluster_size": 5},
    "mesh_8x8": {"cluster_size": 3, "bus": {"topology": "mesh"},
                 "mesh": {"width": 8, "height": 8}},
    # at most 14 hops of 5 quanta: every packet is in time for the next tick (100 quanta)
    "mesh_latency": {"cluster_size": 4, "bus": {"topology": "mesh", "latency": 5},
                     "mesh": {"width": 8, "height": 8}},
}


@pytest.mark.parametrize("hw", list(EQUIVALENT))
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_graph_bus_engine_equals_lockstep(name, hw):
    raw = NETWORKS[name]()
    cn = load(raw)
    assert cn.graph
    x, y = inputs(raw, 3, 11), targets(raw, 3, 11)
    kw = {} if EQUIVALENT[hw] is None else {"hardware": EQUIVALENT[hw]}
    lock = two_phases(cn, x, y, "lockstep", 11)
    asyn = two_phases(cn, x, y, "async", 11, **kw)
    assert_same(lock, asyn)
    sess = asyn[0]
    c = sess.counters()
    assert c["late"].sum() == 0 and c["early"].sum() == 0 and c["received"].sum() > 0
    assert lock[1][0].spikes.any()
    lay = sess.layout
    if EQUIVALENT[hw] is not None:        # some population really is cut into clusters
        assert max(np.bincount(lay.layer)) > 1


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_equivalent_when_configured_in_the_netlist(name):
    raw = NETWORKS[name]()
    cn = load(raw, {"cluster_size": 2, "bus": {"latency": 3}})
    x, y = inputs(raw, 2, 5), targets(raw, 2, 5)
    assert_same(two_phases(cn, x, y, "lockstep", 4, free=20, nudged=10),
                two_phases(cn, x, y, "async", 4, free=20, nudged=10))


def test_a_format_2_toml_runs_on_the_bus_engine(tmp_path):
    """A written format-2 file with its [hardware]: conv, pool, a one-way skip, an IF output."""
    path = tmp_path / "g.toml"
    path.write_text("""
[network]
name = "g"
format = 2
seed = 3

[neuron]
encoder = "sigma_delta"
eps = { kind = "scheduled", eps0 = 1.0, eta = 0.5 }

[[population]]
name = "img"
role = "input"
shape = [1, 6, 6]

[[population]]
name = "c"
shape = [2, 3, 3]
bias = 0.05

[[population]]
name = "p"
shape = [2, 1, 1]

[[population]]
name = "out"
role = "output"
size = 3
neuron = { model = "if", threshold = 0.5 }

[[projection]]
pre = "img"
post = "c"
kind = "conv2d"
kernel_size = 3
stride = 2
padding = 1
weights = { init = "glorot_uniform", seed = 1, gain = 3.0 }

[[projection]]
pre = "c"
post = "p"
kind = "avgpool2d"
kernel_size = 3

[[projection]]
pre = "p"
post = "out"
weights = { init = "glorot_uniform", seed = 2, gain = 3.0 }

[[projection]]
pre = "img"
post = "out"
name = "skip"
symmetric = false
weights = { init = "glorot_uniform", seed = 3, gain = 2.0 }

[hardware]
cluster_size = 4
""")
    cn = build(describe.load(path))
    assert cn.graph
    x = np.random.default_rng(0).random((2, 36))
    y = np.eye(3)[[0, 2]]
    lock = two_phases(cn, x, y, "lockstep", 1)
    asyn = two_phases(cn, x, y, "async", 1)
    assert asyn[0].layout.n == 9 + 5 + 1 + 1
    assert_same(lock, asyn)
    assert asyn[1][0].counters["syn_events"][:, 0, 0].sum() > 0


# ---------------------------------------------------------------- chains through the graph tick

VARIANTS = {"sigma_delta": SD, "sd_pred_osa": SD_PRED_OSA, "stochastic": STOCH,
            "continuous": CONT}
TIMINGS = {
    "ideal": {"cluster_size": 2},
    "jitter_drift_phase": {"cluster_size": 3, "clock": {"jitter": 20, "drift": 5, "phase": 40}},
    "latency": {"cluster_size": 2, "bus": {"latency": 150}},
    "bandwidth": {"cluster_size": 2, "clock": {"jitter": 10},
                  "bus": {"latency": 20, "bandwidth": 6, "channels": 2}},
    "mesh": {"cluster_size": 2, "clock": {"phase": 30},
             "bus": {"topology": "mesh", "latency": 30, "bandwidth": 8},
             "mesh": {"width": 4, "height": 3}},
}


@pytest.mark.parametrize("timing", list(TIMINGS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_graph_tick_is_the_chain_tick_on_chains(variant, timing):
    """A chain forced onto the graph tick is the chain's bus engine bit for bit under any
    clocks, latency and bandwidth: the same packets, integrated in the same order (from below
    then above, by send tick and sender), with every bus counter equal."""
    net = make_netlist([7, 6, 5, 3], VARIANTS[variant], seed=3, bias=0.05, gain=2.0)
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.2, 1.2, (2, 7))
    y = np.eye(3)[rng.integers(0, 3, size=2)]
    chain, graph = build(net), build(net)
    assert not chain.graph
    graph.graph = True
    a = two_phases(chain, x, y, "async", 7, hardware=TIMINGS[timing])
    b = two_phases(graph, x, y, "async", 7, hardware=TIMINGS[timing])
    assert_same(a, b)
    for pa, pb in zip(a[1], b[1]):
        assert np.array_equal(pa.tick_times, pb.tick_times)
        for k in EXTRA:
            assert np.array_equal(pa.counters[k], pb.counters[k]), k


# ---------------------------------------------------------------- timing of its own

def in_flight(sess, b=0):
    """Messages of sample b released onto the network and not yet integrated, once per
    receiving cluster."""
    return int(sess.in_flight()[b])


def per_cluster(sess, phases, b):
    """Messages sent by each cluster of sample b (from the spikes recorded every tick)."""
    q = np.concatenate([p.spikes[:, b] for p in phases]).sum(axis=0)
    return [int(q[lo:hi].sum()) for lo, hi in zip(sess.layout.lo, sess.layout.hi)]


NOT_IDEAL = {
    "latency_one_tick": {"cluster_size": 4, "bus": {"latency": 100}},
    "jitter_drift_phase": {"cluster_size": 3, "clock": {"jitter": 30, "drift": 8, "phase": 60},
                           "bus": {"latency": 40}},
    "mesh_jitter": {"cluster_size": 5, "clock": {"jitter": 20},
                    "bus": {"topology": "mesh", "latency": 25},
                    "mesh": {"width": 8, "height": 8}},
    "bandwidth": {"cluster_size": 4, "clock": {"jitter": 10, "phase": 20},
                  "bus": {"latency": 10, "bandwidth": 40, "channels": 2}},
    "mesh_bandwidth": {"cluster_size": 3, "bus": {"topology": "mesh", "latency": 30,
                                                  "bandwidth": 10},
                       "mesh": {"width": 8, "height": 8}},
}


@pytest.mark.parametrize("hw", list(NOT_IDEAL))
@pytest.mark.parametrize("name", ["conv", "mixed", "feedback"])
def test_graph_bus_engine_with_timing_conserves_packets(name, hw):
    raw = NETWORKS[name]()
    cn = load(raw)
    x, y = inputs(raw, 2, 3), targets(raw, 2, 3)
    sess, (p1, p2) = two_phases(cn, x, y, "async", 9, hardware=NOT_IDEAL[hw])
    c, lay = sess.counters(), sess.layout
    assert np.isfinite(p2.states).all() and c["received"].sum() > 0
    for b in range(2):
        n = per_cluster(sess, (p1, p2), b)
        assert np.bincount(lay.layer, weights=n, minlength=cn.n_pops).tolist() == \
            c["spikes"][b].tolist()
        # every message becomes packets and hops by where its cluster is placed
        packets = np.zeros(cn.n_pops, np.int64)
        np.add.at(packets, lay.layer, np.multiply(n, lay.packets_per_spike))
        assert c["packets"][b].tolist() == packets.tolist()
        assert c["hops"][b] == int(np.dot(n, lay.hops_per_spike))
        # every message reaches every receiving cluster once: integrated, in an inbox, or
        # (finite bandwidth) still waiting for a channel
        sent = sum(n[i] * int(lay.n_dest[i]) for i in range(lay.n))
        got, waiting = int(c["received"][b].sum()), in_flight(sess, b)
        if "bandwidth" in hw:
            assert got + waiting <= sent
        else:
            assert got + waiting == sent
        assert (c["late"][b] + c["early"][b] <= c["received"][b]).all()
        assert c["elapsed"][b] > 0
    if hw == "latency_one_tick":          # a shared clock: every packet exactly one tick late
        assert c["late"].sum() == c["received"].sum()
        assert c["early"].sum() == 0
    else:
        assert c["late"].sum() + c["early"].sum() > 0
    # the same seed is the same run
    again = two_phases(cn, x, y, "async", 9, hardware=NOT_IDEAL[hw])
    assert_same((sess, (p1, p2)), again)
    rep = sess.bus_report()
    assert 0.0 <= rep["utilisation"] <= 1.0


def test_spike_times_of_a_graph_phase():
    raw = NETWORKS["mixed"]()
    cn = load(raw)
    hw = {"cluster_size": 3, "clock": {"jitter": 10, "phase": 30}}
    sess = engines.session(cn, inputs(raw, 2, 1), engine="async", seed=2, hardware=hw)
    ph = sess.run(12, record_spikes=True)
    assert ph.tick_times.shape == (12, 2, sess.layout.n)
    assert ph.cluster_of.shape == (cn.n_neurons,)
    times = asyncbus.spike_times(ph)
    assert np.all(np.abs(times - np.arange(1, 13)[:, None, None]) < 0.5)
    assert ph.counters["syn_events"].shape == (2, cn.n_projections, 2)
    assert ph.counters["packets"].shape == (2, cn.n_pops)
