"""Pictures of training: the learning curve (running and validation error per epoch, the
test error and the paper's training error after training).

Like every plot function of neuroemu, :func:`plot_learning_curve` draws into a matplotlib Axes
when given one (a notebook's), else into a new :class:`matplotlib.figure.Figure` (no pyplot
state), optionally writes a PNG, and returns the figure.
"""

from __future__ import annotations

# The paper's official-test errors in % (docs/model.md section 4), by (network kind, dataset).
PAPER_TEST_ERROR = {("binary", "mnist"): 2.37, ("continuous", "mnist"): 2.51,
                    ("binary-deep", "mnist"): 3.65, ("continuous-deep", "mnist"): 2.42}

# Error ticks (%) on the log axis, kept to those within the data's range.
_TICKS = (0.1, 0.2, 0.3, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90,
          100)


def figure(w: float, h: float, dpi: int = 110):
    """A new Figure with an Agg canvas, outside pyplot (nothing global is kept alive)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _running(rec: dict):
    """The running error of a record (``train_error`` in histories written before the
    running error had its own name)."""
    return rec.get("running_error", rec.get("train_error"))


def plot_learning_curve(history: list, path=None, title: str = "", paper: float | None = None,
                        *, ax=None, val_label: str | None = None, test_label: str | None = None):
    """Running and validation error per epoch (log scale), the test error as a star and the
    paper's training error (the training images after training) as a diamond where a record
    has them, and optionally the paper's test error (``paper``, in %) as a dotted line.

    ``history``: the records of :func:`neuroemu.train` / ``neuroemu train`` (dicts with
    ``epoch``, ``running_error`` -- or ``train_error`` in older histories --, ``val_error``,
    optionally ``test_error`` and ``train_error_after``; errors as fractions, a missing or
    None one is left out).  ``val_label`` / ``test_label``: what the validation and test
    images are (the legend's default says only that they were held out / are the test set).
    ``ax``: draw into this Axes; else a new figure.  ``path``: also write a PNG.  Returns
    the figure."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
    own = ax is None
    fig = figure(7, 4.4) if own else ax.figure
    ax = fig.add_subplot() if own else ax
    ep = [h["epoch"] for h in history]
    run = [(h["epoch"], 100 * _running(h)) for h in history if _running(h) is not None]
    if run:
        ax.plot(*zip(*run), "o-", ms=4,
                label="running error (each minibatch's free phase, before its update)")
    val = [(h["epoch"], 100 * h["val_error"]) for h in history if h.get("val_error") is not None]
    if val:
        ax.plot(*zip(*val), "s-", ms=4,
                label=val_label or "validation error (images held out of the training set)")
    for h in history:
        if h.get("test_error") is not None:
            ax.plot([h["epoch"]], [100 * h["test_error"]], "r*", ms=13,
                    label=f"{test_label or 'test error'} after epoch {h['epoch']}: "
                          f"{100 * h['test_error']:.2f}%")
        if h.get("train_error_after") is not None:
            ax.plot([h["epoch"]], [100 * h["train_error_after"]], "D", color="tab:purple",
                    ms=8, label=f"train error (the paper's: training images after training) "
                                f"after epoch {h['epoch']}: {100 * h['train_error_after']:.2f}%")
    if paper is not None:
        ax.axhline(paper, color="k", ls=":", lw=1, label=f"paper's test error ({paper}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("classification error (%, log scale)")
    ax.set_yscale("log")
    vals = [100 * v for h in history
            for v in (_running(h), h.get("val_error"), h.get("test_error"),
                      h.get("train_error_after")) if v] + ([paper] if paper else [])
    if vals:
        lo, hi = min(vals), max(vals)
        ticks = [t for t in _TICKS if lo / 1.3 <= t <= hi * 1.3]
        if ticks:
            ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if ep and len(ep) <= 12:   # a short run: a tick at every epoch, none between
        ax.set_xticks(ep)
        ax.set_xlim(min(ep) - 0.5, max(ep) + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5)
    if own:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def plot_error_curve(points: list, path=None, title: str = "", *, ax=None):
    """Error (%) against spikes per sample of :func:`neuroemu.learn.evaluate.error_curve`'s
    points, each labelled with its number of steps; both axes log-scaled.  Draws into
    ``ax`` if given, writes ``path`` if given, returns the figure."""
    own = ax is None
    fig = figure(6.0, 4.0) if own else ax.figure
    ax = fig.add_subplot(1, 1, 1) if own else ax
    xs = [p["spikes_per_sample"] for p in points]
    ys = [max(100.0 * p["error"], 1e-2) for p in points]
    ax.plot(xs, ys, "o-", color="C0")
    for i, (p, xv, yv) in enumerate(zip(points, xs, ys)):    # labels alternately above/below
        ax.annotate(str(p["steps"]), (xv, yv), textcoords="offset points", ha="center",
                    xytext=(0, 6 if i % 2 == 0 else -12), fontsize=8)
    ax.set_yscale("log")
    ax.set_xscale("log")
    ticks = [t for t in _TICKS if min(ys) / 1.5 <= t <= max(ys) * 1.5] or [min(ys)]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel("spikes per sample (all populations; log scale)")
    ax.set_ylabel("error (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.text(0.99, 0.98, "labels: free-phase steps", transform=ax.transAxes, ha="right",
            va="top", fontsize=8, color="0.4")
    if title:
        ax.set_title(title, fontsize=10)
    if own:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
