"""Netlist format 2 (issue 13): populations with shapes, roles and neuron models, projections of
kinds; each kind parses to the dataclass fields the engine and the references rely on, every
rule has an error naming file, field, rule and value, files round-trip exactly between TOML and
HDF5, and format 1 is untouched."""

import copy
import io
import math
import re
import tomllib
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import NETLISTS, mutated
from neuroemu import describe
from neuroemu.describe import neurons
from neuroemu.errors import NetlistError
from reference import dense_matrix


def net2(pops, projs, neuron=None, **network):
    raw = {"network": {"name": "g", "seed": 5, "format": 2, **network},
           "population": pops, "projection": projs}
    if neuron is not None:
        raw["neuron"] = neuron
    return raw


def load(raw, path="x.toml"):
    return describe.from_dict(copy.deepcopy(raw), path=path)


IN = {"name": "in", "size": 6, "role": "input"}
OUT = {"name": "out", "size": 4, "role": "output"}
MAP_IN = {"name": "img", "shape": [2, 7, 9], "role": "input"}


def sparse_raw(weights, pre=IN, post=OUT):
    return net2([pre, post], [{"pre": pre["name"], "post": post["name"], "kind": "sparse",
                               "weights": weights}])


# --------------------------------------------------------------------------- valid networks

def test_dense_chain_in_format_2_equals_format_1():
    v1 = describe.layered([6, 5, 4], "continuous", seed=5)
    raw = net2([IN, {"name": "hidden", "size": 5, "bias": 0.0}, OUT],
               [{"pre": "in", "post": "hidden"}, {"pre": "hidden", "post": "out"}])
    v2 = load(raw)
    assert v2.format == 2 and v1.format == 1
    assert v2.inputs == ("in",) and v2.outputs == ("out",)
    for p, q in zip(v1.projections, v2.projections):   # same default seeds, same draws
        assert np.array_equal(p.weights, q.weights)
        assert (q.kind, q.symmetric, q.params, q.indices, q.name) == ("dense", True, (), None, "")
    assert v2.projections[0].label == "in->hidden"


def test_populations_shapes_roles_and_order():
    raw = net2([{"name": "o2", "size": 3, "role": "output"}, {"name": "h", "shape": [4]},
                {"name": "i1", "shape": [1, 2, 3], "role": "input"},
                {"name": "i2", "size": 2, "role": "input"}, {"name": "o1", "size": 3,
                                                            "role": "output"}],
               [{"pre": "i1", "post": "h"}, {"pre": "i2", "post": "h"},
                {"pre": "h", "post": "o1"}, {"pre": "h", "post": "o2"},
                {"pre": "i1", "post": "o2", "symmetric": False}])
    net = load(raw)
    assert net.inputs == ("i1", "i2") and net.outputs == ("o2", "o1")
    i1, h = net.population("i1"), net.population("h")
    assert (i1.size, i1.shape, i1.dims) == (6, (1, 2, 3), (1, 2, 3))
    assert (h.size, h.shape, h.dims) == (4, (4,), (4,))
    assert net.population("o1").shape == () and net.population("o1").dims == (3,)
    assert [p.label for p in net.projections] == ["i1->h", "i2->h", "h->o1", "h->o2", "i1->o2"]
    assert net.projections[-1].symmetric is False
    assert net.projections[-1].weights.shape == (6, 3)     # dense over a flattened map


def test_conv2d_output_shape_rule_and_glorot_fans():
    # H_out = (7 + 2*1 - 3) // 2 + 1 = 4, W_out = (9 + 0 - 2) // 1 + 1 = 8
    raw = net2([MAP_IN, {"name": "c", "shape": [3, 4, 8], "role": "output"}],
               [{"pre": "img", "post": "c", "kind": "conv2d", "kernel_size": [3, 2],
                 "stride": [2, 1], "padding": [1, 0]}])
    pj = load(raw).projections[0]
    assert pj.kind == "conv2d" and pj.weights.shape == (3, 2, 3, 2)
    assert pj.params == (("kernel", (3, 2)), ("padding", (1, 0)), ("stride", (2, 1)))
    assert pj.param("stride") == (2, 1)
    bound = math.sqrt(6 / (2 * 3 * 2 + 3 * 3 * 2))          # fan_in = Ci kh kw, fan_out = Co kh kw
    assert 0.5 * bound < np.abs(pj.weights).max() <= bound
    assert not pj.weights.flags.writeable
    # scalars mean square kernels, stride 1 and no padding by default
    raw = net2([MAP_IN, {"name": "c", "shape": [1, 5, 7], "role": "output"}],
               [{"pre": "img", "post": "c", "kind": "conv2d", "kernel_size": 3,
                 "weights": np.arange(18.0).reshape(1, 2, 3, 3)}])
    pj = load(raw).projections[0]
    assert pj.params == (("kernel", (3, 3)), ("padding", (0, 0)), ("stride", (1, 1)))
    assert np.array_equal(pj.weights, np.arange(18.0).reshape(1, 2, 3, 3))


def test_avgpool2d_params_and_fixed_weight():
    raw = net2([MAP_IN, {"name": "p", "shape": [2, 3, 4], "role": "output"}],
               [{"pre": "img", "post": "p", "kind": "avgpool2d", "kernel_size": 2}])
    net = load(raw)
    pj = net.projections[0]
    assert pj.kind == "avgpool2d" and pj.weights.shape == (0,) and pj.weights_spec is None
    assert pj.params == (("kernel", (2, 2)), ("stride", (2, 2)))     # stride = kernel
    m = dense_matrix(net, pj)              # each pooled unit averages its window: 1 / (kh kw)
    assert set(np.unique(m)) == {0.0, 0.25} and np.allclose(m.sum(axis=0), 1.0)
    raw["population"][1]["shape"] = [2, 6, 4]
    raw["projection"][0] |= {"kernel_size": [2, 3], "stride": [1, 2]}
    pj = load(raw).projections[0]
    assert pj.params == (("kernel", (2, 3)), ("stride", (1, 2)))


def test_one_to_one_broadcast_list_and_default():
    pops = [IN, {"name": "o", "shape": [1, 2, 3], "role": "output"}]
    pj = load(net2(pops, [{"pre": "in", "post": "o", "kind": "one_to_one",
                           "weights": 0.5}])).projections[0]
    assert pj.weights.shape == (6,) and np.all(pj.weights == 0.5) and pj.weights_spec == 0.5
    pj = load(net2(pops, [{"pre": "in", "post": "o", "kind": "one_to_one"}])).projections[0]
    assert np.all(pj.weights == 1.0)
    w = [1, 2, 3, 4, 5, -6]
    pj = load(net2(pops, [{"pre": "in", "post": "o", "kind": "one_to_one",
                           "weights": w}])).projections[0]
    assert np.array_equal(pj.weights, w) and pj.weights.dtype == np.float64


def test_sparse_coo_is_sorted_canonically():
    pj = load(sparse_raw({"row": [5, 0, 2, 0], "col": [1, 3, 2, 0],
                          "data": [1.0, 2.0, 3.0, 4.0]})).projections[0]
    assert pj.kind == "sparse" and pj.indices.dtype == np.int64
    assert pj.indices.tolist() == [[0, 0, 2, 5], [0, 3, 2, 1]]
    assert pj.weights.tolist() == [4.0, 2.0, 3.0, 1.0]
    assert not pj.indices.flags.writeable and not pj.weights.flags.writeable


def test_sparse_csr_inline_npz_and_npy_members(tmp_path):
    csr = {"indptr": [0, 2, 2, 3, 3, 3, 4], "indices": [3, 1, 0, 2], "data": [1.0, 2, 3, 4]}
    pj = load(sparse_raw(csr)).projections[0]
    assert pj.indices.tolist() == [[0, 0, 2, 5], [1, 3, 0, 2]]
    assert pj.weights.tolist() == [2.0, 1.0, 3.0, 4.0]
    np.savez(tmp_path / "coo.npz", row=np.array([5, 0]), col=np.array([1, 3]),
             data=np.array([1.5, 2.5]))
    np.savez_compressed(tmp_path / "csr.npz", **{k: np.array(v) for k, v in csr.items()})
    a = load(sparse_raw({"file": "coo.npz"}), path=tmp_path / "n.toml").projections[0]
    assert a.indices.tolist() == [[0, 5], [3, 1]] and a.weights.tolist() == [2.5, 1.5]
    b = load(sparse_raw({"file": "csr.npz"}), path=tmp_path / "n.toml").projections[0]
    assert np.array_equal(b.indices, pj.indices) and np.array_equal(b.weights, pj.weights)
    np.save(tmp_path / "row.npy", np.array([5, 0], dtype=np.int32))
    c = load(sparse_raw({"row": {"file": "row.npy"}, "col": [1, 3], "data": [1.5, 2.5]}),
             path=tmp_path / "n.toml").projections[0]
    assert np.array_equal(c.indices, a.indices) and np.array_equal(c.weights, a.weights)


def test_sparse_init_density_seed_and_bound():
    big_in, big_out = {"name": "in", "size": 300, "role": "input"}, \
        {"name": "out", "size": 200, "role": "output"}
    raw = sparse_raw({"init": "glorot_uniform", "density": 0.1}, big_in, big_out)
    a, b = load(raw).projections[0], load(raw).projections[0]
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.weights, b.weights)
    n = a.weights.size
    assert abs(n - 6000) < 5 * math.sqrt(6000 * 0.9)           # binomial(60000, 0.1)
    flat = a.indices[0] * 200 + a.indices[1]
    assert np.all(np.diff(flat) > 0)                            # sorted, no repeats
    bound = math.sqrt(6 / 500)
    assert np.abs(a.weights).max() <= bound
    raw["projection"][0]["weights"] |= {"seed": 9}
    assert not np.array_equal(load(raw).projections[0].indices, a.indices)
    huge = {"name": "in", "size": 10**7, "role": "input"}, \
        {"name": "out", "size": 10**7, "role": "output"}
    for density in (1e-300, 1e-13):       # gaps beyond int64: clipped, never wrapped around
        pj = load(sparse_raw({"init": "glorot_uniform", "density": density}, *huge)).projections[0]
        assert pj.indices.size == 0 or (pj.indices.min() >= 0 and pj.indices.max() < 10**7)
    full = load(sparse_raw({"init": "zeros", "density": 1.0})).projections[0]
    assert full.weights.tolist() == [0.0] * 24 and full.indices.shape == (2, 24)


def test_neuron_models_and_defaults():
    raw = net2([{**IN, "neuron": {"model": "paper"}},
                {"name": "a", "size": 3},
                {"name": "b", "size": 3, "neuron": {"threshold": 2.0, "reset": "zero"}},
                {"name": "c", "size": 3, "neuron": {"model": "if", "v0": -0.5}},
                {"name": "d", "size": 3, "neuron": {"model": "paper", "encoder": "stochastic"}},
                {**OUT, "neuron": {"model": "paper"}}],
               [{"pre": "in", "post": "a"}, {"pre": "a", "post": "b"}, {"pre": "b", "post": "c"},
                {"pre": "c", "post": "d"}, {"pre": "d", "post": "out"}],
               neuron={"model": "lif", "leak": 0.9})
    net = load(raw)
    a, b, c, d = (net.population(n).neuron for n in "abcd")
    assert (a.model, a.threshold, a.leak, a.reset, a.v0) == ("lif", 1.0, 0.9, "subtract", 0.0)
    assert (b.model, b.threshold, b.leak, b.reset) == ("lif", 2.0, 0.9, "zero")   # merged
    assert (c.model, c.threshold, c.leak, c.v0) == ("if", 1.0, 1.0, -0.5)   # not merged
    assert (c.predictive, c.decoder) == (False, "identity")
    assert (d.model, d.encoder, d.eps.get("eps0")) == ("paper", "stochastic", 0.5)
    assert c.as_dict() == {"model": "if", "threshold": 1.0, "reset": "subtract", "v0": -0.5}
    assert a.as_dict()["leak"] == 0.9 and "model" not in d.as_dict()


def test_recurrent_lateral_and_named_projections():
    raw = net2([IN, {"name": "h", "size": 5}, OUT],
               [{"pre": "in", "post": "h"}, {"pre": "h", "post": "h", "symmetric": False},
                {"pre": "h", "post": "h", "name": "lateral2", "kind": "one_to_one"},
                {"pre": "h", "post": "out"}, {"pre": "in", "post": "out", "name": "skip"}])
    net = load(raw)
    assert [p.label for p in net.projections] == ["in->h", "h->h", "lateral2", "h->out", "skip"]
    assert net.projections[4].name == "skip" and net.projections[1].name == ""


# --------------------------------------------------------------------------- errors

def edit(raw, path, value):
    raw = copy.deepcopy(raw)
    *head, last = path
    node = raw
    for k in head:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return raw


CONV = net2([MAP_IN, {"name": "c", "shape": [3, 5, 7], "role": "output"}],
            [{"pre": "img", "post": "c", "kind": "conv2d", "kernel_size": 3}])
POOL = net2([MAP_IN, {"name": "p", "shape": [2, 3, 4], "role": "output"}],
            [{"pre": "img", "post": "p", "kind": "avgpool2d", "kernel_size": 2}])
DENSE = net2([IN, {"name": "h", "size": 5}, OUT],
             [{"pre": "in", "post": "h"}, {"pre": "h", "post": "out"}])
PRED = edit(edit(DENSE, ("neuron",), {"encoder": "sigma_delta", "predictive": True,
                                      "decoder": "predictive"}),
            ("projection", 1, "symmetric"), False)   # out (the receiver) never sends
O2O = net2([IN, {"name": "o", "size": 6, "role": "output"}],
           [{"pre": "in", "post": "o", "kind": "one_to_one"}])
COO = sparse_raw({"row": [0, 1], "col": [2, 3], "data": [1.0, 2.0]})


@pytest.mark.parametrize("base,path,value,msg", [
    # the format itself
    (DENSE, ("network", "format"), 3, r"x.toml: network.format: must be 1 or 2 \(got 3\)"),
    # populations
    (DENSE, ("population", 1, "shape"), [1, 28], r"x.toml: population\[1\].shape: give size or "
                                                 r"shape, not both \(got \[1, 28\]\)"),
    (DENSE, ("population", 1, "size"), KeyError, r"population\[1\].size: is required \(size = n, "
                                                 r"or shape"),
    (edit(DENSE, ("population", 1, "size"), KeyError), ("population", 1, "shape"), [1, 28],
     r"population\[1\].shape: must be \[n\] or \[C, H, W\] of positive integers \(got \[1, 28\]"),
    (edit(DENSE, ("population", 1, "size"), KeyError), ("population", 1, "shape"), [1, 0, 3],
     r"population\[1\].shape: must be \[n\] .* \(got \[1, 0, 3\]\)"),
    (edit(DENSE, ("population", 1, "size"), KeyError), ("population", 1, "shape"),
     [100, 1000, 1000], r"population\[1\].shape: must hold at most 10000000 neurons \(got "
                        r"\[100, 1000, 1000\]\)"),
    (DENSE, ("population", 2, "role"), "hidden", r"x.toml: population: needs at least one "
                                                 r"population with role = \"output\" \(got roles "
                                                 r"input, hidden, hidden\)"),
    (DENSE, ("population", 1, "role"), "middle", r"population\[1\].role: must be one of input, "
                                                 r"hidden, output \(got 'middle'\)"),
    (DENSE, ("population", 0, "neuron"), {"model": "lif", "leak": 0.5},
     r"population\[0\].neuron.model: an input population must use model 'paper' .*\(got 'lif'\)"),
    # neuron models
    (DENSE, ("neuron",), {"model": "lif"}, r"x.toml: neuron.leak: is required for model lif"),
    (DENSE, ("neuron",), {"model": "lif", "leak": 1.5}, r"neuron.leak: must lie in \(0, 1\] "
                                                        r"\(got 1.5\)"),
    (DENSE, ("neuron",), {"model": "if", "threshold": 0}, r"neuron.threshold: must lie in "
                                                          r"\(0, 1e\+20\] \(got 0\)"),
    (DENSE, ("neuron",), {"model": "if", "v0": float("inf")}, r"neuron.v0: must be finite "
                                                              r"\(got inf\)"),
    (DENSE, ("neuron",), {"model": "if", "v0": 1e21}, r"neuron.v0: must lie in \[-1e\+20, "
                                                      r"1e\+20\] \(got 1e\+21\)"),
    (DENSE, ("neuron",), {"model": "if", "reset": "hard"}, r"neuron.reset: must be one of "
                                                           r"subtract, zero \(got 'hard'\)"),
    (DENSE, ("neuron",), {"model": "if", "encoder": "none"}, r"neuron.encoder: is not a key of "
                                                             r"neuron model 'if' .*\(got 'none'\)"),
    (DENSE, ("neuron",), {"threshold": 2.0}, r"neuron.threshold: is not a key of neuron model "
                                             r"'paper' .*\(got 2.0\)"),
    (DENSE, ("neuron",), {"model": "izhikevich"}, r"neuron.model: must be one of paper, if, lif "
                                                  r"\(got 'izhikevich'\)"),
    (DENSE, ("population", 1, "neuron"), {"model": "if", "leak": 0.5},
     r"population\[1\].neuron.leak: is not a key of neuron model 'if' \(its keys: model, "
     r"threshold, reset, v0\) \(got 0.5\)"),
    (PRED, ("population", 2, "neuron"),
     {"model": "if"}, r"population\[2\].neuron.model: decodes with identity, so its sender 'h' "
                      r"must not be predictive \(got 'if'\)"),
    (PRED, ("population", 2, "neuron"),
     {"decoder": "identity"}, r"population\[2\].neuron.decoder: must be 'predictive' exactly when "
                              r"its sender 'h' has predictive = true .*\(got 'identity'\)"),
    # projections, all kinds
    (DENSE, ("projection", 0, "kind"), "conv3d", r"projection\[0\].kind: must be one of dense, "
                                                 r"sparse, conv2d, avgpool2d, one_to_one "
                                                 r"\(got 'conv3d'\)"),
    (DENSE, ("projection", 0, "post"), "in", r"projection\[0\].post: must not be an input "
                                             r"population .*\(got 'in'\)"),
    (DENSE, ("projection", 0, "symmetric"), "yes", r"projection\[0\].symmetric: must be true or "
                                                   r"false \(got 'yes'\)"),
    (DENSE, ("projection", 0, "name"), "a->b", r"projection\[0\].name: must be a name of letters"
                                               r".*\(got 'a->b'\)"),
    (DENSE, ("projection", 1), {"pre": "in", "post": "h"},
     r"projection\[1\].name: must be unique \(projection\[0\] joins the same pair: give each a "
     r"name\) \(got 'in->h'\)"),
    (DENSE, ("projection", 0, "kernel_size"), 3, r"projection\[0\].kernel_size: unknown key for "
                                                 r"kind dense \(allowed: .*\) \(got 3\)"),
    (DENSE, ("projection", 0, "weights"), [[1.0] * 5] * 5,
     r"projection\[0\].weights: must have shape \(6, 5\) \(got shape \(5, 5\)\)"),
    # conv2d
    (CONV, ("projection", 0, "kernel_size"), 0, r"x.toml: projection\[0\].kernel_size: must be "
                                                r"a positive integer or \[kh, kw\] \(got 0\)"),
    (CONV, ("projection", 0, "kernel_size"), [3, 2, 1], r"projection\[0\].kernel_size: must be "
                                                        r"a positive integer or \[kh, kw\] "
                                                        r"\(got \[3, 2, 1\]\)"),
    (CONV, ("projection", 0, "kernel_size"), KeyError, r"projection\[0\].kernel_size: is "
                                                       r"required for conv2d"),
    (CONV, ("projection", 0, "stride"), [1, 0], r"projection\[0\].stride: must be a positive "
                                                r"integer or \[sy, sx\] \(got \[1, 0\]\)"),
    (CONV, ("projection", 0, "padding"), -1, r"projection\[0\].padding: must be a non-negative "
                                             r"integer or \[py, px\] \(got -1\)"),
    (CONV, ("projection", 0, "kernel_size"), 10**8, r"kernel_size: must be a positive integer or "
                                                    r"\[kh, kw\], each at most 10000000"),
    (CONV, ("projection", 0, "kernel_size"), 8, r"projection\[0\].kernel_size: must fit in the "
                                                r"padded input \(7 x 9 .*\) \(got \[8, 8\]\)"),
    (CONV, ("projection", 0, "stride"), 2, r"projection\[0\].post: 'c' must have shape \[3, 3, 4\]"
                                           r" \(the output of 'img' \[2, 7, 9\] .*\) \(got shape "
                                           r"\[3, 5, 7\]\)"),
    (CONV, ("population", 1, "shape"), [105], r"projection\[0\].post: conv2d joins maps: 'c' "
                                              r"needs shape = \[C, H, W\] \(got shape \[105\]"),
    (CONV, ("projection", 0, "weights"), np.zeros((3, 2, 3, 2)),
     r"projection\[0\].weights: must have shape \(3, 2, 3, 3\) \(got shape \(3, 2, 3, 2\)\)"),
    (CONV, ("projection", 0, "weights"), {"init": "glorot_uniform", "gain": 1e30},
     r"projection\[0\].weights.gain: makes weights beyond"),
    # avgpool2d
    (POOL, ("population", 1, "shape"), [3, 3, 4], r"projection\[0\].post: 'p' must have shape "
                                                  r"\[2, 3, 4\] .* \(got shape \[3, 3, 4\]\)"),
    (POOL, ("projection", 0, "weights"), 0.25, r"projection\[0\].weights: avgpool2d has no "
                                               r"weights key .*\(got 0.25\)"),
    (POOL, ("projection", 0, "padding"), 1, r"projection\[0\].padding: unknown key for kind "
                                            r"avgpool2d .*\(got 1\)"),
    (POOL, ("projection", 0, "kernel_size"), [8, 2], r"projection\[0\].kernel_size: must fit in "
                                                     r"the input \(7 x 9 .*\(got \[8, 2\]\)"),
    # one_to_one
    (O2O, ("population", 1, "size"), 5, r"projection\[0\].post: one_to_one joins populations of "
                                        r"equal size \('in' has 6 neurons\) \(got 'o' of size 5\)"),
    (O2O, ("projection", 0, "weights"), [1.0, 2.0], r"projection\[0\].weights: must have shape "
                                                    r"\(6,\) \(got shape \(2,\)\)"),
    (O2O, ("projection", 0, "weights"), {"init": "zeros"}, r"projection\[0\].weights: one_to_one "
                                                           r"weights are a number"),
    (O2O, ("projection", 0, "weights"), 1e25, r"projection\[0\].weights: must lie in "
                                              r"\[-1e\+20, 1e\+20\] \(got 1e\+25\)"),
    # sparse
    (COO, ("projection", 0, "weights"), KeyError, r"projection\[0\].weights: is required for "
                                                  r"kind sparse"),
    (COO, ("projection", 0, "weights"), [[1.0]], r"projection\[0\].weights: must be "
                                                 r"\{ file = .*\(got \[\[1.0\]\]\)"),
    (COO, ("projection", 0, "weights"), {"row": [0, 0], "col": [2, 2], "data": [1.0, 2.0]},
     r"projection\[0\].weights: must not "
                                                       r"repeat a synapse \(row, col\) \(got "
                                                       r"\(0, 2\) twice\)"),
    (COO, ("projection", 0, "weights", "row"), [0, 6], r"projection\[0\].weights.row\[1\]: must be "
                                                       r"an index in \[0, 6\) \('in' has 6 "
                                                       r"neurons\) \(got 6\)"),
    (COO, ("projection", 0, "weights", "col"), [-1, 3], r"weights.col\[0\]: must be an index in "
                                                        r"\[0, 4\) .*\(got -1\)"),
    (COO, ("projection", 0, "weights", "col"), [2.0, 3.0], r"weights.col: must be a list of "
                                                           r"integer indices .*\(got \[2.0, 3.0\]"),
    (COO, ("projection", 0, "weights", "data"), [1.0], r"projection\[0\].weights: row, col and "
                                                       r"data must have equal lengths \(got 2, "
                                                       r"2, 1\)"),
    (COO, ("projection", 0, "weights", "data"), [1.0, float("nan")],
     r"projection\[0\].weights.data\[1\]: must be finite \(got nan\)"),
    (COO, ("projection", 0, "weights"), {"row": [0], "data": [1.0]},
     r"weights: must hold row, col and data \(COO\) or indptr, indices and data \(CSR\) \(got "
     r"data, row\)"),
    (COO, ("projection", 0, "weights"), {"indptr": [0, 1, 1, 1, 1, 1], "indices": [0],
                                         "data": [1.0]},
     r"weights.indptr: must have pre.size \+ 1 = 7 entries \(got 6 entries\)"),
    (COO, ("projection", 0, "weights"), {"indptr": [0, 2, 1, 1, 1, 1, 1], "indices": [0],
                                         "data": [1.0]},
     r"weights.indptr: must rise from 0 to len\(indices\) = 1 \(got \[0, 2, 1, 1, 1, 1, 1\]\)"),
    (COO, ("projection", 0, "weights"), {"init": "glorot_uniform"},
     r"weights.density: is required"),
    (COO, ("projection", 0, "weights"), {"init": "glorot_uniform", "density": 0.0},
     r"weights.density: must lie in \(0, 1\] \(got 0.0\)"),
    (COO, ("projection", 0, "weights"), {"init": "he", "density": 0.5},
     r"weights.init: must be one of glorot_uniform, zeros \(got 'he'\)"),
    (edit(edit(COO, ("population", 0, "size"), 10**7), ("population", 1, "size"), 10**7),
     ("projection", 0, "weights"), {"init": "glorot_uniform", "density": 0.5},
     r"weights.density: makes about 5e\+13 synapses of 10000000 x 10000000, beyond the limit of "
     r"200000000 per projection \(got 0.5\)"),
])
def test_errors_name_file_field_rule_and_value(base, path, value, msg):
    with pytest.raises(NetlistError, match=msg):
        describe.from_dict(edit(base, path, value), path="x.toml")


@pytest.mark.parametrize("path,value,msg", [
    (("population", 1, "shape"), [1, 28, 28], r"x.toml: population\[1\].shape: needs \[network\] "
                                              r"format = 2 \(got \[1, 28, 28\]\)"),
    (("neuron", "model"), "lif", r"x.toml: neuron.model: needs \[network\] format = 2 "
                                 r"\(got 'lif'\)"),
    (("population", 1, "neuron"), {"threshold": 1.0}, r"population\[1\].neuron.threshold: needs "
                                                      r"\[network\] format = 2 \(got 1.0\)"),
    (("projection", 0, "kind"), "sparse", r"projection\[0\].kind: needs \[network\] format = 2 "
                                          r"\(got 'sparse'\)"),
    (("projection", 0, "symmetric"), False, r"projection\[0\].symmetric: needs \[network\] "
                                            r"format = 2 \(got False\)"),
    (("projection", 0, "colour"), "red", r"projection\[0\].colour: unknown key \(allowed: post, "
                                         r"pre, weights\) \(got 'red'\)"),
    (("network", "colour"), "red", r"network.colour: unknown key \(allowed: description, name, "
                                   r"seed\) \(got 'red'\)"),
])
def test_format_1_files_refuse_format_2_keys(path, value, msg):
    raw = {"network": {"name": "v1", "seed": 1}, "neuron": {},
           "population": [{"name": "in", "size": 3}, {"name": "h", "size": 2},
                          {"name": "out", "size": 2}],
           "projection": [{"pre": "in", "post": "h"}, {"pre": "h", "post": "out"}]}
    with pytest.raises(NetlistError, match=msg):
        describe.from_dict(edit(raw, path, value), path="x.toml")
    raw["network"]["format"] = 1                      # saying format = 1 changes nothing
    assert describe.from_dict(copy.deepcopy(raw)).format == 1


def _npz(path, **members):
    with zipfile.ZipFile(path, "w") as z:
        for key, data in members.items():
            z.writestr(f"{key}.npy", data)


def _npy_bytes(arr, **kw):
    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def test_npz_files_are_read_header_first(tmp_path):
    raw = sparse_raw({"file": "w.npz"})
    p = tmp_path / "n.toml"

    def fails(msg):
        with pytest.raises(NetlistError, match=msg):
            describe.from_dict(copy.deepcopy(raw), path=p)

    fails(r"projection\[0\].weights.file: cannot use .npz file: .*w.npz: sparse weights file not "
          r"found \(got 'w.npz'\)")
    (tmp_path / "w.npz").write_bytes(b"not a zip at all")
    fails(r"cannot use .npz file: .*not a readable .npz file")
    _npz(tmp_path / "w.npz", row=_npy_bytes(np.array([0])), col=_npy_bytes(np.array([0])),
         data=_npy_bytes(np.array([object()], dtype=object), allow_pickle=True))
    fails(r"w.npz:data: .npy must hold plain numbers \(got dtype object")
    huge = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    huge["shape"] = (10**10,)      # the header of a 10^10-element array, no data behind it
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, huge)
    _npz(tmp_path / "w.npz", row=_npy_bytes(np.array([0])), col=_npy_bytes(np.array([0])),
         data=buf.getvalue())
    fails(r"w.npz:data: sparse weights declares shape \(10000000000,\) .* beyond the limit of "
          r"200000000 elements")
    _npz(tmp_path / "w.npz", row=_npy_bytes(np.array([0])), col=_npy_bytes(np.array([0])),
         data=_npy_bytes(np.zeros(5))[:-8])
    fails(r"w.npz:data: truncated .npz member: its header promises 40 bytes of data, it holds 32")
    _npz(tmp_path / "w.npz", row=_npy_bytes(np.zeros((1, 1), np.int64)),
         col=_npy_bytes(np.array([0])), data=_npy_bytes(np.zeros(1)))
    fails(r"w.npz:row: sparse weights must have 1 dimension\(s\) \(got shape \(1, 1\)\)")
    np.savez(tmp_path / "w.npz", row=np.array([0.0]), col=np.array([0]), data=np.zeros(1))
    fails(r"weights.file \(.*w.npz\).row: must be a list of integer indices")
    np.savez(tmp_path / "w.npz", a=np.zeros(1), b=np.zeros(1), c=np.zeros(1), d=np.zeros(1))
    fails(r"w.npz: .npz must hold at most 3 arrays \(got 4 members\)")
    np.savez(tmp_path / "w.npz", row=np.array([0]), col=np.array([1]), data=np.array([7.0]))
    pj = describe.from_dict(copy.deepcopy(raw), path=p).projections[0]
    assert pj.indices.tolist() == [[0], [1]] and pj.weights.tolist() == [7.0]


def test_hdf5_sparse_members_are_checked_before_reading(tmp_path):
    net = load(COO)
    describe.save(net, tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5", "a") as f:
        del f["projection/0/weights/row"]
        f["projection/0/weights"].create_dataset("row", data=np.zeros((2, 1)))
    with pytest.raises(NetlistError, match=r"n.h5: projection\[0\].weights.row: must be a 1-D "
                                           r"dataset of integers .*\(got float64 shape \(2, 1\), "
                                           r"not read\)"):
        describe.load(tmp_path / "n.h5")


# --------------------------------------------------------------------------- round trips

def every_kind():
    """A network with every projection kind and every neuron model."""
    pops = [{"name": "img", "shape": [1, 6, 6], "role": "input", "neuron": {"model": "paper"}},
            {"name": "aux", "size": 5, "role": "input", "neuron": {"model": "paper",
                                                                  "encoder": "stochastic"}},
            {"name": "conv", "shape": [3, 6, 6], "bias": list(np.linspace(-1, 1, 108))},
            {"name": "pool", "shape": [3, 3, 3], "neuron": {"model": "if", "threshold": 0.75,
                                                           "reset": "zero", "v0": 0.125}},
            {"name": "hid", "size": 27, "neuron": {"model": "paper", "encoder": "sigma_delta",
                                                    "eps": {"kind": "osa", "nu_bar": 0.05}}},
            {"name": "out", "size": 4, "role": "output", "bias": [0.5, -0.5, 0.0, -0.0],
             "neuron": {"model": "paper"}}]
    projs = [{"pre": "img", "post": "conv", "kind": "conv2d", "kernel_size": [3, 3],
              "padding": 1},
             {"pre": "conv", "post": "pool", "kind": "avgpool2d", "kernel_size": 2},
             {"pre": "pool", "post": "hid", "kind": "one_to_one",
              "weights": list(np.arange(27) / 7)},
             {"pre": "hid", "post": "hid", "name": "recurrent", "kind": "sparse",
              "symmetric": False, "weights": {"init": "glorot_uniform", "density": 0.3}},
             {"pre": "hid", "post": "out", "kind": "sparse",
              "weights": {"row": [26, 0, 3], "col": [0, 3, 1], "data": [1e-300, -2.5, 1 / 3]}},
             {"pre": "aux", "post": "out"},
             {"pre": "img", "post": "out", "name": "skip", "symmetric": False,
              "weights": {"init": "zeros"}},
             {"pre": "aux", "post": "out", "name": "second"}]
    raw = net2(pops, projs, neuron={"model": "lif", "leak": 0.875, "threshold": 1.5},
               description="every kind")
    raw["hardware"] = {"clock": {"hz": 1e6}}
    return raw


def test_every_kind_round_trips_exactly_between_toml_and_hdf5(tmp_path):
    net = load(every_kind(), path=tmp_path / "src.toml")
    models = {p.neuron.model for p in net.populations}
    assert models == {"paper", "if", "lif"}
    assert {p.kind for p in net.projections} == set(neurons.PROJECTION_KINDS)
    for inline in (describe.INLINE_MAX, 4):
        t = describe.save_toml(net, tmp_path / f"a{inline}.toml", inline_max=inline)
        a = describe.load(t)
        h = describe.save(a, tmp_path / f"a{inline}.h5")
        b = describe.load(h)
        t2 = describe.save(b, tmp_path / f"b{inline}.toml")
        c = describe.load(t2)
        for other in (a, b, c):
            assert describe.same(net, other)
            assert other.format == 2
            for p, q in zip(net.populations, other.populations):
                assert (p.shape, p.neuron) == (q.shape, q.neuron)
                assert np.array_equal(p.bias, q.bias) and \
                    np.array_equal(np.signbit(p.bias), np.signbit(q.bias))
            for p, q in zip(net.projections, other.projections):
                assert (p.label, p.kind, p.symmetric, p.params) == \
                    (q.label, q.kind, q.symmetric, q.params)
                assert p.weights.dtype == q.weights.dtype and np.array_equal(p.weights, q.weights)
                if p.indices is not None:
                    assert q.indices.dtype == np.int64 and np.array_equal(p.indices, q.indices)
    assert any(f.name.endswith(".npy") and ".recurrent.weights.row." in f.name
               for f in tmp_path.iterdir())
    with h5py.File(tmp_path / "a4.h5") as f:
        assert list(f.attrs["format_version"]) == [1, 1] and f.attrs["network_format"] == 2
        assert f["projection/3/weights/row"].dtype == np.int64


def test_replace_takes_each_kinds_native_shape(tmp_path):
    net = load(every_kind())
    conv = np.full((3, 1, 3, 3), 0.5)
    rec = net.projections[3]
    new = describe.replace(net, weights={0: conv, "recurrent": np.ones(rec.weights.size),
                                         ("pool", "hid"): np.zeros(27)})
    assert np.array_equal(new.projections[0].weights, conv)
    assert np.array_equal(new.projections[3].indices, rec.indices)
    assert np.all(new.projections[3].weights == 1.0)
    assert np.all(new.projections[2].weights == 0.0)
    # a sparse projection may also get a new structure; the list form keeps None entries
    ws = [None] * len(net.projections)
    ws[4] = {"row": [1], "col": [2], "data": [4.0]}
    assert describe.replace(net, weights=ws).projections[4].indices.tolist() == [[1], [2]]
    with pytest.raises(NetlistError, match=r"weights: projection 'conv->pool' is avgpool2d: its "
                                           r"weights are fixed \(give None\)"):
        describe.replace(net, weights={1: np.ones(4)})
    with pytest.raises(NetlistError, match=r"weights: no entry \('aux', 'out'\) \(have: "):
        describe.replace(net, weights={("aux", "out"): np.ones((5, 4))})   # two join that pair
    with pytest.raises(NetlistError, match=r"projection\[3\].weights: row, col and data must have "
                                           r"equal lengths"):
        describe.replace(net, weights={"recurrent": np.ones(rec.weights.size + 1)})
    path = describe.save(net, tmp_path / "r.h5", weights={"second": np.ones((5, 4))})
    assert np.all(describe.load(path).projections[7].weights == 1.0)


# --------------------------------------------------------------------------- format 1 unchanged

@pytest.mark.parametrize("name", ["tiny.toml", "mnist-binary-trained.h5", "fig2.toml"])
def test_format_1_netlists_load_and_save_as_before(name, tmp_path):
    net = describe.load(NETLISTS / name)
    assert net.format == 1
    assert all(p.shape == () and p.dims == (p.size,) and p.neuron.model == "paper"
               for p in net.populations)
    assert all((p.kind, p.symmetric, p.params, p.indices, p.name) ==
               ("dense", True, (), None, "") for p in net.projections)
    assert net.inputs == (net.populations[0].name,) and net.outputs == (net.populations[-1].name,)
    text = describe.save(net, tmp_path / "n.toml").read_text()
    for key in ("format", "shape", "kind", "symmetric", "kernel_size"):
        assert not re.search(rf"^{key} =", text, re.M), key
    assert "model" not in text and len(re.findall(r"^name =", text, re.M)) == \
        1 + len(net.populations)
    describe.save(net, tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5") as f:
        assert list(f.attrs["format_version"]) == [1, 0] and "network_format" not in f.attrs
        assert "kind" not in f["projection/0"].attrs
        assert "model" not in f["population/1/neuron"].attrs
    assert describe.same(net, describe.load(tmp_path / "n.h5"))
    assert describe.same(net, describe.load(tmp_path / "n.toml"))


def test_the_documented_examples_validate():
    """docs/netlist-format.md: the format-2 example and each sparse form in it."""
    from conftest import ROOT
    doc = (ROOT / "docs" / "netlist-format.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc[doc.index("## Format 2"):], re.S)
    net = describe.loads(blocks[0], path="example.toml")
    assert net.format == 2 and net.inputs == ("image", "cue") and net.outputs == ("out",)
    assert {p.kind for p in net.projections} == set(neurons.PROJECTION_KINDS)
    assert {p.neuron.model for p in net.populations} == {"paper", "if", "lif"}
    forms = [line.split("#")[0] for line in blocks[1].splitlines() if "file" not in line]
    assert len(forms) == 3
    got = []
    for form in forms:
        raw = sparse_raw(None)
        raw["projection"][0]["weights"] = tomllib.loads(form)["weights"]
        raw["population"][0]["size"], raw["population"][1]["size"] = 4, 5
        got.append(load(raw).projections[0])
    assert got[0].indices.tolist() == got[1].indices.tolist() == [[0, 0, 3], [1, 4, 2]]
    assert got[0].weights.tolist() == got[1].weights.tolist() == [0.5, -1.0, 0.25]


# --------------------------------------------------------------------------- fuzzing

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.floats(),
                     st.sampled_from([10**20, -(10**20), 2**63, 2**64, 10**7, 0.5, 1.5, "",
                                      "input", "output", "paper", "if", "lif", "zero", "sparse",
                                      "conv2d", "avgpool2d", "one_to_one", "dense", "hid"]),
                     st.text(max_size=6))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(
        ["kind", "model", "row", "col", "data", "indptr", "indices", "init", "density", "file",
         "leak", "threshold"]) | st.text(max_size=4), inner, max_size=4)), max_leaves=10)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


_EVERY = every_kind()
_PATHS = [p for p in _paths(_EVERY) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), st.one_of(_values, st.just(KeyError))),
                min_size=1, max_size=3))
def test_fuzz_mutated_graphs_fail_cleanly(mutations):
    """Any malformed format-2 dict gives a NetlistError naming the file, or a valid Netlist
    whose arrays are finite and whose sparse indices are in range."""
    raw = mutated(_EVERY, mutations)
    try:
        net = describe.from_dict(raw, path="fuzz.toml")
    except NetlistError as exc:
        assert str(exc).startswith("fuzz.toml")
    else:
        for p in net.projections:
            assert np.isfinite(p.weights).all()
            if p.indices is not None:
                n_pre, n_post = net.population(p.pre).size, net.population(p.post).size
                assert p.indices.shape == (2, p.weights.size)
                assert np.all((p.indices >= 0) & (p.indices < [[n_pre], [n_post]]))


def test_the_largest_network_seed_draws_default_weight_seeds_in_range():
    """Default weight seeds are (network.seed * 1000 + k) mod 2^63, so every valid network
    seed works, and small seeds keep their weights."""
    raw = {"network": {"name": "s", "format": 2, "seed": 2**63 - 1},
           "population": [{"name": "a", "size": 3, "role": "input"},
                          {"name": "b", "size": 2, "role": "output"}],
           "projection": [{"pre": "a", "post": "b", "weights": {"init": "glorot_uniform"}}]}
    net = describe.from_dict(raw)
    same = dict(raw, projection=[{"pre": "a", "post": "b", "weights": {
        "init": "glorot_uniform", "seed": ((2**63 - 1) * 1000) % 2**63}}])
    assert np.array_equal(net.projections[0].weights,
                          describe.from_dict(same).projections[0].weights)
    small = dict(raw, network={"name": "s", "format": 2, "seed": 7})
    explicit = dict(small, projection=[{"pre": "a", "post": "b", "weights": {
        "init": "glorot_uniform", "seed": 7000}}])
    assert np.array_equal(describe.from_dict(small).projections[0].weights,
                          describe.from_dict(explicit).projections[0].weights)
