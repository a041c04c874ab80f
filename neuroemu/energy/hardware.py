"""Hardware side of the energy model: profiles, placement on a 2D mesh, XY routing.

* A **profile** (``neuroemu/data/profiles/NAME.toml`` or any TOML file of the same form)
  gives the energy of each kind of event in picojoules and the packet format of the
  network-on-chip.  :func:`load_profile` validates it; every problem is a
  :class:`~neuroemu.errors.ProfileError` naming the file, the field, the rule and the value.
* A **placement** puts every neuron (global index, layers in order) on a core of a
  ``width x height`` mesh: by layer (each population starts on a fresh core), packed
  (cores filled in neuron order), or from a user-given ``.npy`` map of core indices.
  Core ``c`` sits at column ``x = c % width`` and row ``y = c // width``.
* A **route table** says, for one message emitted by neuron ``i``, how many packets it
  becomes and how many east-west / north-south link hops those packets travel under
  dimension-order (XY) routing: ``hops = |dx| + |dy|`` per (sender core, destination)
  pair.  Multicast sends one packet per destination *core*; unicast one per destination
  *neuron*.

* :func:`count_events` combines these tables with the counters of a run (collected by
  :mod:`neuroemu.energy`) into counts per event kind and part, and :func:`energy_pj`
  prices them.  See ``docs/energy-model.md``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from ..describe.arrays import read_npy
from ..errors import ProfileError, where

# Event kinds with an energy per event, in report order.  ``weight_update`` is optional in
# a profile (only training-update reports use it).
KINDS = ("synaptic_op", "synaptic_mac", "neuron_update", "input_update", "encoder_update",
         "predictive_update", "decoder_update", "annealer_update", "packet", "hop_ew",
         "hop_ns", "weight_update")
OPTIONAL_KINDS = ("weight_update",)
# Kinds charged per flit (the others per event).
FLIT_KINDS = ("packet", "hop_ew", "hop_ns")
KIND_DOC = {
    "synaptic_op": "synaptic event of a spike (weight read + accumulate), per synapse",
    "synaptic_mac": "synaptic event of a real-valued word (multiply-accumulate), per synapse",
    "neuron_update": "state update of a non-input neuron (drive + leaky step), per step",
    "input_update": "one step of a clamped input neuron",
    "encoder_update": "quantizer step (sigma-delta / stochastic) of a spiking neuron",
    "predictive_update": "predictive-coding wrapper step of an encoder",
    "decoder_update": "predictive decoder step of a receiving neuron",
    "annealer_update": "OSA step-size update of a neuron",
    "packet": "packet (per flit) handed from the sender's router to a destination core",
    "hop_ew": "one east-west link hop of one flit",
    "hop_ns": "one north-south link hop of one flit",
    "weight_update": "learning-rule update of one weight or bias, per sample",
}
_NOC_KEYS = {"header_bits": (0, 4096), "flit_bits": (1, 1 << 20), "word_bits": (1, 4096)}
_TOP_KEYS = {"profile", "noc", "energy_pj", "memory", "latency_ns", "sources"}
# Optional [memory] table: the memory hierarchy (energies per 32-bit word access in pJ, the
# on-chip capacity in bytes) and the arithmetic of the one-pass ANN baseline.
MEMORY_KEYS = {
    "sram_read_pj": "on-chip SRAM read of one 32-bit word",
    "sram_write_pj": "on-chip SRAM write of one 32-bit word",
    "dram_read_pj": "off-chip DRAM read of one 32-bit word",
    "dram_write_pj": "off-chip DRAM write of one 32-bit word",
    "onchip_bytes": "on-chip memory available for weights, bytes (whole chip)",
    "mac_pj": "one multiply-accumulate of the ANN baseline at ann_bits",
    "add_pj": "one addition of the ANN baseline at ann_bits (bias, accumulate)",
    "ann_bits": "bits of the ANN baseline's weights and activations",
    "synaptic_weight_bits": "bits of the weight whose read synaptic_op and synaptic_mac include "
                            "(a fixed-point network's narrower weights read that fraction less "
                            "of a 32-bit word: docs/arithmetic.md)",
}
# Optional [latency_ns] table: time per event (any kind of KINDS) and per time step.
LATENCY_KEYS = KINDS + ("barrier",)
POLICIES = ("layer", "packed")
# At most this many picojoules per event: far above any hardware (a few to a few hundred pJ),
# and low enough that no total of int64 event counts x flits can overflow float64.
MAX_PJ = 1e6
# Core indices of a placement map must be below this (a million cores; route tables are
# computed per used core, never per mesh cell).
MAX_CORES = 1 << 20


@dataclass(frozen=True)
class Profile:
    """Energies per event (pJ) and the packet format of one hardware model."""

    name: str
    description: str
    energy_pj: dict[str, float]        # every kind of KINDS except missing optional ones
    header_bits: int                   # packet header (type, routing) bits
    flit_bits: int                     # link width: a b-bit packet takes ceil(b / flit_bits) flits
    word_bits: int                     # payload of a real-valued message (default 32)
    sources: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    memory: dict[str, float] = field(default_factory=dict)      # [memory] (MEMORY_KEYS)
    latency_ns: dict[str, float] = field(default_factory=dict)  # [latency_ns] (LATENCY_KEYS)
    arch: object = None     # a richer architecture model (a SANA-FE description), if read from one

    def pj(self, kind: str) -> float | None:
        return self.energy_pj.get(kind)


def profiles_dir() -> Path:
    return Path(str(resources.files("neuroemu") / "data" / "profiles"))


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped as package data (TOML profiles and SANA-FE architecture
    descriptions, ``.yaml``)."""
    d = profiles_dir()
    return sorted(p.stem for p in (*d.glob("*.toml"), *d.glob("*.yaml"))) if d.is_dir() else []


def shipped_profile_path(name: str) -> Path:
    """The file of a shipped profile (``name.toml`` or ``name.yaml``)."""
    toml = profiles_dir() / f"{name}.toml"
    return toml if toml.exists() else profiles_dir() / f"{name}.yaml"


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name (``loihi``) or any profile file by path."""
    s = str(name_or_path)
    path = Path(s)
    if not (s.endswith((".toml", ".yaml", ".yml")) or path.exists()):
        shipped = shipped_profiles()
        if s not in shipped:
            raise ProfileError(f"--profile: unknown profile {s!r} (shipped: {', '.join(shipped)}; "
                               f"or give the path of a profile .toml file)")
        path = shipped_profile_path(s)
    if str(path).endswith((".yaml", ".yml")):      # a SANA-FE architecture description
        from .sanafe_arch import arch_profile_fields
        return Profile(**arch_profile_fields(path))
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{where(path, 'TOML')}: cannot parse profile ({exc})") from None
    return profile_from_dict(raw, path)


def _short(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def profile_from_dict(raw, path=None) -> Profile:
    """Validate a parsed profile table (see ``docs/energy-model.md`` for the format)."""
    def fail(fld, rule, value=...):
        got = "" if value is ... else f" (got {_short(value)})"
        raise ProfileError(f"{where(path, fld)}: {rule}{got}")

    def table(value, fld, required=True):
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            fail(fld, "must be a table", value)
        return value

    table(raw, "")
    for key in raw:
        if key not in _TOP_KEYS:
            fail(key, f"unknown top-level key (allowed: {', '.join(sorted(_TOP_KEYS))})", raw[key])
    head = table(raw.get("profile"), "profile")
    for key in head:
        if key not in ("name", "description"):
            fail(f"profile.{key}", "unknown key (allowed: name, description)", head[key])
    name = head.get("name", Path(path).stem if path else None)
    if not isinstance(name, str) or not name:
        fail("profile.name", "must be a non-empty string", name)
    desc = head.get("description", "")
    if not isinstance(desc, str):
        fail("profile.description", "must be a string", desc)

    noc = table(raw.get("noc"), "noc")
    bits = {}
    for key in noc:
        if key not in _NOC_KEYS:
            fail(f"noc.{key}", f"unknown key (allowed: {', '.join(_NOC_KEYS)})", noc[key])
    for key, (lo, hi) in _NOC_KEYS.items():
        value = noc.get(key, 32 if key == "word_bits" else ...)
        if value is ...:
            fail(f"noc.{key}", "is required")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            fail(f"noc.{key}", f"must be an integer in [{lo}, {hi}]", value)
        bits[key] = value

    en = table(raw.get("energy_pj"), "energy_pj")
    energy = {}
    for key in en:
        if key not in KINDS:
            fail(f"energy_pj.{key}", f"unknown event kind (allowed: {', '.join(KINDS)})", en[key])
    for kind in KINDS:
        if kind not in en:
            if kind in OPTIONAL_KINDS:
                continue
            fail(f"energy_pj.{kind}", "is required (energy per event in pJ; 0 if included "
                 "in another kind)")
        value = en[kind]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not 0 <= value <= MAX_PJ:
            fail(f"energy_pj.{kind}", f"must be a finite non-negative number of picojoules, at "
                 f"most {MAX_PJ:g}", value)
        energy[kind] = float(value)

    extra = {}
    for tab, allowed in (("memory", tuple(MEMORY_KEYS)), ("latency_ns", LATENCY_KEYS)):
        t = table(raw.get(tab), tab, required=False)
        extra[tab] = {}
        for key, value in t.items():
            if key not in allowed:
                fail(f"{tab}.{key}", f"unknown key (allowed: {', '.join(allowed)})", value)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                fail(f"{tab}.{key}", "must be a finite non-negative number", value)
            extra[tab][key] = float(value)
    for key in ("ann_bits", "synaptic_weight_bits"):
        ab = extra["memory"].get(key)
        if ab is not None and (ab != int(ab) or not 1 <= ab <= 64):
            fail(f"memory.{key}", "must be an integer in [1, 64]", ab)

    src = table(raw.get("sources"), "sources", required=False)
    for key, value in src.items():
        if key not in KINDS and key not in _NOC_KEYS and key not in MEMORY_KEYS \
                and not (key.startswith("latency_ns.") and key[11:] in LATENCY_KEYS):
            fail(f"sources.{key}", "must name an event kind, a noc or memory field, or "
                 "latency_ns.<key>", value)
        if not isinstance(value, str):
            fail(f"sources.{key}", "must be a string", value)
    return Profile(name, desc, energy, bits["header_bits"], bits["flit_bits"], bits["word_bits"],
                   dict(src), str(path) if path else None, extra["memory"], extra["latency_ns"])


# --------------------------------------------------------------------------- placement

def parse_mesh(text: str) -> tuple[int, int]:
    """``"4x4"`` -> (width, height)."""
    parts = str(text).lower().split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        w = h = 0
    if len(parts) != 2 or w < 1 or h < 1:
        raise ProfileError(f"--mesh: must be WIDTHxHEIGHT with positive integers, e.g. 4x4 "
                           f"(got {text!r})")
    return w, h


@dataclass(frozen=True, eq=False)
class Placement:
    """Which core of a ``width x height`` mesh holds each neuron (global index)."""

    width: int
    height: int
    neurons_per_core: int
    core: np.ndarray        # int64 (N,)
    policy: str

    @property
    def n_cores(self) -> int:
        return self.width * self.height

    @property
    def cores_used(self) -> int:
        return int(np.unique(self.core).size)

    def xy(self, cores) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(cores, dtype=np.int64)
        return c % self.width, c // self.width

    @property
    def address_bits(self) -> int:
        """Bits of a (core, neuron-in-core) address."""
        return _bits(self.n_cores) + _bits(self.neurons_per_core)

    @property
    def mesh(self) -> str:
        return f"{self.width}x{self.height}"


def _bits(n: int) -> int:
    return int(math.ceil(math.log2(n))) if n > 1 else 0


def _layer_cores(sizes, npc) -> np.ndarray:
    cores, base = [], 0
    for n in sizes:
        cores.append(base + np.arange(n, dtype=np.int64) // npc)
        base += -(-n // npc)
    return np.concatenate(cores)


def place(sizes, mesh: tuple[int, int] | None = None, neurons_per_core: int = 256,
          policy: str = "layer") -> Placement:
    """Place ``sum(sizes)`` neurons.  ``policy`` is ``layer``, ``packed`` or a ``.npy`` path
    holding one core index per neuron.  Without ``mesh`` the smallest square mesh that
    holds the placement is used."""
    sizes = [int(s) for s in sizes]
    n = sum(sizes)
    if isinstance(neurons_per_core, bool) or not isinstance(neurons_per_core, (int, np.integer)) \
            or neurons_per_core < 1:
        raise ProfileError(f"--neurons-per-core: must be a positive integer "
                           f"(got {neurons_per_core!r})")
    npc = int(neurons_per_core)
    if policy == "layer":
        core = _layer_cores(sizes, npc)
    elif policy == "packed":
        core = np.arange(n, dtype=np.int64) // npc
    else:
        core = _load_map(policy, n, npc)
    needed = int(core.max()) + 1
    if mesh is None:
        side = max(1, math.isqrt(needed - 1) + 1) if needed > 1 else 1
        mesh = (side, side)
    w, h = mesh
    if needed > w * h:
        what = f"placement {policy!r}" if policy in POLICIES else f"{policy}"
        raise ProfileError(f"--mesh: {what} needs {needed} cores of {npc} neurons for {n} neurons, "
                           f"the {w}x{h} mesh has {w * h} (got --mesh {w}x{h})")
    return Placement(w, h, npc, core, policy if policy in POLICIES else "map")


def _load_map(path, n, npc) -> np.ndarray:
    # header first: a regular file, integers, shape (n,), before the data is read
    try:
        arr = read_npy(path, shape=(n,), kinds="iu", error=ProfileError, what="placement map",
                       expect=f"placement map must be an integer array of shape ({n},), one "
                              f"core index per neuron")
    except ProfileError as exc:
        if "placement map must be" in str(exc):
            raise
        raise ProfileError(f"{exc}; --placement takes {', '.join(POLICIES)} or a .npy file of "
                           f"core indices") from None
    if arr.min() < 0:
        raise ProfileError(f"{where(path, f'[{int(np.argmin(arr))}]')}: core index must be >= 0 "
                           f"(got {int(arr.min())})")
    if arr.max() >= MAX_CORES:
        raise ProfileError(f"{where(path, f'[{int(np.argmax(arr))}]')}: core index must be below "
                           f"{MAX_CORES} (got {int(arr.max())})")
    arr = arr.astype(np.int64)
    counts = np.bincount(arr)
    if counts.max() > npc:
        c = int(np.argmax(counts))
        raise ProfileError(f"{where(path, f'core {c}')}: holds {int(counts[c])} neurons, more "
                           f"than --neurons-per-core {npc}")
    return arr


# --------------------------------------------------------------------------- routing

def receivers(n_layers: int, l: int) -> list[int]:
    """Layers that receive layer l's messages: its non-input neighbours."""
    return [m for m in (l - 1, l + 1) if 1 <= m < n_layers]


@dataclass(frozen=True, eq=False)
class RouteTable:
    """Per message emitted by neuron i: ``packets[i]`` packets travelling ``hops_ew[i]``
    east-west and ``hops_ns[i]`` north-south link hops in total (int64, shape (N,))."""

    packets: np.ndarray
    hops_ew: np.ndarray
    hops_ns: np.ndarray
    multicast: bool


def route_table(placement: Placement, sizes, multicast: bool = True) -> RouteTable:
    """Exact packets and XY hops per emitted message, for every neuron (vectorised).

    For a sender on core c and destination weights ``w[d]`` (1 per destination core for
    multicast; the number of receiving neurons on core d for unicast):
    ``hops_ew = sum_d w[d] |x_c - x_d|``, ``hops_ns = sum_d w[d] |y_c - y_d|``.
    ``sizes``: the layer sizes of a chain (every layer sends to its non-input neighbours),
    or a :class:`~neuroemu.energy.graph.Topology`, whose messages reach exactly the neurons
    their projections' synapses touch (:func:`~neuroemu.energy.graph.graph_routes`).
    """
    from .graph import Topology, graph_routes
    core = placement.core
    n_cores = int(core.max()) + 1
    if n_cores > MAX_CORES:
        raise ProfileError(f"placement: core index must be below {MAX_CORES} (got {n_cores - 1})")
    if isinstance(sizes, Topology):
        return RouteTable(*graph_routes(placement, sizes, bool(multicast), _hops),
                          bool(multicast))
    sizes = [int(s) for s in sizes]
    off = np.concatenate([[0], np.cumsum(sizes)])
    N = int(off[-1])
    packets = np.zeros(N, dtype=np.int64)
    hx = np.zeros(N, dtype=np.int64)
    hy = np.zeros(N, dtype=np.int64)
    for l in range(len(sizes)):
        recv = receivers(len(sizes), l)
        if not recv:
            continue
        dst = np.concatenate([core[off[m]:off[m + 1]] for m in recv])
        w = np.bincount(dst, minlength=n_cores).astype(np.int64)
        if multicast:
            w = (w > 0).astype(np.int64)
        src = core[off[l]:off[l + 1]]
        packets[off[l]:off[l + 1]] = w.sum()
        hx[off[l]:off[l + 1]], hy[off[l]:off[l + 1]] = _hops(placement, src, w)
    return RouteTable(packets, hx, hy, bool(multicast))


def _hops(placement: Placement, src: np.ndarray, w: np.ndarray):
    """``sum_d w[d] |x_c - x_d|`` and the same in y for each sender core ``c`` in ``src``:
    over used cores only (senders x destinations, in blocks), never a cores x cores matrix."""
    dst = np.flatnonzero(w)
    wd = w[dst]
    dxs, dys = placement.xy(dst)
    cores, inv = np.unique(src, return_inverse=True)
    sx, sy = placement.xy(cores)
    hx = np.zeros(cores.size, dtype=np.int64)
    hy = np.zeros(cores.size, dtype=np.int64)
    step = max(1, (1 << 22) // max(1, dst.size))
    for i in range(0, cores.size, step):
        blk = slice(i, i + step)
        hx[blk] = np.abs(sx[blk, None] - dxs[None, :]) @ wd
        hy[blk] = np.abs(sy[blk, None] - dys[None, :]) @ wd
    return hx[inv], hy[inv]


def packet_bits(placement: Placement, profile: Profile, real: bool) -> int:
    """Bits of one address-event packet: header + (core, neuron) address [+ word]."""
    return profile.header_bits + placement.address_bits + (profile.word_bits if real else 0)


def flits(bits: int, profile: Profile) -> int:
    return -(-int(bits) // profile.flit_bits)


# --------------------------------------------------------------------------- counting

@dataclass
class Counts:
    """Event counts ``events[b, kind, part]`` (int64; float64 where traffic was estimated),
    plus the per-part flits per packet and traffic statistics (B, layers).  Parts: the
    populations, then every projection forwards and backwards (``labels``: the projections)."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    steps: int
    parts: tuple[str, ...]
    events: np.ndarray
    flits: np.ndarray          # (parts,) flits per packet of each sending population
    bits: np.ndarray           # (layers,) bits per packet of each sending population
    messages: np.ndarray       # (B, layers)
    hops_exact: bool
    real: np.ndarray           # (layers,) which populations send words
    labels: tuple[str, ...] = ()   # projection labels (name or "pre->post"), in order


def _traffic(per_msg, spk, msgs, sl, first, constant_first):
    """Events of one population's messages given a per-neuron table: exact when the table
    is constant over the population or per-neuron message counts are known, else None."""
    tab = per_msg[sl]
    constant = bool(np.all(tab == per_msg[first]))
    if constant and (constant_first or msgs is None):
        return spk * per_msg[first]
    if msgs is not None:
        return msgs @ tab
    return None


def count_events(act, coding, names, sizes, placement: Placement,
                 routes: RouteTable, profile: Profile, weight_updates: bool = False,
                 topology=None) -> Counts:
    """Counts per event kind and part of an :class:`~neuroemu.energy.Activity` (kernel
    counters, optional per-neuron message counts) whose populations talk as ``coding``
    (:class:`~neuroemu.energy.Coding`) -- see docs/energy-model.md sections 2 and 4.
    ``topology`` (:class:`~neuroemu.energy.graph.Topology`): the network's projections;
    default a chain of the layers ``names``."""
    from .graph import chain_topology
    names, sizes = tuple(names), tuple(int(s) for s in sizes)
    topo = topology if topology is not None else chain_topology(names, sizes)
    L1 = len(sizes)
    B = act.batch
    parts = topo.parts
    K = {k: i for i, k in enumerate(KINDS)}
    c = act.counters
    spk, syn, upd = c["spikes"], c["syn_events"], c["updates"]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    # communication: packets and hops per message of each neuron (route table) times its
    # messages; exact from per-population counts where the table is constant over the
    # population (every neuron of a chain's layer has the same receivers), else estimated
    # with the messages spread evenly over the population's neurons
    exact = True
    traffic = np.zeros((3, B, L1), dtype=np.int64)
    est = np.zeros((3, B, L1))
    for l in range(L1):
        sl = slice(off[l], off[l + 1])
        m = None if act.messages is None else act.messages[:, sl]
        for k, tab in enumerate((routes.packets, routes.hops_ew, routes.hops_ns)):
            got = _traffic(tab, spk[:, l], m, sl, off[l], k == 0)
            if got is None:
                exact = False
                est[k, :, l] = spk[:, l] * tab[sl].mean()
            else:
                traffic[k, :, l] = got
    pk, hx, hy = traffic if exact else traffic + est
    ev = np.zeros((B, len(KINDS), len(parts)), dtype=np.int64 if exact else np.float64)
    for p, link in enumerate(topo.links):
        for d, sender in ((0, link.pre), (1, link.post)):
            kind = "synaptic_mac" if coding.real[sender] else "synaptic_op"
            ev[:, K[kind], L1 + 2 * p + d] = syn[:, p, d]
        if weight_updates:  # every weight of the projection; biases below
            ev[:, K["weight_update"], L1 + 2 * p] = link.n_weights
    if weight_updates:      # every non-input population's biases, once
        for r, part in enumerate(topo.bias_part):
            if part >= 0:
                ev[:, K["weight_update"], part] += sizes[r]
    state, enc = upd[:, :, 0], upd[:, :, 1]
    inp = topo.inputs
    ev[:, K["neuron_update"], :L1] = state * ~inp
    ev[:, K["input_update"], :L1] = enc * inp
    ev[:, K["encoder_update"], :L1] = enc * ~coding.real
    ev[:, K["predictive_update"], :L1] = enc * coding.predictive
    ev[:, K["decoder_update"], :L1] = state * coding.decoder
    ev[:, K["annealer_update"], :L1] = state * coding.osa
    ev[:, K["packet"], :L1] = pk
    ev[:, K["hop_ew"], :L1] = hx
    ev[:, K["hop_ns"], :L1] = hy
    bits = np.array([packet_bits(placement, profile, bool(r)) for r in coding.real])
    fl = np.ones(len(parts), dtype=np.int64)
    fl[:L1] = [flits(b, profile) for b in bits]
    return Counts(names, sizes, act.steps, parts, ev, fl, bits, spk.copy(), exact,
                  coding.real.copy(), topo.labels)


def energy_pj(counts: Counts, profile: Profile) -> np.ndarray:
    """Energy ``[b, kind, part]`` in pJ: events x pJ per event (x flits per packet for the
    packet and hop kinds).  Kinds a profile does not model (optional) cost 0."""
    unit = np.array([profile.pj(k) or 0.0 for k in KINDS])[:, None] * np.ones(len(counts.parts))
    for k in FLIT_KINDS:
        unit[KINDS.index(k)] *= counts.flits
    return counts.events * unit


def for_arithmetic(profile: Profile, arith) -> tuple[Profile, dict | None]:
    """The profile as a network with fixed-point arithmetic (docs/arithmetic.md) uses it, and
    what changed: real-valued messages carry ``message_bits`` of payload instead of the
    profile's ``word_bits``; a synaptic event reads a ``weight_bits`` weight, so where the
    profile says which weight width its ``synaptic_op``/``synaptic_mac`` include
    (``memory.synaptic_weight_bits``) and prices an SRAM read, they change by
    ``(weight_bits - synaptic_weight_bits) / 32`` of a 32-bit read.  ``arith`` None or float:
    the profile unchanged and None."""
    if arith is None or not arith.fixed:
        return profile, None
    bits = arith.weights.bits
    energy = dict(profile.energy_pj)
    ref, sram = profile.memory.get("synaptic_weight_bits"), profile.memory.get("sram_read_pj")
    info = {"weight_bits": bits, "message_bits": arith.message_bits,
            "word_bits_profile": profile.word_bits}
    if arith.state_bits:
        info["state_bits"] = arith.state_bits
        info["state"] = ("integer neurons: the profile's neuron, encoder and decoder updates "
                         "and the footprint's 32-bit state words are not rescaled to "
                         f"state_bits = {arith.state_bits}")
    if ref is not None and sram is not None:
        delta = (bits - ref) / 32.0 * sram
        for kind in ("synaptic_op", "synaptic_mac"):
            if kind in energy:
                energy[kind] = max(0.0, energy[kind] + delta)
        info["synaptic_op_pj"] = round(energy["synaptic_op"], 9)
        info["weight_read"] = (f"synaptic events read {bits}-bit weights: "
                               f"{delta:+.4g} pJ each against the profile's {int(ref)}-bit read")
    else:
        info["weight_read"] = ("not modelled: the profile does not say which weight width its "
                               "synaptic_op includes (memory.synaptic_weight_bits)")
    return replace(profile, word_bits=int(arith.message_bits), energy_pj=energy), info
