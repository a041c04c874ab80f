"""NIR export (issue 14): every netlist goes neuroemu -> NIR file -> neuroemu exactly (same
netlist, same spikes), through NIR's own writer and reader; the graph a plain NIR reader sees has
the documented standard nodes, edges and weights (checked with nir's classes) and passes nir's
type check; the neuroemu extension refuses damage with one line naming the file and node."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the test extra installs nir")

from neuroemu import describe, engines  # noqa: E402
from neuroemu.errors import NetlistError, OptionError, OutputError  # noqa: E402
from neuroemu.interop import nirmeta  # noqa: E402
from neuroemu.interop.nir_export import to_nir, write_nir  # noqa: E402
from test_netlist_v2 import every_kind  # noqa: E402

DT = 1e-3


def through_file(net, tmp_path, dt=DT, type_check=True):
    """net -> to_nir -> nir.write -> nir.read -> (graph, netlist_dict -> from_dict)."""
    path = tmp_path / f"{net.name}.nir"
    nir.write(path, to_nir(net, dt))
    graph = nir.read(path, type_check=type_check)
    assert nirmeta.is_neuroemu(graph)
    return graph, describe.from_dict(nirmeta.netlist_dict(graph, path), path=path)


def assert_exact(a, b):
    assert describe.same(a, b)
    assert (a.format, a.hardware) == (b.format, b.hardware)
    for p, q in zip(a.populations, b.populations):
        assert (p.shape, p.role, p.neuron) == (q.shape, q.role, q.neuron)
        assert p.bias.dtype == q.bias.dtype and np.array_equal(np.signbit(p.bias),
                                                               np.signbit(q.bias))
    for p, q in zip(a.projections, b.projections):
        assert (p.label, p.kind, p.symmetric, p.params) == (q.label, q.kind, q.symmetric,
                                                            q.params)
        assert p.weights.dtype == q.weights.dtype and np.array_equal(p.weights, q.weights)
        assert np.array_equal(np.signbit(p.weights), np.signbit(q.weights))
        if p.indices is not None:
            assert q.indices.dtype == np.int64 and np.array_equal(p.indices, q.indices)
    assert describe.to_dict(a).keys() == describe.to_dict(b).keys()


def assert_same_spikes(a, b, steps=6):
    n_in = sum(p.size for p in a.populations if p.role == "input")
    x = np.random.default_rng(3).uniform(size=(2, n_in))
    runs = []
    for net in (a, b):
        sess = engines.session(net, x, engine="lockstep", seed=9)
        res = sess.run(steps, record_spikes=True, record_states=True)
        runs.append(res)
    assert runs[0].spikes.sum() > 0 and np.array_equal(runs[0].spikes, runs[1].spikes)
    assert np.array_equal(runs[0].states, runs[1].states)


# ------------------------------------------------------------------- exact round trips

@pytest.mark.parametrize("name", sorted(describe.shipped()))
def test_every_shipped_netlist_round_trips_exactly(name, tmp_path):
    net = describe.load(name)
    graph, back = through_file(net, tmp_path)
    assert_exact(net, back)
    assert back.format == net.format
    if name in ("tiny", "conv-ep", "feedback-lif", "skip-binary", "mnist-binary-trained"):
        assert_same_spikes(net, back)


def test_every_kind_and_model_round_trips_exactly(tmp_path):
    net = describe.from_dict(every_kind())
    graph, back = through_file(net, tmp_path)
    assert_exact(net, back)
    assert back.hardware == {"clock": {"hz": 1e6}}
    assert back.projections[4].weights[-1] == 1e-300    # tiny sparse values kept
    assert_same_spikes(net, back)


def test_round_trip_does_not_depend_on_dt(tmp_path):
    net = describe.from_dict(every_kind())
    for dt in (1e-4, 0.25, 3):
        _, back = through_file(net, tmp_path, dt=dt)
        assert_exact(net, back)


def _edge_cases():
    """Names that collide, zero-valued sparse synapses, an empty sparse projection, lif with
    leak 1, IF biases on dense and conv projections, a vector given as shape [n]."""
    pops = [{"name": "img", "shape": [2, 4, 4], "role": "input"},
            {"name": "vec", "shape": [3], "role": "input"},
            {"name": "c", "shape": [2, 2, 3], "bias": [0.25] * 6 + [-0.5] * 6,
             "neuron": {"model": "if", "threshold": 0.5}},
            {"name": "d", "size": 3, "bias": [0.1, -0.0, 2.0],
             "neuron": {"model": "lif", "leak": 1.0, "reset": "zero"}},
            {"name": "e", "size": 3, "role": "output", "bias": 0.125,
             "neuron": {"model": "lif", "leak": 0.5, "v0": -0.25}}]
    projs = [{"pre": "img", "post": "c", "kind": "conv2d", "kernel_size": [3, 2],
              "stride": [1, 2], "padding": [0, 1], "weights": {"init": "glorot_uniform",
                                                              "seed": 1}},
             {"pre": "vec", "post": "d", "name": "c", "symmetric": False,
              "weights": {"init": "glorot_uniform", "seed": 2, "gain": 3.0}},
             {"pre": "d", "post": "e", "kind": "sparse",
              "weights": {"row": [0, 2], "col": [1, 1], "data": [0.0, -0.0]}},
             {"pre": "e", "post": "e", "kind": "sparse", "name": "none", "symmetric": False,
              "weights": {"init": "zeros", "density": 1e-9, "seed": 3}},
             {"pre": "d", "post": "e", "kind": "one_to_one", "name": "diag",
              "weights": [1.5, -2.0, 0.0]}]
    raw = {"network": {"name": "edges", "seed": 2**63 - 1, "format": 2,
                       "description": "ünïcode \"quotes\"\n"},
           "population": pops, "projection": projs,
           "hardware": {"a": [1, 2.5, True, "x"], "b": {"c": None}}}
    return raw


def test_edge_cases_round_trip_exactly(tmp_path):
    net = describe.from_dict(_edge_cases())
    assert net.projections[3].indices.shape == (2, 0)
    # nir 1.0.8 infers a Conv2d's output with kh for both axes (weight.shape[2]): its type
    # check refuses the non-square kernel [3, 2], so the graph is written untyped
    nir.write(tmp_path / "t.nir", to_nir(net))
    with pytest.raises(ValueError, match=r"img->c.output: \[\[2 2 2\]\] -> c.input: "
                                         r"\[\[2 2 3\]\]"):
        nir.read(tmp_path / "t.nir")
    graph, back = through_file(net, tmp_path, type_check=False)
    assert_exact(net, back)
    assert back.description == "ünïcode \"quotes\"\n" and back.seed == 2**63 - 1
    # the projection named like population 'c' gets its own node name
    assert isinstance(graph.nodes["c"], nir.IF) and isinstance(graph.nodes["c.projection"],
                                                                nir.Affine)
    # IF biases ride on the incoming Affine / per channel on the Conv2d
    assert np.array_equal(graph.nodes["img->c"].bias, [0.25, -0.5])
    assert np.array_equal(graph.nodes["c.projection"].bias, [0.1, -0.0, 2.0])
    assert isinstance(graph.nodes["d"], nir.IF)              # lif with leak 1
    assert_same_spikes(net, back)


def test_a_format_1_network_comes_back_as_format_1(tmp_path):
    net = describe.load("tiny")
    graph, back = through_file(net, tmp_path)
    raw = nirmeta.netlist_dict(graph)
    assert "format" not in raw["network"] and back.format == 1
    assert all(set(p) == {"pre", "post", "weights"} for p in raw["projection"])
    assert raw.keys() == describe.to_dict(net).keys()


# ------------------------------------------------------------- what a plain reader sees

def test_conv_ep_is_standard_nir(tmp_path):
    net = describe.load("conv-ep")
    graph = nir.read(write_nir(net, tmp_path / "c.nir"))
    n = graph.nodes
    assert isinstance(n["image"], nir.Input) and list(n["image"].input_type["input"]) == \
        [1, 28, 28]
    for name in ("conv1", "pool1", "conv2", "pool2", "output"):
        assert isinstance(n[name], nir.LI)
    c1 = n["image->conv1"]
    assert isinstance(c1, nir.Conv2d)
    assert np.array_equal(c1.weight, net.projections[0].weights)
    assert list(c1.stride) == [1, 1] and list(c1.padding) == [0, 0] and c1.groups == 1
    assert list(c1.dilation) == [1, 1] and np.all(c1.bias == 0)
    p1 = n["conv1->pool1"]
    assert isinstance(p1, nir.AvgPool2d) and list(p1.kernel_size) == [2, 2] and \
        list(p1.stride) == [2, 2]
    assert isinstance(n["pool2->output.flatten"], nir.Flatten)
    aff = n["pool2->output"]
    assert isinstance(aff, nir.Affine) and np.array_equal(aff.weight, net.projections[4].weights.T)
    assert isinstance(n["output.output"], nir.Output)
    assert sorted(graph.edges) == sorted([
        ("image", "image->conv1"), ("image->conv1", "conv1"), ("conv1", "conv1->pool1"),
        ("conv1->pool1", "pool1"), ("pool1", "pool1->conv2"), ("pool1->conv2", "conv2"),
        ("conv2", "conv2->pool2"), ("conv2->pool2", "pool2"),
        ("pool2", "pool2->output.flatten"), ("pool2->output.flatten", "pool2->output"),
        ("pool2->output", "output"), ("output", "output.output")])
    # nir's own type check and shape inference accept it
    again = nir.NIRGraph(nodes=graph.nodes, edges=list(graph.edges), type_check=True)
    assert list(again.nodes["pool2"].output_type["output"]) == [64, 4, 4]
    assert list(again.nodes["pool2->output.flatten"].output_type["output"]) == [1024]


def test_feedback_lif_gives_the_same_discretised_dynamics(tmp_path):
    """NIR's LIF / IF / LI equations, forward Euler at dt, are neuroemu's updates."""
    net = describe.load("feedback-lif")
    write_nir(net, tmp_path / "f.nir", dt=DT)
    g = nir.read(tmp_path / "f.nir")
    hid, out = g.nodes["hidden"], g.nodes["output"]
    assert isinstance(hid, nir.LIF) and isinstance(out, nir.IF)
    leak = net.population("hidden").neuron.leak
    assert np.allclose(1 - DT / hid.tau, leak, rtol=0, atol=1e-12)        # V <- leak V
    assert np.allclose(DT * hid.r / hid.tau, 1.0, rtol=1e-12)            # + I
    assert np.allclose(DT / hid.tau * hid.v_leak, net.population("hidden").bias, atol=1e-12)
    assert np.all(hid.v_threshold == 1.0) and np.all(hid.v_reset == 0)
    assert np.allclose(DT * out.r, 1.0, rtol=1e-12) and np.all(out.v_threshold == 1.0)
    fb = g.nodes["feedback"]
    assert isinstance(fb, nir.Affine) and np.array_equal(fb.weight, net.projections[1].weights.T)
    assert ("hidden", "feedback") in g.edges and ("feedback", "hidden") in g.edges
    # the paper's neuron: LI with tau = dt / eps, r = 1, v_leak = bias
    tiny = describe.load("tiny")
    li = to_nir(tiny, DT).nodes["hidden"]
    eps = tiny.population("hidden").neuron.eps.get("nu_bar")
    assert isinstance(li, nir.LI) and np.allclose(DT / li.tau, eps, rtol=1e-12)
    assert np.all(li.r == 1) and np.array_equal(li.v_leak, tiny.population("hidden").bias)


def test_every_kind_is_standard_nir_with_sparse_and_scale(tmp_path):
    net = describe.from_dict(every_kind())
    write_nir(net, tmp_path / "e.nir")
    g = nir.read(tmp_path / "e.nir")       # type_check=True
    n = g.nodes
    assert isinstance(n["conv"], nir.LIF) and isinstance(n["pool"], nir.IF)
    assert isinstance(n["hid"], nir.LI) and list(n["hid"].input_type["input"]) == [27]
    sc = n["pool->hid"]
    assert isinstance(sc, nir.Scale) and sc.scale.shape == (3, 3, 3)
    assert np.array_equal(sc.scale.reshape(-1), net.projections[2].weights)
    assert isinstance(n["pool->hid.flatten"], nir.Flatten)
    rec = net.projections[3]
    lin = n["recurrent"]
    dense = np.zeros((27, 27))
    dense[rec.indices[0], rec.indices[1]] = rec.weights
    assert isinstance(lin, nir.Linear) and np.array_equal(lin.weight, dense.T)
    assert np.array_equal(lin.metadata["row"], rec.indices[0])
    assert isinstance(n["skip.flatten"], nir.Flatten) and isinstance(n["skip"], nir.Affine)
    assert {("aux", "second"), ("second", "out"), ("aux", "aux->out")} <= set(g.edges)
    meta = json.loads(g.metadata["neuroemu"])
    assert meta["extension"] == "neuroemu" and meta["version"] == 1 and meta["dt"] == DT
    assert meta["projections"][3] == "recurrent"
    assert json.loads(n["hid->out"].metadata["neuroemu"])["projection"]["symmetric"] is True


def test_shapes_nir_cannot_type_are_exported_untyped(tmp_path):
    """A dense projection into a map that also meets a convolution: NIR 1.0 has no unflatten,
    so the graph is built without the type check; read it with type_check=False."""
    raw = {"network": {"name": "mix", "format": 2},
           "population": [{"name": "img", "shape": [1, 4, 4], "role": "input"},
                          {"name": "v", "size": 8, "role": "input"},
                          {"name": "m", "shape": [2, 2, 2]},
                          {"name": "o", "size": 2, "role": "output"}],
           "projection": [{"pre": "img", "post": "m", "kind": "conv2d", "kernel_size": 3},
                          {"pre": "v", "post": "m"}, {"pre": "m", "post": "o"}]}
    net = describe.from_dict(raw)
    nir.write(tmp_path / "m.nir", to_nir(net))
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(tmp_path / "m.nir")
    graph, back = through_file(net, tmp_path, type_check=False)
    assert_exact(net, back)


def test_nodes_nir_adds_for_roots_and_leaves_are_ignored(tmp_path):
    """NIR's type inference puts an Input before a population nothing enters and an Output
    after one that sends nowhere; the extension does not name them, so they change nothing."""
    raw = {"network": {"name": "x", "format": 2},
           "population": [{"name": "i", "size": 3, "role": "input"},
                          {"name": "lone", "size": 2, "bias": 0.5}, {"name": "dead", "size": 2},
                          {"name": "o", "size": 2, "role": "output"}],
           "projection": [{"pre": "i", "post": "o"}, {"pre": "lone", "post": "o"},
                          {"pre": "i", "post": "dead"}]}
    net = describe.from_dict(raw)
    graph, back = through_file(net, tmp_path)
    assert isinstance(graph.nodes["input_lone"], nir.Input)
    assert isinstance(graph.nodes["output_dead"], nir.Output)
    assert_exact(net, back)


# ------------------------------------------------------------------ writing the file

def test_write_nir_is_atomic_and_refuses_what_it_should(tmp_path, monkeypatch):
    net = describe.load("tiny")
    path = tmp_path / "sub" / "t.nir"
    assert write_nir(net, path) == path and path.is_file()
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        write_nir(net, path)
    with pytest.raises(OutputError, match="is a directory"):
        write_nir(net, tmp_path, force=True)

    def broken(filename, graph, **kw):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk trouble")
    monkeypatch.setattr(nir, "write", broken)
    with pytest.raises(OSError, match="disk trouble"):
        write_nir(net, path, force=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.nir"]   # no temporary left
    monkeypatch.undo()
    write_nir(describe.load("skip-binary"), path, force=True)
    assert describe.same(describe.from_dict(nirmeta.netlist_dict(nir.read(path))),
                         describe.load("skip-binary"))


@pytest.mark.parametrize("dt", [0, -1e-3, math.nan, math.inf, "1e-3", True, None])
def test_dt_must_be_a_positive_number_of_seconds(dt):
    with pytest.raises(OptionError, match=r"dt: must be a finite number of seconds > 0"):
        to_nir(describe.load("tiny"), dt)


def test_to_nir_wants_a_netlist_and_storable_hardware():
    with pytest.raises(TypeError, match="expected a Netlist"):
        to_nir("tiny")
    import datetime
    raw = describe.to_dict(describe.load("tiny"))
    raw["hardware"] = {"when": datetime.date(2024, 1, 1)}
    with pytest.raises(NetlistError, match=r"tiny: hardware: cannot be stored in a NIR file"):
        to_nir(describe.from_dict(raw))


# ------------------------------------------------------------------- a damaged extension

def _graph():
    return to_nir(describe.from_dict(every_kind()))


def _set_meta(g, node, **changes):
    meta = g.metadata if node is None else g.nodes[node].metadata
    d = json.loads(meta["neuroemu"])
    for k, v in changes.items():
        d[k] = v
    meta["neuroemu"] = json.dumps(d)


def _damages():
    def broken_json(g):
        g.metadata["neuroemu"] = "{not json"

    def newer(g):
        _set_meta(g, None, version=2)

    def foreign(g):
        _set_meta(g, None, extension="other")

    def missing_node(g):
        del g.nodes["hid"]

    def wrong_type(g):
        g.nodes["hid"] = nir.Scale(scale=np.ones(27), metadata=g.nodes["hid"].metadata)

    def dense_shape(g):
        a = g.nodes["aux->out"]
        g.nodes["aux->out"] = nir.Affine(weight=a.weight.T.copy(), bias=np.zeros(5),
                                         metadata=a.metadata)

    def bias_shape(g):
        g.nodes["out"].metadata["bias"] = np.zeros(3)

    def sparse_edit(g):
        g.nodes["hid->out"].weight[0, 0] = 7.0

    def sparse_index(g):
        g.nodes["hid->out"].metadata["row"] = np.array([26, 0, 99])

    def no_population_table(g):
        g.nodes["out"].metadata["neuroemu"] = json.dumps({"projection": {}})

    def bytes_meta(g):
        g.metadata["neuroemu"] = b"\xff\xfe"

    return [(broken_json, r"graph: metadata.neuroemu: is not valid JSON"),
            (newer, r"graph: metadata.neuroemu.version: written by a newer neuroemu .*\(got 2\)"),
            (foreign, r"graph: metadata.neuroemu: must be a table with extension"),
            (missing_node, r"node 'hid': node: is named by the neuroemu extension but missing"),
            (wrong_type, r"node 'hid': type: must be Input or LI or IF or LIF .*\(got Scale\)"),
            (dense_shape, r"node 'aux->out': weight: must have shape \[4, 5\] \(got shape "
                          r"\[5, 4\]\)"),
            (bias_shape, r"node 'out': metadata.bias: must have shape \[4\]"),
            (sparse_edit, r"node 'hid->out': weight: has non-zero entries off the sparse"),
            (sparse_index, r"node 'hid->out': metadata.row/col: must index a 27 x 4 matrix"),
            (no_population_table, r"node 'out': metadata.neuroemu: must hold a table "
                                  r"'population'"),
            (bytes_meta, r"graph: metadata.neuroemu: must be the neuroemu extension's JSON")]


@pytest.mark.parametrize("damage,msg", _damages(), ids=lambda x: getattr(x, "__name__", ""))
def test_a_damaged_extension_is_one_line_naming_file_node_and_field(damage, msg):
    g = _graph()
    damage(g)
    with pytest.raises(NetlistError, match=r"^m\.nir: " + msg) as info:
        nirmeta.netlist_dict(g, "m.nir")
    assert "\n" not in str(info.value)


def test_a_plain_nir_graph_is_not_neuroemus():
    g = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                               nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                       v_threshold=np.ones(2)))
    assert not nirmeta.is_neuroemu(g)
    assert nirmeta.is_neuroemu(_graph())
    g2 = copy.copy(_graph())
    g2.metadata = {}
    assert not nirmeta.is_neuroemu(g2)
