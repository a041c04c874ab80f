"""The asynchronous bus engine: circuit clusters on their own clocks, spikes as packets.

Time is an integer number of *quanta* (``hardware.quanta`` per nominal tick).  Every
population is cut into *circuit clusters* (contiguous neuron ranges of at most
``hardware.cluster_size`` neurons; one per population by default; ``cluster_size = 1``
makes every neuron its own circuit).  Cluster c ticks at

    T_c(k) = phase_c + k * period_c + jitter_c(k)        k = 1, 2, ...

(``period_c`` and ``phase_c`` drawn once from the run seed, or given per circuit by a clock
file (:mod:`.asyncclock`); the jitter per tick from the sample's seed).  At its tick k a
cluster integrates every packet that arrived strictly before T_c(k), through its decoder,
steps its states and encodes -- with the same numba kernels as the lockstep engine
(:mod:`neuroemu.engines.kernels`), its own step counter k driving its schedules -- and
hands its spikes to the network as one batch.  The network is a shared bus (one packet per
spike) or the energy model's 2-D mesh of cores (one packet per spike and destination core,
XY hops; cluster i on core i by default): a batch waits for a free channel (FIFO
arbitration, ``channels`` at a time, one set per port), occupies it for its serialization
time (``ceil(packets * quanta / bandwidth)``) and reaches each receiver ``latency`` quanta
per hop later.

A phase is a barrier: a cluster that has done its ticks waits until every cluster has; a
tick that the wait made late happens at the barrier time and that cluster's later ticks
shift with it.  Packets in flight cross the switch.  Samples are independent chips.

The discrete-event model is written with simpy in :mod:`.asyncsimpy` (the reference: its
processes and resources say what happens); this session runs the same model as a numba
event loop (:mod:`.eventloop`), event for event in simpy's order, at a cost per tick and per
packet batch.  With one shared clock, zero latency and unlimited bandwidth it reproduces
lockstep spike for spike; docs/engines.md explains the time model.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

import neuroemu.engines.kernels as K
from .asyncclock import MAX_JITTER, ClockTable, read_clock_table
from .asyncgraph import receivers
from .compiled import CompiledNetwork
from .session import Phase, RunResult, SessionBase, check_run_args
from ..errors import EngineError, NetlistError, where

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
    clocks: ClockTable | None = field(default=None, compare=False)   # clock.file

    @property
    def shared_clock(self) -> bool:
        return self.drift == 0 and self.phase == 0 and self.jitter == 0 and self.clocks is None

    @property
    def ideal(self) -> bool:
        """One shared clock, zero latency, unlimited bandwidth: lockstep-equivalent."""
        return self.shared_clock and self.latency == 0 and math.isinf(self.bandwidth)

    def serialization(self, packets: int) -> int:
        return 0 if math.isinf(self.bandwidth) else math.ceil(packets * self.quanta / self.bandwidth)


_KEYS = {"clock": ("period", "drift", "phase", "jitter", "file", "sample"),
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
    clocks = None
    if "file" in clock:
        for key in ("period", "drift", "phase"):
            if key in clock:
                fail(f"clock.{key}", "not used with clock.file (the file gives every circuit's "
                     "period and phase)", clock[key])
    elif "sample" in clock:
        fail("clock.sample", "only used with clock.file", clock["sample"])
    period = integer(clock, "period", "clock.period", 1, quanta)
    drift = integer(clock, "drift", "clock.drift", 0, 0)
    if drift >= period:
        fail("clock.drift", f"must be < clock.period = {period}", drift)
    phase = integer(clock, "phase", "clock.phase", 0, 0)
    jitter = integer(clock, "jitter", "clock.jitter", 0, 0)
    if jitter > MAX_JITTER:
        fail("clock.jitter", f"must be <= {MAX_JITTER}", jitter)
    if "file" in clock:
        sample = clock.get("sample", False)
        if not isinstance(sample, bool):
            fail("clock.sample", "must be true or false", sample)
        clocks = read_clock_table(clock["file"], sample,
                                  jitter if "jitter" in clock else None, path)
        period = quanta
    elif 2 * jitter >= period - drift:
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
                    channels, mesh, placement, None if path is None else str(path), clocks)


# --------------------------------------------------------------------------- layout

class Layout:
    """Clusters, their clocks, cores and destinations (the same for every sample)."""

    def __init__(self, net: CompiledNetwork, hw: Hardware, seed: int):
        off, P = net.off, net.n_layers
        self.layer, self.lo, self.hi = [], [], []
        for l in range(P):
            n = int(off[l + 1] - off[l])
            step = hw.cluster_size or n
            for a in range(0, n, step):
                self.layer.append(l)
                self.lo.append(int(off[l]) + a)
                self.hi.append(int(off[l]) + min(a + step, n))
        C = self.n = len(self.layer)
        self.cluster_of = np.repeat(np.arange(C), np.subtract(self.hi, self.lo))
        rng = np.random.default_rng([int(seed), 0x61737963])
        if hw.clocks is None:
            self.period = hw.period + rng.integers(-hw.drift, hw.drift + 1, C)
            self.phase = rng.integers(0, hw.phase + 1, C)
            self.jitter = np.full(C, hw.jitter, dtype=np.int64)
        else:
            self.period, self.phase, self.jitter = hw.clocks.for_clusters(C, seed)
        self.period_l, self.phase_l = self.period.tolist(), self.phase.tolist()
        # cores: bus = everything on one bus (one port); mesh = placement
        self.topology, self.width = hw.topology, 1
        if hw.topology == "mesh":
            w, h = hw.mesh
            self.width = w
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
        self.cores = np.array(cores, dtype=np.int64).reshape(C, 2)
        self.n_ports = max(self.port) + 1
        # what each cluster's messages reach: the clusters of the populations its own
        # delivers into (on a chain: the layer above, and below unless it is the input)
        self.graph = bool(net.graph)
        self.recv = receivers(net)
        layer, port = np.array(self.layer, dtype=np.int64), np.array(self.port, dtype=np.int64)
        self.members = [np.flatnonzero(layer == l) for l in range(P)]
        self.n_dest = np.zeros(C, dtype=np.int64)
        self.packets_per_spike = np.zeros(C, dtype=np.int64)
        self.hops_per_spike = np.zeros(C, dtype=np.int64)
        for l in range(P):
            senders = self.members[l]
            targets = np.concatenate([self.members[r] for r in sorted(self.recv[l])] or
                                     [np.zeros(0, np.int64)])
            if not targets.size:
                continue
            self.n_dest[senders] = targets.size
            if hw.topology == "bus":
                self.packets_per_spike[senders] = self.hops_per_spike[senders] = 1
            else:   # multicast: one packet per destination core (its own included), XY hops
                first = np.unique(port[targets], return_index=True)[1]
                q = self.cores[targets[first]]
                self.packets_per_spike[senders] = len(q)
                d = np.abs(self.cores[senders, None, :] - q[None, :, :]).sum(axis=2)
                self.hops_per_spike[senders] = d.sum(axis=1)
        # clock groups: clusters ticking together share one process
        self.groups = [list(range(C))] if hw.shared_clock else [[c] for c in range(C)]

    @cached_property
    def dest(self) -> list[list[tuple[int, int, int]]]:
        """Per cluster, its destinations (receiver cluster, side, hops) in cluster order;
        side: on a graph the sender's population, on a chain 0 from below, 1 from above
        (what the simpy engine files packets under)."""
        out = []
        for c in range(self.n):
            l, row = self.layer[c], []
            for r in sorted(self.recv[l]):
                for d in self.members[r]:
                    hops = 1 if self.topology == "bus" else \
                        int(np.abs(self.cores[c] - self.cores[d]).sum())
                    row.append((int(d), l if self.graph else 0 if r == l + 1 else 1, hops))
            row.sort()
            out.append(row)
        return out


# --------------------------------------------------------------------------- session

class AsyncSession(SessionBase):
    """B samples of one network, each on its own emulated chip (see the module docstring).

    ``hardware`` overrides the netlist's ``[hardware]`` table (a dict of the same form).
    ``threads`` > 1 runs that many chips (samples) at once.
    """

    name = "async"

    def __init__(self, net: CompiledNetwork, x, *, seed: int | None = None, sample_ids=None,
                 threads: int = 1, hardware: dict | None = None):
        super().__init__(net, seed, threads)
        table = net.netlist.hardware if hardware is None else hardware
        self.hw = parse_hardware(table, net.netlist.path)
        self.layout = Layout(net, self.hw, self.seed)
        self._bin = [bool(net.lp[l, K.LP_ENC] != K.ENC_NONE) for l in range(net.n_layers)]
        self._osa = [bool(net.lp[l, K.LP_ANNK] == K.ANN_OSA) for l in range(net.n_layers)]
        self._static = None
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
        self._rec = None
        self.limit = 0
        self._new_chips(B)

    def _new_chips(self, B: int) -> None:
        """Every chip's event-loop state: clocks, cursors, channels, queue and storage."""
        from . import eventloop as EL
        if self._static is None:
            self._static = event_layout(self.net, self.layout, self.hw, self._bin, self._osa)
        lay = self.layout
        C, G, P = lay.n, len(lay.groups), self.net.n_layers
        S = self._static["slots"]
        self.ck = np.zeros((B, C, EL.C_FIELDS), np.int64)
        self.ck[:, :, EL.C_TPREV] = np.iinfo(np.int64).min // 2
        self.cnu = np.ones((B, C))
        self.jg = np.zeros((B, C, 6), np.uint64)
        self.cur = np.zeros((B, C, max(S, 1)), np.int64)
        self.pt = np.zeros((B, lay.n_ports, 3), np.int64)
        self.pt[:, :, 1:] = -1
        self.waiters = np.tile(np.arange(G, dtype=np.int64), (B, 1))   # started in order
        self.sc = np.zeros((B, EL.S_FIELDS), np.int64)
        self.sc[:, EL.S_NWAIT] = G
        self.sc[:, EL.S_QFREE] = -1
        # the event calendar: one bucket per quantum over a horizon beyond the longest period
        horizon = int(max(lay.period.max() + lay.jitter.max(), 1)) + 2
        nbk = 1 << max(6, min(16, (horizon - 1).bit_length()))
        N, dmax = self.net.n_neurons, self._static["dmax"]
        self.dyn = [[np.zeros((2 * (G + C) + 16, 4), np.int64),
                     np.zeros((2 * (G + C) + 16, 4), np.int64), np.full((nbk, 2), -1, np.int64),
                     np.zeros((2 * C + 16, EL.B_FIELDS), np.int64),
                     np.zeros(2 * N + 16, np.int64), np.zeros(2 * N + 16),
                     np.zeros((P, 2 * C + 16, EL.L_FIELDS), np.int64), np.zeros(P, np.int64),
                     np.zeros((P * (2 * C + 16), 2), np.int64),
                     np.zeros(dmax * (2 * N + 16), np.int64), np.zeros(dmax * (2 * N + 16)),
                     np.zeros(2 * C + 16, np.int64)]
                    for _ in range(B)]

    @property
    def t(self) -> int:
        return int(self.limit)

    def ticks(self) -> np.ndarray:
        """Ticks done by every cluster of every sample, (B, clusters)."""
        from .eventloop import C_TICK
        return self.ck[:, :, C_TICK].copy()

    def in_flight(self) -> np.ndarray:
        """Per sample, messages released onto the network and not yet integrated, counted
        once per receiving cluster."""
        from .eventloop import in_flight
        st, hw = self._static, self.hw
        return np.array([in_flight(st["L"], hw.latency, hw.topology == "mesh", self.ck[b],
                                   self.cur[b], self.dyn[b][6], self.dyn[b][7])
                         for b in range(self.batch)], dtype=np.int64)

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
    def _advance(self, steps: int, t0: int, every: int) -> None:
        """Every chip from its barrier through tick ``self.limit`` (counters added)."""
        from . import eventloop as EL
        st, hw, net = self._static, self.hw, self.net
        rec = self._rec
        recording = rec is not None
        rec_arrays = rec[2:6] if recording else self._no_records
        W = (net.lp, net.pj, net.wf, net.wb, net.ix, net.bias)
        hwi = np.array([hw.quanta, hw.latency, hw.channels, hw.topology == "mesh",
                        math.isinf(hw.bandwidth)], dtype=np.int64)
        bw = float(hw.bandwidth)
        P, NP = net.n_layers, net.n_projections
        G, S, dmax = len(self.layout.groups), max(st["slots"], 1), st["dmax"]

        def chip(b):
            scratch = (np.zeros((S, 3), np.int64), np.zeros(dmax + 1, np.int64),
                       np.zeros(dmax + 1, np.int64), np.zeros(dmax, np.int64),
                       np.zeros(3, np.int64), np.zeros(G, np.int64), np.zeros(12, np.uint64),
                       np.zeros(P, np.int64), np.zeros(256, np.uint64),
                       np.zeros(64 * 256, np.int64))     # the bitmap sort of eventloop._sort
            rows = tuple(a[b] for a in (self.x, self.y, self.s, self.v, self.a, self.eps,
                                        *self.osa, self.u, self.phi, self.xm, self.q, self.ev,
                                        self.xm2, self.v2))
            cpop = np.zeros((P, EL.P_FIELDS), np.int64)
            csyn = np.zeros((NP, 2), np.int64)
            csc = np.zeros(3, np.int64)
            start = int(self.sc[b, EL.S_NOW])
            dyn, first = self.dyn[b], True
            while True:
                status = EL.advance(b, first, self.limit, t0, every, self.beta, self.seeds[b],
                                    recording, st["L"], st["clocks"], W, rows, hwi, bw,
                                    self.ck[b], self.cnu[b], self.jg[b], self.cur[b],
                                    self.pt[b], self.waiters[b], self.sc[b], tuple(dyn),
                                    scratch, cpop, csyn, csc, rec_arrays)
                if status == EL.DONE_OK:
                    break
                _grow(dyn, status)
                first = False
            c = self.c
            c["spikes"][b] += cpop[:, EL.P_SPK]
            c["updates"][b, :, 0] += cpop[:, EL.P_UPD]
            c["updates"][b, :, 1] += cpop[:, EL.P_ENC]
            c["packets"][b] += cpop[:, EL.P_PK]
            c["received"][b] += cpop[:, EL.P_RCV]
            c["late"][b] += cpop[:, EL.P_LATE]
            c["early"][b] += cpop[:, EL.P_EARLY]
            c["syn_events"][b] += csyn
            c["hops"][b] += csc[EL.X_HOPS]
            c["queue_delay"][b] += csc[EL.X_QDELAY]
            c["bus_busy"][b] += csc[EL.X_BUSY]
            c["elapsed"][b] += int(self.sc[b, EL.S_NOW]) - start

        if self.threads > 1 and self.batch > 1:
            with ThreadPoolExecutor(min(self.threads, self.batch)) as pool:
                list(pool.map(chip, range(self.batch)))
        else:
            for b in range(self.batch):
                chip(b)

    @cached_property
    def _no_records(self):
        B, N, C = self.batch, self.net.n_neurons, self.layout.n
        return (np.zeros((0, B, N), np.bool_), np.zeros((0, B, N)), np.zeros((0, B, 3, N)),
                np.zeros((0, B, C), np.int64))

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
            self.limit += int(steps)
            self._advance(int(steps), t0, int(every))
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


def _grow(dyn: list, status: int) -> None:
    """Double the store of a chip that the event loop found too small (see advance())."""
    from . import eventloop as EL

    def more(a, axis=0):
        shape = list(a.shape)
        shape[axis] *= 2
        out = np.zeros(shape, a.dtype)
        out[tuple(slice(0, n) for n in a.shape)] = a
        return out

    if status == EL.NEED_HEAP:
        dyn[0], dyn[1] = more(dyn[0]), more(dyn[1])
    elif status == EL.NEED_BATCHES:
        dyn[3], dyn[11] = more(dyn[3]), more(dyn[11])
    elif status == EL.NEED_PAYLOAD:
        dyn[4], dyn[5] = more(dyn[4]), more(dyn[5])
    elif status == EL.NEED_LOG:
        dyn[6] = more(dyn[6], axis=1)
    elif status == EL.NEED_TAKEN:
        dyn[8] = more(dyn[8])
    elif status == EL.NEED_MESSAGES:
        dyn[9], dyn[10] = more(dyn[9]), more(dyn[10])
    else:
        raise EngineError(f"bus engine: unknown event-loop status {status}")


def event_layout(net, lay: Layout, hw: Hardware, binary, osa) -> dict:
    """The event loop's constant arrays (tuples ``L`` and ``clocks``; see eventloop._tick)."""
    P, C = net.n_layers, lay.n
    i64 = lambda v: np.ascontiguousarray(v, dtype=np.int64)  # noqa: E731
    layer = i64(lay.layer)
    rank = np.zeros(C, np.int64)
    nclu = np.zeros(P, np.int64)
    for l, m in enumerate(lay.members):
        rank[m] = np.arange(m.size)
        nclu[l] = m.size
    # deliveries of each population (compiled dl order), their sender populations and the
    # distinct senders ("slots", one cursor each)
    pd_off, pd_p, pd_d, pd_bin, pd_slot, ps_off, ps_pop = [0], [], [], [], [], [0], []
    for r in range(P):
        srcs = []
        for p, d in net.dl[net.dl_off[r]:net.dl_off[r + 1]]:
            src = int(net.pj[p, K.PJ_PRE] if d == 0 else net.pj[p, K.PJ_POST])
            if src not in srcs:
                srcs.append(src)
            pd_p.append(int(p))
            pd_d.append(int(d))
            pd_bin.append(binary[src])
            pd_slot.append(srcs.index(src))
        pd_off.append(len(pd_p))
        ps_pop += srcs
        ps_off.append(len(ps_pop))
    S = max(b - a for a, b in zip(ps_off, ps_off[1:])) if P else 0
    hmin = np.ones((C, max(S, 1)), np.int64)
    if hw.topology == "mesh":
        for c in range(C):
            r = lay.layer[c]
            for j, p in enumerate(ps_pop[ps_off[r]:ps_off[r + 1]]):
                hmin[c, j] = np.abs(lay.cores[lay.members[p]] - lay.cores[c]).sum(axis=1).min()
    ulo = i64(net.off[:P])
    L = (layer, i64(lay.lo), i64(lay.hi), rank, i64(lay.port), i64(lay.cores[:, 0]),
         i64(lay.cores[:, 1]), i64(lay.packets_per_spike), i64(lay.hops_per_spike),
         i64(lay.n_dest > 0), ulo, i64(net.xoff[:P]), i64(net.yoff[:P]), i64(osa),
         np.ascontiguousarray(net.lp[:P, K.LP_ANNA], dtype=np.float64), i64(binary), nclu,
         i64(pd_off), i64(pd_p), i64(pd_d), np.array(pd_bin, dtype=np.bool_), i64(pd_slot),
         i64(ps_off), i64(ps_pop), hmin)
    grp_off = i64(np.cumsum([0] + [len(g) for g in lay.groups]))
    clocks = (i64(lay.period), i64(lay.phase), i64(lay.jitter), grp_off,
              i64([c for g in lay.groups for c in g]))
    return {"L": L, "clocks": clocks, "slots": S,
            "dmax": max([b - a for a, b in zip(pd_off, pd_off[1:])] + [1])}


def _hw_dict(hw: Hardware) -> dict:
    d = {k: getattr(hw, k) for k in ("quanta", "cluster_size", "period", "drift", "phase",
                                     "jitter", "topology", "latency", "channels")}
    d["bandwidth"] = "unlimited" if math.isinf(hw.bandwidth) else hw.bandwidth
    if hw.mesh:
        d["mesh"] = list(hw.mesh)
    if hw.clocks is not None:
        d["clock_file"] = hw.clocks.path
        d["clock_sample"] = hw.clocks.sample
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
