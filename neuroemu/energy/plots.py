"""Pictures of energy reports: stacked bars of where the energy goes, per profile -- this run,
the same network sending real-valued words every step, and the one-pass quantised ANN baseline
as its own bar (:mod:`neuroemu.energy.ann`) -- and each projection's share
(``neuroemu energy --plot``, :meth:`neuroemu.energy.report.EnergyReport.plot`).
"""

from __future__ import annotations

import numpy as np

from .ann import ANN_KINDS
from .hardware import KINDS

__all__ = ["plot_reports"]

SYN = ("synaptic_op", "synaptic_mac")


def _figure(w, h, dpi=110):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _ann_j(rep) -> dict:
    """The ANN baseline's joules per inference by kind ({} when the profile has none)."""
    return dict((rep.get("ann") or {}).get("by_kind_j", {}))


def _unit(reps) -> tuple[str, float]:
    """The unit of the bars: uJ, unless the largest bar per sample is under 1 uJ."""
    top = max(max(sum(r["by_kind"].values()) / r["batch"],
                  sum(r["real_valued_by_kind"].values()) / r["batch"],
                  sum(_ann_j(r).values())) for r in reps)
    for unit, scale in (("uJ", 1e-6), ("nJ", 1e-9)):
        if top >= scale:
            return unit, scale
    return "pJ", 1e-12


def _colors():
    import matplotlib
    out = dict(zip(KINDS, matplotlib.colormaps["tab20"](np.linspace(0, 1, len(KINDS)))))
    out.update({f"ANN {k}": c for k, c in
                zip(ANN_KINDS, matplotlib.colormaps["Dark2"](np.arange(len(ANN_KINDS))))})
    return out


def _bars(ax, reps, kinds, colors, without_syn=False, unit=("uJ", 1e-6)):
    """Stacked bars per report, per sample: this run, real-valued words, and -- where the
    profile prices it -- the one-pass ANN per inference; the profile's name under each group
    when there are several.  ``without_syn`` leaves the synaptic events and the ANN's MACs
    out, so the smaller kinds show."""
    from matplotlib.transforms import blended_transform_factory
    any_bar, gap = False, 4.0 if any(r.get("ann") for r in reps) else 3.0

    def label(k):
        return k if k not in ax.get_legend_handles_labels()[1] else "_nolegend_"

    for i, rep in enumerate(reps):
        B, x0 = rep["batch"], gap * i
        bottoms = np.zeros(2)
        for k in kinds:
            vals = np.array([rep["by_kind"][k], rep["real_valued_by_kind"][k]]) / B / unit[1]
            if vals.any():
                ax.bar([x0, x0 + 1], vals, 0.6, bottom=bottoms, color=colors[k], label=label(k))
                bottoms += vals
        top = 0.0
        for k, j in _ann_j(rep).items():
            if (without_syn and k == "mac") or not j:
                continue
            ax.bar([x0 + 2], [j / unit[1]], 0.6, bottom=[top], color=colors[f"ANN {k}"],
                   label=label(f"ANN {k}"))
            top += j / unit[1]
        if top > 0:     # the ANN's bar is often too small to see: its height in words
            ax.annotate(f"{top:.3g} {unit[0]}", (x0 + 2, top), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
        any_bar = any_bar or bottoms.any() or top > 0
    if not any_bar:
        ax.text(0.5, 0.5, "nothing else is priced\n(all-in synaptic figure)",
                ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ticks, labels = [], []
    below = blended_transform_factory(ax.transData, ax.transAxes)
    for i, rep in enumerate(reps):
        this = "spikes" if rep["counts"]["synaptic_mac"] == 0 else "words"
        ticks += [gap * i, gap * i + 1]
        labels += [f"{this}\n(this run)", f"{rep['word_bits']}-bit words\nevery step"] \
            if len(reps) == 1 else [f"{this}\nthis run", f"{rep['word_bits']}-bit\nwords"]
        if rep.get("ann"):
            ticks.append(gap * i + 2)
            labels.append(f"{rep['ann']['bits']}-bit ANN\none pass" if len(reps) == 1
                          else f"{rep['ann']['bits']}-bit\nANN")
        if len(reps) > 1:
            mid = gap * i + (1.0 if rep.get("ann") else 0.5)
            ax.text(mid, -0.2, rep["profile"], transform=below, ha="center",
                    va="top", fontsize=9, fontweight="bold")
    right = 2.6 if any(r.get("ann") for r in reps) else 1.6
    ax.set_xlim(-0.6, gap * (len(reps) - 1) + right)
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_ylabel(f"{unit[0]} per sample" + (", without synaptic events / MACs" if without_syn
                                             else ""), fontsize=9)


def _projection_bars(ax, rep, unit):
    """Horizontal bars: each projection's energy per sample (both directions, its weight
    updates), from ``by_projection_total``."""
    items = list(rep.get("by_projection_total", {}).items())
    names = [k for k, _ in items]
    vals = np.array([v for _, v in items]) / rep["batch"] / unit[1]
    ax.barh(np.arange(len(names)), vals, 0.6, color="tab:blue")
    ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{unit[0]} per sample, by projection (synaptic events; weight updates)",
                  fontsize=9)


def _title(rep) -> str:
    steps = ", ".join(f"{k} {v}" for k, v in rep["steps"].items())
    return (f"{rep['network']}: where the energy goes per sample (steps {steps}; "
            f"{rep['mesh']} mesh, {rep['placement']} placement, {rep['routing']})")


def _ratios(rep) -> str:
    r, a = rep["spike_vs_real_ratio"], rep.get("spike_vs_ann_ratio")
    out = f"this run / words = {r:.3f}" if r else "this run / words = n/a"
    return out + (f", inference / ANN = {a:.3g}" if a else "")


def plot_reports(reps, path=None, *, ax=None):
    """Stacked bars of one or more reports (of the same run on several profiles): this run,
    real-valued words every step and the one-pass ANN baseline, by kind.

    Without ``ax``: a new figure, one column per profile and two rows (the bottom one leaves
    the synaptic events and the ANN's MACs out so the smaller kinds show; a graph network has
    a third row, the projections) -- ``neuroemu energy --plot``.  With ``ax``: every report's
    bars side by side in that Axes.  ``path``: also write a PNG.  Returns the figure."""
    data = [r if isinstance(r, dict) else r.to_dict() for r in reps]
    colors = _colors()
    if ax is not None:
        fig = ax.figure
        _bars(ax, data, KINDS, colors, unit=_unit(data))
        ratios = "; ".join(f"{d['profile']} {d['spike_vs_real_ratio']:.3f}" for d in data
                           if d["spike_vs_real_ratio"])
        ax.set_title(f"{data[0]['network']}: this run / words = {ratios}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig
    n, unit = len(data), _unit(data)
    graph = any(d.get("graph") for d in data)   # a third row: the projections
    width = 4.2 * n + 2.4
    fig = _figure(width, 10.6 if graph else 7.4)
    axes = fig.subplots(3 if graph else 2, n, squeeze=False)
    for col, rep in enumerate(data):
        for row, kinds in enumerate((KINDS, [k for k in KINDS if k not in SYN])):
            _bars(axes[row, col], [rep], kinds, colors, without_syn=row == 1, unit=unit)
            if row == 0:
                axes[row, col].set_title(f"{rep['profile']}: {_ratios(rep)}", fontsize=9)
        if graph:
            _projection_bars(axes[2, col], rep, unit)
    handles = {}
    for a in axes[:2].flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [k for k in list(KINDS) + [f"ANN {k}" for k in ANN_KINDS] if k in handles]
    right = 1 - 1.9 / width
    fig.legend([handles[k] for k in order], order, loc="center left", fontsize=8,
               bbox_to_anchor=(right, 0.5))
    fig.suptitle(_title(data[0]), fontsize=10)
    fig.tight_layout(rect=(0, 0, right, 0.96))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
