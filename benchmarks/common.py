"""Helpers shared by the benchmark scripts: timing and the JSON-line / table output."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

# Single-threaded BLAS for NumPy baselines, unless the caller chose otherwise.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")


def best_of(fn, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Report:
    def __init__(self, title: str):
        self.title = title
        self.rows = []

    def add(self, name: str, value: float, unit: str, baseline: float | None = None,
            ratio: float | None = None, **extra) -> None:
        row = {"name": name, "value": round(value, 3), "unit": unit,
               "baseline": None if baseline is None else round(baseline, 3),
               "ratio": None if ratio is None else round(ratio, 2), **extra}
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    def table(self) -> None:
        print(f"\n{self.title}", file=sys.stderr)
        print(f"{'name':<36}{'value':>14} {'unit':<10}{'baseline':>14}{'ratio':>8}",
              file=sys.stderr)
        for r in self.rows:
            base = "" if r["baseline"] is None else f"{r['baseline']:.3f}"
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"{r['name']:<36}{r['value']:>14.3f} {r['unit']:<10}{base:>14}{ratio:>8}",
                  file=sys.stderr)


def osa_neuron_step(s, v, u, b, osa, lam, nu, reg, first, nudge=None):
    """One step of the paper's neuron in plain NumPy, in place (the baselines' version of the
    kernels' update, docs/model.md section 3): predictive decoder ``v`` of the delivered input
    ``u`` (float32), drive ``a = rho'(s) (v + b) [+ nudge]``, the OSA step size from the
    statistics ``osa = (theta, beta, delta, lambda)`` with the shared ``nu``, and the clipped
    state.  ``first``: the sample's first step (step size 1)."""
    import numpy as np
    th, gb, gd, gl = osa
    v[:] = (1.0 - lam) * v + lam * u.astype(np.float64)
    a = ((s >= 0.0) & (s <= 1.0)) * (v + b)
    if nudge is not None:
        a = a + nudge
    err = a - th
    gb[:] = (1.0 - nu) * gb + nu * err
    gd[:] = (1.0 - nu) * gd + nu * err * err
    if first:
        eps = np.ones_like(a)
    else:
        var = (gd - gb * gb) / (1.0 + gl)
        eps = 1.0 - (var + reg) / (gd + reg)
    gl[:] = (1.0 - eps) ** 2 * gl + eps ** 2
    th[:] = (1.0 - eps) * th + eps * a
    s[:] = np.clip((1.0 - eps) * s + eps * a, 0.0, 1.0)
