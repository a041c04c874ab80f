"""Sweep specifications (``neuroemu sweep SPEC.toml``, docs/sweep.md): read, checked field by
field before any work.

A spec names a netlist, a dataset, the objectives, fixed changes to the netlist's neurons and to
the training (``[neuron]``, ``[population.NAME.neuron]``, ``[train]``, ``[eval]``,
``[energy]``), and the parameters searched (``[[param]]``, each a *field*):

- ``neuron.KEY`` or ``neuron.lam.PARAM`` / ``neuron.eps.PARAM``: every population whose model
  has that key (the paper's neuron: encoder, predictive, decoder, lam, eps; IF/LIF: threshold,
  leak, reset, v0); ``population.NAME.neuron.KEY...``: one population;
- ``train.KEY``: epochs, images, validation_images, batch, beta, steps_free, steps_nudged,
  rates.I (projection I's learning rate), rule, nudge, init, shuffle;
- ``eval.KEY``: steps (default: the trial's steps_free), warmup, batch.

Every problem is a one-line :class:`~neuroemu.errors.SweepError` naming the spec file, the
field and the value.  :mod:`.config` turns a trial's values into its settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..describe import load as load_netlist
from ..describe import resolve as resolve_netlist
from ..describe.neurons import DECODERS, ENCODERS, MODEL_KEYS, RESETS
from ..errors import NeuroemuError, SweepError
from ..learn.eqprop import NUDGES, RULES
from .config import COMPONENTS, PARAM_TABLES, base_value, check_config, trial_config

__all__ = ["Spec", "Param", "load_spec", "loads_spec", "OBJECTIVES", "SAMPLERS"]

# What each objective measures (all are minimised); the validation images are those of
# [train] validation_images, classified as `neuroemu eval --split validation` does.
OBJECTIVES = {
    "validation_error": "validation error (fraction misclassified)",
    "spikes_per_inference": "spikes per inference (messages of all populations)",
    "syn_events_per_weight": "synaptic events per weight per inference",
    "joules_per_inference": "joules per inference on the [energy] profile",
    "wall_seconds": "wall time of the trial (training and evaluation), seconds",
}
SAMPLERS = ("tpe", "nsga2", "random")
DATASETS = ("mnist", "fashion-mnist", "digits")

_INT, _FLOAT, _BOOL, _STR = "int", "float", "bool", "str"
# [train] and [eval] keys: (type, lowest value or the choices)
TRAIN = {"epochs": (_INT, 0), "images": (_INT, 1), "validation_images": (_INT, 1),
         "batch": (_INT, 1), "beta": (_FLOAT, 0.0), "steps_free": (_INT, 1),
         "steps_nudged": (_INT, 1), "rule": (_STR, RULES), "nudge": (_STR, NUDGES),
         "init": (_STR, ("netlist", "glorot")), "shuffle": (_BOOL, None)}
EVAL = {"steps": (_INT, 1), "warmup": (_INT, 0), "batch": (_INT, 1)}
ENERGY = {"profile": (_STR, None), "samples": (_INT, 1)}
SWEEP_KEYS = {"name", "netlist", "dataset", "data", "trials", "sampler", "seed",
              "seed_per_trial", "objectives", "threads", "reference"}
TOP_KEYS = {"sweep", "neuron", "population", "train", "eval", "energy", "param", "reference",
            "mark", "plot"}
# keys of the neuron tables a field may name, and the type of their values
NEURON_STR = {"encoder": tuple(ENCODERS), "decoder": tuple(DECODERS), "reset": tuple(RESETS)}
NEURON_FLOAT = ("threshold", "leak", "v0")


@dataclass(frozen=True)
class Param:
    """One searched field: a number range (``low``..``high``, ``log``, ``step``) or
    ``choices``; ``when``: ((field, value), ...) of earlier params, all of which must hold."""

    field: str
    kind: str                           # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    when: tuple = ()

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.field, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.field, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.field, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and value != int(value):
            return False
        return self.low <= value <= self.high

    def active(self, values: dict) -> bool:
        return all(f in values and _same(values[f], v) for f, v in self.when)

    def describe(self) -> str:
        if self.kind == "choice":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "") + \
            (f" step {self.step:g}" if self.step else "")


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


@dataclass
class Spec:
    """A checked sweep specification (:func:`load_spec`)."""

    path: Path
    name: str
    netlist: Path
    dataset: str
    data: Path | None
    trials: int
    sampler: str
    seed: int
    seed_per_trial: bool
    threads: int
    objectives: tuple[str, ...]
    train: dict
    eval: dict
    energy: dict
    fixed: tuple                    # ((field, value), ...) from [neuron] / [population.X.neuron]
    params: tuple[Param, ...]
    reference: dict | None          # {field: value} of the reference trial, None: no such trial
    reference_label: str
    marks: tuple = ()               # ({"label": ..., objective: value, ...}, ...)
    plot: dict = field(default_factory=dict)
    text: str = ""
    base: object = None             # the netlist (describe.Netlist)
    defaults: dict = field(default_factory=dict)   # the paper's training settings for it

    def search_space(self) -> dict:
        """What a stored study must agree with to be resumed by this spec: the spec as
        written less what does not change a trial (trials, data folder, name, reference,
        marks, plot), and the netlist file's digest."""
        raw = tomllib.loads(self.text)
        for key in ("trials", "data", "name", "reference"):
            raw.get("sweep", {}).pop(key, None)
        for key in ("reference", "mark", "plot"):
            raw.pop(key, None)
        raw["netlist_sha256"] = hashlib.sha256(Path(self.netlist).read_bytes()).hexdigest()
        return json.loads(json.dumps(raw, default=str))


class _Reader:
    def __init__(self, path):
        self.path = path

    def fail(self, fld: str, rule: str, value=None, given: bool = True):
        got = f" (got {value!r})" if given else ""
        raise SweepError(f"{self.path}: {fld}: {rule}{got}")

    def table(self, value, fld, keys=None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(fld, "must be a table", value)
        if keys is not None:
            for k in value:
                if k not in keys:
                    self.fail(f"{fld}.{k}" if fld else k, "unknown key (allowed: "
                              f"{', '.join(sorted(keys))})", value[k])
        return value

    def typed(self, value, fld, typ, rule):
        """A [train]/[eval]/[energy] value of ``typ`` (lowest value or choices in ``rule``)."""
        if typ == _BOOL:
            if not isinstance(value, bool):
                self.fail(fld, "must be true or false", value)
            return value
        if typ == _STR:
            if not isinstance(value, str) or not value:
                self.fail(fld, "must be a non-empty string", value)
            if rule is not None and value not in rule:
                self.fail(fld, f"must be one of {', '.join(rule)}", value)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (typ == _INT and not isinstance(value, int)):
            self.fail(fld, f"must be {'an integer' if typ == _INT else 'a number'}", value)
        if typ == _FLOAT and not math.isfinite(value):
            self.fail(fld, "must be finite", value)
        if typ == _INT and value < rule:
            self.fail(fld, f"must be an integer >= {rule}", value)
        if typ == _FLOAT and value <= rule:
            self.fail(fld, f"must be > {rule:g}", value)
        return float(value) if typ == _FLOAT else int(value)


def _relative(spec_path: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else spec_path.parent / p).absolute()


def load_spec(path) -> Spec:
    """Read and check a sweep spec file (TOML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read the spec ({exc})") from None
    return loads_spec(text, path)


def loads_spec(text: str, path) -> Spec:
    """Check a sweep spec given as TOML text; ``path`` names it in errors and anchors its
    relative paths (netlist, data folder, profile)."""
    path = Path(path)
    r = _Reader(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML ({exc})") from None
    r.table(raw, "", TOP_KEYS)
    sw = r.table(raw.get("sweep"), "sweep", SWEEP_KEYS)
    for key in ("netlist", "dataset"):
        if key not in sw:
            r.fail(f"sweep.{key}", "is required", given=False)
    name = r.typed(sw.get("name", path.stem), "sweep.name", _STR, None)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        r.fail("sweep.name", "must be letters, digits, '-', '_' or '.'", name)
    net_arg = r.typed(sw["netlist"], "sweep.netlist", _STR, None)
    local = _relative(path, net_arg)
    try:
        net_path = local if local.is_file() else resolve_netlist(net_arg)
        base = load_netlist(net_path)
    except NeuroemuError as exc:
        raise SweepError(f"{path}: sweep.netlist: {exc}") from None
    dataset = r.typed(sw["dataset"], "sweep.dataset", _STR, DATASETS)
    data = _relative(path, r.typed(sw["data"], "sweep.data", _STR, None)) if "data" in sw \
        else None
    trials = r.typed(sw.get("trials", 20), "sweep.trials", _INT, 1)
    sampler = r.typed(sw.get("sampler", "tpe"), "sweep.sampler", _STR, SAMPLERS)
    seed = r.typed(sw.get("seed", 0), "sweep.seed", _INT, 0)
    if seed >= 2 ** 63:
        r.fail("sweep.seed", "must be below 2**63", seed)
    per_trial = r.typed(sw.get("seed_per_trial", False), "sweep.seed_per_trial", _BOOL, None)
    threads = r.typed(sw.get("threads", 1), "sweep.threads", _INT, 1)
    objectives = sw.get("objectives", ["validation_error"])
    if isinstance(objectives, str):
        objectives = [objectives]
    if not isinstance(objectives, list) or not objectives:
        r.fail("sweep.objectives", "must be a list of objective names", objectives)
    for o in objectives:
        if o not in OBJECTIVES:
            r.fail("sweep.objectives", f"unknown objective (one of {', '.join(OBJECTIVES)})", o)
    if len(set(objectives)) != len(objectives):
        r.fail("sweep.objectives", "names an objective twice", objectives)

    from ..engines import build
    from ..learn.eqprop import Hyper
    try:
        hp = Hyper.for_network(build(base))
    except NeuroemuError as exc:
        raise SweepError(f"{path}: sweep.netlist: {exc}") from None
    defaults = {"beta": hp.beta, "steps_free": hp.n_free, "steps_nudged": hp.n_nudged,
                "rates": list(hp.rates), "rule": hp.rule, "nudge": hp.nudge,
                "batch": hp.batch, "epochs": 1, "init": "netlist", "shuffle": False}
    n_proj = len(base.projections)

    train = {}
    for k, v in r.table(raw.get("train"), "train").items():
        key = k.replace("-", "_")
        if key in train:
            r.fail(f"train.{k}", "given twice (as - and _)", v)
        if key == "rates":
            if not isinstance(v, list) or len(v) != n_proj:
                r.fail("train.rates", f"must list {n_proj} learning rates, one per projection", v)
            train[key] = [_rate(r, x, f"train.rates[{i}]") for i, x in enumerate(v)]
        elif key in TRAIN:
            train[key] = r.typed(v, f"train.{k}", *TRAIN[key])
        else:
            r.fail(f"train.{k}", f"unknown key (allowed: {', '.join(sorted(TRAIN))}, rates)", v)
    ev = {}
    for k, v in r.table(raw.get("eval"), "eval").items():
        key = k.replace("-", "_")
        if key not in EVAL:
            r.fail(f"eval.{k}", f"unknown key (allowed: {', '.join(EVAL)})", v)
        ev[key] = r.typed(v, f"eval.{k}", *EVAL[key])
    energy = {k: r.typed(v, f"energy.{k}", *ENERGY[k])
              for k, v in r.table(raw.get("energy"), "energy", set(ENERGY)).items()}
    if "joules_per_inference" in objectives and "profile" not in energy:
        r.fail("energy.profile", "is required by the objective joules_per_inference", None,
               given=False)
    if "profile" in energy:
        energy["profile"] = _profile(r, path, energy["profile"])
        energy.setdefault("samples", 100)

    fixed = []
    for k, v in r.table(raw.get("neuron"), "neuron").items():
        fixed.append((f"neuron.{k}", v))
    for pname, tab in r.table(raw.get("population"), "population").items():
        tab = r.table(tab, f"population.{pname}", {"neuron"})
        for k, v in r.table(tab.get("neuron"), f"population.{pname}.neuron").items():
            fixed.append((f"population.{pname}.neuron.{k}", v))
    for fld, v in fixed:
        _check_field(r, fld, fld, base, n_proj, table_ok=True)

    params = []
    for i, p in enumerate(raw.get("param", []) if isinstance(raw.get("param", []), list)
                          else r.fail("param", "must be an array of tables ([[param]])",
                                      raw.get("param"))):
        params.append(_param(r, p, f"param[{i}]", base, n_proj, params))
    if not params:
        r.fail("param", "the spec searches nothing: give at least one [[param]]", None, False)

    spec = Spec(path=path, name=name, netlist=Path(net_path), dataset=dataset, data=data,
                trials=trials, sampler=sampler, seed=seed, seed_per_trial=per_trial,
                threads=threads, objectives=tuple(objectives), train=train, eval=ev,
                energy=energy, fixed=tuple(fixed), params=tuple(params), reference=None,
                reference_label="", text=text, base=base, defaults=defaults)
    _reference(r, spec, raw, sw.get("reference", True))
    spec.marks = tuple(_marks(r, raw.get("mark", []), objectives))
    spec.plot = _plot(r, raw.get("plot"), objectives)
    for i, p in enumerate(spec.params):     # every end of every range makes a valid netlist
        for value in (p.choices if p.kind == "choice" else (p.low, p.high)):
            values = dict(spec.reference or {})
            values[p.field] = value
            for q in spec.params:
                if q.field not in values and q.active(values):
                    values[q.field] = q.choices[0] if q.kind == "choice" else q.low
            try:
                check_config(spec, trial_config(spec, {f: v for f, v in values.items()
                                                       if _param_of(spec, f).active(values)}))
            except NeuroemuError as exc:
                raise SweepError(f"{path}: param[{i}] ({p.field} = {value!r}): {exc}") from None
    return spec


def _rate(r, x, fld):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        r.fail(fld, "must be a finite number >= 0", x)
    return float(x)


def _profile(r, path, value):
    from ..energy.report import profiles
    p = _relative(path, value)
    arg = str(p) if value.endswith((".toml", ".yaml", ".yml")) else value
    try:
        profiles(arg)
    except NeuroemuError as exc:
        raise SweepError(f"{path}: energy.profile: {exc}") from None
    return arg


def _param_of(spec, fld) -> Param:
    return next(p for p in spec.params if p.field == fld)


def _check_field(r, fld, where_, base, n_proj, table_ok=False):
    """Check a field name; returns the type of its values ('int', 'float', 'bool', 'str' or
    'table')."""
    parts = fld.split(".")
    if parts[0] == "train":
        if len(parts) == 3 and parts[1] == "rates":
            if not parts[2].isdigit() or int(parts[2]) >= n_proj:
                r.fail(where_, f"train.rates.I: I must be a projection index 0..{n_proj - 1}",
                       fld)
            return _FLOAT
        key = parts[1].replace("-", "_") if len(parts) == 2 else None
        if key not in TRAIN:
            r.fail(where_, f"unknown training field (train.KEY, KEY one of "
                   f"{', '.join(TRAIN)}, or train.rates.I)", fld)
        return TRAIN[key][0]
    if parts[0] == "eval":
        key = parts[1].replace("-", "_") if len(parts) == 2 else None
        if key not in EVAL:
            r.fail(where_, f"unknown evaluation field (eval.KEY, KEY one of {', '.join(EVAL)})",
                   fld)
        return EVAL[key][0]
    if parts[0] == "population":
        names = [p.name for p in base.populations]
        if len(parts) < 4 or parts[2] != "neuron":
            r.fail(where_, "must read population.NAME.neuron.KEY", fld)
        if parts[1] not in names:
            r.fail(where_, f"no population {parts[1]!r} in the netlist (has: "
                   f"{', '.join(names)})", fld)
        pops, rest = [base.population(parts[1])], parts[3:]
    elif parts[0] == "neuron":
        pops, rest = list(base.populations), parts[1:]
    else:
        r.fail(where_, "must start with neuron., population.NAME.neuron., train. or eval.", fld)
    if not rest or len(rest) > 2:
        r.fail(where_, "must name a neuron key (e.g. neuron.lam.value, neuron.encoder)", fld)
    key = rest[0]
    models = {p.neuron.model for p in pops if key in (MODEL_KEYS[p.neuron.model])}
    if key == "model" or not models:
        r.fail(where_, f"no population of the netlist has a neuron key {key!r} (the paper's "
               f"neuron: {', '.join(MODEL_KEYS['paper'])}; if/lif: threshold, leak, reset, v0)",
               fld)
    if key in COMPONENTS:
        kinds, params_of = COMPONENTS[key]
        if len(rest) == 1:
            if not table_ok:
                r.fail(where_, f"search one parameter of {key} (e.g. {key}.kind, "
                       f"{key}.{params_of[next(iter(kinds))][0].name})", fld)
            return "table"
        names = {"kind"} | {q.name for ps in params_of.values() for q in ps}
        if rest[1] not in names:
            r.fail(where_, f"unknown parameter of {key} (one of {', '.join(sorted(names))})",
                   fld)
        return _STR if rest[1] == "kind" else _FLOAT
    if key in PARAM_TABLES:
        names = [q.name for q in PARAM_TABLES[key]]
        if len(rest) == 1 or rest[1] not in names:
            r.fail(where_, f"search one parameter of {key} (one of {', '.join(names)})", fld)
        return _FLOAT
    if len(rest) != 1:
        r.fail(where_, f"{key} has no parameters", fld)
    if key == "predictive":
        return _BOOL
    return _STR if key in NEURON_STR else _FLOAT


def _param(r, p, fld, base, n_proj, earlier) -> Param:
    p = r.table(p, fld, {"field", "low", "high", "log", "step", "choices", "when"})
    if "field" not in p:
        r.fail(f"{fld}.field", "is required", given=False)
    name = r.typed(p["field"], f"{fld}.field", _STR, None)
    name = ".".join(s.replace("-", "_") if name.split(".")[0] in ("train", "eval") else s
                    for s in name.split("."))
    if any(q.field == name for q in earlier):
        r.fail(f"{fld}.field", "is searched twice", name)
    typ = _check_field(r, name, f"{fld}.field", base, n_proj)
    when = tuple(r.table(p.get("when"), f"{fld}.when").items())
    for f, v in when:
        if not any(q.field == f for q in earlier):
            r.fail(f"{fld}.when", "must name the field of an earlier [[param]]", f)
    if "choices" in p:
        ch = p["choices"]
        if any(k in p for k in ("low", "high", "log", "step")):
            r.fail(fld, "give either choices or low/high", name)
        if not isinstance(ch, list) or not ch:
            r.fail(f"{fld}.choices", "must be a non-empty list", ch)
        for c in ch:
            ok = {_BOOL: lambda c: isinstance(c, bool),
                  _STR: lambda c: isinstance(c, str),
                  _INT: lambda c: isinstance(c, int) and not isinstance(c, bool),
                  _FLOAT: lambda c: isinstance(c, (int, float)) and not isinstance(c, bool)}[typ]
            if not ok(c):
                r.fail(f"{fld}.choices", f"{name} takes {typ} values", c)
        if len({json.dumps(c) for c in ch}) != len(ch):
            r.fail(f"{fld}.choices", "lists a value twice", ch)
        return Param(name, "choice", choices=tuple(ch), when=when)
    if typ not in (_INT, _FLOAT):
        r.fail(fld, f"{name} takes {typ} values: give choices = [...]", name)
    for k in ("low", "high"):
        if k not in p:
            r.fail(f"{fld}.{k}", "is required (or give choices)", given=False)
        v = p[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or \
                (typ == _INT and not isinstance(v, int)):
            r.fail(f"{fld}.{k}", f"must be {'an integer' if typ == _INT else 'a finite number'}"
                   f" ({name} takes {typ} values)", v)
    low, high = p["low"], p["high"]
    if not low < high:
        r.fail(f"{fld}.high", f"must be above low ({low})", high)
    log = p.get("log", False)
    if not isinstance(log, bool):
        r.fail(f"{fld}.log", "must be true or false", log)
    if log and low <= 0:
        r.fail(f"{fld}.low", "must be > 0 with log = true", low)
    step = p.get("step")
    if step is not None:
        if log:
            r.fail(f"{fld}.step", "cannot be combined with log = true", step)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 or \
                (typ == _INT and not isinstance(step, int)):
            r.fail(f"{fld}.step", "must be a positive " + ("integer" if typ == _INT
                                                            else "number"), step)
    kind = _INT if typ == _INT else _FLOAT
    return Param(name, kind, float(low) if kind == _FLOAT else low,
                 float(high) if kind == _FLOAT else high, log, step, when=when)


def _reference(r, spec: Spec, raw: dict, enabled) -> None:
    """The reference trial (run first, marked on the plot): the base values of the searched
    fields, with [reference] values over them."""
    if not isinstance(enabled, bool):
        r.fail("sweep.reference", "must be true or false", enabled)
    tab = dict(r.table(raw.get("reference"), "reference"))
    label = tab.pop("label", "the base configuration (netlist and settings as given)")
    spec.reference_label = r.typed(label, "reference.label", _STR, None)
    if not enabled:
        if tab:
            r.fail("reference", "given, but sweep.reference = false", tab)
        return
    values: dict = {}
    for p in spec.params:
        if not p.active(values):
            continue
        v = tab.pop(p.field) if p.field in tab else base_value(spec, p.field)
        if v is None or not p.contains(v):
            if raw.get("reference") is None and "reference" not in raw.get("sweep", {}):
                spec.reference = None         # no reference trial unless one was asked for
                return
            why = "has no value without the search" if v is None else \
                f"lies outside {p.describe()}"
            r.fail(f"reference.{p.field}", f"{why} (give it in [reference], or set "
                   f"sweep.reference = false)", v, v is not None)
        values[p.field] = int(v) if p.kind == "int" else float(v) if p.kind == "float" else v
    for k in tab:
        r.fail(f"reference.{k}", "is not a searched field", tab[k])
    spec.reference = values


def _marks(r, marks, objectives):
    if not isinstance(marks, list):
        r.fail("mark", "must be an array of tables ([[mark]])", marks)
    out = []
    for i, m in enumerate(marks):
        m = r.table(m, f"mark[{i}]", {"label"} | set(OBJECTIVES))
        if "label" not in m:
            r.fail(f"mark[{i}].label", "is required", given=False)
        r.typed(m["label"], f"mark[{i}].label", _STR, None)
        for k, v in m.items():
            if k != "label" and (isinstance(v, bool) or not isinstance(v, (int, float))
                                 or not math.isfinite(v) or v < 0):
                r.fail(f"mark[{i}].{k}", "must be a finite number >= 0", v)
        out.append(dict(m))
    return out


def _plot(r, tab, objectives):
    tab = dict(r.table(tab, "plot", {"x", "y"}))
    for k, v in tab.items():
        if v not in objectives:
            r.fail(f"plot.{k}", f"must be one of the objectives ({', '.join(objectives)})", v)
    if "y" not in tab:
        tab["y"] = "validation_error" if "validation_error" in objectives else objectives[0]
    if "x" not in tab:
        others = [o for o in objectives if o != tab["y"]]
        tab["x"] = others[0] if others else None
    return tab
