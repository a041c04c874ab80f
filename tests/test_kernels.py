"""Kernels and whole lockstep runs against the slow reference (tests/reference.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from conftest import ROOT, build, make_netlist
from neuroemu import engines
from neuroemu import describe
from neuroemu.engines import kernels as K
from neuroemu.describe import neurons
from neuroemu.errors import EngineError

SD_PRED_OSA = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.275},
               "eps": {"kind": "osa", "nu_bar": 0.0346}}
VARIANTS = {
    "sd_pred_osa": SD_PRED_OSA,
    "sd_sqrt": {"encoder": "sigma_delta", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}},
    "sd_pred_poly": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
                     "lam": {"kind": "scheduled", "lam0": 0.67, "eta": 0.578},
                     "eps": {"kind": "scheduled", "eps0": 0.775, "eta": 0.313}},
    "sd_osa_lamsched": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
                        "lam": {"kind": "scheduled", "lam0": 0.39, "eta": 0.45},
                        "eps": {"kind": "osa", "nu_bar": 0.108, "reg": 1e-7}},
    "stochastic": {"encoder": "stochastic", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}},
    "stochastic_pred": {"encoder": "stochastic", "predictive": True, "decoder": "predictive",
                        "lam": {"kind": "constant", "value": 0.5},
                        "eps": {"kind": "constant", "eps0": 0.3}},
    "continuous": {"encoder": "none", "eps": {"kind": "constant", "eps0": 0.5}},
    # two-pole predictive coding with a residue clamp small enough to act in 60 steps
    "sd_pred2_osa_clamp": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
                           "lam": {"kind": "scheduled", "lam0": 0.5438, "eta": 0.4194},
                           "lam2": {"kind": "scheduled", "lam0": 0.7795, "eta": 0.5624},
                           "clamp": {"a": 0.6, "b": 3.0},
                           "eps": {"kind": "osa", "nu_bar": 0.3737, "reg": 1e-7}},
    "continuous_pred2": {"encoder": "none", "predictive": True, "decoder": "predictive",
                         "lam": {"kind": "constant", "value": 0.4},
                         "lam2": {"kind": "constant", "value": 0.7},
                         "eps": {"kind": "constant", "eps0": 0.5}},
    "continuous_osa": {"encoder": "none", "eps": {"kind": "osa", "nu_bar": 0.05}},
}


def test_kinds_match_registry():
    assert neurons.ENCODERS == {"none": K.ENC_NONE, "stochastic": K.ENC_STOCHASTIC,
                                "sigma_delta": K.ENC_SIGMA_DELTA}
    assert neurons.DECODERS == {"identity": K.DEC_IDENTITY, "predictive": K.DEC_PREDICTIVE}
    assert neurons.ANNEALERS == {"constant": K.ANN_CONSTANT, "scheduled": K.ANN_SCHEDULED,
                                 "osa": K.ANN_OSA}
    assert neurons.SCHEDULES == {"constant": K.SCHED_CONSTANT, "scheduled": K.SCHED_SCHEDULED}
    assert neurons.MODELS == {"paper": K.MODEL_PAPER, "if": K.MODEL_IF, "lif": K.MODEL_LIF}
    assert neurons.RESETS == {"subtract": K.RESET_SUBTRACT, "zero": K.RESET_ZERO}
    assert neurons.PROJECTION_KINDS == {"dense": K.PK_DENSE, "sparse": K.PK_SPARSE,
                                        "conv2d": K.PK_CONV, "avgpool2d": K.PK_POOL,
                                        "one_to_one": K.PK_O2O}


@pytest.mark.parametrize("seed,gid,t", [(0, 0, 1), (1, 5, 7), (2**63 + 12345, 999, 10**6),
                                        (2**64 - 1, 2**31, 3)])
def test_uniform_matches_reference(seed, gid, t):
    assert K.uniform01(np.uint64(seed), gid, t) == ref.uniform(seed, gid, t)


def test_uniform_is_uniform():
    u = np.array([K.uniform01(np.uint64(3), g, 1) for g in range(20000)])
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    hist = np.histogram(u, bins=10, range=(0, 1))[0]
    assert hist.min() > 1800


def test_sigma_delta_kernel_against_reference():
    rng = np.random.default_rng(0)
    net = make_netlist([6, 3, 2], VARIANTS["sd_sqrt"])
    cn = build(net)
    c = rng.uniform(-0.2, 1.2, size=(50, 6))
    phi, q, xm = np.zeros(cn.n_neurons), np.zeros(cn.n_neurons), np.zeros(cn.n_neurons)
    ev = np.zeros(cn.n_neurons, dtype=np.int32)
    enc = ref.SigmaDelta(6)
    for t in range(1, 51):
        n = K.encode_neurons(0, 0, 6, t, cn.lp, np.uint64(0), c[t - 1], 0, xm, phi, q, ev,
                             np.zeros(cn.n_neurons))
        want = enc(np.clip(c[t - 1], 0, 1), t, 0, None)
        assert np.array_equal(q[:6], want)
        assert np.array_equal(phi[:6], enc.phi)
        assert n == want.sum() and list(ev[:n]) == list(np.flatnonzero(want))


def test_deliver_kernel_against_reference():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(40, 30)).astype(np.float32)
    for binary in (True, False):
        q = (rng.random(40) < 0.3).astype(float)
        if not binary:
            q *= rng.random(40)
        ev = np.flatnonzero(q).astype(np.int32)
        u = np.zeros(35, dtype=np.float32)
        K.deliver(q, ev, 0, len(ev), binary, W.ravel(), 0, 30, u, 5)
        assert np.array_equal(u[5:], ref.deliver(q, W))
        assert not u[:5].any()


def run_both(net, x, steps, beta=0.0, y=None, free=None, seed=11):
    """Run the engine (recording everything) and the reference; return both records."""
    cn = build(net)
    sess = engines.session(cn, x, seed=seed)
    f = steps if free is None else free
    ph = [sess.run(f, record_spikes=True, record_states=True, record_extra=True)]
    if f < steps:
        ph.append(sess.run(steps - f, beta=beta, target=y, record_spikes=True,
                           record_states=True, record_extra=True))
    spikes = np.concatenate([p.spikes for p in ph])
    states = np.concatenate([p.states for p in ph])
    refs_q, refs_s = [], []
    for b in range(x.shape[0]):
        r = ref.Network(net, x[b], seed=int(sess.seeds[b]))
        qs, ss = [], []
        for t in range(1, steps + 1):
            nudge = t > f
            qs.append(r.step(beta if nudge else 0.0, y[b] if (nudge and y is not None) else None))
            ss.append(np.concatenate([np.zeros(len(x[b]))] + r.s[1:]))
        refs_q.append(qs)
        refs_s.append(ss)
    rq = np.array(refs_q).transpose(1, 0, 2) != 0
    rs = np.array(refs_s).transpose(1, 0, 2)
    return sess, spikes, states, rq, rs


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_whole_run_matches_reference(variant):
    net = make_netlist([7, 5, 4, 3], VARIANTS[variant], seed=3, bias=0.05, gain=1.5)
    rng = np.random.default_rng(5)
    x = rng.random((3, 7))
    y = np.eye(3)[rng.integers(0, 3, size=3)]
    sess, spikes, states, rq, rs = run_both(net, x, 60, beta=0.5, y=y, free=40)
    n_in = 7
    assert np.array_equal(spikes, rq)                       # spike trains identical
    assert np.array_equal(states[:, :, n_in:], rs[:, :, n_in:])  # states identical
    assert spikes.any()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_silent_and_out_of_range_inputs_match_reference(variant):
    """Inputs at 0 (most of an image), below 0 and above 1: the engine encodes only the
    clamped neurons that can send anything; spikes, states and the input layer's
    residues must still be the reference's, across two run() calls."""
    net = make_netlist([9, 5, 3], VARIANTS[variant], seed=4, bias=0.05, gain=1.5)
    x = np.array([[0.0, 0.8, 0.0, -0.3, 1.4, 0.0, 0.25, -0.0, 1.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                  [0.6, 0.0, 2.0, 0.0, -1.0, 0.1, 0.0, 0.0, 0.0]])
    y = np.eye(3)[[0, 2, 1]]
    sess, spikes, states, rq, rs = run_both(net, x, 50, beta=0.5, y=y, free=30)
    assert np.array_equal(spikes, rq)
    assert np.array_equal(states[:, :, 9:], rs[:, :, 9:])
    if VARIANTS[variant]["encoder"] == "sigma_delta":
        r = ref.Network(net, x[2], seed=int(sess.seeds[2]))
        for _ in range(50):
            r.step()
        enc = r.enc[0].inner if hasattr(r.enc[0], "inner") else r.enc[0]
        plain = engines.session(build(net), x, seed=11)      # nothing recorded
        plain.run(30)
        plain.run(20)
        assert np.array_equal(plain.phi[2, :9], enc.phi)
        assert np.array_equal(sess.phi[2, :9], enc.phi)


def test_tiny_netlist_matches_reference(tiny):
    x = np.array([[0.9, 0.1, 0.5, 0.0], [0.3, 0.7, 1.0, 0.2]])
    sess, spikes, states, rq, rs = run_both(tiny, x, 100)
    assert np.array_equal(spikes, rq)
    assert np.array_equal(states[:, :, 4:], rs[:, :, 4:])


def test_counters_follow_from_spike_record():
    net = make_netlist([9, 6, 4], SD_PRED_OSA, seed=2)
    cn = build(net)
    x = np.random.default_rng(2).random((2, 9))
    sess = engines.session(cn, x)
    ph = sess.run(30, record_spikes=True)
    sp = ph.spikes
    off = cn.off
    per_layer = np.stack([sp[:, :, off[l]:off[l + 1]].sum(axis=(0, 2)) for l in range(3)], 1)
    assert np.array_equal(ph.counters["spikes"], per_layer)
    # step t delivers the spikes of step t-1: every spike but the last step's is delivered
    delivered = np.stack([sp[:-1, :, off[l]:off[l + 1]].sum(axis=(0, 2)) for l in range(3)], 1)
    sizes = cn.sizes
    assert np.array_equal(ph.counters["syn_events"][:, 0, 0], delivered[:, 0] * sizes[1])
    assert np.array_equal(ph.counters["syn_events"][:, 1, 0], delivered[:, 1] * sizes[2])
    assert not ph.counters["syn_events"][:, 0, 1].any()  # the clamped input receives nothing
    assert np.array_equal(ph.counters["syn_events"][:, 1, 1], delivered[:, 2] * sizes[1])
    assert np.array_equal(ph.counters["updates"][:, :, 0], [[0, 30 * 6, 30 * 4]] * 2)
    assert np.array_equal(ph.counters["updates"][:, :, 1], [[30 * 9, 30 * 6, 30 * 4]] * 2)


def test_continuous_engine_matches_matmul_dynamics():
    net = make_netlist([20, 15, 5], VARIANTS["continuous"], seed=4, bias=0.1)
    cn = build(net)
    rng = np.random.default_rng(4)
    x = rng.random((4, 20))
    y = np.eye(5)[rng.integers(0, 5, size=4)]
    W = [cn.weights(l).astype(np.float64) for l in range(2)]
    b = [cn.biases(1), cn.biases(2)]
    sess = engines.session(cn, x)
    sess.run(30)
    sess.run(20, beta=0.7, target=y)
    s_ref = ref.continuous_run(W, b, x, 30)
    s_ref = ref.continuous_run(W, b, x, 20, beta=0.7, y=y, s=s_ref)
    for l, name in ((1, "h1"), (2, "output")):
        np.testing.assert_allclose(sess.state(name), s_ref[l], rtol=0, atol=1e-5)


def test_binary_network_converges_to_continuous_fixed_point():
    """sigma-delta + predictive + OSA: error to the continuous fixed point falls steadily."""
    neuron = VARIANTS["sd_osa_lamsched"]
    net = make_netlist([100, 60, 10], neuron, seed=8)
    cn = build(net)
    rng = np.random.default_rng(8)
    x = rng.random((5, 100))
    W = [cn.weights(l).astype(np.float64) for l in range(2)]
    fixed = ref.continuous_run(W, [cn.biases(1), cn.biases(2)], x, 1000)
    sess = engines.session(cn, x)
    ph = sess.run(400, record_states=True)
    errs = []
    for t in (25, 50, 100, 200, 400):
        s = ph.states[t - 1]
        errs.append(np.mean([np.abs(s[:, cn.off[l]:cn.off[l + 1]] - fixed[l]).mean()
                             for l in (1, 2)]))
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.1 * errs[0], errs


def test_batching_and_threads_do_not_change_results():
    net = make_netlist([12, 8, 3], VARIANTS["stochastic"], seed=6)
    cn = build(net)
    x = np.random.default_rng(6).random((4, 12))
    whole = engines.session(cn, x, seed=9).run(40, record_spikes=True).spikes
    threaded = engines.session(cn, x, seed=9, threads=2).run(40, record_spikes=True).spikes
    assert np.array_equal(whole, threaded)
    for b in range(4):
        one = engines.session(cn, x[b:b + 1], seed=9, sample_ids=[b]).run(40, record_spikes=True)
        assert np.array_equal(one.spikes[:, 0], whole[:, b])
    other_seed = engines.session(cn, x, seed=10).run(40, record_spikes=True).spikes
    assert not np.array_equal(whole, other_seed)


def test_same_seed_same_result(tiny):
    cn = build(tiny)
    x = np.random.default_rng(0).random((2, 4))
    a = engines.run(cn, x, 50, record_states=True, nudge_steps=10, beta=0.5, target=np.eye(2))
    b = engines.run(cn, x, 50, record_states=True, nudge_steps=10, beta=0.5, target=np.eye(2))
    for pa, pb in zip(a.phases, b.phases):
        assert np.array_equal(pa.states, pb.states)
    assert all(np.array_equal(a.counters[k], b.counters[k]) for k in a.counters)


@pytest.mark.parametrize("x,msg", [
    (np.zeros((2, 5)), r"inputs: must have shape \(batch, 4\) \(got shape \(2, 5\)\)"),
    (np.array([[0.1, np.nan, 0.2, 0.3]]), r"inputs\[0, 1\]: must be finite \(got nan\)"),
    (np.array([["a", "b", "c", "d"]]), r"must be a non-empty array of numbers"),
])
def test_engine_rejects_bad_input(tiny, x, msg):
    with pytest.raises(EngineError, match=msg):
        engines.session(build(tiny), x)


def test_engine_rejects_bad_run_arguments(tiny):
    sess = engines.session(build(tiny), np.zeros((1, 4)))
    with pytest.raises(EngineError, match=r"target: required when beta is non-zero \(beta = 0.5\)"):
        sess.run(5, beta=0.5)
    with pytest.raises(EngineError, match=r"steps: must be a non-negative integer \(got -1\)"):
        sess.run(-1)
    with pytest.raises(EngineError, match=r"target: must have shape \(batch, 2\)"):
        sess.run(5, beta=0.5, target=np.zeros((1, 3)))


def test_runs_without_jit():
    """NUMBA_DISABLE_JIT=1 must still work and give the same spikes."""
    code = ("import numpy as np; from neuroemu import describe, engines;"
            "n=engines.build(describe.load('tiny'));"
            "x=np.linspace(0,1,8).reshape(2,4);"
            "p=engines.session(n,x).run(40,record_spikes=True);"
            "print(''.join('1' if v else '0' for v in p.spikes.ravel()))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    cn = build(describe.load(ROOT / "neuroemu" / "data" / "netlists" / "tiny.toml"))
    p = engines.session(cn, np.linspace(0, 1, 8).reshape(2, 4)).run(40, record_spikes=True)
    assert out == "".join("1" if v else "0" for v in p.spikes.ravel())
