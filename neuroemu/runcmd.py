"""``neuroemu run`` and ``neuroemu validate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import compile as compiler
from . import engine, netlist
from .errors import EngineError

RUN_EXAMPLE = """example:
  neuroemu run netlists/mnist-binary.toml --steps 100 --batch 4 --seed 1
  neuroemu run netlists/tiny.toml --input x.npy --steps 50 --json"""

VALIDATE_EXAMPLE = """example:
  neuroemu validate netlists/fig2.toml"""


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = VALIDATE_EXAMPLE
    p.add_argument("netlist", help="netlist file (.toml or .h5)")


def validate_main(args) -> int:
    net = netlist.load(args.netlist)
    if net.hardware:
        from .asyncbus import parse_hardware
        parse_hardware(net.hardware, net.path)  # raises NetlistError for bad settings
    print(f"{args.netlist}: ok -- network '{net.name}', seed {net.seed}")
    for p in net.populations:
        n = p.neuron
        coding = f"{n.encoder}{' + predictive ' + _fmt(n.lam.as_dict()) if n.predictive else ''}"
        extra = "" if p.role == "input" else \
            f", decoder {n.decoder}, eps {_fmt(n.eps.as_dict())}"
        print(f"  {p.name:<10} {p.role:<6} {p.size:>6} neurons, encoder {coding}{extra}")
    for pr in net.projections:
        w = pr.weights
        print(f"  {pr.pre} <-> {pr.post}: {w.shape[0]}x{w.shape[1]} weights, "
              f"range [{w.min():.4g}, {w.max():.4g}]")
    return 0


def _fmt(d: dict) -> str:
    kind = d.pop("kind")
    return kind + "(" + ", ".join(f"{k}={v:g}" for k, v in d.items()) + ")"


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = RUN_EXAMPLE
    p.add_argument("netlist", help="netlist file (.toml or .h5)")
    p.add_argument("--steps", type=int, default=100, help="steps to run (default 100)")
    p.add_argument("--input", metavar="FILE.npy",
                   help="input batch (B, n_input) or one input (n_input,); default: seeded "
                        "uniform random in [0, 1]")
    p.add_argument("--batch", type=int, default=1,
                   help="samples for the random input (default 1)")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: the netlist's)")
    p.add_argument("--engine", default="lockstep", help="lockstep (default) or async")
    p.add_argument("--threads", type=int, default=1, help="numba threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    if _has("traces"):
        from .traces import add_trace_arguments
        add_trace_arguments(p)


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(f"neuroemu.{module}") is not None


def make_input(args, n_in: int, seed: int) -> np.ndarray:
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise EngineError(f"{args.input}: cannot read input array ({exc})") from None
        return engine.check_input(x, n_in, f"{args.input}")
    if args.batch < 1:
        raise EngineError(f"--batch: must be a positive integer (got {args.batch})")
    return np.random.default_rng(seed).random((args.batch, n_in))


def summarise(result: engine.RunResult) -> list[dict]:
    rows = []
    steps = result.steps
    for l, (name, n) in enumerate(zip(result.names, result.sizes)):
        spikes = int(result.counters["spikes"][:, l].sum())
        rows.append({"population": name, "neurons": n, "spikes": spikes,
                     "rate_per_step": spikes / max(1, steps * n * result.batch),
                     "mean_state": float(result.final_states[name].mean())})
    return rows


def run_main(args) -> int:
    net = netlist.load(args.netlist)
    cn = compiler.build(net)
    seed = net.seed if args.seed is None else args.seed
    x = make_input(args, cn.sizes[0], seed)
    if args.steps < 0:
        raise EngineError(f"--steps: must be a non-negative integer (got {args.steps})")
    trace = getattr(args, "trace", None)
    if getattr(args, "probe", None) and not trace:
        raise EngineError(f"--probe: records into a trace; add --trace FILE.h5 "
                          f"(got --probe {' '.join(args.probe)})")
    if trace:  # stream the run into the trace in chunks of steps (memory stays flat)
        from .traces import run_traced
        result = run_traced(args, cn, x, seed)
    else:
        result = engine.run(cn, x, args.steps, engine=args.engine, seed=seed,
                            threads=args.threads)
    rows = summarise(result)
    if args.json:
        print(json.dumps({"netlist": str(args.netlist), "steps": args.steps,
                          "batch": result.batch, "seed": seed, "populations": rows}, indent=1))
        return 0
    print(f"{Path(args.netlist).name}: {args.steps} steps, batch {result.batch}, seed {seed}, "
          f"engine {args.engine}")
    print(f"  {'population':<12}{'neurons':>8}{'spikes':>12}{'rate/step':>11}{'mean s':>9}")
    for r in rows:
        print(f"  {r['population']:<12}{r['neurons']:>8}{r['spikes']:>12}"
              f"{r['rate_per_step']:>11.4f}{r['mean_state']:>9.4f}")
    return 0
