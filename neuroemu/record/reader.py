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

from ..describe.h5 import get_str, load_group, read_text
from ..errors import NetlistError, NeuroemuError, TraceError
from .layout import (FORMAT, FORMAT_VERSION, MAGIC, PROBE_VARS, SORTINGS, _h5, _msg,
                     progress_check)


class Trace:
    """A trace opened for reading.  Attributes: ``populations`` (SONATA names, by sample then
    layer), ``layers``, ``sizes``, ``samples``, ``batch``, ``dt`` (ms per step), ``complete``
    (False for a writer that did not finish), ``t_end`` (every spike up to this step is in the
    file), ``probes`` ({layer: {"node_ids", "every", "vars"}}), ``sorting`` ({population:
    "by_time" or "none"}).  Windows are in steps, half-open: ``start <= step < stop``, where a
    spike's step is the nearest whole step to its time / dt.  Populations sorted ``by_time``
    (the lockstep engine) find a window by bisection; those sorted ``none`` (the bus engine,
    whose sub-tick times drift and jitter) by a scan in blocks, and a window left open on
    both sides of a complete trace holds every spike."""

    def __init__(self, path):
        self.path = Path(path)
        self.f = self._open()
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
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
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
        f = self.f
        if int(f.attrs.get("magic", -1)) != MAGIC:
            self._fail("not a SONATA spike file (root attribute magic = 0x0A7A missing)")
        ne = f.get("neuroemu")
        if ne is None or "format" not in ne.attrs or get_str(ne.attrs, "format") != FORMAT:
            self._fail(f"a foreign HDF5 file: no /neuroemu group with format = '{FORMAT}' "
                       "(not a neuroemu trace)")
        ver = tuple(int(v) for v in ne.attrs["format_version"])
        if ver[0] != FORMAT_VERSION[0]:
            newer = "; a newer neuroemu wrote it" if ver[0] > FORMAT_VERSION[0] else ""
            self._fail(f"trace format {ver[0]}.{ver[1]} is not readable by this neuroemu (it "
                       f"reads {FORMAT_VERSION[0]}.x{newer})")
        self.ne = ne
        self.dt, self.units = float(ne.attrs["dt"]), get_str(ne.attrs, "time_units")
        self.batch, self.samples = int(ne.attrs["batch"]), [int(s) for s in ne.attrs["samples"]]
        g = ne["netlist/population"]
        pops = [g[str(i)] for i in range(int(g.attrs["count"]))]
        self.layers = [get_str(p.attrs, "name") for p in pops]
        self.sizes = [int(p.attrs["size"]) for p in pops]
        cols = json.loads(read_text(ne, "progress_columns"))
        lengths = np.array([f[c].shape[0] for c in cols], dtype=np.uint64)
        chosen, progress = None, ne["progress"]
        for k in range(progress.shape[0] - 1, -1, -1):   # the last valid commit record
            try:
                row = progress[k]
            except OSError:
                if not self.live:   # a closed file: damage, not a torn last record
                    raise
                continue
            if int(row["check"]) == progress_check(row) and len(row["rows"]) == len(cols) \
                    and np.all(row["rows"] <= lengths):
                chosen = row
                break
        self.complete = chosen is not None and bool(chosen["complete"])
        rows = lengths * 0 if chosen is None else chosen["rows"]
        if self.complete and not np.array_equal(rows, lengths):
            c = cols[int(np.argmax(rows != lengths))]
            self._fail(f"{c}: holds {f[c].shape[0]} rows but the closing progress record says "
                       f"{rows[cols.index(c)]} (damaged)")
        self.rows = dict(zip(cols, (int(r) for r in rows)))
        self.t_end = 0 if chosen is None else int(chosen["t_complete"])
        self.t_written = 0 if chosen is None else int(chosen["t_end"])
        self._pops, self.sorting, self._counts = {}, {}, {}
        names = {v: k for k, v in SORTINGS.items()}
        for name, grp in f["spikes"].items():
            key = (self.samples.index(int(grp.attrs["sample"])),
                   self.layers.index(get_str(grp.attrs, "layer")))
            self._pops[name] = (key, grp)
            self.sorting[name] = names.get(int(grp.attrs.get("sorting", 2)), "none")
        self.populations = sorted(self._pops, key=lambda n: self._pops[n][0])
        t_ends = ne["counters/t_end"][:self.rows["/neuroemu/counters/t_end"]]
        self._counter_row = int(np.searchsorted(t_ends, self.t_end, side="right")) - 1
        self.counters_step = int(t_ends[self._counter_row]) if self._counter_row >= 0 else 0
        self.probes = {}
        for layer, grp in ne["probes"].items():
            self.probes[layer] = {"node_ids": grp["node_ids"][...], "every": int(grp.attrs["every"]),
                                  "vars": [v for v in PROBE_VARS if v in grp]}

    # ------------------------------------------------------------------ populations / spikes
    def info(self, pop: str) -> dict:
        """layer, sample, size and committed spike count of a population."""
        (si, li), _ = self._group(pop)
        if pop not in self._counts:   # by bisection, or a scan of an unsorted population
            _, lo, hi, bounds = self._window(pop, None, None)
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
        """First index < n whose timestamp is at or after ``step`` (timestamps sorted)."""
        value, lo, hi = (step - 0.5) * self.dt, 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            if ds[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _window(self, pop, start, stop):
        """(group, first row, end row, time bounds to filter by or None) of a window."""
        _, grp = self._group(pop)
        whole = start is None and stop is None and self.complete
        start, stop = self.span(start, stop)
        ts = grp["timestamps"]
        n = self.rows[ts.name]
        if self.sorting[pop] != "by_time":   # unsorted: every row, filtered by time
            return grp, 0, n, None if whole else ((start - 0.5) * self.dt,
                                                  (stop - 0.5) * self.dt)
        with self._guard(ts.name):
            lo = self._bisect(ts, n, start)
            hi = self._bisect(ts, n, stop) if stop > start else lo
        return grp, lo, max(lo, hi), None

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
        """Like :meth:`spikes` in blocks of at most ``block`` rows (for huge traces)."""
        grp, lo, hi, bounds = self._window(pop, start, stop)
        for a in range(lo, hi, block):
            b = min(hi, a + block)
            with self._guard(grp.name):
                ts, ids = grp["timestamps"][a:b], grp["node_ids"][a:b]
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
        for _, ids in self.iter_spikes(pop, start, stop):
            if ids.size and ids.max() >= n:
                self._fail(f"spikes/{pop}/node_ids: id {int(ids.max())} >= population size {n}")
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
                if ids.size and ids.max() >= inf["size"]:
                    self._fail(f"spikes/{pop}/node_ids: id {int(ids.max())} >= population "
                               f"size {inf['size']}")
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
        file holds completely, which ended at step :attr:`counters_step`."""
        cg, k = self.ne["counters"], self._counter_row
        with self._guard(cg.name):
            return {name: (ds[k] if k >= 0 else np.zeros(ds.shape[1:], ds.dtype))
                    for name, ds in cg.items() if name != "t_end"}

    def blocks(self) -> np.ndarray:
        """The appended phases: structured rows (t_start, steps, beta, phase)."""
        ds = self.ne["blocks"]
        with self._guard(ds.name):
            rows = ds[:self.rows[ds.name]]
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
            steps = grp["steps"][:self.rows[grp["steps"].name]]
            lo, hi = np.searchsorted(steps, [start, stop])
            return steps[lo:hi], grp[var][lo:hi]

    def netlist(self):
        """The network that ran (weights as the engine used them), as a Netlist."""
        try:
            return load_group(self.ne["netlist"], f"{self.path}:/neuroemu/netlist")
        except (NetlistError, KeyError, OSError) as exc:
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
