"""Issue 13's done-when for the shipped graph networks (conv-ep, feedback-lif, skip-binary):
each validates, runs on both engines -- the bus engine with one shared clock, zero latency and
unlimited bandwidth equal to lockstep spike for spike --, writes a trace libsonata reads from
either engine, and gets an energy breakdown by projection; and each trains a step with EP."""

from __future__ import annotations

import numpy as np
import pytest

from neuroemu import cli, describe, digits, engines, estimate_energy, record
from neuroemu.learn.eqprop import Hyper, Trainer

GRAPHS = ["conv-ep", "feedback-lif", "skip-binary"]


def _images(n, seed=0):
    """n of the bundled MNIST test digits."""
    return np.asarray(digits()[0][seed:seed + n], dtype=np.float64)


@pytest.mark.parametrize("name", GRAPHS)
def test_validates(name, capsys):
    assert cli.main(["validate", name]) == 0
    out = capsys.readouterr().out
    net = describe.load(name)
    assert net.format == 2 and out.startswith(f"{name}: ok")
    for pr in net.projections:
        assert pr.pre in out and pr.post in out


@pytest.mark.parametrize("name", GRAPHS)
def test_bus_engine_equals_lockstep(name):
    cn = engines.build(describe.load(name))
    assert cn.graph
    x = _images(2)
    y = np.eye(10)[[3, 7]]
    runs = []
    for engine in ("lockstep", "async"):
        sess = engines.session(cn, x, engine=engine, seed=4)
        p1 = sess.run(12, record_spikes=True, record_states=True)
        p2 = sess.run(6, beta=0.5, target=y, record_spikes=True, record_states=True)
        runs.append((p1, p2, sess.counters()))
    (a1, a2, ca), (b1, b2, cb) = runs
    for pa, pb in ((a1, b1), (a2, b2)):
        assert np.array_equal(pa.spikes, pb.spikes)
        assert np.array_equal(pa.states, pb.states)
    for k in ("spikes", "syn_events", "updates"):
        assert np.array_equal(ca[k], cb[k]), k
    assert ca["spikes"][:, 1:].sum() > 0          # something beyond the input spikes


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("engine", ["lockstep", "async"])
def test_trace_opens_in_libsonata_and_prices_by_projection(tmp_path, name, engine):
    libsonata = pytest.importorskip("libsonata", reason="the test extra installs libsonata")
    net = describe.load(name)
    cn = engines.build(net)
    path = tmp_path / f"{name}-{engine}.h5"
    res = record.run_traced(path, cn, _images(1, seed=5), 8, seed=2, engine=engine,
                            progress=False)
    reader = libsonata.SpikeReader(str(path))
    assert sorted(reader.get_population_names()) == sorted(p.name for p in net.populations)
    assert sum(len(reader[p].get()) for p in reader.get_population_names()) == \
        int(res.counters["spikes"].sum())
    rep = estimate_energy(path, "loihi")
    assert list(rep.by_projection_total) == [pr.label for pr in net.projections]
    assert sum(rep.by_population.values()) + sum(rep.by_projection_total.values()) == \
        pytest.approx(rep.total_j, rel=1e-12)
    assert rep.total_j > 0


@pytest.mark.parametrize("name", ["conv-ep", "skip-binary"])
def test_one_ep_step_moves_every_trainable_projection(name):
    """The symmetric projections move (conv kernels, dense and skip weights); pools stay."""
    cn = engines.build(describe.load(name))
    hp = Hyper.for_network(cn, n_free=10, n_nudged=5, nudge="symmetric")
    tr = Trainer(cn, hp)
    before = [w.copy() for w in tr.W]
    tr.train_batch(_images(4), np.eye(10)[[0, 1, 2, 3]])
    for p, pr in enumerate(cn.netlist.projections):
        moved = not np.array_equal(before[p], tr.W[p])
        assert moved == (pr.kind != "avgpool2d"), pr.label


def test_evaluate_names_every_projection_of_a_graph():
    """Synaptic events per projection cover every projection of a graph (the skip too),
    named as the energy report names them, and add up to the total."""
    from neuroemu.learn.evaluate import evaluate
    images, labels = digits()
    res = evaluate(describe.load("skip-binary"), images[:10], labels[:10], steps=20)
    assert list(res.syn_events_per_projection) == ["image->hidden", "hidden->output",
                                                   "output->hidden", "skip"]
    assert sum(res.syn_events_per_projection.values()) == res.syn_events_per_sample
    chain = evaluate(describe.load("tiny"), np.full((2, 4), 0.5), np.array([0, 1]), steps=5)
    assert list(chain.syn_events_per_projection) == ["input->hidden", "hidden->input",
                                                     "hidden->output", "output->hidden"]
