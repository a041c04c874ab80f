"""Pictures of a trace: the spike raster of one sample and the probed variables over time.

Like every plot function of neuroemu, :func:`raster` and :func:`states` draw into the
matplotlib Axes they are given (``ax``, a notebook's) or into a Figure (``fig``), else into a
new :class:`matplotlib.figure.Figure` (no pyplot state); ``path`` also writes a PNG; both
return the figure.

The raster shows what the pixels can hold.  When a panel has at least one pixel per neuron
and per step, every spike is a mark (a rectangle the size of its cell) at its (time, neuron);
otherwise spikes are counted into bins of whole steps x whole neurons and drawn as a density
image (spikes per neuron and step, ``interpolation="nearest"``) with a colour bar, the bin
size in the title.  Bins are whole steps with edges half-way between steps, so the bus
engine's sub-tick times fall one tick of each cluster per bin (no empty-bin stripes).
"""

from __future__ import annotations

import math
import textwrap
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..errors import TraceError
from .layout import PROBE_VARS, parse_indices

LINES_PER_POPULATION = 4   # states: neurons drawn per probed population by default
SPARSE_PX = 8.0            # states: draw markers when probe records lie this many pixels apart
DPI = 120
VAR_NAMES = {"s": "state s", "v": "decoded input v", "eps": "step size eps",
             "phi": "encoder residue phi"}


def figure(w: float, h: float, dpi: int = DPI):
    """A new Figure with an Agg canvas, outside pyplot (nothing global is kept alive)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _trace(stack: ExitStack, t):
    """A Trace, opening (and later closing) a path."""
    if isinstance(t, (str, Path)):
        from .reader import Trace
        return stack.enter_context(Trace(t))
    return t


def _axes_list(ax, want: int, what: str) -> list:
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != want:
        raise TraceError(f"ax: {what} needs {want} Axes (got {len(axes)})")
    return axes


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _window(t, sample, start, stop, what: str):
    sample = t.samples[0] if sample is None else int(sample)
    if sample not in t.samples:
        raise TraceError(f"{t.path}: {what}: sample {sample} was not recorded (recorded: "
                         f"{', '.join(map(str, t.samples))})")
    start, stop = t.span(start, stop)
    if stop <= start:
        raise TraceError(f"{t.path}: nothing to draw: the window holds no steps (the trace "
                         f"holds steps 1..{t.t_end})")
    return sample, start, stop


# --------------------------------------------------------------------------- raster
def spike_cells(t, pop: str, lo: float, hi: float):
    """Blocks of (x, node ids) of a population's spikes with lo <= x < hi, where x = time / dt
    in steps (whole for lockstep, sub-tick for the bus engine)."""
    a, b = max(1, math.floor(lo)), math.ceil(hi) + 1
    for ts, ids in t.iter_spikes(pop, a, b, as_time=True):
        x = ts / t.dt
        keep = (x >= lo) & (x < hi)
        yield x[keep], ids[keep].astype(np.int64)


def bin_origin(fracs, start: int) -> tuple[float, float]:
    """Where the bins of whole steps begin, ``start - 1 + o`` with ``o`` in [0.5, 1.5) the
    middle of the widest gap between the spikes' sub-tick phases ``fracs`` (x mod 1, on a
    circle), and the width of that gap in steps.  For whole-step times (lockstep) that is
    start - 0.5, half-way between steps; for a bus engine whose ticks stay within a step of
    nominal (jitter and phase offsets, no drift) the edges fall where no cluster ticks, so
    each bin holds one tick of every cluster.  Drifting clocks leave no gap: their bins hold
    one tick more or less of some clusters now and then."""
    f = np.unique(np.mod(np.asarray(fracs, dtype=np.float64), 1.0))
    if f.size == 0:
        return start - 0.5, 1.0
    gaps = np.diff(np.append(f, f[0] + 1.0))   # gap after each phase, the last one wrapping
    k = int(np.argmax(gaps))
    o = (f[k] + gaps[k] / 2) % 1.0
    return start - 1 + (o if o >= 0.5 else o + 1.0), float(gaps[k])


def density(x, ids, n: int, x0: float, steps: int, bin_steps: int, bin_neurons: int):
    """(neuron bins, step bins) image of spikes per neuron and step: bins of ``bin_steps``
    steps from ``x0`` and ``bin_neurons`` neurons from 0 over a window of ``steps`` steps;
    the last bins, cut by the window or the population, are divided by the steps and neurons
    they do cover.  ``x``, ``ids``: one array each, or lists of blocks."""
    rows, cols = math.ceil(n / bin_neurons), math.ceil(steps / bin_steps)
    counts = np.zeros(rows * cols, dtype=np.int64)
    for xb, ib in (zip(x, ids) if isinstance(x, list) else [(x, ids)]):
        col = np.minimum(np.floor((xb - x0) / bin_steps).astype(np.int64), cols - 1)
        counts += np.bincount(np.asarray(ib, np.int64) // bin_neurons * cols + col,
                              minlength=rows * cols)
    width = np.minimum(bin_steps, steps - bin_steps * np.arange(cols))
    height = np.minimum(bin_neurons, n - bin_neurons * np.arange(rows))
    return counts.reshape(rows, cols) / (height[:, None] * width[None, :])


def _panel_pixels(ax) -> tuple[float, float]:
    box = ax.get_window_extent()
    return box.width, box.height


def _cell_marker(w_px: float, h_px: float, dpi: float):
    """A rectangle marker of w x h pixels (less a pixel of gap when cells are large) and its
    scatter size in points^2."""
    from matplotlib.path import Path as MPath
    w = w_px - 1 if w_px >= 3 else w_px
    h = h_px - 1 if h_px >= 3 else h_px
    verts = [(-w, -h), (w, -h), (w, h), (-w, h), (-w, -h)]
    return MPath(verts, closed=True), (max(w, h) * 72.0 / dpi) ** 2


def raster(t, path=None, *, sample=None, start=None, stop=None, layers=None, ax=None,
           fig=None):
    """Spike raster of one sample, one panel per layer (input at the bottom).

    ``t``: a :class:`~neuroemu.record.Trace` or a trace's path.  ``sample``: default the first
    recorded; ``start``/``stop``: the window of steps (default all); ``layers``: the layers to
    draw (default all).  ``ax``: an Axes per layer (top to bottom) to draw into; ``fig``: a
    Figure to add them to; else a new figure.  ``path``: also write a PNG.  Returns the
    figure.

    A panel with a pixel or more per step and per neuron draws one mark per spike; otherwise
    a density image in bins of whole steps (at least 2 pixels wide) x whole neurons (at
    least 1 pixel high), with a colour bar; the title names the bins."""
    with ExitStack() as stack:
        t = _trace(stack, t)
        sample, start, stop = _window(t, sample, start, stop, "raster")
        names = list(t.layers) if layers is None else list(layers)
        bad = [l for l in names if l not in t.layers]
        if bad or not names:
            raise TraceError(f"{t.path}: layers: must name layers of the trace ("
                             f"{', '.join(t.layers)}) (got {', '.join(bad) or 'none'})")
        si = t.samples.index(sample)
        names.sort(key=t.layers.index, reverse=True)
        pops = [t.populations[si * len(t.layers) + t.layers.index(l)] for l in names]
        sizes = [t.info(p)["size"] for p in pops]
        own = ax is None
        if own:
            total = sum(sizes)
            fig = fig if fig is not None else figure(
                12, 1.4 + 7.0 * min(1.0, 0.25 + total / 1500))
            axes = fig.subplots(len(pops), 1, sharex=True, squeeze=False, gridspec_kw={
                "height_ratios": [max(s, 0.08 * total) for s in sizes], "hspace": 0.08,
                "left": 0.09, "right": 0.83, "top": 0.88, "bottom": 0.07})[:, 0]
        else:
            axes = _axes_list(ax, len(pops), f"a raster of {_plural(len(pops), 'layer')}")
            fig = axes[0].figure
        steps = stop - start
        fracs = [np.unique(np.mod(x, 1.0)) for p in pops
                 for x, _ in spike_cells(t, p, start - 1.5, stop + 0.5)]
        x0, gap = bin_origin(np.concatenate(fracs) if fracs else [], start)
        width = min(_panel_pixels(a)[0] for a in axes)
        bin_steps = 1 if steps <= width else math.ceil(2 * steps / max(1.0, width))
        binned = {}
        for a, pop, n in zip(axes, pops, sizes):
            h = _panel_pixels(a)[1]
            bin_neurons = 1 if n <= h else math.ceil(n / max(1.0, h))
            _raster_panel(t, a, pop, n, x0, steps, bin_steps, bin_neurons)
            if bin_steps > 1 or bin_neurons > 1:
                binned.setdefault(bin_neurons, []).append(t.info(pop)["layer"])
        axes[-1].set_xlabel(f"step (1 step = {t.dt:g} ms)")
        what = ["density (spikes per neuron and step) in bins of " + ", ".join(
            f"{_plural(bin_steps, 'step')} x {_plural(bn, 'neuron')} ({', '.join(ls)})"
            for bn, ls in sorted(binned.items()))] if binned else []
        marks = [t.info(p)["layer"] for p, a in zip(pops, axes) if not a.images]
        what += [f"one mark per spike: {', '.join(marks)}"] if marks else []
        lines = [f"{t.path.name}: spike raster of sample {sample}, steps {start}..{stop - 1}"
                 + ("" if t.complete else "  [INCOMPLETE trace]"), "; ".join(what)]
        if any(t.sorting.get(p) == "none" for p in pops):
            bus = "bus engine: spikes at their sub-tick times"
            if binned:
                bus += f"; bins from step {x0:.2f}, " + (
                    "between the clusters' ticks" if gap >= 0.05 else "but the ticks fill "
                    "the whole step (drifting clocks): a bin may hold one tick more or less of "
                    "a cluster")
            lines.append(bus)
        box = (fig if own else axes[0]).bbox.width   # pixels; ~1 character per 10 (8)
        chars = max(40, int(box / (10 if own else 6.5)))
        title = "\n".join(textwrap.fill(l, chars) for l in lines)
        if own:
            fig.suptitle(title, fontsize=10)
        else:
            axes[0].set_title(title, fontsize=8)
        if path is not None:
            fig.savefig(path)
        return fig


def _raster_panel(t, ax, pop, n, x0, steps, bin_steps, bin_neurons):
    blocks = list(spike_cells(t, pop, x0, x0 + steps)) if bin_steps == bin_neurons == 1 \
        else spike_cells(t, pop, x0, x0 + steps)
    layer = t.info(pop)["layer"]
    if bin_steps == 1 and bin_neurons == 1:
        x = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(0)
        ids = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int64)
        w_px, h_px = _panel_pixels(ax)
        marker, size = _cell_marker(w_px / steps, h_px / n, ax.figure.dpi)
        ax.scatter(x, ids, s=size, marker=marker, c="k", linewidths=0, antialiased=False)
        note, spikes = "one mark per spike", len(ids)
    else:
        cols_ = list(zip(*blocks))      # (a generator is always true: test what it gave)
        xs, ids = cols_ if cols_ else ([], [])
        img = density(list(xs), list(ids), n, x0, steps, bin_steps, bin_neurons)
        rows, cols = img.shape
        im = ax.imshow(img, aspect="auto", origin="lower", cmap="Greys", vmin=0,
                       vmax=max(float(img.max()), 1e-12), interpolation="nearest",
                       extent=(x0, x0 + cols * bin_steps, -0.5, -0.5 + rows * bin_neurons))
        cb = ax.figure.colorbar(im, cax=ax.inset_axes([1.005, 0.0, 0.012, 1.0]))
        cb.ax.tick_params(labelsize=7)
        note = f"bins {bin_steps} x {bin_neurons}"
        spikes = sum(len(i) for i in ids)
    ax.set_xlim(x0, x0 + steps)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_ylabel(f"{layer}\nneuron", rotation=0, ha="right", va="center", fontsize=9)
    ax.set_yticks([0, n - 1] if n > 1 else [0])
    ax.tick_params(labelsize=8)
    rate = spikes / max(1, n * steps)
    ax.annotate(f"{n} neurons\n{spikes} spikes\nrate {rate:.3f}/step\n{note}",
                xy=(1.0, 0.5), xycoords="axes fraction", xytext=(42, 0),
                textcoords="offset points", fontsize=7.5, va="center")


# --------------------------------------------------------------------------- states
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
        want = parse_indices(sel, int(ids.max()) + 1, f"--neurons {spec}")
        missing = sorted(set(want.tolist()) - set(ids.tolist()))
        if missing:
            raise TraceError(f"{t.path}: --neurons {spec}: neurons {missing[:5]} of {layer} were "
                             f"not probed")
        chosen[layer] = [int(np.nonzero(ids == w)[0][0]) for w in want]
    return chosen or {k: list(range(min(LINES_PER_POPULATION, len(v["node_ids"]))))
                      for k, v in t.probes.items()}


def states(t, path=None, *, sample=None, start=None, stop=None, neurons=(), variables=None,
           ax=None, fig=None):
    """Probed variables over time: a row of panels per variable, a column per population,
    one line per neuron (with markers where the records are sparse), a legend per column
    below it.

    ``neurons``: specs like ``"hidden:0-3"`` (default the first 4 probed of each population);
    ``variables``: some of s, v, eps, phi (default those recorded).  ``ax``: Axes to draw
    into, (variables x populations) of them, or one for one variable of one population;
    ``fig``: a Figure to add them to; else a new figure.  ``path``: also write a PNG.
    Returns the figure."""
    with ExitStack() as stack:
        t = _trace(stack, t)
        sample, start, stop = _window(t, sample, start, stop, "states")
        chosen = _chosen(t, neurons)
        layers = [l for l in t.layers if l in chosen]
        recorded = [v for v in PROBE_VARS if any(v in t.probes[k]["vars"] for k in layers)]
        if variables is None:
            variables = recorded
        bad = [v for v in variables if v not in recorded]
        if bad or not variables:
            raise TraceError(f"{t.path}: variables: must be some of the probed "
                             f"{', '.join(recorded)} (got {', '.join(bad) or 'none'})")
        variables = [v for v in PROBE_VARS if v in variables]
        own = ax is None
        shape = (len(variables), len(layers))
        if own:
            h = 1.0 + 1.9 * len(variables) + 0.9
            fig = fig if fig is not None else figure(3.2 + 3.6 * len(layers), h)
            axes = np.array(fig.subplots(*shape, sharex=True, squeeze=False, gridspec_kw={
                "left": 0.08 if len(layers) > 1 else 0.13, "right": 0.98,
                "top": 1 - 0.75 / h, "bottom": 1.2 / h, "hspace": 0.12, "wspace": 0.2}))
        else:
            axes = np.array(_axes_list(ax, shape[0] * shape[1],
                                       f"{_plural(shape[0], 'variable')} of "
                                       f"{_plural(shape[1], 'population')}"),
                            dtype=object).reshape(shape)
            fig = axes[0, 0].figure
        si = t.samples.index(sample)
        for j, layer in enumerate(layers):
            _states_column(t, axes[:, j], layer, variables, chosen[layer], si, start, stop,
                           first=j == 0)
        title = f"{t.path.name}: probed variables of sample {sample}, steps {start}..{stop - 1}"
        title += "" if t.complete else "  [INCOMPLETE trace]"
        if own:
            fig.suptitle(title, fontsize=11)
        if path is not None:
            fig.savefig(path)
        return fig


def _states_column(t, axes, layer, variables, chosen, si, start, stop, first):
    ids = t.probes[layer]["node_ids"]
    every = t.probes[layer]["every"]
    axes[0].set_title(f"{layer} ({len(ids)} probed, every {_plural(every, 'step')})",
                      fontsize=10)
    width = axes[0].get_window_extent().width
    pad = 0.015 * (stop - start)
    for ax, var in zip(axes, variables):
        ax.set_xlim(start - 0.5 - pad, stop - 0.5 + pad)
        if t.layers.index(layer) == 0 and var in ("v", "eps"):
            ax.text(0.5, 0.5, "(the input layer has no decoder or step size)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.4")
        elif var in t.probes[layer]["vars"]:
            steps, vals = t.states(layer, var, start, stop)
            sparse = len(steps) < 2 or width / len(steps) >= SPARSE_PX
            for k, c in enumerate(chosen):   # the first lines wider: equal values show
                up = len(chosen) - 1 - k
                ax.plot(steps, vals[:, si, c], lw=0.9 + 0.3 * min(up, 4), color=f"C{k % 10}",
                        marker="o" if sparse else None, ms=3 + min(up, 4),
                        label=f"neuron {int(ids[c])}")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if first:
            ax.set_ylabel(VAR_NAMES[var], fontsize=9)
    axes[-1].set_xlabel(f"step (1 step = {t.dt:g} ms)", fontsize=9)
    handles, labels = next(((h, l) for h, l in (a.get_legend_handles_labels() for a in axes)
                            if h), ([], []))
    if handles:   # below the column, outside the data
        axes[-1].legend(handles, labels, fontsize=7, loc="upper center", frameon=False,
                        bbox_to_anchor=(0.5, -0.28),
                        ncol=max(1, min(4, len(handles), int(width // 90))))
