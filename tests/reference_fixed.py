"""Slow, obvious reference of fixed-point arithmetic (docs/arithmetic.md) on a chain.

Everything a neuron sums is done with Python integers: weight mantissas ``m`` (round half to
even of ``w / 2**e``, saturated to ``+-(2**(bits-1) - 1)``), messages (a spike is 1, a
real-valued message ``k = round(q * 2**message_bits)``), the sum of the products in units of the
population's quantum, and its saturation at ``+-(2**(accumulator_bits-1) - 1)``.  Only then is
the sum scaled to a float, and the neuron (decoder, step size, state, encoder) runs as in
``reference.Network``.  Written from the document, not from the engine's code.
"""

from __future__ import annotations

import math

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


def shr(x: int, b: int) -> int:
    """x / 2**b rounded to the nearest integer, ties upwards (Python's >> floors)."""
    return (x + (1 << (b - 1))) >> b


class IntegerNeuronNetwork(FixedNetwork):
    """``FixedNetwork`` whose neurons are integer too (``state_bits`` F, ``step_bits`` B):
    the decoded input, drive and state of each neuron, its encoder's memory and residue are
    Python integers counting 2**-F; lam, eps, 2 beta and 1/lam are integers counting 2**-B;
    every product is brought back to 2**-F by ``shr``.  Constant or scheduled eps, one-pole
    codes (what docs/arithmetic.md allows).  Written from the document."""

    def __init__(self, net, x, seed, bits, message_bits=8, accumulator_bits=32,
                 state_bits=12, step_bits=12):
        super().__init__(net, x, seed, bits, message_bits, accumulator_bits)
        self.F, self.B = state_bits, step_bits
        pops = net.populations
        self.neuron = [p.neuron for p in pops]
        self.sk = [[0] * p.size for p in pops]
        self.vk = [[0] * p.size for p in pops]
        self.mk = [[0] * p.size for p in pops]      # predictive encoder memories
        self.pk = [[0] * p.size for p in pops]      # sigma-delta residues

    def fix(self, v: float) -> int:
        return round(float(v) * 2 ** self.F)

    def mult(self, v: float) -> int:
        return round(float(v) * 2 ** self.B)

    def step(self, beta=0.0, y=None):
        from reference import schedule, uniform
        self.t += 1
        t, L, F, B = self.t, self.L, self.F, self.B
        one = 1 << F
        new = [self.sk[0]]
        for l in range(1, L + 1):
            nr = self.neuron[l]
            u = [self.fix(v) for v in self.drive(l)]
            lam_q = self.mult(schedule(nr.lam.as_dict(), t))
            eps_q = self.mult(schedule(nr.eps.as_dict(), t))
            out = []
            for j, uk in enumerate(u):
                if nr.decoder == "predictive":
                    self.vk[l][j] += shr(lam_q * (uk - self.vk[l][j]), B)
                else:
                    self.vk[l][j] = uk
                sk = self.sk[l][j]
                ak = self.vk[l][j] + self.fix(self.b[l][j]) if 0 <= sk <= one else 0
                if l == L and y is not None:
                    ak += shr(self.mult(2.0 * beta) * (self.fix(y[j]) - sk), B)
                out.append(max(0, min(one, sk + shr(eps_q * (ak - sk), B))))
            new.append(out)
        self.sk = new
        self.s = [np.array(k, dtype=float) / 2 ** F for k in self.sk]
        for l in range(L + 1):
            nr = self.neuron[l]
            if l == 0:
                c = [self.fix(min(max(float(v), 0.0), 1.0)) for v in self.x]
            else:
                c = list(self.sk[l])
            if nr.predictive:
                r_q = round(2 ** B / schedule(nr.lam.as_dict(), t))
                q = []
                for j, ck in enumerate(c):
                    q.append(self.mk[l][j] + shr(r_q * (ck - self.mk[l][j]), B))
                    self.mk[l][j] = ck
            else:
                q = c
            msg = []
            for j, qk in enumerate(q):
                if nr.encoder == "sigma_delta":
                    p = self.pk[l][j] + qk
                    spike = 1 if p > one // 2 else 0
                    p -= spike << F
                    if nr.clamp is not None:
                        bound = math.floor((nr.clamp[0] + nr.clamp[1] / t) * 2 ** F)
                        p = max(-bound, min(bound, p))
                    self.pk[l][j] = p
                    msg.append(float(spike))
                elif nr.encoder == "stochastic":
                    gid = int(self.off[l]) + j
                    msg.append(1.0 if qk / 2 ** F > uniform(self.seed, gid, t) else 0.0)
                else:
                    msg.append(qk / 2 ** F)
            self.q[l] = self.send(l, np.array(msg))
            self.spikes[l] += int(np.count_nonzero(self.q[l]))
        return np.concatenate(self.q)
