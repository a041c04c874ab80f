"""Reading HDF5 spike traces: the lazy :class:`Trace` reader, and ``neuroemu inspect TRACE``.

:class:`Trace` (opened by :func:`neuroemu.traces.open`) reads only what is asked for -- a time
window of one population, one probed variable -- so traces larger than memory are usable.
Every problem with a file (missing, truncated, damaged, foreign, newer format) raises
:class:`~neuroemu.errors.TraceError` naming the file and what is wrong.  The layout is in
docs/trace-format.md; the writer is :mod:`neuroemu.traces`.

``neuroemu inspect`` prints a table with one row per SONATA population (a layer of one recorded
sample): neurons, spikes, mean rate, fraction of neurons that spiked at least once, and the time
of the first and last spike.  ``--raster`` draws the spikes of one sample, layers stacked; ``--states`` draws the
probed variables (s, v, eps, phi) of chosen neurons over time.  Both are PNG files.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import netlist_h5, traces
from .errors import NeuroemuError, TraceError
from .netlist_h5 import get_str, read_text
from .traces import FORMAT, FORMAT_VERSION, MAGIC, PROBE_VARS, _h5, _msg, progress_check

INSPECT_EXAMPLE = """examples:
  neuroemu run netlists/mnist-binary.toml --steps 1000 --trace traces/run.h5 --probe hidden:0-9
  neuroemu inspect traces/run.h5
  neuroemu inspect traces/run.h5 --json
  neuroemu inspect traces/run.h5 --raster traces/raster.png --states traces/states.png"""

MAX_COLUMNS = 2000       # raster: time bins drawn at most (longer windows are binned)
LINES_PER_POPULATION = 4  # states: neurons drawn per probed population by default


class Trace:
    """A trace opened for reading.  Attributes: ``populations`` (SONATA names, by sample then
    layer), ``layers``, ``sizes``, ``samples``, ``batch``, ``dt`` (ms per step), ``complete``
    (False for a writer that did not finish), ``t_end`` (every spike up to this step is in the
    file), ``probes`` ({layer: {"node_ids", "every", "vars"}}).  Windows are in steps,
    half-open: ``start <= step < stop``."""

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
        self._pops = {}
        for name, grp in f["spikes"].items():
            key = (self.samples.index(int(grp.attrs["sample"])),
                   self.layers.index(get_str(grp.attrs, "layer")))
            self._pops[name] = (key, grp)
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
        (si, li), grp = self._group(pop)
        return {"population": pop, "layer": self.layers[li], "sample": self.samples[si],
                "size": self.sizes[li], "spikes": self._n(grp, self.t_end + 1)}

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

    def _n(self, grp, stop) -> int:
        ts = grp["timestamps"]
        with self._guard(ts.name):
            return self._bisect(ts, self.rows[ts.name], min(stop, self.t_end + 1))

    def _window(self, pop, start, stop):
        _, grp = self._group(pop)
        start, stop = self.span(start, stop)
        ts = grp["timestamps"]
        with self._guard(ts.name):
            lo = self._bisect(ts, self.rows[ts.name], start)
            hi = self._bisect(ts, self.rows[ts.name], stop) if stop > start else lo
        return grp, lo, max(lo, hi)

    def spikes(self, pop: str, start=None, stop=None, as_time: bool = False):
        """(steps int64 -- or timestamps float64 if ``as_time`` --, node_ids uint64) of one
        population in a window of steps, sorted by time then neuron."""
        grp, lo, hi = self._window(pop, start, stop)
        with self._guard(grp.name):
            ts, ids = grp["timestamps"][lo:hi], grp["node_ids"][lo:hi]
        return (ts if as_time else np.rint(ts / self.dt).astype(np.int64)), ids

    def iter_spikes(self, pop: str, start=None, stop=None, block: int = 1 << 20):
        """Like :meth:`spikes` in blocks of at most ``block`` spikes (for huge traces)."""
        grp, lo, hi = self._window(pop, start, stop)
        for a in range(lo, hi, block):
            b = min(hi, a + block)
            with self._guard(grp.name):
                ts, ids = grp["timestamps"][a:b], grp["node_ids"][a:b]
            yield np.rint(ts / self.dt).astype(np.int64), ids

    def span(self, start=None, stop=None) -> tuple[int, int]:
        """The window [start, stop) of steps, clipped to the steps the file holds."""
        start = 1 if start is None else max(1, int(start))
        stop = self.t_end + 1 if stop is None else min(int(stop), self.t_end + 1)
        return start, max(start, stop)

    def counts(self, pop: str, start=None, stop=None) -> np.ndarray:
        """Spikes per neuron (int64, size of the population) in a window, read in blocks."""
        n = self.info(pop)["size"]
        out = np.zeros(n, dtype=np.int64)
        for _, ids in self.iter_spikes(pop, start, stop):
            if ids.size and ids.max() >= n:
                self._fail(f"spikes/{pop}/node_ids: id {int(ids.max())} >= population size {n}")
            out += np.bincount(ids.astype(np.int64), minlength=n)
        return out

    def rates(self, pop: str, start=None, stop=None, hz: bool = False) -> np.ndarray:
        """Firing rate per neuron in a window: spikes per step (or per second if ``hz``)."""
        start, stop = self.span(start, stop)
        r = self.counts(pop, start, stop) / max(1, stop - start)
        return r * (1000.0 / self.dt) if hz else r

    def summary(self, start=None, stop=None) -> list[dict]:
        """Per population: neurons, spikes, mean rate, fraction of neurons active, time span."""
        start, stop = self.span(start, stop)
        rows = []
        for pop in self.populations:
            inf = self.info(pop)
            c = self.counts(pop, start, stop)
            spk, t0, t1 = int(c.sum()), None, None
            if spk:
                grp, lo, hi = self._window(pop, start, stop)
                with self._guard(grp.name):
                    t0, t1 = float(grp["timestamps"][lo]), float(grp["timestamps"][hi - 1])
            rate = spk / max(1, inf["size"] * (stop - start))
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
        from .errors import NetlistError
        try:
            return netlist_h5.load_group(self.ne["netlist"], f"{self.path}:/neuroemu/netlist")
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


# ================================================================================= CLI

def add_inspect_arguments(p) -> None:
    p.epilog = INSPECT_EXAMPLE
    p.add_argument("trace", help="trace file written by 'neuroemu run --trace'")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--raster", metavar="FILE.png", help="draw a spike raster (layers stacked)")
    p.add_argument("--states", metavar="FILE.png", help="draw the probed variables over time")
    p.add_argument("--sample", type=int, default=None,
                   help="sample to draw (default: the first recorded)")
    p.add_argument("--start", type=int, default=None, help="first step of the window")
    p.add_argument("--stop", type=int, default=None, help="step after the window (exclusive)")
    p.add_argument("--neurons", action="append", default=[], metavar="POP:LIST",
                   help=f"probed neurons for --states, e.g. hidden:0-3 (repeatable; default the "
                        f"first {LINES_PER_POPULATION} probed of each population)")


def inspect_main(args) -> int:
    with traces.open(args.trace) as t:
        start, stop = t.span(args.start, args.stop)
        rows = t.summary(start, stop)
        sample = t.samples[0] if args.sample is None else args.sample
        if sample not in t.samples:
            raise TraceError(f"{args.trace}: --sample: sample {sample} was not recorded "
                             f"(recorded: {', '.join(map(str, t.samples))})")
        status = "complete" if t.complete else \
            f"INCOMPLETE: the writer did not finish; the file holds steps 1..{t.t_end}"
        if args.json:
            print(json.dumps({"trace": str(args.trace), "complete": t.complete,
                              "t_end": t.t_end, "dt_ms": t.dt, "window": [start, stop],
                              "batch": t.batch, "samples": t.samples, "populations": rows,
                              "probes": {k: {"node_ids": v["node_ids"].tolist(),
                                             "every": v["every"], "vars": v["vars"]}
                                         for k, v in t.probes.items()}}, indent=1))
        else:
            steps = f"steps {start}..{stop - 1} of {t.t_end}" if stop > start else "no steps"
            print(f"{args.trace}: {len(t.samples)} of {t.batch} samples, {steps} "
                  f"(dt = {t.dt:g} ms) -- {status}")
            print(f"  {'population':<14}{'neurons':>8}{'spikes':>11}{'rate/step':>10}"
                  f"{'rate Hz':>9}{'active':>8}   {'time span (ms)'}")
            for r in rows:
                span = "-" if r["first_ms"] is None else f"{r['first_ms']:g} .. {r['last_ms']:g}"
                print(f"  {r['population']:<14}{r['size']:>8}{r['spikes']:>11}"
                      f"{r['rate_per_step']:>10.4f}{r['rate_hz']:>9.1f}{r['active']:>8.1%}   "
                      f"{span}")
            for layer, pr in t.probes.items():
                print(f"  probes {layer}: {len(pr['node_ids'])} neurons, {', '.join(pr['vars'])}"
                      f" every {pr['every']} steps")
        if (args.raster or args.states) and stop <= start:
            raise TraceError(f"{args.trace}: nothing to draw: the window holds no steps (the "
                             f"trace holds steps 1..{t.t_end})")
        if args.raster:
            draw_raster(t, args.raster, sample, start, stop)
            print(f"wrote {args.raster}")
        if args.states:
            draw_states(t, args.states, sample, start, stop, args.neurons)
            print(f"wrote {args.states}")
    return 0


def _figure(w, h):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def raster_image(t, pop: str, start: int, stop: int, bin_steps: int, bin_neurons: int = 1):
    """(neuron bins, time bins) array: the fraction of the (neuron, step) cells of each bin in
    which a spike was sent (0 or 1 when bins are single cells)."""
    n = t.info(pop)["size"]
    rows, cols = math.ceil(n / bin_neurons), math.ceil((stop - start) / bin_steps)
    img = np.zeros(rows * cols, dtype=np.int64)
    for steps, ids in t.iter_spikes(pop, start, stop):
        img += np.bincount(ids.astype(np.int64) // bin_neurons * cols
                           + (steps - start) // bin_steps, minlength=rows * cols)
    return img.reshape(rows, cols) / (bin_steps * bin_neurons)


def draw_raster(t, path, sample: int, start: int, stop: int) -> None:
    """Spike raster of one sample: one panel per layer (input at the bottom)."""
    pops = [p for p in t.populations if t.info(p)["sample"] == sample][::-1]
    sizes = [t.info(p)["size"] for p in pops]
    total = sum(sizes)
    bin_steps = max(1, math.ceil((stop - start) / MAX_COLUMNS))
    bin_neurons = max(1, math.ceil(max(sizes) / MAX_COLUMNS))
    ratios = [max(s, 0.08 * total) for s in sizes]
    fig = _figure(12, 1.2 + 7.0 * min(1.0, 0.25 + total / 1500))
    axes = fig.subplots(len(pops), 1, sharex=True, gridspec_kw={"height_ratios": ratios,
                                                                "hspace": 0.08})
    axes = np.atleast_1d(axes)
    binned = bin_steps > 1 or bin_neurons > 1
    unit = "spikes per neuron and step" if binned else None
    for ax, pop, n in zip(axes, pops, sizes):
        img = raster_image(t, pop, start, stop, bin_steps, bin_neurons)
        x0, y0 = start - 0.5, -0.5
        im = ax.imshow(img, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                       interpolation="antialiased",
                       extent=(x0, x0 + img.shape[1] * bin_steps,
                               y0, y0 + img.shape[0] * bin_neurons))
        ax.set_xlim(x0, stop - 0.5)
        ax.set_ylim(y0, n - 0.5)
        layer = t.info(pop)["layer"]
        ax.set_ylabel(f"{layer}\nneuron", rotation=0, ha="right", va="center", fontsize=9)
        ax.set_yticks([0, n - 1] if n > 1 else [0])
        ax.tick_params(labelsize=8)
        rate = img.sum() * bin_steps * bin_neurons / max(1, n * (stop - start))
        ax.text(1.005, 0.5, f"{n} neurons\nrate {rate:.3f}/step", transform=ax.transAxes,
                fontsize=8, va="center")
    axes[-1].set_xlabel(f"step (1 step = {t.dt:g} ms)")
    title = f"{t.path.name}: spike raster of sample {sample}, steps {start}..{stop - 1}"
    if binned:
        size = f"{bin_steps} steps" + (f" x {bin_neurons} neurons" if bin_neurons > 1 else "")
        title += f"\n(bins of {size}; grey = {unit})"
        fig.colorbar(im, ax=list(axes), fraction=0.015, pad=0.09, label=unit)
    if not t.complete:
        title += "  [INCOMPLETE trace]"
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.1, right=0.84 if binned else 0.88, top=0.91, bottom=0.08)
    fig.savefig(path)


def _chosen(t, specs) -> dict:
    if not t.probes:
        raise TraceError(f"{t.path}: --states: the trace has no probes (run with --probe)")
    chosen = {}
    for spec in specs:
        layer, _, sel = spec.partition(":")
        if layer not in t.probes:
            raise TraceError(f"{t.path}: --neurons {spec}: population {layer!r} was not probed "
                             f"(probed: {', '.join(t.probes)})")
        ids = t.probes[layer]["node_ids"]
        want = traces.parse_indices(sel, int(ids.max()) + 1, f"--neurons {spec}")
        missing = sorted(set(want.tolist()) - set(ids.tolist()))
        if missing:
            raise TraceError(f"{t.path}: --neurons {spec}: neurons {missing[:5]} of {layer} were "
                             f"not probed")
        chosen[layer] = [int(np.nonzero(ids == w)[0][0]) for w in want]
    return chosen or {k: list(range(min(LINES_PER_POPULATION, len(v["node_ids"]))))
                      for k, v in t.probes.items()}


def draw_states(t, path, sample: int, start: int, stop: int, specs=()) -> None:
    """Probed variables over time: a row of panels per variable, a column per population,
    one line per neuron."""
    chosen = _chosen(t, specs)
    layers = [l for l in t.layers if l in chosen]
    names = {"s": "state s", "v": "decoded input v", "eps": "step size eps",
             "phi": "encoder residue phi"}
    variables = [v for v in traces.PROBE_VARS if any(v in t.probes[k]["vars"] for k in layers)]
    fig = _figure(3.2 + 3.6 * len(layers), 1.2 + 2.0 * len(variables))
    axes = np.array(fig.subplots(len(variables), len(layers), sharex=True, squeeze=False))
    si = t.samples.index(sample)
    for j, layer in enumerate(layers):
        ids = t.probes[layer]["node_ids"]
        axes[0, j].set_title(f"{layer} ({len(ids)} probed, every {t.probes[layer]['every']} "
                             "steps)", fontsize=10)
        for i, var in enumerate(variables):
            ax = axes[i, j]
            if t.layers.index(layer) == 0 and var in ("v", "eps"):
                ax.text(0.5, 0.5, "(the input layer has no decoder or step size)",
                        transform=ax.transAxes, ha="center", va="center", fontsize=8,
                        color="0.4")
            elif var in t.probes[layer]["vars"]:
                steps, vals = t.states(layer, var, start, stop)
                for k, c in enumerate(chosen[layer]):
                    ax.plot(steps, vals[:, si, c], lw=0.9, color=f"C{k % 10}",
                            label=f"neuron {int(ids[c])}")
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            if j == 0:
                ax.set_ylabel(names[var], fontsize=9)
        axes[0, j].legend(fontsize=7, loc="best", frameon=True, framealpha=0.7)
        axes[-1, j].set_xlabel(f"step (1 step = {t.dt:g} ms)", fontsize=9)
    title = f"{t.path.name}: probed variables of sample {sample}"
    fig.suptitle(title + ("" if t.complete else "  [INCOMPLETE trace]"), fontsize=11)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.08, hspace=0.12, wspace=0.18)
    fig.savefig(path)
