"""Where a run's spikes go on a chip, step by step: the counts behind the architecture pricing
(:func:`neuroemu.energy.sanafe_arch.arch_energy`) and the latency model
(:mod:`neuroemu.energy.timing`).

A :class:`HwMap` puts every neuron on a hardware *core* inside a *tile* of a mesh: neuroemu's
placement core ``c`` (column ``c % W``, row ``c // W`` of its ``W x H`` mesh) becomes core
``c % k`` of tile ``c // k`` with ``k`` cores per tile, the tile at column ``(c // k) % W``, row
``(c // k) // W`` (``k = 1``: one core per tile, the tiles where neuroemu's cores are).  Cores
of one tile share its router: a message between them crosses no link.

:class:`Fanout` holds, per sending population, the destination cores of every neuron (one
message per destination core, as SANA-FE sends one per axon and neuroemu's multicast one packet
per core) and, per delivery, the synapses every neuron has on every receiving core.
:func:`step_counts` turns a spike raster ``[step, sample, neuron]`` into per-step, per-core
counts (:class:`StepCounts`); :func:`unit_counts` sums them per soma and synapse unit of an
architecture (:class:`UnitCounts`).

Conventions (``docs/sanafe.md`` section 3): a message is sent, routed and received in the step
its spike happens; its synaptic events happen in that step too (``last_step="deliver"``,
SANA-FE's convention) or in the next step (``"drop"``, neuroemu's: the last step's spikes are
never delivered).  A neuron is *updated* at step ``t`` when it fired at ``t`` or received a
synaptic event from a spike of step ``t - 1`` (the soma integrates the previous step's input).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ProfileError

DIRS = ("east", "west", "north", "south")
LAST_STEP = ("deliver", "drop")
CELLS = 1 << 24         # float cells of a spike block held at once


@dataclass(frozen=True, eq=False)
class HwMap:
    """Hardware position of every neuron: its core (an index into ``cores``), the tile of
    every used core and that tile's mesh column and row."""

    core: np.ndarray        # (N,) index into the used cores
    cores: np.ndarray       # (C,) hardware core ids (tile * k + offset) of the used cores
    tile: np.ndarray        # (C,) tile index (neuroemu order) of each used core
    x: np.ndarray           # (C,) column of its tile
    y: np.ndarray           # (C,) row of its tile
    cores_per_tile: int
    width: int
    height: int

    @property
    def tiles_used(self) -> int:
        return int(np.unique(self.tile).size)


def hw_map(placement, cores_per_tile: int = 1) -> HwMap:
    """The hardware map of a neuroemu :class:`~neuroemu.energy.hardware.Placement`."""
    k = int(cores_per_tile)
    if k < 1:
        raise ProfileError(f"--cores-per-tile: must be a positive integer (got {k})")
    used, inv = np.unique(placement.core, return_inverse=True)
    tile = used // k
    W = placement.width
    n_tiles = int(tile.max()) + 1
    H = max(placement.height, -(-n_tiles // W))
    return HwMap(inv.astype(np.int64), used.astype(np.int64), tile.astype(np.int64),
                 tile % W, tile // W, k, W, H)


@dataclass(frozen=True, eq=False)
class Delivery:
    """One delivery (projection ``link``, direction ``d``) from population ``pre`` into ``post``."""

    link: int
    d: int
    pre: int
    post: int
    kind: str
    cores: np.ndarray       # used cores holding receivers (indices into HwMap.cores)
    syn: np.ndarray         # (n_pre, len(cores)) synapses of every sender on each of them
    dense: bool             # every sender reaches every receiver
    ptr: np.ndarray | None = None    # non-dense: CSR of the receivers (local) of each sender
    idx: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Fanout:
    """Destination cores per neuron and synapses per (sender, core) of every delivery."""

    hw: HwMap
    topo: object
    dest: tuple             # per population: (n, C) int8, 1 where a message goes
    deliveries: tuple       # Delivery


def fanout(topo, hw: HwMap) -> Fanout:
    """The fan-out tables of a :class:`~neuroemu.energy.graph.Topology` on ``hw``."""
    from .graph import _blocks
    off, sizes = topo.off, topo.sizes
    C = hw.cores.size
    dest = [np.zeros((n, C), dtype=np.int8) for n in sizes]
    dels = []
    for l in range(len(sizes)):
        for p, d, r in topo.deliveries_from(l):
            link = topo.links[p]
            rc = hw.core[off[r]:off[r + 1]]
            cores = np.unique(rc)
            pos = np.searchsorted(cores, rc)
            syn = np.zeros((sizes[l], cores.size), dtype=np.int64)
            dense = link.kind == "dense"
            ptr = idx = None
            if dense:
                syn[:] = np.bincount(pos, minlength=cores.size)
            else:
                ss, jj = [], []
                for s, j in _blocks(link, d, sizes[l], sizes[r]):
                    ss.append(s)
                    jj.append(j)
                s = np.concatenate(ss) if ss else np.zeros(0, np.int64)
                j = np.concatenate(jj) if jj else np.zeros(0, np.int64)
                order = np.argsort(s, kind="stable")
                s, j = s[order], j[order]
                np.add.at(syn, (s, pos[j]), 1)
                ptr = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=sizes[l]))])
                idx = j.astype(np.int64)
            dest[l][:, cores] |= (syn > 0).astype(np.int8)
            dels.append(Delivery(p, d, l, r, link.kind, cores, syn, dense, ptr, idx))
    return Fanout(hw, topo, tuple(dest), tuple(dels))


@dataclass
class StepCounts:
    """Per step and sample (leading axes ``(T, B)``) on the used cores ``C``:

    ``fired``/``updated``/``msgs_out`` (T, B, C, P) spikes, updated neurons and messages sent per
    core and population; ``neurons`` (C, P); ``msgs_in`` (T, B, C) messages received; ``syn``
    (T, B, C, K) synaptic events per delivery ``K`` (in the step the convention puts them);
    ``hops`` (T, B, 4) link crossings east, west, north, south; ``links`` (T, B, L) flits on each
    directed mesh link (``link_dir`` (L,): 0..3 as DIRS); ``route`` (T, B) the longest route a
    message took in the step, in hops weighted by ``hop_weight`` (the latency per hop of each
    direction)."""

    fired: np.ndarray
    updated: np.ndarray
    neurons: np.ndarray
    msgs_out: np.ndarray
    msgs_in: np.ndarray
    syn: np.ndarray
    hops: np.ndarray
    links: np.ndarray
    link_dir: np.ndarray
    route: np.ndarray
    last_step: str
    exact: bool = True


def _hops(hw: HwMap) -> np.ndarray:
    """(C, C, 4) hops east, west, north, south of the XY route between every two used cores."""
    dx = hw.x[None, :] - hw.x[:, None]
    dy = hw.y[None, :] - hw.y[:, None]
    return np.stack([np.maximum(dx, 0), np.maximum(-dx, 0), np.maximum(dy, 0),
                     np.maximum(-dy, 0)], axis=2)


def _route_links(hw: HwMap, a: int, b: int) -> np.ndarray:
    """The directed mesh links (index ``((y * W + x) * 4 + direction)``) of the XY route
    from used core ``a`` to ``b``: x first, then y."""
    W = hw.width
    x, y, xb, yb = int(hw.x[a]), int(hw.y[a]), int(hw.x[b]), int(hw.y[b])
    out = []
    while x != xb:
        d = 0 if xb > x else 1
        out.append((y * W + x) * 4 + d)
        x += 1 if d == 0 else -1
    while y != yb:
        d = 2 if yb > y else 3
        out.append((y * W + x) * 4 + d)
        y += 1 if d == 2 else -1
    return np.array(out, dtype=np.int64)


def _check_raster(raster, topo):
    r = np.asarray(raster)
    N = int(topo.off[-1])
    if r.ndim != 3 or r.shape[2] != N:
        raise ProfileError(f"spike raster: must have shape (steps, samples, {N}) "
                           f"(got {r.shape})")
    return r


def step_counts(fan: Fanout, raster, last_step: str = "deliver",
                hop_weight=(1.0, 1.0, 1.0, 1.0), flits=None, spread: bool = False,
                always=None) -> StepCounts:
    """Per-step counts of a spike raster (bool ``[step, sample, neuron]``).  ``hop_weight``:
    latency per hop east, west, north, south (for ``route``); ``flits``: flits per message of
    each population (default 1; ``links`` and ``route`` count flits).  ``spread``: the raster
    holds each neuron's messages per step averaged over the run (one row of floats, the
    even-spread estimate of :mod:`neuroemu.energy.timing`): no step shift, and every neuron
    that can receive is updated every step.  ``always`` (bool per population): populations
    whose neurons are updated every step (:func:`always_updated`)."""
    if last_step not in LAST_STEP:
        raise ProfileError(f"--last-step: must be one of {', '.join(LAST_STEP)} "
                           f"(got {last_step!r})")
    topo, hw = fan.topo, fan.hw
    r = _check_raster(raster, topo)
    T, B, N = r.shape
    off, sizes = topo.off, topo.sizes
    P, C, K = len(sizes), hw.cores.size, len(fan.deliveries)
    hop = _hops(hw)
    L = 4 * hw.width * hw.height
    dirs = np.arange(L) % 4
    routes: dict = {}
    w = np.asarray(hop_weight, dtype=float)
    lat = hop @ w                                    # (C, C) route latency
    fl = np.ones(len(sizes)) if flits is None else np.asarray(flits, dtype=float)
    neurons = np.zeros((C, P), dtype=np.int64)
    for l in range(P):
        neurons[:, l] = np.bincount(hw.core[off[l]:off[l + 1]], minlength=C)
    fired = np.zeros((T, B, C, P))
    updated = np.zeros((T, B, C, P))
    out = np.zeros((T, B, C, P))
    inn = np.zeros((T, B, C))
    syn = np.zeros((T, B, C, K))
    hops = np.zeros((T, B, 4))
    links = np.zeros((T, B, L))
    route = np.zeros((T, B))
    recv_prev = None
    chunk = max(1, CELLS // max(1, B * N))
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        S = r[t0:t1].reshape((t1 - t0) * B, N).astype(np.float64)
        R = S.shape[0]
        sh = (t1 - t0, B)
        recv = [np.zeros((R, n), dtype=bool) for n in sizes]
        for l in range(P):
            Sl = S[:, off[l]:off[l + 1]]
            cl = hw.core[off[l]:off[l + 1]]
            fired[t0:t1, :, :, l] = (Sl @ _onehot(cl, C)).reshape(sh + (C,))
            for a in np.unique(cl):
                sel = cl == a
                Q = Sl[:, sel] @ fan.dest[l][sel].astype(np.float64)     # (R, C) a -> c
                out[t0:t1, :, a, l] += Q.sum(axis=1).reshape(sh)
                inn[t0:t1] += Q.reshape(sh + (C,))
                hops[t0:t1] += (Q @ hop[a]).reshape(sh + (4,))
                lk = links[t0:t1].reshape(-1, L)
                for b_ in np.flatnonzero(Q.any(axis=0)):
                    if (a, b_) not in routes:
                        routes[(a, b_)] = _route_links(hw, a, b_)
                    lk[:, routes[(a, b_)]] += Q[:, b_:b_ + 1] * fl[l]
                reach = np.where(Q > 0, lat[a][None, :], 0.0).max(axis=1)
                route[t0:t1] = np.maximum(route[t0:t1], reach.reshape(sh))
        for k, dl in enumerate(fan.deliveries):
            Sl = S[:, off[dl.pre]:off[dl.pre + 1]]
            syn[t0:t1, :, dl.cores, k] = (Sl @ dl.syn.astype(np.float64)).reshape(
                sh + (dl.cores.size,))
            if dl.dense:
                recv[dl.post] |= (Sl.sum(axis=1) > 0)[:, None]
            else:
                _mark(recv[dl.post], Sl, dl.ptr, dl.idx)
        # updated at t: fired at t, or received from a spike of t - 1 (the previous row
        # block); spread (mean messages per step): every neuron that can receive, every step
        for l in range(P):
            Sp = S[:, off[l]:off[l + 1]]
            if always is not None and always[l]:
                up = np.ones_like(Sp)
            elif spread:
                into = any(dl.post == l for dl in fan.deliveries)
                up = np.ones_like(Sp) if into else Sp
            else:
                got = np.zeros_like(recv[l])
                got[B:] = recv[l][:-B]
                if recv_prev is not None:
                    got[:B] = recv_prev[l]
                up = (got | (Sp > 0)).astype(np.float64)
            updated[t0:t1, :, :, l] = (up @ _onehot(hw.core[off[l]:off[l + 1]], C)).reshape(
                sh + (C,))
        recv_prev = [x[-B:] for x in recv]
    if last_step == "drop" and not spread:
        syn = np.concatenate([np.zeros((1, B, C, K)), syn[:-1]])
    return StepCounts(fired, updated, neurons, out, inn, syn, hops, links, dirs, route,
                      last_step, not spread)


def _onehot(core, C) -> np.ndarray:
    m = np.zeros((core.size, C))
    m[np.arange(core.size), core] = 1.0
    return m


def _mark(recv, Sl, ptr, idx) -> None:
    """recv[row, j] |= some spiking sender of the row reaches j (CSR of receivers)."""
    rows, s = np.nonzero(Sl)
    if not rows.size:
        return
    n = ptr[s + 1] - ptr[s]
    rep_rows = np.repeat(rows, n)
    start = np.repeat(ptr[s] - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
    j = idx[start + np.arange(int(n.sum()))]
    recv[rep_rows, j] = True


@dataclass
class UnitCounts:
    """Counts per sample (B,) for the architecture pricing: messages, spikes, synaptic events
    (in all and per synapse unit), per soma unit neuron-steps / updated neuron-steps / spikes
    (B, S) in the order of ``somas``, and hops per direction."""

    spikes: np.ndarray
    messages: np.ndarray
    syn_events: np.ndarray
    syn_by_unit: dict
    somas: tuple
    neuron_steps: np.ndarray
    updated: np.ndarray
    fired: np.ndarray
    hops: dict


def soma_units(arch, topo, hw: HwMap) -> list[str]:
    """The soma unit of every population: input populations on the architecture's ``input``
    units when it has enough of them per core, every other on its neuron soma."""
    out = []
    inp = arch.input_soma
    off = topo.off
    for l in range(len(topo.sizes)):
        per_core = np.bincount(hw.core[off[l]:off[l + 1]]).max() if topo.sizes[l] else 0
        if topo.inputs[l] and inp is not None and per_core <= inp.count:
            out.append(inp.name)
        else:
            out.append(arch.neuron_soma.name)
    return out


def synapse_units(arch, topo) -> list[str]:
    """The synapse unit of every population's incoming synapses (SANA-FE chooses it per
    receiving neuron): by the kind of the first projection delivering into it."""
    out = []
    for r in range(len(topo.sizes)):
        kinds = [k.kind for k in topo.links if k.post == r] + \
            [k.kind for k in topo.links if k.pre == r and k.back]
        out.append(arch.synapse_for(kinds[0] if kinds else "dense").name)
    return out


def always_updated(arch, topo, hw: HwMap) -> np.ndarray | None:
    """Populations whose somas SANA-FE updates every step on ``arch``: with the time-step
    buffer before (or inside) the dendrite, the dendrite hands every soma a current every step,
    so every neuron not on an ``input`` unit is updated every step (None: no such
    populations)."""
    if arch is None or not arch.per_step_dendrite:
        return None
    inp = arch.input_soma
    return np.array([inp is None or u != inp.name for u in soma_units(arch, topo, hw)])


def unit_counts(sc: StepCounts, fan: Fanout, arch) -> UnitCounts:
    """Sum step counts per soma and synapse unit of ``arch`` (the populations' choices of
    :func:`soma_units` and :func:`synapse_units`)."""
    topo = fan.topo
    T = sc.fired.shape[0]
    somas = soma_units(arch, topo, fan.hw)
    names = tuple(dict.fromkeys(somas))
    B = sc.fired.shape[1]
    ns, up, fi = (np.zeros((B, len(names))) for _ in range(3))
    for l, u in enumerate(somas):
        k = names.index(u)
        ns[:, k] += sc.neurons[:, l].sum() * T
        up[:, k] += sc.updated[..., l].sum(axis=(0, 2))
        fi[:, k] += sc.fired[..., l].sum(axis=(0, 2))
    units = synapse_units(arch, topo)
    by_unit: dict = {}
    for k, dl in enumerate(fan.deliveries):
        u = units[dl.post]
        by_unit[u] = by_unit.get(u, 0) + sc.syn[..., k].sum(axis=(0, 2))
    syn = sum(by_unit.values()) if by_unit else np.zeros(B)
    return UnitCounts(sc.fired.sum(axis=(0, 2, 3)), sc.msgs_out.sum(axis=(0, 2, 3)),
                      np.asarray(syn) * np.ones(B), by_unit, names, ns, up, fi,
                      {d: sc.hops[..., i].sum(axis=0) for i, d in enumerate(DIRS)})
