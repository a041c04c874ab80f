"""The lockstep engine: every neuron steps on one global clock (the reference semantics).

The whole step loop runs inside :func:`neuroemu.engines.kernels.run_lockstep`; this module only
allocates the state, validates arguments, and turns the kernel's buffers into
:class:`~neuroemu.engines.session.Phase` records.
"""

from __future__ import annotations

import numpy as np

import neuroemu.engines.kernels as K
from .compiled import CompiledNetwork
from .session import Phase, RunResult, SessionBase, check_run_args


class LockstepSession(SessionBase):
    """B samples of one network advancing in lockstep.

    ``threads`` > 1 spreads samples over numba threads (opt-in: on a shared machine
    threads can make things slower).
    """

    name = "lockstep"

    def __init__(self, net: CompiledNetwork, x, *, seed: int | None = None,
                 sample_ids=None, threads: int = 1):
        super().__init__(net, seed, threads)
        self.reset(x, sample_ids)

    # ------------------------------------------------------------------ state
    def reset(self, x, sample_ids=None) -> None:
        """Clamp new inputs and zero every state, clock and statistic."""
        B, N, L1 = self._allocate(x, sample_ids)
        self.nev = np.zeros((B, L1), dtype=np.int64)   # lengths of the event lists
        self.clock = np.zeros(B, dtype=np.int64)
        self.nu = np.ones((B, L1))
        self.c_spk = np.zeros((B, L1), dtype=np.int64)
        self.c_syn = np.zeros((B, self.net.n_projections, 2), dtype=np.int64)
        self.c_upd = np.zeros((B, L1, 2), dtype=np.int64)

    @property
    def t(self) -> int:
        return int(self.clock[0])

    def counters(self) -> dict[str, np.ndarray]:
        return {"spikes": self.c_spk.copy(), "syn_events": self.c_syn.copy(),
                "updates": self.c_upd.copy()}

    # ------------------------------------------------------------------ running
    def run(self, steps: int, *, beta: float = 0.0, target=None, name: str | None = None,
            record_spikes: bool = False, record_states: bool = False,
            record_extra: bool = False, every: int = 1) -> Phase:
        """Advance ``steps`` steps with nudge strength ``beta`` towards ``target`` (B, n_out)."""
        beta, y = check_run_args(steps, every, beta, target, self.net.n_out, self.batch)
        if y is not None:
            self.y = y
        B, N = self.batch, self.net.n_neurons
        R = steps // every
        rq = np.zeros((R if record_spikes else 0, B, N), dtype=np.bool_)
        rs = np.zeros((R if record_states else 0, B, N))
        rx = np.zeros((R if record_extra else 0, B, 3, N))
        before = self.counters()
        t0 = self.t
        self._kernel(int(steps), beta, int(every), rq, rs, rx)
        self.check_finite(name or f"phase{len(self.phases)}")
        after = self.counters()
        phase = Phase(name or f"phase{len(self.phases)}", t0, int(steps), beta, int(every),
                      {k: after[k] - before[k] for k in after},
                      rq if record_spikes else None, rs if record_states else None,
                      rx if record_extra else None)
        self.phases.append(phase)
        return phase

    def _kernel(self, steps, beta, every, rq, rs, rx):
        net = self.net
        if net.graph:
            args = (steps, beta, self.x, self.y, net.off, net.lp, net.pj, net.dl, net.dl_off,
                    net.xoff, net.yoff, net.wf, net.wb, net.ix, net.bias, self.seeds, self.s,
                    self.v, self.a, self.phi, self.xm, self.xm2, self.v2, self.q, self.ev,
                    self.nev, self.eps, *self.osa, self.clock, self.nu, self.u, self.c_spk,
                    self.c_syn, self.c_upd)
            kernel, parallel = K.run_graph, K.run_graph_parallel
        else:
            args = (steps, beta, self.x, self.y, net.off, net.lp, net.wf, net.wf_off, net.wb,
                    net.wb_off, net.bias, self.seeds, self.s, self.v, self.a, self.phi, self.xm,
                    self.xm2, self.v2, self.q, self.ev, self.nev, self.eps, *self.osa,
                    self.clock, self.nu, self.u, self.c_spk, self.c_syn, self.c_upd,
                    net.w8f, net.w8b)
            kernel, parallel = K.run_lockstep, K.run_lockstep_parallel
        if self.threads == 1:
            kernel(*args, every, rq, rs, rx)
            return
        with K.threads(self.threads):
            parallel(*args, every, rq, rs, rx)

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> dict:
        """Copies of everything a run changes (states, memories, residues, statistics,
        messages, clocks, counters): :meth:`restore` returns the session to this point, so
        two phases can start from the same state (symmetric nudging)."""
        arrays = {k: v.copy() for k, v in vars(self).items()
                  if isinstance(v, np.ndarray) and k not in ("x", "y", "seeds")}
        arrays["osa"] = [o.copy() for o in self.osa]
        return {"arrays": arrays, "phases": len(self.phases)}

    def restore(self, snap: dict) -> None:
        """Go back to a :meth:`snapshot` of this session (same batch); the phases run since
        are dropped from the record."""
        for k, v in snap["arrays"].items():
            if k == "osa":
                for dst, src in zip(self.osa, v):
                    np.copyto(dst, src)
            else:
                np.copyto(getattr(self, k), v)
        del self.phases[snap["phases"]:]

    def result(self, **metadata) -> RunResult:
        net = self.net
        meta = {"engine": self.name, "seed": self.seed, "batch": self.batch,
                "netlist": net.netlist.name, **metadata}
        return RunResult(net.names, net.sizes, self.batch, list(self.phases), self.counters(),
                         {n: self.state(n) for n in net.names}, meta)
