"""Netlists: the user's description of a network, parsed and validated into frozen dataclasses.

ALL validation of user-supplied network descriptions lives here.  A netlist is a layered
network of the paper's kind: populations in order ``input, hidden..., output``, one
projection between each adjacent pair (used in both directions, w_ij = w_ji), biases, the
neuron components each population uses, and a seed.  The text form is TOML (see
``docs/netlist-format.md``); the HDF5 form (:mod:`neuroemu.describe.h5`) goes through the same
:func:`from_dict`.  :func:`neuroemu.describe.load` reads either by file suffix.

Every error is a :class:`~neuroemu.errors.NetlistError` whose message names the file, the
field, the rule and the value.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetlistError, where
from .arrays import read_npy
from .neurons import (ANNEALER_PARAMS, ANNEALERS, DECODERS, DEFAULT_NEURON, ENCODERS, MAX_VALUE,
                      ROLES, SCHEDULE_PARAMS, SCHEDULES)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_TOP_KEYS = {"network", "neuron", "population", "projection", "hardware"}
_NEURON_KEYS = set(DEFAULT_NEURON)
_POP_KEYS = {"name", "size", "role", "bias", "neuron"}
_PROJ_KEYS = {"pre", "post", "weights"}
_MAX_SIZE = 10_000_000
_MAX_WEIGHTS = 200_000_000  # per projection: 1.6 GB as float64


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
    """The components of one population's neurons (model.md section 3)."""

    encoder: str
    predictive: bool
    decoder: str
    lam: Component
    eps: Component

    def as_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "predictive": self.predictive, "decoder": self.decoder,
                "lam": self.lam.as_dict(), "eps": self.eps.as_dict()}


@dataclass(frozen=True, eq=False)
class Population:
    name: str
    size: int
    role: str
    neuron: Neuron
    bias: np.ndarray  # float64, shape (size,); zeros for the input population
    bias_spec: Any = None  # what the file said (for writing the netlist back)


@dataclass(frozen=True, eq=False)
class Projection:
    pre: str
    post: str
    weights: np.ndarray  # float64, shape (pre.size, post.size); used in both directions
    weights_spec: Any = None


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

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(p.size for p in self.populations)

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
    v.known(net, "network", ("name", "seed", "description"))
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

    projs_raw = raw.get("projection", [])
    if not isinstance(projs_raw, list):
        v.fail("projection", "must be an array of tables ([[projection]])", projs_raw)
    projs = [v.projection(p, i, pops, seed) for i, p in enumerate(projs_raw)]
    v.chain(pops, projs)
    v.coding_match(pops)

    hardware = raw.get("hardware", {})
    if not isinstance(hardware, dict):
        v.fail("hardware", "must be a table", hardware)
    return Netlist(name=name, seed=seed, populations=tuple(pops), description=description,
                   projections=tuple(sorted(projs, key=lambda p: names.index(p.pre))),
                   hardware=hardware, path=str(path) if path else None, text=text)


class _Said(str):
    """A value description that is printed as is (not repr'd), e.g. 'shape (2, 3)'."""


def _short(value: Any) -> str:
    s = str(value) if isinstance(value, _Said) else repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _member(value: Any, allowed) -> bool:
    return isinstance(value, str) and value in allowed


class _Validator:
    """Field-by-field checks; each failure raises NetlistError with file, field, rule, value."""

    def __init__(self, path):
        self.path = path
        self.base = Path(path).parent if path else Path.cwd()

    def fail(self, fld: str, rule: str, value: Any = ...) -> None:
        got = "" if value is ... else f" (got {_short(value)})"
        raise NetlistError(f"{where(self.path, fld)}: {rule}{got}")

    def known(self, table: dict, fld: str, allowed) -> None:
        """Every key of ``table`` must be one of ``allowed``."""
        for key in table:
            if key not in allowed:
                name = f"{fld}.{key}" if fld else str(key)
                self.fail(name, f"unknown key (allowed: {', '.join(sorted(allowed))})",
                          table[key])

    def table(self, value, fld):
        if not isinstance(value, dict):
            self.fail(fld, "must be a table", value)
        return value

    def string(self, value, fld):
        if not isinstance(value, str) or not _NAME_RE.match(value):
            self.fail(fld, "must be a name of letters, digits, '_' or '-' (1-64 chars)", value)
        return value

    def integer(self, value, fld, lo, hi):
        if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
            self.fail(fld, "must be an integer", value)
        if not lo <= value <= hi:
            self.fail(fld, f"must be an integer in [{lo}, {hi}]", value)
        return int(value)

    def number(self, value, fld):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            self.fail(fld, "must be a number", value)
        value = float(value)
        if not math.isfinite(value):
            self.fail(fld, "must be finite", value)
        return value

    def component(self, value, fld, registry, params_of):
        if isinstance(value, str):
            value = {"kind": value}
        self.table(value, fld)
        kind = value.get("kind")
        if not _member(kind, registry):
            self.fail(f"{fld}.kind", f"must be one of {', '.join(registry)}", kind)
        spec = {p.name: p for p in params_of[kind]}
        out = {}
        for key, val in value.items():
            if key == "kind":
                continue
            if key not in spec:
                self.fail(f"{fld}.{key}", f"unknown parameter for {kind} "
                          f"(allowed: {', '.join(spec) or 'none'})", val)
            x = self.number(val, f"{fld}.{key}")
            rule = spec[key].check(x)
            if rule:
                self.fail(f"{fld}.{key}", rule, val)
            out[key] = x
        for p in spec.values():
            if p.name not in out:
                if p.default is None:
                    self.fail(f"{fld}.{p.name}", f"is required for {kind}")
                out[p.name] = float(p.default)
        return Component(kind, tuple(sorted(out.items())))

    def neuron(self, value, fld, base):
        self.table(value, fld)
        self.known(value, fld, _NEURON_KEYS)
        merged = dict(base) if isinstance(base, dict) else base.as_dict()
        merged.update(value)
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
        return Neuron(enc, pred, dec, lam, eps)

    def population(self, value, i, default_neuron, count):
        fld = f"population[{i}]"
        self.table(value, fld)
        self.known(value, fld, _POP_KEYS)
        name = self.string(value.get("name"), f"{fld}.name")
        size = self.integer(value.get("size"), f"{fld}.size", 1, _MAX_SIZE)
        want = "input" if i == 0 else "output" if i == count - 1 else "hidden"
        role = value.get("role", want)
        if not _member(role, ROLES):
            self.fail(f"{fld}.role", f"must be one of {', '.join(ROLES)}", role)
        if role != want:
            self.fail(f"{fld}.role", f"populations are layers in order input, hidden..., output; "
                      f"position {i} of {count} must be '{want}'", role)
        neuron = self.neuron(value.get("neuron", {}), f"{fld}.neuron", default_neuron)
        spec = value.get("bias", 0.0)
        if role == "input":
            if "bias" in value:
                self.fail(f"{fld}.bias", "the input population has no bias", spec)
            bias = np.zeros(size)
        else:
            bias = self.array(spec, f"{fld}.bias", (size,))
        return Population(name, size, role, neuron, bias, spec if "bias" in value else None)

    def array(self, spec, fld, shape):
        """A scalar, nested list, {file=...} or ndarray, checked for shape and finiteness."""
        if isinstance(spec, dict):
            if set(spec) != {"file"} or not isinstance(spec["file"], str):
                self.fail(fld, "a table here must be { file = \"name.npy\" }", spec)
            fpath = (self.base / spec["file"])
            try:  # header first: shape and size are checked before the data is read
                arr = read_npy(fpath, shape=shape, max_items=_MAX_WEIGHTS, what="array")
            except NetlistError as exc:
                self.fail(f"{fld}.file", f"cannot use .npy file: {exc}", spec["file"])
            fld = f"{fld}.file ({fpath})"
        elif isinstance(spec, (int, float)) and not isinstance(spec, bool) and len(shape) == 1:
            x = self.number(spec, fld)
            if abs(x) > MAX_VALUE:
                self.fail(fld, f"must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}]", spec)
            arr = np.full(shape, x)
        else:
            try:
                arr = np.asarray(spec)
            except (ValueError, TypeError):
                self.fail(fld, "must be a rectangular array of numbers", spec)
        if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
            self.fail(fld, "must hold numbers only", _Said(f"dtype {arr.dtype}"))
        if arr.shape != shape:
            self.fail(fld, f"must have shape {shape}", _Said(f"shape {arr.shape}"))
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        self.bounded(arr, fld)
        arr.setflags(write=False)
        return arr

    def bounded(self, arr, fld):
        """Finite and at most MAX_VALUE in magnitude (docs/netlist-format.md, Bounds): the
        engine computes in float32 (weights, delivered input) and float64, and every sum and
        square it forms of such values stays finite."""
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(arr) <= MAX_VALUE)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            x = float(arr[idx])
            rule = "must be finite" if not math.isfinite(x) else \
                f"must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}] (the engine computes in float32)"
            self.fail(f"{fld}{list(idx)}", rule, x)

    def projection(self, value, i, pops, seed):
        fld = f"projection[{i}]"
        self.table(value, fld)
        self.known(value, fld, _PROJ_KEYS)
        by_name = {p.name: p for p in pops}
        ends = []
        for end in ("pre", "post"):
            n = value.get(end)
            if not _member(n, by_name):
                self.fail(f"{fld}.{end}", f"must name a population ({', '.join(by_name)})", n)
            ends.append(by_name[n])
        pre, post = ends
        shape = (pre.size, post.size)
        if pre.size * post.size > _MAX_WEIGHTS:
            self.fail(fld, f"at most {_MAX_WEIGHTS} weights per projection",
                      _Said(f"{pre.size} x {post.size}"))
        spec = value.get("weights", {"init": "glorot_uniform"})
        if isinstance(spec, dict) and "init" in spec:
            w = self.init(spec, f"{fld}.weights", shape, seed, i)
        else:
            w = self.array(spec, f"{fld}.weights", shape)
        return Projection(pre.name, post.name, w, spec)

    def init(self, spec, fld, shape, seed, i):
        self.known(spec, fld, ("init", "seed", "gain"))
        rule = spec["init"]
        if not _member(rule, ("glorot_uniform", "zeros")):
            self.fail(f"{fld}.init", "must be one of glorot_uniform, zeros", rule)
        if rule == "zeros":
            w = np.zeros(shape)
        else:
            s = self.integer(spec.get("seed", seed * 1000 + i), f"{fld}.seed", 0, 2**63 - 1)
            gain = self.number(spec.get("gain", 1.0), f"{fld}.gain")
            if abs(gain) * math.sqrt(6.0 / (shape[0] + shape[1])) > MAX_VALUE:
                self.fail(f"{fld}.gain", f"makes weights beyond [-{MAX_VALUE:g}, {MAX_VALUE:g}] "
                          "(the engine computes in float32)", gain)
            w = glorot_uniform(shape, s, gain)
        w.setflags(write=False)
        return w

    def chain(self, pops, projs):
        names = [p.name for p in pops]
        seen = {}
        for i, pr in enumerate(projs):
            a, b = names.index(pr.pre), names.index(pr.post)
            if b != a + 1:
                self.fail(f"projection[{i}]", "only adjacent layers can be connected, from the "
                          f"lower to the next (expected pre = '{names[b - 1] if b else names[0]}'"
                          f" for post = '{pr.post}')", f"{pr.pre} -> {pr.post}")
            if a in seen:
                self.fail(f"projection[{i}]", f"duplicates projection[{seen[a]}]",
                          f"{pr.pre} -> {pr.post}")
            seen[a] = i
        for a in range(len(pops) - 1):
            if a not in seen:
                self.fail("projection", f"layers '{names[a]}' and '{names[a + 1]}' are not "
                          "connected (every adjacent pair needs one [[projection]])")

    def coding_match(self, pops):
        """Predictive decoding is only exact if every sender encodes with the same lambda."""
        for r, recv in enumerate(pops):
            if recv.role == "input":
                continue
            for s in (r - 1, r + 1):
                if not 0 <= s < len(pops):
                    continue
                send = pops[s]
                fld = f"population[{r}].neuron.decoder"
                if (recv.neuron.decoder == "predictive") != send.neuron.predictive:
                    self.fail(fld, f"must be 'predictive' exactly when its sender '{send.name}' "
                              f"has predictive = true (sender predictive = "
                              f"{str(send.neuron.predictive).lower()})", recv.neuron.decoder)
                if send.neuron.predictive and send.neuron.lam != recv.neuron.lam:
                    self.fail(f"population[{r}].neuron.lam", f"must equal the lambda schedule of "
                              f"its sender '{send.name}' ({send.neuron.lam.as_dict()})",
                              recv.neuron.lam.as_dict())


def glorot_uniform(shape: tuple[int, int], seed: int, gain: float = 1.0) -> np.ndarray:
    """Glorot-uniform weights ``U(-a, a)``, ``a = gain * sqrt(6 / (n_in + n_out))``."""
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    return np.random.default_rng(seed).uniform(-a, a, size=shape)
