"""Implicit differentiation at the equilibrium of firing rates (neuroemu.learn.ide, issue 16):
the engine's rates approach the rate map's fixed point, the gradient equals central finite
differences of the loss at that fixed point, and the iterative adjoint solver equals the slow
reference (tests/reference_ide.py: explicit Jacobian, numpy.linalg.solve)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build
from neuroemu.describe import from_dict
from neuroemu.errors import CompileError
from neuroemu.learn import ide
from reference_ide import Layout, reference_gradients


def _neuron(model="lif", leak=0.95, thr=1.0, reset="subtract"):
    n = {"model": model, "threshold": thr, "reset": reset}
    if model == "lif":
        n["leak"] = leak
    return n


def feedback_net(leak=0.95, thr=1.0, fb=0.6, seed=3, bias=0.1, sym=False, reset="subtract"):
    """6 inputs -> 5 LIF with recurrent 5x5 feedback -> 3 IF (the shape of feedback-lif)."""
    raw = {"network": {"name": "fb", "format": 2, "seed": seed},
           "population": [
               {"name": "x", "size": 6, "role": "input", "neuron": {"encoder": "none"}},
               {"name": "h", "size": 5, "bias": bias,
                "neuron": _neuron("lif" if leak < 1 else "if", leak, thr, reset)},
               {"name": "o", "size": 3, "role": "output", "bias": bias,
                "neuron": _neuron("if", thr=thr)}],
           "projection": [
               {"pre": "x", "post": "h", "symmetric": False,
                "weights": {"init": "glorot_uniform", "gain": 2.0}},
               {"pre": "h", "post": "h", "symmetric": False, "name": "feedback",
                "weights": {"init": "glorot_uniform", "gain": fb}},
               {"pre": "h", "post": "o", "symmetric": sym,
                "weights": {"init": "glorot_uniform", "gain": 2.0}}]}
    return from_dict(raw)


def kinds_net(seed=5):
    """Every projection kind and a symmetric projection between IF/LIF populations: image
    1x5x5 -conv 3x3-> c 2x3x3 (LIF, one-to-one self feedback) -pool 3x3-> p 2x1x1 (IF);
    c <-> o (dense, symmetric), p -> o, image -sparse-> o."""
    lif = _neuron("lif", 0.9, 0.8)
    raw = {"network": {"name": "kinds", "format": 2, "seed": seed},
           "population": [
               {"name": "img", "shape": [1, 5, 5], "role": "input", "neuron": {"encoder": "none"}},
               {"name": "c", "shape": [2, 3, 3], "bias": 0.15, "neuron": lif},
               {"name": "p", "shape": [2, 1, 1], "bias": 0.05, "neuron": _neuron("if")},
               {"name": "o", "size": 3, "role": "output", "bias": 0.4, "neuron": _neuron("if")}],
           "projection": [
               {"pre": "img", "post": "c", "kind": "conv2d", "kernel_size": 3,
                "symmetric": False, "weights": {"init": "glorot_uniform", "gain": 0.4}},
               {"pre": "c", "post": "c", "kind": "one_to_one", "symmetric": False,
                "weights": 0.3},
               {"pre": "c", "post": "p", "kind": "avgpool2d", "kernel_size": 3, "stride": 3,
                "symmetric": False},
               {"pre": "c", "post": "o", "symmetric": True,
                "weights": {"init": "glorot_uniform", "gain": 0.5}},
               {"pre": "p", "post": "o", "symmetric": False,
                "weights": {"init": "glorot_uniform", "gain": 0.5}},
               {"pre": "img", "post": "o", "kind": "sparse", "symmetric": False,
                "weights": {"init": "glorot_uniform", "density": 0.4, "gain": 0.5}}]}
    return from_dict(raw)


def _data(n_in, n_out, B=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((B, n_in)), np.eye(n_out)[rng.integers(0, n_out, B)]


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_engine_rates_approach_the_fixed_point_if():
    """IF neurons with reset by subtraction: rate = mean drive / threshold up to O(1/T)
    (membrane residue and the one-step delays per population), so the engine's rates after
    T steps are within a few 1/T of the map's fixed point."""
    net = build(feedback_net(leak=1.0))
    x, _ = _data(6, 3, B=6, seed=1)
    a, k, change = ide.equilibrium(net, x)
    assert change < 1e-12
    for T in (200, 2000):
        r = ide.engine_rates(net, x, T)
        err = max(np.abs(r[i] - a[i]).max() for i in (1, 2))
        assert err <= 5.0 / T, (T, err)
    # some neurons fire at intermediate rates: the test is not about silent/saturated units
    assert np.any((a[1] > 0.05) & (a[1] < 0.95)) and np.any((a[2] > 0.05) & (a[2] < 0.95))


def test_engine_rates_approach_the_fixed_point_lif():
    """LIF: the leak's share lies in [0, (1 - l) th] per step; the map takes its middle, so a
    long run is within about (1 - l)/2 (amplified a little by the feedback) of the map."""
    leak = 0.95
    net = build(feedback_net(leak=leak))
    x, _ = _data(6, 3, B=6, seed=2)
    a, _, _ = ide.equilibrium(net, x)
    r = ide.engine_rates(net, x, 4000)
    err = max(np.abs(r[i] - a[i]).max() for i in (1, 2))
    assert err <= (1 - leak) / 2 * 1.5, err
    # and the leak correction is better than ignoring the leak (leak_offset = 0)
    a0, _, _ = ide.equilibrium(net, x, leak_offset=0.0)
    err0 = max(np.abs(r[i] - a0[i]).max() for i in (1, 2))
    assert err < err0


def _fd_check(nl, x, y, loss, eps=1e-6):
    net = build(nl)
    g = ide.ide_gradients(net, x, y, loss=loss, iterations=500, tol=1e-15)
    assert g.info["converged"] and g.info["forward"] == "map"
    w0 = [None if pr.kind == "avgpool2d" else net.weights(p).astype(np.float64)
          for p, pr in enumerate(nl.projections)]
    b0 = [net.biases(r).astype(np.float64) for r in range(net.n_pops)]
    f = lambda w, b: ide.map_loss(net, x, y, loss=loss, weights=w, biases=b)  # noqa: E731
    assert f(w0, b0) == pytest.approx(g.loss, rel=1e-9, abs=1e-12)
    for p, w in enumerate(w0):
        if w is None:
            assert g.dW[p] is None
            continue
        fd = np.zeros(w.shape)
        for e in range(w.size):
            wp, wm = [v if v is None else v.copy() for v in w0], [v if v is None else v.copy()
                                                                 for v in w0]
            wp[p].flat[e] += eps
            wm[p].flat[e] -= eps
            fd.flat[e] = (f(wp, b0) - f(wm, b0)) / (2 * eps)
        assert np.abs(fd).max() > 1e-6, f"projection {p}: no gradient to compare"
        assert _cos(g.dW[p], fd) >= 0.99, (p, _cos(g.dW[p], fd))
        np.testing.assert_allclose(g.dW[p], fd, atol=1e-5 * np.abs(fd).max() + 1e-8)
    for r in range(net.n_pops):
        if nl.populations[r].role == "input":
            assert g.db[r] is None
            continue
        fd = np.zeros(net.sizes[r])
        for j in range(net.sizes[r]):
            bp, bm = [v.copy() for v in b0], [v.copy() for v in b0]
            bp[r][j] += eps
            bm[r][j] -= eps
            fd[j] = (f(w0, bp) - f(w0, bm)) / (2 * eps)
        assert _cos(g.db[r], fd) >= 0.99, (r, _cos(g.db[r], fd))


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_gradient_is_finite_differences_of_the_fixed_point_loss(loss):
    nl = feedback_net(bias=0.2, fb=0.8)
    x, y = _data(6, 3, B=5, seed=3)
    _fd_check(nl, x, y, loss)


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_gradient_finite_differences_every_kind(loss):
    nl = kinds_net()
    x, y = _data(25, 3, B=3, seed=4)
    _fd_check(nl, x, y, loss)


@pytest.mark.parametrize("net_fn", [feedback_net, kinds_net])
@pytest.mark.parametrize("loss,surrogate", [("mse", 0.0), ("ce", 0.0), ("mse", 0.2)])
def test_iterative_solver_equals_the_reference(net_fn, loss, surrogate):
    nl = net_fn()
    net = build(nl)
    x, y = _data(net.n_in, net.n_out, B=3, seed=5)
    for T in (None, 12):
        g = ide.ide_gradients(net, x, y, T, loss=loss, surrogate=surrogate,
                              iterations=400, tol=1e-15)
        dW, db, value = reference_gradients(nl, x, y, g.rates, loss, surrogate)
        assert g.loss == pytest.approx(value, rel=1e-12)
        scale = max(np.abs(w).max() for w in dW if w is not None)
        assert scale > 1e-4
        for p in range(len(dW)):
            if dW[p] is None:
                assert g.dW[p] is None
            else:
                np.testing.assert_allclose(g.dW[p], dW[p], atol=1e-6 * scale, rtol=0)
        for r in range(len(db)):
            if db[r] is None:
                assert g.db[r] is None
            else:
                np.testing.assert_allclose(g.db[r], db[r], atol=1e-6 * scale, rtol=0)


def test_fixed_point_matches_the_reference_layout():
    nl = kinds_net()
    net = build(nl)
    x, _ = _data(25, 3, B=2, seed=6)
    a, _, _ = ide.equilibrium(net, x)
    L = Layout(nl)
    for b in range(2):
        want = L.fixed_point(x[b])
        got = np.concatenate([a[i][b] for i in L.state])
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_rates_given_and_engine_forward_agree():
    net = build(feedback_net())
    x, y = _data(6, 3, B=3, seed=7)
    g = ide.ide_gradients(net, x, y, T=20)
    assert g.info["forward"] == "engine" and g.info["T"] == 20
    h = ide.ide_gradients(net, x, y, rates=g.rates)
    for u, v in zip(g.dW, h.dW):
        np.testing.assert_array_equal(u, v)
    assert g.loss == h.loss


def test_refuses_what_the_map_does_not_describe():
    with pytest.raises(CompileError, match="subtract"):
        ide.RateMap(build(feedback_net(reset="zero")))
    raw = {"network": {"name": "p", "format": 2, "seed": 0},
           "population": [{"name": "x", "size": 2, "role": "input"},
                          {"name": "o", "size": 2, "role": "output"}],
           "projection": [{"pre": "x", "post": "o",
                           "weights": {"init": "glorot_uniform"}}]}
    with pytest.raises(CompileError, match="integrate-and-fire"):
        ide.RateMap(build(from_dict(raw)))
