"""The asynchronous bus engine: circuit clusters on their own clocks, spikes as packets.

Time is an integer number of *quanta* (``hardware.quanta`` per nominal tick).  Every layer
is cut into *circuit clusters* (contiguous neuron ranges of at most
``hardware.cluster_size`` neurons; one per layer by default).  Cluster c ticks at

    T_c(k) = phase_c + k * period_c + jitter_c(k)        k = 1, 2, ...

(``period_c`` and ``phase_c`` drawn once from the run seed, the jitter per tick from the
sample's seed).  At its tick k a cluster integrates every packet that arrived strictly
before T_c(k), through its decoder, steps its states and encodes -- with the same numba
kernels as the lockstep engine (:mod:`neuroemu.engines.kernels`), its own step counter k driving
its schedules -- and hands its spikes to the network as one batch.  The network is a
shared bus (one packet per spike) or the energy model's 2-D mesh of cores (one packet per
spike and destination core, XY hops; cluster i on core i by default): a batch waits for a free channel (a ``simpy.Resource``:
FIFO arbitration, ``channels`` at a time), occupies it for its serialization time
(``ceil(packets * quanta / bandwidth)``) and reaches each receiver ``latency`` quanta per
hop later.  With unlimited bandwidth no channel is involved and the arrival time is known
at send time, so such runs cost no simpy events beyond the clocks.

Clusters with the same clock (no phase offset, drift or jitter) share one simpy process.
Samples are independent chips: each has its own simpy environment, kept between ``run()``
calls so packets in flight cross a phase switch.  A phase is a barrier: a cluster that has
done its ticks waits until every cluster has; a tick that the wait made late happens at
the barrier time and that cluster's later ticks shift with it.

With one shared clock, zero latency and unlimited bandwidth every packet arrives before
the receiver's next tick and after its current one, so the engine reproduces lockstep
spike for spike (tests/test_asyncbus.py); docs/engines.md explains the time model.
Graph networks (populations delivering into any others, projections of any kind, IF/LIF
neurons) run the same clocks and network with the tick of :mod:`.asyncgraph`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

import neuroemu.engines.kernels as K
from .asyncgraph import GraphTicks, cluster_info, receivers
from .compiled import CompiledNetwork
from .session import Phase, RunResult, SessionBase, check_run_args
from ..errors import EngineError, NetlistError, where

_JITTER_BLOCK = 1024
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)

# The counters beyond lockstep's (all int64, per sample; docs/engines.md explains them).
EXTRA_COUNTERS = ("packets", "hops", "received", "late", "early", "queue_delay", "bus_busy",
                  "elapsed")


# --------------------------------------------------------------------------- hardware

@dataclass(frozen=True)
class Hardware:
    """The async engine's settings (from the netlist's ``[hardware]`` table)."""

    quanta: int = 100               # quanta per nominal tick
    cluster_size: int = 0           # neurons per circuit cluster (0: one per layer)
    period: int = 100               # clock period, quanta
    drift: int = 0                  # each cluster's period drawn in period +- drift
    phase: int = 0                  # each cluster's phase offset drawn in [0, phase]
    jitter: int = 0                 # each tick moved by a draw in [-jitter, jitter]
    topology: str = "bus"           # bus | mesh
    latency: int = 0                # quanta per hop (the bus is one hop)
    bandwidth: float = math.inf     # packets per tick per channel
    channels: int = 1               # channels of the bus / ports per mesh router
    mesh: tuple[int, int] | None = None
    placement: tuple[tuple[int, int], ...] | None = None
    path: str | None = None

    @property
    def shared_clock(self) -> bool:
        return self.drift == 0 and self.phase == 0 and self.jitter == 0

    @property
    def ideal(self) -> bool:
        """One shared clock, zero latency, unlimited bandwidth: lockstep-equivalent."""
        return self.shared_clock and self.latency == 0 and math.isinf(self.bandwidth)

    def serialization(self, packets: int) -> int:
        return 0 if math.isinf(self.bandwidth) else math.ceil(packets * self.quanta / self.bandwidth)


_KEYS = {"clock": ("period", "drift", "phase", "jitter"),
         "bus": ("topology", "latency", "bandwidth", "channels"),
         "mesh": ("width", "height", "placement")}


def parse_hardware(table, path=None) -> Hardware:
    """Validate the engine's part of a ``[hardware]`` table (other keys are left alone)."""
    def fail(fld, rule, value):
        raise NetlistError(f"{where(path, 'hardware.' + fld)}: {rule} (got {value!r})")

    def integer(tab, key, fld, lo, default):
        v = tab.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            fail(fld, "must be an integer", v)
        if v < lo:
            fail(fld, f"must be >= {lo}", v)
        return int(v)

    def sub(key):
        tab = table.get(key, {})
        if not isinstance(tab, dict):
            fail(key, "must be a table", tab)
        for k in tab:
            if k not in _KEYS[key]:
                fail(f"{key}.{k}", f"unknown key (allowed: {', '.join(_KEYS[key])})", tab[k])
        return tab

    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise NetlistError(f"{where(path, 'hardware')}: must be a table (got {table!r})")
    quanta = integer(table, "quanta", "quanta", 1, 100)
    csize = integer(table, "cluster_size", "cluster_size", 0, 0)
    clock, bus, mesh_t = sub("clock"), sub("bus"), sub("mesh")
    period = integer(clock, "period", "clock.period", 1, quanta)
    drift = integer(clock, "drift", "clock.drift", 0, 0)
    if drift >= period:
        fail("clock.drift", f"must be < clock.period = {period}", drift)
    phase = integer(clock, "phase", "clock.phase", 0, 0)
    jitter = integer(clock, "jitter", "clock.jitter", 0, 0)
    if 2 * jitter >= period - drift:
        fail("clock.jitter", f"must be < (clock.period - clock.drift) / 2 = {(period - drift) / 2:g}"
             " so that ticks stay in order", jitter)
    topology = bus.get("topology", "bus")
    if topology not in ("bus", "mesh"):
        fail("bus.topology", "must be 'bus' or 'mesh'", topology)
    latency = integer(bus, "latency", "bus.latency", 0, 0)
    bw = bus.get("bandwidth", "unlimited")
    if bw == "unlimited":
        bw = math.inf
    elif isinstance(bw, bool) or not isinstance(bw, (int, float, np.integer, np.floating)):
        fail("bus.bandwidth", "must be a number of packets per tick or 'unlimited'", bw)
    elif not (bw > 0):
        fail("bus.bandwidth", "must be > 0 packets per tick (or 'unlimited')", bw)
    channels = integer(bus, "channels", "bus.channels", 1, 1)
    mesh = placement = None
    if topology == "mesh":
        if not mesh_t:
            fail("mesh", "required when bus.topology = 'mesh' (width, height)", mesh_t)
        mesh = (integer(mesh_t, "width", "mesh.width", 1, None),
                integer(mesh_t, "height", "mesh.height", 1, None))
        if "placement" in mesh_t:
            pl = mesh_t["placement"]
            if not isinstance(pl, list):
                fail("mesh.placement", "must be an array of [x, y] core coordinates", pl)
            out = []
            for i, xy in enumerate(pl):
                if (not isinstance(xy, list) or len(xy) != 2
                        or any(isinstance(c, bool) or not isinstance(c, int) for c in xy)):
                    fail(f"mesh.placement[{i}]", "must be [x, y] with integers", xy)
                if not (0 <= xy[0] < mesh[0] and 0 <= xy[1] < mesh[1]):
                    fail(f"mesh.placement[{i}]",
                         f"must lie inside the {mesh[0]}x{mesh[1]} mesh", xy)
                out.append((xy[0], xy[1]))
            placement = tuple(out)
    elif mesh_t:
        fail("mesh", "only used with bus.topology = 'mesh'", mesh_t)
    return Hardware(quanta, csize, period, drift, phase, jitter, topology, latency, float(bw),
                    channels, mesh, placement, None if path is None else str(path))


# --------------------------------------------------------------------------- layout

class Layout:
    """Clusters, their clocks, cores and destinations (the same for every sample)."""

    def __init__(self, net: CompiledNetwork, hw: Hardware, seed: int):
        off, L = net.off, net.n_layers - 1
        self.layer, self.lo, self.hi = [], [], []
        for l in range(L + 1):
            n = int(off[l + 1] - off[l])
            step = hw.cluster_size or n
            for a in range(0, n, step):
                self.layer.append(l)
                self.lo.append(int(off[l]) + a)
                self.hi.append(int(off[l]) + min(a + step, n))
        C = self.n = len(self.layer)
        self.cluster_of = np.repeat(np.arange(C), np.subtract(self.hi, self.lo))
        rng = np.random.default_rng([int(seed), 0x61737963])
        self.period = hw.period + rng.integers(-hw.drift, hw.drift + 1, C)
        self.phase = rng.integers(0, hw.phase + 1, C)
        self.period_l, self.phase_l = self.period.tolist(), self.phase.tolist()
        # cores: bus = everything on one bus (one port); mesh = placement
        if hw.topology == "mesh":
            w, h = hw.mesh
            if hw.placement is None:
                if C > w * h:
                    raise NetlistError(
                        f"{where(hw.path, 'hardware.mesh')}: the {w}x{h} mesh ({w * h} cores) is "
                        f"smaller than the placement ({C} clusters; cluster_size "
                        f"{hw.cluster_size or 'one per layer'}) (got width={w}, height={h})")
                cores = [(i % w, i // w) for i in range(C)]
            else:
                if len(hw.placement) != C:
                    raise NetlistError(
                        f"{where(hw.path, 'hardware.mesh.placement')}: must give a core for each "
                        f"of the {C} clusters (got {len(hw.placement)} entries)")
                cores = list(hw.placement)
            self.port = [x + y * w for x, y in cores]
        else:
            cores = [(0, 0)] * C
            self.port = [0] * C
        self.n_ports = max(self.port) + 1
        # destinations of cluster c: (receiver cluster, side, hops): the clusters of the
        # populations its own delivers into; side 0 = from below on a chain, on a graph the
        # sender's population
        recv = receivers(net)
        self.dest, self.packets_per_spike, self.hops_per_spike = [], [], []
        for c in range(C):
            l, out = self.layer[c], []
            for d in range(C):
                ld = self.layer[d]
                if ld in recv[l]:
                    dx = abs(cores[c][0] - cores[d][0]) + abs(cores[c][1] - cores[d][1])
                    hops = 1 if hw.topology == "bus" else dx
                    out.append((d, l if net.graph else 0 if ld == l + 1 else 1, hops))
            self.dest.append(out)
            if hw.topology == "bus":
                self.packets_per_spike.append(1 if out else 0)
                self.hops_per_spike.append(1 if out else 0)
            else:   # multicast: one packet per destination core (its own included), XY hops
                per_core = {self.port[d]: h for d, _, h in out}
                self.packets_per_spike.append(len(per_core))
                self.hops_per_spike.append(sum(per_core.values()))
        # clock groups: clusters ticking together share one simpy process
        self.groups = [list(range(C))] if hw.shared_clock else [[c] for c in range(C)]


# --------------------------------------------------------------------------- one sample

class _Chip:
    """One sample's emulation: a simpy environment, inboxes, clocks, row views, and its
    counters as Python integers (flushed into the session's arrays after each phase)."""

    def __init__(self, sess: "AsyncSession", b: int):
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
        J = self.sess.hw.jitter
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
                         s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev)
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


# --------------------------------------------------------------------------- session

class AsyncSession(SessionBase):
    """B samples of one network, each on its own emulated chip (see the module docstring).

    ``hardware`` overrides the netlist's ``[hardware]`` table (a dict of the same form).
    ``threads`` is accepted for interface compatibility; simpy runs in one thread.
    """

    name = "async"

    def __init__(self, net: CompiledNetwork, x, *, seed: int | None = None, sample_ids=None,
                 threads: int = 1, hardware: dict | None = None):
        super().__init__(net, seed, threads)
        table = net.netlist.hardware if hardware is None else hardware
        self.hw = parse_hardware(table, net.netlist.path)
        self.layout = Layout(net, self.hw, self.seed)
        L = net.n_layers - 1
        self._bin = [bool(net.lp[l, K.LP_ENC] != K.ENC_NONE) for l in range(L + 1)]
        self._osa = [bool(net.lp[l, K.LP_ANNK] == K.ANN_OSA) for l in range(L + 1)]
        off, lay = net.off, self.layout
        self._info = cluster_info(net, lay, self._bin, self._osa) if net.graph else []
        for c in range(0 if net.graph else lay.n):
            l = lay.layer[c]
            self._info.append((
                l, lay.lo[c], lay.hi[c], int(off[l]), l == L, int(off[L]), self._osa[l],
                float(net.lp[l, K.LP_ANNA]), self._bin[l - 1] if l > 0 else True,
                self._bin[l + 1] if 0 < l < L else True, net.wf, int(net.wf_off[max(l - 1, 0)]),
                net.wb, int(net.wb_off[l]) if l < L else 0, int(off[l + 1] - off[l])))
        self.reset(x, sample_ids)

    # ------------------------------------------------------------------ state
    def reset(self, x, sample_ids=None) -> None:
        """Clamp new inputs and zero every state, clock, statistic and packet in flight."""
        B, N, L1 = self._allocate(x, sample_ids)
        self.beta = 0.0
        self.c = {"spikes": np.zeros((B, L1), np.int64),
                  "syn_events": np.zeros((B, self.net.n_projections, 2), np.int64),
                  "updates": np.zeros((B, L1, 2), np.int64),
                  "packets": np.zeros((B, L1), np.int64), "hops": np.zeros(B, np.int64),
                  "received": np.zeros((B, L1), np.int64),
                  "late": np.zeros((B, L1), np.int64), "early": np.zeros((B, L1), np.int64),
                  "queue_delay": np.zeros(B, np.int64), "bus_busy": np.zeros(B, np.int64),
                  "elapsed": np.zeros(B, np.int64)}
        self.chips = [(_GraphChip if self.net.graph else _Chip)(self, b) for b in range(B)]
        self._rec = None

    @property
    def t(self) -> int:
        return int(self.chips[0].limit)

    def counters(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.c.items()}

    def bus_report(self, counters: dict | None = None) -> dict:
        """Utilisation, queueing delay and late packets from a counters dict (default: the
        totals so far).  Utilisation = channel occupation / (elapsed time x channels)."""
        c = self.counters() if counters is None else counters
        pk, rcv = int(c["packets"].sum()), int(c["received"].sum())
        cap = int(c["elapsed"].sum()) * self.hw.channels * \
            (self.layout.n_ports if self.hw.topology == "mesh" else 1)
        return {"packets": pk, "utilisation": float(c["bus_busy"].sum()) / cap if cap else 0.0,
                "mean_queue_delay_ticks": float(c["queue_delay"].sum()) / pk / self.hw.quanta
                if pk else 0.0,
                "late": int(c["late"].sum()), "early": int(c["early"].sum()),
                "late_fraction": int(c["late"].sum()) / rcv if rcv else 0.0,
                "early_fraction": int(c["early"].sum()) / rcv if rcv else 0.0}

    # ------------------------------------------------------------------ running
    def run(self, steps: int, *, beta: float = 0.0, target=None, name: str | None = None,
            record_spikes: bool = False, record_states: bool = False,
            record_extra: bool = False, every: int = 1) -> Phase:
        """Advance every cluster by ``steps`` ticks with nudge ``beta`` towards ``target``."""
        beta, y = check_run_args(steps, every, beta, target, self.net.n_out, self.batch)
        if y is not None:
            self.y[...] = y     # in place: the chips hold row views
        self.beta = beta
        B, N, C = self.batch, self.net.n_neurons, self.layout.n
        R = int(steps) // int(every)
        rq = np.zeros((R if record_spikes else 0, B, N), dtype=np.bool_)
        rs = np.zeros((R if record_states else 0, B, N))
        rx = np.zeros((R if record_extra else 0, B, 3, N))
        rt = np.zeros((R if record_spikes else 0, B, C), dtype=np.int64)
        before = self.counters()
        t0 = self.t
        self._rec = (t0, int(every), rq, rs, rx, rt) if R and (
            record_spikes or record_states or record_extra) else None
        if steps:
            for chip in self.chips:
                start = chip.env.now
                chip.advance(int(steps))
                chip.flush()
                self.c["elapsed"][chip.b] += chip.env.now - start
        self._rec = None
        self.check_finite(name or f"phase{len(self.phases)}")
        after = self.counters()
        phase = Phase(name or f"phase{len(self.phases)}", t0, int(steps), beta, int(every),
                      {k: after[k] - before[k] for k in after},
                      rq if record_spikes else None, rs if record_states else None,
                      rx if record_extra else None)
        # sub-tick timing of the records (see spike_times())
        phase.tick_times = rt if record_spikes else None
        phase.quanta = self.hw.quanta
        phase.clusters = np.array([self.layout.lo, self.layout.hi], dtype=np.int64).T
        phase.cluster_of = self.layout.cluster_of
        self.phases.append(phase)
        return phase

    def result(self, **metadata) -> RunResult:
        net = self.net
        meta = {"engine": self.name, "seed": self.seed, "batch": self.batch,
                "netlist": net.netlist.name, "hardware": _hw_dict(self.hw),
                "clusters": self.layout.n, "bus": self.bus_report(), **metadata}
        return RunResult(net.names, net.sizes, self.batch, list(self.phases), self.counters(),
                         {n: self.state(n) for n in net.names}, meta)


def _hw_dict(hw: Hardware) -> dict:
    d = {k: getattr(hw, k) for k in ("quanta", "cluster_size", "period", "drift", "phase",
                                     "jitter", "topology", "latency", "channels")}
    d["bandwidth"] = "unlimited" if math.isinf(hw.bandwidth) else hw.bandwidth
    if hw.mesh:
        d["mesh"] = list(hw.mesh)
    return d


def spike_times(phase: Phase) -> np.ndarray:
    """Time of every record of an async phase, in ticks (float64, shape (R, B, N)).

    ``phase.spikes[r, b, j]`` happened at ``spike_times(phase)[r, b, j]``, the time of the
    tick of neuron j's cluster: ``phase.tick_times[r, b, phase.cluster_of[j]] / phase.quanta``
    (a trace writer that keeps memory low can use that expression on the spikes it writes).
    """
    if getattr(phase, "tick_times", None) is None:
        raise EngineError(f"phase '{phase.name}': no sub-tick times (run the async engine "
                          "with record_spikes=True)")
    return phase.tick_times[:, :, phase.cluster_of] / phase.quanta
