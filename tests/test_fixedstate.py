"""Integer neurons (``state_bits``/``step_bits`` of [hardware.arithmetic], docs/arithmetic.md)
against the integer reference (tests/reference_fixed.py, Python integers), and their checks
(threads and the bus engine: tests/test_fixedpoint.py)."""

import numpy as np
import pytest

import reference_fixed as rf
from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import fixedpoint
from neuroemu.errors import CompileError, NetlistError

SD_PRED = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
           "lam": {"kind": "constant", "value": 0.275}, "eps": {"kind": "constant", "eps0": 0.4}}
SD_SCHED = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
            "lam": {"kind": "scheduled", "lam0": 0.9, "eta": 0.45},
            "eps": {"kind": "scheduled", "eps0": 0.8, "eta": 0.3}, "clamp": {"a": 0.6, "b": 2.0}}
STOCHASTIC = {"encoder": "stochastic", "predictive": False, "decoder": "identity",
              "eps": {"kind": "constant", "eps0": 0.3}}
CONTINUOUS = {"encoder": "none", "eps": {"kind": "constant", "eps0": 0.5}}


def arith(**kw):
    return {"hardware": {"arithmetic": kw}}


def compare(net, x, y, steps, free, bits, message_bits=8, F=12, B=12, beta=0.5, **kw):
    """The engine's spikes and states, free then nudged, against the integer reference's."""
    sess = engines.session(build(net), x, seed=7, **kw)
    ph = [sess.run(free, record_spikes=True, record_states=True),
          sess.run(steps - free, beta=beta, target=y, record_spikes=True, record_states=True)]
    spikes = np.concatenate([p.spikes for p in ph])
    states = np.concatenate([p.states for p in ph])
    n0 = x.shape[1]
    for b in range(x.shape[0]):
        r = rf.IntegerNeuronNetwork(net, x[b], int(sess.seeds[b]), bits, message_bits,
                                    state_bits=F, step_bits=B)
        for t in range(1, steps + 1):
            nudge = t > free
            q = r.step(beta if nudge else 0.0, y[b] if nudge else None)
            assert np.array_equal(spikes[t - 1, b, n0:], q[n0:] != 0), (b, t)
            assert np.array_equal(states[t - 1, b, n0:], np.concatenate(r.s[1:])), (b, t)
    return sess, states


@pytest.mark.parametrize("neuron,F,B", [(SD_PRED, 12, 12), (SD_PRED, 6, 5),
                                        (SD_SCHED, 16, 10), (STOCHASTIC, 10, 8)])
def test_spiking_integer_neurons_match_reference(neuron, F, B):
    """Spikes and states bit for bit, free and nudged: one-pole predictive codes with constant
    and scheduled lam and eps, a clamped residue, a stochastic encoder; fine and coarse grids."""
    net = make_netlist([12, 9, 6, 3], neuron, seed=3, bias=0.05, gain=2.0,
                       extra=arith(weight_bits=8, state_bits=F, step_bits=B))
    rng = np.random.default_rng(1)
    x = rng.random((3, 12))
    y = np.eye(3)[[0, 2, 1]]
    sess, states = compare(net, x, y, 50, 35, [8] * 3, F=F, B=B)
    assert sess.counters()["spikes"][:, 1:].sum() > 0
    grid = states * 2 ** F                       # every state on the grid k / 2**F
    assert np.array_equal(grid, np.rint(grid))


def test_continuous_integer_neurons_match_reference():
    net = make_netlist([10, 7, 3], CONTINUOUS, seed=5, bias=0.1, gain=1.5,
                       extra=arith(weight_bits=6, message_bits=4, state_bits=8, step_bits=8))
    x = np.random.default_rng(2).random((2, 10))
    y = np.eye(3)[[1, 2]]
    compare(net, x, y, 30, 20, [6, 6], message_bits=4, F=8, B=8)


def test_fine_grid_approaches_the_float_neuron_and_coarse_grid_differs():
    """At 24 fractional bits the integer neuron follows the float64 neuron on the same 8-bit
    weights to within a few 2**-24 per step; at 4 bits the run is visibly different."""
    w8 = make_netlist([10, 7, 3], CONTINUOUS, seed=5, bias=0.1, gain=1.5,
                      extra=arith(weight_bits=8, message_bits=7))
    x = np.random.default_rng(2).random((2, 10))
    ref = engines.session(build(w8), x, seed=7).run(20, record_states=True).states
    runs = {}
    for F in (24, 4):
        net = make_netlist([10, 7, 3], CONTINUOUS, seed=5, bias=0.1, gain=1.5,
                           extra=arith(weight_bits=8, message_bits=7, state_bits=F, step_bits=24))
        runs[F] = engines.session(build(net), x, seed=7).run(20, record_states=True).states
    assert np.abs(runs[24] - ref).max() < 1e-5
    assert np.abs(runs[4] - ref).max() > 1e-2


@pytest.mark.parametrize("neuron,why", [
    ({**SD_PRED, "eps": {"kind": "osa", "nu_bar": 0.03}}, "eps osa divides per neuron"),
    ({**SD_PRED, "lam2": {"kind": "constant", "value": 0.5}}, "two-pole code"),
])
def test_neurons_without_an_integer_form_are_refused(neuron, why):
    net = make_netlist([5, 4, 3], neuron, extra=arith(weight_bits=8, state_bits=12))
    with pytest.raises(CompileError, match=r"^<test>: hardware.arithmetic.state_bits: "
                                           r"population '(input|h1)': .*" + why):
        build(net)
    build(make_netlist([5, 4, 3], neuron, extra=arith(weight_bits=8)))   # weights alone: fine


@pytest.mark.parametrize("table,field,rule", [
    ({"weight_bits": 8, "state_bits": 3}, "state_bits", "must lie in [4, 30]"),
    ({"weight_bits": 8, "state_bits": 12, "step_bits": 25}, "step_bits", "must lie in [4, 24]"),
    ({"weight_bits": 8, "step_bits": 12}, "step_bits", "needs state_bits"),
    ({"weight_bits": 8, "state_bits": "16"}, "state_bits", "must be an integer"),
])
def test_bad_state_fields_give_one_line(table, field, rule):
    with pytest.raises(NetlistError) as e:
        make_netlist([5, 4, 3], SD_PRED, extra={"hardware": {"arithmetic": table}})
    msg = str(e.value)
    assert "\n" not in msg and f"hardware.arithmetic.{field}" in msg and rule in msg


def test_sums_that_would_leave_int64_are_refused():
    net = make_netlist([5, 4, 3], SD_PRED,
                       extra=arith(weight_bits=16, weight_exponent=20, state_bits=30,
                                   step_bits=24))
    with pytest.raises(CompileError, match="leaves int64"):
        build(net)


def test_to_fixed_and_saved_networks_keep_the_state_format(tmp_path):
    from neuroemu.learn.eqprop import save_netlist
    net = fixedpoint.to_fixed(make_netlist([6, 5, 3], SD_PRED, seed=2), 8, state_bits=10,
                              step_bits=9)
    table = net.hardware["arithmetic"]
    assert table["state_bits"] == 10 and table["step_bits"] == 9
    back = describe.load(save_netlist(build(net), tmp_path / "t.toml"))
    assert back.hardware == net.hardware
    cn = build(back)
    assert cn.fixed.arithmetic.state_bits == 10 and cn.fixed.arithmetic.step_bits == 9


def test_convert_and_validate_on_the_command_line(tmp_path, capsys):
    from neuroemu.cli import main
    src = tmp_path / "n.toml"
    describe.save(make_netlist([6, 5, 3], SD_PRED, seed=2), src)
    out = tmp_path / "n8.toml"
    assert main(["convert", str(src), str(out), "--weight-bits", "8", "--state-bits", "10",
                 "--step-bits", "9"]) == 0
    table = describe.load(out).hardware["arithmetic"]
    assert (table["state_bits"], table["step_bits"]) == (10, 9)
    capsys.readouterr()
    assert main(["validate", str(out)]) == 0
    assert "integer neurons: states on k / 2**10, step sizes and lam on k / 2**9" in \
        capsys.readouterr().out
    assert main(["convert", str(src), str(tmp_path / "x.toml"), "--weight-bits", "8",
                 "--step-bits", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--step-bits: goes with --state-bits" in err
    assert not (tmp_path / "x.toml").exists()
    # the default value given explicitly is refused alike; integers only
    assert main(["convert", str(src), str(tmp_path / "x.toml"), "--weight-bits", "8",
                 "--step-bits", "12"]) == 2
    assert "--step-bits: goes with --state-bits" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "x.toml"), "--state-bits", "10"]) == 2
    assert "--state-bits: goes with --weight-bits" in capsys.readouterr().err
    assert main(["convert", str(src), str(tmp_path / "x.toml"), "--weight-bits", "8",
                 "--state-bits", "10.5"]) == 2
    assert "must be an integer in 4..30 (got 10.5)" in capsys.readouterr().err
    # converting again without --state-bits says that the integer neurons are gone
    assert main(["convert", str(out), str(tmp_path / "f.toml"), "--weight-bits", "8"]) == 0
    assert "had integer neurons (state_bits = 10)" in capsys.readouterr().out
    with pytest.raises(NetlistError, match="step_bits: needs state_bits"):
        fixedpoint.to_fixed(describe.load(src), 8, step_bits=6)
    osa = tmp_path / "osa.toml"
    describe.save(make_netlist([6, 5, 3], {**SD_PRED, "eps": {"kind": "osa", "nu_bar": 0.03}}),
                  osa)
    assert main(["convert", str(osa), str(tmp_path / "y.toml"), "--weight-bits", "8",
                 "--state-bits", "10"]) == 2
    assert "eps osa divides per neuron" in capsys.readouterr().err
