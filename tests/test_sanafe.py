"""SANA-FE architectures and the cross-check: reading architecture files (values, errors),
the profile mapping, per-unit counts against a brute-force count of a recorded raster, the
energy per component by hand, the export and its replay, and SANA-FE itself run on the export
of small networks: equal counts and energy per component within 2%."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from neuroemu import describe, engines
from neuroemu.cli import main as cli_main
from neuroemu.energy import hardware as hw
from neuroemu.energy import traffic as tr
from neuroemu.energy.accounting import activity_from_phase
from neuroemu.energy.graph import reach
from neuroemu.energy.report import make_setup
from neuroemu.energy.sanafe_arch import arch_energy, read_arch
from neuroemu.errors import ProfileError
from neuroemu.interop import sanafe_export as sx

import sanafe  # noqa: F401  -- in the test extra: the cross-check runs wherever the suite runs
SANAFE_LOIHI = str(resources.files("sanafe.examples") / "loihi.yaml")

# Our own minimal architecture: energies (pJ) and latencies (ns) distinct powers of two.
ARCH = """
architecture:
  name: pow2
  attributes: {{topology: mesh, width: {w}, height: {h}, link_buffer_size: 4,
               sync_model: fixed, latency_sync: 1.0e-6}}
  tile:
    - name: t[0..{tiles}]
      attributes: {{energy_east_hop: 64.0e-12, energy_west_hop: 128.0e-12,
                   energy_north_hop: 256.0e-12, energy_south_hop: 512.0e-12,
                   latency_east_hop: 64.0e-9, latency_west_hop: 128.0e-9,
                   latency_north_hop: 256.0e-9, latency_south_hop: 512.0e-9}}
      core:
        - name: c[0..{cores}]
          attributes: {{buffer_position: {buf}, buffer_inside_unit: false,
                       max_neurons_supported: 64}}
          axon_in:
            - name: ain
              attributes: {{energy_message_in: 16.0e-12, latency_message_in: 16.0e-9}}
          synapse:
            - name: dense_syn
              attributes: {{model: current_based, energy_process_spike: 8.0e-12,
                           latency_process_spike: 8.0e-9}}
            - name: conv_syn
              attributes: {{model: current_based, energy_process_spike: 1024.0e-12,
                           latency_process_spike: 1024.0e-9}}
          dendrite:
            - name: dend
              attributes: {{model: accumulator, energy_update: {dend}e-12,
                           latency_update: {dend}e-9}}
          soma:
            - name: lif
              attributes: {{model: leaky_integrate_fire, energy_access_neuron: 1.0e-12,
                           latency_access_neuron: 1.0e-9, energy_update_neuron: 2.0e-12,
                           latency_update_neuron: 2.0e-9, energy_spike_out: 4.0e-12,
                           latency_spike_out: 4.0e-9}}
            - name: inp[0..63]
              attributes: {{model: input, energy_access_neuron: 0.0, latency_access_neuron: 0.0,
                           energy_update_neuron: 0.0, latency_update_neuron: 0.0,
                           energy_spike_out: 0.0, latency_spike_out: 0.0}}
          axon_out:
            - name: aout
              attributes: {{energy_message_out: 32.0e-12, latency_message_out: 32.0e-9}}
"""


def arch_file(tmp_path, w=3, h=3, cores=1, buf="soma", dend="0.0", name=None):
    name = name or f"pow2-{buf}.yaml"
    path = tmp_path / name
    path.write_text(ARCH.format(w=w, h=h, tiles=w * h - 1, cores=cores - 1, buf=buf, dend=dend))
    return path


# The two-neuron chain: input (core 0, tile (0,0)) -> output (core 1, tile (1,0)); the raster
# is given by hand: input spikes at steps 1 and 3, output at step 2.
CHAIN = {"network": {"name": "chain", "seed": 0},
         "neuron": {"encoder": "sigma_delta", "predictive": False, "decoder": "identity",
                    "eps": {"kind": "constant", "eps0": 1.0}},
         "population": [{"name": "input", "size": 1}, {"name": "output", "size": 1}],
         "projection": [{"pre": "input", "post": "output", "weights": [[0.5]]}]}
CHAIN_RASTER = np.array([[[1, 0]], [[0, 1]], [[1, 0]]], dtype=bool)

# Every projection kind (docs/netlist-format.md's example, smaller weights' seeds aside).
GRAPH = {
    "network": {"name": "graph", "format": 2, "seed": 1},
    "neuron": {"encoder": "sigma_delta", "predictive": False, "decoder": "identity",
               "eps": {"kind": "osa", "nu_bar": 0.05}},
    "population": [
        {"name": "image", "shape": [1, 8, 8], "role": "input"},
        {"name": "cue", "size": 4, "role": "input"},
        {"name": "conv", "shape": [4, 8, 8], "bias": 0.0},
        {"name": "pool", "shape": [4, 4, 4],
         "neuron": {"model": "lif", "leak": 0.9, "threshold": 1.0, "reset": "subtract",
                    "v0": 0.0}},
        {"name": "relay", "shape": [64], "neuron": {"model": "if", "threshold": 0.5,
                                                     "reset": "zero"}},
        {"name": "out", "size": 10, "role": "output"}],
    "projection": [
        {"pre": "image", "post": "conv", "kind": "conv2d", "kernel_size": 3, "padding": 1,
         "weights": {"init": "glorot_uniform"}},
        {"pre": "conv", "post": "pool", "kind": "avgpool2d", "kernel_size": 2},
        {"pre": "pool", "post": "relay", "kind": "one_to_one", "symmetric": False,
         "weights": 0.5},
        {"name": "lateral", "pre": "relay", "post": "relay", "kind": "sparse",
         "symmetric": False, "weights": {"init": "glorot_uniform", "density": 0.1}},
        {"pre": "relay", "post": "out", "kind": "sparse",
         "weights": {"row": [0, 5, 63], "col": [2, 9, 0], "data": [0.5, -0.25, 0.125]}},
        {"pre": "cue", "post": "out", "weights": {"init": "glorot_uniform"}}],
}


def recorded(net, steps, batch, npc, seed=0):
    """A run with recorded spikes: (setup, phase)."""
    cn = engines.build(net)
    x = np.random.default_rng(seed).random((batch, cn.n_in))
    ph = engines.session(cn, x).run(steps, record_spikes=True)
    return make_setup(net, None, npc, "layer"), ph


# --------------------------------------------------------------------------- reading

def test_shipped_loihi_holds_sanafes_calibrated_numbers():
    ours, theirs = hw.load_profile("sanafe-loihi"), hw.load_profile(SANAFE_LOIHI)
    a, b = ours.arch, theirs.arch
    assert (a.width, a.height, a.tiles, a.cores_per_tile, a.max_neurons, a.buffer) == \
        (8, 4, 32, 4, 1024, "before_soma") == (b.width, b.height, b.tiles, b.cores_per_tile,
                                               b.max_neurons, b.buffer)
    assert a.hop_energy == b.hop_energy and a.hop_latency == b.hop_latency and a.sync == b.sync
    for x, y in ((a.axon_in, b.axon_in), (a.axon_out, b.axon_out)):
        assert (x.energy, x.latency) == (y.energy, y.latency)
    for us, them in ((a.synapses, b.synapses), (a.somas, b.somas), (a.dendrites, b.dendrites)):
        assert [(u.model, u.count, u.energy, u.latency) for u in us] == \
            [(u.model, u.count, u.energy, u.latency) for u in them]
    # the event-kind mapping, by hand from the file's numbers (pJ)
    e = ours.energy_pj
    assert e["synaptic_op"] == pytest.approx(35.5) and e["packet"] == pytest.approx(111.0)
    assert e["neuron_update"] == pytest.approx(51.2 + 21.6) and e["input_update"] == 0
    assert (e["hop_ew"], e["hop_ns"]) == (pytest.approx(3.0), pytest.approx(4.2))
    assert ours.latency_ns["synaptic_op"] == pytest.approx(3.8)
    assert a.barrier_s(7) == pytest.approx(1.4e-6) and a.barrier_s(29) == pytest.approx(1.8e-6)
    assert a.barrier_s(0) == pytest.approx(0.6e-6)
    assert a.synapse_for("conv2d").name == "conv_synapse"
    assert a.synapse_for("dense").name == "dense_synapse"


def test_shipped_truenorth_prices_merollas_synaptic_event():
    p = hw.load_profile("sanafe-truenorth")
    assert p.energy_pj["synaptic_op"] == pytest.approx(26.0)
    assert sum(v for k, v in p.energy_pj.items() if k != "synaptic_op"
               and k != "synaptic_mac") == 0
    assert (p.arch.width, p.arch.height, p.arch.max_neurons) == (64, 64, 256)
    assert p.arch.barrier_s(100) == pytest.approx(1e-3)


@pytest.mark.parametrize("edit, field, value", [
    (("energy_message_out: 32.0e-12", "energy_message_out: -1.0"),
     "core[0].axon_out[0].attributes.energy_message_out", "-1.0"),
    (("buffer_position: soma", "buffer_position: axon_out"),
     "core[0].attributes.buffer_position", "axon_out"),
    (("latency_spike_out: 4.0e-9}", "}"), "soma[0].attributes.latency_spike_out", None),
    (("width: 3", "width: 1"), "architecture.tile", "9"),
    (("model: accumulator,", "model: accumulator, update_every_timestep: true,"),
     "dendrite[0].attributes.update_every_timestep", "True"),
])
def test_bad_architecture_names_file_field_value(tmp_path, edit, field, value):
    path = arch_file(tmp_path)
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(ProfileError, match=rf"pow2-soma\.yaml: .*{re.escape(field)}: ") as info:
        hw.load_profile(path)
    if value is not None:
        assert f"(got {value}" in str(info.value) or f"(got '{value}" in str(info.value)


def test_heterogeneous_tiles_and_bad_yaml_refused(tmp_path):
    path = arch_file(tmp_path)
    text = path.read_text().replace("    - name: t[0..8]", "    - name: t[0..7]")
    tile = text[text.index("    - name: t[0..7]"):]
    path.write_text(text + tile.replace("t[0..7]", "u").replace("64.0e-12", "1.0e-12", 1))
    with pytest.raises(ProfileError, match=r"architecture\.tile\[1\]: differs from"):
        read_arch(path)
    path.write_text("architecture: [unclosed")
    with pytest.raises(ProfileError, match=r"pow2-soma\.yaml: YAML: cannot parse"):
        read_arch(path)


# --------------------------------------------------------------------------- counting

def brute_force(net, setup, raster, arch, last_step):
    """Walk every spike of the raster: its messages (one per destination core), their hops by
    direction, its synaptic events, and every neuron's updates (fired, or received at t - 1)."""
    from neuroemu.energy.graph import topology
    topo = topology(net)
    core, W = setup.placement.core, setup.placement.width
    off, sizes = topo.off, topo.sizes
    T, B, N = raster.shape
    pop = np.repeat(np.arange(len(sizes)), sizes)
    out = []
    for b in range(B):
        c = dict(messages=0, syn=0, hops=np.zeros(4, int), updated=0)
        received = np.zeros((T + 1, N), bool)
        for t in range(T):
            for i in np.flatnonzero(raster[t, b]):
                l, li = pop[i], i - off[pop[i]]
                dest = set()
                for p, d, r in topo.deliveries_from(l):
                    _, j = reach(topo.links[p], d, li, li + 1, sizes[r])
                    j = j + off[r]
                    received[t + 1, j] = True
                    dest |= set(core[j].tolist())
                    if last_step == "deliver" or t < T - 1:
                        c["syn"] += j.size
                for dc in dest:
                    c["messages"] += 1
                    x0, y0, x1, y1 = core[i] % W, core[i] // W, dc % W, dc // W
                    c["hops"] += [max(x1 - x0, 0), max(x0 - x1, 0), max(y1 - y0, 0),
                                  max(y0 - y1, 0)]
        c["updated"] = int((received[:T] | raster[:, b]).sum() - 0)
        out.append(c)
    return out


def test_unit_counts_equal_a_brute_force_walk_of_every_spike(tmp_path):
    net = describe.from_dict(GRAPH, "<graph>")
    setup, ph = recorded(net, 6, 2, 64)
    arch = read_arch(arch_file(tmp_path))
    fan = tr.fanout(setup.topology, tr.hw_map(setup.placement))
    for last in ("deliver", "drop"):
        uc = tr.unit_counts(tr.step_counts(fan, ph.spikes, last), fan, arch)
        ref = brute_force(net, setup, ph.spikes, arch, last)
        for b, c in enumerate(ref):
            assert uc.messages[b] == c["messages"] and uc.syn_events[b] == c["syn"]
            assert [uc.hops[d][b] for d in tr.DIRS] == c["hops"].tolist()
            assert uc.spikes[b] == ph.spikes[:, b].sum()
        if last == "drop":      # neuroemu's own kernel counters
            assert uc.syn_events.tolist() == ph.counters["syn_events"].sum(axis=(1, 2)).tolist()
    # updates: every neuron-step that fired or received, by soma unit (inputs on 'inp')
    lif = list(uc.somas).index("lif")
    inputs = np.zeros(sum(net.sizes), bool)
    inputs[:64 + 4] = True
    for b, c in enumerate(ref):
        fired_inputs = ph.spikes[:, b, inputs].sum()
        assert uc.updated[b].sum() == c["updated"] and uc.updated[b, lif] == \
            c["updated"] - fired_inputs


def test_chain_energy_per_component_by_hand(tmp_path):
    net = describe.from_dict(CHAIN, "<chain>")
    setup = make_setup(net, (2, 1), 1, "layer")
    arch = read_arch(arch_file(tmp_path, w=2, h=1))
    fan = tr.fanout(setup.topology, tr.hw_map(setup.placement))
    for last, syn_events in (("deliver", 2), ("drop", 1)):
        uc = tr.unit_counts(tr.step_counts(fan, CHAIN_RASTER, last), fan, arch)
        e = arch_energy(arch, uc)
        # output soma: 3 accesses, 1 update (step 2: input at step 1, and it fired), 1 spike
        assert e["soma"][0] == pytest.approx((3 * 1 + 1 * 2 + 1 * 4) * 1e-12)
        assert e["synapse"][0] == pytest.approx(syn_events * 8e-12)
        # 2 messages x (out 32 + in 16) + 2 east hops x 64
        assert e["network"][0] == pytest.approx((2 * 48 + 2 * 64) * 1e-12)
        assert e["dendrite"][0] == 0
    arch = read_arch(arch_file(tmp_path, w=2, h=1, buf="dendrite", dend="512.0"))
    always = tr.always_updated(arch, setup.topology, fan.hw)
    assert always.tolist() == [False, True]
    uc = tr.unit_counts(tr.step_counts(fan, CHAIN_RASTER, "deliver", always=always), fan, arch)
    e = arch_energy(arch, uc)
    # per neuron and step, the input neuron's too (every mapped neuron has a dendrite)
    assert e["dendrite"][0] == pytest.approx(2 * 3 * 512e-12)
    # the dendrite hands the soma a current every step: updated every step
    assert e["soma"][0] == pytest.approx((3 * 1 + 3 * 2 + 1 * 4) * 1e-12)


# --------------------------------------------------------------------------- export

def test_export_replay_round_trip_and_mapping(tmp_path):
    net = describe.from_dict(GRAPH, "<graph>")
    setup, ph = recorded(net, 5, 2, 64)
    arch = read_arch(arch_file(tmp_path))
    fan = tr.fanout(setup.topology, tr.hw_map(setup.placement))
    path = sx.export_snn(tmp_path / "g.yaml", setup.topology, fan, arch, ph.spikes, [7, 9])
    r, ids, rep = sx.read_replay(path)
    assert ids == [7, 9] and np.array_equal(r, ph.spikes)
    assert rep["inputs"] == list(range(68)) and [g for g, _ in rep["groups"]] == \
        ["image", "cue", "conv", "pool", "relay", "out"]
    text = path.read_text()
    assert "  - conv.0..63: [core: 6.0, soma: lif, synapse: conv_syn]" in text   # tile (2,0)
    assert "  - image.5: [core: 0.0, soma: \"inp[5]\", synapse: dense_syn]" in text
    assert "    - relay -> relay: [type: sparse, source_target_pairs: [[" in text
    with pytest.raises(Exception, match="neuroemu_replay"):
        (tmp_path / "bad.yaml").write_text("network: {}\n")
        sx.read_replay(tmp_path / "bad.yaml")


# --------------------------------------------------------------------------- SANA-FE itself

def check_agreement(setup, ph, arch_path, tmp_path, last_step="deliver"):
    profile = hw.load_profile(arch_path)
    counts = setup.counts(activity_from_phase(ph), profile)
    ours = sx.arch_side(setup, counts, profile, ph.spikes, last_step=last_step)
    fan = tr.fanout(setup.topology, tr.hw_map(setup.placement))
    snn = sx.export_snn(tmp_path / "replay.yaml", setup.topology, fan, profile.arch, ph.spikes)
    theirs = sx.sanafe_side(sx.run_sanafe(snn, arch_path, timing_model="simple"))
    return ours, theirs, sx.agreement(ours, theirs)


@pytest.mark.parametrize("arch", ["sanafe", "shipped", "pow2", "pow2-dendrite"])
def test_sanafe_agrees_on_counts_and_energy_per_component(tmp_path, arch):
    # tiny on a 3x3 mesh, 2 neurons per core: every hop direction is used
    net = describe.load("tiny")
    setup, ph = recorded(net, 12, 2, 2)
    path = {"sanafe": SANAFE_LOIHI, "shipped": str(hw.shipped_profile_path("sanafe-loihi")),
            "pow2": str(arch_file(tmp_path, dend="2048.0")),
            "pow2-dendrite": str(arch_file(tmp_path, buf="dendrite", dend="2048.0"))}[arch]
    ours, theirs, ag = check_agreement(setup, ph, path, tmp_path)
    for a, b in zip(ours["per_sample"], theirs["per_sample"]):
        assert {k: a[k] for k in sx.SIDE_KEYS} == {k: b[k] for k in sx.SIDE_KEYS}
        for k in ("synapse", "dendrite", "soma", "network", "total"):
            assert a["energy_j"][k] == pytest.approx(b["energy_j"][k], rel=0.02, abs=1e-18), k
        # SANA-FE's simple timing model is the overlapped form of neuroemu's latency model
        assert a["overlap_latency_per_inference_s"] == pytest.approx(
            b["latency_per_inference_s"], rel=1e-9)
    assert ours["per_sample"][0]["hops"] > 0 and ag["energy_total"] < 0.02


def test_sanafe_agrees_on_a_graph_of_every_projection_kind(tmp_path):
    net = describe.from_dict(GRAPH, "<graph>")
    setup, ph = recorded(net, 6, 1, 64)
    ours, theirs, ag = check_agreement(setup, ph, str(arch_file(tmp_path)), tmp_path, "drop")
    a, b = ours["per_sample"][0], theirs["per_sample"][0]
    # drop: neuroemu's synaptic events leave out the last step's; everything else is equal
    last = tr.step_counts(tr.fanout(setup.topology, tr.hw_map(setup.placement)),
                          ph.spikes[-1:], "deliver").syn.sum()
    assert b["syn_events"] - a["syn_events"] == last > 0
    assert {k: a[k] for k in ("spikes", "messages", "hops", "updated")} == \
        {k: b[k] for k in ("spikes", "messages", "hops", "updated")}
    assert a["energy_j"]["soma"] == pytest.approx(b["energy_j"]["soma"], rel=1e-12)
    assert a["energy_j"]["network"] == pytest.approx(b["energy_j"]["network"], rel=1e-12)
    assert b["energy_j"]["synapse"] > a["energy_j"]["synapse"]


def test_cli_cross_check_json(tmp_path, capsys):
    out = tmp_path / "replay.yaml"
    rc = cli_main(["sanafe", "tiny", "--input", str(_tiny_input(tmp_path)), "--steps", "8",
                   "--neurons-per-core", "2", "--export", str(out), "--json"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["last_step"] == "deliver" and rep["samples"] == 2 and out.is_file()
    assert max(v for k, v in rep["agreement_max_rel"].items() if "latency" not in k) < 1e-9
    assert rep["neuroemu"]["spikes"] == rep["sanafe"]["spikes"] > 0
    assert rep["wall_s"]["sanafe"] > 0 and rep["neuroemu_latency"]["exact"]
    assert cli_main(["sanafe", "tiny", "--input", str(_tiny_input(tmp_path)), "--steps", "8",
                     "--export", str(out)]) == 2      # never over an existing file
    assert "exists" in capsys.readouterr().err
    assert cli_main(["sanafe", "tiny", "--arch", "nope.txt", "--no-sanafe"]) == 2


def _tiny_input(tmp_path) -> Path:
    p = tmp_path / "x.npy"
    np.save(p, np.random.default_rng(1).random((2, 4)))
    return p


def test_a_trace_gives_the_recorded_raster(tmp_path, capsys):
    from neuroemu import record
    from neuroemu.interop.sanafe import trace_raster
    net = describe.load("tiny")
    cn = engines.build(net)
    x = np.random.default_rng(2).random((2, 4))
    sess = engines.session(cn, x)
    ph = sess.run(9, record_spikes=True)
    path = record.write(tmp_path / "t.h5", cn, sess.result(), x=x)
    with record.open(path) as trc:
        _, raster, act, _, ids = trace_raster(trc)
    assert np.array_equal(raster, ph.spikes) and ids == [0, 1]
    rc = cli_main(["sanafe", str(path), "--neurons-per-core", "2", "--no-sanafe", "--json",
                   "--last-step", "drop"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and "sanafe" not in rep
    assert rep["neuroemu"]["syn_events"] == ph.counters["syn_events"].sum() / 2


# --------------------------------------------------------------------------- the Python API

def _no_wall(d):
    if isinstance(d, dict):
        return {k: _no_wall(v) for k, v in d.items() if k != "wall_s"}
    return [_no_wall(v) for v in d] if isinstance(d, list) else d


def test_compare_with_sanafe_is_the_commands_json(tmp_path, capsys):
    import neuroemu
    xp = _tiny_input(tmp_path)
    args = ["--steps", "8", "--neurons-per-core", "2", "--last-step", "drop", "--timing-model",
            "simple", "--json"]
    assert cli_main(["sanafe", "tiny", "--input", str(xp), *args]) == 0
    want = json.loads(capsys.readouterr().out)
    kw = dict(steps=8, neurons_per_core=2, last_step="drop", timing_model="simple")
    got = neuroemu.compare_with_sanafe("tiny", x=str(xp), **kw)
    assert _no_wall(got) == _no_wall(want) and sorted(got["wall_s"]) == sorted(want["wall_s"])
    assert got["neuroemu"]["spikes"] == got["sanafe"]["spikes"] > 0
    # an array and an in-memory network: the same figures, the input described as an array
    by_array = neuroemu.compare_with_sanafe(neuroemu.load("tiny"), x=np.load(xp), **kw)
    assert by_array["input"] == "input x of 2 sample(s) x 8 steps"
    assert _no_wall({**by_array, "input": ""}) == _no_wall({**want, "input": ""})


def test_compare_with_sanafe_on_a_trace_digits_and_bad_arguments(tmp_path):
    import neuroemu
    from neuroemu.interop.sanafe import bundled_digits
    assert np.array_equal(bundled_digits(), neuroemu.digits()[0])
    net = neuroemu.load("tiny")
    x = np.random.default_rng(2).random((2, 4))
    res = neuroemu.run(net, x, 9, record_spikes=True)
    path = neuroemu.write_trace(tmp_path / "t.h5", net, res, x=x)
    with neuroemu.open_trace(path) as trc:
        side = neuroemu.compare_with_sanafe(trc, neurons_per_core=2, sanafe=False)
    assert "sanafe" not in side and side["samples"] == 2 and side["steps"] == 9
    assert side["neuroemu"]["spikes"] == res.phases[0].spikes.sum() / 2
    assert _no_wall(side) == _no_wall(neuroemu.compare_with_sanafe(
        str(path), neurons_per_core=2, sanafe=False))
    out = tmp_path / "replay.yaml"
    out.write_text("mine")
    with pytest.raises(neuroemu.NeuroemuError, match=r"export .*replay\.yaml: already exists"):
        neuroemu.compare_with_sanafe("tiny", x=x, export=out, sanafe=False)
    assert out.read_text() == "mine"
    with pytest.raises(neuroemu.NeuroemuError, match=r"x: not used with a trace"):
        neuroemu.compare_with_sanafe(str(path), x=x)
    for kw, pattern in ((dict(x=x, steps=0), r"steps: must be an integer >= 1 \(got 0\)"),
                        (dict(digits=301), r"digits: must be an integer in \[1, 300\] "
                                           r"\(got 301\)"),
                        (dict(digits=2, x=x), r"digits: give x or digits, not both"),
                        (dict(x=x, last_step="late"), r"last_step: must be one of deliver, "
                                                      r"drop \(got 'late'\)"),
                        (dict(x=np.zeros((1, 5))), r"x: must have shape \(batch, 4\)"),
                        (dict(x=x, arch="loihi.toml"), r"arch: must be sanafe:NAME.*got "
                                                       r"loihi\.toml")):
        with pytest.raises(neuroemu.NeuroemuError, match=pattern):
            neuroemu.compare_with_sanafe("tiny", **kw)
    with pytest.raises(neuroemu.NeuroemuError, match=r"bundled digits have 784 pixels.*4 "):
        neuroemu.compare_with_sanafe("tiny", sanafe=False)
