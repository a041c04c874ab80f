"""Throughput of the async bus engine on the 784-500-10 network, in spike packets per second.

The baseline is the lockstep engine on the same inputs and steps, measured in the same run
(its rate counts spikes: each would be one packet on a bus).  Every configuration runs a
free phase and a nudged phase (100 + 50 steps, as in training) on a batch of MNIST test
digits (uniform random inputs if the dataset is not found); the time is the best of
``--repeat`` runs.  Prints one JSON line per result and a table.

    .venv/bin/python benchmarks/bench_async.py [--batch 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neuroemu.engines import compiled as compiler
from neuroemu import engines
from neuroemu import describe
from neuroemu.errors import NeuroemuError

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    # name: (description, hardware table)
    "async_packets": ("bus: jitter 10%, phases, drift 1%, latency 0.1 tick, 2000 pk/tick",
                      {"quanta": 100, "clock": {"jitter": 10, "phase": 50, "drift": 1},
                       "bus": {"latency": 10, "bandwidth": 2000}}),
    "async_packets_ideal": ("shared clock, zero latency, unlimited bandwidth", {}),
    "async_packets_clusters": ("as async_packets, clusters of 100 neurons (14 clocks)",
                               {"quanta": 100, "cluster_size": 100,
                                "clock": {"jitter": 10, "phase": 50, "drift": 1},
                                "bus": {"latency": 10, "bandwidth": 2000}}),
    "async_packets_mesh": ("as async_packets_clusters on a 4x4 mesh, 5 quanta/hop",
                           {"quanta": 100, "cluster_size": 100,
                            "clock": {"jitter": 10, "phase": 50, "drift": 1},
                            "bus": {"topology": "mesh", "latency": 5, "bandwidth": 2000},
                            "mesh": {"width": 4, "height": 4}}),
}


def inputs(batch: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from neuroemu.learn import datasets
        ds = datasets.load("mnist", split="test")
        return ds.images[:batch], np.eye(10)[ds.labels[:batch]], "MNIST test digits"
    except (NeuroemuError, OSError):
        rng = np.random.default_rng(0)
        return rng.random((batch, 784)), np.eye(10)[rng.integers(0, 10, batch)], "uniform random"


def timed(net, x, y, engine_name, repeat, **kw):
    best, sess = float("inf"), None
    for _ in range(repeat):
        sess = engines.session(net, x, engine=engine_name, seed=1, **kw)
        t = time.perf_counter()
        sess.run(100)
        sess.run(50, beta=0.5, target=y)
        best = min(best, time.perf_counter() - t)
    return best, sess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    net = compiler.build(describe.load(ROOT / "neuroemu" / "data" / "netlists" / "mnist-binary.toml"))
    x, y, what = inputs(args.batch)
    # warm-up (numba compile / cache load) on one sample
    engines.session(net, x[:1], engine="lockstep").run(2)
    engines.session(net, x[:1], engine="async").run(2)
    t_lock, lock = timed(net, x, y, "lockstep", args.repeat)
    spikes = int(lock.counters()["spikes"].sum())
    base = spikes / t_lock
    rows = []
    for name, (desc, hw) in CONFIGS.items():
        t, sess = timed(net, x, y, "async", args.repeat, hardware=hw)
        c = sess.counters()
        packets = int(c["packets"].sum())
        rate = packets / t
        rep = sess.bus_report()
        print(json.dumps({"name": name, "value": round(rate), "unit": "packets/s",
                          "baseline": round(base), "ratio": round(rate / base, 4),
                          "config": desc, "clusters": sess.layout.n,
                          "utilisation": round(rep["utilisation"], 4),
                          "late_fraction": round(rep["late_fraction"], 4)}))
        rows.append((name, desc, sess.layout.n, packets, t, rate, rate / base, rep))
    print(f"\n784-500-10 (mnist-binary.toml), {args.batch} {what}, 100 free + 50 nudged steps; "
          f"lockstep baseline {spikes} spikes in {t_lock * 1e3:.1f} ms = {base:.3g} spikes/s")
    print(f"{'config':<24}{'clusters':>9}{'packets':>10}{'time s':>8}{'packets/s':>11}"
          f"{'vs lockstep':>12}{'bus util':>9}{'late':>7}")
    for name, desc, nc, pk, t, rate, ratio, rep in rows:
        print(f"{name:<24}{nc:>9}{pk:>10}{t:>8.3f}{rate:>11.3g}{ratio:>12.3f}"
              f"{rep['utilisation']:>9.3f}{rep['late_fraction']:>7.3f}")
    for name, (desc, _) in CONFIGS.items():
        print(f"  {name}: {desc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
