"""Slow, obvious reference of fixed-point arithmetic (docs/arithmetic.md) on a chain.

Everything a neuron sums is done with Python integers: weight mantissas ``m`` (round half to
even of ``w / 2**e``, saturated to ``+-(2**(bits-1) - 1)``), messages (a spike is 1, a
real-valued message ``k = round(q * 2**message_bits)``), the sum of the products in units of the
population's quantum, and its saturation at ``+-(2**(accumulator_bits-1) - 1)``.  Only then is
the sum scaled to a float, and the neuron (decoder, step size, state, encoder) runs as in
``reference.Network``.  Written from the document, not from the engine's code.
"""

from __future__ import annotations

import numpy as np

from reference import Network


def exponent(w, bits: int) -> int:
    """The smallest e with max|w| <= (2**(bits-1) - 1) * 2**e, by walking e upwards."""
    top = max((abs(float(v)) for v in np.ravel(w)), default=0.0)
    if top == 0.0:
        return 0
    mmax = 2 ** (bits - 1) - 1
    e = -1100
    while top > mmax * 2.0 ** e:
        e += 1
    return e


def mantissa(v: float, e: int, bits: int) -> int:
    mmax = 2 ** (bits - 1) - 1
    return max(-mmax, min(mmax, round(float(v) / 2.0 ** e)))


class FixedNetwork(Network):
    """``reference.Network`` with fixed-point delivery: ``bits`` per projection, one
    ``message_bits`` and ``accumulator_bits`` for the network; ``exponents`` per projection
    (default: the smallest that fits each projection's largest weight)."""

    def __init__(self, net, x, seed, bits, message_bits=8, accumulator_bits=32, exponents=None):
        super().__init__(net, x, seed)
        self.bits = list(bits)
        self.mb = message_bits
        self.acc = accumulator_bits
        self.e = exponents or [exponent(p.weights, b) for p, b in zip(net.projections, self.bits)]
        self.M = [[[mantissa(v, e, b) for v in row] for row in np.asarray(p.weights)]
                  for p, e, b in zip(net.projections, self.e, self.bits)]
        self.binary = [p.neuron.encoder != "none" for p in net.populations]
        # the weights the network computes with, for the float readers of self.W
        self.W = [np.array(M, dtype=np.float64) * 2.0 ** e for M, e in zip(self.M, self.e)]

    def message(self, l: int, qi: float) -> tuple[int, int]:
        """(integer message, its exponent) of a sender of layer l."""
        if self.binary[l]:
            return 1, 0
        return min(round(float(qi) * 2 ** self.mb), 2 ** self.mb - 1), -self.mb

    def drive(self, l: int) -> np.ndarray:
        """The summed input of layer l's neurons: exact integers, saturated, then scaled."""
        terms = []         # (sender layer, projection, transposed)
        terms.append((l - 1, l - 1, False))
        if l < self.L:
            terms.append((l + 1, l, True))
        qexp = min(self.e[p] + (0 if self.binary[src] else -self.mb) for src, p, _ in terms)
        n = len(self.s[l])
        total = [0] * n
        for src, p, tr in terms:
            shift = self.e[p] + (0 if self.binary[src] else -self.mb) - qexp
            for i, qi in enumerate(self.q[src]):
                if qi == 0.0:
                    continue
                k, _ = self.message(src, qi)
                for j in range(n):
                    m = self.M[p][j][i] if tr else self.M[p][i][j]
                    total[j] += (k * m) << shift
        amax = 2 ** (self.acc - 1) - 1
        return np.array([max(-amax, min(amax, v)) * 2.0 ** qexp for v in total])

    def send(self, l, q):
        """Real-valued messages on the grid k / 2**message_bits, k < 2**message_bits."""
        if self.binary[l]:
            return q
        return np.array([min(round(float(v) * 2 ** self.mb), 2 ** self.mb - 1) / 2 ** self.mb
                         for v in q])
