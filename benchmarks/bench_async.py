"""Throughput of the async bus engine in packets per second, against lockstep and simpy.

Every neuron its own circuit (``cluster_size = 1``) on the trained 784-500-10
(mnist-binary-trained, MNIST test digits; uniform random inputs if the dataset is not
found) and on the Fig. 2 network (fig2: 500-500-10, predictive coding and OSA, inputs
uniform in [0, 1]), with jittered, drifting, phase-offset clocks, latency and finite
bandwidth, on one bus and on a 4x4 mesh (circuits in contiguous blocks on the 16 cores);
and, on 784-500-10, the large clusters of the earlier benchmark (one per layer, 100
neurons; the first ones with a tick of 100 quanta as before).

In the same run: the lockstep engine on the same inputs and steps (its rate counts spikes:
each would be one packet on a bus) and the bus engine as first written, in simpy
(:class:`neuroemu.engines.asyncsimpy.SimpySession`, the event loop's reference), on the
same settings -- on ``--simpy-batch`` samples and a tenth of the steps when circuits are
single neurons, as it runs at thousands of packets per second there.  Every configuration
runs a free phase and a nudged phase (100 + 50 steps, as in training); times are the best of
``--repeat`` runs.  Prints one JSON line per result and a table (ratios, not assertions:
the machine may be shared).

    .venv/bin/python benchmarks/bench_async.py [--batch 20] [--repeat 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neuroemu import describe, engines
from neuroemu.engines import compiled as compiler
from neuroemu.engines.asyncsimpy import SimpySession
from neuroemu.errors import NeuroemuError

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = ROOT / "neuroemu" / "data" / "netlists"

# one tick = 1000 quanta: jitter 10 % of a tick, phase offsets up to half a tick, 1 % drift
CLOCKS = {"jitter": 100, "phase": 500, "drift": 10}
CONFIGS = {
    # name: (network, description, hardware table); "placement": "blocks" is made per net
    "cs1_bus": ("one circuit per neuron; bus: jitter 0.1 tick, phases, 1% drift, latency "
                "0.1 tick, 2000 packets/tick",
                {"quanta": 1000, "cluster_size": 1, "clock": CLOCKS,
                 "bus": {"latency": 100, "bandwidth": 2000}}),
    "cs1_mesh": ("one circuit per neuron; 4x4 mesh (blocks of circuits per core): as cs1_bus, "
                 "50 quanta/hop, 2000 packets/tick per router",
                 {"quanta": 1000, "cluster_size": 1, "clock": CLOCKS,
                  "bus": {"topology": "mesh", "latency": 50, "bandwidth": 2000},
                  "mesh": {"width": 4, "height": 4, "placement": "blocks"}}),
    "layer_bus": ("one cluster per layer; bus: jitter 0.1 tick, phases, 1% drift, latency 0.1 "
                  "tick, 2000 packets/tick (tick = 100 quanta)",
                  {"quanta": 100, "clock": {"jitter": 10, "phase": 50, "drift": 1},
                   "bus": {"latency": 10, "bandwidth": 2000}}),
    "cs100_bus": ("as layer_bus, clusters of 100 neurons",
                  {"quanta": 100, "cluster_size": 100,
                   "clock": {"jitter": 10, "phase": 50, "drift": 1},
                   "bus": {"latency": 10, "bandwidth": 2000}}),
    "cs100_mesh": ("as cs100_bus on a 4x4 mesh, 5 quanta/hop",
                   {"quanta": 100, "cluster_size": 100,
                    "clock": {"jitter": 10, "phase": 50, "drift": 1},
                    "bus": {"topology": "mesh", "latency": 5, "bandwidth": 2000},
                    "mesh": {"width": 4, "height": 4}}),
}
RUNS = [("mnist", "cs1_bus"), ("mnist", "cs1_mesh"), ("fig2", "cs1_bus"), ("fig2", "cs1_mesh"),
        ("mnist", "layer_bus"), ("mnist", "cs100_bus"), ("mnist", "cs100_mesh")]


def network(name: str, batch: int):
    if name == "fig2":
        net = compiler.build(describe.load(NETLISTS / "fig2.toml"))
        rng = np.random.default_rng(0)
        return net, rng.random((batch, net.n_in)), np.eye(10)[rng.integers(0, 10, batch)], \
            "fig2 (500-500-10), inputs uniform in [0, 1]"
    net = compiler.build(describe.load(NETLISTS / "mnist-binary-trained.h5"))
    try:
        from neuroemu.learn import datasets
        ds = datasets.load("mnist", split="test")
        return net, ds.images[:batch], np.eye(10)[ds.labels[:batch]], \
            "mnist-binary-trained (784-500-10), MNIST test digits"
    except (NeuroemuError, OSError):
        rng = np.random.default_rng(0)
        return net, rng.random((batch, 784)), np.eye(10)[rng.integers(0, 10, batch)], \
            "mnist-binary-trained (784-500-10), uniform random inputs"


def hardware(table: dict, net) -> dict:
    hw = json.loads(json.dumps(table))
    mesh = hw.get("mesh", {})
    if mesh.get("placement") == "blocks":
        C = int(sum(net.sizes)) if hw.get("cluster_size") == 1 else None
        w, h = mesh["width"], mesh["height"]
        mesh["placement"] = [[c % w, c // w] for c in (i * w * h // C for i in range(C))]
    return hw


def timed(make, repeat: int, free: int, nudged: int, y) -> tuple[float, object]:
    best, sess = float("inf"), None
    for _ in range(repeat):
        sess = make()
        t = time.perf_counter()
        sess.run(free)
        sess.run(nudged, beta=0.5, target=y)
        best = min(best, time.perf_counter() - t)
    return best, sess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="for lockstep and the bus engine")
    ap.add_argument("--simpy-batch", type=int, default=2)
    ap.add_argument("--only", default="", help="runs whose name contains this text")
    args = ap.parse_args()
    rows, lock = [], {}
    for netname, cfg in RUNS:
        name = f"{netname}_{cfg}"
        if args.only not in name:
            continue
        desc, table = CONFIGS[cfg]
        net, x, y, what = network(netname, args.batch)
        hw = hardware(table, net)
        if netname not in lock:       # the lockstep baseline of this network (after warm-up)
            engines.session(net, x[:1], engine="lockstep").run(2)
            t, s = timed(lambda: engines.session(net, x, engine="lockstep", seed=1,
                                                 threads=args.threads),
                         args.repeat, 100, 50, y)
            lock[netname] = int(s.counters()["spikes"].sum()) / t
        engines.session(net, x[:1], engine="async", hardware=hw).run(2)    # compile / load
        t, s = timed(lambda: engines.session(net, x, engine="async", seed=1, hardware=hw,
                                             threads=args.threads), args.repeat, 100, 50, y)
        packets, rep = int(s.counters()["packets"].sum()), s.bus_report()
        rate = packets / t
        # the simpy engine: fewer samples and steps where it is slow (its rate is per packet)
        small = hw.get("cluster_size") == 1
        nb, fr, nu = (args.simpy_batch, 10, 5) if small else (args.batch, 100, 50)
        ts, ss = timed(lambda: SimpySession(net, x[:nb], seed=1, hardware=hw), 1, fr, nu,
                       y[:nb])
        simpy_rate = int(ss.counters()["packets"].sum()) / ts
        row = {"name": name, "value": round(rate), "unit": "packets/s",
               "lockstep_spikes_per_s": round(lock[netname]),
               "ratio_to_lockstep": round(rate / lock[netname], 4),
               "simpy_packets_per_s": round(simpy_rate),
               "ratio_to_simpy": round(rate / simpy_rate, 1), "clusters": s.layout.n,
               "packets": packets, "seconds": round(t, 3), "threads": args.threads,
               "utilisation": round(rep["utilisation"], 4),
               "late_fraction": round(rep["late_fraction"], 4), "network": what,
               "config": desc}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"\n{args.batch} samples, 100 free + 50 nudged steps, best of {args.repeat}, "
          f"{args.threads} thread(s); simpy: {args.simpy_batch} samples x 15 steps with one "
          "circuit per neuron, else the same run")
    print(f"{'run':<18}{'clusters':>9}{'packets':>10}{'time s':>8}{'packets/s':>11}"
          f"{'lockstep/s':>12}{'x lockstep':>11}{'simpy/s':>10}{'x simpy':>9}{'util':>7}"
          f"{'late':>7}")
    for r in rows:
        print(f"{r['name']:<18}{r['clusters']:>9}{r['packets']:>10}{r['seconds']:>8.3f}"
              f"{r['value']:>11.3g}{r['lockstep_spikes_per_s']:>12.3g}"
              f"{r['ratio_to_lockstep']:>11.3f}{r['simpy_packets_per_s']:>10.3g}"
              f"{r['ratio_to_simpy']:>9.0f}{r['utilisation']:>7.3f}{r['late_fraction']:>7.3f}")
    for cfg, (desc, _) in CONFIGS.items():
        print(f"  {cfg}: {desc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
