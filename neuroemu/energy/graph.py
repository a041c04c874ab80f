"""Where a network's messages go, for the energy model: its projections as a
:class:`Topology`, the exact *reach* of every message (the receiving neurons whose synapses
it touches) and the route table of a placement built from it.

A population sends each message through its *deliveries*: forwards through every projection
whose pre it is (into the post), backwards through every symmetric projection whose post it is
and whose pre is not an input (into the pre) -- the deliveries the kernels make
(:mod:`neuroemu.engines.compiled`).  Through one delivery a message of sender neuron ``i``
reaches the neurons ``j`` where the matrix the projection implies has a synapse (forwards row
``i``, backwards column ``i``):

* ``dense``: every neuron of the receiving population;
* ``sparse``: the columns of row ``i`` (backwards: the rows of column ``i``);
* ``conv2d``: forwards the output units (every output map) whose window holds input unit
  ``(c, y, x)``; backwards the input units (every input map) inside output unit
  ``(c, y, x)``'s window, padding excluded;
* ``avgpool2d``: forwards the pooled units whose window holds the input unit; backwards the
  window of the pooled unit;
* ``one_to_one``: unit ``i``.

A message reaches the union of its deliveries' reaches; docs/energy-model.md section 4 turns
that into packets and hops.  A chain (format 1) is the special case where every delivery is
dense, so every neuron of a population has the same receivers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# pairs (sender, receiver) held in memory at once by the route table (blocks of senders)
PAIRS_PER_BLOCK = 1 << 22
# cells of the boolean (sender, core) table used to find distinct destinations
MASK_CELLS = 1 << 24


@dataclass(frozen=True, eq=False)
class Link:
    """One projection as the energy model sees it."""

    label: str              # the projection's name, or "pre->post"
    pre: int                # population indices
    post: int
    kind: str               # dense, sparse, conv2d, avgpool2d, one_to_one
    back: bool              # also delivers backwards (post -> pre)
    n_weights: int          # trainable weights (a pool has none)
    synapses: int           # synapses: the events of every sender sending once, per direction
    geometry: tuple = ()    # conv/pool: (ci, h, w, co, ho, wo, kh, kw, sy, sx, py, px)
    indices: tuple = ()     # sparse: (rows, cols) sorted by (row, col), and cols-major order
    parts: tuple = ("", "")  # labels of its forward and backward parts in the counts


@dataclass(frozen=True, eq=False)
class Topology:
    """Populations (in order) and projections of a network, with what the energy model
    needs of them: sizes, which are inputs, the deliveries and the labels of the parts."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    inputs: np.ndarray       # bool (populations,)
    links: tuple[Link, ...]
    chain: bool              # a chain of dense layers (format 1): every report as before
    bias_part: tuple = ()    # per population: index of the part charged with its biases

    @property
    def off(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    @property
    def parts(self) -> tuple[str, ...]:
        """Populations, then each projection forwards and backwards."""
        return tuple(self.names) + tuple(s for k in self.links for s in k.parts)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(k.label for k in self.links)

    def deliveries_from(self, l: int) -> list[tuple[int, int, int]]:
        """(projection, direction, receiving population) of population l's messages."""
        out = [(p, 0, k.post) for p, k in enumerate(self.links) if k.pre == l]
        return out + [(p, 1, k.pre) for p, k in enumerate(self.links) if k.post == l and k.back]


def part_labels(labels, ends, names) -> list[tuple[str, str]]:
    """Forward part = the label; backward part = "post->pre" for an unnamed projection (as a
    chain's reports always had it) unless that names another part, else "label (backward)"."""
    taken, out = set(labels), []
    for label, (a, b) in zip(labels, ends):
        rev = f"{names[b]}->{names[a]}"
        unnamed = label == f"{names[a]}->{names[b]}"
        back = rev if unnamed and rev not in taken else f"{label} (backward)"
        taken.add(back)
        out.append((label, back))
    return out


def _bias_parts(names, sizes, inputs, links) -> tuple:
    """Each non-input population's biases are charged to the part of the first delivery into
    it (forward ones first, as the kernels deliver; on a chain: the projection from the layer
    below), or to the population itself when nothing is delivered into it."""
    L1, out = len(names), []
    for r in range(L1):
        part = -1 if inputs[r] else r
        if not inputs[r]:
            fwd = [p for p, k in enumerate(links) if k.post == r]
            bwd = [p for p, k in enumerate(links) if k.pre == r and k.back]
            if fwd:
                part = L1 + 2 * fwd[0]
            elif bwd:
                part = L1 + 2 * bwd[0] + 1
        out.append(part)
    return tuple(out)


def chain_topology(names, sizes) -> Topology:
    """A chain of dense layers: layer 0 the input, projection p from layer p to p + 1."""
    names, sizes = tuple(names), tuple(int(s) for s in sizes)
    ends = [(p, p + 1) for p in range(len(sizes) - 1)]
    labels = [f"{names[a]}->{names[b]}" for a, b in ends]
    parts = part_labels(labels, ends, names)
    links = tuple(Link(lab, a, b, "dense", a >= 1, sizes[a] * sizes[b], sizes[a] * sizes[b],
                       parts=pt) for lab, (a, b), pt in zip(labels, ends, parts))
    inputs = np.arange(len(sizes)) == 0
    return Topology(names, sizes, inputs, links, True,
                    _bias_parts(names, sizes, inputs, links))


def topology(net) -> Topology:
    """The topology of a Netlist (any format)."""
    from ..engines.compiled import _is_chain
    pops = net.populations
    names = tuple(p.name for p in pops)
    sizes = tuple(int(p.size) for p in pops)
    inputs = np.array([p.role == "input" for p in pops])
    projs = net.projections
    ends = [(names.index(pr.pre), names.index(pr.post)) for pr in projs]
    labels = [getattr(pr, "label", f"{pr.pre}->{pr.post}") for pr in projs]
    parts = part_labels(labels, ends, names)
    links = []
    for pr, lab, (a, b), pt in zip(projs, labels, ends, parts):
        kind = getattr(pr, "kind", "dense")
        back = bool(getattr(pr, "symmetric", True)) and not inputs[a]
        geo, ind = (), ()
        if kind in ("conv2d", "avgpool2d"):
            pad = pr.param("padding") if kind == "conv2d" else (0, 0)
            geo = tuple(pops[a].dims) + tuple(pops[b].dims) + tuple(pr.param("kernel")) \
                + tuple(pr.param("stride")) + tuple(pad)
            geo = tuple(int(v) for v in geo)
        if kind == "sparse":
            r = np.asarray(pr.indices[0], dtype=np.int64)
            c = np.asarray(pr.indices[1], dtype=np.int64)
            order = np.lexsort((r, c))
            ind = (r, c, c[order], r[order])
        n_w = 0 if kind == "avgpool2d" else int(np.size(pr.weights))
        link = Link(lab, a, b, kind, back, n_w, 0, geo, ind, pt)
        syn = sizes[a] * sizes[b] if kind == "dense" else \
            sum(len(s) for s, _ in _blocks(link, 0, sizes[a], sizes[b]))
        links.append(Link(lab, a, b, kind, back, n_w, int(syn), geo, ind, pt))
    links = tuple(links)
    return Topology(names, sizes, inputs, links, _is_chain(net),
                    _bias_parts(names, sizes, inputs, links))


# --------------------------------------------------------------------------- reach

def reach(link: Link, d: int, lo: int, hi: int, n_recv: int) -> tuple[np.ndarray, np.ndarray]:
    """Every synapse that messages of senders ``lo..hi-1`` (local indices in the sending
    population) touch through ``link`` in direction ``d`` (0: pre -> post, 1: post -> pre):
    (sender, receiver) local index arrays (int64), each pair once, in no particular order.
    ``n_recv``: the size of the receiving population."""
    i = np.arange(lo, hi, dtype=np.int64)
    kind = link.kind
    if kind == "dense":
        return np.repeat(i, n_recv), np.tile(np.arange(n_recv, dtype=np.int64), hi - lo)
    if kind == "one_to_one":
        return i, i.copy()
    if kind == "sparse":
        rows, cols, bcols, brows = link.indices
        key, val = (rows, cols) if d == 0 else (bcols, brows)
        a, b = np.searchsorted(key, [lo, hi])
        return key[a:b].copy(), val[a:b].copy()
    ci, h, w, co, ho, wo, kh, kw, sy, sx, py, px = link.geometry
    ky = np.arange(kh, dtype=np.int64)[:, None]
    kx = np.arange(kw, dtype=np.int64)[None, :]
    if d == 0:   # input unit (c, y, x) -> output units whose window holds it
        c, y, x = i // (h * w), (i // w) % h, i % w
        ny = y[:, None, None] + py - ky[None]          # (m, kh, 1)
        nx = x[:, None, None] + px - kx[None]          # (m, 1, kw)
        ok = (ny >= 0) & (ny % sy == 0) & (ny // sy < ho) & (nx >= 0) & (nx % sx == 0) \
            & (nx // sx < wo)
        m, yy, xx = np.nonzero(ok)
        oy = ny[m, yy, 0] // sy
        ox = nx[m, 0, xx] // sx
        if kind == "avgpool2d":
            return i[m], (c[m] * ho + oy) * wo + ox
        outs = np.arange(co, dtype=np.int64)[None, :] * (ho * wo) + (oy * wo + ox)[:, None]
        return np.repeat(i[m], co), outs.reshape(-1)
    # d == 1: output unit (c, y, x) -> input units inside its window
    c, y, x = i // (ho * wo), (i // wo) % ho, i % wo
    iy = y[:, None, None] * sy - py + ky[None]
    ix = x[:, None, None] * sx - px + kx[None]
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    m, yy, xx = np.nonzero(ok)
    sp = iy[m, yy, 0] * w + ix[m, 0, xx]
    if kind == "avgpool2d":
        return i[m], c[m] * (h * w) + sp
    ins = np.arange(ci, dtype=np.int64)[None, :] * (h * w) + sp[:, None]
    return np.repeat(i[m], ci), ins.reshape(-1)


def _fan(link: Link, d: int, n_send: int, n_recv: int) -> int:
    """An upper bound of the receivers of one sender (to size the blocks)."""
    if link.kind == "dense":
        return n_recv
    if link.kind == "one_to_one":
        return 1
    if link.kind == "sparse":
        key = link.indices[0] if d == 0 else link.indices[2]
        return int(np.bincount(key, minlength=1).max()) if key.size else 1
    ci, h, w, co, ho, wo, kh, kw, sy, sx, py, px = link.geometry
    maps = 1 if link.kind == "avgpool2d" else (co if d == 0 else ci)
    return maps * kh * kw


def _blocks(link: Link, d: int, n_send: int, n_recv: int):
    """reach() over all senders, in blocks of bounded size."""
    step = max(1, PAIRS_PER_BLOCK // max(1, _fan(link, d, n_send, n_recv)))
    for lo in range(0, n_send, step):
        yield reach(link, d, lo, min(n_send, lo + step), n_recv)


def graph_routes(placement, topo: Topology, multicast: bool, hops):
    """(packets, hops_ew, hops_ns) per emitted message of every neuron (int64 (N,)) from the
    exact reach of its deliveries: one packet per destination core (multicast) or per
    receiving neuron (unicast), each travelling |dx| + |dy| links.  ``hops(placement, src,
    w)`` is hardware._hops (destination weights over cores -> hops per sender core)."""
    core = placement.core
    n_cores = int(core.max()) + 1
    off, sizes = topo.off, topo.sizes
    N = int(off[-1])
    packets = np.zeros(N, dtype=np.int64)
    hx = np.zeros(N, dtype=np.int64)
    hy = np.zeros(N, dtype=np.int64)
    cx, cy = placement.xy(np.arange(n_cores))
    for l in range(len(sizes)):
        dels = topo.deliveries_from(l)
        if not dels:
            continue
        whole = sorted({r for p, d, r in dels if topo.links[p].kind == "dense"})
        part = [(p, d, r) for p, d, r in dels if r not in whole]
        w = np.zeros(n_cores, dtype=np.int64)
        for r in whole:   # every neuron of a densely reached population
            w += np.bincount(core[off[r]:off[r + 1]], minlength=n_cores)
        if multicast:
            w = (w > 0).astype(np.int64)
        sl = slice(off[l], off[l + 1])
        src = core[sl]
        packets[sl] = w.sum()
        if w.any():
            hx[sl], hy[sl] = hops(placement, src, w)
        if not part:
            continue
        n = sizes[l]
        fan = sum(_fan(topo.links[p], d, n, sizes[r]) for p, d, r in part)
        step = max(1, PAIRS_PER_BLOCK // max(1, fan))
        if multicast:   # the (sender, core) table of a block fits a mask
            step = min(step, max(1, MASK_CELLS // n_cores))
        recv = [r for _, _, r in part]
        twice = len(set(recv)) < len(recv)   # two deliveries into one population
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            ss, jj = [], []
            for p, d, r in part:
                s, j = reach(topo.links[p], d, lo, hi, sizes[r])
                ss.append(s - lo)
                jj.append(j + off[r])
            s, j = np.concatenate(ss), np.concatenate(jj)
            if twice:   # a neuron reached through two deliveries is reached once
                s, j = _distinct(s, j, hi - lo, N)
            dst = core[j]
            if multicast:
                s, dst = _distinct(s, dst, hi - lo, n_cores)
                keep = w[dst] == 0      # cores the dense part reaches already have a packet
                s, dst = s[keep], dst[keep]
            mine = core[off[l] + lo + s]
            rng = hi - lo
            packets[off[l] + lo:off[l] + hi] += np.bincount(s, minlength=rng)
            hx[off[l] + lo:off[l] + hi] += _isum(s, np.abs(cx[mine] - cx[dst]), rng)
            hy[off[l] + lo:off[l] + hi] += _isum(s, np.abs(cy[mine] - cy[dst]), rng)
    return packets, hx, hy


def _distinct(a, b, na: int, nb: int):
    """The distinct pairs (a, b), a in [0, na), b in [0, nb): through a mask when the
    table is small, else by sorting."""
    key = a * nb + b
    if na * nb <= MASK_CELLS:
        mask = np.zeros(na * nb, dtype=bool)
        mask[key] = True
        key = np.flatnonzero(mask)
    else:
        key = np.sort(key)
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return key // nb, key % nb


def _isum(idx, values, n) -> np.ndarray:
    """Integer sums of small integer ``values`` by ``idx`` (float64 sums are exact far
    beyond any hop count)."""
    return np.rint(np.bincount(idx, weights=values, minlength=n)).astype(np.int64)
