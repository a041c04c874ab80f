"""Netlist -> CompiledNetwork: flat struct-of-arrays with fixed dtypes for the kernels.

Weights and the delivered-input accumulator are float32 (the original implementation
computes in float32; halving the bytes per spike halves the memory traffic of delivery);
neuron states and all other arithmetic are float64; counters are int64.  The
weights of projection ``l`` (layer l -> l+1) are stored twice, as ``W_l`` and ``W_l^T``,
both row-major, so that a spike always adds one contiguous fan-out row (the price is
twice the weight memory, which buys vectorised delivery in both directions).  The one
exception is ``W_0^T``: the clamped input layer receives nothing, so that copy is not
kept (``wb_off[0] == -1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..describe import Netlist, replace
from ..describe.neurons import ANNEALERS, DECODERS, ENCODERS, SCHEDULES
from ..errors import CompileError
import neuroemu.engines.kernels as K


@dataclass(eq=False)
class CompiledNetwork:
    netlist: Netlist
    names: tuple[str, ...]
    off: np.ndarray      # int64 (L+2,): layer l is columns off[l]:off[l+1]
    lp: np.ndarray       # float64 (L+1, LP_COUNT): per-layer component kinds and parameters
    wf: np.ndarray       # float32: W_0, W_1, ... row-major, concatenated
    wf_off: np.ndarray   # int64 (L,)
    wb: np.ndarray       # float32: W_1^T, W_2^T, ... row-major, concatenated (no W_0^T)
    wb_off: np.ndarray   # int64 (L,); -1 for projection 0
    bias: np.ndarray     # float64 (N,), zeros for the input layer

    @property
    def n_layers(self) -> int:
        """Number of layers including the input (L+1)."""
        return len(self.names)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(n) for n in np.diff(self.off))

    @property
    def n_neurons(self) -> int:
        return int(self.off[-1])

    def layer(self, name_or_index) -> int:
        if isinstance(name_or_index, (int, np.integer)):
            return int(name_or_index)
        try:
            return self.names.index(name_or_index)
        except ValueError:
            raise CompileError(f"no population named {name_or_index!r} "
                               f"(have: {', '.join(self.names)})") from None

    def weights(self, l: int) -> np.ndarray:
        """View of W_l (n_l x n_{l+1})."""
        n0, n1 = self.sizes[l], self.sizes[l + 1]
        return self.wf[self.wf_off[l]:self.wf_off[l] + n0 * n1].reshape(n0, n1)

    def set_weights(self, l: int, w: np.ndarray) -> None:
        """Replace W_l in both stored orientations (used by training)."""
        n0, n1 = self.sizes[l], self.sizes[l + 1]
        self.wf[self.wf_off[l]:self.wf_off[l] + n0 * n1] = w.reshape(-1)
        if self.wb_off[l] >= 0:
            self.wb[self.wb_off[l]:self.wb_off[l] + n0 * n1] = w.T.reshape(-1)

    def biases(self, l: int) -> np.ndarray:
        return self.bias[self.off[l]:self.off[l + 1]]

    def to_netlist(self) -> Netlist:
        """The netlist with the weights and biases this network holds now (after training,
        say); float32 weights are widened exactly to float64."""
        return replace(self.netlist,
                       weights=[self.weights(l).astype(np.float64)
                                for l in range(self.n_layers - 1)],
                       biases=[None] + [self.biases(l).copy() for l in range(1, self.n_layers)])

    @property
    def binary(self) -> bool:
        """True if every population communicates with spikes."""
        return bool(np.all(self.lp[:, K.LP_ENC] != K.ENC_NONE))


def build(net: Netlist) -> CompiledNetwork:
    """Flatten a validated netlist into arrays."""
    sizes = np.array(net.sizes, dtype=np.int64)
    off = np.zeros(len(sizes) + 1, dtype=np.int64)
    off[1:] = np.cumsum(sizes)
    lp = np.zeros((len(sizes), K.LP_COUNT))
    for l, pop in enumerate(net.populations):
        n = pop.neuron
        lp[l, K.LP_ENC] = ENCODERS[n.encoder]
        lp[l, K.LP_PRED] = 1.0 if n.predictive else 0.0
        lp[l, K.LP_LAMK] = SCHEDULES[n.lam.kind]
        if n.lam.kind == "constant":
            lp[l, K.LP_LAMA], lp[l, K.LP_LAMB] = n.lam.get("value"), 0.0
        else:
            lp[l, K.LP_LAMA], lp[l, K.LP_LAMB] = n.lam.get("lam0"), n.lam.get("eta")
        lp[l, K.LP_DEC] = DECODERS[n.decoder]
        lp[l, K.LP_ANNK] = ANNEALERS[n.eps.kind]
        if n.eps.kind == "constant":
            lp[l, K.LP_ANNA], lp[l, K.LP_ANNB] = n.eps.get("eps0"), 0.0
        elif n.eps.kind == "scheduled":
            lp[l, K.LP_ANNA], lp[l, K.LP_ANNB] = n.eps.get("eps0"), n.eps.get("eta")
        else:
            lp[l, K.LP_ANNA], lp[l, K.LP_ANNB] = n.eps.get("nu_bar"), n.eps.get("reg")
    counts = sizes[:-1] * sizes[1:]
    w_off = np.zeros(len(counts), dtype=np.int64)
    w_off[1:] = np.cumsum(counts)[:-1]
    wf = np.empty(int(counts.sum()), dtype=np.float32)
    wb = np.empty(int(counts[1:].sum()), dtype=np.float32)
    wb_off = w_off - counts[0]
    wb_off[0] = -1
    bias = np.concatenate([p.bias for p in net.populations]).astype(np.float64)
    cn = CompiledNetwork(net, tuple(p.name for p in net.populations), off, lp, wf, w_off,
                         wb, wb_off, bias)
    for l, pr in enumerate(net.projections):
        cn.set_weights(l, pr.weights)
    return cn
