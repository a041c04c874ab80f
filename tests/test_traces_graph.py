"""Traces of networks as graphs (issue 13): one SONATA population per neuron population and
recorded sample (maps with their shape), the counters per population and per projection with
the projections' labels, the format-2 netlist embedded; the reader, libsonata, the energy
model and the command line read them back exactly."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from neuroemu import describe, engines, record
from neuroemu.cli import main as cli_main
from neuroemu.energy.report import estimate_energy
from test_graph_reference import NETWORKS, inputs, targets


def load(raw):
    return describe.from_dict(raw, path="<test>")


def traced(tmp_path, name, samples=None, probes=None, steps=(9, 5)):
    """A free and a nudged phase written through TraceWriter.for_session: (path, net, cn,
    the session, its phases, x)."""
    raw = NETWORKS[name]()
    net = load(raw)
    cn = engines.build(net)
    x, y = inputs(raw, 3, 4), targets(raw, 3, 4)
    sess = engines.session(cn, x, seed=6)
    path = tmp_path / f"{name}.h5"
    rec_x = bool(probes)
    with record.TraceWriter.for_session(path, sess, samples=samples, probes=probes or {},
                                        chunk=64) as w:
        phases = [sess.run(steps[0], record_spikes=True, record_states=rec_x,
                           record_extra=rec_x)]
        w.append(phases[0])
        phases.append(sess.run(steps[1], beta=0.5, target=y, name="nudged",
                               record_spikes=True, record_states=rec_x, record_extra=rec_x))
        w.append(phases[1])
    return path, net, cn, sess, phases, x


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_graph_trace_round_trips(tmp_path, name):
    path, net, cn, sess, phases, x = traced(tmp_path, name, samples=[0, 2])
    spikes = np.concatenate([p.spikes for p in phases])
    with record.open(path) as t:
        assert t.complete and t.t_end == 14
        assert t.layers == [p.name for p in net.populations]
        assert t.sizes == list(net.sizes)
        assert t.shapes == [p.dims for p in net.populations]
        assert t.projections == [pr.label for pr in net.projections]
        assert t.populations == [f"{p.name}.{s}" for s in (0, 2) for p in net.populations]
        for pop in t.populations:
            inf = t.info(pop)
            l = t.layers.index(inf["layer"])
            r, j = np.nonzero(spikes[:, inf["sample"], cn.off[l]:cn.off[l + 1]])
            steps, ids = t.spikes(pop)
            assert np.array_equal(steps, r + 1) and np.array_equal(ids, j), pop
        c = t.counters()
        want = sess.counters()
        assert c["syn_events"].shape == (3, len(net.projections), 2)
        for k in ("spikes", "syn_events", "updates"):
            assert np.array_equal(c[k], want[k]), k
        back = t.netlist()
        assert back.format == 2
        assert [(p.name, p.dims, p.role, p.neuron.model) for p in back.populations] == \
            [(p.name, p.dims, p.role, p.neuron.model) for p in net.populations]
        assert [(pr.label, pr.kind, pr.symmetric) for pr in back.projections] == \
            [(pr.label, pr.kind, pr.symmetric) for pr in net.projections]
        for a, b in zip(back.projections, net.projections):
            assert np.array_equal(a.weights, np.asarray(b.weights, np.float32).astype(float))
        assert np.array_equal(t.input, x)
    with h5py.File(path) as f:
        for p in net.populations:
            g = f[f"spikes/{p.name}.0"]
            assert int(g.attrs["size"]) == p.size
            assert ("shape" in g.attrs) == bool(p.shape)
            if p.shape:
                assert tuple(g.attrs["shape"]) == tuple(p.shape)
        assert json.loads(f["neuroemu/counters"].attrs["projections"]) == \
            [pr.label for pr in net.projections]


@pytest.mark.parametrize("name", ["conv", "mixed"])
def test_libsonata_reads_a_graph_trace(tmp_path, name):
    libsonata = pytest.importorskip("libsonata", reason="the test extra installs libsonata")
    path, net, cn, sess, phases, x = traced(tmp_path, name)
    spikes = np.concatenate([p.spikes for p in phases])
    reader = libsonata.SpikeReader(str(path))
    with record.open(path) as t:
        assert sorted(reader.get_population_names()) == sorted(t.populations)
        assert len(t.populations) == 3 * len(net.populations)
        for pop in t.populations:
            inf = t.info(pop)
            l = t.layers.index(inf["layer"])
            r, j = np.nonzero(spikes[:, inf["sample"], cn.off[l]:cn.off[l + 1]])
            got = reader[pop].get_dict()
            assert reader[pop].sorting == "by_time"
            assert np.array_equal(got["timestamps"], (r + 1).astype(np.float64)), pop
            assert np.array_equal(got["node_ids"], j.astype(np.uint64)), pop


def test_probes_of_a_second_input_population_are_its_columns_of_x(tmp_path):
    path, net, cn, sess, phases, x = traced(tmp_path, "mixed", probes={"b": None, "h1": [0, 3]})
    l = cn.layer("b")
    with record.open(path) as t:
        steps, s = t.states("b")
        assert np.array_equal(steps, np.arange(1, 15))
        assert np.array_equal(s, np.broadcast_to(x[:, cn.xoff[l]:cn.xoff[l] + 4], s.shape))
        steps, s = t.states("h1")
        want = np.concatenate([p.states for p in phases])[:, :, cn.off[cn.layer("h1")] + [0, 3]]
        assert np.array_equal(s, want)


@pytest.mark.parametrize("name", ["conv", "feedback"])
def test_energy_of_a_graph_trace_is_that_of_its_run(tmp_path, name):
    path, net, cn, sess, phases, x = traced(tmp_path, name)
    res = sess.result()
    kw = dict(neurons_per_core=8)
    by_trace = estimate_energy(path, "loihi", **kw).to_dict()
    by_run = estimate_energy(res, "loihi", net=net, **kw).to_dict()
    for k in ("total_j", "by_kind", "by_population", "by_projection", "by_projection_total",
              "syn_events_by_projection", "counts", "phases"):
        assert by_trace[k] == by_run[k], k


def test_a_chain_trace_without_projection_labels_reads_as_before(tmp_path):
    """A format-1.0 trace (no labels with the counters) names a chain's projections pre->post."""
    net = describe.load("tiny")
    res = engines.run(engines.build(net), np.full((2, net.sizes[0]), 0.7), 6,
                      record_spikes=True)
    path = record.write(tmp_path / "t.h5", engines.build(net), res)
    with h5py.File(path, "r+") as f:
        del f["neuroemu/counters"].attrs["projections"]
    with record.open(path) as t:
        assert t.projections == [f"{pr.pre}->{pr.post}" for pr in net.projections]
        assert np.array_equal(t.counters()["syn_events"], res.counters["syn_events"])
    with h5py.File(path, "r+") as f:
        f["neuroemu/counters"].attrs["projections"] = json.dumps(["only one"])
    with pytest.raises(Exception, match="projections: must be a JSON list of 2"):
        record.open(path)


def test_cli_run_inspect_energy_of_a_format_2_netlist(tmp_path, capsys):
    net = load(NETWORKS["conv"]())
    src = describe.save(net, tmp_path / "conv.toml")
    trace = tmp_path / "conv-trace.h5"
    assert cli_main(["run", str(src), "--steps", "7", "--batch", "2", "--trace", str(trace),
                     "--probe", "img:0-3", "--probe", "c1"]) == 0
    capsys.readouterr()
    assert cli_main(["inspect", str(trace), "--json", "--raster", str(tmp_path / "r.png")]) == 0
    d = json.loads(capsys.readouterr().out.split("\nwrote")[0])
    assert [r["layer"] for r in d["populations"]][:5] == [p.name for p in net.populations]
    assert cli_main(["energy", str(trace), "--json", "--neurons-per-core", "8"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert list(e["by_projection_total"]) == [pr.label for pr in net.projections]
    with record.open(trace) as t:
        assert e["syn_events_by_projection"] == {
            n: t.counters()["syn_events"][:, p].sum(axis=0).tolist()
            for p, n in enumerate(t.projections)}


@pytest.mark.parametrize("name", ["conv-ep", "feedback-lif", "skip-binary"])
def test_shipped_graph_networks_trace_and_energy(tmp_path, name):
    """Issue 13's done-when: each shipped graph network writes a trace libsonata reads, and
    its trace gets an energy breakdown by projection."""
    libsonata = pytest.importorskip("libsonata", reason="the test extra installs libsonata")
    net = describe.load(name)
    cn = engines.build(net)
    x = np.random.default_rng(1).random((1, cn.n_in))
    path = tmp_path / f"{name}.h5"
    res = record.run_traced(path, cn, x, 4, seed=2, progress=False)
    reader = libsonata.SpikeReader(str(path))
    assert sorted(reader.get_population_names()) == sorted(p.name for p in net.populations)
    total = sum(len(reader[p].get()) for p in reader.get_population_names())
    assert total == int(res.counters["spikes"].sum()) > 0
    rep = estimate_energy(path, "loihi")
    assert list(rep.by_projection_total) == [pr.label for pr in net.projections]
    assert sum(rep.by_population.values()) + sum(rep.by_projection_total.values()) == \
        pytest.approx(rep.total_j, rel=1e-12)
    syn = res.counters["syn_events"][0]
    assert rep.syn_events_by_projection == {pr.label: syn[p].tolist()
                                            for p, pr in enumerate(net.projections)}
