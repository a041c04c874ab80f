"""Equilibrium Propagation on graph networks (neuroemu.learn.graph_ep) against the dense rule
on the matrices each projection implies (tests/reference_graph.py), finite differences of the
cost at the fixed point, and the written definition of symmetric nudging."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference as ref
from conftest import build
from neuroemu.describe import from_dict
from neuroemu.learn.eqprop import Hyper, Trainer
from neuroemu.learn.graph_ep import graph_update

CONTINUOUS = {"encoder": "none", "predictive": False, "decoder": "identity",
              "eps": {"kind": "constant", "eps0": 0.5}}


def _cos(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def conv_net(gain=1.0, bias=0.3, stride=1, padding=0, seed=2):
    """img 1x5x5 -> conv 3x3 (2 maps) -> dense -> out 3, plus a sparse skip and a
    one-to-one side population: every trainable kind, all symmetric, continuous neurons."""
    post = (5 + 2 * padding - 3) // stride + 1
    raw = {"network": {"name": "cep", "format": 2, "seed": seed}, "neuron": CONTINUOUS,
           "population": [
               {"name": "img", "shape": [1, 5, 5], "role": "input"},
               {"name": "c1", "shape": [2, post, post], "bias": bias},
               {"name": "side", "shape": [2, post, post], "bias": bias},
               {"name": "out", "size": 3, "role": "output", "bias": bias}],
           "projection": [
               {"pre": "img", "post": "c1", "kind": "conv2d", "kernel_size": 3,
                "stride": stride, "padding": padding,
                "weights": {"init": "glorot_uniform", "gain": gain}},
               {"pre": "c1", "post": "side", "kind": "one_to_one", "weights": 0.3},
               {"pre": "c1", "post": "out", "weights": {"init": "glorot_uniform", "gain": gain}},
               {"pre": "img", "post": "out", "kind": "sparse",
                "weights": {"init": "glorot_uniform", "density": 0.3, "gain": gain}}]}
    return from_dict(raw)


def _unit(proj, e):
    """The projection with weight e set to 1 and every other to 0."""
    w = np.zeros(np.shape(proj.weights))
    w.flat[e] = 1.0
    return dataclasses.replace(proj, weights=w)


@pytest.mark.parametrize("rule", ["first-order", "full"])
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_update_is_the_dense_rule_projected_onto_each_kind(rule, stride, padding):
    """For every trainable projection, dW_e = sum(G * dM/dw_e): the dense EP rule G on the
    implied matrix, projected onto parameter e (dM/dw_e = the matrix with only w_e = 1)."""
    nl = conv_net(stride=stride, padding=padding)
    net = build(nl)
    rng = np.random.default_rng(0)
    B, beta = 3, 0.7
    s0 = [rng.random((B, p.size)) for p in nl.populations]
    s1 = [rng.random((B, p.size)) for p in nl.populations]
    s1[0] = s0[0]                     # the clamped input does not move
    dW, db = graph_update(net, s0, s0, s1, beta, rule)
    names = [p.name for p in nl.populations]
    for p, pr in enumerate(nl.projections):
        a, b = names.index(pr.pre), names.index(pr.post)
        if rule == "full":
            G = s1[a].T @ s1[b] - s0[a].T @ s0[b]
        else:
            G = s0[a].T @ (s1[b] - s0[b]) + (s1[a] - s0[a]).T @ s0[b]
        G /= beta * B
        want = np.array([np.sum(G * ref.dense_matrix(nl, _unit(pr, e)))
                         for e in range(np.size(pr.weights))]).reshape(np.shape(pr.weights))
        assert dW[p].shape == want.shape
        np.testing.assert_allclose(dW[p], want, rtol=1e-12, atol=1e-12)
    for r, p in enumerate(nl.populations):
        if p.role == "input":
            assert db[r] is None
        else:
            np.testing.assert_allclose(db[r], (s1[r] - s0[r]).mean(0) / beta, rtol=1e-14)


def test_pool_and_one_way_projections_are_left_alone():
    raw = {"network": {"name": "pool", "format": 2}, "neuron": CONTINUOUS,
           "population": [{"name": "img", "shape": [1, 4, 4], "role": "input"},
                          {"name": "p", "shape": [1, 2, 2]},
                          {"name": "out", "size": 2, "role": "output"}],
           "projection": [{"pre": "img", "post": "p", "kind": "avgpool2d", "kernel_size": 2},
                          {"pre": "p", "post": "out", "symmetric": False}]}
    nl = from_dict(raw)
    net = build(nl)
    s = [np.full((2, p.size), 0.5) for p in nl.populations]
    s2 = [v + 0.1 for v in s]
    dW, _ = graph_update(net, s, s, s2, 0.5, "full")
    assert dW == [None, None]


@pytest.mark.parametrize("nudge", ["random-sign", "symmetric"])
def test_small_beta_update_is_minus_the_gradient_of_the_loss(nudge):
    """EP on a small continuous conv network vs central finite differences of the cost at
    the fixed point (float64 dense reference dynamics): cosine >= 0.99 for every trainable
    projection and every population's biases, as for dense chains."""
    nl = conv_net(gain=0.6, bias=0.3, stride=2, padding=1)
    net = build(nl)
    rng = np.random.default_rng(1)
    B = 3
    x = rng.uniform(0.0, 1.0, size=(B, 25))
    y = np.eye(3)[rng.integers(0, 3, size=B)]
    beta, steps = 0.002, 300
    # the engine runs float32 weights: differentiate those same weights
    W32 = [net.weights(p).astype(np.float64) for p in range(net.n_projections)]

    def cost(W, biases):
        w = dict(enumerate(W))
        probe = from_dict(_with(nl, W, biases))
        s = ref.continuous_graph_run(probe, x, steps)
        return float(((y - s[-1]) ** 2).sum(axis=1).mean())

    hp = Hyper.for_network(net, beta=beta, n_free=steps, n_nudged=steps, rule="full",
                           nudge=nudge)
    tr = Trainer(net, hp)
    if nudge == "symmetric":
        s0, sp, sm, _ = tr.symmetric_phases(x, y)
        dW, db = graph_update(net, s0, sm, sp, 2 * beta, "full")
    else:
        s0, s1, _ = tr.phases(x, y, beta)
        dW, db = graph_update(net, s0, s0, s1, beta, "full")
    s_ref = ref.continuous_graph_run(from_dict(_with(nl, W32, None)), x, steps)
    assert np.abs(s_ref[-1] - s0[-1]).max() < 1e-5             # the same fixed point
    biases = [p.bias.copy() for p in nl.populations]
    h = 1e-5
    for p in (0, 2, 3, 1):             # conv, dense, sparse, one-to-one
        fd = np.zeros_like(W32[p])
        for e in range(W32[p].size):
            Wp = [w.copy() for w in W32]
            Wm = [w.copy() for w in W32]
            Wp[p].flat[e] += h
            Wm[p].flat[e] -= h
            fd.flat[e] = (cost(Wp, biases) - cost(Wm, biases)) / (2 * h)
        assert _cos(dW[p], -fd) >= 0.99, (p, _cos(dW[p], -fd))
        assert np.linalg.norm(dW[p]) == pytest.approx(np.linalg.norm(fd), rel=0.1)
    for r in (1, 3):
        fdb = np.zeros_like(biases[r])
        for j in range(len(fdb)):
            bp = [v.copy() for v in biases]
            bm = [v.copy() for v in biases]
            bp[r][j] += h
            bm[r][j] -= h
            fdb[j] = (cost(W32, bp) - cost(W32, bm)) / (2 * h)
        assert _cos(db[r], -fdb) >= 0.99


def _with(nl, W, biases):
    """The netlist's dict with weights W (per projection) and optional biases."""
    from neuroemu.describe import to_dict
    return to_dict(nl, weights=W, biases=None if biases is None else
                   [None if p.role == "input" else b for p, b in zip(nl.populations, biases)])


def test_symmetric_phases_start_both_nudges_from_the_free_state():
    """The +beta and -beta phases equal fresh runs (free phase, then that nudge) bit for
    bit, and the trainer applies graph_update's direction to its weights."""
    nl = conv_net(gain=1.5, bias=0.1)
    rng = np.random.default_rng(3)
    x = rng.random((2, 25))
    y = np.eye(3)[[0, 2]]
    hp = Hyper.for_network(build(nl), beta=0.5, n_free=15, n_nudged=7, nudge="symmetric",
                           rates=(0.1, 0.2, 0.3, 0.4))
    tr = Trainer(build(nl), hp)
    s0, sp, sm, _ = tr.symmetric_phases(x, y)
    for sign, got in ((1.0, sp), (-1.0, sm)):
        fresh = Trainer(build(nl), hp)
        sess = fresh._session(np.ascontiguousarray(x), np.arange(2))
        sess.run(15)
        sess.run(7, beta=sign * 0.5, target=y)
        for r in range(len(nl.populations)):
            assert np.array_equal(sess.state(r), got[r])
    tr2 = Trainer(build(nl), hp)
    before = [w.copy() for w in tr2.W]
    tr2.train_batch(x, y)
    dW, db = graph_update(tr2.net, s0, sm, sp, 1.0, "first-order")
    for p in range(4):
        np.testing.assert_allclose(tr2.W[p], before[p] + hp.rates[p] * dW[p], rtol=0, atol=0)
        assert np.array_equal(tr2.net.weights(p), tr2.W[p].astype(np.float32))


def test_training_a_conv_network_lowers_the_loss():
    nl = conv_net(gain=1.0, bias=0.2)
    net = build(nl)
    rng = np.random.default_rng(4)
    x = rng.random((20, 25))
    y = np.eye(3)[rng.integers(0, 3, size=20)]
    tr = Trainer(net, Hyper.for_network(net, n_free=30, n_nudged=10, beta=0.5, batch=20,
                                        rates=(0.2, 0.2, 0.2, 0.2), nudge="symmetric"))
    first = tr.train_batch(x, y).loss
    for _ in range(30):
        last = tr.train_batch(x, y).loss
    assert last < 0.7 * first


@pytest.mark.parametrize("nudge", ["random-sign", "symmetric"])
def test_checkpoint_resume_of_a_graph_network_continues_identically(tmp_path, nudge):
    """Weights of every kind (conv kernel, one-to-one, dense, sparse values) and biases go
    through a checkpoint exactly; training goes on as if never stopped."""
    from neuroemu.learn import eqprop
    rng = np.random.default_rng(6)
    x = rng.random((4, 25))
    y = np.eye(3)[[0, 1, 2, 0]]
    hp = Hyper.for_network(build(conv_net()), n_free=10, n_nudged=4, nudge=nudge)
    a = Trainer(build(conv_net()), hp, seed=9)
    a.train_batch(x, y)
    eqprop.save_checkpoint(tmp_path / "c.npz", a, 1, [{"epoch": 1}], {})
    b = Trainer(build(conv_net()), hp, seed=0)
    epoch, _, _ = eqprop.load_checkpoint(tmp_path / "c.npz", b)
    assert epoch == 1
    for _ in range(2):
        a.train_batch(x, y)
        b.train_batch(x, y)
    for p in range(len(a.W)):
        assert a.W[p].shape == np.shape(conv_net().projections[p].weights)
        assert np.array_equal(a.W[p], b.W[p])
        assert np.array_equal(a.net.weights(p), b.net.weights(p))
    for r in range(len(a.b)):
        assert np.array_equal(a.b[r], b.b[r])
