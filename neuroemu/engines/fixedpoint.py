"""Fixed-point arithmetic (``[hardware.arithmetic]``, docs/arithmetic.md): the plan of a network.

Under a fixed-point setting every weight of projection ``p`` is ``m * 2**e_p`` with an integer
mantissa ``|m| <= 2**(bits-1) - 1`` and one exponent per projection; a real-valued message is
``k / 2**message_bits`` with an integer ``0 <= k < 2**message_bits``; a binary message is 1.  Every term a neuron sums
in a step is then an integer multiple of its population's *quantum*: the smallest of
``2**e_p`` (binary senders) and ``2**(e_p - message_bits)`` (real-valued senders) over the
deliveries into it.  The plan checks, before anything runs, that the largest sum a neuron can
reach is below ``2**24`` quanta: every partial sum is then an integer below ``2**24`` quanta,
which float32 holds exactly, so the engine's float32 accumulator computes the exact integer sum
in any order of addition -- the result is the integer arithmetic's, bit for bit, whatever the
kernel (event-driven, dense, threaded).  The summed input then saturates at
``+-(2**(accumulator_bits-1) - 1)`` quanta.

This module decides the exponents, quantises weights, and gives each population its quantum and
saturation bound; the kernels read the bound and the message scale from the parameter table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..describe.arithmetic import Arithmetic, WeightFormat, parse_arithmetic
from ..errors import CompileError

EXACT_QUANTA = 1 << 24          # float32 holds every integer below this exactly


def exponent_for(w: np.ndarray, fmt: WeightFormat) -> int:
    """The smallest exponent ``e`` with ``max|w| <= max_mantissa * 2**e`` (0 for all-zero
    weights), or the format's explicit exponent."""
    if fmt.exponent is not None:
        return int(fmt.exponent)
    top = float(np.max(np.abs(w))) if np.size(w) else 0.0
    if top == 0.0:
        return 0
    e = math.ceil(math.log2(top / fmt.max_mantissa))
    while top > fmt.max_mantissa * 2.0 ** e:       # guard log2 rounding
        e += 1
    while e > -1074 and top <= fmt.max_mantissa * 2.0 ** (e - 1):
        e -= 1
    return e


def mantissas(w: np.ndarray, fmt: WeightFormat, e: int) -> np.ndarray:
    """Integer mantissas (int64) of ``w`` at exponent ``e``: round half to even, saturate."""
    m = np.rint(np.asarray(w, np.float64) / 2.0 ** e)
    return np.clip(m, -fmt.max_mantissa, fmt.max_mantissa).astype(np.int64)


def quantise(w: np.ndarray, fmt: WeightFormat, e: int | None = None) -> tuple[np.ndarray, int]:
    """``(m * 2**e, e)``: the weights on the format's grid (float64, exactly representable in
    float32) and the exponent used."""
    if e is None:
        e = exponent_for(w, fmt)
    return mantissas(w, fmt, e).astype(np.float64) * 2.0 ** e, e


@dataclass
class FixedPlan:
    """What a fixed-point network computes with (one entry per projection or population)."""

    arithmetic: Arithmetic
    formats: list            # WeightFormat or None (a pool: fixed weight) per projection
    exponents: np.ndarray    # int64 (projections,)
    quantum_exp: np.ndarray  # int64 (populations,): log2 of each population's quantum
    bound: np.ndarray        # float64 (populations,): largest reachable |sum| in quanta
    sat: np.ndarray          # float64 (populations,): saturation of the summed input (value)

    @property
    def message_scale(self) -> float:
        return float(2 ** self.arithmetic.message_bits)


def _max_message(binary: bool, arith: Arithmetic) -> int:
    """Largest |message| in message units: 1 for a spike, 2**message_bits - 1 for a real
    value (k / 2**message_bits, k = 0 .. 2**message_bits - 1: message_bits of payload)."""
    return 1 if binary else (1 << arith.message_bits) - 1


def plan(net, binary, weights=None) -> FixedPlan | None:
    """The fixed-point plan of a validated netlist (None if it computes in float).

    ``binary[r]``: population r sends spikes (else real-valued messages in [0, 1]);
    ``weights``: per projection, the weights to plan for (default: the netlist's).
    """
    labels = [pr.label for pr in net.projections]
    arith = parse_arithmetic(net.hardware, net.path, labels)
    if not arith.fixed:
        return None
    where = net.path or net.name
    names = [p.name for p in net.populations]
    for r, pop in enumerate(net.populations):
        if not binary[r] and getattr(pop.neuron, "predictive", False):
            raise CompileError(f"{where}: population {pop.name!r}: fixed-point messages lie in "
                               "[0, 1]; a real-valued sender cannot use predictive coding "
                               "(use a spiking encoder, or no [hardware.arithmetic])")
    if arith.fixed_state:
        _check_integer_neurons(net, where)
    P, R = len(net.projections), len(names)
    formats, exps = [], np.zeros(P, np.int64)
    for p, pr in enumerate(net.projections):
        kind = getattr(pr, "kind", "dense")
        w = pr.weights if weights is None else weights[p]
        if kind == "avgpool2d":
            kh, kw = pr.param("kernel")
            n = kh * kw
            if n & (n - 1):
                raise CompileError(f"{where}: projection {pr.label}: fixed-point arithmetic needs "
                                   f"pooling weights 1/(kh*kw) that are powers of two (got "
                                   f"1/{n})")
            formats.append(None)
            exps[p] = -int(math.log2(n))
            continue
        fmt = arith.weight_format(pr.label)
        formats.append(fmt)
        exps[p] = exponent_for(w, fmt)
    # each population's quantum and the largest sum it can reach
    qexp = np.zeros(R, np.int64)
    bound = np.zeros(R)
    for r in range(R):
        terms = []                          # (exponent of the term's quantum, max units)
        senders = []
        for p, pr in enumerate(net.projections):
            a, b = names.index(pr.pre), names.index(pr.post)
            back = getattr(pr, "symmetric", True) and net.populations[a].role != "input"
            for src, dst in ((a, b), (b, a) if back else (None, None)):
                if dst != r or src is None:
                    continue
                senders.append(src)
                msg = _max_message(bool(binary[src]), arith)
                qe = int(exps[p]) - (0 if binary[src] else arith.message_bits)
                mant = 1 if formats[p] is None else formats[p].max_mantissa
                terms.append((qe, _fan_in(pr, src == a, net.populations[src].size) * mant * msg))
        if not terms:
            continue
        qexp[r] = min(t[0] for t in terms)
        bound[r] = sum(float(units) * 2.0 ** (qe - qexp[r]) for qe, units in terms)
        if bound[r] >= EXACT_QUANTA:
            drop = math.ceil(math.log2(bound[r] / (EXACT_QUANTA - 1)))
            real = any(not binary[src] for src in senders)
            hint = (f"weight_bits <= {arith.weights.bits - drop}"
                    + (f" or message_bits <= {arith.message_bits - drop}" if real else ""))
            raise CompileError(
                f"{where}: hardware.arithmetic: the summed input of population {names[r]!r} "
                f"can reach {bound[r]:.4g} quanta of 2**{qexp[r]}, over the 2**24 that keep "
                f"every sum exact (try {hint})")
    amax = float((1 << (arith.accumulator_bits - 1)) - 1)
    sat = np.array([amax * 2.0 ** int(q) for q in qexp])
    if arith.fixed_state:
        for r in range(R):
            # |u| <= min(bound, amax) quanta; its count of 2**-F times a multiplier of B bits
            # (and a few for bias, target, rounding) must stay inside int64
            top = math.log2(max(min(bound[r], amax), 1.0)) + int(qexp[r])
            if top + arith.state_bits + arith.step_bits + 4 >= 62:
                raise CompileError(
                    f"{where}: hardware.arithmetic.state_bits: population {names[r]!r}: its "
                    f"summed input (up to 2**{top:.1f}) at state_bits = {arith.state_bits} and step_bits = "
                    f"{arith.step_bits} leaves int64 (use fewer state_bits or step_bits)")
    return FixedPlan(arith, formats, exps, qexp, bound, sat)


def _check_integer_neurons(net, where) -> None:
    """An integer neuron (``state_bits``) is the paper's neuron with constant or scheduled
    step sizes and a one-pole code: OSA divides per neuron every step, and the two-pole code
    and IF/LIF neurons have no integer form here."""
    for pop in net.populations:
        n = pop.neuron
        why = None
        if getattr(n, "model", "paper") != "paper":
            why = f"{n.model} neurons have no integer form (state_bits is for the paper's neuron)"
        elif pop.role != "input" and n.eps.kind == "osa":
            why = ("eps osa divides per neuron every step; an integer neuron takes a constant "
                   "or scheduled eps, e.g. eps = {kind = \"constant\", eps0 = 0.5} in its "
                   "neuron table")
        elif getattr(n, "lam2", None) is not None:
            why = "the two-pole code (lam2) has no integer form; use one pole"
        if why:
            raise CompileError(f"{where}: hardware.arithmetic.state_bits: population "
                               f"{pop.name!r}: {why} (or drop state_bits)")


def _fan_in(pr, forward: bool, n_src: int) -> int:
    """The largest number of senders whose terms one neuron of the receiving population sums
    in one delivery (a bound: every sender of the projection for dense ones)."""
    kind = getattr(pr, "kind", "dense")
    if kind == "dense":
        return n_src
    if kind == "one_to_one":
        return 1
    if kind == "sparse":
        rows, cols = np.asarray(pr.indices[0]), np.asarray(pr.indices[1])
        key = cols if forward else rows
        return int(np.bincount(key).max()) if len(key) else 0
    # conv2d / avgpool2d: a receiver sees at most kernel taps x channels of the other side
    kh, kw = pr.param("kernel")
    w = np.shape(pr.weights)
    c_other = (w[1] if forward else w[0]) if kind == "conv2d" else 1
    if kind == "avgpool2d":
        return kh * kw
    sy, sx = pr.param("stride")
    if forward:
        return c_other * kh * kw
    return c_other * math.ceil(kh / sy) * math.ceil(kw / sx)


def quantised_weights(net, fp: FixedPlan, weights=None) -> list:
    """Per projection, its weights on the plan's grid (float64); pools unchanged."""
    out = []
    for p, pr in enumerate(net.projections):
        w = pr.weights if weights is None else weights[p]
        if fp.formats[p] is None:
            out.append(np.asarray(w))
        else:
            out.append(quantise(w, fp.formats[p], int(fp.exponents[p]))[0])
    return out


def to_fixed(net, weight_bits: int, *, weight_exponent="auto", message_bits: int = 8,
             accumulator_bits: int = 32, state_bits: int | None = None,
             step_bits: int | None = None, label: str = "to_fixed()"):
    """The netlist ``net`` made to compute in fixed point: an ``[hardware.arithmetic]`` table
    with these settings (``state_bits``: integer neurons too, ``step_bits`` with it), and its
    weights replaced by their values on the grid (so the file says what the chip stores; quantising them again changes nothing).  Raises
    :class:`~neuroemu.errors.NetlistError` for settings out of range and
    :class:`~neuroemu.errors.CompileError` if a sum could leave float32's exact range, both
    naming ``label`` (the call or the command-line options) as where the values came from."""
    from ..describe import from_dict
    from ..describe.dicts import to_dict
    raw = to_dict(net)
    hardware = dict(raw.get("hardware") or {})
    hardware["arithmetic"] = {"weight_bits": weight_bits, "weight_exponent": weight_exponent,
                              "message_bits": message_bits,
                              "accumulator_bits": accumulator_bits}
    if state_bits is not None:
        hardware["arithmetic"]["state_bits"] = state_bits
    if step_bits is not None:       # alone, the loader refuses it (it needs state_bits)
        hardware["arithmetic"]["step_bits"] = step_bits
    raw["hardware"] = hardware
    staged = from_dict(raw, path=label)
    binary = [getattr(p.neuron, "model", "paper") != "paper" or p.neuron.encoder != "none"
              for p in staged.populations]
    fp = plan(staged, binary)
    weights = quantised_weights(staged, fp)
    return from_dict(to_dict(staged, weights), path=net.path)
