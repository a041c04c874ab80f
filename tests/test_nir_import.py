"""NIR import (neuroemu/interop/nir_import.py): graphs built with the ``nir`` package's own
classes, shaped like snnTorch's and Norse's exports, imported at ``dt`` and run on the engine,
spike for spike against tests/reference_nir.py (NIR's equations by forward Euler); every error
class as one line naming the node, the field and the value; files through nir.write/read_nir.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from neuroemu import engines  # noqa: E402
from neuroemu.errors import NetlistError  # noqa: E402
from neuroemu.interop.nir_file import read_nir  # noqa: E402
from neuroemu.interop.nir_import import from_nir  # noqa: E402
from reference_nir import nir_run  # noqa: E402

DT = 1e-3
STEPS = 50


def lif(n, beta=0.9, thr=1.0, r=None, v_leak=0.0, dt=DT):
    """snnTorch's Leaky as its export writes it: tau = dt / (1 - beta), r = tau / dt."""
    shape = (n,) if isinstance(n, int) else tuple(n)
    tau = dt / (1 - beta)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / dt if r is None else r),
                   v_leak=np.full(shape, v_leak), v_threshold=np.full(shape, thr),
                   v_reset=np.zeros(shape))


def if_(n, thr=1.0, r=1 / DT):
    shape = (n,) if isinstance(n, int) else tuple(n)
    return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def outp(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def ff_lif(seed=1, norse=False):
    rng = np.random.default_rng(seed)
    if norse:   # Norse: r = 1, tau_mem = 10 ms, a leak towards v_leak, larger weights
        neuron = lambda n: nir.LIF(tau=np.full(n, 0.01), r=np.ones(n),  # noqa: E731
                                   v_leak=rng.uniform(-0.5, 0.5, n), v_threshold=np.ones(n),
                                   v_reset=np.zeros(n))
        scale = 12.0
    else:
        neuron, scale = lif, 1.0
    return graph({"input": inp(6), "fc1": nir.Affine(rng.normal(0, .6, (12, 6)) * scale,
                                                     rng.normal(0, .1, 12) * scale),
                  "lif1": neuron(12),
                  "fc2": nir.Affine(rng.normal(0, .6, (4, 12)) * scale, np.full(4, .05 * scale)),
                  "lif2": neuron(4), "output": outp(4)},
                 [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                  ("lif2", "output")])


def conv_if(seed=2):
    rng = np.random.default_rng(seed)
    return graph({"input": inp(1, 8, 8),
                  "conv1": nir.Conv2d((8, 8), rng.normal(0, .5, (4, 1, 3, 3)), 1, 1, 1, 1,
                                      rng.normal(0, .05, 4)),
                  "if1": if_((4, 8, 8)),
                  "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                  "conv2": nir.Conv2d((4, 4), rng.normal(0, .4, (3, 4, 3, 3)), 1, 1, 1, 1,
                                      np.zeros(3)),
                  "if2": if_((3, 4, 4)),
                  "flat": nir.Flatten({"input": np.array([3, 4, 4])}, 0),
                  "fc": nir.Affine(rng.normal(0, .4, (5, 48)), rng.normal(0, .05, 5)),
                  "if3": if_(5), "output": outp(5)},
                 [("input", "conv1"), ("conv1", "if1"), ("if1", "pool"), ("pool", "conv2"),
                  ("conv2", "if2"), ("if2", "flat"), ("flat", "fc"), ("fc", "if3"),
                  ("if3", "output")])


def recurrent(seed=3):
    rng = np.random.default_rng(seed)
    return graph({"input": inp(5), "fc_in": nir.Affine(rng.normal(0, .5, (10, 5)), np.zeros(10)),
                  "lif": lif(10, beta=0.8),
                  "fc_rec": nir.Affine(rng.normal(0, .4, (10, 10)), np.full(10, .02)),
                  "fc_out": nir.Linear(rng.normal(0, .6, (3, 10))), "lif_out": lif(3),
                  "output": outp(3)},
                 [("input", "fc_in"), ("fc_in", "lif"), ("lif", "fc_rec"), ("fc_rec", "lif"),
                  ("lif", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output")])


def scaled(seed=4):
    rng = np.random.default_rng(seed)
    return graph({"input": inp(6), "s_in": nir.Scale(rng.uniform(.5, 1.5, 6)),
                  "if1": if_(6, r=rng.uniform(500, 1500, 6)),
                  "fc": nir.Affine(rng.normal(0, .5, (4, 6)), np.zeros(4)),
                  "s_out": nir.Scale(np.array([1.0, -0.5, 2.0, 0.75])), "lif": lif(4),
                  "output": outp(4)},
                 [("input", "s_in"), ("s_in", "if1"), ("if1", "fc"), ("fc", "s_out"),
                  ("s_out", "lif"), ("lif", "output")])


def avgpooled(seed=5):
    rng = np.random.default_rng(seed)
    return graph({"input": inp(2, 6, 6),
                  "conv": nir.Conv2d((6, 6), rng.normal(0, .5, (2, 2, 3, 3)), 1, 1, 1, 1,
                                     np.zeros(2)),
                  "if1": if_((2, 6, 6)),
                  "avg": nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                  "if2": if_((2, 3, 3), thr=0.5),
                  "avg2": nir.AvgPool2d(np.array([3, 3]), np.array([3, 3]), np.array([0, 0])),
                  "if3": if_((2, 1, 1), thr=0.3, r=500.0),
                  "flat": nir.Flatten({"input": np.array([2, 3, 3])}, 0),
                  "lin": nir.Linear(rng.normal(0, .7, (3, 18))), "lif": lif(3),
                  "output": outp(3), "output2": outp(2, 1, 1)},
                 [("input", "conv"), ("conv", "if1"), ("if1", "avg"), ("avg", "if2"),
                  ("if2", "flat"), ("flat", "lin"), ("lin", "lif"), ("lif", "output"),
                  ("if2", "avg2"), ("avg2", "if3"), ("if3", "output2")])


def multi(seed=6):
    rng = np.random.default_rng(seed)
    return graph({"a": inp(3), "b": inp(2),
                  "fa": nir.Affine(rng.normal(0, .6, (7, 3)), rng.normal(0, .1, 7)),
                  "fb": nir.Affine(rng.normal(0, .6, (7, 2)), np.zeros(7)),
                  "hid": lif(7), "f1": nir.Affine(rng.normal(0, .6, (4, 7)), np.zeros(4)),
                  "o1": lif(4), "f2": nir.Linear(rng.normal(0, .8, (2, 7))), "o2": if_(2),
                  "direct": if_(2, thr=3.0), "out1": outp(4), "out2": outp(2), "out3": outp(2)},
                 [("a", "fa"), ("b", "fb"), ("fa", "hid"), ("fb", "hid"), ("hid", "f1"),
                  ("f1", "o1"), ("hid", "f2"), ("f2", "o2"), ("o1", "out1"), ("o2", "out2"),
                  ("b", "direct"), ("direct", "out3")])


def chains(seed=9):
    """A conv straight into an Affine (a dense matrix of the chain), two paths between one
    pair (two projections, named), and a shared Affine bias reached by two paths."""
    rng = np.random.default_rng(seed)
    return graph({"input": inp(1, 5, 5),
                  "conv": nir.Conv2d((5, 5), rng.normal(0, .5, (2, 1, 3, 3)), 2, 0, 1, 1,
                                     np.array([.1, -.1])),
                  "flat": nir.Flatten({"input": np.array([2, 2, 2])}, 0),
                  "fc": nir.Affine(rng.normal(0, .6, (6, 8)), rng.normal(0, .1, 6)),
                  "hid": lif(6), "p1": nir.Linear(rng.normal(0, .7, (3, 6))),
                  "p2": nir.Scale(np.full(6, 0.5)), "p2b": nir.Linear(rng.normal(0, .7, (3, 6))),
                  "out": if_(3), "output": outp(3)},
                 [("input", "conv"), ("conv", "flat"), ("flat", "fc"), ("fc", "hid"),
                  ("hid", "p1"), ("hid", "p2"), ("p2", "p2b"), ("p1", "out"), ("p2b", "out"),
                  ("out", "output")])


def run_both(g, x_by_input, dt=DT, steps=STEPS):
    net = from_nir(g, dt)
    x = np.concatenate([np.asarray(x_by_input[p.name]).reshape(-1)
                        for p in net.populations if p.role == "input"])
    sess = engines.session(engines.build(net), x[None])
    sess.run(steps, record_spikes=True)
    res = sess.result()
    ref, margin, ties = nir_run(g, x_by_input, dt, steps)
    return net, res, ref, margin, ties


CASES = {
    "snntorch-lif": (ff_lif, {"input": np.linspace(0.0, 1.0, 6)}),
    "norse-lif": (lambda: ff_lif(norse=True), {"input": np.linspace(0.0, 1.0, 6)}),
    "conv-if": (conv_if, {"input": np.random.default_rng(7).uniform(0, 1, (1, 8, 8))}),
    "recurrent": (recurrent, {"input": np.array([0.9, 0.0, 0.6, 1.0, 0.3])}),
    "scale": (scaled, {"input": np.array([0.3, 0.9, 0.5, 1.0, 0.05, 0.7])}),
    "avgpool": (avgpooled, {"input": np.random.default_rng(8).uniform(0, 1, (2, 6, 6))}),
    "multi": (multi, {"a": np.array([1.0, 0.4, 0.1]), "b": np.array([0.8, 0.25])}),
    "chains": (chains, {"input": np.random.default_rng(10).uniform(0, 1, (1, 5, 5))}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spikes_equal_nir_reference(case):
    make, x = CASES[case]
    g = make()
    net, res, ref, margin, ties = run_both(g, x)
    # float32 weights move a membrane by far less than this: no spike can flip
    assert margin > 1e-5, f"{case}: a membrane came within {margin:g} of its threshold"
    total = 0
    for name, spikes in ref.items():
        got = res.spikes(name)[:, 0, :]
        np.testing.assert_array_equal(got, spikes, err_msg=f"{case}: population {name}")
        total += int(spikes.sum())
    assert total > 20, f"{case}: too few spikes ({total}) to test anything"
    assert 0 < min(int(s.sum()) for s in ref.values()) or case == "multi"
    # spikes and 1/4-pool weights are exact: membranes land exactly on the threshold, where
    # NIR's strict v > v_threshold does not fire (the import's threshold is one ulp above)
    assert (ties > 0) == (case in ("avgpool", "multi"))


def test_mapping_kinds_and_parameters():
    net = from_nir(ff_lif(), DT)
    pops = {p.name: p for p in net.populations}
    assert pops["input"].role == "input" and pops["lif2"].role == "output"
    assert pops["lif1"].neuron.model == "lif" and pops["lif1"].neuron.reset == "zero"
    assert pops["lif1"].neuron.leak == pytest.approx(0.9)
    g = ff_lif()
    w = g.nodes["fc1"].weight
    # snnTorch's r = tau / dt makes the factor dt r / tau one
    np.testing.assert_allclose(net.projections[0].weights, w.T, rtol=1e-12)
    np.testing.assert_allclose(pops["lif1"].bias, g.nodes["fc1"].bias, rtol=1e-12)
    assert all(not p.symmetric for p in net.projections)
    conv = from_nir(conv_if(), DT)
    kinds = {p.label: (p.kind, p.params) for p in conv.projections}
    assert kinds["input->if1"][0] == "conv2d"
    # SumPool2d (2x2) then Conv2d 3x3 pad 1 = one conv2d 6x6, stride 2, padding 2
    assert kinds["if1->if2"] == ("conv2d", (("kernel", (6, 6)), ("padding", (2, 2)),
                                            ("stride", (2, 2))))
    assert kinds["if2->if3"][0] == "dense"
    avg = {p.label: p.kind for p in from_nir(avgpooled(), DT).projections}
    assert avg["if1->if2"] == "avgpool2d" and avg["if2->if3"] == "conv2d"  # r = 500: scaled
    sc = {p.label: p for p in from_nir(scaled(), DT).projections}
    assert sc["input->if1"].kind == "one_to_one" and sc["if1->lif"].kind == "dense"
    m = from_nir(multi(), DT)
    assert m.inputs == ("a", "b") and set(m.outputs) == {"o1", "o2", "direct"}
    ch = {p.label: p.kind for p in from_nir(chains(), DT).projections}
    assert ch == {"input->hid": "dense", "hid-out-0": "dense", "hid-out-1": "dense"}
    direct = [p for p in m.projections if p.post == "direct"][0]
    assert direct.kind == "one_to_one"
    np.testing.assert_allclose(direct.weights, 1.0)   # dt r = 1e-3 * 1000


def test_dt_scales_the_discretisation():
    g = ff_lif()
    tau = g.nodes["lif1"].tau[0]
    for dt in (1e-4, 5e-4):
        net, res, ref, margin, ties = run_both(g, {"input": np.linspace(0.0, 1.0, 6)}, dt=dt)
        assert net.population("lif1").neuron.leak == pytest.approx(1 - dt / tau)
        assert margin > 1e-5
        for name, spikes in ref.items():
            np.testing.assert_array_equal(res.spikes(name)[:, 0, :], spikes)


def test_file_round_trip(tmp_path):
    p = tmp_path / "model.nir"
    nir.write(p, conv_if())
    net = read_nir(p, DT)
    assert net.path == str(p) and net.name == "model"
    ref = from_nir(conv_if(), DT)
    for a, b in zip(net.projections, ref.projections):
        np.testing.assert_array_equal(a.weights, b.weights)
    for a, b in zip(net.populations, ref.populations):
        np.testing.assert_array_equal(a.bias, b.bias)


# --------------------------------------------------------------------------- errors


def _nodes(g):
    return dict(g.nodes), list(g.edges)


def _swap(g, name, node):
    nodes, edges = _nodes(g)
    nodes[name] = node
    return graph(nodes, edges)


ERRORS = {
    "cubalif": (lambda: _swap(ff_lif(), "lif1", nir.CubaLIF(
        tau_syn=np.full(12, .01), tau_mem=np.full(12, .01), r=np.ones(12),
        v_leak=np.zeros(12), v_threshold=np.ones(12))),
        r"node 'lif1' \(CubaLIF\): type: unsupported: .*\(got CubaLIF\)"),
    "li": (lambda: _swap(ff_lif(), "lif2", nir.LI(tau=np.full(4, .01), r=np.ones(4),
                                                  v_leak=np.zeros(4))),
           r"node 'lif2' \(LI\): type: unsupported.*\(got LI\)"),
    "i": (lambda: _swap(ff_lif(), "lif2", nir.I(r=np.ones(4))), r"node 'lif2' \(I\): type"),
    "threshold": (lambda: _swap(ff_lif(), "lif2", nir.Threshold(threshold=np.ones(4))),
                  r"node 'lif2' \(Threshold\): type: unsupported"),
    "delay": (lambda: _swap(ff_lif(), "fc2", nir.Delay(delay=np.ones(4))),
              r"node 'fc2' \(Delay\): type: unsupported.*one step"),
    "conv1d": (lambda: _swap(ff_lif(), "fc2", nir.Conv1d(4, np.ones((1, 1, 3)), 1, 1, 1, 1,
                                                         np.zeros(1))),
               r"node 'fc2' \(Conv1d\): type: unsupported: neuroemu has 2-D"),
    "groups": (lambda: _swap(conv_if(), "conv2", nir.Conv2d((4, 4), np.ones((4, 2, 3, 3)), 1,
                                                            1, 1, 2, np.zeros(4))),
               r"node 'conv2' \(Conv2d\): groups: unsupported: must be 1 \(.*\) \(got 2\)"),
    "dilation": (lambda: _swap(conv_if(), "conv2", nir.Conv2d((4, 4), np.ones((3, 4, 3, 3)),
                                                              1, 2, 2, 1, np.zeros(3))),
                 r"node 'conv2' \(Conv2d\): dilation: unsupported: must be 1 \(got \[2, 2\]\)"),
    "tau-varies": (lambda: _swap(ff_lif(), "lif2", nir.LIF(
        tau=np.array([.01, .01, .02, .01]), r=np.full(4, 10.), v_leak=np.zeros(4),
        v_threshold=np.ones(4))),
        r"node 'lif2' \(LIF\): tau: must be uniform across the population .*\(got 0.01 to "
        r"0.02\)"),
    "threshold-varies": (lambda: _swap(ff_lif(), "lif2", nir.LIF(
        tau=np.full(4, .01), r=np.full(4, 10.), v_leak=np.zeros(4),
        v_threshold=np.array([1., 1., 2., 1.]))),
        r"node 'lif2' \(LIF\): v_threshold: must be uniform .*\(got 1 to 2\)"),
    "v-reset": (lambda: _swap(ff_lif(), "lif2", nir.LIF(
        tau=np.full(4, .01), r=np.full(4, 10.), v_leak=np.zeros(4), v_threshold=np.ones(4),
        v_reset=np.full(4, -0.5))),
        r"node 'lif2' \(LIF\): v_reset: must be 0 .*\(got -0.5\)"),
    "dt-tau": (lambda: _swap(ff_lif(), "lif2", nir.LIF(
        tau=np.full(4, 5e-4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))),
        r"node 'lif2' \(LIF\): tau: must exceed dt = 0.001 s .*\(got 0.0005\)"),
    "affine-shape": (lambda: _swap(ff_lif(), "fc2", nir.Affine(np.ones((4, 11)), np.zeros(4))),
                     r"node 'fc2' \(Affine\): weight: must have shape \[out, 12\] .*'lif1'\) "
                     r"\(got shape \[4, 11\]\)"),
    "neuron-shape": (lambda: _swap(ff_lif(), "lif2", lif(5)),
                     r"node 'lif2' \(LIF\): input: must receive the node's shape \[5\] \(got "
                     r"shape \[4\] from 'lif1' through fc2\)"),
    "conv-shape": (lambda: _swap(conv_if(), "conv2", nir.Conv2d((5, 5), np.ones((3, 4, 3, 3)),
                                                                1, 1, 1, 1, np.zeros(3))),
                   r"node 'conv2' \(Conv2d\): input_shape: needs a map input of shape "
                   r"\[4, 5, 5\] \(got shape \[4, 4, 4\] arriving from 'if1'\)"),
    "scale-shape": (lambda: _swap(scaled(), "s_out", nir.Scale(np.ones(3))),
                    r"node 's_out' \(Scale\): scale: must have 4 values .*\(got 3 values\)"),
    "huge-input": (lambda: _swap(ff_lif(), "input", inp(10**6, 10**6)),
                   r"node 'input' \(Input\): input_type: must be positive and hold at most 10000000 neurons "
                   r"\(got \[1000000, 1000000\]\)"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_name_node_field_and_value(case):
    make, pattern = ERRORS[case]
    with pytest.raises(NetlistError, match=pattern) as info:
        from_nir(make(), DT)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("<nir>: node '")


def test_structural_errors():
    rng = np.random.default_rng(0)
    lin = lambda n, m: nir.Linear(rng.normal(size=(n, m)))  # noqa: E731
    cyc = graph({"input": inp(3), "a": lin(3, 3), "b": lin(3, 3), "n": if_(3), "o": outp(3)},
                [("input", "a"), ("a", "b"), ("b", "a"), ("b", "n"), ("n", "o")])
    with pytest.raises(NetlistError, match=r"node '(a|b)' \(Linear\): edges: is on a cycle "
                       r"through linear nodes only .*\(got (a -> b -> a|b -> a -> b)\)"):
        from_nir(cyc, DT)
    lin_out = graph({"input": inp(3), "a": lin(3, 3), "n": if_(3), "o": outp(3)},
                    [("input", "n"), ("n", "a"), ("a", "o")])
    with pytest.raises(NetlistError, match=r"node 'o' \(Output\): edges: an Output must be "
                       r"fed by an IF or LIF node .*\(got 'a' \(Linear\)\)"):
        from_nir(lin_out, DT)
    orphan = graph({"input": inp(3), "n": if_(3), "lone": if_(2), "o": outp(3)},
                   [("input", "n"), ("n", "o")])
    with pytest.raises(NetlistError, match=r"node 'lone' \(IF\): edges: has no path from an "
                       r"Input node \(got inputs \['input'\]\)"):
        from_nir(orphan, DT)
    with pytest.raises(NetlistError, match=r"<nir>: dt: must be a positive number .*\(got "
                       r"0.0\)"):
        from_nir(ff_lif(), 0.0)
    with pytest.raises(NetlistError, match=r"<nir>: graph: nodes: must be a NIRGraph"):
        from_nir("not a graph", DT)


def test_damaged_files(tmp_path):
    import h5py
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(NetlistError, match=re.escape(str(bad)) + r": not a NIR file"):
        read_nir(bad, DT)
    foreign = tmp_path / "foreign.nir"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(NetlistError, match=r"foreign.nir: not a NIR file \(no 'node' group"):
        read_nir(foreign, DT)
    huge = tmp_path / "huge.nir"
    nir.write(huge, ff_lif())
    with h5py.File(huge, "a") as f:   # declared, never written: reading would allocate
        f["node"].create_dataset("pad", shape=(10**6, 10**6), dtype="f8", chunks=(1, 1000))
    with pytest.raises(NetlistError, match=r"huge.nir: node/pad: the file declares more than "
                       r"\d+ numbers \(got shape \[1000000, 1000000\]\)"):
        read_nir(huge, DT)
    broken = tmp_path / "broken.nir"
    nir.write(broken, ff_lif())
    with h5py.File(broken, "a") as f:
        del f["node"]["nodes"]["fc1"]["weight"]
    with pytest.raises(NetlistError, match=r"broken.nir: not a readable NIR graph \(") as info:
        read_nir(broken, DT)
    assert "\n" not in str(info.value)
    with pytest.raises(NetlistError, match=r"missing.nir: file not found"):
        read_nir(tmp_path / "missing.nir", DT)


def test_neuroemu_graphs_come_back_exactly():
    export = pytest.importorskip("neuroemu.interop.nir_export")
    from neuroemu import describe
    for name in ("tiny", "feedback-lif"):
        net = describe.load(name)
        back = from_nir(export.to_nir(net, DT), DT)
        assert describe.same(net, back), name
    g = ff_lif()
    g.metadata = {"source": "snntorch"}       # other metadata: the standard mapping
    assert from_nir(g, DT).population("lif1").neuron.model == "lif"
