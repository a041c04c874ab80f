"""The bus engine's event loop against its simpy model (neuroemu.engines.asyncsimpy), on
settings drawn at random and on the corners the pinned cases do not reach: clock tables
from files, several threads, stores grown from almost nothing, long phases, runs resumed
phase after phase.  Everything a run returns must be equal, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import async_cases as AC
from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import asyncbus
from neuroemu.engines.asyncsimpy import SimpySession

EXTRA = asyncbus.EXTRA_COUNTERS


def run(session, y, phases=((20, 0.0, 1), (12, 0.5, 1), (9, 0.0, 3))):
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    out = []
    for steps, beta, every in phases:
        out.append(session.run(steps, beta=beta, target=y if beta else None, every=every,
                               **rec))
    return out


def assert_same(a, pa, b, pb):
    """Sessions a (event loop) and b (simpy) and their phases pa, pb: equal everywhere."""
    for x, z in zip(pa, pb):
        assert (x.t_start, x.steps) == (z.t_start, z.steps)
        for key in ("spikes", "states", "extra", "tick_times"):
            assert np.array_equal(getattr(x, key), getattr(z, key)), f"{x.name}: {key}"
        for k in z.counters:
            assert np.array_equal(x.counters[k], z.counters[k]), f"{x.name}: {k}"
    for k, v in b.counters().items():
        assert np.array_equal(a.counters()[k], v), k
    for name in b.net.names:
        assert np.array_equal(a.state(name), b.state(name)), name
    assert np.array_equal(a.ticks(), b.ticks())
    assert np.array_equal(a.in_flight(), b.in_flight())
    assert a.bus_report() == b.bus_report()


def random_hardware(rng, clusters_max: int) -> dict:
    quanta = int(rng.choice([7, 20, 100]))
    hw = {"quanta": quanta, "cluster_size": int(rng.choice([0, 1, 2, 3])),
          "clock": {}, "bus": {"latency": int(rng.integers(0, 2 * quanta))}}
    period = quanta
    drift = int(rng.integers(0, period // 4 + 1))
    jitter = int(rng.integers(0, max(1, (period - drift) // 2)))
    hw["clock"] = {"drift": drift, "jitter": jitter,
                   "phase": int(rng.integers(0, period + 1))}
    if rng.random() < 0.6:
        hw["bus"]["bandwidth"] = float(rng.choice([0.7, 2, 5, 13.5, 40]))
        hw["bus"]["channels"] = int(rng.integers(1, 4))
    if rng.random() < 0.4:
        w, h = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        hw["bus"]["topology"] = "mesh"
        hw["mesh"] = {"width": w, "height": h,
                      "placement": [[int(rng.integers(0, w)), int(rng.integers(0, h))]
                                    for _ in range(clusters_max)]}
    return hw


NETS = ["sigma_delta", "sd_pred_osa", "stochastic", "continuous", "g_conv", "g_mixed",
        "g_feedback", "g_predictive"]


@pytest.mark.parametrize("i", range(16))
def test_random_settings_equal_the_simpy_model(i):
    rng = np.random.default_rng(1000 + i)
    name = NETS[i % len(NETS)]
    cn, x, y = AC.network(name)
    hw = random_hardware(rng, 1)
    C = AC.clusters(cn, hw["cluster_size"])
    if "mesh" in hw:
        hw["mesh"]["placement"] = [[int(rng.integers(0, hw["mesh"]["width"])),
                                    int(rng.integers(0, hw["mesh"]["height"]))]
                                   for _ in range(C)]
    seed = int(rng.integers(0, 100))
    a = engines.session(cn, x, engine="async", seed=seed, hardware=hw, threads=1 + i % 2)
    b = SimpySession(cn, x, seed=seed, hardware=hw)
    assert_same(a, run(a, y), b, run(b, y))


def test_stores_grown_from_almost_nothing_give_the_same_run():
    """Every store of the event loop starts at one row, so every kind of growth (and the
    loop's resumption after it) happens; the run must not notice."""
    cn, x, y = AC.network("g_mixed")
    hw = {"cluster_size": 1, "clock": {"jitter": 20, "phase": 40},
          "bus": {"latency": 30, "bandwidth": 3, "channels": 2}}
    a = engines.session(cn, x, engine="async", seed=3, hardware=hw)
    for d in a.dyn:
        for j in (0, 1, 3, 4, 5, 8, 9, 10, 11):
            d[j] = d[j][:1].copy()
        d[6] = d[6][:, :1].copy()
    b = SimpySession(cn, x, seed=3, hardware=hw)
    assert_same(a, run(a, y), b, run(b, y))
    assert a.dyn[0][3].shape[0] > 1 and a.dyn[0][6].shape[1] > 1


def test_long_phases_and_many_switches():
    """A long phase (stores compacted many times) then many one-tick phases (packets and
    queued batches crossing every barrier)."""
    cn, x, y = AC.network("sd_pred_osa")
    hw = {"cluster_size": 1, "clock": {"jitter": 30, "drift": 5, "phase": 60},
          "bus": {"latency": 70, "bandwidth": 4}}
    phases = ((400, 0.0, 1),) + ((1, 0.5, 1),) * 12 + ((3, 0.0, 2),)
    a = engines.session(cn, x, engine="async", seed=5, hardware=hw)
    b = SimpySession(cn, x, seed=5, hardware=hw)
    assert_same(a, run(a, y, phases), b, run(b, y, phases))


def test_a_clock_table_runs_as_in_the_simpy_model(tmp_path):
    """Per-circuit periods, phases and jitters from a file (and rows drawn from it), on a
    chain and a graph, against the simpy model with the same table."""
    for name, sample in (("stochastic", False), ("g_conv", True)):
        cn, x, y = AC.network(name)
        C = AC.clusters(cn, 2)
        rng = np.random.default_rng(7)
        rows = C if not sample else 5
        period = rng.integers(60, 140, rows)
        table = np.stack([period, rng.integers(0, 80, rows),
                          (period - 1) // 2 * (rng.random(rows) < 0.7)], axis=1)
        np.save(tmp_path / f"{name}.npy", table)
        hw = {"cluster_size": 2, "bus": {"latency": 25, "bandwidth": 9},
              "clock": {"file": str(tmp_path / f"{name}.npy"), "sample": sample}}
        a = engines.session(cn, x, engine="async", seed=2, hardware=hw)
        b = SimpySession(cn, x, seed=2, hardware=hw)
        assert_same(a, run(a, y), b, run(b, y))
        if not sample:
            assert a.layout.period.tolist() == period.tolist()


def test_ideal_settings_equal_lockstep_on_a_large_network():
    """One circuit per neuron, one shared clock, zero latency, unlimited bandwidth: the
    Fig. 2 network (500-500-10, predictive coding and OSA) is the lockstep engine."""
    cn = build(describe.load(AC.NETLISTS / "fig2.toml"))
    x = np.random.default_rng(0).random((2, cn.n_in))
    y = np.eye(cn.n_out)[[1, 7]]
    rec = dict(record_spikes=True, record_states=True)
    out = []
    for eng, kw in (("lockstep", {}), ("async", {"hardware": {"cluster_size": 1}})):
        s = engines.session(cn, x, engine=eng, seed=4, **kw)
        out.append((s, s.run(15, **rec), s.run(10, beta=0.5, target=y, **rec)))
    (ls, l1, l2), (as_, a1, a2) = out
    for lp, ap in ((l1, a1), (l2, a2)):
        assert np.array_equal(lp.spikes, ap.spikes) and np.array_equal(lp.states, ap.states)
    for k in ("spikes", "syn_events", "updates"):
        assert np.array_equal(ls.counters()[k], as_.counters()[k]), k
    assert as_.counters()["late"].sum() == 0 and as_.layout.n == 1010


def test_chain_layouts_match_the_simpy_destinations():
    """The vectorised layout's per-cluster packet and hop counts are those of its explicit
    destination lists (which the simpy model routes by)."""
    net = build(make_netlist([5, 4, 3], AC.SD, seed=1))
    hw = {"cluster_size": 1, "bus": {"topology": "mesh"},
          "mesh": {"width": 3, "height": 2, "placement": [[i % 3, (i // 3) % 2]
                                                         for i in range(12)]}}
    lay = engines.session(net, np.zeros(5), engine="async", hardware=hw).layout
    for c in range(lay.n):
        per_core = {lay.port[d]: h for d, _, h in lay.dest[c]}
        assert lay.packets_per_spike[c] == len(per_core)
        assert lay.hops_per_spike[c] == sum(per_core.values())
        assert lay.n_dest[c] == len(lay.dest[c])
