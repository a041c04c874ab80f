"""The async bus engine: lockstep equivalence, timing against hand-computed values and a
slow delayed-message reference, and the validation of [hardware] settings."""

import json

import numpy as np
import pytest

from conftest import NETLISTS, ROOT, build, make_netlist
from neuroemu.engines import asyncbus
from neuroemu import engines
from neuroemu import describe
from neuroemu.errors import NetlistError

COMMON = ("spikes", "syn_events", "updates")

SD = {"encoder": "sigma_delta", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}
SD_PRED_OSA = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "scheduled", "lam0": 0.39, "eta": 0.45},
               "eps": {"kind": "osa", "nu_bar": 0.108, "reg": 1e-7}}
STOCH = {"encoder": "stochastic", "predictive": True, "decoder": "predictive",
         "lam": {"kind": "constant", "value": 0.5}, "eps": {"kind": "constant", "eps0": 0.3}}
CONT = {"encoder": "none", "predictive": False, "decoder": "identity",
        "eps": {"kind": "constant", "eps0": 0.5}}


def nets():
    return {"tiny": describe.load(NETLISTS / "tiny.toml"),
            "sigma_delta": make_netlist([7, 6, 5, 3], SD, seed=1, bias=0.05, gain=2.0),
            "sd_pred_osa": make_netlist([6, 5, 3], SD_PRED_OSA, seed=2, gain=2.0),
            "stochastic": make_netlist([6, 5, 4, 2], STOCH, seed=3, gain=2.0),
            "continuous": make_netlist([5, 4, 3], CONT, seed=4, bias=0.1)}


def two_phases(net, x, y, engine_name, seed, free=25, nudged=15, **kw):
    sess = engines.session(net, x, engine=engine_name, seed=seed, **kw)
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    p1 = sess.run(free, name="free", **rec)
    p2 = sess.run(nudged, beta=0.5, target=y, name="nudged", **rec)
    return sess, (p1, p2)


def assert_same(lock, asyn):
    (ls, lphases), (as_, aphases) = lock, asyn
    for lp, ap in zip(lphases, aphases):
        assert lp.t_start == ap.t_start and lp.steps == ap.steps
        assert np.array_equal(lp.spikes, ap.spikes)
        assert np.array_equal(lp.states, ap.states)
        assert np.array_equal(lp.extra, ap.extra)
        for k in COMMON:
            assert np.array_equal(lp.counters[k], ap.counters[k]), k
    lc, ac = ls.counters(), as_.counters()
    for k in COMMON:
        assert np.array_equal(lc[k], ac[k]), k
    for name in ls.net.names:
        assert np.array_equal(ls.state(name), as_.state(name))


# Settings under which every packet reaches its receiver after the sender's tick and before
# the receiver's next one: the async engine must then be lockstep, bit for bit.
EQUIVALENT = {
    "default": None,
    "clusters_of_2": {"cluster_size": 2},
    "quanta_7": {"quanta": 7, "cluster_size": 3},
    # latency 30 + at most 12 batches of <= 2 packets (10 quanta each) on 4 channels < 100
    "finite_bus": {"cluster_size": 2, "bus": {"latency": 30, "bandwidth": 20, "channels": 4}},
}


@pytest.mark.parametrize("hw", list(EQUIVALENT), ids=list(EQUIVALENT))
@pytest.mark.parametrize("name", ["tiny", "sigma_delta", "sd_pred_osa", "stochastic",
                                  "continuous"])
@pytest.mark.parametrize("seed", [0, 11])
def test_equivalent_to_lockstep(name, hw, seed):
    raw = nets()[name]
    net = build(raw)
    rng = np.random.default_rng(seed)
    x = rng.random((3, net.sizes[0])) * 1.2 - 0.1          # includes values outside [0, 1]
    y = np.eye(net.sizes[-1])[rng.integers(0, net.sizes[-1], 3)]
    lock = two_phases(net, x, y, "lockstep", seed)
    kw = {} if EQUIVALENT[hw] is None else {"hardware": EQUIVALENT[hw]}
    asyn = two_phases(net, x, y, "async", seed, **kw)
    assert_same(lock, asyn)
    assert asyn[0].counters()["late"].sum() == 0 and asyn[0].counters()["early"].sum() == 0


def test_equivalent_when_configured_in_the_netlist():
    raw = make_netlist([6, 5, 3], SD_PRED_OSA, seed=5, gain=2.0,
                       extra={"hardware": {"quanta": 100, "cluster_size": 2,
                                           "bus": {"latency": 4, "bandwidth": 50}}})
    net = build(raw)
    x = np.random.default_rng(1).random((2, 6))
    y = np.eye(3)[[0, 2]]
    assert_same(two_phases(net, x, y, "lockstep", 3), two_phases(net, x, y, "async", 3))


# ---------------------------------------------------------------- timing vs references

def delayed_reference(W, b, x, steps, delay, eps=0.5):
    """Slow continuous network whose messages take ``delay`` extra steps: u(t) is built
    from the messages of step t-1-delay (float32 accumulation, senders in order)."""
    L = len(W)
    sizes = [W[0].shape[0]] + [w.shape[1] for w in W]
    s = [np.zeros(n) for n in sizes]
    hist = []                                   # hist[t-1] = messages of step t
    for t in range(1, steps + 1):
        src = t - 1 - delay
        old = hist[src - 1] if src >= 1 else [np.zeros(n) for n in sizes]
        new = [None] * (L + 1)
        for l in range(1, L + 1):
            u = np.zeros(sizes[l], dtype=np.float32)
            for i in np.flatnonzero(old[l - 1]):
                u += np.float32(old[l - 1][i]) * W[l - 1][i]
            if l < L:
                for i in np.flatnonzero(old[l + 1]):
                    u += np.float32(old[l + 1][i]) * W[l].T[i]
            a = u.astype(np.float64) + b[l]       # rho'(s) = 1: states stay in [0, 1]
            new[l] = np.clip((1 - eps) * s[l] + eps * a, 0, 1)
        s = [None] + new[1:]
        hist.append([np.clip(x, 0, 1)] + [v.copy() for v in new[1:]])
    return s


@pytest.mark.parametrize("latency,delay", [(0, 0), (99, 0), (100, 1), (150, 1), (200, 2)])
def test_latency_delays_messages_by_whole_ticks(latency, delay):
    raw = make_netlist([4, 5, 3], CONT, seed=6, bias=0.2, gain=1.5)
    net = build(raw)
    x = np.random.default_rng(2).random(4)
    sess = engines.session(net, x, engine="async", seed=0,
                          hardware={"quanta": 100, "bus": {"latency": latency}})
    sess.run(30)
    W = [net.weights(l).copy() for l in range(2)]
    bias = [net.biases(l) for l in range(3)]
    ref = delayed_reference(W, bias, x, 30, delay)
    for l in (1, 2):
        np.testing.assert_allclose(sess.state(l)[0], ref[l], rtol=0, atol=1e-12)
    c = sess.counters()
    if delay == 0:
        assert c["late"].sum() == 0
    else:
        assert c["late"].sum() == c["received"].sum() > 0


def blocked_net(extra=None):
    """4-2-2 sigma-delta net whose input spikes every tick (x = 1) and whose other layers
    never spike (negative weights keep them at 0): 4 packets per tick, from the input."""
    raw = {"network": {"name": "blocked", "seed": 0},
           "neuron": {"encoder": "sigma_delta", "eps": {"kind": "constant", "eps0": 0.5}},
           "population": [{"name": "in", "size": 4}, {"name": "h", "size": 2},
                          {"name": "out", "size": 2}],
           "projection": [{"pre": "in", "post": "h", "weights": [[-1.0, -1.0]] * 4},
                          {"pre": "h", "post": "out", "weights": [[-1.0, -1.0]] * 2}],
           "hardware": extra or {}}
    return build(describe.from_dict(raw, path="<blocked>"))


def test_bus_queueing_by_hand():
    # 2 input clusters of 2 neurons send 2 packets each at every tick; 10 packets/tick
    # with 100 quanta/tick = 20 quanta per batch of 2: the second batch waits 20 quanta.
    n = 12
    net = blocked_net({"cluster_size": 2, "bus": {"bandwidth": 10}})
    sess = engines.session(net, np.ones(4), engine="async", seed=0)
    ph = sess.run(n)
    c = ph.counters
    assert c["spikes"][0].tolist() == [4 * n, 0, 0]
    assert c["packets"][0].tolist() == [4 * n, 0, 0]
    # a batch is counted when it gets the bus: the phase ends at the last tick's time, when
    # batch B of that tick is still waiting (it is granted 20 quanta later, next phase)
    assert c["queue_delay"][0] == (n - 1) * 20 * 2
    assert c["bus_busy"][0] == n * 20 + (n - 1) * 20
    assert c["elapsed"][0] == n * 100
    assert sess.bus_report(c)["utilisation"] == pytest.approx((40 * n - 20) / (100 * n))
    c2 = sess.run(1).counters      # B of tick n (waited 20) and A of tick n+1 (waited 0)
    assert c2["queue_delay"][0] == 20 * 2 and c2["bus_busy"][0] == 20 + 20
    assert c["late"].sum() == 0 and c["received"][0, 1] == 4 * (n - 1)


def test_late_packets_by_hand():
    # as above plus 70 quanta latency: batch A lands at T+90 (in time for tick k+1),
    # batch B at T+110 (after tick k+1: integrated at k+2, late).
    n = 12
    net = blocked_net({"cluster_size": 2, "bus": {"bandwidth": 10, "latency": 70}})
    sess = engines.session(net, np.ones(4), engine="async", seed=0)
    c = sess.run(n).counters
    assert c["late"][0].tolist() == [0, 2 * (n - 2), 0]
    assert c["received"][0].tolist() == [0, 2 * (n - 1) + 2 * (n - 2), 0]
    # packets in flight cross the phase barrier and are counted in the next phase
    c2 = sess.run(1).counters
    assert c2["received"][0, 1] == 2 + 2


def test_phase_offsets_make_packets_early_by_hand():
    # clusters in, h, out with phase offsets: the input's tick-k packets reach h before h's
    # own tick k exactly when h's offset is larger (then all 4n are early), else on time
    n, seen = 10, set()
    for seed in range(12):
        sess = engines.session(blocked_net({"clock": {"phase": 50}}), np.ones(4),
                              engine="async", seed=seed)
        c = sess.run(n).counters
        ahead = bool(sess.layout.phase[1] > sess.layout.phase[0])
        seen.add(ahead)
        assert c["early"][0, 1] == (4 * n if ahead else 0)
        assert c["received"][0, 1] == (4 * n if ahead else 4 * (n - 1))
        assert c["late"].sum() == 0
    assert seen == {True, False}


def test_mesh_hops_by_hand():
    # clusters: in[0:2] at (0,0), in[2:4] at (2,1), h at (1,0), out at (0,1)
    hw = {"cluster_size": 2, "bus": {"topology": "mesh", "latency": 10},
          "mesh": {"width": 3, "height": 2, "placement": [[0, 0], [2, 1], [1, 0], [0, 1]]}}
    net = blocked_net(hw)
    sess = engines.session(net, np.ones(4), engine="async", seed=0)
    c = sess.run(10).counters
    assert c["packets"][0, 0] == 40
    assert c["hops"][0] == 10 * (2 * 1 + 2 * 2)


def test_clock_jitter_and_phase_follow_their_definition():
    hw = {"quanta": 100, "cluster_size": 3, "clock": {"jitter": 10, "phase": 40, "drift": 5}}
    raw = make_netlist([7, 6, 5, 3], SD, seed=1, gain=2.0, extra={"hardware": hw})
    net = build(raw)
    x = np.random.default_rng(0).random((2, 7))
    sess = engines.session(net, x, engine="async", seed=9)
    ph = sess.run(20, record_spikes=True)
    lay = sess.layout
    k = np.arange(1, 21)[:, None, None]
    nominal = lay.phase[None, None, :] + k * lay.period[None, None, :]
    dev = ph.tick_times - nominal
    assert np.abs(dev).max() <= 10 and np.abs(dev).max() > 0
    assert np.all(np.abs(lay.period - 100) <= 5) and np.all((lay.phase >= 0) & (lay.phase <= 40))
    assert not np.array_equal(dev[:, 0], dev[:, 1])       # jitter is drawn per sample
    times = asyncbus.spike_times(ph)
    lo, hi = ph.clusters[4]
    assert np.all(times[:, :, lo:hi] == ph.tick_times[:, :, 4, None] / 100)
    # the same seed gives the same run; the clock is part of the run's randomness
    again = engines.session(net, x, engine="async", seed=9).run(20, record_spikes=True)
    assert np.array_equal(again.tick_times, ph.tick_times)
    assert np.array_equal(again.spikes, ph.spikes)
    other = engines.session(net, x, engine="async", seed=10).run(20, record_spikes=True)
    assert not np.array_equal(other.tick_times, ph.tick_times)


def test_phase_barrier_keeps_tick_counts():
    hw = {"cluster_size": 2, "clock": {"drift": 20, "phase": 50, "jitter": 5}}
    raw = make_netlist([4, 3, 2], SD, seed=2, extra={"hardware": hw})
    sess = engines.session(build(raw), np.full(4, 0.5), engine="async", seed=1)
    sess.run(15)
    ph = sess.run(10, beta=0.5, target=np.eye(2)[:1], record_spikes=True)
    assert ph.t_start == 15
    assert (sess.ticks() == 25).all() and sess.ticks().shape == (1, sess.layout.n)
    assert np.all(np.diff(ph.tick_times, axis=0) > 0)        # every clock keeps ticking forward
    assert ph.counters["updates"][0, :, 1].tolist() == [40, 30, 20]


def test_cli_async_matches_lockstep(capsys):
    from neuroemu import cli
    out = []
    for eng in ("lockstep", "async"):
        assert cli.main(["run", str(NETLISTS / "tiny.toml"), "--steps", "20", "--batch", "2",
                         "--engine", eng, "--json"]) == 0
        out.append(json.loads(capsys.readouterr().out))
    # the same run, except for what names the engine and its bus (tests/test_cli.py)
    assert out[0].pop("engine") == "lockstep" and out[1].pop("engine") == "async"
    for key in ("hardware", "clusters", "bus"):
        out[1].pop(key)
    assert out[0] == out[1]


# ---------------------------------------------------------------- validation

BAD = [
    ({"bus": {"latency": -1}}, r"<bad>: hardware\.bus\.latency: must be >= 0 \(got -1\)"),
    ({"bus": {"bandwidth": 0}}, r"hardware\.bus\.bandwidth: must be > 0 .*\(got 0\)"),
    ({"bus": {"bandwidth": "fast"}}, r"hardware\.bus\.bandwidth: .*\(got 'fast'\)"),
    ({"bus": {"channels": 0}}, r"hardware\.bus\.channels: must be >= 1 \(got 0\)"),
    ({"bus": {"topology": "ring"}}, r"hardware\.bus\.topology: .*\(got 'ring'\)"),
    ({"bus": {"latncy": 3}}, r"hardware\.bus\.latncy: unknown key .*\(got 3\)"),
    ({"quanta": 0}, r"hardware\.quanta: must be >= 1 \(got 0\)"),
    ({"cluster_size": 2.5}, r"hardware\.cluster_size: must be an integer \(got 2\.5\)"),
    ({"clock": {"jitter": 50}}, r"hardware\.clock\.jitter: must be < .* = 50 .*\(got 50\)"),
    ({"clock": {"drift": 100}}, r"hardware\.clock\.drift: must be < clock\.period = 100 \(got 100\)"),
    ({"clock": {"phase": -2}}, r"hardware\.clock\.phase: must be >= 0 \(got -2\)"),
    ({"bus": {"topology": "mesh"}}, r"hardware\.mesh: required when"),
    ({"bus": {"topology": "mesh"}, "mesh": {"width": 0, "height": 2}},
     r"hardware\.mesh\.width: must be >= 1 \(got 0\)"),
    ({"bus": {"topology": "mesh"}, "mesh": {"width": 2, "height": 1}, "cluster_size": 2},
     r"hardware\.mesh: the 2x1 mesh \(2 cores\) is smaller than the placement \(4 clusters.*"
     r"\(got width=2, height=1\)"),
    ({"bus": {"topology": "mesh"}, "mesh": {"width": 2, "height": 2,
                                            "placement": [[0, 0], [2, 0], [1, 1]]}},
     r"hardware\.mesh\.placement\[1\]: must lie inside the 2x2 mesh \(got \[2, 0\]\)"),
    ({"bus": {"topology": "mesh"}, "mesh": {"width": 2, "height": 2, "placement": [[0, 0]]}},
     r"hardware\.mesh\.placement: must give a core for each of the 3 clusters \(got 1 entries\)"),
    ({"mesh": {"width": 2, "height": 2}}, r"hardware\.mesh: only used with"),
]


@pytest.mark.parametrize("hw,pattern", BAD, ids=[p[:40] for _, p in BAD])
def test_bad_hardware_is_a_clear_error(hw, pattern):
    raw = {"network": {"name": "v"}, "population": [{"name": "a", "size": 4},
                                                    {"name": "b", "size": 2},
                                                    {"name": "c", "size": 2}],
           "projection": [{"pre": "a", "post": "b", "weights": {"init": "glorot_uniform"}},
                          {"pre": "b", "post": "c", "weights": {"init": "glorot_uniform"}}],
           "hardware": hw}
    net = build(describe.from_dict(raw, path="<bad>"))
    with pytest.raises(NetlistError, match=pattern):
        engines.session(net, np.zeros(4), engine="async")


def test_other_hardware_keys_are_left_to_other_modules():
    hw = {"profile": "loihi-like", "bus": {"latency": 2}}
    assert asyncbus.parse_hardware(hw, "x.toml").latency == 2


def test_docs_exist():
    assert "async" in (ROOT / "docs" / "engines.md").read_text()
