"""What a sweep writes into its folder, from the trials of its study:

- ``results.csv`` and ``results.json``: one row per trial (number, state, the objectives, the
  searched values, the seed, the wall time, the worker, the error of a failed trial, whether it
  is on the Pareto front; the JSON adds each trial's full settings, training
  hyper-parameters, every figure measured and the traceback of a failure);
- ``pareto.png``: error against cost (spikes, synaptic events per weight or joules), every
  trial a dot, the Pareto front highlighted, the reference configuration and the spec's
  ``[[mark]]`` points marked (:func:`plot_front`);
- ``best/trial-NNNN/``: the trained netlist of every trial on the front (TOML through
  :func:`neuroemu.describe.save`, arrays in ``.npy`` files beside it) with ``trial.json``;
  a trial that drops off the front loses its folder.

Every file is written atomically (:mod:`neuroemu.files`).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..files import write_text
from .spec import OBJECTIVES

__all__ = ["pareto_mask", "trial_rows", "write_tables", "plot_front", "save_best",
           "prune_best", "best_dir"]

STATES = {"COMPLETE": "complete", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting",
          "PRUNED": "pruned"}
LABELS = {"validation_error": "validation error", "spikes_per_inference": "spikes per inference",
          "syn_events_per_weight": "synaptic events per weight per inference",
          "joules_per_inference": "joules per inference", "wall_seconds": "wall time (s)"}


def pareto_mask(values) -> np.ndarray:
    """True for the rows of ``values`` (n, k) that no other row dominates (another row at
    most as large in every column and smaller in one; all objectives are minimised)."""
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    keep = np.ones(len(v), dtype=bool)
    for i in range(len(v)):
        others = np.delete(v, i, axis=0)
        dominated = np.all(others <= v[i], axis=1) & np.any(others < v[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def trial_rows(study, spec) -> list[dict]:
    """One dict per trial of the study, in trial order, with ``pareto`` set on the
    complete trials no other complete trial dominates."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        row = {"trial": t.number, "state": STATES.get(t.state.name, t.state.name.lower()),
               "pareto": False, "reference": bool(ua.get("reference", False))}
        metrics = ua.get("metrics", {})
        for o in spec.objectives:
            row[o] = t.values[spec.objectives.index(o)] if t.values else None
        row["params"] = dict(t.params)
        row["seed"] = ua.get("config", {}).get("seed")
        row["wall_seconds"] = ua.get("wall_seconds")
        row["worker"] = ua.get("worker")
        row["error"] = ua.get("error")
        if "rerun_of" in ua:
            row["rerun_of"] = ua["rerun_of"]
        row["metrics"] = metrics
        row["config"] = ua.get("config")
        row["hyper"] = ua.get("hyper")
        if ua.get("traceback"):
            row["traceback"] = ua["traceback"]
        rows.append(row)
    done = [r for r in rows if r["state"] == "complete"]
    if done:
        mask = pareto_mask([[r[o] for o in spec.objectives] for r in done])
        for r, m in zip(done, mask):
            r["pareto"] = bool(m)
    return rows


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def write_tables(rows: list[dict], spec, out: Path, extra: dict | None = None) -> None:
    """``results.csv`` (flat: one column per objective and searched field) and
    ``results.json`` (everything)."""
    fields = [p.field for p in spec.params]
    cols = ["trial", "state", *spec.objectives, "pareto", "reference", *fields, "seed",
            "wall_seconds", "worker", "error"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r["params"].get(c) if c in fields else r.get(c)) for c in cols])
    write_text(out / "results.csv", buf.getvalue())
    doc = {"sweep": spec.name, "spec": str(spec.path), "netlist": str(spec.netlist),
           "dataset": spec.dataset, "objectives": list(spec.objectives),
           "objective_meaning": {o: OBJECTIVES[o] for o in spec.objectives},
           "reference_label": spec.reference_label, "marks": list(spec.marks),
           **(extra or {}), "trials": rows, "spec_text": spec.text}
    write_text(out / "results.json", json.dumps(doc, indent=1, default=_json_default,
                                                allow_nan=False) + "\n")


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def best_dir(out: Path, number: int) -> Path:
    return out / "best" / f"trial-{number:04d}"


def save_best(out: Path, spec, number: int, netlist, row: dict) -> Path:
    """The trained netlist of trial ``number`` into ``best/trial-NNNN/`` with ``trial.json``
    (its settings, figures, and the ``neuroemu eval`` line that classifies the validation
    images as the trial did); returns the netlist's path."""
    from ..describe import save
    folder = best_dir(out, number)
    folder.mkdir(parents=True, exist_ok=True)
    values = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                       for k, v in row["params"].items())
    name = f"{spec.base.name}-{spec.name}-trial{number}"
    nl = replace(netlist, name=name, description=f"trial {number} of sweep {spec.name} "
                 f"({spec.path.name}): {values}")
    path = save(nl, folder / f"{name}.toml")
    m = row.get("metrics") or {}
    n_val = (row.get("config") or {}).get("train", {}).get("validation_images")
    split = "validation" if spec.dataset != "digits" else "test"
    cmd = (f"neuroemu eval {path} --dataset {spec.dataset if spec.dataset != 'digits' else 'mnist'}"
           f" --split {split} --steps {m.get('eval_steps')}"
           + (f" --warmup {m['eval_warmup']}" if m.get("eval_warmup") else "")
           + (f" --limit {n_val}" if n_val and spec.dataset != "digits" else ""))
    info = {k: row.get(k) for k in ("trial", "params", "seed", "wall_seconds", "worker",
                                    "config", "hyper", "metrics")}
    info.update({"sweep": spec.name, "spec": str(spec.path), "netlist": path.name,
                 "objectives": {o: row.get(o) for o in spec.objectives}})
    if spec.dataset != "digits":
        info["eval"] = cmd
    write_text(folder / "trial.json", json.dumps(info, indent=1, default=_json_default) + "\n")
    return path


def prune_best(out: Path, keep) -> None:
    """Remove the ``best/trial-NNNN`` folders of trials not in ``keep`` (off the front)."""
    root = out / "best"
    if not root.is_dir():
        return
    names = {best_dir(out, n).name for n in keep}
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("trial-") and d.name not in names:
            shutil.rmtree(d)


def _axis(rows, name):
    return np.array([np.nan if r.get(name) is None else r[name] for r in rows], dtype=float)


def plot_front(rows: list[dict], spec, path=None, *, ax=None):
    """Error (``[plot] y``) against cost (``[plot] x``): every complete trial a dot, the
    Pareto front of the objectives highlighted (those on the front of the two plotted
    objectives joined by a step line), the reference trial and the ``[[mark]]`` points
    marked.  One objective: its value against the trial number.  Returns the figure."""
    from ..learn.plots import figure
    own = ax is None
    fig = figure(7.2, 5.0) if own else ax.figure
    ax = fig.add_subplot() if own else ax
    done = [r for r in rows if r["state"] == "complete"]
    y_name, x_name = spec.plot["y"], spec.plot.get("x")
    yscale = 100.0 if y_name == "validation_error" else 1.0
    ylab = LABELS[y_name] + (" (%)" if yscale == 100.0 else "")
    if x_name is None:
        xs = np.array([r["trial"] for r in done], dtype=float)
        xlab = "trial"
    else:
        xs = _axis(done, x_name)
        xlab = LABELS[x_name]
    ys = _axis(done, y_name) * yscale
    front = np.array([r["pareto"] for r in done], dtype=bool)
    ax.scatter(xs[~front], ys[~front], s=18, color="0.65", label="trials", zorder=2)
    ax.scatter(xs[front], ys[front], s=36, color="tab:red", zorder=3,
               label="Pareto front" + (f" ({len(spec.objectives)} objectives)"
                                       if len(spec.objectives) > 2 else ""))
    if x_name is not None and front.any():
        two = pareto_mask(np.stack([xs, ys], axis=1)) if len(xs) else front
        order = np.argsort(xs[two])
        ax.step(xs[two][order], ys[two][order], where="post", color="tab:red", lw=1.2,
                alpha=0.7, zorder=2)
    for r, x, y in zip(done, xs, ys):
        if r["reference"]:
            ax.scatter([x], [y], s=160, marker="*", color="tab:blue", zorder=4,
                       label=spec.reference_label)
    for i, m in enumerate(spec.marks):
        if y_name in m and (x_name in m if x_name else False):
            ax.scatter([m[x_name]], [m[y_name] * yscale], s=70, marker="D",
                       color=f"C{(i + 2) % 10}", zorder=4, label=m["label"])
    finite = xs[np.isfinite(xs) & (xs > 0)]
    if x_name is not None and len(finite) > 1 and finite.max() / finite.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlab)
    ax.set_ylabel(ylab)
    failed = sum(r["state"] == "failed" for r in rows)
    ax.set_title(f"sweep {spec.name}: {len(done)} trials"
                 + (f" ({failed} failed, not shown)" if failed else "")
                 + f"\n{spec.base.name} on {spec.dataset}", fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(done):
        ax.legend(fontsize=8, loc="best")
    if path is not None:
        fig.savefig(path)
    return fig
