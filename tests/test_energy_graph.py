"""The energy model on networks as graphs (issue 13): where every message goes (its reach
through each projection kind, both directions) against the synapses of the matrix the
projection implies (tests/reference_graph.py), packets and XY hops against a slow router
that walks every recorded spike to every receiving neuron's core, synaptic events per
projection against the run's counters, the breakdown by projection summing to the total,
the real-valued baseline's synapse counts, and chains priced exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pytest

import reference as ref
from conftest import NETLISTS
from neuroemu import describe, engines
from neuroemu.cli import main as cli_main
from neuroemu.energy import accounting as E
from neuroemu.energy import graph as G
from neuroemu.energy import hardware as hw
from neuroemu.energy.report import estimate_energy, make_setup
from test_graph_reference import CONVS, NETWORKS, inputs, network, pop, proj, targets


def load(raw):
    return describe.from_dict(raw, path="<test>")


def pairs(s, r):
    return set(zip(s.tolist(), r.tolist()))


def structure_pairs(net, pr, d):
    m = ref.structure(net, pr)
    return pairs(*np.nonzero(m if d == 0 else m.T))


# --------------------------------------------------------------------------- reach

def _conv_raw(in_shape, co, k, s, p):
    ci, h, w = in_shape
    out = (co, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
    wt = np.random.default_rng(0).normal(size=(co, ci) + k).tolist()
    return network([pop("a", "input", shape=in_shape), pop("b", "output", shape=out)],
                   [proj("a", "b", wt, kind="conv2d", kernel_size=list(k), stride=list(s),
                         padding=list(p))])


POOLS = [((2, 5, 5), (2, 2), (1, 1)), ((1, 6, 6), (3, 3), (2, 2)), ((1, 7, 5), (2, 3), (2, 1)),
         ((3, 4, 4), (2, 2), (2, 2))]


def _pool_raw(shape, k, s):
    c, h, w = shape
    out = (c, (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1)
    return network([pop("a", "input", shape=shape), pop("b", "output", shape=out)],
                   [proj("a", "b", kind="avgpool2d", kernel_size=list(k), stride=list(s))])


def single_projection_nets():
    nets = [(f"conv{i}", _conv_raw(*c)) for i, c in enumerate(CONVS)]
    nets += [(f"pool{i}", _pool_raw(*c)) for i, c in enumerate(POOLS)]
    return nets


ALL = [(n, f()) for n, f in sorted(NETWORKS.items())] + single_projection_nets()


@pytest.mark.parametrize("name,raw", ALL, ids=[n for n, _ in ALL])
def test_reach_is_the_structure_of_the_implied_matrix(name, raw):
    """Every projection, both directions: the (sender, receiver) pairs reach() gives -- whole,
    and in blocks of senders -- are the synapses of the dense matrix, each once."""
    net = load(raw)
    topo = G.topology(net)
    for link, pr in zip(topo.links, net.projections):
        assert link.label == pr.label
        for d in (0, 1):
            n_send = topo.sizes[link.pre if d == 0 else link.post]
            n_recv = topo.sizes[link.post if d == 0 else link.pre]
            s, r = G.reach(link, d, 0, n_send, n_recv)
            assert len(s) == len(pairs(s, r)), (pr.label, d, "a pair twice")
            assert pairs(s, r) == structure_pairs(net, pr, d), (pr.label, d)
            cut = [0, n_send // 3, n_send // 3 + 1, n_send]
            got = set()
            for lo, hi in zip(cut[:-1], cut[1:]):
                s, r = G.reach(link, d, lo, hi, n_recv)
                assert np.all((s >= lo) & (s < hi))
                got |= pairs(s, r)
            assert got == structure_pairs(net, pr, d)
        # the real-valued baseline's full fan-out: every synapse, once per direction
        assert link.synapses == int(ref.structure(net, pr).sum())
        assert link.n_weights == (0 if pr.kind == "avgpool2d" else np.size(pr.weights))


# --------------------------------------------------------------------------- routing

def brute_routes(net, core, width, multicast):
    """Per neuron: packets and hops of one message, from the definition: the receivers are the
    union over the sender's deliveries (forward: projections it is pre of; backward: symmetric
    projections it is post of whose pre is no input) of the synapses of the implied matrix."""
    pops = net.populations
    names = [p.name for p in pops]
    off = np.concatenate([[0], np.cumsum([p.size for p in pops])])
    mats = [ref.structure(net, pr) for pr in net.projections]
    N = int(off[-1])
    out = np.zeros((3, N), dtype=np.int64)
    for l in range(len(pops)):
        for i in range(pops[l].size):
            recv = set()
            for pr, m in zip(net.projections, mats):
                a, b = names.index(pr.pre), names.index(pr.post)
                if a == l:
                    recv |= {off[b] + j for j in np.flatnonzero(m[i])}
                if b == l and pr.symmetric and pops[a].role != "input":
                    recv |= {off[a] + j for j in np.flatnonzero(m[:, i])}
            dests = sorted({int(core[j]) for j in recv}) if multicast else \
                [int(core[j]) for j in sorted(recv)]
            c = int(core[off[l] + i])
            out[0, off[l] + i] = len(dests)
            out[1, off[l] + i] = sum(abs(c % width - d % width) for d in dests)
            out[2, off[l] + i] = sum(abs(c // width - d // width) for d in dests)
    return out


def placements(net, tmp_path):
    n = sum(net.sizes)
    core = np.random.default_rng(7).permutation(np.arange(n) % 13)
    np.save(tmp_path / "map.npy", core)
    return [("layer", None, 4), ("packed", None, 3), (str(tmp_path / "map.npy"), (4, 4),
                                                      -(-n // 13))]


@pytest.mark.parametrize("multicast", [True, False])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_route_table_equals_the_slow_router(tmp_path, name, multicast):
    net = load(NETWORKS[name]())
    topo = G.topology(net)
    for policy, mesh, npc in placements(net, tmp_path):
        pl = hw.place(net.sizes, mesh, npc, policy)
        rt = hw.route_table(pl, topo, multicast)
        want = brute_routes(net, pl.core, pl.width, multicast)
        assert np.array_equal(rt.packets, want[0]), policy
        assert np.array_equal(rt.hops_ew, want[1]), policy
        assert np.array_equal(rt.hops_ns, want[2]), policy
        assert want[1].sum() > 0 and want[2].sum() > 0


def test_route_table_in_small_blocks(monkeypatch):
    """Blocks of senders (and the sorting path for distinct destinations) give the same."""
    net = load(NETWORKS["continuous"]())
    topo = G.topology(net)
    pl = hw.place(net.sizes, (8, 7), 2, "packed")
    want = [hw.route_table(pl, topo, m) for m in (True, False)]
    monkeypatch.setattr(G, "PAIRS_PER_BLOCK", 7)
    monkeypatch.setattr(G, "MASK_CELLS", 5)
    for m, w in zip((True, False), want):
        got = hw.route_table(pl, topo, m)
        for k in ("packets", "hops_ew", "hops_ns"):
            assert np.array_equal(getattr(got, k), getattr(w, k)), (m, k)


# --------------------------------------------------------------------------- counting

def run_and_count(net, x, steps, policy="packed", mesh=None, npc=3, multicast=True):
    cn = engines.build(net)
    res = engines.run(cn, x, steps, record_spikes=True, seed=3)
    setup = make_setup(net, mesh, npc, policy, multicast)
    act = E.activity_from_phase(res.phases[0])
    return res, setup, setup.counts(act, hw.load_profile("loihi"))


@pytest.mark.parametrize("multicast", [True, False])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_traffic_and_synaptic_events_of_a_run(name, multicast):
    """Packets and hops per sample and sending population equal walking every recorded
    spike to its receivers' cores; synaptic events per projection and direction are the
    run's counters, priced as ops or MACs by what the sender sends."""
    raw = NETWORKS[name]()
    net = load(raw)
    x = inputs(raw, 2, 5)
    res, setup, c = run_and_count(net, x, 17, multicast=multicast)
    want = brute_routes(net, setup.placement.core, setup.placement.width, multicast)
    K = E.KINDS
    spikes = res.phases[0].spikes.sum(axis=0)          # (B, N) messages per neuron
    off = np.concatenate([[0], np.cumsum(net.sizes)])
    L1 = len(net.sizes)
    assert c.hops_exact and c.events.dtype == np.int64
    for l in range(L1):
        sl = slice(off[l], off[l + 1])
        for k, kind in enumerate(("packet", "hop_ew", "hop_ns")):
            assert np.array_equal(c.events[:, K.index(kind), l], spikes[:, sl] @ want[k, sl])
    syn = res.counters["syn_events"]
    coding = E.coding_of(net)
    names = [p.name for p in net.populations]
    for p, pr in enumerate(net.projections):
        for d, sender in ((0, pr.pre), (1, pr.post)):
            kind = "synaptic_mac" if coding.real[names.index(sender)] else "synaptic_op"
            other = "synaptic_op" if kind == "synaptic_mac" else "synaptic_mac"
            assert np.array_equal(c.events[:, K.index(kind), L1 + 2 * p + d], syn[:, p, d])
            assert not c.events[:, K.index(other), L1 + 2 * p + d].any()
    # every non-input neuron updates, every input one is clamped
    inp = np.array([p.role == "input" for p in net.populations])
    upd = res.counters["updates"]
    assert np.array_equal(c.events[:, K.index("neuron_update"), :L1], upd[:, :, 0] * ~inp)
    assert np.array_equal(c.events[:, K.index("input_update"), :L1], upd[:, :, 1] * inp)


def test_if_and_lif_neurons_send_spikes_and_run_no_paper_components():
    net = load(NETWORKS["mixed"]())
    coding = E.coding_of(net)
    for p, real, dec in zip(net.populations, coding.real, coding.decoder):
        if p.neuron.model != "paper":
            assert not real and not dec
    assert coding.real[[p.name for p in net.populations].index("b")]   # encoder none


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_report_breaks_down_by_projection(name):
    """The by-projection breakdown (both directions and weight updates, by label) sums with
    the populations to the total; syn events per projection are the run's; a free and a
    nudged phase add up; the weight updates are every trainable weight and bias once."""
    raw = NETWORKS[name]()
    net = load(raw)
    x, y = inputs(raw, 3, 2), targets(raw, 3, 2)
    r = estimate_energy(net, "loihi", x=x, target=y, steps=12, nudge_steps=6, beta=0.5,
                        neurons_per_core=8)
    d = r.to_dict()
    labels = [pr.label for pr in net.projections]
    assert list(d["by_projection_total"]) == labels == list(d["syn_events_by_projection"])
    assert d["graph"] is True
    assert sum(d["by_projection_total"].values()) == pytest.approx(
        sum(d["by_projection"].values()), rel=1e-12)
    assert sum(d["by_population"].values()) + sum(d["by_projection_total"].values()) == \
        pytest.approx(d["total_j"], rel=1e-12)
    assert len(d["by_projection"]) == 2 * len(labels)   # distinct direction labels
    cn = engines.build(net)
    sess = engines.session(cn, x, seed=net.seed)
    syn = sess.run(12).counters["syn_events"] + \
        sess.run(6, beta=0.5, target=y).counters["syn_events"]
    syn = syn.sum(axis=0)
    assert d["syn_events_by_projection"] == {n: [int(syn[p, 0]), int(syn[p, 1])]
                                             for p, n in enumerate(labels)}
    assert sum(d["phases"][k]["total_j"] for k in ("free", "nudged")) == \
        pytest.approx(d["total_j"], rel=1e-12)
    assert "by projection, both directions" in r.summary()
    # weight updates: every trainable weight (pools have none) and non-input bias, once
    setup = make_setup(net, neurons_per_core=8)
    act = E.activity_from_phase(sess.run(1))
    c = setup.counts(act, hw.load_profile("generic-45nm"), weights=True)
    want = sum(0 if pr.kind == "avgpool2d" else np.size(pr.weights) for pr in net.projections) \
        + sum(p.size for p in net.populations if p.role != "input")
    assert c.events[0, E.KINDS.index("weight_update")].sum() == want


def test_real_valued_baseline_counts_every_synapse():
    net = load(NETWORKS["conv"]())
    topo = G.topology(net)
    act = E.dense_activity(net.sizes, 10, 2, topology=topo)
    for p, pr in enumerate(net.projections):
        n = int(ref.structure(net, pr).sum())
        back = pr.symmetric and net.population(pr.pre).role != "input"
        assert act.counters["syn_events"][0, p].tolist() == [9 * n, 9 * n if back else 0]
    inp = np.array([p.role == "input" for p in net.populations])
    assert np.array_equal(act.counters["updates"][0, :, 0], np.array(net.sizes) * 10 * ~inp)


def test_report_plot_has_a_projection_panel(tmp_path):
    raw = NETWORKS["conv"]()
    r = estimate_energy(load(raw), ["loihi", "truenorth"], x=inputs(raw, 1, 0), steps=8,
                        neurons_per_core=16)
    from neuroemu.energy.report import plot_reports
    fig = plot_reports(r, tmp_path / "e.png")
    assert len(fig.axes) == 6 and (tmp_path / "e.png").stat().st_size > 0
    assert [t.get_text() for t in fig.axes[4].get_yticklabels()] == \
        [pr.label for pr in load(raw).projections]


# --------------------------------------------------------------------------- chains

def chain_dict(fmt):
    rng = np.random.default_rng(4)
    w1, w2 = rng.uniform(-1, 1, (6, 5)).tolist(), rng.uniform(-1, 1, (5, 3)).tolist()
    raw = {"network": {"name": "c", "seed": 1},
           "neuron": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
                      "lam": {"kind": "constant", "value": 0.3},
                      "eps": {"kind": "osa", "nu_bar": 0.05}},
           "population": [{"name": "in", "size": 6, "role": "input"},
                          {"name": "h", "size": 5, "bias": 0.2},
                          {"name": "out", "size": 3, "role": "output"}],
           "projection": [{"pre": "in", "post": "h", "weights": w1},
                          {"pre": "h", "post": "out", "weights": w2}]}
    if fmt == 2:
        raw["network"]["format"] = 2
    else:
        for p in raw["population"]:
            p.pop("role", None)
    return raw


@pytest.mark.parametrize("policy", ["layer", "packed"])
@pytest.mark.parametrize("multicast", [True, False])
def test_chains_are_priced_as_before(policy, multicast):
    """A chain's topology gives the route table and the report of the layer-neighbour model
    bit for bit, and a format-2 chain the same report as its format-1 twin."""
    net = load(chain_dict(1))
    pl = hw.place(net.sizes, (3, 3), 2, policy)
    a = hw.route_table(pl, net.sizes, multicast)
    b = hw.route_table(pl, G.topology(net), multicast)
    for k in ("packets", "hops_ew", "hops_ns"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    names = tuple(p.name for p in net.populations)
    old = E.Setup(names, net.sizes, E.coding_of(net), pl, a)     # the chain model
    new = make_setup(net, (3, 3), 2, policy, multicast)
    x = np.random.default_rng(0).random((2, 6))
    y = np.eye(3)[[0, 2]]
    phases = E.run_network(engines.build(net), x, 9, 4, 0.5, y, 1)
    prof = hw.load_profile("generic-45nm")
    want = E.report(old, phases, prof)
    assert E.report(new, phases, prof) == want and want["graph"] is False
    two = load(chain_dict(2))
    assert E.report(make_setup(two, (3, 3), 2, policy, multicast),
                    E.run_network(engines.build(two), x, 9, 4, 0.5, y, 1), prof) == want


def test_shipped_chain_demo_figure_unchanged():
    """docs/results.md: the demo's network on loihi, priced through the graph code path."""
    net = describe.load(NETLISTS / "mnist-binary.toml")
    x = np.random.default_rng(0).random((1, 784))
    phases = E.run_network(engines.build(net), x, 20)
    setup = make_setup(net)
    names = tuple(p.name for p in net.populations)
    old = E.Setup(names, net.sizes, E.coding_of(net), setup.placement,
                  hw.route_table(setup.placement, net.sizes, True))
    prof = hw.load_profile("loihi")
    assert E.report(setup, phases, prof) == E.report(old, phases, prof)


# --------------------------------------------------------------------------- command line

def test_cli_energy_json_of_a_format_2_netlist(tmp_path, capsys):
    raw = NETWORKS["mixed"]()
    path = describe.save(load(raw), tmp_path / "mixed.toml")
    assert cli_main(["energy", str(path), "--steps", "6", "--batch", "2", "--nudge-steps",
                     "3", "--neurons-per-core", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d["by_projection_total"]) == [pr.label for pr in load(raw).projections]
    assert d["graph"] and d["hops_exact"]
    assert cli_main(["energy", str(path), "--steps", "6", "--neurons-per-core", "4"]) == 0
    assert "by projection, both directions" in capsys.readouterr().out
