"""Reading HDF5 spike traces: the lazy :class:`Trace` reader.

:class:`Trace` (opened by :func:`neuroemu.record.open`) reads only what is asked for -- a time
window of one population, one probed variable -- so traces larger than memory are usable.
Every problem with a file (missing, truncated, damaged, foreign, newer format) raises
:class:`~neuroemu.errors.TraceError` naming the file and what is wrong.  The layout is in
docs/trace-format.md; the writer is :mod:`neuroemu.record.writer`, pictures are drawn by
:mod:`neuroemu.record.plots`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..describe.h5 import load_group, read_text
from ..errors import NetlistError, NeuroemuError, TraceError
import neuroemu.record.checks as C
from .layout import (FORMAT, FORMAT_VERSION, MAGIC, PROBE_VARS, SORTINGS, _h5, _msg, pop_name,
                     progress_check)


class Trace:
    """A trace opened for reading.  Attributes: ``populations`` (SONATA names, by sample then
    layer), ``layers``, ``sizes``, ``shapes`` (a map's (C, H, W), else (size,)),
    ``projections`` (labels of the rows of the syn_events counters), ``samples``, ``batch``, ``dt`` (ms per step), ``complete``
    (False for a writer that did not finish), ``t_end`` (every spike up to this step is in the
    file), ``probes`` ({layer: {"node_ids", "every", "vars"}}), ``sorting`` ({population:
    "by_time" or "none"}).  Windows are in steps, half-open: ``start <= step < stop``, where a
    spike's step is the nearest whole step to its time / dt.  Populations sorted ``by_time``
    (the lockstep engine) find a window by bisection; those sorted ``none`` (the bus engine,
    whose sub-tick times drift and jitter) by a scan in blocks, and a window left open on
    both sides of a complete trace holds every spike."""

    def __init__(self, path):
        self.path = Path(path)
        self._checked = set()   # datasets whose chunks were checked (check_backed)
        try:
            self.f = self._open()
        except NeuroemuError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError,
                ArithmeticError) as exc:
            raise TraceError(f"{self.path}: not a readable HDF5 file ({_msg(exc)})") from None
        try:
            with self._guard("layout"):
                self._read_layout()
        except BaseException:
            self.f.close()
            raise

    def _fail(self, what: str):
        raise TraceError(f"{self.path}: {what}")

    @contextmanager
    def _guard(self, what: str):
        try:
            yield
        except NeuroemuError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError,
                ArithmeticError) as exc:
            raise TraceError(f"{self.path}: {what}: cannot be read, the file is damaged or "
                             f"truncated ({_msg(exc)})") from None

    def _open(self):
        h5py, p = _h5(), self.path
        if not p.exists():
            part = p.with_name(p.name + ".partial")
            if part.exists():
                self._fail(f"file not found, but {part.name} exists: a trace whose writer did not "
                           "finish (killed, crashed or still running); open that file to read "
                           "what it flushed")
            self._fail("file not found")
        self.live = False
        try:
            return h5py.File(p, "r")
        except OSError as exc:
            msg = _msg(exc)
            if "already open for write" not in msg:
                kind = "not an HDF5 file" if not h5py.is_hdf5(p) else \
                    "not a readable HDF5 file (truncated or damaged)"
                self._fail(f"{kind} ({msg})")
        try:   # left open by a writer (killed, or still running): read it the SWMR way
            self.live = True
            return h5py.File(p, "r", swmr=True)
        except OSError as exc:
            self._fail(f"left open by a writer that did not finish, and not readable "
                       f"({_msg(exc)})")

    def _read_layout(self) -> None:
        f, path = self.f, self.path
        magic = f.attrs.get("magic")
        ne = f.get("neuroemu")
        is_ours = isinstance(ne, _h5().Group) and "format" in ne.attrs
        if magic is None or np.asarray(magic).dtype.kind not in "iu" \
                or np.asarray(magic).size != 1 or int(np.asarray(magic).reshape(())) != MAGIC:
            if is_ours:   # a neuroemu trace whose SONATA header is damaged
                C.fail(path, "/ attribute magic", f"must be {MAGIC:#06x} (a damaged trace)",
                       magic)
            self._fail("not a SONATA spike file (root attribute magic = 0x0A7A missing)")
        if not is_ours or C.text(path, ne.attrs, "format", "/neuroemu format") != FORMAT:
            self._fail(f"a foreign HDF5 file: no /neuroemu group with format = '{FORMAT}' "
                       "(not a neuroemu trace)")
        ver = C.integers(path, ne.attrs, "format_version", "/neuroemu format_version", 2, 0)
        if ver[0] != FORMAT_VERSION[0]:
            newer = "; a newer neuroemu wrote it" if ver[0] > FORMAT_VERSION[0] else ""
            self._fail(f"trace format {ver[0]}.{ver[1]} is not readable by this neuroemu (it "
                       f"reads {FORMAT_VERSION[0]}.x{newer})")
        C.no_foreign_storage(path, f)
        self.ne = ne
        self.dt = C.number(path, ne.attrs, "dt", "/neuroemu dt")
        self.units = C.text(path, ne.attrs, "time_units", "/neuroemu time_units")
        self.batch = C.integer(path, ne.attrs, "batch", "/neuroemu batch", 1, C.MAX_OBJECTS)
        self.samples = C.integers(path, ne.attrs, "samples", "/neuroemu samples", None, 0,
                                  self.batch - 1)
        if not self.samples or len(set(self.samples)) != len(self.samples):
            C.fail(path, "/neuroemu samples", "must be distinct sample indices", self.samples)
        g = ne["netlist/population"]
        count = C.integer(path, g.attrs, "count", "/neuroemu/netlist/population count", 1, 1000)
        pops = [g[str(i)] for i in range(count)]
        self.layers = [C.text(path, p.attrs, "name", f"{p.name} name") for p in pops]
        self.shapes = [self._shape(p) for p in pops]
        self.sizes = [int(np.prod(sh)) for sh in self.shapes]
        self.projections = self._projection_labels(ne)
        cols = json.loads(read_text(ne, "progress_columns") or "null")
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols) \
                or len(set(cols)) != len(cols):
            C.fail(path, "/neuroemu/progress_columns", "must be a list of dataset names", cols)
        for c in cols:
            if not isinstance(f.get(c), _h5().Dataset):
                C.fail(path, "/neuroemu/progress_columns", "names a dataset the file lacks", c)
        lengths = np.array([f[c].shape[0] if f[c].ndim else 0 for c in cols], dtype=np.uint64)
        chosen = self._last_commit(ne, cols, lengths)
        self.complete = chosen is not None and bool(chosen["complete"])
        rows = lengths * 0 if chosen is None else chosen["rows"]
        if self.complete and not np.array_equal(rows, lengths):
            c = cols[int(np.argmax(rows != lengths))]
            self._fail(f"{c}: holds {f[c].shape[0]} rows but the closing progress record says "
                       f"{rows[cols.index(c)]} (damaged)")
        self.rows = dict(zip(cols, (int(r) for r in rows)))
        self.t_end = 0 if chosen is None else int(chosen["t_complete"])
        self.t_written = 0 if chosen is None else int(chosen["t_end"])
        if not 0 <= self.t_end <= self.t_written:
            C.fail(path, "/neuroemu/progress", "t_complete must lie in [0, t_end]",
                   (self.t_end, self.t_written))
        self._read_populations(f)
        self._read_counter_steps(ne)
        self.probes = {}
        for layer, grp in ne["probes"].items():
            if layer not in self.layers:
                C.fail(path, grp.name, "probes a population the netlist lacks", layer)
            n = self.sizes[self.layers.index(layer)]
            ids = C.dataset(path, grp, "node_ids", "iu", 1, "neuron indices")[...]
            if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
                C.fail(path, f"{grp.name}/node_ids", f"must be neuron indices in [0, {n - 1}]",
                       ids)
            every = C.integer(path, grp.attrs, "every", f"{grp.name} every", 1)
            st = C.dataset(path, grp, "steps", "iu", 1, "a list of steps")
            vs = [v for v in PROBE_VARS if v in grp]
            for v in vs:
                d = C.dataset(path, grp, v, "f", 3, "values (records, samples, neurons)")
                if d.shape[1:] != (len(self.samples), ids.size) or \
                        d.shape[0] < self.rows.get(st.name, 0):
                    C.fail(path, d.name, f"must have shape (records, {len(self.samples)}, "
                                         f"{ids.size})", d.shape)
            self.probes[layer] = {"node_ids": ids.astype(np.uint64), "every": every,
                                  "vars": vs}
        self._bounds()

    def _shape(self, p) -> tuple[int, ...]:
        """A population's shape: ``(size,)``, or a map's ``shape`` (format-2 netlists)."""
        path = self.path
        if "size" in p.attrs or "shape" not in p.attrs:
            return (C.integer(path, p.attrs, "size", f"{p.name} size", 1, C.MAX_POP_SIZE),)
        sh = C.integers(path, p.attrs, "shape", f"{p.name} shape", None, 1, C.MAX_POP_SIZE)
        if not 1 <= len(sh) <= 3 or int(np.prod(sh, dtype=np.float64)) > C.MAX_POP_SIZE:
            C.fail(path, f"{p.name} shape", f"must be 1 to 3 positive integers of at most "
                   f"{C.MAX_POP_SIZE} neurons", sh)
        return tuple(sh)

    def _projection_labels(self, ne) -> list[str]:
        """Labels of the projections (the rows of the syn_events counters): stored with the
        counters (format 1.1), else -- a trace of a chain written by format 1.0 -- the
        netlist's ``pre->post``."""
        path, g = self.path, ne["netlist/projection"]
        count = C.integer(path, g.attrs, "count", f"{g.name} count", 0, 100_000)
        cg = ne["counters"]
        if "projections" in cg.attrs:
            raw = C.text(path, cg.attrs, "projections", f"{cg.name} projections")
            try:
                labels = json.loads(raw)
            except ValueError:
                labels = None
            if not isinstance(labels, list) or len(labels) != count \
                    or not all(isinstance(v, str) for v in labels):
                C.fail(path, f"{cg.name} projections", f"must be a JSON list of {count} "
                       f"projection labels", raw)
            return labels
        labels = []
        for i in range(count):
            a = g[str(i)].attrs
            labels.append(f"{C.text(path, a, 'pre', f'{g.name}/{i} pre')}->"
                          f"{C.text(path, a, 'post', f'{g.name}/{i} post')}")
        return labels

    def _last_commit(self, ne, cols, lengths):
        """The last valid progress record (a torn last one is skipped in a live file)."""
        progress = ne["progress"]
        names = getattr(progress.dtype, "names", None) or ()
        if progress.ndim != 1 or not {"t_end", "t_complete", "complete", "rows",
                                      "check"} <= set(names):
            C.fail(self.path, "/neuroemu/progress", "must be a list of progress records",
                   f"dtype {progress.dtype}, shape {progress.shape}")
        n = progress.shape[0]
        for k in range(n - 1, max(-1, n - 1 - 4096), -1):   # only the tail can be torn
            try:
                row = progress[k]
            except OSError:
                if not self.live:   # a closed file: damage, not a torn last record
                    raise
                continue
            if int(row["check"]) == progress_check(row) and len(row["rows"]) == len(cols) \
                    and np.all(row["rows"] <= lengths):
                return row
        return None

    def _read_populations(self, f) -> None:
        path = self.path
        self._pops, self.sorting, self._counts = {}, {}, {}
        names = {v: k for k, v in SORTINGS.items()}
        sp = f.get("spikes")
        if not isinstance(sp, _h5().Group):
            C.fail(path, "/spikes", "missing (the SONATA spike groups)")
        for name, grp in sp.items():
            if not isinstance(grp, _h5().Group):
                C.fail(path, grp.name, "must be a population group")
            sample = C.integer(path, grp.attrs, "sample", f"{grp.name} sample")
            layer = C.text(path, grp.attrs, "layer", f"{grp.name} layer")
            if sample not in self.samples or layer not in self.layers:
                C.fail(path, grp.name, "sample and layer must be a recorded sample and a "
                                       "population of the netlist", (sample, layer))
            key = (self.samples.index(sample), self.layers.index(layer))
            if name != pop_name(layer, sample, len(self.samples)) or key in \
                    {k for k, _ in self._pops.values()}:
                C.fail(path, grp.name, f"must be named "
                       f"{pop_name(layer, sample, len(self.samples))!r}, once", name)
            size = self.sizes[key[1]]
            if "size" in grp.attrs:
                C.integer(path, grp.attrs, "size", f"{grp.name} size", size, size)
            sort = C.integer(path, grp.attrs, "sorting", f"{grp.name} sorting", 0, 2, 2)
            ts = C.dataset(path, grp, "timestamps", "f", 1, "float times (ms)")
            ids = C.dataset(path, grp, "node_ids", "iu", 1, "integer neuron indices")
            if self.rows.get(ts.name) != self.rows.get(ids.name):
                C.fail(path, grp.name, "timestamps and node_ids must have the same committed "
                       "rows", (self.rows.get(ts.name), self.rows.get(ids.name)))
            if self.rows[ts.name] > self.t_written * size:
                C.fail(path, ts.name, f"holds more spikes than {self.t_written} steps of "
                       f"{size} neurons can", self.rows[ts.name])
            self._pops[name] = (key, grp)
            self.sorting[name] = names.get(sort, "none")
        want = len(self.samples) * len(self.layers)
        if len(self._pops) != want:
            C.fail(path, "/spikes", f"must hold one population per recorded sample and layer "
                   f"({want})", len(self._pops))
        self.populations = sorted(self._pops, key=lambda n: self._pops[n][0])

    def _read_counter_steps(self, ne) -> None:
        ds = C.dataset(self.path, ne["counters"], "t_end", "iu", 1, "a list of steps")
        t_ends = ds[:self.rows.get(ds.name, 0)].astype(np.int64)
        if t_ends.size and (t_ends[0] < 1 or np.any(np.diff(t_ends) <= 0)
                            or t_ends[-1] > self.t_written):
            C.fail(self.path, ds.name, f"must be increasing steps in [1, {self.t_written}]",
                   t_ends)
        if t_ends.size and t_ends[-1] != self.t_written:   # each commit follows an append
            C.fail(self.path, ds.name, f"the last committed row must be the progress record's "
                   f"step {self.t_written}", int(t_ends[-1]))
        self._counter_row = int(np.searchsorted(t_ends, self.t_end, side="right")) - 1
        self.counters_step = int(t_ends[self._counter_row]) if self._counter_row >= 0 else 0
        self._counters_ok = False

    def _bounds(self) -> None:
        """The span of times a spike may have: whole steps 1..t_written (lockstep), or the
        bus engine's sub-tick times -- positive, and at most the slowest clock's."""
        dt, t = self.dt, self.t_written
        self._lo, self._hi = 0.5 * dt, (t + 0.5) * dt
        if any(v == "none" for v in self.sorting.values()) or \
                self._engine() == "async":
            hw = {}
            try:
                hw = json.loads(read_text(self.ne["netlist"], "hardware") or "{}")
                clock = hw.get("clock", {})
                q = float(hw.get("quanta", 100))
                slow = max(1.0, (float(clock.get("period", q)) + float(clock.get("drift", 0)))
                           / q)
                extra = (float(clock.get("phase", 0)) + float(clock.get("jitter", 0))) / q
                if not (np.isfinite(slow) and np.isfinite(extra) and q > 0):
                    raise ValueError
            except (ValueError, TypeError, AttributeError, KeyError, OSError):
                slow, extra = 1.0, 1.0
            self._lo = np.nextafter(0.0, 1.0)
            self._hi = (2.0 * (t + 1) * slow + max(0.0, extra)) * dt

    def _engine(self):
        try:
            return json.loads(read_text(self.ne, "provenance") or "{}").get("engine")
        except (ValueError, AttributeError, OSError, KeyError):
            return None

    # ------------------------------------------------------------------ populations / spikes
    def info(self, pop: str) -> dict:
        """layer, sample, size and committed spike count of a population."""
        (si, li), _ = self._group(pop)
        if pop not in self._counts:   # by bisection, or a scan of an unsorted population
            _, lo, hi, bounds, _ = self._window(pop, None, None)
            self._counts[pop] = hi - lo if bounds is None else \
                sum(len(ids) for _, ids in self.iter_spikes(pop))
        return {"population": pop, "layer": self.layers[li], "sample": self.samples[si],
                "size": self.sizes[li], "spikes": self._counts[pop]}

    def _group(self, pop):
        if pop not in self._pops:
            raise TraceError(f"{self.path}: no population {pop!r} (have: "
                             f"{', '.join(self.populations)})")
        return self._pops[pop]

    def _bisect(self, ds, n: int, step: float) -> int:
        """First index < n whose timestamp is at or after ``step`` (timestamps sorted); every
        probed time is checked (a NaN would steer the search silently)."""
        value, lo, hi = (step - 0.5) * self.dt, 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            t = float(ds[mid])
            if not self._lo <= t <= self._hi:
                C.fail(self.path, f"{ds.name}[{mid}]", f"must be a finite time in "
                       f"[{self._lo:g}, {self._hi:g}] ms (the steps the trace holds)", t)
            if t < value:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _window(self, pop, start, stop):
        """(group, first row, end row, time bounds to filter by or None, the window's time
        bounds) of a window."""
        _, grp = self._group(pop)
        whole = start is None and stop is None and self.complete
        start, stop = self.span(start, stop)
        ts = grp["timestamps"]
        n = self.rows[ts.name]
        span = ((start - 0.5) * self.dt, (stop - 0.5) * self.dt)
        if self.sorting[pop] != "by_time":   # unsorted: every row, filtered by time
            return grp, 0, n, None if whole else span, span
        with self._guard(ts.name):
            self._backed(ts)
            lo = self._bisect(ts, n, start)
            hi = self._bisect(ts, n, stop) if stop > start else lo
        return grp, lo, max(lo, hi), None, span

    def _backed(self, ds) -> None:
        if ds.name not in self._checked:
            C.check_backed(self.path, ds, self.rows.get(ds.name, ds.shape[0]))
            self._checked.add(ds.name)

    def spikes(self, pop: str, start=None, stop=None, as_time: bool = False):
        """(steps int64 -- or timestamps float64 if ``as_time`` --, node_ids uint64) of one
        population in a window of steps, in file order: by time then neuron for populations
        sorted ``by_time``, by engine step then neuron for the bus engine's (sorting ``none``)."""
        parts = list(self.iter_spikes(pop, start, stop, as_time=as_time))
        if not parts:
            return (np.zeros(0, np.float64 if as_time else np.int64), np.zeros(0, np.uint64))
        return tuple(np.concatenate(c) for c in zip(*parts))

    def iter_spikes(self, pop: str, start=None, stop=None, block: int = 1 << 20,
                    as_time: bool = False):
        """Like :meth:`spikes` in blocks of at most ``block`` rows (for huge traces).  Each
        block is checked as it is read (finite times within the trace's steps, in order for
        populations sorted by_time, node ids within the population)."""
        with self._guard(f"spikes/{pop}"):
            (_, li), _ = self._group(pop)
            grp, lo, hi, bounds, span = self._window(pop, start, stop)
            sorted_ = self.sorting[pop] == "by_time"
            check = C.SpikeCheck(self.path, pop, self.sizes[li], self._lo, self._hi, sorted_)
            tsd, idd = grp["timestamps"], grp["node_ids"]
            self._backed(tsd)
            self._backed(idd)
        for a in range(lo, hi, max(1, int(block))):
            b = min(hi, a + block)
            with self._guard(grp.name):
                ts = np.asarray(tsd[a:b], dtype=np.float64)
                ids = idd[a:b]
                check(ts, ids, a)
                if sorted_ and ts.size and not (span[0] <= ts[0] and ts[-1] < span[1]):
                    C.fail(self.path, f"{tsd.name}[{a}..{b - 1}]", "out of order in a "
                           "population sorted by_time (times outside the window found by "
                           "bisection)", (float(ts[0]), float(ts[-1])))
                ids = ids.astype(np.uint64, copy=False)
            if bounds is not None:
                keep = (ts >= bounds[0]) & (ts < bounds[1])
                ts, ids = ts[keep], ids[keep]
            yield (ts if as_time else np.rint(ts / self.dt).astype(np.int64)), ids

    def span(self, start=None, stop=None) -> tuple[int, int]:
        """The window [start, stop) of steps, clipped to the steps the file holds."""
        start = 1 if start is None else max(1, int(start))
        stop = self.t_end + 1 if stop is None else min(int(stop), self.t_end + 1)
        return start, max(start, stop)

    def counts(self, pop: str, start=None, stop=None) -> np.ndarray:
        """Spikes per neuron (int64, size of the population) in a window, read in blocks."""
        n = self.sizes[self._group(pop)[0][1]]
        out = np.zeros(n, dtype=np.int64)
        for _, ids in self.iter_spikes(pop, start, stop):   # (ids checked < n)
            out += np.bincount(ids.astype(np.int64), minlength=n)
        return out

    def rates(self, pop: str, start=None, stop=None, hz: bool = False) -> np.ndarray:
        """Firing rate per neuron in a window: spikes per step (or per second if ``hz``)."""
        c = self.counts(pop, start, stop)
        start, stop = self.span(start, stop)
        r = c / max(1, stop - start)
        return r * (1000.0 / self.dt) if hz else r

    def summary(self, start=None, stop=None) -> list[dict]:
        """Per population: neurons, spikes, mean rate, fraction of neurons active, time span."""
        rows = []
        for pop in self.populations:
            inf = self.info(pop)
            c = np.zeros(inf["size"], dtype=np.int64)
            t0, t1 = np.inf, -np.inf
            for ts, ids in self.iter_spikes(pop, start, stop, as_time=True):
                c += np.bincount(ids.astype(np.int64), minlength=inf["size"])
                if ts.size:
                    t0, t1 = min(t0, float(ts.min())), max(t1, float(ts.max()))
            spk = int(c.sum())
            t0, t1 = (t0, t1) if spk else (None, None)
            w0, w1 = self.span(start, stop)
            rate = spk / max(1, inf["size"] * (w1 - w0))
            rows.append({**inf, "spikes": spk, "rate_per_step": rate,
                         "rate_hz": rate * 1000.0 / self.dt, "active": float(np.mean(c > 0)),
                         "first_ms": t0, "last_ms": t1})
        return rows

    # ------------------------------------------------------------------ the rest
    def counters(self) -> dict[str, np.ndarray]:
        """The per-sample event counters (as ``session.counters()``) after the last block the
        file holds completely, which ended at step :attr:`counters_step`.  The first call checks
        every committed row (integers, non-negative, never decreasing), in blocks."""
        cg, k = self.ne["counters"], self._counter_row
        with self._guard(cg.name):
            if not self._counters_ok:
                self._check_counters(cg)
            return {name: (ds[k] if k >= 0 else np.zeros(ds.shape[1:], ds.dtype))
                    for name, ds in cg.items() if name != "t_end"}

    def _check_counters(self, cg) -> None:
        L1, B, P = len(self.layers), self.batch, len(self.projections)
        shapes = {"spikes": (B, L1), "syn_events": (B, P, 2), "updates": (B, L1, 2)}
        n = self.rows.get(cg["t_end"].name, 0)
        for name in shapes:
            if name not in cg:
                C.fail(self.path, f"{cg.name}/{name}", "missing")
        for name, ds in cg.items():
            if name == "t_end":
                continue
            if not isinstance(ds, _h5().Dataset) or ds.dtype.kind not in "iu" or ds.ndim < 2 \
                    or ds.shape[1] != B or (name in shapes and ds.shape[1:] != shapes[name]) \
                    or self.rows.get(ds.name) != n:
                C.fail(self.path, f"{cg.name}/{name}", f"must be integer counters of shape "
                       f"(rows, {', '.join(map(str, shapes.get(name, (B, '...'))))}) with "
                       f"{n} committed rows", getattr(ds, "shape", None))
            self._backed(ds)
            last = np.zeros(ds.shape[1:], np.int64)
            for a in range(0, n, 4096):
                blk = ds[a:min(n, a + 4096)].astype(np.int64)
                prev = np.concatenate([last[None], blk[:-1]])
                bad = (blk < 0) | (blk < prev)
                if bad.any():
                    r = a + int(np.argmax(bad.reshape(len(blk), -1).any(axis=1)))
                    C.fail(self.path, f"{cg.name}/{name}[{r}]", "counters must be non-negative "
                           "and never decrease", ds[r])
                last = blk[-1]
        self._counters_ok = True

    def blocks(self) -> np.ndarray:
        """The appended phases: structured rows (t_start, steps, beta, phase), checked
        (contiguous steps from 0, finite beta, UTF-8 names)."""
        ds = self.ne["blocks"]
        with self._guard(ds.name):
            names = getattr(ds.dtype, "names", None) or ()
            if ds.ndim != 1 or not {"t_start", "steps", "beta", "phase"} <= set(names):
                C.fail(self.path, ds.name, "must be a list of (t_start, steps, beta, phase)",
                       f"dtype {ds.dtype}")
            self._backed(ds)
            rows = ds[:self.rows[ds.name]]
            t0, st = rows["t_start"].astype(np.int64), rows["steps"].astype(np.int64)
            if rows.size and (t0[0] < 0 or np.any(st < 0) or np.any(t0[1:] != (t0 + st)[:-1])
                              or (t0 + st)[-1] > self.t_written):
                C.fail(self.path, ds.name, f"blocks must follow each other from step 0 to at "
                       f"most {self.t_written}", rows[["t_start", "steps"]][:4])
            if not np.all(np.isfinite(rows["beta"].astype(np.float64))):
                C.fail(self.path, ds.name, "beta must be finite", rows["beta"][:4])
            for r in rows["phase"]:
                try:
                    bytes(r).decode("utf-8")
                except (UnicodeDecodeError, TypeError):
                    C.fail(self.path, ds.name, "phase names must be UTF-8 text", r)
        return rows[rows["t_start"] + rows["steps"] <= self.t_written]

    def states(self, layer: str, var: str = "s", start=None, stop=None):
        """(steps (R,), values (R, samples, probed neurons)) of a probed variable."""
        if layer not in self.probes:
            raise TraceError(f"{self.path}: no probes for population {layer!r} (probed: "
                             f"{', '.join(self.probes) or 'none'})")
        if var not in self.probes[layer]["vars"]:
            raise TraceError(f"{self.path}: probes/{layer}: variable {var!r} not recorded (have: "
                             f"{', '.join(self.probes[layer]['vars'])})")
        grp = self.ne["probes"][layer]
        start, stop = self.span(start, stop)
        with self._guard(grp.name):
            sd = grp["steps"]
            self._backed(sd)
            self._backed(grp[var])
            steps = sd[:self.rows[sd.name]].astype(np.int64)
            if steps.size and (steps[0] < 1 or np.any(np.diff(steps) <= 0)
                               or steps[-1] > self.t_written):
                C.fail(self.path, sd.name, f"must be increasing steps in [1, {self.t_written}]",
                       steps)
            lo, hi = np.searchsorted(steps, [start, stop])
            return steps[lo:hi], grp[var][lo:hi]

    def netlist(self):
        """The network that ran (weights as the engine used them), as a Netlist."""
        try:
            return load_group(self.ne["netlist"], f"{self.path}:/neuroemu/netlist")
        except (NetlistError, KeyError, OSError, ValueError, TypeError, RuntimeError,
                IndexError, ArithmeticError) as exc:
            raise TraceError(f"{self.path}: /neuroemu/netlist: {_msg(exc)}") from None

    @property
    def netlist_text(self) -> str | None:
        with self._guard("/neuroemu/netlist/source"):
            return read_text(self.ne["netlist"], "source")

    @property
    def provenance(self) -> dict:
        with self._guard("/neuroemu/provenance"):
            return json.loads(read_text(self.ne, "provenance"))

    @property
    def input(self) -> np.ndarray | None:
        with self._guard("/neuroemu/input"):
            return self.ne["input"][...] if "input" in self.ne else None

    def close(self) -> None:
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
