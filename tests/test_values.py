"""Issue 12, class 2 (and the HDF5 half of class 4): values that pass validation must not turn
into NaN or infinity, and the HDF5 form of a netlist obeys exactly the rules of the TOML form.

Every generated netlist, input, beta and profile either fails with a one-line NeuroemuError
naming the field, or validates and runs a few steps with finite states and a strictly JSON-able
energy report.  ``-m slow`` runs the same properties on thousands of examples.
"""

import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuroemu
from neuroemu import describe, engines
from neuroemu.describe.neurons import (ANNEALER_PARAMS, MAX_VALUE, SCHEDULE_PARAMS)
from neuroemu.energy import hardware as hw
from neuroemu.energy.report import estimate_energy
from neuroemu.errors import EngineError, NetlistError, NeuroemuError, ProfileError

BASE = """\
[network]
name = "t"
[neuron]
encoder = "sigma_delta"
predictive = true
decoder = "predictive"
lam = { kind = "constant", value = 0.275 }
eps = { kind = "osa", nu_bar = 0.0346 }
[[population]]
name = "input"
size = 4
[[population]]
name = "hidden"
size = 3
[[population]]
name = "output"
size = 2
[[projection]]
pre = "input"
post = "hidden"
[[projection]]
pre = "hidden"
post = "output"
"""

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


# --------------------------------------------------------------------------- crafted examples

@pytest.mark.parametrize("edit,match", [
    (('post = "output"\n', 'post = "output"\nweights = [[1e39, 0], [0, 0], [0, 0]]\n'),
     r"projection\[1\]\.weights\[0, 0\]: must lie in \[-1e\+20, 1e\+20\].*\(got 1e\+39\)"),
    (('size = 3\n', 'size = 3\nbias = 1e308\n'), r"population\[1\]\.bias: must lie in .*1e\+308"),
    (('size = 3\n', 'size = 3\nbias = [0, -1e21, 0]\n'), r"population\[1\]\.bias\[1\]: .*-1e\+21"),
    (('nu_bar = 0.0346 }', 'nu_bar = 0.0346, reg = 0 }'), r"neuron\.eps\.reg: must be > 0 \(got 0\)"),
    (('{ kind = "constant", value = 0.275 }', '{ kind = "scheduled", lam0 = 1e300, eta = 0.5 }'),
     r"neuron\.lam\.lam0: must lie in \[1e-06, 1\] \(got 1e\+300\)"),
    (('{ kind = "constant", value = 0.275 }', '{ kind = "scheduled", lam0 = 0.4, eta = 1e300 }'),
     r"neuron\.lam\.eta: must lie in \[0, 10\] \(got 1e\+300\)"),
    (('{ kind = "constant", value = 0.275 }', '{ kind = "constant", value = 1e-300 }'),
     r"neuron\.lam\.value: must lie in \[1e-06, 1\]"),
    (('{ kind = "osa", nu_bar = 0.0346 }', '{ kind = "scheduled", eps0 = 1e300 }'),
     r"neuron\.eps\.eps0: must lie in \(0, 1e\+06\]"),
    (('post = "output"\n', 'post = "output"\nweights = { init = "glorot_uniform", gain = 1e300 }\n'),
     r"projection\[1\]\.weights\.gain: makes weights beyond"),
])
def test_overflowing_values_are_refused_by_field(edit, match):
    with pytest.raises(NetlistError, match=r"^x\.toml: " + match):
        describe.loads(BASE.replace(*edit), path="x.toml")


def test_weights_file_beyond_float32(tmp_path):
    np.save(tmp_path / "w.npy", np.full((3, 2), 3.5e38))
    text = BASE.replace('post = "output"\n', 'post = "output"\nweights = { file = "w.npy" }\n')
    (tmp_path / "n.toml").write_text(text)
    with pytest.raises(NetlistError, match=r"projection\[1\]\.weights\.file \(.*w\.npy\)\[0, 0\]: "
                                           r"must lie in .*float32.*3\.5e\+38"):
        describe.load(tmp_path / "n.toml")


@pytest.mark.parametrize("x,match", [
    (np.full((1, 4), 1e308), r"inputs\[0, 0\]: must lie in \[-1e\+20, 1e\+20\] \(got 1e\+308\)"),
    (np.array([[0, 0, -1e21, 0]]), r"inputs\[0, 2\]: must lie in .*\(got -1e\+21\)"),
    (np.array([[0, np.inf, 0, 0]]), r"inputs\[0, 1\]: must be finite \(got inf\)"),
])
def test_inputs_bounded(tiny, x, match):
    with pytest.raises(EngineError, match=match):
        engines.session(tiny, x)


@pytest.mark.parametrize("engine", ["lockstep", "async"])
def test_beta_and_target_bounded(tiny, engine):
    s = engines.session(tiny, np.zeros((1, 4)), engine=engine)
    with pytest.raises(EngineError, match=r"beta: must lie in \[-1e\+20, 1e\+20\] \(got 1e\+300\)"):
        s.run(2, beta=1e300, target=np.zeros((1, 2)))
    with pytest.raises(EngineError, match=r"target\[0, 1\]: must lie in .*\(got 1e\+300\)"):
        s.run(2, beta=0.5, target=np.array([[0, 1e300]]))


@pytest.mark.parametrize("engine", ["lockstep", "async"])
def test_finite_state_check_names_population_and_neuron(tiny, engine):
    """Values that get past validation (here: weights written straight into the compiled
    network) and overflow stop the run with an EngineError naming the population."""
    cn = engines.build(tiny)
    wf = cn.wf.copy()
    wf[:] = 3e38
    object.__setattr__(cn, "wf", wf)
    s = engines.session(cn, np.ones((2, 4)), engine=engine)
    with pytest.raises(EngineError, match=r"^population 'hidden': neuron 0, sample 0: \S+ is not "
                                          r"finite after phase 'free' at step 10") as info:
        s.run(10, name="free")
    one_line(info.value)


def test_bounds_at_the_limit_stay_finite():
    """The largest allowed values everywhere, for many steps, on both engines: finite."""
    neuron = {"encoder": "none", "predictive": True, "decoder": "predictive",
              "lam": {"kind": "constant", "value": 1e-6},
              "eps": {"kind": "osa", "nu_bar": 0.5, "reg": 1e-300}}
    raw = _raw([5, 4, 3], neuron, w=MAX_VALUE, b=-MAX_VALUE)
    net = describe.from_dict(raw, path="<limit>")
    x = np.full((2, 5), MAX_VALUE)
    x[1] = -MAX_VALUE
    for engine in ("lockstep", "async"):
        s = engines.session(net, x, engine=engine)
        s.run(30)
        s.run(10, beta=MAX_VALUE, target=np.full((2, 3), -MAX_VALUE))
        for arr in (s.s, s.v, s.a, s.eps, *s.osa, s.u):
            assert np.isfinite(arr).all()


# --------------------------------------------------------------------------- generated netlists

def _raw(sizes, neuron, w=None, b=None, seed=0):
    names = ["input"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["output"]
    raw = {"network": {"name": "g", "seed": seed}, "neuron": neuron,
           "population": [{"name": n, "size": s} for n, s in zip(names, sizes)],
           "projection": [{"pre": names[i], "post": names[i + 1]} for i in range(len(sizes) - 1)]}
    if w is not None:
        for i, p in enumerate(raw["projection"]):
            p["weights"] = np.full((sizes[i], sizes[i + 1]), w) if np.isscalar(w) else w[i]
    if b is not None:
        for i, p in enumerate(raw["population"][1:], 1):
            p["bias"] = b if np.isscalar(b) else b[i - 1]
    return raw


EXTREME = [0.0, -0.0, 1e-320, 1e-300, 1e-7, 0.5, 1.0, 2.0, 10.0, 11.0, 1e6, 1.1e6, 1e20, 1.1e20,
           3.4e38, 1e39, 1e300, 1.7e308, -1.0, -1e20, -1e39, math.inf, -math.inf, math.nan]
numbers = st.one_of(st.sampled_from(EXTREME), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-10, 10), st.floats(-5, 5))
odd = st.one_of(numbers, st.booleans(), st.text("ab01._- ", max_size=3), st.none())


@st.composite
def components(draw, params_of):
    kind = draw(st.sampled_from(sorted(params_of)))
    out = {"kind": kind}
    for p in params_of[kind]:
        if p.default is None or draw(st.booleans()):
            out[p.name] = draw(numbers if draw(st.integers(0, 9)) else odd)
    return out


@st.composite
def netlists(draw):
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    enc = draw(st.sampled_from(["none", "stochastic", "sigma_delta"]))
    pred = draw(st.booleans())
    lam = draw(components(SCHEDULE_PARAMS))
    neuron = {"encoder": enc, "predictive": pred, "decoder": "predictive" if pred else "identity",
              "lam": lam, "eps": draw(components(ANNEALER_PARAMS))}
    arr = lambda shape: np.array(draw(st.lists(numbers, min_size=math.prod(shape),  # noqa: E731
                                               max_size=math.prod(shape))), float).reshape(shape)
    w = [arr((sizes[i], sizes[i + 1])) for i in range(len(sizes) - 1)]
    b = [arr((n,)) for n in sizes[1:]]
    seed = draw(st.one_of(st.integers(0, 2**63 - 1), st.sampled_from([-1, 2**63, 1.5, 2.0, True])))
    return _raw(sizes, neuron, w, b, seed)


def _outcome(raw, x, beta, engine="lockstep"):
    """'invalid' (one-line NetlistError) or 'ran' with finite states; anything else fails."""
    try:
        net = describe.from_dict(raw, path="<gen>")
    except NetlistError as exc:
        one_line(exc)
        return "invalid", None
    try:
        s = engines.session(net, x[:, :net.sizes[0]], engine=engine)
        s.run(4, name="free")
        s.run(3, beta=beta, target=np.clip(x[:, :net.sizes[-1]], 0, 1), name="nudged")
    except EngineError as exc:
        msg = one_line(exc)
        assert "is not finite" not in msg, f"bounds let a network overflow: {msg}"
        return "input refused", None
    for arr in (s.s, s.v, s.a, s.eps, *s.osa, s.u, s.phi, s.xm):
        assert np.isfinite(arr).all()
    return "ran", net


inputs = st.lists(st.sampled_from([0.0, 0.3, 1.0, -1.0, 1e20, -1e20, 2e20, 1e308]),
                  min_size=4, max_size=4).map(lambda v: np.array([v], float))
betas = st.sampled_from([0.0, 0.5, -3.0, 1e20, 1.5e20])


def _netlist_property(raw, x, beta):
    kind, net = _outcome(raw, x, beta)
    if kind == "ran":  # accepted inputs are the bounded ones
        assert np.all(np.abs(x[:, :net.sizes[0]]) <= MAX_VALUE) and abs(beta) <= MAX_VALUE


@FAST
@given(netlists(), inputs, betas)
def test_generated_netlists_validate_and_stay_finite(raw, x, beta):
    _netlist_property(raw, x, beta)


@pytest.mark.slow
@SLOW
@given(netlists(), inputs, betas)
def test_generated_netlists_validate_and_stay_finite_slow(raw, x, beta):
    _netlist_property(raw, x, beta)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(netlists(), inputs)
def test_generated_netlists_async_engine(raw, x):
    _outcome(raw, x, 0.5, engine="async")


# --------------------------------------------------------------------------- the three forms agree

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, np.ndarray):
        return _toml_value(v.tolist())
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def to_toml(raw) -> str | None:
    if any(v is None for v in _leaves(raw)):
        return None  # TOML has no null
    lines = ["[network]"] + [f"{k} = {_toml_value(v)}" for k, v in raw["network"].items()]
    lines += ["[neuron]"] + [f"{k} = {_toml_value(v)}" for k, v in raw["neuron"].items()]
    for kind in ("population", "projection"):
        for item in raw[kind]:
            lines += [f"[[{kind}]]"] + [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _leaves(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def _h5_attr(attrs, key, v):
    if isinstance(v, str):
        attrs.create(key, v, dtype=h5py.string_dtype())
    elif isinstance(v, bool):
        # h5py's boolean (an HDF5 enum); the writer stores predictive as uint8 0 / 1
        attrs.create(key, np.uint8(v) if key == "predictive" else np.bool_(v))
    elif isinstance(v, int) and -2**63 <= v < 2**64:
        attrs.create(key, np.int64(v) if v < 2**63 else np.uint64(v))
    elif isinstance(v, float):
        attrs.create(key, np.float64(v))
    else:
        return False
    return True


def to_h5(raw, path) -> bool:
    """The HDF5 form of a generated dict, attributes with the types the dict has (False if
    some value has no HDF5 attribute form)."""
    with h5py.File(path, "w") as f:
        f.attrs.create("format", np.bytes_(b"neuroemu-netlist"))
        f.attrs.create("format_version", np.array([1, 0], np.uint32))
        ok = all(_h5_attr(f.attrs, k, v) for k, v in raw["network"].items())
        for kind in ("population", "projection"):
            grp = f.create_group(kind)
            grp.attrs.create("count", np.int64(len(raw[kind])))
            for i, item in enumerate(raw[kind]):
                sub = grp.create_group(str(i))
                for k, v in item.items():
                    if isinstance(v, np.ndarray):
                        sub.create_dataset(k, data=v)
                    elif isinstance(v, (int, float)) and k == "bias":
                        sub.create_dataset(k, data=np.full(item["size"], float(v)))
                    else:
                        ok &= _h5_attr(sub.attrs, k, v)
                if kind == "population":
                    neu = sub.create_group("neuron")
                    for k, v in raw["neuron"].items():
                        if isinstance(v, dict):
                            c = neu.create_group(k)
                            ok &= all(_h5_attr(c.attrs, kk, vv) for kk, vv in v.items())
                        else:
                            ok &= _h5_attr(neu.attrs, k, v)
        return ok


def _verdict(load):
    try:
        return "ok", load()
    except NetlistError as exc:
        return one_line(exc).split(": ", 2)[1], None  # the field


def _forms_agree(raw, tmp):
    d_kind, d_net = _verdict(lambda: describe.from_dict(raw, path="<gen>"))
    text = to_toml(raw)
    if text is not None:
        t_kind, t_net = _verdict(lambda: describe.loads(text, path="t.toml"))
        assert t_kind == d_kind
        if d_net is not None:
            assert describe.same(d_net, t_net) if hasattr(describe, "same") else True
    if to_h5(raw, tmp / "g.h5"):
        h_kind, h_net = _verdict(lambda: describe.load(tmp / "g.h5"))
        # same verdict; with several bad fields the first named may differ (HDF5 lists
        # attributes by name, and holds each population's neuron table)
        assert (h_kind == "ok") == (d_kind == "ok"), (h_kind, d_kind)
        if d_net is not None:
            for p, q in zip(d_net.projections, h_net.projections):
                np.testing.assert_array_equal(p.weights, q.weights)
            assert h_net.seed == d_net.seed


@FAST
@given(netlists())
def test_toml_hdf5_and_dict_forms_agree(tmp_path_factory, raw):
    _forms_agree(raw, tmp_path_factory.mktemp("forms"))


@pytest.mark.slow
@SLOW
@given(netlists())
def test_toml_hdf5_and_dict_forms_agree_slow(tmp_path_factory, raw):
    _forms_agree(raw, tmp_path_factory.mktemp("forms"))


def _tiny_h5(path):
    describe.save(describe.load("tiny"), path)
    return path


@pytest.mark.parametrize("where,key,value,match", [
    ("/", "seed", 1.5, r"network\.seed: must be an integer \(got 1\.5\)"),
    ("/", "seed", np.float64(2.0), r"network\.seed: must be an integer \(got 2\.0\)"),
    ("/", "name", 5, r"network\.name: must be a name .*\(got 5\)"),
    ("population/1/neuron", "predictive", 0.5, r"population\[1\]\.neuron\.predictive: must be "
                                                r"true or false \(got 0\.5\)"),
    ("population/1/neuron", "predictive", np.uint8(2), r"predictive: must be true or false"),
    ("population/1", "size", "3", r"population\[1\]\.size: must be an integer \(got '3'\)"),
    ("population/1", "size", np.bytes_(b"3"), r"population\[1\]\.size: must be an integer"),
    ("population/1", "size", np.array([3, 3]), r"population\[1\]\.size: must be an integer"),
    ("population/2/neuron/eps", "nu_bar", "0.05", r"eps\.nu_bar: must be a number \(got '0\.05'\)"),
    ("population/2/neuron/eps", "reg", 0.0, r"eps\.reg: must be > 0 \(got 0\.0\)"),
    ("population", "count", 10**12, r"/population: count: must be an integer in \[0, 100000\]"),
    ("population", "count", "3", r"/population: count: must be an integer"),
    ("/", "format_version", 1, r"format_version: must be two integers"),
])
def test_hdf5_attributes_follow_the_toml_rules(tmp_path, where, key, value, match):
    path = _tiny_h5(tmp_path / "n.h5")
    with h5py.File(path, "a") as f:
        obj = f[where]
        del obj.attrs[key]
        if isinstance(value, str):
            obj.attrs.create(key, value, dtype=h5py.string_dtype())
        else:
            obj.attrs[key] = value
    with pytest.raises(NetlistError, match=match) as info:
        describe.load(path)
    one_line(info.value)


def test_hdf5_boolean_stored_as_uint8_still_reads(tmp_path):
    path = _tiny_h5(tmp_path / "n.h5")
    assert describe.load(path).populations[1].neuron.predictive is True


# --------------------------------------------------------------------------- profiles and JSON

def _profile(energy):
    return {"profile": {"name": "p"}, "noc": {"header_bits": 8, "flit_bits": 32},
            "energy_pj": energy}


energies = st.fixed_dictionaries({k: st.one_of(numbers, odd) if k not in hw.OPTIONAL_KINDS
                                  else st.one_of(numbers, odd) for k in hw.KINDS})


def _profile_property(energy, net):
    try:
        prof = hw.profile_from_dict(_profile(energy), "p.toml")
    except ProfileError as exc:
        assert one_line(exc).startswith("p.toml: energy_pj.")
        return
    rep = estimate_energy(net, prof, x=np.full((1, 4), 0.7), steps=5)
    json.dumps(rep.to_dict(), allow_nan=False)
    assert math.isfinite(rep.total_j)


@FAST
@given(energies)
def test_generated_profiles_give_finite_strict_json(tiny, energy):
    _profile_property(energy, tiny)


@pytest.mark.slow
@SLOW
@given(energies)
def test_generated_profiles_give_finite_strict_json_slow(tiny, energy):
    _profile_property(energy, tiny)


def test_largest_profile_gives_finite_totals(tiny):
    prof = hw.profile_from_dict(_profile({k: hw.MAX_PJ for k in hw.KINDS}), "max.toml")
    rep = estimate_energy(tiny, prof, x=np.ones((3, 4)), steps=50, nudge_steps=10,
                          target=np.ones((3, 2)))
    json.dumps(rep.to_dict(), allow_nan=False)


def test_profile_beyond_bound_named(tmp_path):
    with pytest.raises(ProfileError, match=r"p\.toml: energy_pj\.synaptic_op: .*at most 1e\+06 "
                                           r"\(got 1e\+308\)"):
        hw.profile_from_dict(_profile({**{k: 1.0 for k in hw.KINDS}, "synaptic_op": 1e308}),
                             "p.toml")


def test_non_finite_report_is_an_error(tiny):
    """Should a count ever be damaged, the report refuses to hold Infinity."""
    from neuroemu.energy import accounting
    prof = hw.load_profile("loihi")
    with pytest.raises(ProfileError, match=r"energy report\.total_j is not finite"):
        accounting._check_finite({"total_j": math.inf}, prof)


def test_cli_refuses_overflowing_netlist(tmp_path, capsys):
    from neuroemu.cli import main
    (tmp_path / "b.toml").write_text(BASE.replace("size = 3\n", "size = 3\nbias = 1e308\n"))
    assert main(["run", str(tmp_path / "b.toml"), "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "population[1].bias" in err and "1e+308" in err


def test_errors_are_neuroemu_errors():
    assert issubclass(NetlistError, NeuroemuError) and neuroemu.NeuroemuError is NeuroemuError
