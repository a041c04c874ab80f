"""Sweep specs (neuroemu.sweep.spec, .config) and one trial run in this process (.trial):
every bad field is one line naming the file, the field and the value; a trial's settings reach
the netlist and the trainer; a trial computes what the library's train + evaluate compute."""

from __future__ import annotations

import numpy as np
import pytest

from neuroemu import describe
from neuroemu.errors import SweepError
from neuroemu.sweep import loads_spec
from neuroemu.sweep.config import check_config, trial_config
from neuroemu.sweep.outputs import pareto_mask
from neuroemu.sweep.trial import pack_data, pack_images, run_trial, unpack_images

SPEC = """
[sweep]
netlist = "small.toml"
dataset = "digits"
trials = 4
objectives = ["validation_error", "syn_events_per_weight"]

[train]
images = 40
validation_images = 20
steps_free = 6
steps_nudged = 3

[[param]]
field = "neuron.lam.value"
low = 0.1
high = 0.5

[[param]]
field = "train.steps_free"
low = 4
high = 8
"""


@pytest.fixture
def folder(tmp_path):
    describe.save(describe.layered([784, 8, 10], "binary", seed=1, name="small"),
                  tmp_path / "small.toml")
    return tmp_path


def spec_of(folder, text=SPEC):
    return loads_spec(text, folder / "spec.toml")


def test_a_valid_spec_and_its_reference_trial(folder):
    spec = spec_of(folder)
    assert [p.field for p in spec.params] == ["neuron.lam.value", "train.steps_free"]
    assert spec.params[0].kind == "float" and spec.params[1].kind == "int"
    # the reference trial: the netlist's lambda and the [train] steps
    assert spec.reference == {"neuron.lam.value": 0.275, "train.steps_free": 6}
    assert spec.defaults["steps_nudged"] == 50      # the paper's binary preset


@pytest.mark.parametrize("edit, pattern", [
    (("objectives = [\"validation_error\", \"syn_events_per_weight\"]",
      "objectives = [\"accuracy\"]"),
     r"spec.toml: sweep.objectives: unknown objective .*'accuracy'"),
    (('field = "neuron.lam.value"', 'field = "neuron.lamda.value"'),
     r"spec.toml: param\[0\].field: no population .* key 'lamda'.*'neuron.lamda.value'"),
    (('field = "neuron.lam.value"', 'field = "population.outer.neuron.lam.value"'),
     r"param\[0\].field: no population 'outer' in the netlist .*'population.outer"),
    (("high = 0.5", "high = 0.05"), r"param\[0\].high: must be above low \(0.1\) \(got 0.05\)"),
    (("high = 0.5", "high = 2.0"),
     r"spec.toml: param\[0\] \(neuron.lam.value = 2.0\): .*lam.value: must lie in .*2"),
    (("low = 4\nhigh = 8", "low = 4.5\nhigh = 8"),
     r"param\[1\].low: must be an integer \(train.steps_free takes int values\) \(got 4.5\)"),
    (("low = 0.1\nhigh = 0.5", "low = 0.0\nhigh = 0.5\nlog = true"),
     r"param\[0\].low: must be > 0 with log = true \(got 0.0\)"),
    (('field = "train.steps_free"\nlow = 4\nhigh = 8',
      'field = "train.rates.2"\nlow = 0.01\nhigh = 0.1'),
     r"param\[1\].field: train.rates.I: I must be a projection index 0..1 \(got 'train.rates.2'\)"),
    (('field = "train.steps_free"\nlow = 4\nhigh = 8',
      'field = "train.rule"\nchoices = ["full", 3]'),
     r"param\[1\].choices: train.rule takes str values \(got 3\)"),
    (('netlist = "small.toml"', 'netlist = "missing.toml"'),
     r"spec.toml: sweep.netlist: missing.toml: file not found"),
    (("trials = 4", "trials = 0"), r"sweep.trials: must be an integer >= 1 \(got 0\)"),
    (("steps_nudged = 3", "steps_nudged = 3\nbatch_size = 5"),
     r"train.batch_size: unknown key .*\(got 5\)"),
    (('"syn_events_per_weight"]', '"joules_per_inference"]'),
     r"energy.profile: is required by the objective joules_per_inference"),
    (("[train]", "[energy]\nprofile = \"no-such-chip\"\n[train]"),
     r"spec.toml: energy.profile: .*no-such-chip"),
    (('high = 8\n', 'high = 8\nwhen = { "train.beta" = 0.5 }\n'),
     r"param\[1\].when: must name the field of an earlier \[\[param\]\] \(got 'train.beta'\)"),
    (("[sweep]", "[sweep]\nsampler = \"grid\""), r"sweep.sampler: must be one of tpe, nsga2, "
                                                 r"random \(got 'grid'\)"),
    (("[train]", "[reference]\n\"neuron.lam.value\" = 0.9\n[train]"),
     r"reference.neuron.lam.value: lies outside \[0.1, 0.5\] .*\(got 0.9\)"),
])
def test_spec_errors_name_file_field_and_value(folder, edit, pattern):
    old, new = edit
    assert old in SPEC
    with pytest.raises(SweepError, match=pattern) as info:
        spec_of(folder, SPEC.replace(old, new, 1))
    assert "\n" not in str(info.value)


def test_a_spec_that_is_not_toml_or_searches_nothing(folder):
    with pytest.raises(SweepError, match=r"spec.toml: not valid TOML"):
        spec_of(folder, "[sweep\n")
    with pytest.raises(SweepError, match=r"spec.toml: param: the spec searches nothing"):
        spec_of(folder, SPEC.split("[[param]]")[0])


def test_a_reference_outside_the_range_is_dropped_unless_asked_for(folder):
    spec = spec_of(folder, SPEC.replace("low = 0.1", "low = 0.3"))     # 0.275 is outside
    assert spec.reference is None
    with pytest.raises(SweepError, match=r"reference.neuron.lam.value: lies outside"):
        spec_of(folder, SPEC.replace("low = 0.1", "low = 0.3").replace(
            "[sweep]", "[sweep]\nreference = true"))


def test_kind_switch_keeps_only_the_new_kinds_parameters(folder):
    text = SPEC + """
[[param]]
field = "neuron.lam.kind"
choices = ["constant", "scheduled"]

[[param]]
field = "neuron.lam.eta"
low = 0.1
high = 0.9
when = { "neuron.lam.kind" = "scheduled" }

[[param]]
field = "neuron.lam.lam0"
low = 0.2
high = 0.6
when = { "neuron.lam.kind" = "scheduled" }
"""
    text = text.replace('field = "neuron.lam.value"\nlow = 0.1\nhigh = 0.5',
                        'field = "neuron.eps.nu_bar"\nlow = 0.01\nhigh = 0.1')
    spec = spec_of(folder, text)
    assert spec.reference == {"neuron.eps.nu_bar": 0.0346, "train.steps_free": 6,
                              "neuron.lam.kind": "constant"}
    values = {"neuron.eps.nu_bar": 0.05, "train.steps_free": 5, "neuron.lam.kind": "scheduled",
              "neuron.lam.eta": 0.4, "neuron.lam.lam0": 0.5}
    net = check_config(spec, trial_config(spec, values))
    for pop in net.populations:
        assert pop.neuron.lam.as_dict() == {"kind": "scheduled", "lam0": 0.5, "eta": 0.4}
        assert pop.neuron.eps.get("nu_bar") == 0.05
    # a parameter set explicitly that the kind does not have is the validator's error
    cfg = trial_config(spec, {**values, "neuron.lam.kind": "constant"})
    with pytest.raises(Exception, match=r"lam.eta: unknown parameter for constant"):
        check_config(spec, cfg)


def test_fields_reach_only_populations_that_have_them(tmp_path):
    text = """
[sweep]
netlist = "feedback-lif"
dataset = "digits"
[population.image.neuron]
encoder = "stochastic"
[[param]]
field = "neuron.threshold"
low = 0.5
high = 2.0
"""
    spec = loads_spec(text, tmp_path / "s.toml")
    net = check_config(spec, trial_config(spec, {"neuron.threshold": 1.5}))
    for pop in net.populations:
        if pop.neuron.model == "paper":
            assert pop.role == "input" and pop.neuron.encoder == "stochastic"
        else:
            assert pop.neuron.threshold == 1.5
    assert spec.reference is None or spec.reference["neuron.threshold"] == \
        [p for p in describe.load("feedback-lif").populations
         if p.neuron.model != "paper"][0].neuron.threshold


def test_rates_by_index(folder):
    spec = spec_of(folder, SPEC.replace('field = "train.steps_free"\nlow = 4\nhigh = 8',
                                        'field = "train.rates.1"\nlow = 0.001\nhigh = 0.2'))
    cfg = trial_config(spec, {"neuron.lam.value": 0.2, "train.rates.1": 0.01})
    assert cfg["train"]["rates"] == [0.1, 0.01]     # projection 0 keeps the paper's rate


def test_pareto_mask_against_pairwise_domination():
    pts = np.array([[0.1, 5.0], [0.2, 1.0], [0.1, 6.0], [0.3, 1.0], [0.05, 9.0], [0.2, 1.0],
                    [0.4, 0.5]])
    expect = []
    for i, p in enumerate(pts):
        expect.append(not any(np.all(q <= p) and np.any(q < p)
                              for j, q in enumerate(pts) if j != i))
    assert pareto_mask(pts).tolist() == expect == [True, True, False, False, True, True, True]


def test_images_travel_as_bytes_and_come_back_exactly():
    from neuroemu import digits
    x, _ = digits()
    packed = pack_images(x)
    assert "u8" in packed and packed["u8"].dtype == np.uint8
    assert np.array_equal(unpack_images(packed), x)
    odd = x[:3] + 1e-9          # not bytes / 255: sent as they are
    assert "f64" in pack_images(odd) and np.array_equal(unpack_images(pack_images(odd)), odd)


def test_a_trial_is_the_librarys_train_and_evaluate(folder):
    from neuroemu import digits, engines
    from neuroemu.learn.eqprop import Hyper
    from neuroemu.learn.evaluate import evaluate
    from neuroemu.learn.train import train
    spec = spec_of(folder)
    x, y = digits()
    cfg = trial_config(spec, {"neuron.lam.value": 0.2, "train.steps_free": 5}, seed=3)
    res = run_trial(cfg, pack_data(x[:200], y[:200], x[200:], y[200:]), spec.base)
    assert "error" not in res, res.get("error")
    # the same by hand: the netlist with lambda 0.2, the paper's binary settings but 5/3 steps
    raw = describe.to_dict(spec.base)
    for p in raw["population"]:
        p["neuron"]["lam"] = {"kind": "constant", "value": 0.2}
    cn = engines.build(describe.from_dict(raw))
    hp = Hyper(beta=0.5, n_free=5, n_nudged=3, rates=(0.1, 0.05))
    train(cn, x[:40], y[:40], epochs=1, hyper=hp, seed=3)
    ref = evaluate(cn, x[200:220], y[200:220], steps=5)
    m = res["metrics"]
    assert m["validation_error"] == ref.error and m["validation_images"] == 20
    assert m["spikes_per_inference"] == ref.spikes_per_sample
    assert m["syn_events_per_inference"] == ref.syn_events_per_sample
    # every projection dense: the events per weight are all events over all the weights
    assert m["syn_events_per_weight"] == ref.syn_events_per_weight == \
        pytest.approx(ref.syn_events_per_sample / (784 * 8 + 8 * 10), rel=1e-15)
    assert m["weights"] == 784 * 8 + 8 * 10
    for a, b in zip(res["netlist"].projections, cn.to_netlist().projections):
        assert np.array_equal(a.weights, b.weights)


def test_a_trial_that_raises_returns_its_error(folder):
    from neuroemu import digits
    spec = spec_of(folder)
    x, y = digits()
    cfg = trial_config(spec, {"neuron.lam.value": 0.2, "train.steps_free": 5})
    cfg["train"]["images"] = 10           # fewer images than one minibatch of 20
    res = run_trial(cfg, pack_data(x[:200], y[:200], x[200:], y[200:]), spec.base)
    assert res["error"].startswith("images: fewer training images (10) than one minibatch")
    assert "Traceback" in res["traceback"] and "metrics" not in res


def test_the_example_specs_in_docs_are_valid():
    from pathlib import Path

    from neuroemu.sweep import load_spec
    specs = sorted((Path(__file__).resolve().parents[1] / "docs" / "sweeps").glob("*.toml"))
    assert specs
    for path in specs:
        spec = load_spec(path)
        assert spec.reference is not None and spec.params


def test_joules_per_inference_is_the_energy_reports(folder):
    from neuroemu import digits, engines, estimate_energy
    text = SPEC.replace('"syn_events_per_weight"]', '"joules_per_inference"]').replace(
        "[train]", "[energy]\nprofile = \"loihi\"\nsamples = 7\n\n[train]").replace(
        "steps_nudged = 3", "steps_nudged = 3\nepochs = 0")
    spec = spec_of(folder, text)
    x, y = digits()
    cfg = trial_config(spec, {"neuron.lam.value": 0.3, "train.steps_free": 4})
    res = run_trial(cfg, pack_data(x[:200], y[:200], x[200:], y[200:]), spec.base)
    assert "error" not in res, res.get("error")
    net = check_config(spec, cfg)                # untrained (epochs = 0): the netlist as set
    rep = estimate_energy(engines.build(net), "loihi", x=x[200:207], steps=4)
    assert res["metrics"]["joules_per_inference"] == rep.per_inference_j > 0
    assert res["metrics"]["energy_samples"] == 7


def test_two_pole_parameters_can_be_searched(folder):
    """lam2 (a component the base netlist lacks) and clamp (a table of a and b): a trial
    turns the two-pole code on with the searched values; lam2's kind follows its parameter."""
    text = SPEC + """
[[param]]
field = "neuron.lam2.lam0"
low = 0.5
high = 0.9

[[param]]
field = "neuron.lam2.eta"
low = 0.3
high = 0.7

[[param]]
field = "neuron.clamp.a"
low = 0.5
high = 2.0
"""
    spec = spec_of(folder, text)
    assert [p.kind for p in spec.params[2:]] == ["float", "float", "float"]
    values = {"neuron.lam.value": 0.3, "train.steps_free": 5, "neuron.lam2.lam0": 0.78,
              "neuron.lam2.eta": 0.56, "neuron.clamp.a": 1.5}
    net = check_config(spec, trial_config(spec, values))
    for pop in net.populations:
        assert pop.neuron.lam2.as_dict() == {"kind": "scheduled", "lam0": 0.78, "eta": 0.56}
        assert pop.neuron.clamp == (1.5, 0.0)          # b defaults to 0
    with pytest.raises(SweepError, match=r"search one parameter of clamp \(one of a, b\)"):
        spec_of(folder, text.replace('"neuron.clamp.a"', '"neuron.clamp.c"'))
