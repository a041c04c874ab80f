"""The graph reference itself (tests/reference_graph.py) against independent facts: implied
matrices against convolutions, pools and scatters computed another way, the chain reference
(reference.Network) bit for bit, and analytic facts of IF and LIF neurons.

Networks are written once as format-2 dicts (what ``describe.from_dict`` takes) with explicit
weights; :func:`stand_in` reads such a dict into plain objects with the fields the spec gives
the netlist dataclasses, so the reference is tested here without the loader.
test_graph_engine.py runs the same networks through the loader and the engine.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import reference as ref
from conftest import make_netlist
from neuroemu.describe.neurons import ANNEALER_PARAMS, DEFAULT_NEURON, SCHEDULE_PARAMS
from test_kernels import VARIANTS

# --------------------------------------------------------------------------- stand-in netlists


class Comp(SimpleNamespace):
    def as_dict(self):
        return dict(self.d)

    def get(self, key):
        return self.d[key]

    @property
    def kind(self):
        return self.d["kind"]


class Pop(SimpleNamespace):
    @property
    def dims(self):
        return self.shape if self.shape else (self.size,)


class Proj(SimpleNamespace):
    def param(self, key):
        return dict(self.params)[key]


class Net(SimpleNamespace):
    @property
    def sizes(self):
        return tuple(p.size for p in self.populations)


def _component(spec, registry):
    spec = {"kind": spec} if isinstance(spec, str) else dict(spec)
    for p in registry[spec["kind"]]:
        spec.setdefault(p.name, p.default)
    return Comp(d=spec)


def _neuron(table, default):
    table = dict(table or {})
    if table.get("model", "paper") == default.get("model", "paper"):
        table = {**default, **table}
    m = table.get("model", "paper")
    if m == "paper":
        t = {**DEFAULT_NEURON, **table}
        return SimpleNamespace(model="paper", encoder=t["encoder"], predictive=t["predictive"],
                               decoder=t["decoder"], lam=_component(t["lam"], SCHEDULE_PARAMS),
                               eps=_component(t["eps"], ANNEALER_PARAMS))
    return SimpleNamespace(model=m, threshold=table.get("threshold", 1.0),
                           leak=table.get("leak", 1.0), reset=table.get("reset", "subtract"),
                           v0=table.get("v0", 0.0), encoder="none", predictive=False,
                           decoder="identity")


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(a) for a in v)


def stand_in(raw):
    """A format-2 dict (explicit weights only) as objects with the spec's netlist fields (and
    the few properties the engine's build reads: dims, param, sizes), read without the
    loader; test_graph_engine.py checks that the loader reads the same."""
    default = raw.get("neuron", {})
    pops = []
    for p in raw["population"]:
        shape = tuple(p["shape"]) if "shape" in p else ()
        size = int(np.prod(shape)) if shape else p["size"]
        bias = np.zeros(size) + np.asarray(p.get("bias", 0.0), dtype=float)
        pops.append(Pop(name=p["name"], size=size, role=p.get("role", "hidden"),
                                    shape=shape, bias=bias,
                                    neuron=_neuron(p.get("neuron"), default)))
    projs = []
    for j in raw.get("projection", []):
        k = j.get("kind", "dense")
        params, indices = (), None
        w = j.get("weights", 1.0 if k == "one_to_one" else None)
        if k == "sparse":
            indices = np.array([w["row"], w["col"]], dtype=np.int64)
            w = w["data"]
        if k in ("conv2d", "avgpool2d"):
            kern = _pair(j["kernel_size"])
            ps = {"kernel": kern, "stride": _pair(j.get("stride", kern))}
            if k == "conv2d":
                ps["stride"] = _pair(j.get("stride", 1))
                ps["padding"] = _pair(j.get("padding", 0))
            params = tuple(sorted(ps.items()))
        if k == "avgpool2d":
            w = np.zeros(0)
        w = np.asarray(w, dtype=float)
        if k == "one_to_one" and w.ndim == 0:
            w = np.full(next(p.size for p in pops if p.name == j["pre"]), float(w))
        projs.append(Proj(pre=j["pre"], post=j["post"], kind=k, weights=w,
                                     symmetric=j.get("symmetric", True), params=params,
                                     indices=indices, name=j.get("name", "")))
    return Net(name="t", seed=raw.get("network", {}).get("seed", 0), path=None,
               populations=tuple(pops), projections=tuple(projs))


def pop(name, role="hidden", size=None, shape=None, bias=None, neuron=None):
    p = {"name": name, "role": role}
    p.update({"shape": list(shape)} if shape else {"size": size})
    if bias is not None:
        p["bias"] = bias
    if neuron is not None:
        p["neuron"] = neuron
    return p


def proj(pre, post, weights=None, **kw):
    j = {"pre": pre, "post": post, **kw}
    if weights is not None:
        j["weights"] = weights
    return j


def network(pops, projs, neuron=None, seed=0):
    raw = {"network": {"name": "g", "seed": seed, "format": 2}, "population": pops,
           "projection": projs}
    if neuron is not None:
        raw["neuron"] = neuron
    return raw


def uniform(rng, shape, a):
    return rng.uniform(-a, a, size=shape).round(6).tolist()


def sparse_weights(rng, n_pre, n_post, density, a):
    keep = rng.random((n_pre, n_post)) < density
    rows, cols = np.nonzero(keep)
    return {"row": rows.tolist(), "col": cols.tolist(),
            "data": rng.uniform(-a, a, size=len(rows)).round(6).tolist()}


# --------------------------------------------------------------------------- shared networks

SD = {"model": "paper", "encoder": "sigma_delta", "predictive": False, "decoder": "identity",
      "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}
SD_OSA = dict(SD, eps={"kind": "osa", "nu_bar": 0.05, "reg": 1e-7})
REAL = {"model": "paper", "encoder": "none", "predictive": False, "decoder": "identity",
        "eps": {"kind": "constant", "eps0": 0.5}}
STOCH_PRED = {"model": "paper", "encoder": "stochastic", "predictive": True,
              "decoder": "predictive", "lam": {"kind": "scheduled", "lam0": 0.8, "eta": 0.3},
              "eps": {"kind": "constant", "eps0": 0.3}}


def conv_net(seed=1):
    """conv with stride and padding, avgpool, a rectangular conv with unequal stride and
    padding beside it (two inputs into the output), a one-way conv skip from the input."""
    rng = np.random.default_rng(seed)
    pops = [pop("img", "input", shape=(1, 7, 7)),
            pop("c1", shape=(2, 4, 4), bias=0.05),
            pop("p1", shape=(2, 2, 2), bias=0.02, neuron=SD_OSA),
            pop("c2", shape=(3, 8, 3), bias=0.01),
            pop("out", "output", size=3)]
    projs = [proj("img", "c1", uniform(rng, (2, 1, 3, 3), 0.9), kind="conv2d", kernel_size=3,
                  stride=2, padding=1),
             proj("c1", "p1", kind="avgpool2d", kernel_size=2),
             proj("img", "c2", uniform(rng, (3, 1, 2, 3), 0.8), kind="conv2d",
                  kernel_size=[2, 3], stride=[1, 2], padding=[1, 0]),
             proj("p1", "out", uniform(rng, (8, 3), 1.0)),
             proj("c2", "out", uniform(rng, (72, 3), 0.4)),
             proj("img", "p1", uniform(rng, (2, 1, 4, 4), 0.5), kind="conv2d", kernel_size=4,
                  stride=2, padding=0, symmetric=False, name="skip")]
    return network(pops, projs, neuron=SD, seed=seed)


def mixed_net(seed=2):
    """Two inputs (binary and real-valued) and two outputs (binary and real-valued), sparse,
    one_to_one, a skip, a symmetric lateral sparse projection, LIF with a one-way recurrent
    projection, IF with reset to zero, paper neurons receiving spikes of LIF neurons."""
    rng = np.random.default_rng(seed)
    lif = {"model": "lif", "leak": 0.8, "threshold": 0.6, "v0": 0.1}
    pops = [pop("o2", "output", size=2, bias=[0.1, -0.1], neuron=REAL),
            pop("a", "input", size=6),
            pop("h1", size=5, bias=0.05),
            pop("b", "input", size=4, neuron=REAL),
            pop("h2", size=6, bias=0.02, neuron=lif),
            pop("h3", size=5, bias=0.01, neuron={"model": "if", "threshold": 0.7,
                                                 "reset": "zero"}),
            pop("o1", "output", size=3, bias=0.0)]
    projs = [proj("a", "h1", uniform(rng, (6, 5), 0.8)),
             proj("b", "h1", sparse_weights(rng, 4, 5, 0.5, 0.9), kind="sparse"),
             proj("h1", "h1", sparse_weights(rng, 5, 5, 0.4, 0.3), kind="sparse", name="lat"),
             proj("h1", "h2", uniform(rng, (5, 6), 1.2), symmetric=False),
             proj("h2", "h2", uniform(rng, (6, 6), 0.5), symmetric=False, name="rec"),
             proj("h2", "o1", uniform(rng, (6, 3), 0.9)),
             proj("a", "o1", uniform(rng, (6, 3), 0.6), name="skip"),
             proj("h1", "h3", uniform(rng, (5,), 1.5), kind="one_to_one", symmetric=False),
             proj("h3", "o2", sparse_weights(rng, 5, 2, 0.7, 1.0), kind="sparse",
                  symmetric=False),
             proj("h1", "o2", uniform(rng, (5, 2), 0.7))]
    return network(pops, projs, neuron=SD, seed=seed)


def feedback_net(seed=3):
    """Xiao et al.'s kind: real-valued input -> LIF hidden with one-way recurrent feedback ->
    IF output, the output fed back one way; all one-way."""
    rng = np.random.default_rng(seed)
    pops = [pop("x", "input", size=8, neuron=REAL),
            pop("h", size=7, bias=0.05, neuron={"model": "lif", "leak": 0.9, "threshold": 0.5,
                                                 "v0": 0.2}),
            pop("y", "output", size=3, neuron={"model": "if", "threshold": 1.0})]
    projs = [proj("x", "h", uniform(rng, (8, 7), 0.6), symmetric=False),
             proj("h", "h", uniform(rng, (7, 7), 0.3), symmetric=False),
             proj("h", "y", uniform(rng, (7, 3), 0.8), symmetric=False),
             proj("y", "h", uniform(rng, (3, 7), 0.5), symmetric=False, name="fb")]
    return network(pops, projs, seed=seed)


def predictive_net(seed=4):
    """Predictive coding and stochastic encoders across a skip; populations out of role order
    (two inputs after the output)."""
    rng = np.random.default_rng(seed)
    pops = [pop("out", "output", size=3, bias=0.1),
            pop("in1", "input", size=5),
            pop("h", size=6, bias=-0.05),
            pop("in2", "input", size=4)]
    projs = [proj("in1", "h", uniform(rng, (5, 6), 0.9)),
             proj("in2", "h", uniform(rng, (4, 6), 0.9)),
             proj("h", "out", uniform(rng, (6, 3), 1.0)),
             proj("in2", "out", uniform(rng, (4, 3), 0.7), name="skip")]
    return network(pops, projs, neuron=STOCH_PRED, seed=seed)


def continuous_net(seed=5):
    """Every kind (conv, pool, sparse, one_to_one, lateral, skip), real-valued messages."""
    rng = np.random.default_rng(seed)
    pops = [pop("img", "input", shape=(2, 5, 5)),
            pop("c", shape=(3, 3, 3), bias=0.05),
            pop("p", shape=(3, 2, 2), bias=0.02),
            pop("d", size=12, bias=-0.02),
            pop("out", "output", size=4, bias=0.1)]
    projs = [proj("img", "c", uniform(rng, (3, 2, 3, 3), 0.5), kind="conv2d", kernel_size=3,
                  stride=2, padding=1),
             proj("c", "p", kind="avgpool2d", kernel_size=2, stride=1),
             proj("p", "d", uniform(rng, (12,), 1.0), kind="one_to_one"),
             proj("d", "d", sparse_weights(rng, 12, 12, 0.3, 0.3), kind="sparse"),
             proj("d", "out", uniform(rng, (12, 4), 0.8)),
             proj("c", "out", uniform(rng, (27, 4), 0.3), name="skip"),
             proj("img", "d", sparse_weights(rng, 50, 12, 0.1, 0.5), kind="sparse",
                  symmetric=False)]
    return network(pops, projs, neuron=REAL, seed=seed)


def sizes(raw, role):
    return sum(int(np.prod(p["shape"])) if "shape" in p else p["size"]
               for p in raw["population"] if p.get("role", "hidden") == role)


def inputs(raw, batch, seed):
    """Inputs with silent, out-of-range and mid values."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.2, 1.2, size=(batch, sizes(raw, "input")))
    x[rng.random(x.shape) < 0.3] = 0.0
    return x


def targets(raw, batch, seed):
    return np.random.default_rng(seed + 100).random((batch, sizes(raw, "output"))).round(1)


NETWORKS = {"conv": conv_net, "mixed": mixed_net, "feedback": feedback_net,
            "predictive": predictive_net, "continuous": continuous_net}


def reference_run(net, x, steps, seed, beta=0.0, y=None, free=None):
    """GraphNetwork on one sample: (messages (T, N), states (T, N), the network)."""
    r = ref.GraphNetwork(net, x, seed)
    f = steps if free is None else free
    qs, ss = [], []
    for t in range(1, steps + 1):
        nudged = t > f and y is not None
        qs.append(r.step(beta if nudged else 0.0, y if nudged else None))
        ss.append(r.states())
    return np.array(qs), np.array(ss), r


# --------------------------------------------------------------------------- implied matrices


def conv_direct(x, w, stride, padding):
    """PyTorch conv2d (cross-correlation) of one map x (Ci, H, W) by sliding windows."""
    (sy, sx), (py, px) = stride, padding
    co, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (py, py), (px, px)))
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sy, ::sx]
    return np.einsum("cyxij,ocij->oyx", win, w)


def conv_transpose_scatter(g, w, in_shape, stride, padding):
    """The adjoint of conv_direct by direct scatter: every output unit spreads its value times
    the kernel over its window of the padded input, then the padding is cut off."""
    (sy, sx), (py, px) = stride, padding
    ci, h, wd = in_shape
    _, _, kh, kw = w.shape
    xp = np.zeros((ci, h + 2 * py, wd + 2 * px))
    for co in range(g.shape[0]):
        for oy in range(g.shape[1]):
            for ox in range(g.shape[2]):
                xp[:, oy * sy:oy * sy + kh, ox * sx:ox * sx + kw] += g[co, oy, ox] * w[co]
    return xp[:, py:py + h, px:px + wd]


def one_projection(kind, pre_shape, post_shape, weights=None, **kw):
    pops = [pop("a", "input", shape=pre_shape), pop("b", "output", shape=post_shape)]
    raw = network(pops, [proj("a", "b", weights, kind=kind, **kw)])
    n = stand_in(raw)
    return n, n.projections[0]


CONVS = [  # (Ci, H, W), Co, kernel, stride, padding
    ((1, 5, 5), 1, (3, 3), (1, 1), (0, 0)),
    ((2, 6, 5), 3, (3, 3), (2, 2), (1, 1)),
    ((3, 7, 7), 2, (2, 3), (1, 2), (1, 0)),
    ((1, 4, 6), 2, (4, 1), (3, 1), (2, 0)),
    ((2, 3, 3), 1, (5, 5), (1, 1), (2, 2)),
]


def conv_case(in_shape, co, k, s, p, seed=0):
    ci, h, w = in_shape
    out = (co, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
    wt = np.random.default_rng(seed).normal(size=(co, ci) + k)
    net, pj = one_projection("conv2d", in_shape, out, wt.tolist(), kernel_size=list(k),
                             stride=list(s), padding=list(p))
    return net, pj, wt, out


def test_conv_hand_example():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3)
    net, pj = one_projection("conv2d", (1, 3, 3), (1, 2, 2), [[[[1, 0], [0, -1]]]],
                             kernel_size=2)
    assert (x.ravel() @ ref.dense_matrix(net, pj)).tolist() == [-4.0] * 4
    net, pj = one_projection("conv2d", (1, 3, 3), (1, 2, 2), [[[[1, 1], [1, 1]]]],
                             kernel_size=2, stride=2, padding=1)
    assert (x.ravel() @ ref.dense_matrix(net, pj)).tolist() == [1.0, 5.0, 11.0, 28.0]


@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv_matrix_is_cross_correlation_and_its_transpose(case):
    in_shape, co, k, s, p = CONVS[case]
    net, pj, wt, out = conv_case(in_shape, co, k, s, p, seed=case)
    m = ref.dense_matrix(net, pj)
    assert m.shape == (int(np.prod(in_shape)), int(np.prod(out)))
    rng = np.random.default_rng(10 + case)
    for _ in range(3):
        x = rng.normal(size=in_shape)
        want = conv_direct(x, wt, s, p)
        assert want.shape == out
        np.testing.assert_allclose(x.ravel() @ m, want.ravel(), rtol=1e-12, atol=1e-12)
        g = rng.normal(size=out)
        back = conv_transpose_scatter(g, wt, in_shape, s, p)
        np.testing.assert_allclose(m @ g.ravel(), back.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv_synapse_counts(case):
    """Weights a spike touches: forward, the outputs whose window holds the input unit (an
    all-ones kernel on a one-hot map); backward, C_in times the in-range taps of the window
    (an all-ones kernel on an all-ones map)."""
    in_shape, co, k, s, p = CONVS[case]
    net, pj, wt, out = conv_case(in_shape, co, k, s, p)
    has = ref.structure(net, pj)
    ones = np.ones_like(wt)
    for i in range(has.shape[0]):
        hot = np.zeros(int(np.prod(in_shape)))
        hot[i] = 1.0
        assert has[i].sum() == np.count_nonzero(conv_direct(hot.reshape(in_shape), ones, s, p))
    fan_in = conv_direct(np.ones(in_shape), ones, s, p).ravel()
    assert np.array_equal(has.sum(axis=0), fan_in.astype(int))
    assert np.array_equal(has, ref.dense_matrix(net, pj) != 0)  # normal weights: none is 0


@pytest.mark.parametrize("shape,k,s", [((2, 4, 6), (2, 2), (2, 2)), ((1, 5, 7), (2, 3), (2, 3)),
                                       ((3, 5, 5), (3, 3), (1, 1)), ((1, 6, 6), (3, 2), (2, 1))])
def test_pool_matrix_is_window_mean(shape, k, s):
    c, h, w = shape
    out = (c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)
    net, pj = one_projection("avgpool2d", shape, out, kernel_size=list(k), stride=list(s))
    m = ref.dense_matrix(net, pj)
    x = np.random.default_rng(0).normal(size=shape)
    want = sliding_window_view(x, k, axis=(1, 2))[:, ::s[0], ::s[1]].mean(axis=(3, 4))
    np.testing.assert_allclose(x.ravel() @ m, want.ravel(), rtol=1e-12, atol=1e-14)
    if k == s:  # non-overlapping windows: block means of the cropped map
        blocks = x[:, :out[1] * k[0], :out[2] * k[1]].reshape(c, out[1], k[0], out[2], k[1])
        np.testing.assert_allclose(x.ravel() @ m, blocks.mean(axis=(2, 4)).ravel(), rtol=1e-12)
    # every pooled unit averages kh*kw units; delivered as float32(1/(kh*kw))
    assert np.array_equal(ref.structure(net, pj).sum(axis=0), np.full(m.shape[1], k[0] * k[1]))
    assert set(np.unique(m.astype(np.float32))) == {np.float32(0), np.float32(1 / (k[0] * k[1]))}


def test_sparse_matrix_is_scatter():
    rng = np.random.default_rng(3)
    wts = sparse_weights(rng, 9, 7, 0.3, 1.0)
    wts["data"][0] = 0.0  # a stored zero is still a synapse
    raw = network([pop("a", "input", size=9), pop("b", "output", size=7)],
                  [proj("a", "b", wts, kind="sparse")])
    net = stand_in(raw)
    pj = net.projections[0]
    m = ref.dense_matrix(net, pj)
    x, g = rng.normal(size=9), rng.normal(size=7)
    fwd, bwd = np.zeros(7), np.zeros(9)
    rows, cols, data = (np.array(wts[k]) for k in ("row", "col", "data"))
    np.add.at(fwd, cols, x[rows] * data)
    np.add.at(bwd, rows, g[cols] * data)
    np.testing.assert_allclose(x @ m, fwd, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m @ g, bwd, rtol=1e-12, atol=1e-15)
    has = ref.structure(net, pj)
    assert np.array_equal(has.sum(axis=1), np.bincount(rows, minlength=9))
    assert np.array_equal(has.sum(axis=0), np.bincount(cols, minlength=7))


def test_dense_and_one_to_one_matrices():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(4, 3))
    net, pj = one_projection("dense", (4,), (3,), w.tolist())
    assert np.array_equal(ref.dense_matrix(net, pj), w) and ref.structure(net, pj).all()
    d = rng.normal(size=5)
    net, pj = one_projection("one_to_one", (5,), (5,), d.tolist())
    x = rng.normal(size=5)
    assert np.array_equal(x @ ref.dense_matrix(net, pj), x * d)
    assert np.array_equal(ref.structure(net, pj), np.eye(5, dtype=bool))
    net, pj = one_projection("one_to_one", (1, 2, 3), (6,))  # default weight 1.0
    assert np.array_equal(ref.dense_matrix(net, pj), np.eye(6))


# --------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_graph_reference_equals_chain_reference(variant):
    """On a format-1 chain the graph reference is reference.Network, bit for bit."""
    net = make_netlist([7, 5, 4, 3], VARIANTS[variant], seed=3, bias=0.05, gain=1.5)
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-0.2, 1.2, 7), np.eye(3)[1]
    chain, graph = ref.Network(net, x, seed=77), ref.GraphNetwork(net, x, seed=77)
    delivered = np.zeros(4, dtype=np.int64)
    for t in range(1, 61):
        beta, yy = (0.5, y) if t > 40 else (0.0, None)
        for l, q in enumerate(chain.q):
            delivered[l] += np.count_nonzero(q)
        assert np.array_equal(chain.step(beta, yy), graph.step(beta, yy))
        for l in range(1, 4):
            assert np.array_equal(chain.s[l], graph.s[l])
    assert np.array_equal(chain.spikes, graph.spikes)
    assert np.array_equal(graph.syn_events[:, 0], delivered[:3] * [5, 4, 3])
    assert np.array_equal(graph.syn_events[:, 1], [0, delivered[2] * 5, delivered[3] * 4])


def one_neuron_net(neuron, bias):
    pops = [pop("x", "input", size=1, neuron=REAL),
            pop("h", "output", size=len(bias), bias=list(bias), neuron=neuron)]
    return stand_in(network(pops, [proj("x", "h", [[0.0] * len(bias)], symmetric=False)]))


def test_if_constant_current_fires_at_current_over_threshold():
    currents = [0.25, 0.3, 0.45, 0.7]
    net = one_neuron_net({"model": "if", "threshold": 1.0}, currents)
    r = ref.GraphNetwork(net, [1.0], seed=0)
    count = np.zeros(4)
    T = 1000
    for _ in range(T):
        count += r.step()[1:]
    assert count[0] == T // 4  # V reaches exactly 1.0 = threshold every 4th step
    assert np.all(np.abs(count - np.floor(T * np.array(currents))) <= 1)
    np.testing.assert_allclose(r.s[1], count / T, rtol=1e-9)
    zero = ref.GraphNetwork(one_neuron_net({"model": "if", "threshold": 1.0, "reset": "zero"},
                                           currents), [1.0], seed=0)
    count = np.zeros(4)
    for _ in range(T):
        count += zero.step()[1:]
    # reset to zero drops the overshoot: one spike every ceil(threshold / I) steps
    assert count.tolist() == [T // 4, T // 4, T // 3, T // 2]


def test_lif_decays_geometrically_and_settles():
    net = one_neuron_net({"model": "lif", "leak": 0.5, "threshold": 1.0, "v0": 0.8}, [0.0])
    r = ref.GraphNetwork(net, [1.0], seed=0)
    for t in range(1, 40):
        assert not r.step()[1:].any()
        assert r.V[1][0] == 0.8 * 0.5**t
    # a constant current I below threshold * (1 - leak) settles at I / (1 - leak) and never fires
    net = one_neuron_net({"model": "lif", "leak": 0.5, "threshold": 1.0}, [0.3])
    r = ref.GraphNetwork(net, [1.0], seed=0)
    for _ in range(100):
        assert not r.step()[1:].any()
    assert abs(r.V[1][0] - 0.6) < 1e-12 and r.s[1][0] == 0.0


def test_if_output_nudge_settles_where_rate_equals_drive():
    """Nudged only, an IF output (threshold 1) fires at the mean of its drive 2 beta (y - s),
    so its rate s settles at s = 2 beta (y - s): s = 2 beta y / (1 + 2 beta)."""
    net = one_neuron_net({"model": "if", "threshold": 1.0}, [0.0, 0.0])
    y = np.array([0.25, 0.75])
    for beta in (0.5, 2.0):
        r = ref.GraphNetwork(net, [1.0], seed=0)
        for _ in range(4000):
            r.step(beta=beta, y=y)
        np.testing.assert_allclose(r.s[1], 2 * beta * y / (1 + 2 * beta), atol=0.005)


def test_delivery_timing_one_step_per_projection():
    """A spike of step t arrives at step t + 1, through each projection of a path: the input's
    first message (step 1) reaches h at step 2 (V before leak is 0), h's first spike at step 2
    reaches o at step 3."""
    pops = [pop("x", "input", size=1, neuron=REAL),
            pop("h", size=1, neuron={"model": "if", "threshold": 1.0}),
            pop("o", "output", size=1, neuron={"model": "if", "threshold": 1.0})]
    net = stand_in(network(pops, [proj("x", "h", [[1.0]], symmetric=False),
                                  proj("h", "o", [[1.0]], symmetric=False)]))
    r = ref.GraphNetwork(net, [1.0], seed=0)
    rows = [r.step().tolist() for _ in range(4)]
    assert rows == [[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]]
    assert r.syn_events.tolist() == [[3, 0], [2, 0]]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_graph_reference_runs_every_network(name):
    """The shared networks run: spikes flow through every projection, counters follow from
    the messages, states stay in [0, 1]."""
    raw = NETWORKS[name]()
    net = stand_in(raw)
    x, y = inputs(raw, 1, 0)[0], targets(raw, 1, 0)[0]
    qs, ss, r = reference_run(net, x, 40, seed=5, beta=0.5, y=y, free=30)
    assert ((ss >= 0) & (ss <= 1)).all()
    assert np.array_equal(r.spikes, [np.count_nonzero(qs[:, r.off[k]:r.off[k + 1]])
                                     for k in range(len(r.pops))])
    sent = [np.count_nonzero(qs[:-1, r.off[k]:r.off[k + 1]]) for k in range(len(r.pops))]
    for k, pj in enumerate(net.projections):
        assert r.syn_events[k, 0] > 0, pj
        assert (r.syn_events[k, 1] > 0) == (pj.symmetric and
                                            net.populations[r.idx[pj.pre]].role != "input")
        if pj.kind == "dense":
            assert r.syn_events[k, 0] == sent[r.idx[pj.pre]] * r.pops[r.idx[pj.post]].size


def test_continuous_graph_run_equals_chain_dynamics():
    net = make_netlist([9, 6, 5, 3], VARIANTS["continuous"], seed=2, bias=0.05, gain=1.3)
    rng = np.random.default_rng(2)
    x, y = rng.random((4, 9)), np.eye(3)[[0, 1, 2, 0]]
    W = [p.weights for p in net.projections]
    b = [p.bias for p in net.populations[1:]]
    want = ref.continuous_run(W, b, x, 30)
    want = ref.continuous_run(W, b, x, 10, beta=0.5, y=y, s=want)
    got = ref.continuous_graph_run(net, x, 30)
    got = ref.continuous_graph_run(net, x, 10, beta=0.5, y=y, s=got)
    for a, c in zip(want, got):
        np.testing.assert_allclose(c, a, rtol=0, atol=1e-13)


def test_spiking_reference_with_real_messages_tracks_continuous_dynamics():
    """encoder none everywhere: GraphNetwork is the continuous dynamics in float32 delivery,
    on a graph of every kind; and the continuous run's end state is its own fixed point."""
    raw = continuous_net()
    net = stand_in(raw)
    x, y = inputs(raw, 2, 1), targets(raw, 2, 1)
    cont = ref.continuous_graph_run(net, x, 60)
    cont = ref.continuous_graph_run(net, x, 20, beta=0.3, y=y, s=cont)
    for b in range(2):
        _, ss, _ = reference_run(net, x[b], 80, seed=0, beta=0.3, y=y[b], free=60)
        np.testing.assert_allclose(ss[-1], np.concatenate(
            [np.zeros(50)] + [c[b] for c in cont[1:]]), rtol=0, atol=1e-5)
    fixed = ref.continuous_graph_run(net, x, 400)
    again = ref.continuous_graph_run(net, x, 1, s=fixed)
    for a, c in zip(fixed, again):
        np.testing.assert_allclose(c, a, rtol=0, atol=1e-12)
