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
