"""The engine contract: sessions that hold a batch of network states and advance them.

A *session* holds B samples of one compiled network side by side.  ``reset(x)`` clamps
the inputs and zeroes every state, clock, residue, decoder memory and OSA statistic (the
model resets per sample); ``run(steps, beta, target)`` continues from where the last call
stopped -- so a free phase followed by a nudged phase is two calls, and the clocks run
straight through the switch (docs/model.md section 3).

The registry of engines, :func:`neuroemu.engines.session` and the one-call
:func:`neuroemu.engines.run` live in the package's ``__init__``; this module is what every
engine builds on and imports nothing of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..describe.neurons import MAX_VALUE
from ..errors import EngineError
from .compiled import CompiledNetwork
import neuroemu.engines.kernels as K

# At most this many (sample, neuron) cells of state per session: a session holds about 15
# float64 arrays of B x N, so this is ~6 GB; a larger batch is refused before allocating.
MAX_STATE_CELLS = 50_000_000

COUNTER_DOC = {
    "spikes": "(B, populations) non-zero messages sent (spikes, or real values for encoder "
              "'none')",
    "syn_events": "(B, projections, 2) synaptic events (weights touched), [...,0] forwards "
                  "(pre -> post; on a chain: upwards), [...,1] backwards",
    "updates": "(B, populations, 2) neuron state updates [...,0] and encoder updates [...,1]",
}


@dataclass
class Phase:
    """What one ``run()`` call did.  Recorded arrays are indexed [record, sample, neuron]."""

    name: str
    t_start: int            # clock before the phase (the phase ran steps t_start+1 ...)
    steps: int
    beta: float
    every: int
    counters: dict[str, np.ndarray]           # increments during this phase
    spikes: np.ndarray | None = None          # bool (R, B, N)
    states: np.ndarray | None = None          # float64 (R, B, N)
    extra: np.ndarray | None = None           # float64 (R, B, 3, N): v, eps, phi


@dataclass
class RunResult:
    """Everything an emulation produced: phases, totals, final states and provenance."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    batch: int
    phases: list[Phase]
    counters: dict[str, np.ndarray]
    final_states: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def spikes(self, pop: str | None = None, phase=None) -> np.ndarray | None:
        """Recorded spikes, bool (records, B, n): of every phase that recorded them,
        concatenated along time, or of one ``phase`` (its name or index); all N neurons, or
        the n of population ``pop``.  None if nothing was recorded (``record_spikes=True``)."""
        return self._recorded("spikes", pop, phase)

    def states(self, pop: str | None = None, phase=None) -> np.ndarray | None:
        """Recorded states s, float64 (records, B, n), like :meth:`spikes`
        (``record_states=True``); the final states are in ``final_states``."""
        return self._recorded("states", pop, phase)

    def phase(self, key) -> Phase:
        """A phase by name (the first of that name: ``"free"``, ``"nudged"``) or index."""
        if isinstance(key, (int, np.integer)):
            return self.phases[key]
        for p in self.phases:
            if p.name == key:
                return p
        raise EngineError(f"phase: no phase named {key!r} (have: "
                          f"{', '.join(p.name for p in self.phases) or 'none'})")

    def _recorded(self, what: str, pop, phase):
        cols = slice(None) if pop is None else self.layer_slice(pop)
        phases = self.phases if phase is None else [self.phase(phase)]
        parts = [getattr(p, what) for p in phases if getattr(p, what) is not None]
        if not parts:
            return None
        return (np.concatenate(parts) if len(parts) > 1 else parts[0])[..., cols]

    def layer_slice(self, name: str) -> slice:
        if name not in self.names:
            raise EngineError(f"population: no population named {name!r} "
                              f"(have: {', '.join(self.names)})")
        i = self.names.index(name)
        lo = sum(self.sizes[:i])
        return slice(lo, lo + self.sizes[i])

    def __repr__(self) -> str:
        rec = [w for w, on in (("spikes", any(p.spikes is not None for p in self.phases)),
                               ("states", any(p.states is not None for p in self.phases))) if on]
        phases = ", ".join(f"{p.name} {p.steps}" for p in self.phases)
        return (f"<RunResult {self.metadata.get('netlist', '')} "
                f"({'-'.join(map(str, self.sizes))}), batch {self.batch}, steps "
                f"{phases or 'none'}; recorded {', '.join(rec) or 'nothing'}>")


def sample_seeds(seed: int, sample_ids: np.ndarray) -> np.ndarray:
    """Per-sample RNG keys (stochastic encoders): depend on the run seed and the sample id
    only, so results do not depend on how samples are batched."""
    ss = np.random.SeedSequence(int(seed))
    base = np.uint64(ss.generate_state(1, dtype=np.uint64)[0])
    with np.errstate(over="ignore"):
        return (np.asarray(sample_ids, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ base


def check_input(x: Any, n: int, name: str = "inputs") -> np.ndarray:
    """Validate an input batch: shape (B, n) or (n,), finite numbers of magnitude at most
    MAX_VALUE (1e20: larger ones overflow the sums and means computed from them)."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n:
        raise EngineError(f"{name}: must have shape (batch, {n}) (got shape {np.shape(x)})")
    if arr.dtype.kind not in "iuf" or arr.shape[0] == 0:
        raise EngineError(f"{name}: must be a non-empty array of numbers (got dtype {arr.dtype}, "
                          f"shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(arr) <= MAX_VALUE)
    if bad.any():
        b, j = np.argwhere(bad)[0]
        rule = "must be finite" if not math.isfinite(arr[b, j]) else \
            f"must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}]"
        raise EngineError(f"{name}[{b}, {j}]: {rule} (got {arr[b, j]})")
    return arr


def check_run_args(steps, every, beta, target, n_out: int, batch: int):
    """Validate the arguments of a session's ``run()``; returns (beta, target or None)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise EngineError(f"steps: must be a non-negative integer (got {steps!r})")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise EngineError(f"every: must be a positive integer (got {every!r})")
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise EngineError(f"beta: must be a number (got {beta!r})") from None
    if not math.isfinite(beta):
        raise EngineError(f"beta: must be finite (got {beta})")
    if abs(beta) > MAX_VALUE:
        raise EngineError(f"beta: must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}] (got {beta})")
    if target is None:
        if beta != 0.0:
            raise EngineError(f"target: required when beta is non-zero (beta = {beta})")
        return beta, None
    y = check_input(target, n_out, "target")
    if y.shape[0] != batch:
        raise EngineError(f"target: must have {batch} rows like the inputs (got {y.shape[0]})")
    return beta, y


class SessionBase:
    """What every engine's session holds: the network, the clamped batch and the per-neuron
    state arrays the kernels work on (all (B, N), float64 unless noted)."""

    name = "base"

    def __init__(self, net: CompiledNetwork, seed: int | None, threads: int):
        self.net = net
        self.seed = int(net.netlist.seed if seed is None else seed)
        self.threads = int(threads)
        if self.threads < 1:
            raise EngineError(f"threads: must be >= 1 (got {threads})")
        self.phases: list[Phase] = []

    def _allocate(self, x, sample_ids) -> tuple[int, int, int]:
        """Clamp inputs ``x`` and allocate zeroed state; returns (B, N, layers)."""
        net = self.net
        shape = np.shape(x)
        if len(shape) == 2 and shape[0] * net.n_neurons > MAX_STATE_CELLS:
            raise EngineError(f"inputs: a batch of {shape[0]} samples of {net.n_neurons} neurons "
                              f"needs {shape[0] * net.n_neurons} state cells, more than the "
                              f"limit of {MAX_STATE_CELLS} (use a smaller batch)")
        self.x = check_input(x, net.n_in)
        B, N, L1 = self.x.shape[0], net.n_neurons, net.n_layers
        self.batch = B
        ids = np.arange(B) if sample_ids is None else np.asarray(sample_ids)
        if ids.shape != (B,):
            raise EngineError(f"sample_ids: must have shape ({B},) (got {ids.shape})")
        self.seeds = sample_seeds(self.seed, ids)
        self.phases = []
        self.y = np.zeros((B, net.n_out))   # (run() may point it at the caller's target)
        if getattr(self, "s", None) is not None and self.s.shape == (B, N):
            # a reset with the same batch size: zero the buffers in place (allocating
            # ~13 fresh (B, N) arrays per minibatch costs page faults, not just time).
            # Event lists are only read up to their lengths, which the sessions reset.
            for arr in (self.phi, self.xm, self.q, self.s, self.v, self.a, self.eps,
                        *self.osa, self.u, self.xm2, self.v2):
                arr.fill(0)
        else:
            z = lambda: np.zeros((B, N))  # noqa: E731
            self.s, self.v, self.a, self.phi, self.xm, self.q = z(), z(), z(), z(), z(), z()
            self.eps = z()
            self.xm2, self.v2 = z(), z()     # second-pole memories: encoder w, decoder pole
            self.osa = [z(), z(), z(), z()]                 # theta, beta, delta, lamb
            self.u = np.zeros((B, N), dtype=np.float32)     # delivered input
            self.ev = np.zeros((B, N), dtype=np.int32)      # per-population event lists
        # integrate-and-fire membranes start at v0
        for l in range(L1):
            if net.lp[l, K.LP_MODEL] != K.MODEL_PAPER and net.lp[l, K.LP_V0] != 0.0:
                self.v[:, net.off[l]:net.off[l + 1]] = net.lp[l, K.LP_V0]
        return B, N, L1

    def check_finite(self, phase: str) -> None:
        """After a run: every state, decoded input, drive, step size, OSA statistic, encoder
        memory and delivered input must be finite; else an EngineError naming the population,
        the first bad neuron and sample, and the variable.  (A state s is clipped to [0, 1],
        so an overflow shows in v, a or the statistics first.)"""
        names = ("s", "v", "a", "eps", "phi", "xm", "u")
        arrays = (self.s, self.v, self.a, self.eps, self.phi, self.xm, self.u, *self.osa,
                  self.xm2, self.v2)
        names += ("osa theta", "osa beta", "osa delta", "osa lambda", "xm2", "v2")
        first = None
        for what, arr in zip(names, arrays):
            if np.isfinite(arr).all():
                continue
            bad = ~np.isfinite(arr)
            cols = np.flatnonzero(bad.any(axis=0))
            j = int(cols[0])
            b = int(np.flatnonzero(bad[:, j])[0])
            if first is None or (j, b) < first[:2]:
                first = (j, b, what, float(arr[b, j]))
        if first is None:
            return
        j, b, what, value = first
        off = self.net.off
        layer = int(np.searchsorted(off, j, side="right")) - 1
        raise EngineError(
            f"population {self.net.names[layer]!r}: neuron {j - int(off[layer])}, sample {b}: "
            f"{what} is not finite after phase {phase!r} at step {self.t} (got {value}); the "
            f"network overflows float32/float64 -- smaller weights, biases, inputs or beta, or a "
            f"larger lam (docs/netlist-format.md, Bounds)")

    def state(self, pop) -> np.ndarray:
        """Copy of the states s of a population (B, n); an input population returns its
        clamped values (its columns of x); an IF/LIF population its firing rates."""
        net = self.net
        l = net.layer(pop)
        if net.xoff[l] >= 0:
            return self.x[:, net.xoff[l]:net.xoff[l] + net.sizes[l]].copy()
        return self.s[:, net.off[l]:net.off[l + 1]].copy()
