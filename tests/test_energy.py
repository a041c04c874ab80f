"""Energy accounting: hand-computed counts and joules, sums of parts, a brute-force XY
router, batching independence, determinism, profile and placement errors, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroemu.engines import compiled as compiler
from neuroemu.energy import accounting as E
from neuroemu import engines
from neuroemu import describe
from neuroemu.energy import hardware as hw
from neuroemu.cli import main as cli_main
from neuroemu.errors import ProfileError

# A profile whose energies are distinct powers of two: every kind is visible in a total.
TEST_PROFILE = """
[profile]
name = "pow2"
description = "test profile"
[noc]
header_bits = 8
flit_bits = 16
word_bits = 8
[energy_pj]
synaptic_op = 1
synaptic_mac = 2
neuron_update = 4
input_update = 8
encoder_update = 16
predictive_update = 32
decoder_update = 64
annealer_update = 128
packet = 256
hop_ew = 512
hop_ns = 1024
weight_update = 2048
"""

# The hand network: input [1, 0] -> input neuron 0 spikes every step (sigma-delta of 1),
# neuron 1 never.  eps = 1 makes s = clip(drive): hidden 0 (bias 1) sits at 1 and spikes
# every step, hidden 1 (bias -5) and the output (bias -5) stay at 0 and never spike.
HAND = {
    "network": {"name": "hand", "seed": 0},
    "neuron": {"encoder": "sigma_delta", "predictive": False, "decoder": "identity",
               "eps": {"kind": "constant", "eps0": 1.0}},
    "population": [{"name": "input", "size": 2},
                   {"name": "hidden", "size": 2, "bias": [1.0, -5.0]},
                   {"name": "output", "size": 1, "bias": -5.0}],
    "projection": [{"pre": "input", "post": "hidden", "weights": [[0.5, 0.5], [0.5, 0.5]]},
                   {"pre": "hidden", "post": "output", "weights": [[0.5], [0.5]]}],
}
HAND_X = np.array([[1.0, 0.0]])


def hand_expected(T):
    """Counts and pJ of the hand network over T steps, on a 2x2 mesh with 2 neurons per
    core placed by layer: input on core 0 (0,0), hidden on core 1 (1,0), output on core 2
    (0,1).  Spike packets are 8 + 2 + 1 = 11 bits (1 flit of 16), words 19 bits (2 flits)."""
    spikes = {"synaptic_op": 2 * (T - 1) + (T - 1),   # step t delivers the spikes of t-1
              "neuron_update": 3 * T, "input_update": 2 * T, "encoder_update": 5 * T,
              "packet": 2 * T,                       # input->core 1, hidden->core 2
              "hop_ew": T + T, "hop_ns": T}          # (0,0)->(1,0); (1,0)->(0,1)
    spike_pj = (spikes["synaptic_op"] * 1 + spikes["neuron_update"] * 4
                + spikes["input_update"] * 8 + spikes["encoder_update"] * 16
                + spikes["packet"] * 256 + spikes["hop_ew"] * 512 + spikes["hop_ns"] * 1024)
    real = {"synaptic_mac": (2 * 2 + 2 * 1 + 1 * 2) * (T - 1), "neuron_update": 3 * T,
            "input_update": 2 * T, "packet": 5 * T,
            "hop_ew": 2 * T + 2 * T + 1 * T,         # every neuron, one hop E-W each
            "hop_ns": 2 * T + 1 * T}                 # hidden <-> output cross one row
    real_pj = (real["synaptic_mac"] * 2 + real["neuron_update"] * 4 + real["input_update"] * 8
               + 2 * (real["packet"] * 256 + real["hop_ew"] * 512 + real["hop_ns"] * 1024))
    return spikes, spike_pj, real, real_pj


@pytest.fixture
def pow2(tmp_path):
    path = tmp_path / "pow2.toml"
    path.write_text(TEST_PROFILE)
    return hw.load_profile(path)


def setup_for(net, mesh, npc, policy="layer", multicast=True):
    names, sizes = tuple(p.name for p in net.populations), net.sizes
    pl = hw.place(sizes, mesh, npc, policy)
    return E.Setup(names, sizes, E.coding_of(net), pl, hw.route_table(pl, sizes, multicast))


def test_hand_network_counts_and_joules(pow2):
    T = 10
    net = describe.from_dict(HAND, "<hand>")
    phases = E.run_network(compiler.build(net), HAND_X, T)
    rep = E.report(setup_for(net, (2, 2), 2), phases, pow2)
    spikes, spike_pj, real, real_pj = hand_expected(T)
    assert rep["packet_bits"] == {"spike": 11, "word": 19}
    for kind in E.KINDS:
        assert rep["counts"][kind] == spikes.get(kind, 0), kind
        assert rep["real_valued_counts"][kind] == real.get(kind, 0), kind
    assert rep["counts"]["messages"] == 2 * T and rep["real_valued_counts"]["messages"] == 5 * T
    assert rep["total_j"] == pytest.approx(spike_pj * 1e-12, rel=1e-12)
    assert rep["real_valued_total_j"] == pytest.approx(real_pj * 1e-12, rel=1e-12)
    assert rep["spike_vs_real_ratio"] == pytest.approx(spike_pj / real_pj, rel=1e-12)
    # the input population: its updates, encoders and the packets it sends
    own = 2 * T * (8 + 16) + T * (256 + 512)  # input updates, encoders; packets, E-W hops
    assert rep["by_population"]["input"] == pytest.approx(own * 1e-12)
    assert rep["by_projection"]["input->hidden"] == pytest.approx(2 * (T - 1) * 1e-12)
    assert rep["neurobench"]["activation_sparsity"] == pytest.approx(1 - 2 * T / (5 * T))
    assert rep["hops_exact"]


def test_training_update_phases_and_weight_updates(pow2):
    # The nudge (beta 0.5, target 1) cannot lift the output over its bias of -5, so the
    # nudged phase continues the free phase's pattern: phases of 10 + 5 steps = 15 steps.
    net = describe.from_dict(HAND, "<hand>")
    phases = E.run_network(compiler.build(net), HAND_X, 10, nudge_steps=5, beta=0.5,
                           target=np.array([[1.0]]))
    rep = E.report(setup_for(net, (2, 2), 2), phases, pow2)
    _, pj15, _, real15 = hand_expected(15)
    _, pj10, _, _ = hand_expected(10)
    assert rep["total_j"] == pytest.approx(pj15 * 1e-12)
    assert rep["real_valued_total_j"] == pytest.approx(real15 * 1e-12)
    assert rep["phases"]["free"]["total_j"] == pytest.approx(pj10 * 1e-12)
    assert rep["phases"]["nudged"]["counts"]["synaptic_op"] == 5 * 3
    assert rep["per_inference_j"] == pytest.approx(pj10 * 1e-12)
    params = (2 * 2 + 2) + (2 * 1 + 1)  # weights and biases
    assert rep["per_training_update_j"] == pytest.approx((pj15 + params * 2048) * 1e-12)


def random_net(sizes, neuron, seed=3):
    from conftest import make_netlist
    return make_netlist(sizes, neuron, seed=seed, bias=0.1, gain=2.0)


SD_PRED_OSA = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.4}, "eps": {"kind": "osa", "nu_bar": 0.05}}
STOCH = {"encoder": "stochastic", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}


def test_totals_equal_sum_of_parts():
    net = random_net((9, 7, 5, 3), SD_PRED_OSA)
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 9)), np.eye(3)[[0, 2, 1]]
    phases = E.run_network(compiler.build(net), x, 23, nudge_steps=11, beta=0.5, target=y)
    prof = hw.load_profile("generic-45nm")
    rep = E.report(setup_for(net, (3, 3), 4, "packed"), phases, prof)
    tot = rep["total_j"]
    assert sum(rep["by_kind"].values()) == pytest.approx(tot, rel=1e-12)
    assert sum(rep["by_population"].values()) + sum(rep["by_projection"].values()) \
        == pytest.approx(tot, rel=1e-12)
    assert sum(p["total_j"] for p in rep["phases"].values()) == pytest.approx(tot, rel=1e-12)
    assert sum(s["total_j"] for s in rep["samples"]) == pytest.approx(tot, rel=1e-12)
    for kind, n in rep["counts"].items():
        assert isinstance(n, int)
        assert sum(s["counts"][kind] for s in rep["samples"]) == n
        assert sum(p["counts"][kind] for p in rep["phases"].values()) == n
    # kernel counters agree with the event kinds
    spikes = sum(a.counters["spikes"].sum() for a in phases)
    assert rep["counts"]["messages"] == spikes
    assert rep["counts"]["synaptic_op"] == sum(a.counters["syn_events"].sum() for a in phases)


def brute_force_hops(spikes, sizes, core, width, multicast):
    """Walk every packet of every recorded spike along X then Y, one link at a time."""
    off = np.concatenate([[0], np.cumsum(sizes)])
    layer_of = np.repeat(np.arange(len(sizes)), sizes)
    ew = np.zeros(len(sizes), dtype=np.int64)
    ns = np.zeros(len(sizes), dtype=np.int64)
    packets = np.zeros(len(sizes), dtype=np.int64)
    for t, b, i in zip(*np.nonzero(spikes)):
        l = layer_of[i]
        dst = [j for m in (l - 1, l + 1) if 1 <= m < len(sizes) for j in range(off[m], off[m + 1])]
        dcores = [core[j] for j in dst]
        if multicast:
            dcores = sorted(set(dcores))
        for d in dcores:
            x, y = core[i] % width, core[i] // width
            tx, ty = d % width, d // width
            packets[l] += 1
            while x != tx:
                x += 1 if tx > x else -1
                ew[l] += 1
            while y != ty:
                y += 1 if ty > y else -1
                ns[l] += 1
    return packets, ew, ns


@pytest.mark.parametrize("policy", ["layer", "packed", "map"])
@pytest.mark.parametrize("multicast", [True, False])
def test_hops_equal_brute_force_router(tmp_path, policy, multicast):
    sizes = (7, 5, 3)
    net = random_net(sizes, STOCH)
    if policy == "map":
        core = np.random.default_rng(1).permutation(np.arange(15) % 8)  # <= 2 per core
        policy = str(tmp_path / "map.npy")
        np.save(policy, core)
    x = np.random.default_rng(2).random((2, 7))
    res = engines.run(compiler.build(net), x, 17, record_spikes=True)
    pl = hw.place(sizes, (3, 3), 2, policy)
    routes = hw.route_table(pl, sizes, multicast)
    act = E.activity_from_phase(res.phases[0])
    c = hw.count_events(act, E.coding_of(net), ("input", "h1", "output"), sizes, pl, routes,
                       hw.load_profile("loihi"))
    K = E.KINDS
    packets, ew, ns = brute_force_hops(res.phases[0].spikes, sizes, pl.core, 3, multicast)
    assert ew.sum() > 0 and ns.sum() > 0
    assert np.array_equal(c.events[:, K.index("packet"), :3].sum(0), packets)
    assert np.array_equal(c.events[:, K.index("hop_ew"), :3].sum(0), ew)
    assert np.array_equal(c.events[:, K.index("hop_ns"), :3].sum(0), ns)
    assert c.hops_exact


def test_hops_without_per_neuron_counts_are_flagged_estimates():
    sizes = (7, 5, 3)
    net = random_net(sizes, STOCH)
    res = engines.run(compiler.build(net), np.full((1, 7), 0.5), 9)
    act = E.activity_from_phase(res.phases[0])
    assert act.messages is None
    prof = hw.load_profile("loihi")
    spread = hw.place(sizes, (3, 3), 2, "layer")       # layers span several cores
    c = hw.count_events(act, E.coding_of(net), "abc", sizes, spread,
                       hw.route_table(spread, sizes), prof)
    assert not c.hops_exact
    whole = hw.place(sizes, (2, 2), 8, "layer")        # one core per layer: hops known
    c = hw.count_events(act, E.coding_of(net), "abc", sizes, whole,
                       hw.route_table(whole, sizes), prof)
    assert c.hops_exact and c.events.dtype == np.int64


def test_counts_independent_of_batching_and_repeatable():
    net = random_net((6, 5, 4), STOCH)
    cn = compiler.build(net)
    x = np.random.default_rng(5).random((4, 6))
    setup = setup_for(net, (2, 2), 8)
    prof = hw.load_profile("loihi")

    def per_sample(xs, ids):
        act = E.run_network(cn, xs, 13, sample_ids=np.asarray(ids), seed=11)[0]
        return setup.counts(act, prof).events

    whole = per_sample(x, [0, 1, 2, 3])
    assert whole[:, E.KINDS.index("synaptic_op")].sum() > 0
    rev = per_sample(x[::-1], [3, 2, 1, 0])[::-1]
    pairs = np.concatenate([per_sample(x[[2, 0]], [2, 0]), per_sample(x[[3, 1]], [3, 1])])
    pairs = pairs[[1, 3, 0, 2]]  # batches held samples 2, 0 | 3, 1
    assert np.array_equal(whole, rev)
    assert np.array_equal(whole, pairs)
    assert np.array_equal(whole, per_sample(x, [0, 1, 2, 3]))  # same run, same counts


def test_dense_activity_matches_a_run_where_every_message_is_nonzero():
    # Continuous neurons with positive weights and biases never sit at 0: every neuron
    # sends a non-zero word every step, so the kernels' counters must equal the dense ones.
    raw = {"network": {"name": "c"}, "neuron": {"encoder": "none"},
           "population": [{"name": "i", "size": 3}, {"name": "h", "size": 4, "bias": 0.3},
                          {"name": "o", "size": 2, "bias": 0.3}],
           "projection": [{"pre": "i", "post": "h", "weights": np.full((3, 4), 0.1).tolist()},
                          {"pre": "h", "post": "o", "weights": np.full((4, 2), 0.1).tolist()}]}
    net = describe.from_dict(raw, "<c>")
    free, more = E.run_network(compiler.build(net), np.full((2, 3), 0.5), 12, nudge_steps=5,
                               beta=0.0)
    for act, dense in ((free, E.dense_activity(net.sizes, 12, 2)),
                       (more, E.dense_activity(net.sizes, 5, 2, t_start=12))):
        for k in ("spikes", "syn_events", "updates"):
            assert np.array_equal(act.counters[k], dense.counters[k]), k
        assert np.array_equal(act.messages, dense.messages)
    # by hand: 11 deliveries in the first phase (nothing was sent before step 1)
    assert free.counters["syn_events"][0].tolist() == [[3 * 4 * 11, 0], [4 * 2 * 11, 4 * 2 * 11]]


def test_shipped_profiles_carry_the_published_numbers():
    assert set(hw.shipped_profiles()) >= {"loihi", "truenorth", "generic-45nm"}
    lo = hw.load_profile("loihi").energy_pj
    assert (lo["synaptic_op"], lo["packet"], lo["hop_ew"], lo["hop_ns"]) == (23.6, 1.7, 3.0, 4.0)
    assert (lo["neuron_update"], lo["input_update"]) == (81.0, 52.0)
    assert hw.load_profile("truenorth").energy_pj["synaptic_op"] == 26.0
    g = hw.load_profile("generic-45nm").energy_pj
    add, mul, sram = 0.9, 3.7, 5.0
    assert g["synaptic_op"] == pytest.approx(sram + add)
    assert g["synaptic_mac"] == pytest.approx(sram + mul + add)
    assert g["annealer_update"] == pytest.approx(8 * sram + 13 * mul + 11 * add)
    assert g["hop_ew"] == g["hop_ns"] == 0.24


@pytest.mark.parametrize("edit, match", [
    (("synaptic_op = 1", "synaptic_op = -1"), r"pow2\.toml: energy_pj\.synaptic_op: must be a "
                                              r"finite non-negative .*\(got -1\)"),
    (("synaptic_op = 1\n", ""), r"pow2\.toml: energy_pj\.synaptic_op: is required"),
    (("hop_ns = 1024", "hop_ns = 1024\nhop_up = 3"),
     r"energy_pj\.hop_up: unknown event kind.*\(got 3\)"),
    (("flit_bits = 16", "flit_bits = 0"),
     r"pow2\.toml: noc\.flit_bits: must be an integer .*\(got 0\)"),
    (("flit_bits = 16", "flit_bits = 2.5"), r"noc\.flit_bits: must be an integer .*\(got 2\.5\)"),
    (("neuron_update = 4", "neuron_update = \"4\""), r"energy_pj\.neuron_update: .*\(got '4'\)"),
    (("[noc]", "[nock]"), r"pow2\.toml: nock: unknown top-level key"),
    (("[noc]", "[noc"), r"pow2\.toml: TOML: cannot parse"),
])
def test_malformed_profile_errors_name_file_field_value(tmp_path, edit, match):
    path = tmp_path / "pow2.toml"
    path.write_text(TEST_PROFILE.replace(*edit))
    with pytest.raises(ProfileError, match=match):
        hw.load_profile(path)


def test_unknown_profile_and_bad_placement():
    with pytest.raises(ProfileError, match=r"unknown profile 'loihi3' \(shipped: .*loihi"):
        hw.load_profile("loihi3")
    with pytest.raises(ProfileError, match=r"--mesh: .*needs 7 cores .* the 2x2 mesh has 4"):
        hw.place((784, 500, 10), (2, 2), 256)
    with pytest.raises(ProfileError, match=r"--mesh: must be WIDTHxHEIGHT .*\(got '4by4'\)"):
        hw.parse_mesh("4by4")
    with pytest.raises(ProfileError, match=r"--neurons-per-core: must be a positive integer "
                                           r"\(got 0\)"):
        hw.place((3, 2), None, 0)


def test_placement_map_errors(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.array([0, 0, 0, 1, 1]))
    with pytest.raises(ProfileError, match=r"m\.npy: core 0: holds 3 neurons, more than "
                                           r"--neurons-per-core 2"):
        hw.place((3, 2), None, 2, str(path))
    np.save(path, np.array([0, 1, 2]))
    with pytest.raises(ProfileError, match=r"must be an integer array of shape \(5,\).*\(3,\)"):
        hw.place((3, 2), None, 2, str(path))


def test_cli_json_and_plot(tmp_path, pow2, capsys):
    net_path = tmp_path / "hand.toml"
    net_path.write_text(
        '[network]\nname = "hand"\n[neuron]\nencoder = "sigma_delta"\n'
        'eps = { kind = "constant", eps0 = 1.0 }\n'
        '[[population]]\nname = "input"\nsize = 2\n'
        '[[population]]\nname = "hidden"\nsize = 2\nbias = [1.0, -5.0]\n'
        '[[population]]\nname = "output"\nsize = 1\nbias = -5.0\n'
        '[[projection]]\npre = "input"\npost = "hidden"\nweights = [[0.5, 0.5], [0.5, 0.5]]\n'
        '[[projection]]\npre = "hidden"\npost = "output"\nweights = [[0.5], [0.5]]\n')
    np.save(tmp_path / "x.npy", HAND_X)
    png = tmp_path / "e.png"
    rc = cli_main(["energy", str(net_path), "--profile", pow2.path, "--mesh", "2x2",
                   "--neurons-per-core", "2", "--steps", "10", "--input",
                   str(tmp_path / "x.npy"), "--json", "--plot", str(png)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    _, spike_pj, _, real_pj = hand_expected(10)
    for key in ("profile", "total_j", "by_kind", "counts", "real_valued_total_j",
                "spike_vs_real_ratio"):
        assert key in out and key in out["samples"][0]
    assert out["total_j"] == pytest.approx(spike_pj * 1e-12)
    assert out["samples"][0]["real_valued_total_j"] == pytest.approx(real_pj * 1e-12)
    assert png.stat().st_size > 10_000


def test_cli_bad_profile_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(TEST_PROFILE.replace("packet = 256", "packet = nan"))
    from conftest import NETLISTS
    rc = cli_main(["energy", str(NETLISTS / "tiny.toml"), "--profile", str(bad), "--steps", "3"])
    assert rc == 2
    assert "bad.toml: energy_pj.packet: must be a finite non-negative" in capsys.readouterr().err


def test_trace_input_gives_the_counts_of_the_run(tmp_path, capsys):
    from neuroemu import record
    net = random_net((6, 5, 4), STOCH)
    cn = compiler.build(net)
    rng = np.random.default_rng(8)
    x, y = rng.random((3, 6)), np.eye(4)[[1, 0, 3]]
    sess = engines.session(cn, x, seed=4)
    path = tmp_path / "t.h5"
    with record.TraceWriter(path, cn, x=x, samples=[0, 2]) as w:
        for k in (5, 6):  # the free phase written as two blocks
            w.append(sess.run(k, name="free", record_spikes=True))
        w.append(sess.run(7, beta=0.5, target=y, name="nudged", record_spikes=True))
    direct = E.run_network(cn, x, 11, nudge_steps=7, beta=0.5, target=y, seed=4)
    with record.open(path) as tr:
        _, phases, _, ids = E.trace_phases(tr)
    assert ids == [0, 2]
    assert [(p.name, p.steps, p.t_start) for p in phases] == [("free", 11, 0), ("nudged", 7, 11)]
    for got, want in zip(phases, direct):
        for k in want.counters:
            assert np.array_equal(got.counters[k], want.counters[k][[0, 2]]), k
        assert np.array_equal(got.messages, want.messages[[0, 2]])
    rc = cli_main(["energy", str(path), "--profile", "loihi", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["sample"] for s in out["samples"]] == [0, 2]
    assert out["steps"] == {"free": 11, "nudged": 7} and out["hops_exact"]
