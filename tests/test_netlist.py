"""Netlist loading and validation: shipped files, precise errors, and a fuzz test."""

import copy
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import NETLISTS, mutated
from neuroemu import describe
from neuroemu.cli import main as cli_main
from neuroemu.errors import NetlistError

SHIPPED = sorted(p.name for p in NETLISTS.glob("*.toml"))

GOOD = {
    "network": {"name": "g", "seed": 3},
    "neuron": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.5}, "eps": {"kind": "osa", "nu_bar": 0.05}},
    "population": [{"name": "input", "size": 3, "role": "input"},
                   {"name": "hidden", "size": 2, "bias": [0.1, 0.2]},
                   {"name": "output", "size": 2, "role": "output"}],
    "projection": [{"pre": "input", "post": "hidden", "weights": [[1, 2], [3, 4], [5, 6]]},
                   {"pre": "hidden", "post": "output"}],
}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_netlists_load(name):
    net = describe.load(NETLISTS / name)
    if net.format == 2:   # a graph (tests/test_netlist_v2.py): roles by name, kinds' shapes
        assert net.inputs and net.outputs
        assert all(pr.kind != "dense" or pr.weights.shape == (net.population(pr.pre).size,
                                                              net.population(pr.post).size)
                   for pr in net.projections)
        return
    assert net.populations[0].role == "input" and net.populations[-1].role == "output"
    for pr, (a, b) in zip(net.projections, zip(net.sizes[:-1], net.sizes[1:])):
        assert pr.weights.shape == (a, b)


def test_paper_topologies_are_shipped():
    sizes = {describe.load(NETLISTS / n).sizes for n in SHIPPED}
    assert {(500, 500, 10), (784, 500, 10), (784, 500, 500, 500, 10)} <= sizes


def test_good_dict_builds_exactly():
    net = describe.from_dict(copy.deepcopy(GOOD), path="g.toml")
    assert np.array_equal(net.projections[0].weights, [[1, 2], [3, 4], [5, 6]])
    assert np.array_equal(net.populations[1].bias, [0.1, 0.2])
    n = net.populations[1].neuron
    assert n.eps.kind == "osa" and n.eps.get("nu_bar") == 0.05 and n.eps.get("reg") == 1e-15


def test_glorot_init_is_seeded_and_bounded():
    a = describe.from_dict(copy.deepcopy(GOOD)).projections[1].weights
    b = describe.from_dict(copy.deepcopy(GOOD)).projections[1].weights
    assert np.array_equal(a, b)
    assert np.abs(a).max() <= np.sqrt(6 / 4)


def mutate(path, value):
    raw = copy.deepcopy(GOOD)
    *head, last = path
    node = raw
    for k in head:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize("path,value,msg", [
    (("population", 1, "size"), -3, r"x.toml: population\[1\].size: must be an integer in "
                                     r"\[1, 10000000\] \(got -3\)"),
    (("population", 1, "size"), 2.5, r"population\[1\].size: must be an integer \(got 2.5\)"),
    (("population", 1, "name"), "input", r"population\[1\].name: must be unique \(got 'input'\)"),
    (("population", 1, "role"), "output", r"population\[1\].role: .*must be 'hidden' "
                                          r"\(got 'output'\)"),
    (("population", 0, "bias"), 1.0, r"population\[0\].bias: the input population has no bias"),
    (("population", 1, "bias"), [0.1], r"population\[1\].bias: must have shape \(2,\) "
                                       r"\(got shape \(1,\)\)"),
    (("population", 1, "bias"), [0.1, float("nan")], r"population\[1\].bias\[1\]: must be finite "
                                                     r"\(got nan\)"),
    (("projection", 0, "weights"), [[1, 2], [3, 4]], r"projection\[0\].weights: must have shape "
                                                     r"\(3, 2\) \(got shape \(2, 2\)\)"),
    (("projection", 0, "weights"), [[1, 2], [3, "a"], [5, 6]], r"projection\[0\].weights: must "
                                                               r"hold numbers only"),
    (("projection", 0, "post"), "output", r"projection\[0\]: only adjacent layers"),
    (("projection", 1, "pre"), "nowhere", r"projection\[1\].pre: must name a population "
                                          r".*\(got 'nowhere'\)"),
    (("projection", 1), KeyError, r"projection: layers 'hidden' and 'output' are not connected"),
    (("neuron", "encoder"), "spiky", r"neuron.encoder: must be one of none, stochastic, "
                                     r"sigma_delta \(got 'spiky'\)"),
    (("neuron", "eps", "nu_bar"), 1.5, r"neuron.eps.nu_bar: must lie in \(0, 1\) \(got 1.5\)"),
    (("neuron", "eps", "kind"), "scheduled", r"neuron.eps.nu_bar: unknown parameter for "
                                             r"scheduled"),
    (("neuron", "lam"), {"kind": "scheduled", "lam0": 0.5},
     r"neuron.lam.eta: is required for scheduled"),
    (("neuron", "decoder"), "identity", r"population\[1\].neuron.decoder: must be 'predictive' "
                                        r"exactly when its sender 'input' has predictive = true"),
    (("network", "seed"), -1, r"network.seed: must be an integer in \[0, "),
    (("network", "colour"), "red", r"network.colour: unknown key"),
])
def test_errors_name_file_field_and_value(path, value, msg):
    with pytest.raises(NetlistError, match=msg):
        describe.from_dict(mutate(path, value), path="x.toml")


def test_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[network\nname = 1\n")
    with pytest.raises(NetlistError, match=r"bad.toml: TOML: syntax error: .*line 1"):
        describe.load(bad)
    with pytest.raises(NetlistError, match=r"nope.toml: file not found"):
        describe.load(tmp_path / "nope.toml")


def test_weights_from_npy_file(tmp_path):
    w = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "w.npy", w)
    raw = mutate(("projection", 0, "weights"), {"file": "w.npy"})
    net = describe.from_dict(raw, path=tmp_path / "n.toml")
    assert np.array_equal(net.projections[0].weights, w)
    np.save(tmp_path / "w.npy", np.array([[np.inf, 0], [0, 0], [0, 0]]))
    with pytest.raises(NetlistError, match=r"projection\[0\].weights.file \(.*w.npy\)\[0, 0\]: "
                                           r"must be finite \(got inf\)"):
        describe.from_dict(raw, path=tmp_path / "n.toml")


def test_cli_validate_exit_codes(tmp_path, capsys):
    assert cli_main(["validate", str(NETLISTS / "tiny.toml")]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "x.toml"
    bad.write_text((NETLISTS / "tiny.toml").read_text().replace("size = 3", "size = -3"))
    assert cli_main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "population[1].size" in err and "(got -3)" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- fuzzing

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(),
                    st.text(max_size=8), st.sampled_from([0, 1, 2, 3, -1, 0.5, "input", "hidden",
                                                          "output", "osa", "constant"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6) | st.sampled_from(
        ["kind", "name", "size", "file", "init", "seed", "value"]), inner, max_size=4)),
    max_leaves=10)


def all_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from all_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_paths(v, prefix + (i,))


PATHS = [p for p in all_paths(GOOD) if p]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(values, st.just(KeyError))),
                min_size=1, max_size=3))
def test_fuzz_mutated_netlists_fail_cleanly(mutations):
    """Any malformed dict gives NetlistError with a location, or a valid Netlist."""
    raw = mutated(GOOD, mutations)
    try:
        net = describe.from_dict(raw, path="fuzz.toml")
    except NetlistError as exc:
        assert str(exc).startswith("fuzz.toml")
    else:
        assert all(np.isfinite(p.weights).all() for p in net.projections)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text_fails_cleanly(text):
    try:
        describe.loads(text, path="t.toml")
    except NetlistError as exc:
        assert str(exc).startswith("t.toml")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2000), st.integers(1, 40))
def test_fuzz_corrupted_shipped_text_fails_cleanly(pos, length):
    text = (NETLISTS / "tiny.toml").read_text()
    corrupted = text[:pos] + text[pos + length:]
    try:
        tomllib.loads(corrupted)
    except tomllib.TOMLDecodeError:
        pass
    try:
        describe.loads(corrupted, path="tiny.toml")
    except NetlistError as exc:
        assert str(exc).startswith("tiny.toml")


def test_cli_validate_checks_hardware_settings(tmp_path, capsys):
    text = (NETLISTS / "tiny.toml").read_text() + "\n[hardware]\nbus = { latency = -1 }\n"
    (tmp_path / "hw.toml").write_text(text)
    assert cli_main(["validate", str(tmp_path / "hw.toml")]) == 2
    assert "hw.toml: hardware.bus.latency: must be >= 0 (got -1)" in capsys.readouterr().err
