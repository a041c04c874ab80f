"""What a spiking run is compared with (issue 17): the one-pass quantised ANN's counts against
a slow count that walks every projection's synapses by hand (dense, sparse, conv, pool,
one-to-one), the DRAM spill rule, synaptic events per weight against a hand count, the weight
memory of a training update and the memory footprint by hand, profile errors for bad
[memory] values, the shipped profiles' sourced numbers, the stacked-bar PNG with the ANN bar,
and neuroemu eval's events per weight."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroemu import describe
from neuroemu.cli import main as cli_main
from neuroemu.energy import accounting as E
from neuroemu.energy import ann as A
from neuroemu.energy import graph as G
from neuroemu.energy import hardware as hw
from neuroemu.energy.report import estimate_energy, plot_reports, profiles
from neuroemu.engines import compiled as compiler
from neuroemu.errors import ProfileError
from test_energy import HAND, HAND_X, TEST_PROFILE, hand_expected, setup_for
from test_graph_reference import NETWORKS, network, pop, proj, sparse_weights, uniform

# distinct memory energies, so that every term shows in a total
MEMORY = """
[memory]
sram_read_pj = 3
sram_write_pj = 7
dram_read_pj = 100
dram_write_pj = 300
mac_pj = 0.5
add_pj = 0.25
ann_bits = 8
"""


def profile(tmp_path, extra="", name="mem.toml"):
    path = tmp_path / name
    path.write_text(TEST_PROFILE + MEMORY + extra)
    return hw.load_profile(path)


def load(raw):
    return describe.from_dict(raw, path="<test>")


# --------------------------------------------------------------------------- the reference

def packed_words(n, bits):
    """32-bit words for n values of `bits` bits, filling words one value at a time."""
    words, room = 0, 0
    for _ in range(n):
        if bits > 32:
            words += -(-bits // 32)
            continue
        if room < bits:
            words, room = words + 1, 32
        room -= bits
    return words


def slow_synapses(net, pr):
    """(MACs or pool adds) of one forward pass of a projection, by walking its definition."""
    pre, post = net.population(pr.pre), net.population(pr.post)
    if pr.kind == "dense":
        return sum(1 for _ in range(pre.size) for _ in range(post.size))
    if pr.kind == "sparse":
        return len(pr.indices[0])
    if pr.kind == "one_to_one":
        return sum(1 for _ in range(pre.size))
    ci, h, w = pre.dims
    co, ho, wo = post.dims
    kh, kw = pr.param("kernel")
    sy, sx = pr.param("stride")
    py, px = pr.param("padding") if pr.kind == "conv2d" else (0, 0)
    count = 0
    for o in range(co):
        for oy in range(ho):
            for ox in range(wo):
                for c in (range(ci) if pr.kind == "conv2d" else [o]):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sy - py + ky, ox * sx - px + kx
                            count += 0 <= iy < h and 0 <= ix < w
    return count


def slow_ann(net, bits, onchip_bytes=None):
    """The one-pass ANN's counts from the netlist, loop by loop (docs/energy-model.md)."""
    macs = adds = weights = pwords = reads = writes = 0
    for pr in net.projections:
        n = slow_synapses(net, pr)
        if pr.kind == "avgpool2d":
            adds += n
        else:
            macs += n
            weights += np.size(pr.weights)
            pwords += packed_words(np.size(pr.weights), bits)
        reads += packed_words(net.population(pr.pre).size, bits)
    biases = 0
    for p in net.populations:
        writes += packed_words(p.size, bits)
        if p.role != "input":
            adds += p.size
            biases += p.size
            pwords += packed_words(p.size, bits)
    on = pwords if onchip_bytes is None else min(pwords, onchip_bytes // 4)
    return {"macs": macs, "adds": adds, "weights": weights, "biases": biases,
            "param_words": pwords, "weight_sram_reads": on, "weight_dram_reads": pwords - on,
            "activation_reads": reads, "activation_writes": writes, "bits": bits}


def small_nets():
    rng = np.random.default_rng(7)
    dense = network([pop("x", "input", size=5), pop("h", size=4, bias=0.1),
                     pop("y", "output", size=3)],
                    [proj("x", "h", uniform(rng, (5, 4), 1.0)),
                     proj("h", "y", uniform(rng, (4, 3), 1.0))])
    sparse = network([pop("x", "input", size=9), pop("y", "output", size=7)],
                     [proj("x", "y", sparse_weights(rng, 9, 7, 0.3, 1.0), kind="sparse")])
    pool = network([pop("x", "input", shape=(2, 6, 6)), pop("p", shape=(2, 3, 3)),
                    pop("y", "output", size=2)],
                   [proj("x", "p", kind="avgpool2d", kernel_size=2, stride=2),
                    proj("p", "y", uniform(rng, (18, 2), 1.0))])
    return {"dense": dense, "sparse": sparse, "pool": pool,
            **{k: f() for k, f in sorted(NETWORKS.items())}}


NETS = small_nets()


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("bits", [1, 4, 7, 8, 33])
def test_ann_counts_are_the_slow_count(name, bits):
    net = load(NETS[name])
    got = A.ann_counts(G.topology(net), bits).to_dict()
    assert got == slow_ann(net, bits)
    # the MACs of a one-pass ANN are the synapses of every weighted projection, once
    assert got["macs"] + got["adds"] - got["biases"] == sum(
        slow_synapses(net, pr) for pr in net.projections)


def test_conv_macs_are_kernel_times_outputs_without_padding():
    """A conv without padding: kernel x output positions x in- and out-channels."""
    raw = network([pop("x", "input", shape=(3, 9, 8)), pop("y", "output", shape=(4, 4, 3))],
                  [proj("x", "y", np.ones((4, 3, 3, 2)).tolist(), kind="conv2d",
                        kernel_size=[3, 2], stride=[2, 3], padding=[0, 0])])
    c = A.ann_counts(G.topology(load(raw)), 8)
    assert c.macs == (3 * 2) * (4 * 3) * 3 * 4 and c.weights == 4 * 3 * 3 * 2


def test_dram_spill_with_tiny_onchip_memory(tmp_path):
    """Parameters past onchip_bytes are read from DRAM; the energy is the sum by hand."""
    net = load(NETS["dense"])
    topo = G.topology(net)
    prof = profile(tmp_path, "onchip_bytes = 12\n")     # 3 words on chip
    base, why = A.ann_baseline(topo, prof)
    want = slow_ann(net, 8, 12)
    assert why == "" and base["counts"] == want
    assert want["weight_sram_reads"] == 3 and want["weight_dram_reads"] == want["param_words"] - 3
    assert not base["weights_fit_onchip"]
    pj = (want["macs"] * 0.5 + want["adds"] * 0.25 + 3 * 3 + want["weight_dram_reads"] * 100
          + want["activation_reads"] * 3 + want["activation_writes"] * 7)
    assert base["total_j"] == pytest.approx(pj * 1e-12, rel=1e-12)
    roomy, _ = A.ann_baseline(topo, profile(tmp_path, "onchip_bytes = 1000000\n", "r.toml"))
    assert roomy["weights_fit_onchip"] and roomy["counts"]["weight_dram_reads"] == 0
    # a spill with no DRAM figure is an error naming the field
    no_dram = profile(tmp_path, "onchip_bytes = 12\n", "nd.toml")
    no_dram = hw.Profile(**{**no_dram.__dict__, "memory": {
        k: v for k, v in no_dram.memory.items() if k != "dram_read_pj"}})
    with pytest.raises(ProfileError, match=r"nd\.toml: memory\.dram_read_pj: is required: "
                                           r"\d+ words .*memory\.onchip_bytes = 12"):
        A.ann_baseline(topo, no_dram)


def test_ann_width_scales_mac_squared_and_add_linearly(tmp_path):
    net = load(NETS["dense"])
    topo = G.topology(net)
    prof = profile(tmp_path)
    b16, _ = A.ann_baseline(topo, prof, 16)
    assert b16["mac_pj"] == 0.5 * 4 and b16["add_pj"] == 0.25 * 2
    assert b16["counts"] == slow_ann(net, 16)
    with pytest.raises(ProfileError, match=r"--ann-bits: must be an integer in \[1, 64\] "
                                           r"\(got 65\)"):
        A.ann_baseline(topo, prof, 65)


def test_hand_network_report_ann_and_events_per_weight(tmp_path):
    """The 2-2-1 hand network over T steps: input neuron 0 and hidden neuron 0 spike every
    step, nothing else does, so the free phase makes 2(T-1) + (T-1) synaptic events on 6
    weights; its 8-bit ANN: 6 MACs, 3 bias adds, 4 parameter words, 2 activation words read
    and 3 written."""
    T = 10
    net = load(HAND)
    phases = E.run_network(compiler.build(net), HAND_X, T)
    rep = E.report(setup_for(net, (2, 2), 2), phases, profile(tmp_path))
    assert rep["weights"] == 6
    assert rep["syn_events_per_inference"] == 3 * (T - 1)
    assert rep["syn_events_per_weight"] == 3 * (T - 1) / 6
    assert rep["spikes_per_inference"] == 2 * T
    c = rep["ann"]["counts"]
    assert (c["macs"], c["adds"], c["param_words"], c["activation_reads"],
            c["activation_writes"]) == (6, 3, 4, 2, 3)
    ann_pj = 6 * 0.5 + 3 * 0.25 + 4 * 3 + 2 * 3 + 3 * 7
    assert rep["ann_total_j"] == pytest.approx(ann_pj * 1e-12, rel=1e-12)
    _, pj, _, _ = hand_expected(T)
    assert rep["spike_vs_ann_ratio"] == pytest.approx(pj / ann_pj, rel=1e-12)
    assert rep["break_even"]["range"] == [0.15, 1.38]
    assert rep["synapses"] == 6 and rep["syn_events_per_synapse"] == rep["syn_events_per_weight"]
    # footprint by hand: inputs value + encoder (2 each), spiking non-inputs state,
    # accumulator and encoder (3 each): 2*2 + 3*3 = 13 state words, 6 weights, 3 biases
    fp = rep["neurobench"]["memory_footprint"]
    assert (fp["weights_bytes"], fp["biases_bytes"], fp["state_bytes"]) == (24, 12, 52)
    assert fp["bytes"] == 88 and rep["neurobench"]["parameters"] == 9


def test_training_update_prices_every_phase_and_the_weight_memory(tmp_path):
    """Free 10 + nudged 5 steps of the hand network; 9 parameters (6 weights, 3 biases), one
    32-bit word each, read and written: on chip 9 x (3 + 7) pJ; with 16 bytes on chip, 4
    words there and 5 in DRAM at 100 + 300 pJ."""
    net = load(HAND)
    phases = E.run_network(compiler.build(net), HAND_X, 10, nudge_steps=5, beta=0.5,
                           target=np.array([[1.0]]))
    _, pj15, _, _ = hand_expected(15)
    _, pj10, _, _ = hand_expected(10)
    for extra, mem_pj in (("", 9 * (3 + 7)), ("onchip_bytes = 16\n", 4 * 10 + 5 * 400)):
        rep = E.report(setup_for(net, (2, 2), 2), phases,
                       profile(tmp_path, extra, f"t{len(extra)}.toml"))
        t = rep["training"]
        assert t["phases_j"]["free"] == pytest.approx(pj10 * 1e-12)
        assert t["phases_j"]["free"] + t["phases_j"]["nudged"] == pytest.approx(pj15 * 1e-12)
        assert t["weight_update_ops"] == 9 and t["weight_update_ops_j"] == pytest.approx(
            9 * 2048e-12)
        assert t["weight_memory"]["parameters"] == 9
        assert t["weight_memory_j"] == pytest.approx(mem_pj * 1e-12)
        want = (pj15 + 9 * 2048 + mem_pj) * 1e-12
        assert rep["per_training_update_j"] == pytest.approx(want, rel=1e-12)
        assert t["total_j"] == rep["per_training_update_j"]
    # a profile without [memory]: the update is as before, the weight memory not priced
    plain = tmp_path / "plain.toml"
    plain.write_text(TEST_PROFILE)
    rep = E.report(setup_for(net, (2, 2), 2), phases, hw.load_profile(plain))
    assert rep["per_training_update_j"] == pytest.approx((pj15 + 9 * 2048) * 1e-12)
    assert rep["training"]["weight_memory"] is None and rep["ann"] is None
    assert "gives no memory.sram_read_pj" in rep["ann_note"]


@pytest.mark.parametrize("line,field,shown", [
    ("sram_read_pj = -1", "memory.sram_read_pj", "-1"),
    ("mac_pj = 2e6", "memory.mac_pj", "2e+06"),
    ("onchip_bytes = 1.5", "memory.onchip_bytes", "1.5"),
    ("ann_bits = 0", "memory.ann_bits", "0.0"),     # hardware.py shows it as read
    ("sram_reed_pj = 1", "memory.sram_reed_pj", "1"),
    ('add_pj = "cheap"', "memory.add_pj", "'cheap'"),
])
def test_bad_memory_values_are_named(tmp_path, line, field, shown):
    path = tmp_path / "bad.toml"
    path.write_text(TEST_PROFILE + "[memory]\n" + line + "\n")
    with pytest.raises(ProfileError) as exc:
        profiles([str(path)])
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {field}: ") and f"(got {shown})" in msg


def test_cli_bad_memory_exits_2_before_running(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(TEST_PROFILE + "[memory]\nonchip_bytes = 0.5\n")
    assert cli_main(["energy", "tiny", "--steps", "3", "--profile", str(path)]) == 2
    assert "bad.toml: memory.onchip_bytes: must be a whole number" in capsys.readouterr().err


def test_shipped_profiles_have_sourced_memory_and_latency():
    names = {"loihi", "truenorth", "generic-45nm", "spinnaker2"}    # the TOML profiles
    assert names <= set(hw.shipped_profiles())
    for n in names:
        p = hw.load_profile(n)
        A.check_memory(p)
        for key in p.memory:
            assert key in p.sources, (n, key)
        for key in p.latency_ns:
            assert f"latency_ns.{key}" in p.sources, (n, key)
        for kind in p.energy_pj:
            assert kind in p.sources or p.energy_pj[kind] == 0.0 or n == "generic-45nm"
    loihi = hw.load_profile("loihi")
    assert loihi.memory["onchip_bytes"] == 16 * 2 ** 20
    assert loihi.latency_ns["hop_ew"] == 4.1 and loihi.latency_ns["hop_ns"] == 6.5
    g = hw.load_profile("generic-45nm").memory
    assert (g["sram_read_pj"], g["dram_read_pj"], g["mac_pj"]) == (5.0, 640.0, 0.2 + 0.03)
    assert hw.load_profile("spinnaker2").energy_pj["synaptic_op"] == 10.0


def test_json_carries_the_baseline_and_the_png_has_its_bar(tmp_path, capsys):
    png = tmp_path / "e.png"
    assert cli_main(["energy", "tiny", "--steps", "12", "--nudge-steps", "3", "--profile",
                     "generic-45nm", "--json", "--plot", str(png)]) == 0
    rep = json.loads(capsys.readouterr().out)
    for key in ("ann_total_j", "spike_vs_ann_ratio", "syn_events_per_weight", "break_even",
                "training"):
        assert rep[key] is not None, key
    assert rep["spike_vs_ann_ratio"] == pytest.approx(rep["per_inference_j"] / rep["ann_total_j"])
    assert rep["ann"]["counts"]["macs"] == 4 * 3 + 3 * 2     # tiny: 4-3-2 dense
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = plot_reports([rep])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "8-bit ANN\none pass" in labels
    drawn = [p.get_height() for p in fig.axes[0].patches if p.get_x() > 1.5]
    assert sum(drawn) == pytest.approx(rep["ann_total_j"] / 1e-9)     # nJ, per inference


def test_text_summary_lines(tmp_path, capsys):
    assert cli_main(["energy", "tiny", "--steps", "12", "--nudge-steps", "3", "--profile",
                     "loihi", "--ann-bits", "4"]) == 0
    out = capsys.readouterr().out
    assert "ANN baseline (one pass, 4-bit weights and activations)" in out
    assert "per weight (18 weights); published break-even 0.15-1.38 per synapse" in out
    assert "training update per sample: free " in out and "weight memory" in out
    assert "memory footprint" in out


def test_evaluate_events_per_weight_by_hand():
    from neuroemu.learn.evaluate import evaluate
    T = 10
    res = evaluate(load(HAND), HAND_X, np.array([0]), steps=T)
    assert res.weights == 6 and res.syn_events_per_weight == 3 * (T - 1) / 6
    rep = estimate_energy(load(HAND), "loihi", x=HAND_X, steps=T, mesh="2x2",
                          neurons_per_core=2)
    assert rep.syn_events_per_weight == res.syn_events_per_weight
    from neuroemu.cli.eval import per_inference_line
    assert per_inference_line(res) == ("per inference: 20.0 spikes, 4.5 synaptic events per "
                                       "weight (6 weights; published break-even 0.15-1.38 per "
                                       "synapse, Dampfhoffer et al. 2023)")


def test_conv_events_per_synapse_and_per_weight():
    """A conv weight serves a synapse at every output position: events per weight and per
    synapse differ by the sharing, each against a count of its own."""
    from test_graph_reference import inputs
    raw = NETS["conv"]
    net = load(raw)
    rep = estimate_energy(net, "loihi", x=inputs(raw, 2, 0), steps=9).to_dict()
    weighted = [pr for pr in net.projections if pr.kind != "avgpool2d"]
    events = sum(sum(rep["syn_events_by_projection"][pr.label]) for pr in weighted) / 2
    weights = sum(np.size(pr.weights) for pr in weighted)
    synapses = sum(slow_synapses(net, pr) for pr in weighted)
    assert synapses > weights and (rep["weights"], rep["synapses"]) == (weights, synapses)
    assert rep["syn_events_per_weight"] == pytest.approx(events / weights, rel=1e-12)
    assert rep["syn_events_per_synapse"] == pytest.approx(events / synapses, rel=1e-12)
