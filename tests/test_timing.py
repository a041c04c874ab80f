"""The latency model against hand-computed cases: a two-core chain step by step (both
delivery conventions), known hop counts on a 2x2 mesh, serialisation on a shared link, a
profile's [latency_ns] table, the even-spread estimate, the EDP and the bus engine's ticks."""

from __future__ import annotations

import numpy as np
import pytest

from neuroemu import describe, engines
from neuroemu.energy import hardware as hw
from neuroemu.energy import timing
from neuroemu.energy import traffic as tr
from neuroemu.energy.accounting import activity_from_phase
from neuroemu.energy.report import make_setup
from neuroemu.errors import ProfileError

# Latencies (ns): soma access 1, update 2, spike 4; synapse 8; axon in 16, out 32; hops east
# 64, west 128, north 256, south 512; barrier 1000.  Input somas cost nothing.
ARCH = """
architecture:
  name: t
  attributes: {{topology: mesh, width: {w}, height: {h}, link_buffer_size: 1,
               sync_model: fixed, latency_sync: 1000.0e-9}}
  tile:
    - name: t[0..{last}]
      attributes: {{energy_east_hop: 0.0, energy_west_hop: 0.0, energy_north_hop: 0.0,
                   energy_south_hop: 0.0, latency_east_hop: 64.0e-9,
                   latency_west_hop: 128.0e-9, latency_north_hop: 256.0e-9,
                   latency_south_hop: 512.0e-9}}
      core:
        - name: c
          attributes: {{buffer_position: soma, max_neurons_supported: 8}}
          axon_in: {{name: ain, attributes: {{energy_message_in: 0.0,
                                              latency_message_in: 16.0e-9}}}}
          synapse: {{name: dense, attributes: {{model: current_based, energy_process_spike: 0.0,
                                                latency_process_spike: 8.0e-9}}}}
          dendrite: {{name: d, attributes: {{model: accumulator, energy_update: 0.0,
                                             latency_update: 0.0}}}}
          soma:
            - name: lif
              attributes: {{model: leaky_integrate_fire, energy_access_neuron: 0.0,
                           latency_access_neuron: 1.0e-9, energy_update_neuron: 0.0,
                           latency_update_neuron: 2.0e-9, energy_spike_out: 0.0,
                           latency_spike_out: 4.0e-9}}
            - name: inp[0..7]
              attributes: {{model: input, energy_access_neuron: 0.0, latency_access_neuron: 0.0,
                           energy_update_neuron: 0.0, latency_update_neuron: 0.0,
                           energy_spike_out: 0.0, latency_spike_out: 0.0}}
          axon_out: {{name: aout, attributes: {{energy_message_out: 0.0,
                                               latency_message_out: 32.0e-9}}}}
"""

TOML = """
[profile]
name = "lat"
[noc]
header_bits = 0
flit_bits = 64
[energy_pj]
synaptic_op = 1
synaptic_mac = 1
neuron_update = 1
input_update = 1
encoder_update = 0
predictive_update = 0
decoder_update = 0
annealer_update = 0
packet = 1
hop_ew = 1
hop_ns = 1
[latency_ns]
synaptic_op = 8
neuron_update = 1
input_update = 0.5
encoder_update = 0.25
packet = 32
hop_ew = 64
hop_ns = 256
barrier = 1000
"""

NEURON = {"encoder": "sigma_delta", "predictive": False, "decoder": "identity",
          "eps": {"kind": "constant", "eps0": 1.0}}


def chain(n_in=1):
    return describe.from_dict({
        "network": {"name": "chain", "seed": 0}, "neuron": NEURON,
        "population": [{"name": "input", "size": n_in}, {"name": "output", "size": 1}],
        "projection": [{"pre": "input", "post": "output", "weights": [[0.5]] * n_in}]}, "<c>")


def arch(tmp_path, w, h):
    p = tmp_path / "t.yaml"
    p.write_text(ARCH.format(w=w, h=h, last=w * h - 1))
    return hw.load_profile(p)


def counts_of(net, setup, profile, steps, batch=1):
    """Counts of a run of ``steps`` (steps, batch and, for a TOML profile, the per-neuron-step
    kinds, which do not depend on which neurons spike; the rasters below are given by hand)."""
    cn = engines.build(net)
    ph = engines.session(cn, np.ones((batch, cn.n_in))).run(steps, record_spikes=True)
    act = activity_from_phase(ph)
    return setup.counts(act, profile), act


# input spikes at steps 1 and 3, the output at step 2
RASTER = np.array([[[1, 0]], [[0, 1]], [[1, 0]]], dtype=bool)


def test_two_core_chain_step_by_step(tmp_path):
    # input on core 0 (tile (0,0)), output on core 1 (tile (1,0)): one east hop
    net, prof = chain(), arch(tmp_path, 2, 1)
    setup = make_setup(net, (2, 1), 1, "layer")
    c, _ = counts_of(net, setup, prof, 3)
    # step 1: core 0 sends (32); core 1 accesses its neuron (1), receives (16), one synaptic
    # event (8) = 25; the message crosses one east link (64); barrier 1000 -> 32 + 64 + 1000.
    # step 2: the output was updated (input at step 1) and fires: 1 + 2 + 4 = 7 -> 1007.
    # step 3: as step 1 (the output received nothing at step 2) -> 1096.
    rep = timing.latency_report(c, setup, prof, raster=RASTER, last_step="deliver",
                                energy_j=2e-9)
    assert rep["latency_per_inference_s"] == pytest.approx((1096 + 1007 + 1096) * 1e-9)
    assert rep["latency_per_step_s"] == pytest.approx((1096 + 1007 + 1096) / 3 * 1e-9)
    assert rep["edp_j_s"] == pytest.approx(2e-9 * 3199e-9)
    b = rep["breakdown"]
    assert (b["compute_s"], b["network_s"], b["barrier_s"]) == (
        pytest.approx(71e-9), pytest.approx(128e-9), pytest.approx(3000e-9))
    assert b["longest_route_s"] == pytest.approx(64e-9)
    # overlapped (SANA-FE's simple model): max(sending 32, receiving 24) + 1000, 7 + 1000, ...
    assert rep["overlap_model"]["latency_per_inference_s"] == pytest.approx(3071e-9)
    # drop: the synaptic event of a spike happens one step later (and step 3's never)
    rep = timing.latency_report(c, setup, prof, raster=RASTER, last_step="drop")
    assert rep["latency_per_inference_s"] == pytest.approx((1096 + (7 + 8 + 1000) + 1096) * 1e-9)
    assert rep["overlap_model"]["latency_per_inference_s"] == pytest.approx(
        (1032 + 1008 + 1032) * 1e-9)
    assert rep["exact"] and rep["edp_j_s"] is None


def test_known_hop_counts_on_a_2x2_mesh(tmp_path):
    # input on core 0 (0,0), output on core 3 (1,1): one hop east then one north (XY)
    net, prof = chain(), arch(tmp_path, 2, 2)
    np.save(tmp_path / "map.npy", np.array([0, 3]))
    setup = make_setup(net, (2, 2), 1, str(tmp_path / "map.npy"))
    raster = np.array([[[1, 0]]], dtype=bool)
    c, _ = counts_of(net, setup, prof, 1)
    fan = tr.fanout(setup.topology, tr.hw_map(setup.placement))
    sc = tr.step_counts(fan, raster, "deliver", hop_weight=(64, 128, 256, 512))
    assert sc.hops[0, 0].tolist() == [1, 0, 1, 0] and sc.route[0, 0] == 64 + 256
    used = np.flatnonzero(sc.links[0, 0])
    assert sc.links[0, 0, used].tolist() == [1, 1] and sc.link_dir[used].tolist() == [0, 2]
    rep = timing.latency_report(c, setup, prof, raster=raster, last_step="deliver")
    # compute max(32, 1 + 16 + 8) + route 320 (the busiest link carries one flit: 256) + 1000
    assert rep["latency_per_inference_s"] == pytest.approx((32 + 320 + 1000) * 1e-9)


def test_serialisation_on_a_shared_link(tmp_path):
    # two inputs on core 0 both send at step 1 to core 1: the east link carries two flits
    net, prof = chain(2), arch(tmp_path, 2, 1)
    setup = make_setup(net, (2, 1), 2, "layer")
    raster = np.array([[[1, 1, 0]]], dtype=bool)
    c, _ = counts_of(net, setup, prof, 1)
    rep = timing.latency_report(c, setup, prof, raster=raster, last_step="deliver")
    # core 0 sends 2 x 32 = 64; core 1: 1 + 2 x 16 + 2 x 8 = 49; link 2 x 64 = 128 > route 64
    assert rep["latency_per_inference_s"] == pytest.approx((64 + 128 + 1000) * 1e-9)
    assert rep["breakdown"]["busiest_link_s"] == pytest.approx(128e-9)
    assert rep["breakdown"]["busiest_core"]["core"] == 0


def test_latency_table_of_a_toml_profile(tmp_path):
    p = tmp_path / "lat.toml"
    p.write_text(TOML)
    prof = hw.load_profile(p)
    net = chain()
    setup = make_setup(net, (2, 1), 1, "layer")
    c, _ = counts_of(net, setup, prof, 3)
    rep = timing.latency_report(c, setup, prof, raster=RASTER, last_step="drop")
    # per neuron-step: input 0.5 + 0.25, output 1 + 0.25; a message 32 (one flit); a synaptic
    # event 8 at the step after its spike; one east hop 64; barrier 1000
    step1 = (0.75 + 32) + 64 + 1000
    step2 = (1.25 + 8) + 0 + 1000
    assert rep["latency_per_inference_s"] == pytest.approx((step1 + step2 + step1) * 1e-9)
    p.write_text(TOML[:TOML.index("[latency_ns]")])
    assert timing.latency_report(c, setup, hw.load_profile(p), raster=RASTER) is None


def test_even_spread_without_a_raster(tmp_path):
    net, prof = chain(), arch(tmp_path, 2, 1)
    setup = make_setup(net, (2, 1), 1, "layer")
    c, _ = counts_of(net, setup, prof, 4)
    # 2 input messages over 4 steps: 0.5 per step; the output updated every step
    rep = timing.latency_report(c, setup, prof, messages=np.array([[2, 0]]),
                                last_step="deliver")
    per_step = 0.5 * 32 + 64 + 1000   # core 0 (16) > core 1 (1 + 2 + 8 + 4 = 15); a route of 64
    assert rep["latency_per_inference_s"] == pytest.approx(4 * per_step * 1e-9)
    assert not rep["exact"] and "spread" in rep["spread"]
    with pytest.raises(ProfileError, match=r"messages: must have shape \(1, 2\)"):
        timing.latency_report(c, setup, prof, messages=np.zeros((1, 3)))
    with pytest.raises(ProfileError, match=r"spike raster: must have shape \(4, 1"):
        timing.latency_report(c, setup, prof, raster=RASTER)
    with pytest.raises(ProfileError, match="--last-step: must be one of deliver, drop"):
        timing.latency_report(c, setup, prof, raster=np.zeros((4, 1, 2), bool), last_step="x")


def test_bus_engine_ticks_are_reported(tmp_path):
    net, prof = chain(), arch(tmp_path, 2, 1)
    setup = make_setup(net, (2, 1), 1, "layer")
    cn = engines.build(net)
    sess = engines.session(cn, np.ones((1, 1)), engine="async")
    act = activity_from_phase(sess.run(5, record_spikes=True))
    ticks = timing.bus_ticks(act, sess.hw.quanta)
    assert ticks.tolist() == [5.0]          # one shared clock: one tick per step
    c = setup.counts(act, prof)
    rep = timing.latency_report(c, setup, prof, messages=act.messages, bus_ticks=ticks)
    assert rep["bus_engine"]["ticks_per_step"] == 1.0
    assert rep["bus_engine"]["latency_per_inference_s"] == pytest.approx(
        rep["latency_per_inference_s"])
    lock = activity_from_phase(engines.session(cn, np.ones((1, 1))).run(2, record_spikes=True))
    assert timing.bus_ticks(lock, 100) is None
    assert timing.edp(2.0, 3.0) == 6.0
