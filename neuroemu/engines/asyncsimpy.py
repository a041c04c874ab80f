"""The bus engine's model in simpy: the reference the event loop is checked against.

This is the bus engine as it was first written (and shipped): one simpy environment per
sample, a simpy process per clock (clusters sharing a clock share one), a
``simpy.Resource`` per port for the channels, and Python inboxes of packets per receiving
cluster.  It is readable -- its processes and resources are the definition of what the
engine does -- and slow: about 30 microseconds of Python per cluster tick, so one circuit
per neuron runs at thousands of packets per second.  :class:`~.asyncbus.AsyncSession`
runs the same model as a numba event loop (:mod:`.eventloop`) and must give the same
spikes, states, counters and tick times bit for bit (tests/test_async_equivalence.py and
the recorded outputs of tests/data/async_golden.json).

Not in the engine registry: ``SimpySession(net, x, seed=..., hardware=...)`` has the bus
engine's session interface, for tests and for reading.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

import neuroemu.engines.kernels as K
from .asyncbus import AsyncSession
from .asyncgraph import GraphTicks, cluster_info

_JITTER_BLOCK = 1024
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)


# --------------------------------------------------------------------------- one sample

class _Chip:
    """One sample's emulation: a simpy environment, inboxes, clocks, row views, and its
    counters as Python integers (flushed into the session's arrays after each phase)."""

    def __init__(self, sess: "SimpySession", b: int):
        self.sess, self.b = sess, b
        hw, lay = sess.hw, sess.layout
        L1 = sess.net.n_layers
        self.env = simpy.Environment()
        self.inbox = [[] for _ in range(lay.n)]
        self.tick = [0] * lay.n
        self.shift = [0] * lay.n
        self.nu = [1.0] * lay.n
        self.limit = 0
        self.resume = self.env.event()
        self.done = None
        self.finished = 0
        self.seed = sess.seeds[b]             # np.uint64: the kernels' RNG key
        self._jit = {}
        self.ports = [] if math.isinf(hw.bandwidth) else \
            [simpy.Resource(self.env, capacity=hw.channels) for _ in range(lay.n_ports)]
        self.rows = tuple(arr[b] for arr in (sess.x, sess.y, sess.s, sess.v, sess.a, sess.eps,
                                             *sess.osa, sess.u, sess.phi, sess.xm, sess.q,
                                             sess.ev))
        self.poles = (sess.xm2[b], sess.v2[b])   # second-pole memories (two-pole code)
        # counters: per layer lists, per projection [up, down], scalars
        self.k_layer = {k: [0] * L1 for k in ("spikes", "upd", "enc", "packets", "received",
                                              "late", "early")}
        self.k_syn = [[0, 0] for _ in range(sess.net.n_projections)]
        self.k_scalar = {"hops": 0, "queue_delay": 0, "bus_busy": 0}
        for g in lay.groups:
            self.env.process(self._clock(g))

    def flush(self) -> None:
        c, b = self.sess.c, self.b
        kl = self.k_layer
        c["spikes"][b] += kl["spikes"]
        c["updates"][b, :, 0] += kl["upd"]
        c["updates"][b, :, 1] += kl["enc"]
        for k in ("packets", "received", "late", "early"):
            c[k][b] += kl[k]
        c["syn_events"][b] += self.k_syn
        for k, v in self.k_scalar.items():
            c[k][b] += v
        for v in kl.values():
            v[:] = [0] * len(v)
        for v in self.k_syn:
            v[0] = v[1] = 0
        for k in self.k_scalar:
            self.k_scalar[k] = 0

    def jitter(self, c: int, k: int) -> int:
        J = int(self.sess.layout.jitter[c])
        if J == 0:
            return 0
        blk = (k - 1) // _JITTER_BLOCK
        arr = self._jit.get((c, blk))
        if arr is None:
            rng = np.random.default_rng([int(self.seed), c, blk])
            arr = self._jit[(c, blk)] = rng.integers(-J, J + 1, _JITTER_BLOCK).tolist()
            if len(self._jit) > 4 * self.sess.layout.n:
                self._jit.pop(next(iter(self._jit)))
        return arr[(k - 1) % _JITTER_BLOCK]

    def tick_time(self, c: int, k: int) -> int:
        lay = self.sess.layout
        return lay.phase_l[c] + k * lay.period_l[c] + self.jitter(c, k) + self.shift[c]

    def _clock(self, group):
        env, c0, sess = self.env, group[0], self.sess
        while True:
            k = self.tick[c0] + 1
            if k > self.limit:
                self.finished += 1
                if self.finished == len(sess.layout.groups):
                    self.done.succeed()
                yield self.resume
                continue
            T = self.tick_time(c0, k)
            if T < env.now:             # held back by a phase barrier: the clock shifts
                for c in group:
                    self.shift[c] += env.now - T
                T = env.now
            elif T > env.now:
                yield env.timeout(T - env.now)
            for c in group:
                self._tick(c, k, T)
                self.tick[c] = k

    def advance(self, steps: int) -> None:
        self.limit += steps
        self.finished = 0
        self.done = self.env.event()
        old, self.resume = self.resume, self.env.event()
        old.succeed()
        self.env.run(until=self.done)

    # ---------------------------------------------------------------- one tick
    def _tick(self, c: int, k: int, T: int) -> None:
        """Tick k of cluster c at time T: integrate, update, encode, send."""
        sess = self.sess
        (l, lo, hi, l_off, is_out, out_lo, osa, nu_bar, bin_a, bin_b, w_a, wlo_a, w_b, wlo_b,
         row_len) = sess._info[c]
        x, y, s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev = self.rows
        net, kl = sess.net, self.k_layer
        ia = ib = _EMPTY_I
        va = vb = _EMPTY_F
        na = nb = 0
        nu = 0.0
        if l > 0:
            box = self.inbox[c]
            if box:
                ready = [e for e in box if e[3] < T]
                self.inbox[c] = [e for e in box if e[3] >= T] if len(ready) < len(box) else []
                if len(ready) > 1:
                    ready.sort()        # (side, send tick, sender offset): lockstep's order
                late = early = rcv = 0
                A, B = [], []
                for e in ready:
                    (B if e[0] else A).append(e)
                    m = len(e[4])
                    rcv += m
                    if k > e[1] + 1:
                        late += m
                    elif k <= e[1]:
                        early += m
                kl["received"][l] += rcv
                if late:
                    kl["late"][l] += late
                if early:
                    kl["early"][l] += early
                if A:
                    ia = A[0][4] if len(A) == 1 else np.concatenate([e[4] for e in A])
                    na = len(ia)
                    if not bin_a:
                        va = A[0][5] if len(A) == 1 else np.concatenate([e[5] for e in A])
                    self.k_syn[l - 1][0] += na * (hi - lo)
                if B:
                    ib = B[0][4] if len(B) == 1 else np.concatenate([e[4] for e in B])
                    nb = len(ib)
                    if not bin_b:
                        vb = B[0][5] if len(B) == 1 else np.concatenate([e[5] for e in B])
                    self.k_syn[l][1] += nb * (hi - lo)
            if osa:
                nu = self.nu[c] = self.nu[c] / (1.0 + self.nu[c] - nu_bar)
            kl["upd"][l] += hi - lo
        n = K.async_tick(l, lo, hi, k, nu, sess.beta, is_out, out_lo, net.lp, self.seed,
                         net.bias, y, x, w_a, wlo_a, w_b, wlo_b, row_len, lo - l_off,
                         ia, va, na, bin_a, ib, vb, nb, bin_b,
                         s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev, *self.poles)
        self._emit(c, l, k, T, lo, hi, l_off, n)

    def _emit(self, c, l, k, T, lo, hi, l_off, n) -> None:
        """The end of tick k of cluster c (neurons [lo, hi) of population l, whose first
        neuron is column l_off): count its n messages and encoder updates, record, send."""
        sess, kl = self.sess, self.k_layer
        q, ev = self.rows[-2], self.rows[-1]
        kl["spikes"][l] += n
        kl["enc"][l] += hi - lo
        if sess._rec is not None:
            self._record(c, k, T, lo, hi)
        if n and sess.layout.dest[c]:
            rel = ev[lo:lo + n]                          # senders, relative to the cluster
            idx = rel.astype(np.int64) + (lo - l_off)    # a copy: relative to the population
            val = None if sess._bin[l] else q[lo + rel]
            self._send(c, l, k, T, n, lo - l_off, idx, val)

    def _record(self, c, k, T, lo, hi) -> None:
        """Record neurons [lo, hi) (cluster c) after their tick k at time T, if k is due."""
        rec, (x, y, s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev) = self.sess._rec, self.rows
        kk = k - rec[0]
        if kk % rec[1] == 0:
            r = kk // rec[1] - 1
            if r < rec[2].shape[0]:
                rec[2][r, self.b, lo:hi] = q[lo:hi] != 0.0
                rec[5][r, self.b, c] = T
            if r < rec[3].shape[0]:
                rec[3][r, self.b, lo:hi] = s[lo:hi]
            if r < rec[4].shape[0]:
                rec[4][r, self.b, 0, lo:hi] = v[lo:hi]
                rec[4][r, self.b, 1, lo:hi] = eps[lo:hi]
                rec[4][r, self.b, 2, lo:hi] = phi[lo:hi]

    def _send(self, c, l, k, T, n, src_lo, idx, val) -> None:
        lay, hw, kc = self.sess.layout, self.sess.hw, self.k_scalar
        npk = n * lay.packets_per_spike[c]
        self.k_layer["packets"][l] += npk
        kc["hops"] += n * lay.hops_per_spike[c]
        lat, inbox = hw.latency, self.inbox
        if not self.ports or npk == 0:       # unlimited bandwidth: no queue
            for d, side, hops in lay.dest[c]:
                inbox[d].append((side, k, src_lo, T + lat * hops, idx, val))
            return
        env = self.env
        port = self.ports[lay.port[c]]
        req = port.request()
        ser = hw.serialization(npk)

        def granted(_):
            kc["queue_delay"] += (env.now - T) * npk
            kc["bus_busy"] += ser
            env.timeout(ser).callbacks.append(finished)

        def finished(_):
            port.release(req)
            now = env.now
            for d, side, hops in lay.dest[c]:
                inbox[d].append((side, k, src_lo, now + lat * hops, idx, val))

        req.callbacks.append(granted)


class _GraphChip(GraphTicks, _Chip):
    """One sample of a graph network (its tick: :class:`~.asyncgraph.GraphTicks`)."""


class _GraphChip(GraphTicks, _Chip):
    """One sample of a graph network (its tick: :class:`~.asyncgraph.GraphTicks`)."""


class SimpySession(AsyncSession):
    """The bus engine's session with every sample on a simpy chip (see the module
    docstring); the same settings, phases, counters and results as AsyncSession."""

    name = "async"

    def _new_chips(self, B: int) -> None:
        net, lay = self.net, self.layout
        if not hasattr(self, "_info"):
            L = net.n_layers - 1
            off = net.off
            self._info = cluster_info(net, lay, self._bin, self._osa) if net.graph else []
            for c in range(0 if net.graph else lay.n):
                l = lay.layer[c]
                self._info.append((
                    l, lay.lo[c], lay.hi[c], int(off[l]), l == L, int(off[L]), self._osa[l],
                    float(net.lp[l, K.LP_ANNA]), self._bin[l - 1] if l > 0 else True,
                    self._bin[l + 1] if 0 < l < L else True, net.wf,
                    int(net.wf_off[max(l - 1, 0)]), net.wb, int(net.wb_off[l]) if l < L else 0,
                    int(off[l + 1] - off[l])))
        self.chips = [(_GraphChip if net.graph else _Chip)(self, b) for b in range(B)]

    def _advance(self, steps: int, t0: int, every: int) -> None:
        for chip in self.chips:
            start = chip.env.now
            chip.advance(steps)
            chip.flush()
            self.c["elapsed"][chip.b] += chip.env.now - start

    def ticks(self) -> np.ndarray:
        return np.array([chip.tick for chip in self.chips], dtype=np.int64)

    def in_flight(self) -> np.ndarray:
        return np.array([sum(len(e[4]) for box in chip.inbox for e in box)
                         for chip in self.chips], dtype=np.int64)
