"""Networks and hardware settings on which the bus engine's outputs are pinned.

``tests/data/async_golden.json`` holds, for every case, SHA-256 digests of everything a run
returns -- each phase's spikes, states, v/eps/phi records, tick times and counters (the bus's
included), the totals, the final states and the bus report -- as the simpy implementation of
the bus engine computed them (the one that shipped before the event loop; it is kept as
``neuroemu.engines.asyncsimpy``).  ``tests/test_async_golden.py`` requires the engine to give
the same digests.  Regenerate (only when the semantics change on purpose, and say why in
the commit) with

    .venv/bin/python tests/async_cases.py --engine async-simpy --write tests/data/async_golden.json

Cases: chains (sigma-delta, predictive + OSA, stochastic, continuous) and graphs (conv with
stride and padding, pools, sparse, one-to-one, skips, lateral, recurrent, IF/LIF, several
inputs and outputs) under circuit clusters of 1, 2, 3 and one per population; shared,
jittered, drifting and phase-offset clocks; latency below, at and above a tick; unlimited,
finite and overloaded bandwidth with 1 to 3 channels; a bus and meshes with default,
wrapped and scattered placements; two seeds; plus the trained 784-500-10 and the Fig. 2
network with one circuit per neuron.  Every case runs three phases: free (25 steps), nudged
(15, beta 0.5) and free again with records every 3 steps, so packets in flight and queues
cross phase switches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import NETLISTS, build, make_netlist  # noqa: E402
from neuroemu import describe, engines  # noqa: E402

GOLDEN = HERE / "data" / "async_golden.json"

SD = {"encoder": "sigma_delta", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}
SD_PRED_OSA = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "scheduled", "lam0": 0.39, "eta": 0.45},
               "eps": {"kind": "osa", "nu_bar": 0.108, "reg": 1e-7}}
STOCH = {"encoder": "stochastic", "predictive": True, "decoder": "predictive",
         "lam": {"kind": "constant", "value": 0.5}, "eps": {"kind": "constant", "eps0": 0.3}}
CONT = {"encoder": "none", "predictive": False, "decoder": "identity",
        "eps": {"kind": "constant", "eps0": 0.5}}

CHAINS = {"sigma_delta": ([7, 6, 5, 3], SD, dict(seed=1, bias=0.05, gain=2.0)),
          "sd_pred_osa": ([6, 5, 3], SD_PRED_OSA, dict(seed=2, gain=2.0)),
          "stochastic": ([6, 5, 4, 2], STOCH, dict(seed=3, gain=2.0)),
          "continuous": ([5, 4, 3], CONT, dict(seed=4, bias=0.1))}
GRAPHS = ("conv", "mixed", "feedback", "predictive", "continuous")


def _wrapped(w, h):
    return lambda C: [[i % w, (i // w) % h] for i in range(C)]


def _scattered(w, h):
    return lambda C: [[(7 * i) % (w * h) % w, (7 * i) % (w * h) // w] for i in range(C)]


def _square():
    return lambda C: None          # default placement on a mesh just large enough


# name -> hardware table; a mesh's "placement" may be a function of the cluster count
HARDWARE = {
    "default": {},
    "cs1": {"cluster_size": 1},
    "cs2_jitter": {"cluster_size": 2, "clock": {"jitter": 20}},
    "cs3_clocks_latency": {"cluster_size": 3, "clock": {"jitter": 30, "drift": 8, "phase": 60},
                           "bus": {"latency": 40}},
    "cs2_latency_tick": {"cluster_size": 2, "bus": {"latency": 100}},
    "cs1_latency_150_phase": {"cluster_size": 1, "clock": {"phase": 50},
                              "bus": {"latency": 150}},
    "cs2_bandwidth": {"cluster_size": 2, "clock": {"jitter": 10},
                      "bus": {"latency": 20, "bandwidth": 6, "channels": 2}},
    "cs1_overloaded": {"cluster_size": 1, "clock": {"phase": 30, "jitter": 5},
                       "bus": {"bandwidth": 2}},
    "cs0_bandwidth_clocks": {"clock": {"jitter": 10, "phase": 50, "drift": 1},
                             "bus": {"latency": 10, "bandwidth": 20}},
    "cs1_channels3": {"cluster_size": 1, "clock": {"jitter": 30, "drift": 8, "phase": 60},
                      "bus": {"latency": 40, "bandwidth": 3, "channels": 3}},
    "quanta7": {"quanta": 7, "cluster_size": 3, "clock": {"jitter": 1, "drift": 1},
                "bus": {"latency": 3, "bandwidth": 5}},
    "shared_finite": {"cluster_size": 2, "bus": {"latency": 30, "bandwidth": 4, "channels": 2}},
    "mesh_default": {"cluster_size": 3, "clock": {"phase": 30},
                     "bus": {"topology": "mesh", "latency": 30, "bandwidth": 8},
                     "mesh": {"placement": _square()}},
    "mesh_wrapped": {"cluster_size": 1, "clock": {"jitter": 20, "drift": 3},
                     "bus": {"topology": "mesh", "latency": 5, "bandwidth": 4, "channels": 2},
                     "mesh": {"width": 3, "height": 2, "placement": _wrapped(3, 2)}},
    "mesh_scattered": {"cluster_size": 2, "clock": {"jitter": 15, "phase": 20},
                       "bus": {"topology": "mesh", "latency": 25},
                       "mesh": {"width": 4, "height": 4, "placement": _scattered(4, 4)}},
    "mesh_shared": {"cluster_size": 2, "bus": {"topology": "mesh", "latency": 7,
                                               "bandwidth": 3},
                    "mesh": {"width": 4, "height": 4, "placement": _wrapped(4, 4)}},
}

# the benchmark's settings with one circuit per neuron, on the two large networks
BIG_HARDWARE = {
    "bus_cs1": {"quanta": 100, "cluster_size": 1,
                "clock": {"jitter": 10, "phase": 50, "drift": 1},
                "bus": {"latency": 10, "bandwidth": 2000}},
    "mesh_cs1": {"quanta": 100, "cluster_size": 1,
                 "clock": {"jitter": 10, "phase": 50, "drift": 1},
                 "bus": {"topology": "mesh", "latency": 5, "bandwidth": 400},
                 "mesh": {"width": 4, "height": 4, "placement": "blocks"}},
    "ideal_cs1": {"cluster_size": 1},
}

SEEDS = (0, 7)


def clusters(cn, cluster_size: int) -> int:
    return sum(math.ceil(int(s) / (cluster_size or int(s))) for s in cn.sizes)


def hardware(name: str, cn, table=None) -> dict:
    """The hardware table of a case, with its placement made for the network's clusters."""
    hw = _resolve(table if table is not None else HARDWARE[name])
    if "mesh" in hw:
        C = clusters(cn, hw.get("cluster_size", 0))
        pl = hw["mesh"].get("placement")
        if pl == "blocks":             # contiguous blocks of clusters on the 16 cores
            w, h = hw["mesh"]["width"], hw["mesh"]["height"]
            core = [i * w * h // C for i in range(C)]
            hw["mesh"]["placement"] = [[c % w, c // w] for c in core]
        elif callable(pl):
            got = pl(C)
            if got is None:
                side = math.ceil(math.sqrt(C))
                hw["mesh"] = {"width": side, "height": side}
            else:
                hw["mesh"]["placement"] = got
    return hw


def _resolve(table):
    if isinstance(table, dict):
        return {k: _resolve(v) for k, v in table.items()}
    return table


def network(name: str):
    """(compiled network, inputs x, targets y) of a case's network, for batch 2 and seed 0."""
    rng = np.random.default_rng(0)
    if name in CHAINS:
        sizes, neuron, kw = CHAINS[name]
        cn = build(make_netlist(sizes, neuron, **kw))
        x = rng.random((2, sizes[0])) * 1.2 - 0.1
        y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 2)]
        return cn, x, y
    if name == "tiny":
        cn = build(describe.load(NETLISTS / "tiny.toml"))
        x = rng.random((2, cn.n_in)) * 1.2 - 0.1
        return cn, x, np.eye(cn.n_out)[[0, cn.n_out - 1]]
    if name.startswith("g_"):
        from test_graph_reference import NETWORKS, inputs, targets
        raw = NETWORKS[name[2:]]()
        return build(describe.from_dict(raw, path="<test>")), inputs(raw, 2, 11), \
            targets(raw, 2, 11)
    file = {"mnist_trained": "mnist-binary-trained.h5", "fig2": "fig2.toml"}[name]
    cn = build(describe.load(NETLISTS / file))
    x = rng.random((1, cn.n_in)) * (rng.random((1, cn.n_in)) < 0.25)
    return cn, x, np.eye(cn.n_out)[[3]]


def cases() -> list[tuple[str, str, int]]:
    """(network, hardware, seed) of every case."""
    out = []
    for net in ["tiny", *CHAINS, *(f"g_{g}" for g in GRAPHS)]:
        for hw in HARDWARE:
            for seed in SEEDS:
                out.append((net, hw, seed))
    for net in ("mnist_trained", "fig2"):
        for hw in BIG_HARDWARE:
            out.append((net, hw, 3))
    return out


def case_id(net: str, hw: str, seed: int) -> str:
    return f"{net}/{hw}/{seed}"


def _digest(a) -> str:
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:24]


def run_case(net: str, hw: str, seed: int, engine: str = "async") -> dict:
    """Digests of everything a run of the case returns (see the module docstring)."""
    cn, x, y = network(net)
    table = BIG_HARDWARE[hw] if net in ("mnist_trained", "fig2") else HARDWARE[hw]
    sess = engines.session(cn, x, engine=engine, seed=seed, hardware=hardware(hw, cn, table))
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    phases = [sess.run(25, name="free", **rec),
              sess.run(15, beta=0.5, target=y, name="nudged", **rec),
              sess.run(10, name="again", record_spikes=True, every=3)]
    out = {}
    for i, ph in enumerate(phases):
        out[f"p{i}.t"] = [ph.t_start, ph.steps]
        for key in ("spikes", "states", "extra", "tick_times"):
            v = getattr(ph, key, None)
            if v is not None:
                out[f"p{i}.{key}"] = _digest(v)
        for k in sorted(ph.counters):
            out[f"p{i}.c.{k}"] = _digest(ph.counters[k])
    for k, v in sorted(sess.counters().items()):
        out[f"total.{k}"] = _digest(v)
    for name in cn.names:
        out[f"state.{name}"] = _digest(sess.state(name))
    rep = sess.bus_report()
    out["bus"] = {k: (v if isinstance(v, int) else float(v).hex()) for k, v in rep.items()}
    c = sess.counters()
    out["summary"] = {k: int(c[k].sum()) for k in ("spikes", "packets", "received", "late",
                                                    "early", "queue_delay", "elapsed")}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="record or check the bus engine's pinned outputs")
    ap.add_argument("--engine", default="async")
    ap.add_argument("--write", help="write the digests to this JSON file")
    ap.add_argument("--only", help="cases whose id contains this text")
    args = ap.parse_args()
    out, t0 = {}, time.perf_counter()
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() and not args.write else {}
    bad = 0
    for net, hw, seed in cases():
        cid = case_id(net, hw, seed)
        if args.only and args.only not in cid:
            continue
        t = time.perf_counter()
        out[cid] = run_case(net, hw, seed, args.engine)
        same = golden.get(cid) == out[cid] if golden else None
        bad += same is False
        print(f"{cid:<44} {time.perf_counter() - t:7.2f} s  {out[cid]['summary']}"
              + ("" if same is None else "  same" if same else "  DIFFERENT"), flush=True)
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(json.dumps(out, indent=0, sort_keys=True) + "\n")
    print(f"{len(out)} cases in {time.perf_counter() - t0:.1f} s; {bad} different")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
