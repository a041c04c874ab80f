"""Equilibrium Propagation training (neuroemu.learn.eqprop) against slow, obvious references."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from conftest import ROOT, build, make_netlist
from neuroemu import cli
from neuroemu import engines
from neuroemu.learn import eqprop
from neuroemu import describe
from neuroemu.learn.eqprop import Hyper, Trainer, TrainError, ep_update

CONTINUOUS = {"encoder": "none", "predictive": False, "decoder": "identity",
              "eps": {"kind": "constant", "eps0": 0.5}}
BINARY = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
          "lam": {"kind": "constant", "value": 0.275},
          "eps": {"kind": "osa", "nu_bar": 0.0346}}


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _problem(sizes, B, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(B, sizes[0]))
    y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=B)]
    return x, y


# ----------------------------------------------------------------------------- the rule

def test_ep_update_matches_the_written_formulas():
    rng = np.random.default_rng(1)
    sizes, B, beta = (3, 4, 2), 5, -0.3
    sf = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sn = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sn[0] = sf[0]
    r = lambda z: min(max(z, 0.0), 1.0)  # noqa: E731
    for rule in ("first-order", "full"):
        got = ep_update(sf, sn, beta, rule)
        for l in range(len(sizes) - 1):
            want = np.zeros((sizes[l], sizes[l + 1]))
            for i in range(sizes[l]):
                for j in range(sizes[l + 1]):
                    acc = 0.0
                    for b in range(B):
                        if rule == "full":
                            acc += r(sn[l][b, i]) * r(sn[l + 1][b, j]) - r(sf[l][b, i]) * r(sf[l + 1][b, j])
                        else:
                            acc += (sf[l][b, i] * (sn[l + 1][b, j] - sf[l + 1][b, j])
                                    + (sn[l][b, i] - sf[l][b, i]) * sf[l + 1][b, j])
                    want[i, j] = acc / (beta * B)
            np.testing.assert_allclose(got[l][0], want, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(got[l][1], (sn[l + 1] - sf[l + 1]).sum(0) / B / beta,
                                       rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rule", ["first-order", "full"])
def test_trainer_update_is_the_rule_applied_to_the_weights(rule, threads):
    """The fused training update (row skipping, threads) against the plain one:
    ``W += rate * dW`` with dW from ep_update, ``b += rate * db``, and float32(W) in
    both orientations of the compiled network -- bit for bit."""
    rng = np.random.default_rng(3)
    sizes, B, beta = (12, 7, 5, 3), 4, -0.5
    sf = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sn = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sf[0][:, ::3] = 0.0            # silent inputs: rows the fused update skips
    sf[0][1, 1] = 0.0
    sn[0] = sf[0]
    net = build(make_netlist(sizes, BINARY, seed=1, bias=0.1))
    tr = Trainer(net, Hyper(rates=(0.1, 0.05, 0.02), rule=rule), threads=threads)
    W0 = [w.copy() for w in tr.W]
    b0 = [b.copy() for b in tr.b]
    tr.apply_update(sf, sn, beta)
    for l, (dw, db) in enumerate(ep_update(sf, sn, beta, rule)):
        want = W0[l] + tr.hyper.rates[l] * dw
        assert np.array_equal(tr.W[l], want)
        assert np.array_equal(net.weights(l), want.astype(np.float32))
        if l > 0:
            n0, n1 = want.shape
            wb = net.wb[net.wb_off[l]:net.wb_off[l] + n0 * n1].reshape(n1, n0)
            assert np.array_equal(wb, want.T.astype(np.float32))
        assert np.array_equal(tr.b[l + 1], b0[l + 1] + tr.hyper.rates[l] * db)
        assert np.array_equal(net.biases(l + 1), tr.b[l + 1])
    silent = (sf[0] == 0).all(axis=0)
    assert silent.any() and not silent.all()
    assert np.array_equal(tr.W[0][silent], W0[0][silent])
    assert (tr.W[0][~silent] != W0[0][~silent]).any(axis=1).all()


@pytest.mark.parametrize("rule", ["first-order", "full"])
def test_small_beta_update_is_minus_the_gradient_of_the_loss(rule):
    """EP on a tiny continuous network vs central finite differences of the cost at the
    fixed point, computed with the float64 dense reference dynamics."""
    sizes, B = (5, 4, 3), 4
    nl = make_netlist(sizes, CONTINUOUS, seed=3, bias=0.4, gain=0.2)
    net = build(nl)
    x, y = _problem(sizes, B, 0)
    W = [p.weights.copy() for p in nl.projections]
    b = [pop.bias.copy() for pop in nl.populations[1:]]
    # the engine runs float32 weights: the reference differentiates those same weights
    W = [w.astype(np.float32).astype(np.float64) for w in W]

    def cost(W, b):
        s = ref.continuous_run(W, b, x, 400)
        return float(((y - s[-1]) ** 2).sum(axis=1).mean())

    tr = Trainer(net, Hyper.for_network(net, beta=0.002, n_free=400, n_nudged=400, rule=rule))
    s_free, s_nudged, _ = tr.phases(x, y, 0.002)
    s_ref = ref.continuous_run(W, b, x, 400)
    assert np.abs(s_ref[-1] - s_free[-1]).max() < 1e-5       # same fixed point
    for l in (1, 2):                                           # interior: a smooth problem
        assert np.all((s_ref[l] > 0.01) & (s_ref[l] < 0.99))
    grads = ep_update(s_free, s_nudged, 0.002, rule)
    h = 1e-5
    for l in range(len(W)):
        fd = np.zeros_like(W[l])
        for i in range(W[l].shape[0]):
            for j in range(W[l].shape[1]):
                Wp = [w.copy() for w in W]
                Wm = [w.copy() for w in W]
                Wp[l][i, j] += h
                Wm[l][i, j] -= h
                fd[i, j] = (cost(Wp, b) - cost(Wm, b)) / (2 * h)
        fdb = np.zeros_like(b[l])
        for j in range(len(b[l])):
            bp = [v.copy() for v in b]
            bm = [v.copy() for v in b]
            bp[l][j] += h
            bm[l][j] -= h
            fdb[j] = (cost(W, bp) - cost(W, bm)) / (2 * h)
        assert _cos(grads[l][0], -fd) >= 0.99
        assert _cos(grads[l][1], -fdb) >= 0.99
        assert np.linalg.norm(grads[l][0]) == pytest.approx(np.linalg.norm(fd), rel=0.1)


def test_binary_update_points_like_the_continuous_one():
    """The spiking network (sigma-delta, predictive coding, OSA; the paper's 100/50 steps)
    estimates the same update direction as the continuous network with the same weights."""
    sizes, B = (30, 20, 5), 10
    x, y = _problem(sizes, B, 5)
    dws = {}
    for name, neuron, steps in (("continuous", CONTINUOUS, (200, 100)),
                                ("binary", BINARY, (100, 50))):
        net = build(make_netlist(sizes, neuron, seed=11, bias=0.1))
        tr = Trainer(net, Hyper.for_network(net, beta=0.5, n_free=steps[0], n_nudged=steps[1]))
        sf, sn, _ = tr.phases(x, y, 0.5)
        dws[name] = ep_update(sf, sn, 0.5)
    for l in range(2):
        assert _cos(dws["binary"][l][0], dws["continuous"][l][0]) >= 0.99
        assert _cos(dws["binary"][l][1], dws["continuous"][l][1]) >= 0.99


# ----------------------------------------------------------------------------- the kernel

def test_training_kernel_matches_the_reference_network_exactly():
    """Trainer.advance (the phases of training) against tests/reference.py's step-by-step
    network, spike for spike, through a free and a nudged phase."""
    sizes, B = (16, 9, 4), 3
    nl = make_netlist(sizes, BINARY, seed=2, bias=0.15)
    net = build(nl)
    x, y = _problem(sizes, B, 2)
    tr = Trainer(net, Hyper.for_network(net, n_free=30, n_nudged=20))
    sess = engines.session(net, x)
    sp_free = tr.advance(sess, 30)
    s_mid = [sess.state(l) for l in range(3)]
    sp_nudged = tr.advance(sess, 20, -0.5, y)
    for b in range(B):
        r = ref.Network(nl, x[b], seed=int(sess.seeds[b]))
        for _ in range(30):
            r.step()
        assert r.spikes.sum() == sp_free[b]
        for l in (1, 2):
            assert np.array_equal(r.s[l], s_mid[l][b])
        for _ in range(20):
            r.step(beta=-0.5, y=y[b])
        assert r.spikes.sum() == sp_free[b] + sp_nudged[b]
        for l in (1, 2):
            assert np.array_equal(r.s[l], sess.state(l)[b])
    assert (sp_free > 4).all()  # delivery of >= 4 rows at once was exercised


# ----------------------------------------------------------------------------- training

def _clusters(n, dim, k, seed):
    rng = np.random.default_rng(seed)
    protos = rng.uniform(0, 1, (k, dim))
    labels = rng.integers(0, k, n)
    x = np.clip(protos[labels] + rng.normal(0, 0.15, (n, dim)), 0, 1)
    return x, labels


@pytest.mark.parametrize("neuron,batches", [(CONTINUOUS, 300), (BINARY, 60)])
def test_training_lowers_the_loss(neuron, batches):
    x, labels = _clusters(200, 16, 4, 0)
    y = np.eye(4)[labels]
    net = build(make_netlist((16, 12, 4), neuron, seed=4))
    tr = Trainer(net, Hyper.for_network(net, batch=10), seed=0)

    def loss_and_error():
        _, out, _ = tr.predict(x)
        return float(((y - out) ** 2).sum(1).mean()), float((out.argmax(1) != labels).mean())

    loss0, err0 = loss_and_error()
    for k in range(batches):
        i = (k * 10) % 200
        tr.train_batch(x[i:i + 10], y[i:i + 10])
    loss1, err1 = loss_and_error()
    assert loss1 < 0.5 * loss0
    assert err1 < err0


def test_signs_of_beta_are_drawn_per_minibatch():
    net = build(make_netlist((4, 3, 2), CONTINUOUS))
    tr = Trainer(net, Hyper.for_network(net, n_free=2, n_nudged=1), seed=0)
    x, y = _problem((4, 3, 2), 2, 0)
    signs = {tr.train_batch(x, y).beta for _ in range(20)}
    assert signs == {0.5, -0.5}


def test_rates_must_match_the_projections():
    net = build(make_netlist((4, 3, 2), CONTINUOUS))
    with pytest.raises(TrainError, match=r"one learning rate per projection \(2 for 4-3-2\) \(got 1"):
        Hyper.for_network(net, rates=(0.1,))
    with pytest.raises(TrainError, match=r"rule: must be one of .*'second'"):
        Hyper.for_network(net, rule="second")


def test_presets_follow_the_paper():
    mk = lambda f: build(describe.load(ROOT / "neuroemu" / "data" / "netlists" / f))  # noqa: E731
    assert Hyper.for_network(mk("mnist-binary.toml")) == Hyper(0.5, 100, 50, (0.1, 0.05))
    assert Hyper.for_network(mk("mnist-continuous.toml")) == Hyper(0.5, 20, 4, (0.1, 0.05))
    assert Hyper.for_network(mk("deep-continuous.toml")) == Hyper(
        1.0, 50, 8, (0.128, 0.032, 0.008, 0.002))


# ----------------------------------------------------------------------------- files

@pytest.mark.parametrize("suffix", [".toml", ".h5"])
def test_saved_netlist_reloads_exactly(tmp_path, suffix):
    net = build(make_netlist((6, 5, 3), BINARY, seed=1))
    tr = Trainer(net, Hyper.for_network(net, n_free=10, n_nudged=5))
    x, y = _problem((6, 5, 3), 4, 1)
    tr.train_batch(x, y)
    path = eqprop.save_netlist(net, tmp_path / f"out{suffix}", description="a test")
    loaded = describe.load(path)
    assert loaded.name == "t-trained" and loaded.description == "a test"
    back = build(loaded)
    for l in range(2):
        assert np.array_equal(back.weights(l), net.weights(l))
        assert np.array_equal(back.biases(l + 1), net.biases(l + 1))
    assert np.array_equal(back.lp, net.lp)


def test_checkpoint_resume_continues_identically(tmp_path):
    sizes = (6, 5, 3)
    x, y = _problem(sizes, 4, 1)
    a = Trainer(build(make_netlist(sizes, CONTINUOUS, seed=1)),
                Hyper(n_free=10, n_nudged=3), seed=9)
    a.train_batch(x, y)
    eqprop.save_checkpoint(tmp_path / "c.npz", a, 1, [{"epoch": 1}], {})
    b = Trainer(build(make_netlist(sizes, CONTINUOUS, seed=1)),
                Hyper(n_free=10, n_nudged=3), seed=0)
    epoch, hist, _ = eqprop.load_checkpoint(tmp_path / "c.npz", b)
    assert epoch == 1 and hist == [{"epoch": 1}]
    for _ in range(3):
        a.train_batch(x, y)
        b.train_batch(x, y)
    for l in range(2):
        assert np.array_equal(a.W[l], b.W[l])


# ----------------------------------------------------------------------------- CLI

def test_cli_reports_missing_dataset_as_one_line(tmp_path, capsys):
    rc = cli.main(["train", str(ROOT / "neuroemu" / "data" / "netlists" / "mnist-binary.toml"), "--data",
                   str(tmp_path), "--out", str(tmp_path / "o.toml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("neuroemu: error: ") and str(tmp_path) in err


def test_cli_rejects_wrong_rates(tmp_path, capsys):
    rc = cli.main(["train", str(ROOT / "neuroemu" / "data" / "netlists" / "mnist-binary.toml"), "--rates", "0.1",
                   "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "rates: need one learning rate per projection" in err and "(got 1" in err


def test_two_threads_train_identically():
    sizes = (16, 9, 4)
    x, y = _problem(sizes, 6, 3)
    out = []
    for threads in (1, 2):
        tr = Trainer(build(make_netlist(sizes, BINARY, seed=5)),
                     Hyper(n_free=20, n_nudged=10), seed=1, threads=threads)
        stats = [tr.train_batch(x, y) for _ in range(3)]
        out.append((tr.W, stats))
    assert out[0][1] == out[1][1]
    for a, b in zip(out[0][0], out[1][0]):
        assert np.array_equal(a, b)


def test_minibatches_leave_the_callers_arrays_alone():
    """The trainer reuses one session between minibatches; resetting it must not zero
    (or otherwise touch) the inputs and targets the caller passed in."""
    sizes = (16, 9, 4)
    x, y = _problem(sizes, 6, 3)
    x0, y0 = x.copy(), y.copy()
    tr = Trainer(build(make_netlist(sizes, BINARY, seed=5)), Hyper(n_free=20, n_nudged=10))
    for _ in range(3):
        tr.train_batch(x, y)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)


def test_epoch_schedule_multiplies_every_rate():
    """Hyper(milestones, gamma): from the epoch after each milestone every projection's rate
    (and its biases') is gamma times smaller -- the update of epoch 4 with milestones 1, 3 and
    gamma 0.5 is the rule at a quarter of the rates; no milestones leaves the rates as given."""
    rng = np.random.default_rng(3)
    sizes, B, beta = (12, 7, 5, 3), 4, 0.5
    sf = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sn = [rng.uniform(-0.2, 1.2, (B, n)) for n in sizes]
    sn[0] = sf[0]
    rates = (0.1, 0.05, 0.02)
    net = build(make_netlist(sizes, BINARY, seed=1, bias=0.1))
    tr = Trainer(net, Hyper(rates=rates, milestones=(1, 3), gamma=0.5))
    assert [tr.hyper.rate_scale(e) for e in (1, 2, 3, 4, 9)] == [1.0, 0.5, 0.5, 0.25, 0.25]
    tr.start_epoch(4)
    W0, b0 = [w.copy() for w in tr.W], [b.copy() for b in tr.b]
    tr.apply_update(sf, sn, beta)
    for l, (dw, db) in enumerate(ep_update(sf, sn, beta, "first-order")):
        assert np.array_equal(tr.W[l], W0[l] + (rates[l] * 0.25) * dw)
        assert np.array_equal(tr.b[l + 1], b0[l + 1] + (rates[l] * 0.25) * db)
    plain = Trainer(build(make_netlist(sizes, BINARY, seed=1)), Hyper(rates=rates))
    plain.start_epoch(50)
    assert plain.rates == rates
    with pytest.raises(TrainError, match=r"milestones: must be increasing epochs >= 1"):
        Hyper(rates=rates, milestones=(3, 2)).check(net)
