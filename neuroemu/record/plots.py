"""Pictures of a trace: the spike raster of one sample and the probed variables over time."""

from __future__ import annotations

import math

import numpy as np

from ..errors import TraceError
from .layout import PROBE_VARS, parse_indices

MAX_COLUMNS = 2000       # raster: time bins drawn at most (longer windows are binned)
LINES_PER_POPULATION = 4  # states: neurons drawn per probed population by default


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
        want = parse_indices(sel, int(ids.max()) + 1, f"--neurons {spec}")
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
    variables = [v for v in PROBE_VARS if any(v in t.probes[k]["vars"] for k in layers)]
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
