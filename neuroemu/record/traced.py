"""Running and tracing in one call: :func:`run_traced` streams a session's run into a trace
in chunks of steps, with memory flat in the run's length (no spike arrays kept, the session's
per-call Phase records merged) and Ctrl-C turned into a clean stop between engine calls (the
trace stays ``NAME.partial``, readable up to that step).  The writer is
:class:`neuroemu.record.writer.TraceWriter`."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from .layout import PROBE_VARS
from .writer import TraceWriter

CELLS_PER_CALL = 1 << 21   # run_traced: steps per engine call ~ this / (batch * neurons)


def _merge(phases: list, ph) -> None:
    """Append Phase ``ph`` (its arrays dropped) to ``phases``, merged into the last record when
    it continues it (same name, beta and rate): one record per run of like calls."""
    ph.spikes = ph.states = ph.extra = None
    if hasattr(ph, "tick_times"):
        ph.tick_times = None
    last = phases[-1] if phases else None
    if last is not None and (last.name, last.beta, last.every) == (ph.name, ph.beta, ph.every) \
            and last.t_start + last.steps == ph.t_start:
        last.steps += ph.steps
        for key, v in ph.counters.items():
            last.counters[key] = last.counters[key] + v
    else:
        phases.append(ph)


class _Flag:
    def __init__(self):
        self.set = False

    def __bool__(self) -> bool:
        return self.set


@contextmanager
def _interrupt_flag():
    """While the block runs, Ctrl-C (SIGINT) only sets the flag it yields, which the loop
    checks between engine calls -- an exception raised at an arbitrary point (inside h5py,
    or in a finaliser, where Python only prints it) could be lost or leave the file half
    written.  A second Ctrl-C raises KeyboardInterrupt at once.  Outside the main thread
    signals cannot be caught: the flag is never set there."""
    import signal
    import threading
    flag = _Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.set:
            raise KeyboardInterrupt("interrupted twice")
        flag.set = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


def run_traced(path, net, x, steps: int, *, seed=None, engine: str = "lockstep",
               threads: int = 1, samples=None, dt: float = 1.0, probes=None,
               probe_every: int = 1, probe_vars=PROBE_VARS, settings=None, progress=None,
               **session_kw):
    """Run a free phase of ``steps`` on a new session, streaming it into a trace at ``path``
    in chunks of steps (memory stays flat however long the run).  ``probes``, ``probe_every``,
    ``probe_vars``, ``samples`` and ``dt`` are the writer's (see :class:`TraceWriter`);
    ``settings`` is stored in the provenance; ``progress``: show a progress bar (default: when
    stderr is a terminal).  Returns the session's RunResult (its phases hold no spikes: they
    are in the file)."""
    from tqdm import tqdm

    from ..engines import session
    sess = session(net, x, engine=engine, seed=seed, threads=threads, **session_kw)
    net, seed = sess.net, sess.seed
    probes = probes or {}
    pvars = tuple(probe_vars)
    rec_s = bool(probes) and "s" in pvars
    rec_x = bool(probes) and any(v != "s" for v in pvars)
    every = int(probe_every)
    per_cell = 1 + 8 * rec_s + 24 * rec_x if every == 1 else 1
    chunk = max(1, CELLS_PER_CALL // (per_cell * sess.batch * net.n_neurons))
    show = sys.stderr.isatty() if progress is None else bool(progress)
    phases = []   # the session's Phase records, merged (memory stays flat in run length)
    with _interrupt_flag() as stop, \
            TraceWriter(path, net, x=sess.x, samples=samples, dt=dt, probes=probes,
                        probe_every=every, probe_vars=pvars, time_sorted=engine != "async",
                        sub_tick=engine == "async",
                        provenance={"seed": seed, "engine": engine,
                                    "settings": settings or {}}) as w, \
            tqdm(total=steps, unit="step", disable=not show, desc=Path(path).name) as bar:
        done = 0
        while done < steps and not stop:
            # probing every k > 1 steps: spikes-only calls up to the step before a probed one,
            # then that one step with states (the engine records all of a call at one rate)
            k = min(chunk, steps - done)
            probe_now = every == 1 or (done + 1) % every == 0
            if probes and every > 1:
                k = 1 if probe_now else min(k, every - 1 - done % every)
            probe_now = bool(probes) and probe_now
            ph = sess.run(k, name="free", record_spikes=True, record_states=rec_s and probe_now,
                          record_extra=rec_x and probe_now)
            w.append(ph)
            if sess.phases and sess.phases[-1] is ph:
                sess.phases.pop()
            _merge(phases, ph)
            done += k
            bar.update(k)
        if stop:   # Ctrl-C: keep NAME.partial, readable up to this step, and say so
            w.abort()
            raise KeyboardInterrupt(f"stopped after step {done} of {steps}; {w.tmp} holds "
                                    f"steps 1..{w.t_committed} (an unfinished trace: neuroemu "
                                    f"inspect {w.tmp.name})")
    sess.phases.extend(phases)
    return sess.result(trace=str(w.path))
