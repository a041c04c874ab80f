"""The experiment protocols against their written definitions.

Every constant of the two protocols -- Equilibrium-Propagation training (docs/model.md
section 4, docs/training.md) and the convergence experiment of the paper's Fig. 2
(docs/model.md section 5) -- is written below once, as a literal copied from the docs, with
the section it comes from.  Each test checks both sides against that literal:

- the docs still say it (their tables and sentences are parsed), so a doc change without a
  code change fails;
- the code still does it (the presets, the neuron registry, the schemes, the CLI defaults,
  the error metric and the reference fixed point recomputed independently), so a code
  change without a doc change fails.

The paper itself is seed 001 (O'Connor, Gavves & Welling, AISTATS 2019); the numbers below
are the ones docs/model.md states.
"""

from __future__ import annotations

import inspect
import math
import re
import shlex
import tomllib
from dataclasses import fields

import numpy as np
import pytest

import reference as ref
from conftest import NETLISTS, ROOT, Work, make_netlist
from neuroemu import cli, describe, engines
from neuroemu.describe import neurons
from neuroemu.learn import converge
from neuroemu.learn import eqprop
from neuroemu.learn.datasets import train_validation_split
from neuroemu.learn.plots import PAPER_TEST_ERROR

MODEL_MD = ROOT / "docs" / "model.md"
TRAINING_MD = ROOT / "docs" / "training.md"
MANIFEST = ROOT / "benchmarks" / "manifest.toml"

# ============================================================ the written definitions

# docs/model.md 3.3: OSA's regulariser `reg`, default 1e-15 (training); 1e-7 in Fig. 2 (5).
OSA_REG_DEFAULT = 1e-15
OSA_REG_FIG2 = 1e-7

# docs/model.md 4.4 (neuron column) and 2: the paper's two neurons.  A neuron is written
# as (encoder, predictive, decoder, lam, eps); lam is None when there is no predictive
# coding (it is then unused), else (kind, params); eps is (kind, params).
CONTINUOUS_NEURON = ("none", False, "identity", None, ("constant", {"eps0": 0.5}))
BINARY_NEURON = ("sigma_delta", True, "predictive", ("constant", {"value": 0.275}),
                 ("osa", {"nu_bar": 0.0346, "reg": OSA_REG_DEFAULT}))

# docs/model.md 4.4 table (the same rows as docs/training.md's table and the CLI's help):
# kind -> layers, (steps free, steps nudged), beta, rates per projection, neuron.
PRESETS = {
    "continuous": ((784, 500, 10), (20, 4), 0.5, (0.1, 0.05), CONTINUOUS_NEURON),
    "binary": ((784, 500, 10), (100, 50), 0.5, (0.1, 0.05), BINARY_NEURON),
    "continuous-deep": ((784, 500, 500, 500, 10), (50, 8), 1.0,
                        (0.128, 0.032, 0.008, 0.002), CONTINUOUS_NEURON),
    # "the paper's tuned schedule is unpublished; neuroemu uses the binary row's neuron"
    "binary-deep": ((784, 500, 500, 500, 10), (100, 50), 1.0,
                    (0.128, 0.032, 0.008, 0.002), BINARY_NEURON),
}
# docs/model.md 4.4 "Minibatch 20 throughout"; 4.2 "first-order rule ... the default".
BATCH = 20
RULE = "first-order"
# docs/model.md 4.4: "The paper trained the shallow networks for 25 epochs".
SHALLOW_EPOCHS = 25
# docs/training.md table: kind -> the shipped netlist of that kind.
EXAMPLE_NETLISTS = {"continuous": "mnist-continuous", "binary": "mnist-binary",
                    "continuous-deep": "deep-continuous", "binary-deep": "deep-binary"}
# docs/model.md 4.3: training images 0-49,999 in file order, validation 50,000-59,999.
N_VALIDATION = 10000
# docs/model.md 4.6: the paper's test error / training error (%).
PAPER_ERRORS = {"binary": (2.37, 0.15), "continuous": (2.51, 0.25),
                "binary-deep": (3.65, 3.02), "continuous-deep": (2.42, 0.27)}

# docs/model.md 5, "Networks", "Run" and "Reference fixed points".
FIG2_SIZES = (500, 500, 10)
FIG2_BATCH = 20
FIG2_RUNS = 20
FIG2_FREE, FIG2_NUDGED = 250, 250
FIG2_BETA = 0.5
FIG2_REF_EPS = 0.5
FIG2_REF_FREE, FIG2_REF_NUDGED = 2500, 2500
FIG2_SCORED = (249, 499)      # "array indices 249 and 499 for the two scored steps"

# docs/model.md 5, "Schemes", in the documented order (the names are the code's, the ones
# `neuroemu converge --schemes` and docs/converge.json use).
_SQRT = ("scheduled", {"eps0": 1.0, "eta": 0.5})             # eps = 1/sqrt(t)
FIG2_SCHEMES = [
    ("sd_eps_sqrt", ("sigma_delta", False, "identity", None, _SQRT)),
    ("sd_pred_poly", ("sigma_delta", True, "predictive",
                      ("scheduled", {"lam0": 0.67, "eta": 0.578}),
                      ("scheduled", {"eps0": 0.775, "eta": 0.313}))),
    ("sd_osa", ("sigma_delta", False, "identity", None,
                ("osa", {"nu_bar": 0.0503, "reg": OSA_REG_FIG2}))),
    ("sd_pred_osa", ("sigma_delta", True, "predictive", ("constant", {"value": 0.206}),
                     ("osa", {"nu_bar": 0.0411, "reg": OSA_REG_FIG2}))),
    ("sd_pred_osa_lamsched", ("sigma_delta", True, "predictive",
                              ("scheduled", {"lam0": 0.39, "eta": 0.45}),
                              ("osa", {"nu_bar": 0.108, "reg": OSA_REG_FIG2}))),
    ("stochastic_eps_sqrt", ("stochastic", False, "identity", None, _SQRT)),
    # two-pole predictive coding: a neuron with a second lam schedule and a residue clamp
    # is written (encoder, predictive, decoder, lam, eps, lam2, clamp)
    ("sd_pred2_osa_clamp", ("sigma_delta", True, "predictive",
                            ("scheduled", {"lam0": 0.5438, "eta": 0.4194}),
                            ("osa", {"nu_bar": 0.3737, "reg": OSA_REG_FIG2}),
                            ("scheduled", {"lam0": 0.7795, "eta": 0.5624}),
                            {"a": 1.466, "b": 229.1})),
]
# The shipped fig2 netlist: "the paper's best scheme" (OSA with a scheduled lambda).
FIG2_BEST = "sd_pred_osa_lamsched"


# ============================================================ helpers

def neuron_of(n) -> tuple:
    """A validated netlist's Neuron in the notation above."""
    lam = (n.lam.kind, dict(n.lam.params)) if n.predictive else None
    out = (n.encoder, bool(n.predictive), n.decoder, lam, (n.eps.kind, dict(n.eps.params)))
    if n.lam2 is None and n.clamp is None:
        return out
    lam2 = (n.lam2.kind, dict(n.lam2.params)) if n.lam2 is not None else None
    return out + (lam2, dict(zip("ab", n.clamp)) if n.clamp is not None else None)


def neuron_dict(neuron: tuple) -> dict:
    """The notation above as a netlist's [neuron] table."""
    enc, pred, dec, lam, (ek, ep) = neuron[:5]
    out = {"encoder": enc, "predictive": pred, "decoder": dec, "eps": {"kind": ek, **ep}}
    if lam is not None:
        out["lam"] = {"kind": lam[0], **lam[1]}
    if len(neuron) > 5 and neuron[5] is not None:
        out["lam2"] = {"kind": neuron[5][0], **neuron[5][1]}
    if len(neuron) > 5 and neuron[6] is not None:
        out["clamp"] = dict(neuron[6])
    return out


def validated(neuron) -> tuple:
    """What the validator makes of a [neuron] table (defaults filled in)."""
    net = make_netlist((3, 2, 2), neuron)
    return neuron_of(net.populations[1].neuron)


def sci(v: float) -> str:
    """1e-07 as the docs write it: 1e-7."""
    return re.sub(r"e-0*", "e-", f"{v:g}")


def flat(text: str) -> str:
    """Markdown with its line breaks and runs of spaces as single spaces."""
    return " ".join(text.split())


def doc_section(path, number: str) -> str:
    """The text of section ``number`` ("4.4", "5") of a markdown file, up to the next
    heading of the same or a higher level."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+) " + re.escape(number) + r"\.? ", line)
        if m:
            level = len(m[1])
            body = []
            for nxt in lines[i + 1:]:
                h = re.match(r"(#+) ", nxt)
                if h and len(h[1]) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    raise AssertionError(f"{path.name}: no section {number}")


def md_table(text: str, first_header: str) -> list[dict]:
    """The rows of the markdown table in ``text`` whose header starts with ``first_header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.lstrip().startswith("|"):
                    break
                vals = [c.strip() for c in row.strip().strip("|").split("|")]
                rows.append(dict(zip(cells, vals)))
            return rows
    raise AssertionError(f"no table with a '{first_header}' column")


def numbers(cell: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"\d+(?:\.\d+)?", cell))


def doc_neuron(cell: str) -> tuple:
    """The neuron column of docs/model.md 4.4 in the notation above."""
    if cell.startswith("real-valued"):
        eps = re.fullmatch(r"real-valued(?: messages)?, `eps = ([\d.]+)`", cell)
        assert eps, cell
        return ("none", False, "identity", None, ("constant", {"eps0": float(eps[1])}))
    if "binary row's neuron" in cell:
        return "binary"
    m = re.fullmatch(r"sigma-delta, predictive `lam = ([\d.]+)`, `eps = OSA\(nu_bar = ([\d.]+)\)`",
                     cell)
    assert m, cell
    return ("sigma_delta", True, "predictive", ("constant", {"value": float(m[1])}),
            ("osa", {"nu_bar": float(m[2]), "reg": OSA_REG_DEFAULT}))


def doc_scheme(text: str) -> tuple:
    """One scheme of docs/model.md 5's "Schemes" list in the notation above."""
    def component(name, value):
        if value == "1/sqrt(t)":
            return ("scheduled", {"eps0": 1.0, "eta": 0.5})
        m = re.fullmatch(r"([\d.]+) / t\^([\d.]+)", value)
        if m:
            return ("scheduled", {f"{name}0": float(m[1]), "eta": float(m[2])})
        m = re.fullmatch(r"OSA\(([\d.]+)\)", value)
        if m:
            return ("osa", {"nu_bar": float(m[1]), "reg": OSA_REG_FIG2})
        m = re.fullmatch(r"[\d.]+", value)
        assert m and name == "lam", value
        return ("constant", {"value": float(value)})
    parts = dict(re.findall(r"`(eps|lam|lam2) = ([^`]+)`", text))
    assert set(parts) <= {"eps", "lam", "lam2"} and "eps" in parts, text
    lam = component("lam", parts["lam"]) if "lam" in parts else None
    pred = lam is not None
    out = ("stochastic" if "stochastic" in text else "sigma_delta", pred,
           "predictive" if pred else "identity", lam, component("eps", parts["eps"]))
    clamp = re.search(r"`clamp = ([\d.]+) \+ ([\d.]+) / t`", text)
    if "lam2" in parts or clamp:
        lam2 = component("lam", parts["lam2"]) if "lam2" in parts else None
        out += (lam2, {"a": float(clamp[1]), "b": float(clamp[2])} if clamp else None)
    return out


def compiled(name: str):
    return engines.build(describe.load(NETLISTS / f"{name}.toml"))


# ============================================================ the documents say it

def test_model_md_4_4_table_is_the_written_presets():
    sec = doc_section(MODEL_MD, "4.4")
    rows = md_table(sec, "kind")
    assert [r["kind"] for r in rows] == list(PRESETS)
    for r in rows:
        layers, steps, beta, rates, neuron = PRESETS[r["kind"]]
        assert tuple(int(v) for v in r["layers"].split("-")) == layers, r
        assert numbers(r["steps free / nudged"]) == steps, r
        assert float(r["beta"]) == beta, r
        assert numbers(r["rates `eta_l` per projection"]) == rates, r
        got = doc_neuron(r["neuron"])
        assert (PRESETS[got][4] if got == "binary" else got) == neuron, r
    assert f"Minibatch {BATCH} throughout" in flat(sec)
    assert f"shallow networks for {SHALLOW_EPOCHS} epochs" in flat(sec)
    # binary = every population spikes, deep = more than one hidden layer
    assert "*binary* when every population sends spikes" in flat(sec)
    assert "*deep* when there is more than one hidden layer" in flat(sec)


def test_model_md_4_2_and_3_3_defaults():
    rules = flat(doc_section(MODEL_MD, "4.2"))
    assert f"{RULE} rule (the one behind the paper's results; the default)" in rules
    assert "minibatch of `B` samples" in flat(doc_section(MODEL_MD, "4.1"))
    osa = flat(doc_section(MODEL_MD, "3.3"))
    assert f"(`reg`, default {sci(OSA_REG_DEFAULT)}; the convergence experiment uses " \
           f"{sci(OSA_REG_FIG2)})" in osa


def test_model_md_4_3_data_split():
    sec = flat(doc_section(MODEL_MD, "4.3"))
    n_fit = 60000 - N_VALIDATION
    assert f"training images 0-{n_fit - 1:,} in file order, unshuffled, {BATCH} per " \
           f"minibatch ({n_fit // BATCH:,} updates per epoch)" in sec
    assert f"images {n_fit:,}-59,999 for validation" in sec
    assert "`U(-a, a)` with `a = sqrt(6 / (n_in + n_out))`; biases zero" in sec


def test_training_md_table_is_the_written_presets():
    rows = md_table(TRAINING_MD.read_text(), "kind")
    assert [r["kind"] for r in rows] == list(PRESETS)
    for r in rows:
        _, steps, beta, rates, _ = PRESETS[r["kind"]]
        assert r["example netlist"] == f"`{EXAMPLE_NETLISTS[r['kind']]}`", r
        assert numbers(r["steps free/nudged"]) == steps, r
        assert float(r["beta"]) == beta, r
        assert numbers(r["rates per projection"]) == rates, r
        assert int(r["batch"]) == BATCH, r


def test_model_md_4_6_paper_figures():
    sec = flat(doc_section(MODEL_MD, "4.6"))
    b, c, db, dc = (PAPER_ERRORS[k] for k in ("binary", "continuous", "binary-deep",
                                              "continuous-deep"))
    assert (f"binary 784-500-10 {b[0]}% / {b[1]}%, continuous {c[0]}% / {c[1]}%; "
            f"deep binary {db[0]}% / {db[1]}%, deep continuous {dc[0]}% / {dc[1]}%") in sec


def test_model_md_5_states_the_fig2_protocol():
    sec = flat(doc_section(MODEL_MD, "5"))
    n_in, n_h, n_out = FIG2_SIZES
    assert f"**Networks**: {n_in}-{n_h}-{n_out} with a {n_in}-neuron input, Glorot " \
           f"weights, zero biases; a batch of {FIG2_BATCH} inputs drawn uniformly from " \
           f"`[0, 1]^{n_in}` and {FIG2_BATCH} random one-hot targets" in sec
    assert f"({FIG2_RUNS} in the paper)" in sec
    assert "draws fresh weights, inputs and targets" in sec
    T = FIG2_FREE + FIG2_NUDGED
    assert f"**Run**: {T} synchronous steps from the zero state; steps 1-{FIG2_FREE} free, " \
           f"steps {FIG2_FREE + 1}-{T} nudged with `beta = {FIG2_BETA}` (step {FIG2_FREE + 1} " \
           f"is the first to feel the nudge)" in sec
    assert f"(array indices {FIG2_SCORED[0]} and {FIG2_SCORED[1]} for the two scored steps)" \
        in sec
    assert FIG2_SCORED == (FIG2_FREE - 1, T - 1)
    assert f"one continuous run (`eps = {FIG2_REF_EPS}`, section 2) with the same " \
           f"float32-rounded weights, inputs and targets and the same input lag: " \
           f"{FIG2_REF_FREE:,} free steps from zero, then {FIG2_REF_NUDGED:,} nudged steps " \
           f"(`beta = {FIG2_BETA}`) without reset" in sec
    assert f"The free fixed point is the state after step {FIG2_REF_FREE:,}, the nudged one " \
           f"after step {FIG2_REF_FREE + FIG2_REF_NUDGED:,}" in sec
    assert f"the mean `|s - s_fixed|` over samples and neurons (against the free fixed point " \
           f"up to step {FIG2_FREE}, the nudged one after), then the mean over the layers, " \
           f"**each layer weighted equally**" in sec
    assert f"the mean over networks of `(error at step {FIG2_FREE} + error at step {T}) / 2`" \
        in sec
    assert f"OSA's regulariser is `{sci(OSA_REG_FIG2)}` in this experiment" in sec


def test_model_md_5_schemes_are_the_written_schemes():
    sec = flat(doc_section(MODEL_MD, "5"))
    m = re.search(r"\*\*Schemes\*\* \(in this order in the code\): (.*?)\. OSA's", sec)
    assert m, "docs/model.md 5: no Schemes list"
    parsed = [doc_scheme(part) for part in m[1].split("; ")]
    assert parsed == [neuron for _, neuron in FIG2_SCHEMES]


def test_model_md_2_continuous_step():
    sec = flat(doc_section(MODEL_MD, "2"))
    assert f"`eps = constant {FIG2_REF_EPS}`" in sec
    assert f"`s_l <- clip({1 - FIG2_REF_EPS} s_l + {FIG2_REF_EPS} (rho(s_{{l-1}}) W_{{l-1}} + " \
           f"rho(s_{{l+1}}) W_l^T + b_l + p_l), 0, 1)`" in sec


# ============================================================ the code does it: training

@pytest.mark.parametrize("kind", list(PRESETS))
def test_code_presets_are_the_written_ones(kind):
    layers, (n_free, n_nudged), beta, rates, _ = PRESETS[kind]
    p = eqprop.PRESETS[kind]
    assert (p["n_free"], p["n_nudged"], p["beta"], tuple(p["rates"])) == \
        (n_free, n_nudged, beta, rates)
    assert p.get("batch", BATCH) == BATCH and p.get("rule", RULE) == RULE
    assert len(rates) == len(layers) - 1
    assert set(eqprop.PRESETS) == set(PRESETS)


def test_hyper_defaults():
    d = {f.name: f.default for f in fields(eqprop.Hyper)}
    assert (d["batch"], d["rule"]) == (BATCH, RULE)
    # the bare Hyper() is the binary network's row
    _, (n_free, n_nudged), beta, rates, _ = PRESETS["binary"]
    assert (d["beta"], d["n_free"], d["n_nudged"], d["rates"]) == (beta, n_free, n_nudged, rates)


@pytest.mark.parametrize("kind", list(PRESETS))
def test_shipped_netlist_gets_its_preset(kind):
    """The example netlist of each kind (docs/training.md): its layers and neuron are the
    row's, ``Hyper.for_network`` classifies it as that kind and gives the row's values."""
    layers, (n_free, n_nudged), beta, rates, neuron = PRESETS[kind]
    net = compiled(EXAMPLE_NETLISTS[kind])
    nl = net.netlist
    assert tuple(nl.sizes) == layers
    assert all(neuron_of(p.neuron) == neuron for p in nl.populations[1:])
    assert eqprop.Hyper.preset_name(net) == kind
    hp = eqprop.Hyper.for_network(net)
    assert (hp.n_free, hp.n_nudged, hp.beta, hp.rates, hp.batch, hp.rule) == \
        (n_free, n_nudged, beta, rates, BATCH, RULE)


@pytest.mark.parametrize("sizes, neuron, kind", [
    ((4, 3, 2), BINARY_NEURON, "binary"),
    ((4, 3, 3, 2), BINARY_NEURON, "binary-deep"),          # more than one hidden layer
    ((4, 3, 2), CONTINUOUS_NEURON, "continuous"),
    ((4, 3, 3, 2), CONTINUOUS_NEURON, "continuous-deep"),
])
def test_preset_choice_rule(sizes, neuron, kind):
    net = engines.build(make_netlist(sizes, neuron_dict(neuron)))
    assert eqprop.Hyper.preset_name(net) == kind


def test_preset_choice_binary_needs_every_population_to_spike():
    """docs/model.md 4.4: *binary* when every population sends spikes -- a network whose
    input sends real values is not binary."""
    hidden = {"encoder": "sigma_delta", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}
    raw_net = make_netlist((4, 3, 2), hidden)
    assert engines.build(raw_net).binary
    names = [p.name for p in raw_net.populations]
    net = describe.from_dict(
        {"network": {"name": "mixed", "seed": 0}, "neuron": hidden,
         "population": [{"name": names[0], "size": 4, "neuron": {"encoder": "none"}},
                        {"name": names[1], "size": 3}, {"name": names[2], "size": 2}],
         "projection": [{"pre": names[0], "post": names[1],
                         "weights": {"init": "glorot_uniform"}},
                        {"pre": names[1], "post": names[2],
                         "weights": {"init": "glorot_uniform"}}]}, path="<test>")
    assert eqprop.Hyper.preset_name(engines.build(net)) == "continuous"


def test_neuron_registry_is_the_written_neurons():
    """NEURON_PRESETS (what ``describe.layered`` builds) and the OSA default regulariser."""
    assert validated(neurons.NEURON_PRESETS["binary"]) == BINARY_NEURON
    assert validated(neurons.NEURON_PRESETS["continuous"]) == CONTINUOUS_NEURON
    assert validated(neurons.DEFAULT_NEURON) == CONTINUOUS_NEURON     # docs/model.md 2
    reg = {p.name: p.default for p in neurons.ANNEALER_PARAMS["osa"]}["reg"]
    assert reg == OSA_REG_DEFAULT
    for kind in ("binary", "continuous"):
        nl = describe.layered((4, 3, 2), kind)
        assert all(neuron_of(p.neuron) == PRESETS[kind][4] for p in nl.populations[1:])


def test_train_cli_help_lists_the_written_presets():
    from neuroemu.cli import train as tr
    rows = re.findall(r"^\s+(\S+)\s+([\d-]+)\s+beta ([\d.]+), steps (\d+)/(\d+),\s+rates (\S+)$",
                      tr.EXAMPLE, re.M)
    assert [r[0] for r in rows] == list(PRESETS)
    for kind, layers, beta, n_free, n_nudged, rates in rows:
        want_layers, steps, want_beta, want_rates, _ = PRESETS[kind]
        assert tuple(int(v) for v in layers.split("-")) == want_layers
        assert (float(beta), (int(n_free), int(n_nudged))) == (want_beta, steps)
        assert tuple(float(r) for r in rates.split(",")) == want_rates
    assert f"rule {RULE}" in flat(tr.EXAMPLE) and f"minibatch {BATCH}" in flat(tr.EXAMPLE)


@pytest.mark.parametrize("kind", list(PRESETS))
def test_train_cli_without_options_trains_with_the_preset(kind, monkeypatch, tmp_path):
    """``neuroemu train NETLIST`` with no hyper-parameter option: the row's values, batch
    20, the first-order rule, validation = the last 10,000 training images, file order."""
    from neuroemu.cli import train as tr
    seen = {}

    class Recording(eqprop.Hyper):
        @classmethod
        def for_network(cls, net, **overrides):
            seen["hp"] = eqprop.Hyper.for_network(net, **overrides)
            return seen["hp"]

    def stop(args):
        seen["args"] = args
        raise Work()
    monkeypatch.setattr(tr, "Hyper", Recording)
    monkeypatch.setattr(tr, "_load_data", stop)
    with pytest.raises(Work):
        cli.main(["train", str(NETLISTS / f"{EXAMPLE_NETLISTS[kind]}.toml"),
                  "--out", str(tmp_path / "out.toml")])
    _, (n_free, n_nudged), beta, rates, _ = PRESETS[kind]
    hp = seen["hp"]
    assert (hp.n_free, hp.n_nudged, hp.beta, hp.rates, hp.batch, hp.rule) == \
        (n_free, n_nudged, beta, rates, BATCH, RULE)
    args = seen["args"]
    assert (args.validation, args.shuffle, args.init) == (N_VALIDATION, False, "netlist")


def test_validation_split_is_the_last_images():
    from neuroemu.learn.datasets import Dataset
    assert inspect.signature(train_validation_split).parameters["n_validation"].default \
        == N_VALIDATION
    n = N_VALIDATION + 7
    ds = Dataset(images=np.arange(n, dtype=float)[:, None], labels=np.zeros(n, np.int64),
                 name="x", split="train", path=ROOT)
    fit, val = train_validation_split(ds)
    assert fit.images[:, 0].tolist() == list(range(7))
    assert val.images[:, 0].tolist() == list(range(7, n))


def test_glorot_is_the_written_distribution():
    """docs/model.md 4.3 and 5: U(-a, a), a = sqrt(6 / (n_in + n_out))."""
    from neuroemu.describe.netlist import glorot_uniform
    n_in, n_out = 400, 200
    a = math.sqrt(6 / (n_in + n_out))
    for w in (glorot_uniform((n_in, n_out), 3), eqprop.glorot_weights((n_in, n_out), 3)[0]):
        assert w.shape == (n_in, n_out)
        # the largest of n uniform draws lies within a * 20 / n of a (but for e^-20)
        assert a * (1 - 20 / w.size) < np.abs(w).max() <= a
        assert a * (1 - 20 / w.size) < -w.min() and a * (1 - 20 / w.size) < w.max()
        assert abs(w.mean()) < 0.01 * a
        assert w.var() == pytest.approx(a * a / 3, rel=0.02)
    # the shipped untrained netlists carry such weights, zero biases
    net = compiled("mnist-binary")
    for l, (n0, n1) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        bound = math.sqrt(6 / (n0 + n1))
        w = net.weights(l)
        assert bound * (1 - 20 / w.size) < np.abs(w).max() <= np.float32(bound)
    assert all(not np.any(net.biases(l)) for l in range(1, net.n_layers))


def test_paper_figures_in_the_code():
    for kind, (test_err, _) in PAPER_ERRORS.items():
        assert PAPER_TEST_ERROR[(kind, "mnist")] == test_err


def _opt(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def _manifest_train_commands():
    """The training commands of the manifest's entries for the paper's training figures
    (sections "Training..."); experiments elsewhere (a section on graphs comparing rates and
    nudging) set their own hyper-parameters on purpose."""
    with open(MANIFEST, "rb") as f:
        entries = tomllib.load(f)["entry"]
    for e in entries:
        if not e["section"].startswith("Training"):
            continue
        cmds = e["command"] if isinstance(e["command"], list) else [e["command"]]
        for c in cmds:
            argv = shlex.split(c)
            if argv[:2] == ["neuroemu", "train"]:
                yield e["name"], argv


def test_recorded_runs_use_the_presets_and_the_paper_epochs():
    """benchmarks/manifest.toml (what made every figure): no training run overrides a
    preset, and the full runs of the shallow MNIST networks train for the paper's 25
    epochs (docs/model.md 4.4), as docs/training.md's results table says."""
    overrides = {"--beta", "--steps-free", "--steps-nudged", "--rates", "--rule", "--batch",
                 "--validation", "--shuffle", "--train-limit"}
    full = {}
    for name, argv in _manifest_train_commands():
        assert not overrides & set(argv), (name, argv)
        if argv[2] in ("mnist-binary", "mnist-continuous") and _opt(argv, "--dataset") == \
                "mnist" and not name.startswith("epoch1-"):
            full[argv[2]] = int(_opt(argv, "--epochs"))
    assert full == {"mnist-binary": SHALLOW_EPOCHS, "mnist-continuous": SHALLOW_EPOCHS}
    rows = md_table(TRAINING_MD.read_text(), "run")
    documented = {}
    for r in rows:
        argv = shlex.split(r["command"].strip("`").split("`")[0])
        if argv[2] in ("mnist-binary", "mnist-continuous") and _opt(argv, "--dataset") == "mnist":
            assert not overrides & set(argv), r
            documented[argv[2]] = (int(_opt(argv, "--epochs")), int(r["epochs"]))
    assert documented == {k: (SHALLOW_EPOCHS, SHALLOW_EPOCHS) for k in full}


# ============================================================ the code does it: Fig. 2

def test_fig2_protocol_defaults():
    p = converge.Protocol()
    assert (tuple(p.sizes), p.batch, p.free, p.nudged, p.beta, p.ref_free, p.ref_nudged) == \
        (FIG2_SIZES, FIG2_BATCH, FIG2_FREE, FIG2_NUDGED, FIG2_BETA, FIG2_REF_FREE,
         FIG2_REF_NUDGED)
    assert inspect.signature(converge.experiment).parameters["runs"].default == FIG2_RUNS
    assert inspect.signature(converge.continuous_states).parameters["eps"].default == \
        FIG2_REF_EPS


def test_fig2_schemes_are_the_written_ones():
    assert list(converge.SCHEMES) == [name for name, _ in FIG2_SCHEMES]
    for name, neuron in FIG2_SCHEMES:
        assert validated(converge.SCHEMES[name]) == neuron, name
    # the networks the experiment builds carry them on every non-input population
    w = [np.zeros((3, 2)), np.zeros((2, 2))]
    for name, neuron in FIG2_SCHEMES:
        nl = converge.make_network((3, 2, 2), converge.SCHEMES[name], w, 0)
        assert all(neuron_of(p.neuron) == neuron for p in nl.populations)
    # the shipped fig2 netlist is the best scheme on the Fig. 2 network
    nl = describe.load(NETLISTS / "fig2.toml")
    assert tuple(nl.sizes) == FIG2_SIZES
    assert all(neuron_of(p.neuron) == dict(FIG2_SCHEMES)[FIG2_BEST] for p in nl.populations)


def test_fig2_labels_name_the_parameters():
    """The figure's legend states each scheme's numbers (as docs/model.md 5 writes them)."""
    for name, neuron in FIG2_SCHEMES:
        lam, (_, eps) = neuron[3], neuron[4]
        label = converge.LABELS[name]
        got = sorted(float(v) for v in re.findall(r"\d+\.\d+|\b\d+\b", label))
        want = [v for v in eps.values() if v != OSA_REG_FIG2] + \
            (list(lam[1].values()) if lam else [])
        if len(neuron) > 5:                                     # lam2, clamp
            want += list(neuron[5][1].values()) + list(neuron[6].values())
        if eps.get("eta") == 0.5 and eps.get("eps0") == 1.0:      # "1/sqrt(t)"
            assert "1/sqrt(t)" in label
            want = [1.0]
        assert got == sorted(want), (name, label)


def test_fig2_cli_runs_the_written_protocol(monkeypatch, tmp_path):
    """``neuroemu converge`` with no option: 20 networks, every scheme, the protocol."""
    from neuroemu.cli import converge as cv
    seen = {}

    def fake(runs, seed, names, proto, spikes=None):
        seen.update(runs=runs, names=list(names), proto=proto)
        T = proto.free + proto.nudged
        return {n: np.ones((runs, T)) for n in names}
    monkeypatch.setattr(cv, "experiment", fake)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["converge", "--plot", ""]) == 0
    assert seen["runs"] == FIG2_RUNS
    assert seen["names"] == [name for name, _ in FIG2_SCHEMES]
    p = seen["proto"]
    assert (tuple(p.sizes), p.batch, p.free, p.nudged, p.beta, p.ref_free, p.ref_nudged) == \
        (FIG2_SIZES, FIG2_BATCH, FIG2_FREE, FIG2_NUDGED, FIG2_BETA, FIG2_REF_FREE,
         FIG2_REF_NUDGED)
    with open(MANIFEST, "rb") as f:
        fig2 = [e for e in tomllib.load(f)["entry"] if e["name"] == "fig2"][0]
    argv = shlex.split(fig2["command"])
    assert argv[:2] == ["neuroemu", "converge"]
    assert int(argv[argv.index("--runs") + 1]) == FIG2_RUNS and "--schemes" not in argv


def test_fig2_error_metric_on_a_hand_made_example():
    """docs/model.md 5: per non-input layer the mean |s - s_fixed| over samples and neurons,
    then the mean over the layers, each layer weighted equally."""
    rng = np.random.default_rng(5)
    sizes = (3, 2, 5)                       # unequal layers: neuron weighting would differ
    off = np.concatenate([[0], np.cumsum(sizes)])
    T, B = 4, 2
    states = rng.random((T, B, off[-1]))
    fixed = [rng.random((B, n)) for n in sizes]
    fixed[0] = np.full((B, sizes[0]), 7.0)   # the input layer is not scored
    want = np.empty(T)
    for t in range(T):
        per_layer = []
        for l in (1, 2):
            total = 0.0
            for b in range(B):
                for j in range(sizes[l]):
                    total += abs(states[t, b, off[l] + j] - fixed[l][b, j])
            per_layer.append(total / (B * sizes[l]))
        want[t] = (per_layer[0] + per_layer[1]) / 2
    got = converge.layer_errors(states, fixed, off)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    # and it is not the neuron-weighted mean (the doc: that changes the scores by 20-55%)
    neuron_weighted = np.abs(states[:, :, off[1]:] - np.concatenate(fixed[1:], axis=1)).mean(
        axis=(1, 2))
    assert np.all(np.abs(got - neuron_weighted) > 1e-3)


def test_fig2_score_on_hand_made_curves():
    """docs/model.md 5: score = mean over networks of (error at step 250 + error at 500)/2,
    the error at step t being the state after update t (indices 249 and 499)."""
    runs, T = 3, FIG2_FREE + FIG2_NUDGED
    curves = np.full((runs, T), 100.0)
    i250, i500 = FIG2_SCORED
    curves[:, i250] = [1.0, 2.0, 6.0]
    curves[:, i500] = [0.5, 0.25, 0.75]
    res = converge.scores({"s": curves}, converge.Protocol())["s"]
    assert res["score"] == pytest.approx(((1 + .5) / 2 + (2 + .25) / 2 + (6 + .75) / 2) / 3,
                                         rel=1e-15)
    assert res["error_at_250"] == pytest.approx(3.0, rel=1e-15)
    assert res["error_at_500"] == pytest.approx(0.5, rel=1e-15)
    assert res["runs"] == runs


def _capture_one_run(monkeypatch, proto, schemes, *, stub_reference=False, run=0):
    """Run ``converge.one_run`` recording the weights it draws, the reference runs it asks
    for and the sessions it opens."""
    seen = {"weights": [], "ref": [], "seeds": []}
    real_glorot, real_states, real_session = (converge.glorot_uniform,
                                              converge.continuous_states, converge.session)

    def glorot(shape, seed, *a, **k):
        w = real_glorot(shape, seed, *a, **k)
        seen["weights"].append(w.copy())
        return w

    def states(W, x, steps, beta=0.0, y=None, s=None, **k):
        seen["ref"].append(dict(W=[w.copy() for w in W], x=x.copy(), steps=steps, beta=beta,
                                y=None if y is None else y.copy(), s=s, kw=k))
        if stub_reference:
            out = [x] + [np.zeros((x.shape[0], w.shape[1])) for w in W]
        else:
            out = real_states(W, x, steps, beta=beta, y=y, s=s, **k)
        seen["ref"][-1]["out"] = out
        return out

    def session(cn, x, **k):
        sess = real_session(cn, x, **k)
        seen["seeds"].append(np.array(sess.seeds))
        seen["x"] = np.array(x)
        return sess
    monkeypatch.setattr(converge, "glorot_uniform", glorot)
    monkeypatch.setattr(converge, "continuous_states", states)
    monkeypatch.setattr(converge, "session", session)
    seen["curves"] = converge.one_run(run, 11, schemes, proto)
    monkeypatch.undo()
    return seen


def test_fig2_network_and_reference_runs_are_the_written_ones(monkeypatch):
    """The default protocol's wiring: fresh Glorot weights per network, inputs uniform in
    [0, 1]^500, one-hot targets, and the reference asked for 2,500 free steps from zero
    then 2,500 nudged steps (beta 0.5) continuing from the free fixed point, with the
    float32-rounded weights."""
    seen = _capture_one_run(monkeypatch, converge.Protocol(), [], stub_reference=True)
    shapes = list(zip(FIG2_SIZES[:-1], FIG2_SIZES[1:]))
    assert [w.shape for w in seen["weights"]] == shapes
    free, nudged = seen["ref"]
    x = free["x"]
    assert x.shape == (FIG2_BATCH, FIG2_SIZES[0])
    assert x.min() >= 0 and x.max() < 1 and x.min() < 0.001 and x.max() > 0.999
    assert abs(x.mean() - 0.5) < 0.01
    assert free["steps"] == FIG2_REF_FREE and free["beta"] == 0 and free["y"] is None
    assert free["s"] is None                                  # from zero
    assert free["kw"].get("eps", FIG2_REF_EPS) == FIG2_REF_EPS
    assert nudged["steps"] == FIG2_REF_NUDGED and nudged["beta"] == FIG2_BETA
    assert nudged["s"] is free["out"]                         # without reset
    assert nudged["kw"].get("eps", FIG2_REF_EPS) == FIG2_REF_EPS
    np.testing.assert_array_equal(nudged["x"], x)
    y = nudged["y"]
    assert y.shape == (FIG2_BATCH, FIG2_SIZES[-1])
    assert np.all(y.sum(axis=1) == 1) and set(np.unique(y)) == {0.0, 1.0}
    for ref_run in (free, nudged):
        for w, w0 in zip(ref_run["W"], seen["weights"]):
            np.testing.assert_array_equal(w, w0.astype(np.float32).astype(np.float64))
    # another network draws other weights, inputs and targets
    other = _capture_one_run(monkeypatch, converge.Protocol(), [], stub_reference=True, run=1)
    assert not np.array_equal(other["ref"][0]["x"], x)
    assert not np.array_equal(other["ref"][1]["y"], y)
    for w, w0 in zip(other["weights"], seen["weights"]):
        assert w.shape == w0.shape and not np.any(w == w0)


def test_fig2_curves_against_an_independent_computation(monkeypatch):
    """One network of the experiment on a small network with the documented protocol:
    the code's error curve of every scheme equals the one computed here from the docs --
    the spiking run by tests/reference.py with the documented scheme (not the code's
    SCHEMES), free for 250 steps then nudged with beta 0.5; the fixed points by the
    continuous dynamics (float64, eps 0.5, float32-rounded weights, input lag) for 2,500
    free then 2,500 nudged steps; the error as the written formula."""
    sizes, batch = (6, 5, 3), 2
    proto = converge.Protocol(sizes=sizes, batch=batch)
    seen = _capture_one_run(monkeypatch, proto, [n for n, _ in FIG2_SCHEMES])
    W64 = seen["weights"]
    W = [w.astype(np.float32).astype(np.float64) for w in W64]
    x, y = seen["x"], seen["ref"][1]["y"]
    b = [np.zeros(n) for n in sizes[1:]]
    fp_free = ref.continuous_run(W, b, x, FIG2_REF_FREE, eps=FIG2_REF_EPS)
    fp_nudged = ref.continuous_run(W, b, x, FIG2_REF_NUDGED, beta=FIG2_BETA, y=y,
                                   eps=FIG2_REF_EPS, s=fp_free)
    # run to convergence: one more step moves nothing
    for fp, beta in ((fp_free, 0.0), (fp_nudged, FIG2_BETA)):
        again = ref.continuous_run(W, b, x, 1, beta=beta, y=y if beta else None, s=fp)
        assert max(np.abs(a - c).max() for a, c in zip(again, fp)) < 1e-12
    names = ["input", "hidden", "output"]
    T = FIG2_FREE + FIG2_NUDGED
    for k, (name, neuron) in enumerate(FIG2_SCHEMES):
        net = describe.from_dict(
            {"network": {"name": "fig2-test", "seed": 0}, "neuron": neuron_dict(neuron),
             "population": [{"name": n, "size": s} for n, s in zip(names, sizes)],
             "projection": [{"pre": names[i], "post": names[i + 1], "weights": W64[i]}
                            for i in range(2)]}, path="<test>")
        want = np.zeros(T)
        for s_i in range(batch):
            r = ref.Network(net, x[s_i], seed=int(seen["seeds"][k][s_i]))
            for t in range(1, T + 1):
                nudge = t > FIG2_FREE
                r.step(beta=FIG2_BETA if nudge else 0.0, y=y[s_i] if nudge else None)
                fp = fp_nudged if nudge else fp_free
                # per layer: mean over samples and neurons; then layers weighted equally
                for l in (1, 2):
                    want[t - 1] += np.abs(r.s[l] - fp[l][s_i]).sum() / (batch * sizes[l]) / 2
        got = seen["curves"][name]
        assert got.shape == (T,)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=name)
