"""Netlist -> CompiledNetwork: flat struct-of-arrays with fixed dtypes for the kernels.

Weights and the delivered-input accumulator are float32 (the original implementation
computes in float32; halving the bytes per spike halves the memory traffic of delivery);
neuron states and all other arithmetic are float64; counters are int64.

Populations are column ranges ``off[p]:off[p+1]`` of one neuron axis, in netlist order.
Projections form a table ``pj`` (one int64 row per projection: kind, pre, post, whether it
delivers backwards, buffer offsets, map geometry); their weights live in two float32
buffers: ``wf`` holds each projection's forward weights in the kind's own layout (dense
``W`` row-major; sparse values in CSR order; a conv kernel ``(C_out, C_in, kh, kw)``;
one-to-one ``(n,)``; a pool has none), ``wb`` the copies that need a layout of
their own (dense ``W^T`` row-major, sparse values in the CSR order of ``W^T``, and a conv
kernel twice channels-last, ``(C_in, kh, kw, C_out)`` for forwards and ``(C_out, kh, kw,
C_in)`` for backwards), so a spike always walks contiguous memory.  Sparse index arrays (both CSR forms) live in ``ix``.

A chain of dense symmetric layers of the paper's neuron -- every format-1 netlist -- has
exactly the layout of the chain kernel (``W_l`` at ``wf_off[l]``, ``W_l^T`` at
``wb_off[l]``, no ``W_0^T`` as the clamped input receives nothing) and runs on it
(:func:`~neuroemu.engines.kernels.run_lockstep`); every other network runs the graph
kernel (:func:`~neuroemu.engines.kernels.run_graph`), which gives the same bits on chains
(tests/test_graph_engine.py).

Deliveries into a population happen in a fixed order (``dl``, grouped by target by
``dl_off``): the forward deliveries of the projections whose post it is, in projection
order, then the backward deliveries of the symmetric projections whose pre it is, in
projection order -- on a chain, from the layer below and then from the layer above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..describe import Netlist, replace
from ..describe.neurons import ANNEALERS, DECODERS, ENCODERS, SCHEDULES
from ..errors import CompileError
import neuroemu.engines.fixedpoint as fixedpoint
import neuroemu.engines.kernels as K

KINDS = {"dense": K.PK_DENSE, "sparse": K.PK_SPARSE, "conv2d": K.PK_CONV,
         "avgpool2d": K.PK_POOL, "one_to_one": K.PK_O2O}
MODELS = {"paper": K.MODEL_PAPER, "if": K.MODEL_IF, "lif": K.MODEL_LIF}
RESETS = {"subtract": K.RESET_SUBTRACT, "zero": K.RESET_ZERO}


@dataclass(eq=False)
class CompiledNetwork:
    netlist: Netlist
    names: tuple[str, ...]
    off: np.ndarray      # int64 (P+1,): population p is columns off[p]:off[p+1]
    lp: np.ndarray       # float64 (P, LP_COUNT): per-population kinds and parameters
    wf: np.ndarray       # float32: forward weights of every projection, concatenated
    wf_off: np.ndarray   # int64 (projections,): start of each projection's forward weights
    wb: np.ndarray       # float32: backward copies (dense W^T, sparse W^T values)
    wb_off: np.ndarray   # int64 (projections,): start of the backward copy, -1 if none
    bias: np.ndarray     # float64 (N,), zeros for input populations
    pj: np.ndarray = None      # int64 (projections, PJ_COUNT): the projection table
    ix: np.ndarray = None      # int64: sparse CSR index arrays
    dl: np.ndarray = None      # int64 (deliveries, 2): (projection, direction) by target
    dl_off: np.ndarray = None  # int64 (P+1,): deliveries into population p: dl[dl_off[p]:...]
    xoff: np.ndarray = None    # int64 (P,): column of an input population in x, else -1
    yoff: np.ndarray = None    # int64 (P,): column of an output population in y, else -1
    graph: bool = False        # runs the graph kernel (False: the chain kernel)
    perm: tuple = ()           # per projection: sparse CSR(W) -> CSR(W^T) order, else None
    fixed: fixedpoint.FixedPlan | None = None   # fixed-point arithmetic (None: float)
    w8f: np.ndarray = None     # int8 mantissas laid out as wf (fixed-point fast path; else empty)
    w8b: np.ndarray = None     # int8 mantissas laid out as wb

    def __post_init__(self):
        if self.w8f is None:
            self.w8f = np.zeros(0, np.int8)
            self.w8b = np.zeros(0, np.int8)

    @property
    def n_layers(self) -> int:
        """Number of populations (for a chain: layers including the input, L+1)."""
        return len(self.names)

    @property
    def n_pops(self) -> int:
        return len(self.names)

    @property
    def n_projections(self) -> int:
        return len(self.wf_off)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(n) for n in np.diff(self.off))

    @property
    def n_neurons(self) -> int:
        return int(self.off[-1])

    @property
    def inputs(self) -> tuple[int, ...]:
        """Indices of the input (clamped) populations, in order."""
        return tuple(int(p) for p in np.flatnonzero(self.xoff >= 0))

    @property
    def outputs(self) -> tuple[int, ...]:
        """Indices of the output (nudged) populations, in order."""
        return tuple(int(p) for p in np.flatnonzero(self.yoff >= 0))

    @property
    def n_in(self) -> int:
        """Columns of an input batch x: the input populations' sizes summed."""
        return sum(self.sizes[p] for p in self.inputs)

    @property
    def n_out(self) -> int:
        """Columns of a target y: the output populations' sizes summed."""
        return sum(self.sizes[p] for p in self.outputs)

    def layer(self, name_or_index) -> int:
        if isinstance(name_or_index, (int, np.integer)):
            return int(name_or_index)
        try:
            return self.names.index(name_or_index)
        except ValueError:
            raise CompileError(f"no population named {name_or_index!r} "
                               f"(have: {', '.join(self.names)})") from None

    def projection_shape(self, p: int) -> tuple[int, ...]:
        """The shape of projection p's weights in its kind's own layout."""
        return tuple(np.shape(self.netlist.projections[p].weights))

    def weights(self, p: int) -> np.ndarray:
        """View of projection p's forward weights (float32) in its kind's layout: for a
        dense projection (and every projection l -> l+1 of a chain) ``W`` (pre x post)."""
        shape = self.projection_shape(p)
        n = int(np.prod(shape))
        return self.wf[self.wf_off[p]:self.wf_off[p] + n].reshape(shape)

    def set_weights(self, p: int, w: np.ndarray) -> None:
        """Replace projection p's weights in every stored orientation (used by training)."""
        shape = self.projection_shape(p)
        w = np.asarray(w).reshape(shape)
        n = int(np.prod(shape))
        lo = self.wf_off[p]
        self.wf[lo:lo + n] = w.reshape(-1)
        wb = self.wb_off[p]
        if wb < 0:
            return
        if self.pj is not None and self.pj[p, K.PJ_KIND] == K.PK_SPARSE:
            self.wb[wb:wb + n] = self.wf[lo:lo + n][self.perm[p]]
        elif self.pj is not None and self.pj[p, K.PJ_KIND] == K.PK_CONV:
            k32 = self.wf[lo:lo + n].reshape(shape)
            self.wb[wb:wb + n] = k32.transpose(1, 2, 3, 0).reshape(-1)
            self.wb[wb + n:wb + 2 * n] = k32.transpose(0, 2, 3, 1).reshape(-1)
        elif len(shape) == 2:
            self.wb[wb:wb + n] = w.T.reshape(-1)

    def set_fixed_weights(self, weights) -> None:
        """Fixed point: plan again for these (float, master) weights -- exponents, quanta,
        saturation -- and store them on the grid, with the int8 copies of the fast path
        (training keeps its float weights and calls this after each update)."""
        fp = fixedpoint.plan(self.netlist, self.lp[:, K.LP_ENC] != K.ENC_NONE, weights)
        for r, pop in enumerate(self.netlist.populations):
            self.lp[r, K.LP_MSGQ] = fp.message_scale if self.lp[r, K.LP_ENC] == K.ENC_NONE else 0.0
            self.lp[r, K.LP_USAT] = 0.0 if pop.role == "input" else fp.sat[r]
            self.lp[r, K.LP_SQ] = fp.arithmetic.state_bits
            self.lp[r, K.LP_SB] = fp.arithmetic.step_bits
        self._fast_layers(fp)
        for p, pr in enumerate(self.netlist.projections):
            fmt, e = fp.formats[p], int(fp.exponents[p])
            if fmt is not None and getattr(pr, "kind", "dense") == "dense":
                K.quantise_dense(np.asarray(weights[p], np.float64), 2.0 ** -e, 2.0 ** e,
                                 float(fmt.max_mantissa), self.wf, self.wf_off[p], self.wb,
                                 self.wb_off[p], self.w8f, self.w8b)
                continue
            w = weights[p] if fmt is None else fixedpoint.quantise(weights[p], fmt, e)[0]
            self.set_weights(p, w)
            if self.w8f.size:
                n = int(np.prod(self.projection_shape(p)))
                for buf, src, lo in ((self.w8f, self.wf, self.wf_off[p]),
                                     (self.w8b, self.wb, self.wb_off[p])):
                    if lo >= 0:
                        buf[lo:lo + n] = np.rint(src[lo:lo + n] * 2.0 ** -e)
        self.fixed = fp

    def _fast_layers(self, fp) -> None:
        """Mark the chain layers whose deliveries can sum int8 mantissas (every sender
        spiking, every weight of at most 8 bits, one quantum) and size the int8 copies."""
        self.lp[:, K.LP_FAST] = 0.0
        self.lp[:, K.LP_QSCALE] = 0.0
        fast = []
        if not self.graph:
            spiking = self.lp[:, K.LP_ENC] != K.ENC_NONE
            for l in range(1, self.n_layers):
                into = [l - 1] + ([l] if l + 1 < self.n_layers else [])   # projections
                senders = [l - 1] + ([l + 1] if l + 1 < self.n_layers else [])
                if (all(spiking[r] for r in senders)
                        and all(fp.formats[p].bits <= 8 for p in into)
                        and all(fp.exponents[p] == fp.quantum_exp[l] for p in into)):
                    fast.append(l)
        if not fast:
            self.w8f, self.w8b = np.zeros(0, np.int8), np.zeros(0, np.int8)
            return
        if self.w8f.shape != self.wf.shape:
            self.w8f = np.zeros(self.wf.shape, np.int8)
            self.w8b = np.zeros(self.wb.shape, np.int8)
        for l in fast:
            self.lp[l, K.LP_FAST] = 1.0
            self.lp[l, K.LP_QSCALE] = 2.0 ** int(fp.quantum_exp[l])

    def biases(self, l: int) -> np.ndarray:
        return self.bias[self.off[l]:self.off[l + 1]]

    def to_netlist(self) -> Netlist:
        """The netlist with the weights and biases this network holds now (after training,
        say); float32 weights are widened exactly to float64."""
        pops = self.netlist.populations
        return replace(self.netlist,
                       weights=[self.weights(p).astype(np.float64)
                                for p in range(self.n_projections)],
                       biases=[None if pops[l].role == "input" else self.biases(l).copy()
                               for l in range(self.n_pops)])

    @property
    def binary(self) -> bool:
        """True if every population communicates with spikes."""
        return bool(np.all(self.lp[:, K.LP_ENC] != K.ENC_NONE))


def _neuron_row(row, n) -> None:
    model = getattr(n, "model", "paper")
    row[K.LP_MODEL] = MODELS[model]
    if model != "paper":
        row[K.LP_ENC] = K.ENC_SPIKE
        row[K.LP_THR] = n.threshold
        row[K.LP_LEAK] = n.leak
        row[K.LP_RESET] = RESETS[n.reset]
        row[K.LP_V0] = n.v0
        return
    row[K.LP_ENC] = ENCODERS[n.encoder]
    row[K.LP_PRED] = 1.0 if n.predictive else 0.0
    row[K.LP_LAMK] = SCHEDULES[n.lam.kind]
    if n.lam.kind == "constant":
        row[K.LP_LAMA], row[K.LP_LAMB] = n.lam.get("value"), 0.0
    else:
        row[K.LP_LAMA], row[K.LP_LAMB] = n.lam.get("lam0"), n.lam.get("eta")
    lam2 = getattr(n, "lam2", None)
    if lam2 is not None:                 # two-pole predictive code
        row[K.LP_POLE2] = 1.0
        row[K.LP_LAM2K] = SCHEDULES[lam2.kind]
        if lam2.kind == "constant":
            row[K.LP_LAM2A], row[K.LP_LAM2B] = lam2.get("value"), 0.0
        else:
            row[K.LP_LAM2A], row[K.LP_LAM2B] = lam2.get("lam0"), lam2.get("eta")
    clamp = getattr(n, "clamp", None)
    if clamp is not None:                # sigma-delta residue clamp a + b/t
        row[K.LP_CLAMP] = 1.0
        row[K.LP_CLA], row[K.LP_CLB] = clamp
    row[K.LP_DEC] = DECODERS[n.decoder]
    row[K.LP_ANNK] = ANNEALERS[n.eps.kind]
    if n.eps.kind == "constant":
        row[K.LP_ANNA], row[K.LP_ANNB] = n.eps.get("eps0"), 0.0
    elif n.eps.kind == "scheduled":
        row[K.LP_ANNA], row[K.LP_ANNB] = n.eps.get("eps0"), n.eps.get("eta")
    else:
        row[K.LP_ANNA], row[K.LP_ANNB] = n.eps.get("nu_bar"), n.eps.get("reg")


def _is_chain(net: Netlist) -> bool:
    """Populations input, hidden..., output in order, every projection dense, symmetric,
    from one layer to the next in order, every neuron the paper's."""
    pops, projs = net.populations, net.projections
    names = [p.name for p in pops]
    roles = ["input"] + ["hidden"] * (len(pops) - 2) + ["output"]
    if [p.role for p in pops] != roles or len(projs) != len(pops) - 1:
        return False
    if any(getattr(p.neuron, "model", "paper") != "paper" for p in pops):
        return False
    return all(getattr(pr, "kind", "dense") == "dense" and getattr(pr, "symmetric", True)
               and (pr.pre, pr.post) == (names[l], names[l + 1])
               for l, pr in enumerate(projs))


def _geometry(row, pr, pre, post) -> None:
    """Map shapes and kernel parameters of a conv or pool projection into its table row."""
    ci, hi, wi = pre.dims
    co, ho, wo = post.dims
    kh, kw = pr.param("kernel")
    sy, sx = pr.param("stride")
    py, px = pr.param("padding") if pr.kind == "conv2d" else (0, 0)
    row[K.PJ_CI:K.PJ_PX + 1] = (ci, hi, wi, co, ho, wo, kh, kw, sy, sx, py, px)


def _csr(rows, cols, n_rows):
    """indptr of COO entries sorted by row."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr)


def build(net: Netlist) -> CompiledNetwork:
    """Flatten a validated netlist into arrays."""
    pops, projs = net.populations, net.projections
    names = [p.name for p in pops]
    sizes = np.array(net.sizes, dtype=np.int64)
    off = np.zeros(len(sizes) + 1, dtype=np.int64)
    off[1:] = np.cumsum(sizes)
    lp = np.zeros((len(sizes), K.LP_COUNT))
    xoff = np.full(len(pops), -1, dtype=np.int64)
    yoff = np.full(len(pops), -1, dtype=np.int64)
    nx = ny = 0
    for l, pop in enumerate(pops):
        _neuron_row(lp[l], pop.neuron)
        if pop.role == "input":
            xoff[l], nx = nx, nx + pop.size
        elif pop.role == "output":
            yoff[l], ny = ny, ny + pop.size
    if nx == 0 or ny == 0:
        raise CompileError(f"{net.path or net.name}: a network needs an input and an output "
                           "population")
    P = len(projs)
    pj = np.zeros((P, K.PJ_COUNT), dtype=np.int64)
    wf_off = np.zeros(P, dtype=np.int64)
    wb_off = np.full(P, -1, dtype=np.int64)
    nf = nb = 0
    ix_parts, nix = [], 0
    perm = [None] * P
    for p, pr in enumerate(projs):
        a, b = names.index(pr.pre), names.index(pr.post)
        kind = getattr(pr, "kind", "dense")
        row = pj[p]
        row[K.PJ_KIND], row[K.PJ_PRE], row[K.PJ_POST] = KINDS[kind], a, b
        row[K.PJ_NPRE], row[K.PJ_NPOST] = sizes[a], sizes[b]
        back = getattr(pr, "symmetric", True) and pops[a].role != "input"
        row[K.PJ_BWD] = 1 if back else 0
        nw = int(np.size(pr.weights))
        wf_off[p], nf = nf, nf + nw
        row[K.PJ_WF] = wf_off[p]
        row[K.PJ_WB] = -1
        if kind in ("dense", "sparse") and back:
            wb_off[p], nb = nb, nb + nw
            row[K.PJ_WB] = wb_off[p]
        elif kind == "conv2d":         # two channels-last copies of the kernel
            wb_off[p], nb = nb, nb + 2 * nw
            row[K.PJ_WB] = wb_off[p]
        if kind in ("conv2d", "avgpool2d"):
            _geometry(row, pr, pops[a], pops[b])
        if kind == "sparse":
            r, c = np.asarray(pr.indices[0], np.int64), np.asarray(pr.indices[1], np.int64)
            order = np.lexsort((r, c))              # CSR order of W^T: by col, then row
            perm[p] = order
            parts = (_csr(r, c, int(sizes[a])), c, _csr(c[order], r[order], int(sizes[b])),
                     r[order])
            row[K.PJ_IXF] = nix
            row[K.PJ_IXB] = nix + len(parts[0]) + len(parts[1])
            row[K.PJ_NNZ] = len(r)
            ix_parts += parts
            nix += sum(len(x) for x in parts)
    # deliveries by target: forward ones in projection order, then backward ones
    dl, dl_off = [], [0]
    for r in range(len(pops)):
        if pops[r].role != "input":
            dl += [(p, 0) for p in range(P) if pj[p, K.PJ_POST] == r]
            dl += [(p, 1) for p in range(P) if pj[p, K.PJ_PRE] == r and pj[p, K.PJ_BWD]]
        dl_off.append(len(dl))
    bias = np.concatenate([p.bias for p in pops]).astype(np.float64)
    cn = CompiledNetwork(
        net, tuple(names), off, lp, np.empty(nf, dtype=np.float32), wf_off,
        np.empty(nb, dtype=np.float32), wb_off, bias, pj,
        np.concatenate(ix_parts).astype(np.int64) if ix_parts else np.zeros(0, np.int64),
        np.array(dl, dtype=np.int64).reshape(-1, 2), np.array(dl_off, dtype=np.int64),
        xoff, yoff, not _is_chain(net), tuple(perm))
    fp = fixedpoint.plan(net, lp[:, K.LP_ENC] != K.ENC_NONE)
    if fp is None:
        for p, pr in enumerate(projs):
            cn.set_weights(p, pr.weights)
        return cn
    cn.fixed = fp
    cn.set_fixed_weights([pr.weights for pr in projs])
    return cn
