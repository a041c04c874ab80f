"""The energy report's time per inference and energy-delay product (issue 17 item 4): the
report carries the latency model of neuroemu.energy.timing (tested against hand-computed cases
in test_timing.py) for the free phase, EDP = joules x seconds per inference, the bus engine's
own simulated time when it ran on a mesh, and a plain note for a profile without latencies."""

import json

import numpy as np
import pytest

import neuroemu
from neuroemu import cli
from neuroemu.energy.hardware import load_profile


def _mesh_net(tmp_path):
    raw = {"network": {"name": "m", "seed": 3},
           "neuron": {"encoder": "sigma_delta"},
           "population": [{"name": "input", "size": 6}, {"name": "hidden", "size": 5},
                          {"name": "output", "size": 3, "bias": 0.1}],
           "projection": [{"pre": "input", "post": "hidden"}, {"pre": "hidden", "post": "output"}],
           "hardware": {"cluster_size": 2, "bus": {"topology": "mesh", "latency": 5},
                        "mesh": {"width": 3, "height": 3}}}
    path = tmp_path / "m.toml"
    neuroemu.save(neuroemu.from_dict(raw), path)
    return path


def test_report_latency_is_the_timing_models_and_edp_is_energy_times_time(tmp_path, capsys):
    x = np.random.default_rng(0).random((3, 784))
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["energy", "mnist-binary-trained", "--input", str(tmp_path / "x.npy"),
                     "--steps", "12", "--profile", "loihi", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    lat = rep["latency"]
    assert lat is not None and rep["latency_per_inference_s"] == lat["latency_per_inference_s"]
    # per inference = steps x mean time per step; EDP = energy per inference x that time
    assert lat["latency_per_inference_s"] == pytest.approx(12 * lat["latency_per_step_s"])
    assert rep["edp_j_s"] == pytest.approx(rep["per_inference_j"] * rep["latency_per_inference_s"])
    # a step lasts at least the profile's barrier (465 ns) and at most everything serialised
    assert lat["latency_per_step_s"] >= 465e-9
    prof = load_profile("loihi")
    c = rep["phases"]["free"]["counts"]
    ns = prof.latency_ns
    serial = (c["synaptic_op"] * ns["synaptic_op"] + c["neuron_update"] * ns["neuron_update"]
              + c["input_update"] * ns["input_update"] + c["packet"] * ns["packet"]
              + c["hop_ew"] * ns["hop_ew"] + c["hop_ns"] * ns["hop_ns"]) / 3 / 12 \
        + ns["barrier"]
    assert lat["latency_per_step_s"] <= serial * 1e-9 * (1 + 1e-9)


def test_profile_without_latencies_says_so(tmp_path, capsys):
    assert cli.main(["energy", "tiny", "--steps", "5", "--profile", "generic-45nm"]) == 0
    out = capsys.readouterr().out
    assert "time per inference: not modelled (profile 'generic-45nm' gives no latencies" in out
    rep = neuroemu.estimate_energy("tiny", "generic-45nm", x=np.full((1, 4), 0.5), steps=5).to_dict()
    assert rep["latency"] is None and rep["edp_j_s"] is None


def test_bus_engine_on_a_mesh_reports_its_own_simulated_time(tmp_path):
    path = _mesh_net(tmp_path)
    x = np.random.default_rng(1).random((2, 6))
    rep = neuroemu.estimate_energy(path, "loihi", x=x, steps=20, engine="async").to_dict()
    be = rep["latency"]["bus_engine"]
    # clocks of nominal period 1 tick with jitter: about one tick per step, never zero
    assert 0.5 < be["ticks_per_step"] < 3
    assert be["latency_per_inference_s"] == pytest.approx(
        be["elapsed_ticks_per_inference"] * rep["latency"]["latency_per_step_s"])
    lock = neuroemu.estimate_energy(path, "loihi", x=x, steps=20).to_dict()
    assert "bus_engine" not in lock["latency"]
