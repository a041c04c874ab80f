"""HDF5 spike traces: a SONATA spike report plus neuroemu's own groups (docs/trace-format.md).

Writing streams: :class:`TraceWriter` takes the :class:`~neuroemu.engines.Phase` records of a
session one after the other (each with spikes recorded every step), turns them into per
population (timestamps, node_ids) lists and appends them to chunked datasets (packed with
filters that every HDF5 build has, so SONATA readers such as libsonata open them).  Only
whole chunks are written, so memory stays at most one chunk per dataset however long the run,
and data once written is never rewritten.  The file is ``NAME.partial`` while it is written
(HDF5 single-writer/multiple-reader mode, whose metadata stays consistent if the process dies)
and is renamed to ``NAME`` when closed.  Every second or so the writer *commits*: it flushes and
appends a checksummed row to ``/neuroemu/progress`` saying how many rows of every dataset are
valid and up to which step everything has been written.  A killed writer leaves a ``.partial``
file whose last valid progress row tells the reader what it may trust.

The reader is :mod:`neuroemu.record.reader`; the layout both share is
:mod:`neuroemu.record.layout`.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..describe.h5 import FILTERS, LIBVER, chunks_of, set_str, write_group, write_text
from ..errors import EngineError, NeuroemuError, TraceError
from ..files import check_target
from .layout import (FORMAT, FORMAT_VERSION, MAGIC, PROBE_VARS, SONATA_VERSION, SORTINGS,
                     VALUE_FILTERS, _h5, _msg, pop_name, progress_check, spike_filters)

class _Appender:
    """Appends rows to a resizable dataset in whole chunks (at most one chunk kept in memory).
    A commit also writes the partly filled chunk (:meth:`flush_partial`), so the rows the file
    holds reach the last commit; that chunk is written again, whole, once it fills."""

    def __init__(self, dset):
        self.d = dset
        self.chunk = dset.chunks[0]
        self.buf = np.empty((self.chunk,) + dset.shape[1:], dtype=dset.dtype)
        self.n = 0      # rows pending in memory (the chunk being filled)
        self.rows = 0   # rows in whole chunks in the file
        self.flushed = 0   # of the pending rows, those a commit already wrote to the file

    @property
    def committed(self) -> int:
        """Rows the file holds (whole chunks, and the part of the pending chunk flushed)."""
        return self.rows + self.flushed

    def append(self, arr) -> None:
        m, i = len(arr), 0
        if self.n:
            i = min(self.chunk - self.n, m)
            self.buf[self.n:self.n + i] = arr[:i]
            self.n += i
            if self.n == self.chunk:
                self._write(self.buf)
                self.n = 0
        whole = (m - i) // self.chunk * self.chunk
        if whole:
            self._write(arr[i:i + whole])
            i += whole
        if i < m:
            self.buf[:m - i] = arr[i:]
            self.n = m - i

    def _write(self, block) -> None:
        end = self.rows + len(block)
        if self.d.shape[0] < end:
            self.d.resize(end, axis=0)
        self.d[self.rows:end] = block
        self.rows = end
        self.flushed = 0

    def flush_partial(self) -> None:
        """Write the pending rows (a partly filled chunk) without dropping them from memory."""
        if self.n > self.flushed:
            end = self.rows + self.n
            if self.d.shape[0] < end:
                self.d.resize(end, axis=0)
            self.d[self.rows:end] = self.buf[:self.n]
            self.flushed = self.n

    def finish(self) -> None:
        if self.n:
            self._write(self.buf[:self.n])
            self.n = 0


class _Timed:
    """Appenders whose first column is a time; remembers the last time appended."""

    def __init__(self, scale: float, key: _Appender, *others: _Appender):
        self.scale, self.key, self.all = scale, key, (key,) + others
        self.last_time = -np.inf

    def append(self, *cols, steps=None) -> None:
        for a, c in zip(self.all, cols):
            a.append(c)


class _Lock:
    """An exclusive lock (``flock``) on a small file beside the trace, ``.NAME.lock``, held
    while a writer writes ``NAME.partial``: a second writer of the same path gets a one-line
    TraceError instead of truncating the first one's file.  The kernel drops the lock when
    its process dies, so a lock file left by a killed writer blocks nobody."""

    def __init__(self, path: Path):
        import fcntl
        self.path = path.with_name(f".{path.name}.lock")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                other = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                raise TraceError(f"{path}: another process (pid {other or '?'}) is writing this "
                                 f"trace (lock {self.path.name}); wait for it or choose another "
                                 f"path") from None
            try:   # the holder before us may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)     # while still holding the lock
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


class TraceWriter:
    """Stream a session's phases into an HDF5 trace (see the module doc and trace-format.md).

    ``net``: the CompiledNetwork that runs (any network: one SONATA population per neuron
    population and recorded sample, counters per population and per projection); ``x``: its
    inputs (B, the input populations' sizes summed), stored for
    provenance (or give ``batch``).  ``samples``: which samples to record (default all);
    ``dt``: duration of one step in ms (spikes of step t get timestamp ``t * dt``).
    ``probes``: ``{population: neuron indices or None for all}``, recorded every
    ``probe_every`` steps (variables ``probe_vars`` of s, v, eps, phi).  ``provenance``: a dict
    stored as JSON (seed, engine, settings...).  ``t_start`` / ``counters``: the session's clock
    and counters when the writer starts (defaults: a fresh session).  ``chunk``: spikes per
    chunk (default: 32768, less when there are many populations).  ``time_sorted``: promise
    SONATA sorting ``by_time``; phases of the asynchronous engine carry sub-tick spike times
    (``tick_times``), which the writer stores, and which need ``time_sorted=False``
    (sorting ``none``) when clocks drift or jitter, and ``sub_tick=True``: timestamps are then
    stored as they are, where whole-millisecond times (an integer ``dt``, lockstep phases) are
    packed losslessly (``for_session`` and ``run_traced`` choose both from the engine).

    Use as a context manager (an exception leaves ``NAME.partial`` marked incomplete), or call
    :meth:`append` per phase and :meth:`close` at the end.
    """

    def __init__(self, path, net, *, x=None, batch=None, samples=None, dt: float = 1.0,
                 probes=None, probe_every: int = 1, probe_vars=PROBE_VARS, provenance=None,
                 flush_seconds: float = 1.0, chunk: int | None = None, t_start: int = 0,
                 counters=None, time_sorted: bool = True, sub_tick: bool = False):
        h5py = _h5()
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".partial")
        self.net = net
        self.x = None if x is None else np.ascontiguousarray(x, dtype=np.float64)
        self.batch = int(self.x.shape[0] if self.x is not None else batch)
        self.samples = list(range(self.batch)) if samples is None else [int(s) for s in samples]
        for s in self.samples:
            if not 0 <= s < self.batch:
                raise EngineError(f"samples: must lie in [0, {self.batch - 1}] (got {s})")
        if not (isinstance(dt, (int, float)) and dt > 0 and np.isfinite(dt)):
            raise EngineError(f"dt: must be a positive number of ms (got {dt!r})")
        if isinstance(probe_every, bool) or int(probe_every) != probe_every or probe_every < 1:
            raise EngineError(f"probe_every: must be a positive integer (got {probe_every!r})")
        bad = [v for v in probe_vars if v not in PROBE_VARS]
        if bad or not probe_vars:
            raise EngineError(f"probe_vars: must be a non-empty subset of {', '.join(PROBE_VARS)}"
                              f" (got {', '.join(bad) or 'nothing'})")
        self.dt, self.every, self.vars = float(dt), int(probe_every), tuple(probe_vars)
        self.time_sorted = bool(time_sorted)
        # timestamps packed by scale-offset: exact only for whole numbers (checked in append)
        self.whole_times = float(dt).is_integer() and not sub_tick
        self.probes = {}
        for name, idx in (probes or {}).items():
            l = net.layer(name)
            n = net.sizes[l]
            idx = np.arange(n) if idx is None else np.asarray(idx, dtype=np.int64)
            if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise EngineError(f"probes[{name!r}]: neuron indices must lie in [0, {n - 1}]")
            self.probes[net.names[l]] = idx
        self.t = int(t_start)
        self.t_committed = self.t   # the step the last commit reached
        L1 = net.n_layers
        zeros = {"spikes": np.zeros((self.batch, L1), np.int64),
                 "syn_events": np.zeros((self.batch, net.n_projections, 2), np.int64),
                 "updates": np.zeros((self.batch, L1, 2), np.int64)}
        self.counters = {k: np.array(v, dtype=np.int64) for k, v in (counters or zeros).items()}
        self.flush_seconds = float(flush_seconds)
        n_pops = len(self.samples) * L1
        self.chunk = int(chunk or max(1024, min(32768, 1 << int(np.log2(max(1, (1 << 20) // n_pops))))))
        check_target(self.path)     # never onto a directory, FIFO or device (neuroemu.files)
        check_target(self.tmp)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _Lock(self.path)   # one writer per trace path (TraceError for the others)
        # no chunk cache: whole chunks go straight to the file (a cache would only hold memory)
        # NAME.partial appears only once readable: the layout is written under a hidden name
        # and renamed when SWMR mode has started (a writer killed before leaves no .partial)
        new = self.tmp.with_name(f".{self.tmp.name}.new")
        self.f = h5py.File(new, "w", libver=LIBVER, rdcc_nbytes=0)
        try:
            self._create(provenance or {})
            os.replace(new, self.tmp)
        except BaseException:
            self.f.close()
            new.unlink(missing_ok=True)
            self._lock.release()
            raise
        self.closed = self.broken = False
        self._last_commit = time.monotonic()

    # ------------------------------------------------------------------ layout
    def _create(self, provenance: dict) -> None:
        h5py, f, net = _h5(), self.f, self.net
        f.attrs.create("magic", np.uint32(MAGIC))
        f.attrs.create("version", np.array(SONATA_VERSION, dtype=np.uint32))
        sorting = h5py.enum_dtype(SORTINGS, basetype="i1")
        self.pops, self.appenders = [], []   # pops: (sample, layer, _Timed)
        sp = f.create_group("spikes")
        for b in self.samples:
            for l, layer in enumerate(net.names):
                g = sp.create_group(pop_name(layer, b, len(self.samples)))
                g.attrs.create("sorting", SORTINGS["by_time" if self.time_sorted else "none"],
                               dtype=sorting)
                set_str(g.attrs, "layer", layer)
                g.attrs.create("sample", np.int64(b))
                g.attrs.create("size", np.uint64(net.sizes[l]))
                shape = tuple(net.netlist.populations[l].shape or ())
                if shape:   # a map: its neurons are node ids in C order of this shape
                    g.attrs.create("shape", np.array(shape, dtype=np.int64))
                ts = self._dataset(g, "timestamps", (), np.float64, self.chunk, spike_filters(
                    "whole_times" if self.whole_times else "times"))
                set_str(ts.d.attrs, "units", "ms")
                ids = self._dataset(g, "node_ids", (), np.uint64, self.chunk,
                                    spike_filters("node_ids"))
                self.pops.append((b, l, _Timed(self.dt, ts, ids)))
        ne = f.create_group("neuroemu")
        set_str(ne.attrs, "format", FORMAT)
        ne.attrs.create("format_version", np.array(FORMAT_VERSION, dtype=np.uint32))
        ne.attrs.create("dt", np.float64(self.dt))
        set_str(ne.attrs, "time_units", "ms")
        ne.attrs.create("batch", np.int64(self.batch))
        ne.attrs.create("samples", np.array(self.samples, dtype=np.int64))
        write_text(ne, "provenance", json.dumps(_provenance(net, provenance), sort_keys=True,
                                                default=str, indent=1))
        write_group(ne.create_group("netlist"), net.to_netlist())
        if self.x is not None:
            ne.create_dataset("input", data=self.x, chunks=chunks_of(self.x.shape),
                              **FILTERS)
        block_t = np.dtype([("t_start", "<i8"), ("steps", "<i8"), ("beta", "<f8"),
                            ("phase", "S32")])
        row_elems = sum(v[0].size for v in self.counters.values())
        rows = max(1, min(1024, 32768 // row_elems))
        self.blocks = self._dataset(ne, "blocks", (), block_t, rows, FILTERS)
        cg = ne.create_group("counters")
        set_str(cg.attrs, "projections", json.dumps(
            [getattr(pr, "label", f"{pr.pre}->{pr.post}") for pr in net.netlist.projections]))
        self.cnt = {"t_end": self._dataset(cg, "t_end", (), np.int64, rows, FILTERS)}
        for k, v in self.counters.items():
            self.cnt[k] = self._dataset(cg, k, v.shape, np.int64, rows, FILTERS)
        self.probe_groups = []   # (layer index, indices, _Timed, var names)
        pg = ne.create_group("probes")
        for layer, idx in self.probes.items():
            g = pg.create_group(layer)
            g.attrs.create("every", np.int64(self.every))
            g.attrs.create("samples", np.array(self.samples, dtype=np.int64))
            g.create_dataset("node_ids", data=idx.astype(np.uint64), chunks=(idx.size,),
                             **FILTERS)
            shape = (len(self.samples), idx.size)
            rows = max(1, 32768 // (shape[0] * shape[1]))
            st = self._dataset(g, "steps", (), np.int64, rows, FILTERS)
            cols = [self._dataset(g, v, shape, np.float64, rows, VALUE_FILTERS) for v in self.vars]
            self.probe_groups.append((net.layer(layer), idx, _Timed(1.0, st, *cols)))
        cols = [a.d.name for a in self.appenders]
        write_text(ne, "progress_columns", json.dumps(cols))
        self.progress_t = np.dtype([("t_end", "<i8"), ("t_complete", "<i8"), ("complete", "u1"),
                                    ("rows", "<u8", (len(cols),)), ("check", "<u4")])
        self.progress = ne.create_dataset("progress", (0,), maxshape=(None,), chunks=(1,),
                                          dtype=self.progress_t, fletcher32=True)
        f.flush()
        f.swmr_mode = True

    def _dataset(self, g, name, row_shape, dtype, rows, filters) -> _Appender:
        d = g.create_dataset(name, (0,) + tuple(row_shape), maxshape=(None,) + tuple(row_shape),
                             chunks=(rows,) + tuple(row_shape), dtype=dtype, **filters)
        a = _Appender(d)
        self.appenders.append(a)
        return a

    # ------------------------------------------------------------------ streaming
    def append(self, phase) -> None:
        """Append one Phase (spikes recorded every step; states/extra when probing)."""
        if self.closed:
            raise TraceError(f"{self.path}: the trace is closed")
        with self._io():
            self._append(phase)

    @contextmanager
    def _io(self):
        """A write that fails (a full disk, a file-size limit) leaves the file as a killed
        writer would -- what the last commit recorded stays readable -- and raises one
        TraceError saying what was kept, instead of HDF5's traceback."""
        try:
            yield
        except NeuroemuError:
            raise
        except (OSError, RuntimeError) as exc:
            self._abandon()
            why = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else _msg(exc)
            raise TraceError(f"{self.tmp}: writing failed ({why}); the file keeps "
                             f"steps 1..{self.t_committed}, committed before the failure "
                             f"(neuroemu inspect {self.tmp.name})") from None

    def _abandon(self) -> None:
        """Close the file without writing anything more to it: HDF5 would flush metadata
        that points past what a full disk let it write (then no reader opens the file), so
        its descriptor is first pointed at a read-only one.  The file stays as it was at the
        failure: SWMR keeps it readable up to the last commit, as after ``kill -9``."""
        if self.closed:
            return
        self.closed = self.broken = True
        try:
            fd = self.f.id.get_vfd_handle()
            ro = os.open(self.tmp, os.O_RDONLY)
            try:
                os.dup2(ro, fd)
            finally:
                os.close(ro)
        except (OSError, TypeError, ValueError):
            pass
        try:
            self.f.close()
        except (OSError, RuntimeError, ValueError):
            pass
        self._lock.release()

    def _append(self, phase) -> None:
        spk = phase.spikes
        if spk is None or phase.every != 1:
            raise EngineError(f"phase '{phase.name}': spikes must be recorded at every step "
                              "for a trace (run with record_spikes=True, every=1)")
        if phase.t_start != self.t:
            raise EngineError(f"phase '{phase.name}': starts after step {phase.t_start} but the "
                              f"trace has reached step {self.t} (append phases in order)")
        R, net = phase.steps, self.net
        if spk.shape != (R, self.batch, net.n_neurons):
            raise EngineError(f"phase '{phase.name}': spikes have shape {spk.shape}, expected "
                              f"{(R, self.batch, net.n_neurons)}")
        step_no = np.arange(R) + (self.t + 1)
        ticks = getattr(phase, "tick_times", None)  # asynchronous engine: sub-tick times
        for b, l, pop in self.pops:
            n = net.sizes[l]
            q = np.ascontiguousarray(spk[:, b, net.off[l]:net.off[l + 1]])
            flat = np.flatnonzero(q)   # (step, neuron) in step order, then by neuron
            per_step = np.count_nonzero(q, axis=1)
            ids = flat - np.repeat(np.arange(0, R * n, n), per_step)
            steps = np.repeat(step_no, per_step)
            if ticks is None:
                pop.append(steps * self.dt, ids.view(np.uint64))
                continue
            cluster = phase.cluster_of[net.off[l] + ids]
            times = ticks[steps - step_no[0], b, cluster] / phase.quanta * self.dt
            if self.whole_times and np.any(times != np.floor(times)):
                k = int(np.argmax(times != np.floor(times)))
                raise EngineError(f"phase '{phase.name}': spike time {times[k]:g} ms is not a "
                                  "whole number of ms, which this trace packs (sub-tick times "
                                  "of the asynchronous engine need TraceWriter(sub_tick=True))")
            if self.time_sorted and len(times) and (np.any(np.diff(times) < 0)
                                                   or times[0] < pop.last_time):
                raise EngineError(f"phase '{phase.name}': spike times of the asynchronous "
                                  "engine are out of order; write the trace with "
                                  "time_sorted=False (sorting 'none')")
            if len(times):
                pop.last_time = times[-1]
            pop.append(times, ids.view(np.uint64), steps=steps)
        if self.probe_groups:
            self._append_probes(phase)
        for k, v in self.counters.items():
            v += phase.counters[k]
        self.blocks.append(np.array([(phase.t_start, R, phase.beta,
                                      phase.name.encode("utf-8")[:32])], dtype=self.blocks.d.dtype))
        self.t += R
        self.cnt["t_end"].append(np.array([self.t], dtype=np.int64))
        for k, v in self.counters.items():
            self.cnt[k].append(v[None])
        if time.monotonic() - self._last_commit >= self.flush_seconds:
            self.commit()

    def _append_probes(self, phase) -> None:
        rec = phase.t_start + phase.every * np.arange(1, phase.steps // phase.every + 1)
        keep = np.nonzero(rec % self.every == 0)[0]
        if keep.size == 0:   # no probed step in this phase
            return
        need_x = [v for v in self.vars if v != "s"]
        if (phase.states is None and "s" in self.vars) or (need_x and phase.extra is None):
            raise EngineError(f"phase '{phase.name}': probes at step {int(rec[keep[0]])} need "
                              "record_states=True and record_extra=True")
        sam = np.array(self.samples)
        for l, idx, grp in self.probe_groups:
            cols = np.asarray(self.net.off[l] + idx)
            out = []
            for v in self.vars:
                if v == "s":
                    a = phase.states[keep][:, sam][:, :, cols]
                    if self.net.xoff[l] >= 0 and self.x is not None:   # an input's is x
                        a = np.broadcast_to(self.x[sam][:, self.net.xoff[l] + idx], a.shape)
                else:
                    k = PROBE_VARS.index(v) - 1
                    a = phase.extra[keep][:, sam, k][:, :, cols]
                out.append(np.ascontiguousarray(a))
            grp.append(rec[keep], *out)

    def commit(self, complete: bool = False) -> None:
        """Flush (partly filled chunks too), then record in /neuroemu/progress what the file
        now holds: every row appended, through step ``t``."""
        for a in self.appenders:
            a.flush_partial()
        rows = np.array([a.committed for a in self.appenders], dtype=np.uint64)
        self.f.flush()
        row = np.zeros(1, dtype=self.progress_t)
        row["t_end"], row["t_complete"], row["complete"], row["rows"] = \
            self.t, self.t, int(complete), rows
        row["check"] = progress_check(row[0])
        k = self.progress.shape[0]
        self.progress.resize((k + 1,))
        self.progress[k] = row[0]
        self.f.flush()
        self.t_committed = self.t
        self._last_commit = time.monotonic()

    def close(self) -> Path:
        """Write what is left, mark the trace complete, close and rename it.  Returns the path."""
        if self.closed:
            if self.broken:
                raise TraceError(f"{self.tmp}: writing failed earlier; the file keeps steps "
                                 f"1..{self.t_committed}")
            return self.path
        with self._io():
            self._write_rest()
            self.commit(complete=True)
            self.f.close()
        self.closed = True
        check_target(self.path)     # nothing became a directory or FIFO meanwhile
        os.replace(self.tmp, self.path)
        self._lock.release()
        return self.path

    def _write_rest(self) -> None:
        for a in self.appenders:
            a.finish()

    def abort(self) -> None:
        """Write what was appended and close without marking the trace complete: the file
        stays ``NAME.partial``."""
        if self.closed:
            return
        try:
            with self._io():
                self._write_rest()
                self.commit(complete=False)
                self.f.close()
        except TraceError:   # the write failed: the file keeps the last commit (_abandon)
            pass
        self.closed = True
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    @classmethod
    def for_session(cls, path, sess, **kw) -> "TraceWriter":
        """A writer that continues from the session's current clock and counters."""
        prov = {"seed": getattr(sess, "seed", None), "engine": getattr(sess, "name", None)}
        prov.update(kw.pop("provenance", {}) or {})
        kw.setdefault("time_sorted", prov["engine"] != "async")
        kw.setdefault("sub_tick", prov["engine"] == "async")
        return cls(path, sess.net, x=sess.x, t_start=sess.t, counters=sess.counters(),
                   provenance=prov, **kw)


def _provenance(net, extra: dict) -> dict:
    import platform

    import h5py
    import numba

    from .._version import __version__
    nlst = net.netlist
    return {"neuroemu": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version,
            "netlist": {"name": nlst.name, "path": nlst.path, "seed": nlst.seed}, **extra}


def write(path, net, result, *, x=None, **kw) -> Path:
    """Write a RunResult whose phases recorded spikes (every step) as a trace."""
    meta = dict(result.metadata)
    kw.setdefault("provenance", {"seed": meta.get("seed"), "engine": meta.get("engine")})
    with TraceWriter(path, net, x=x, batch=result.batch, **kw) as w:
        for ph in result.phases:
            w.append(ph)
    return w.path
