"""SANA-FE architecture descriptions as neuroemu hardware models.

SANA-FE (Boyle et al., IEEE TCAD 44(8), 2025) describes a chip in YAML: a mesh of *tiles*, each
with a router and one or more *cores* behind it (no hop between the cores of a tile), and in
every core a pipeline of units with an energy (J) and a latency (s) per event:

* ``axon_in``: per spike message received by the core;
* ``synapse``: per synaptic event (one weight looked up for one incoming message), one unit per
  kind of connectivity (Loihi's file has dense, sparse and conv units);
* ``dendrite``: per synaptic event (the time-step buffer sits at the soma) or per neuron and
  step (the buffer sits before the dendrite);
* ``soma``: an *access* for every neuron at every step, an *update* when the neuron had input
  (or a bias, a non-zero potential, or it fired), and a cost per *spike*;
* ``axon_out``: per spike message sent (one per destination core);
* per tile, the energy and latency of one hop east, west, north or south; per step a
  synchronisation barrier that depends on the number of tiles in use.

:func:`read_arch` reads such a file into an :class:`Arch` (our own reader; SANA-FE itself is not
needed), :func:`arch_profile_fields` maps it onto neuroemu's event kinds as a
:class:`~neuroemu.energy.hardware.Profile` (``hardware.load_profile("x.yaml")``) whose ``arch``
is the :class:`Arch`, and :func:`arch_energy` prices per-unit counts
(:mod:`neuroemu.energy.traffic`) exactly as SANA-FE does, per component (synapse, dendrite,
soma, network).  The conventions and the source of every shipped number are in
``docs/sanafe.md``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ProfileError, where

# Where the time-step buffer sits (SANA-FE's buffer_position, buffer_inside_unit): which units a
# synaptic event runs through and which run once per neuron and step.
BUFFERS = {("dendrite", False): "before_dendrite", ("dendrite", True): "inside_dendrite",
           ("soma", False): "before_soma"}
COMPONENTS = ("synapse", "dendrite", "soma", "network")
DIRECTIONS = ("east", "west", "north", "south")
MAX_J = 1e-6            # at most a microjoule per event (as hardware.MAX_PJ)
MAX_S = 1.0             # at most a second per event
_RANGE = re.compile(r"^(.*)\[(\d+)\.\.(\d+)\]$")


@dataclass(frozen=True)
class Unit:
    """One kind of pipeline unit of a core: energies in J and latencies in s per event.
    ``count``: instances of it per core (a range ``name[0..1023]`` is 1024 instances)."""

    section: str            # axon_in, synapse, dendrite, soma, axon_out
    name: str               # the name without its range
    model: str = ""
    count: int = 1
    energy: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)

    def instance(self, i: int) -> str:
        """SANA-FE's name of instance ``i`` (``loihi_inputs[5]``) or the plain name."""
        return f"{self.name}[{i}]" if self.count > 1 else self.name


@dataclass(frozen=True)
class Arch:
    """A SANA-FE architecture: uniform tiles on a ``width x height`` mesh (tile ``t`` at column
    ``t // height``, row ``t % height``, SANA-FE's order), ``cores_per_tile`` identical cores."""

    name: str
    path: str | None
    width: int
    height: int
    tiles: int
    cores_per_tile: int
    max_neurons: int                     # per core
    buffer: str                          # a value of BUFFERS
    hop_energy: dict                     # J per hop, by direction
    hop_latency: dict                    # s per hop, by direction
    sync: dict                           # tiles in use -> s per step (largest key <= n applies)
    axon_in: Unit
    axon_out: Unit
    synapses: tuple
    dendrites: tuple
    somas: tuple
    link_buffer: int = 0

    # ------------------------------------------------------------------ choices
    def synapse_for(self, kind: str) -> Unit:
        """The synapse unit of a projection kind: the first whose name holds the kind's word
        (``dense``, ``sparse``, ``conv`` for conv2d and avgpool2d), else the first unit."""
        word = {"conv2d": "conv", "avgpool2d": "conv", "one_to_one": "sparse"}.get(kind, kind)
        for u in self.synapses:
            if word in u.name.lower():
                return u
        return self.synapses[0]

    @property
    def dendrite(self) -> Unit:
        return self.dendrites[0]

    @property
    def input_soma(self) -> Unit | None:
        """The soma of input neurons: a unit of SANA-FE's ``input`` model (one spike train per
        instance), or None when the core has none."""
        for u in self.somas:
            if u.model == "input":
                return u
        return None

    @property
    def neuron_soma(self) -> Unit:
        """The soma of every other neuron: the first unit that is not an ``input`` model."""
        for u in self.somas:
            if u.model != "input":
                return u
        raise ProfileError(f"{self.path or self.name}: soma: no unit of a neuron model (every "
                           f"soma unit is of the 'input' model)")

    def barrier_s(self, tiles_used: int) -> float:
        """Synchronisation time per step: the table's entry of the largest key <= tiles used
        (the first entry below every key), as SANA-FE looks it up."""
        keys = sorted(self.sync)
        below = [k for k in keys if k <= tiles_used]
        return float(self.sync[below[-1] if below else keys[0]])

    @property
    def per_event_dendrite(self) -> bool:
        """The dendrite runs once per synaptic event (buffer at or inside the dendrite's output)."""
        return self.buffer in ("inside_dendrite", "before_soma")

    @property
    def per_step_dendrite(self) -> bool:
        """The dendrite runs once per neuron and step (buffer before or inside it)."""
        return self.buffer in ("before_dendrite", "inside_dendrite")

    def tile_xy(self, tile: int) -> tuple[int, int]:
        return tile // self.height, tile % self.height


# --------------------------------------------------------------------------- reading

def _yaml(path: Path):
    try:
        import yaml
    except ImportError:     # pragma: no cover - pyyaml is an install requirement
        raise ProfileError(f"{path}: reading a SANA-FE architecture needs PyYAML "
                           f"(pip install pyyaml)") from None
    if not path.is_file():
        raise ProfileError(f"{path}: architecture file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        msg = " ".join(str(exc).split())
        raise ProfileError(f"{where(path, 'YAML')}: cannot parse architecture ({msg})") from None


class _Reader:
    """Field access with one-line errors naming the file, the field and the value."""

    def __init__(self, path):
        self.path = path

    def fail(self, fld, rule, value=...):
        got = "" if value is ... else f" (got {value!r})"
        raise ProfileError(f"{where(self.path, fld)}: {rule}{got}")

    def table(self, value, fld):
        if not isinstance(value, dict):
            self.fail(fld, "must be a mapping", value)
        return value

    def items(self, value, fld):
        """A section: a list of entries or one entry."""
        if isinstance(value, dict):
            return [value]
        if not isinstance(value, list) or not value:
            self.fail(fld, "must be a non-empty list of entries", value)
        return value

    def number(self, t, key, fld, hi):
        if key not in t:
            self.fail(f"{fld}.{key}", "is required")
        v = t[key]
        if isinstance(v, str):      # YAML 1.1 reads 6e-9 (no dot) as a string
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= hi:
            self.fail(f"{fld}.{key}", f"must be a finite number in [0, {hi:g}]", t[key])
        return float(v)

    def integer(self, t, key, fld, lo=1):
        v = t.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            self.fail(f"{fld}.{key}", f"must be an integer >= {lo}", v)
        return v

    def name(self, entry, fld) -> tuple[str, int]:
        n = entry.get("name")
        if not isinstance(n, str) or not n:
            self.fail(f"{fld}.name", "must be a non-empty string", n)
        m = _RANGE.match(n)
        if not m:
            return n, 1
        lo, hi = int(m[2]), int(m[3])
        if hi < lo:
            self.fail(f"{fld}.name", "range must be [low..high] with low <= high", n)
        return m[1], hi - lo + 1


_KEYS = {"axon_in": ("message_in",), "axon_out": ("message_out",),
         "synapse": ("process_spike",), "dendrite": ("update",),
         "soma": ("access_neuron", "update_neuron", "spike_out")}


def _unit(r: _Reader, section: str, entry, fld) -> Unit:
    name, count = r.name(entry, fld)
    attrs = r.table(entry.get("attributes", {}) or {}, f"{fld}.attributes")
    if attrs.get("plugin") is not None:
        r.fail(f"{fld}.attributes.plugin", "plugin units simulate their own costs: not modelled",
               attrs["plugin"])
    if attrs.get("update_every_timestep") or attrs.get("force_update"):
        r.fail(f"{fld}.attributes.update_every_timestep", "forced updates every step are not "
               "modelled", True)
    en = {k: r.number(attrs, f"energy_{k}", f"{fld}.attributes", MAX_J) for k in _KEYS[section]}
    la = {k: r.number(attrs, f"latency_{k}", f"{fld}.attributes", MAX_S) for k in _KEYS[section]}
    model = attrs.get("model", "")
    if not isinstance(model, str):
        r.fail(f"{fld}.attributes.model", "must be a string", model)
    return Unit(section, name, model, count, en, la)


def _core(r: _Reader, entry, fld) -> dict:
    name, count = r.name(entry, fld)
    attrs = r.table(entry.get("attributes"), f"{fld}.attributes")
    pos, inside = attrs.get("buffer_position"), bool(attrs.get("buffer_inside_unit", False))
    if (pos, inside) not in BUFFERS:
        r.fail(f"{fld}.attributes.buffer_position", "must be dendrite or soma (with "
               "buffer_inside_unit false) or dendrite inside the unit: other positions are not "
               "modelled", f"{pos}, inside {inside}")
    out = {"count": count, "max_neurons": r.integer(attrs, "max_neurons_supported",
                                                    f"{fld}.attributes"),
           "buffer": BUFFERS[(pos, inside)]}
    seen = {}
    for section in ("axon_in", "synapse", "dendrite", "soma", "axon_out"):
        units = []
        for i, e in enumerate(r.items(entry.get(section), f"{fld}.{section}")):
            u = _unit(r, section, r.table(e, f"{fld}.{section}[{i}]"), f"{fld}.{section}[{i}]")
            if u.name in seen:
                r.fail(f"{fld}.{section}[{i}].name", f"a unit in two sections ({seen[u.name]} "
                       f"and {section}) is not modelled", u.name)
            seen[u.name] = section
            units.append(u)
        out[section] = tuple(units)
    return out


def _same(r: _Reader, entries: list, what: str):
    """Every entry after the first must describe the same hardware (uniform chips only)."""
    first = {k: v for k, v in entries[0].items() if k != "name"}
    for i, e in enumerate(entries[1:], 1):
        if {k: v for k, v in e.items() if k != "name"} != first:
            r.fail(f"{what}[{i}]", f"differs from {what}[0]: only chips of identical "
                   f"{what.split('.')[-1]}s are modelled", e.get("name"))


def read_arch(path) -> Arch:
    """Read and validate a SANA-FE architecture YAML file."""
    path = Path(path)
    r = _Reader(path)
    raw = _yaml(path)
    top = r.table(r.table(raw, "").get("architecture"), "architecture")
    attrs = r.table(top.get("attributes"), "architecture.attributes")
    if attrs.get("topology", "mesh") != "mesh":
        r.fail("architecture.attributes.topology", "must be mesh", attrs.get("topology"))
    w = r.integer(attrs, "width", "architecture.attributes")
    h = r.integer(attrs, "height", "architecture.attributes")
    model = attrs.get("sync_model", "fixed")
    if model == "fixed":
        sync = {0: r.number(attrs, "latency_sync", "architecture.attributes", MAX_S)
                if "latency_sync" in attrs else 0.0}
    elif model == "table":
        t = r.table(attrs.get("latency_sync"), "architecture.attributes.latency_sync")
        sync = {}
        for k in t:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                r.fail("architecture.attributes.latency_sync", "keys must be tile counts >= 0",
                       k)
            sync[k] = r.number(t, k, "architecture.attributes.latency_sync", MAX_S)
        if not sync:
            r.fail("architecture.attributes.latency_sync", "must hold at least one entry", t)
    else:
        r.fail("architecture.attributes.sync_model", "must be fixed or table", model)
    tiles = r.items(top.get("tile"), "architecture.tile")
    _same(r, tiles, "architecture.tile")
    n_tiles = sum(r.name(t, f"architecture.tile[{i}]")[1] for i, t in enumerate(tiles))
    if n_tiles > w * h:
        r.fail("architecture.tile", f"{n_tiles} tiles do not fit the {w}x{h} mesh", n_tiles)
    t0 = tiles[0]
    tattr = r.table(t0.get("attributes"), "architecture.tile[0].attributes")
    he = {d: r.number(tattr, f"energy_{d}_hop", "architecture.tile[0].attributes", MAX_J)
          for d in DIRECTIONS}
    hl = {d: r.number(tattr, f"latency_{d}_hop", "architecture.tile[0].attributes", MAX_S)
          for d in DIRECTIONS}
    cores = r.items(t0.get("core"), "architecture.tile[0].core")
    _same(r, cores, "architecture.tile[0].core")
    parsed = [_core(r, r.table(c, f"architecture.tile[0].core[{i}]"),
                    f"architecture.tile[0].core[{i}]") for i, c in enumerate(cores)]
    c = parsed[0]
    name = top.get("name", path.stem)
    buf = attrs.get("link_buffer_size", 0)
    return Arch(str(name), str(path), w, h, n_tiles, sum(p["count"] for p in parsed),
                c["max_neurons"], c["buffer"], he, hl, sync, c["axon_in"][0], c["axon_out"][0],
                c["synapse"], c["dendrite"], c["soma"],
                buf if isinstance(buf, int) and not isinstance(buf, bool) else 0)


# --------------------------------------------------------------------------- as a profile

# neuroemu's event kinds (hardware.KINDS without the optional weight_update; hardware imports
# this module, so it is not imported here)
EVENT_KINDS = ("synaptic_op", "synaptic_mac", "neuron_update", "input_update", "encoder_update",
               "predictive_update", "decoder_update", "annealer_update", "packet", "hop_ew",
               "hop_ns")


def arch_profile_fields(path) -> dict:
    """The fields of a :class:`~neuroemu.energy.hardware.Profile` for a SANA-FE architecture
    file (``hardware.load_profile("x.yaml")`` builds it): neuroemu's event kinds priced with the
    architecture's units (``docs/sanafe.md`` section 2), and the architecture itself as
    ``arch`` for the exact per-unit pricing (:func:`arch_energy`) and the latency model
    (:mod:`neuroemu.energy.timing`)."""
    a = read_arch(path)
    pj, ns = 1e12, 1e9
    syn = a.synapse_for("dense")
    d_ev = a.dendrite if a.per_event_dendrite else None
    d_st = a.dendrite if a.per_step_dendrite else None
    soma, inp = a.neuron_soma, a.input_soma or a.neuron_soma

    def s_e(u, on=True):
        return (u.energy["access_neuron"] + u.energy["update_neuron"]) if on else 0.0

    def s_l(u):
        return u.latency["access_neuron"] + u.latency["update_neuron"]

    syn_e = syn.energy["process_spike"] + (d_ev.energy["update"] if d_ev else 0.0)
    syn_l = syn.latency["process_spike"] + (d_ev.latency["update"] if d_ev else 0.0)
    step_e = d_st.energy["update"] if d_st else 0.0
    step_l = d_st.latency["update"] if d_st else 0.0
    msg_e = a.axon_out.energy["message_out"] + a.axon_in.energy["message_in"]
    msg_l = a.axon_out.latency["message_out"] + a.axon_in.latency["message_in"]
    energy = dict.fromkeys(EVENT_KINDS, 0.0)
    latency = dict.fromkeys(EVENT_KINDS, 0.0)
    energy.update(synaptic_op=syn_e * pj, synaptic_mac=syn_e * pj,
                  neuron_update=(s_e(soma) + step_e) * pj, input_update=(s_e(inp) + step_e) * pj,
                  packet=msg_e * pj, hop_ew=(a.hop_energy["east"] + a.hop_energy["west"]) / 2 * pj,
                  hop_ns=(a.hop_energy["north"] + a.hop_energy["south"]) / 2 * pj)
    latency.update(synaptic_op=syn_l * ns, synaptic_mac=syn_l * ns,
                   neuron_update=(s_l(soma) + step_l) * ns, input_update=(s_l(inp) + step_l) * ns,
                   packet=msg_l * ns,
                   hop_ew=(a.hop_latency["east"] + a.hop_latency["west"]) / 2 * ns,
                   hop_ns=(a.hop_latency["north"] + a.hop_latency["south"]) / 2 * ns,
                   barrier=a.barrier_s(1) * ns)
    src = f"SANA-FE architecture {Path(path).name} ({a.name})"
    sources = {
        "synaptic_op": f"{src}: synapse unit {syn.name} per synaptic event"
                       + (f" + dendrite {d_ev.name}" if d_ev else "")
                       + "; other projection kinds use their own unit in the architecture model",
        "synaptic_mac": "as synaptic_op: SANA-FE messages carry no payload",
        "neuron_update": f"{src}: soma {soma.name} access + update every step (neuroemu's neurons "
                         f"have a bias and a leaky state); its cost per spike has no event kind "
                         f"and is priced by the architecture model only",
        "input_update": f"{src}: soma {inp.name} access + update",
        "packet": f"{src}: axon_out {a.axon_out.name} + axon_in {a.axon_in.name} per message "
                  f"(one message per destination core, never split into flits)",
        "hop_ew": f"{src}: mean of the east and west hop energies",
        "hop_ns": f"{src}: mean of the north and south hop energies",
        "encoder_update": "0: spike generation is the soma's",
        "latency_ns.barrier": f"{src}: synchronisation with one tile in use (the architecture "
                              f"model uses the tiles actually in use)",
    }
    return {"name": Path(path).stem, "description": f"SANA-FE architecture {a.name} "
            f"({a.width}x{a.height} tiles x {a.cores_per_tile} cores)", "energy_pj": energy,
            "header_bits": 0, "flit_bits": 1 << 20, "word_bits": 32, "sources": sources,
            "path": str(path), "latency_ns": latency, "arch": a}


# --------------------------------------------------------------------------- pricing

def arch_energy(arch: Arch, c) -> dict:
    """Energy in J per component and per sample of :class:`~neuroemu.energy.traffic.UnitCounts`
    ``c`` on ``arch``, as SANA-FE charges it:

    * synapse: every synaptic event x its unit's energy;
    * dendrite: every synaptic event (buffer at the soma or inside the dendrite) and/or every
      neuron and step (buffer before or inside the dendrite) x the dendrite's energy;
    * soma: per unit, neuron-steps x access + updated neuron-steps (input, or fired) x update
      + spikes x spike_out;
    * network: messages x (axon_out + axon_in) + hops x the energy of their direction.

    Returns ``{component: (B,) float64, "total": (B,)}`` and the network split
    (``network_hops``, ``network_axon_out``, ``network_axon_in``)."""
    B = c.spikes.shape[0]
    syn = np.zeros(B)
    for name, n in c.syn_by_unit.items():
        syn += n * _unit_named(arch.synapses, name).energy["process_spike"]
    d = arch.dendrite.energy["update"]
    den = (c.syn_events * d if arch.per_event_dendrite else 0.0) \
        + (c.neuron_steps.sum(axis=1) * d if arch.per_step_dendrite else 0.0)
    soma = np.zeros(B)
    for k, u in enumerate(c.somas):
        e = _unit_named(arch.somas, u).energy
        soma += c.neuron_steps[:, k] * e["access_neuron"] + c.updated[:, k] * e["update_neuron"] \
            + c.fired[:, k] * e["spike_out"]
    hops = sum(c.hops[d_] * arch.hop_energy[d_] for d_ in DIRECTIONS)
    out_e = c.messages * arch.axon_out.energy["message_out"]
    in_e = c.messages * arch.axon_in.energy["message_in"]
    out = {"synapse": syn, "dendrite": np.asarray(den, dtype=float) * np.ones(B),
           "soma": soma, "network": hops + out_e + in_e,
           "network_hops": hops * np.ones(B), "network_axon_out": out_e,
           "network_axon_in": in_e}
    out["total"] = out["synapse"] + out["dendrite"] + out["soma"] + out["network"]
    return out


def _unit_named(units, name) -> Unit:
    for u in units:
        if u.name == name:
            return u
    raise KeyError(name)
