"""Netlists: the user's description of a network, parsed and validated into frozen dataclasses.

ALL validation of user-supplied network descriptions lives here (with the checks it is built
from: :mod:`.checks` for fields and arrays, :mod:`.projections` for each projection kind).

- **Format 1** (the default): a layered network of the paper's kind: populations in order
  ``input, hidden..., output``, one dense projection between each adjacent pair (used in both
  directions, w_ij = w_ji), biases, the neuron components each population uses, and a seed.
- **Format 2** (``[network] format = 2``): a graph.  Populations have a ``size`` or a
  ``shape`` (``[C, H, W]`` for maps), a role (several inputs and outputs allowed, any order)
  and a neuron model (``paper``, ``if``, ``lif``); projections join any two populations
  (itself too) with a kind (dense, sparse, conv2d, avgpool2d, one_to_one), symmetric or
  one-way.

The text form is TOML (see ``docs/netlist-format.md``); the HDF5 form
(:mod:`neuroemu.describe.h5`) goes through the same :func:`from_dict`.
:func:`neuroemu.describe.load` reads either by file suffix.

Every error is a :class:`~neuroemu.errors.NetlistError` whose message names the file, the
field, the rule and the value.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetlistError, where
from .arithmetic import parse_arithmetic
from .checks import _MAX_SIZE, _MAX_WEIGHTS, _member, _plain, _Said, _short  # noqa: F401
from .neurons import (ANNEALER_PARAMS, ANNEALERS, CLAMP_PARAMS, DECODERS, DEFAULT_NEURON,
                      DEFAULT_RESET, ENCODERS, MODEL_KEYS, MODEL_PARAMS, MODELS, OPTIONAL_KEYS,
                      RESETS, ROLES, SCHEDULE_PARAMS, SCHEDULES)
from .projections import Projection, ProjectionChecks, glorot_uniform  # noqa: F401

_TOP_KEYS = {"network", "neuron", "population", "projection", "hardware"}
_NEURON_KEYS = set(DEFAULT_NEURON) | set(OPTIONAL_KEYS)
_V2_NEURON_KEYS = {"model"} | {k for keys in MODEL_KEYS.values() for k in keys}
_POP_KEYS = {"name", "size", "role", "bias", "neuron"}
_NET_KEYS = ("name", "seed", "description")


@dataclass(frozen=True)
class Component:
    """A parameterised component: ``kind`` plus its numeric parameters (sorted items)."""

    kind: str
    params: tuple[tuple[str, float], ...]

    def get(self, name: str) -> float:
        return dict(self.params)[name]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.params)}


@dataclass(frozen=True)
class Neuron:
    """One population's neurons.  ``model = "paper"``: the components of model.md section 3
    (``threshold``, ``leak``, ``reset``, ``v0`` unused).  ``"if"`` / ``"lif"``: integrate and
    fire (``leak`` 1.0 for if); they send spikes, are never predictive and decode with
    identity (the component fields hold the defaults: encoder none, constant lam 1 and
    eps 0.5, unused).  ``lam2`` (a second lambda schedule: two-pole predictive coding) and
    ``clamp`` (``(a, b)``: the sigma-delta residue held in ``[-(a + b/t), a + b/t]``) are None
    when not used."""

    encoder: str
    predictive: bool
    decoder: str
    lam: Component
    eps: Component
    model: str = "paper"
    threshold: float = 1.0
    leak: float = 1.0
    reset: str = "subtract"
    v0: float = 0.0
    lam2: Component | None = None
    clamp: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The neuron table: the paper's five keys (no ``model``) and ``lam2`` / ``clamp``
        when used, or the model's keys."""
        if self.model == "paper":
            d = {"encoder": self.encoder, "predictive": self.predictive,
                 "decoder": self.decoder, "lam": self.lam.as_dict(), "eps": self.eps.as_dict()}
            if self.lam2 is not None:
                d["lam2"] = self.lam2.as_dict()
            if self.clamp is not None:
                d["clamp"] = {"a": self.clamp[0], "b": self.clamp[1]}
            return d
        return {"model": self.model, **{k: getattr(self, k) for k in MODEL_KEYS[self.model]}}


@dataclass(frozen=True, eq=False)
class Population:
    name: str
    size: int
    role: str
    neuron: Neuron
    bias: np.ndarray  # float64, shape (size,); zeros for input populations
    bias_spec: Any = None  # what the file said (for writing the netlist back)
    shape: tuple[int, ...] = ()  # as given by ``shape = [...]``; () when given by ``size``

    @property
    def dims(self) -> tuple[int, ...]:
        return self.shape if self.shape else (self.size,)


@dataclass(frozen=True, eq=False)
class Netlist:
    name: str
    seed: int
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    description: str = ""
    hardware: dict = field(default_factory=dict)
    path: str | None = None
    text: str | None = None  # the source text, kept for provenance
    format: int = 1

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(p.size for p in self.populations)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.populations if p.role == "input")

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.populations if p.role == "output")

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)


# --------------------------------------------------------------------------- parsing

def loads(text: str, path: str | Path | None = None) -> Netlist:
    """Parse TOML netlist text; ``path`` is used in messages and to resolve relative files."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NetlistError(f"{where(path, 'TOML')}: syntax error: {exc}") from None
    return from_dict(raw, path=path, text=text)


def from_dict(raw: Any, path: str | Path | None = None, text: str | None = None) -> Netlist:
    """Validate a plain dict (from TOML or HDF5) and build a :class:`Netlist`."""
    v = _Validator(path)
    if not isinstance(raw, dict):
        v.fail("", "must be a table", raw)
    v.known(raw, "", _TOP_KEYS)
    net = v.table(raw.get("network", {}), "network")
    if "format" in net:
        fmt = net["format"]
        if isinstance(fmt, bool) or not isinstance(fmt, (int, np.integer)) or fmt not in (1, 2):
            v.fail("network.format", "must be 1 or 2", fmt)
        v.fmt = int(fmt)
    v.known({k: x for k, x in net.items() if k != "format"}, "network", _NET_KEYS)
    name = v.string(net.get("name", Path(path).stem if path else "network"), "network.name")
    seed = v.integer(net.get("seed", 0), "network.seed", lo=0, hi=2**63 - 1)
    description = net.get("description", "")
    if not isinstance(description, str):
        v.fail("network.description", "must be a string", description)
    default_neuron = v.neuron(raw.get("neuron", {}), "neuron", DEFAULT_NEURON)

    pops_raw = raw.get("population")
    if not isinstance(pops_raw, list) or len(pops_raw) < 2:
        v.fail("population", "must be an array of at least 2 tables ([[population]])", pops_raw)
    pops = [v.population(p, i, default_neuron, len(pops_raw)) for i, p in enumerate(pops_raw)]
    names = [p.name for p in pops]
    for i, n in enumerate(names):
        if names.index(n) != i:
            v.fail(f"population[{i}].name", "must be unique", n)
    if v.fmt == 2:
        for role in ("input", "output"):
            if not any(p.role == role for p in pops):
                v.fail("population", f"needs at least one population with role = \"{role}\"",
                       _Said(f"roles {', '.join(p.role for p in pops)}"))

    projs_raw = raw.get("projection", [])
    if not isinstance(projs_raw, list):
        v.fail("projection", "must be an array of tables ([[projection]])", projs_raw)
    projs = [v.projection(p, i, pops, seed) for i, p in enumerate(projs_raw)]
    if v.fmt == 1:
        v.chain(pops, projs)
        projs = sorted(projs, key=lambda p: names.index(p.pre))
    else:
        v.unique_labels(projs)
    v.coding_match(pops, projs)

    hardware = raw.get("hardware", {})
    if not isinstance(hardware, dict):
        v.fail("hardware", "must be a table", hardware)
    parse_arithmetic(hardware, path, [p.label for p in projs])   # fixed point: checked here
    return Netlist(name=name, seed=seed, populations=tuple(pops), description=description,
                   projections=tuple(projs), hardware=hardware,
                   path=str(path) if path else None, text=text, format=v.fmt)


_IDLE_LAM = Component("constant", (("value", 1.0),))    # the component fields of if/lif
_IDLE_EPS = Component("constant", (("eps0", 0.5),))


class _Validator(ProjectionChecks):
    """The netlist's checks: network, neuron and population here; the fields, arrays and
    bounds in :mod:`.checks`; the projections of each kind in :mod:`.projections`."""

    def component(self, value, fld, registry, params_of):
        if isinstance(value, str):
            value = {"kind": value}
        self.table(value, fld)
        kind = value.get("kind")
        if not _member(kind, registry):
            self.fail(f"{fld}.kind", f"must be one of {', '.join(registry)}", kind)
        out = self.params({k: v for k, v in value.items() if k != "kind"}, fld,
                          params_of[kind], f"for {kind}", f"for {kind}")
        return Component(kind, tuple(sorted(out.items())))

    def params(self, value: dict, fld, specs, unknown: str, required: str) -> dict:
        """Numeric parameters checked against their :class:`~.neurons.Param` specs, the
        missing ones at their defaults (an error if they have none)."""
        spec = {p.name: p for p in specs}
        out = {}
        for key, val in value.items():
            if key not in spec:
                self.fail(f"{fld}.{key}", f"unknown parameter {unknown} "
                          f"(allowed: {', '.join(spec) or 'none'})", val)
            x = self.number(val, f"{fld}.{key}")
            rule = spec[key].check(x)
            if rule:
                self.fail(f"{fld}.{key}", rule, val)
            out[key] = x
        for p in spec.values():
            if p.name not in out:
                if p.default is None:
                    self.fail(f"{fld}.{p.name}", f"is required {required}")
                out[p.name] = float(p.default)
        return out

    def neuron(self, value, fld, base):
        self.table(value, fld)
        base = dict(base) if isinstance(base, dict) else base.as_dict()
        if self.fmt == 1:
            self.known(value, fld, _NEURON_KEYS, _V2_NEURON_KEYS)
            return self.paper(base | value, fld)
        self.known(value, fld, _V2_NEURON_KEYS)
        was = base.pop("model", "paper")
        model = value.get("model", was)
        if not _member(model, MODELS):
            self.fail(f"{fld}.model", f"must be one of {', '.join(MODELS)}", model)
        for key in value:
            if key != "model" and key not in MODEL_KEYS[model]:
                self.fail(f"{fld}.{key}", f"is not a key of neuron model '{model}' (its keys: "
                          f"model, {', '.join(MODEL_KEYS[model])})", _plain(value[key]))
        if model != was:   # another model: the [neuron] defaults are not merged
            base = dict(DEFAULT_NEURON) if model == "paper" else {}
        merged = base | {k: x for k, x in value.items() if k != "model"}
        if model == "paper":
            return self.paper(merged, fld)
        out = {}
        for p in MODEL_PARAMS[model]:
            if p.name not in merged:
                if p.default is None:
                    self.fail(f"{fld}.{p.name}", f"is required for model {model}")
                out[p.name] = float(p.default)
                continue
            x = self.number(merged[p.name], f"{fld}.{p.name}")
            rule = p.check(x)
            if rule:
                self.fail(f"{fld}.{p.name}", rule, merged[p.name])
            out[p.name] = x
        reset = merged.get("reset", DEFAULT_RESET)
        if not _member(reset, RESETS):
            self.fail(f"{fld}.reset", f"must be one of {', '.join(RESETS)}", reset)
        return Neuron("none", False, "identity", _IDLE_LAM, _IDLE_EPS, model=model,
                      threshold=out["threshold"], leak=out.get("leak", 1.0), reset=reset,
                      v0=out["v0"])

    def paper(self, merged, fld):
        enc = merged["encoder"]
        if not _member(enc, ENCODERS):
            self.fail(f"{fld}.encoder", f"must be one of {', '.join(ENCODERS)}", enc)
        dec = merged["decoder"]
        if not _member(dec, DECODERS):
            self.fail(f"{fld}.decoder", f"must be one of {', '.join(DECODERS)}", dec)
        pred = merged["predictive"]
        if not isinstance(pred, bool):
            self.fail(f"{fld}.predictive", "must be true or false", pred)
        lam = self.component(merged["lam"], f"{fld}.lam", SCHEDULES, SCHEDULE_PARAMS)
        eps = self.component(merged["eps"], f"{fld}.eps", ANNEALERS, ANNEALER_PARAMS)
        lam2 = merged.get("lam2", False)
        if lam2 is not False:
            lam2 = self.component(lam2, f"{fld}.lam2", SCHEDULES, SCHEDULE_PARAMS)
            if not pred and dec != "predictive":
                self.fail(f"{fld}.lam2", "a second pole needs predictive = true or decoder = "
                          "'predictive' (or lam2 = false)", lam2.as_dict())
        clamp = merged.get("clamp", False)
        if clamp is not False:
            clamp = self.clamp(clamp, f"{fld}.clamp")
            if enc != "sigma_delta":
                self.fail(f"{fld}.clamp", f"clamps the sigma_delta encoder's residue: needs "
                          f"encoder = 'sigma_delta' (or clamp = false); encoder is '{enc}'",
                          {"a": clamp[0], "b": clamp[1]})
        return Neuron(enc, pred, dec, lam, eps, lam2=lam2 or None, clamp=clamp or None)

    def clamp(self, value, fld):
        """``{ a = ..., b = ... }`` (b defaults to 0) -> (a, b)."""
        self.table(value, fld)
        out = self.params(value, fld, CLAMP_PARAMS, "of clamp", "for clamp")
        return out["a"], out["b"]

    def population(self, value, i, default_neuron, count):
        fld = f"population[{i}]"
        self.table(value, fld)
        shape = ()
        if self.fmt == 1:
            self.known(value, fld, _POP_KEYS, ("shape",))
            name = self.string(value.get("name"), f"{fld}.name")
            size = self.integer(value.get("size"), f"{fld}.size", 1, _MAX_SIZE)
            want = "input" if i == 0 else "output" if i == count - 1 else "hidden"
            role = value.get("role", want)
            if not _member(role, ROLES):
                self.fail(f"{fld}.role", f"must be one of {', '.join(ROLES)}", role)
            if role != want:
                self.fail(f"{fld}.role", f"populations are layers in order input, hidden..., "
                          f"output; position {i} of {count} must be '{want}'", role)
        else:
            self.known(value, fld, _POP_KEYS | {"shape"})
            name = self.string(value.get("name"), f"{fld}.name")
            if "shape" in value and "size" in value:
                self.fail(f"{fld}.shape", "give size or shape, not both", _plain(value["shape"]))
            if "shape" in value:
                shape = self.ints(value["shape"], f"{fld}.shape", (1, 3), 1,
                                  "must be [n] or [C, H, W] of positive integers")
                size = math.prod(shape)
                if size > _MAX_SIZE:
                    self.fail(f"{fld}.shape", f"must hold at most {_MAX_SIZE} neurons",
                              list(shape))
            elif "size" in value:
                size = self.integer(value["size"], f"{fld}.size", 1, _MAX_SIZE)
            else:
                self.fail(f"{fld}.size", "is required (size = n, or shape = [C, H, W] for maps)")
            role = value.get("role", "hidden")
            if not _member(role, ROLES):
                self.fail(f"{fld}.role", f"must be one of {', '.join(ROLES)}", role)
        neuron = self.neuron(value.get("neuron", {}), f"{fld}.neuron", default_neuron)
        if role == "input" and neuron.model != "paper":
            self.fail(f"{fld}.neuron.model", "an input population must use model 'paper' (it "
                      "is clamped; its encoder says what it sends)", neuron.model)
        spec = value.get("bias", 0.0)
        if role == "input":
            if "bias" in value:
                self.fail(f"{fld}.bias", "the input population has no bias", spec)
            bias = np.zeros(size)
        else:
            bias = self.array(spec, f"{fld}.bias", (size,))
        return Population(name, size, role, neuron, bias, spec if "bias" in value else None,
                          shape)
