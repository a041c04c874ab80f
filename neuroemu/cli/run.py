"""``neuroemu run`` and ``neuroemu validate``."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from .. import describe, engines
from ..errors import EngineError
from ..files import netlist_inputs
from ..record.layout import PROBE_VARS, parse_indices
from .options import (check_trace, dumps, integer, number, read_input, seed, subset,
                      unique_names)

RUN_EXAMPLE = """example:
  neuroemu run mnist-binary --steps 100 --batch 4 --seed 1
  neuroemu run tiny --input x.npy --steps 50 --json
  neuroemu run my-chip.toml --engine async    (the bus engine, with the netlist's [hardware])"""

VALIDATE_EXAMPLE = """example:
  neuroemu validate fig2
  neuroemu validate my-net.toml"""

NETLIST_HELP = "netlist: a .toml or .h5 file, or the name of a shipped network (neuroemu netlists)"


def check_engine(name: str) -> str:
    """The ``--engine`` option: one of :data:`neuroemu.engines.ENGINES`."""
    if name not in engines.ENGINES:
        raise EngineError("--engine: must be one of "
                          + ", ".join(f"{k} ({v[2]})" for k, v in engines.ENGINES.items())
                          + f" (got {name!r})")
    return name


def engine_help() -> str:
    return "engine: " + " or ".join(engines.ENGINES) + f" (default {next(iter(engines.ENGINES))})"


def hardware_settings(hwc) -> dict:
    """The bus engine's settings (an ``asyncbus.Hardware``) as plain values, as
    ``RunResult.metadata["hardware"]`` holds them."""
    keys = ("quanta", "cluster_size", "period", "drift", "phase", "jitter", "topology",
            "latency", "channels")
    d = {k: getattr(hwc, k) for k in keys}
    d["bandwidth"] = "unlimited" if math.isinf(hwc.bandwidth) else hwc.bandwidth
    if hwc.mesh:
        d["mesh"] = list(hwc.mesh)
    return d


def hardware_line(meta: dict, net) -> str:
    """The bus engine's settings as one line: where they came from and their values."""
    hw = meta.get("hardware", {})
    src = f"[hardware] of {net.path}" if net.hardware else "defaults (the netlist has no [hardware])"
    return f"hardware ({src}): " + ", ".join(f"{k} {v}" for k, v in hw.items())


def bus_line(bus: dict) -> str:
    return (f"bus: {bus['packets']} packets, {bus['late']} late ({100 * bus['late_fraction']:.2f}%)"
            f", {bus['early']} early ({100 * bus['early_fraction']:.2f}%), mean queue delay "
            f"{bus['mean_queue_delay_ticks']:.4g} ticks, utilisation {bus['utilisation']:.4f}")


def add_validate_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = VALIDATE_EXAMPLE
    p.add_argument("netlist", help=NETLIST_HELP)


def validate_main(args) -> int:
    net = describe.load(args.netlist)
    hwc = None
    if net.hardware:
        from ..engines.asyncbus import parse_hardware
        hwc = parse_hardware(net.hardware, net.path)  # raises NetlistError for bad settings
    from ..engines import build
    fixed = build(net).fixed        # fixed point: refused here if a sum could leave float32
    print(f"{args.netlist}: ok -- network '{net.name}', seed {net.seed}")
    for p in net.populations:
        n = p.neuron
        size = "x".join(map(str, p.shape)) if len(p.shape) > 1 else str(p.size)
        if n.model != "paper":
            desc = (f"{n.model}, threshold {n.threshold:g}"
                    + (f", leak {n.leak:g}" if n.model == "lif" else "")
                    + f", reset {n.reset}" + (f", v0 {n.v0:g}" if n.v0 else ""))
        else:
            coding = f"{n.encoder}{' + predictive ' + _fmt(n.lam.as_dict()) if n.predictive else ''}"
            extra = "" if p.role == "input" else \
                f", decoder {n.decoder}, eps {_fmt(n.eps.as_dict())}"
            desc = f"encoder {coding}{extra}"
        print(f"  {p.name:<10} {p.role:<6} {size:>8} neurons, {desc}")
    for pr in net.projections:
        w = pr.weights
        arrow = "<->" if pr.symmetric else "->"
        label = f"{pr.pre} {arrow} {pr.post}" + (f" ({pr.name})" if pr.name else "")
        params = "".join(f", {k} {'x'.join(map(str, v))}" for k, v in pr.params)
        if w.size == 0:
            print(f"  {label}: {pr.kind}{params}, fixed weights")
            continue
        grid = ""
        if fixed is not None and fixed.formats[net.projections.index(pr)] is not None:
            p = net.projections.index(pr)
            grid = (f"; runs as {fixed.formats[p].bits}-bit mantissas x "
                    f"2**{int(fixed.exponents[p])}")
        print(f"  {label}: {pr.kind}{params}, {'x'.join(map(str, w.shape))} weights, "
              f"range [{w.min():.4g}, {w.max():.4g}]{grid}")
    if fixed is not None:
        a = fixed.arithmetic
        print(f"  fixed point: messages of {a.message_bits} bits, accumulator of "
              f"{a.accumulator_bits} bits; largest sum {int(fixed.bound.max()):,} quanta of "
              f"the 2**24 that keep every sum exact (docs/arithmetic.md)")
        if a.state_bits:
            print(f"  integer neurons: states on k / 2**{a.state_bits}, step sizes and "
                  f"lam on k / 2**{a.step_bits}")
    if hwc is not None:
        print(f"  {hardware_line({'hardware': hardware_settings(hwc)}, net)} "
              f"(used by --engine async)")
    return 0


def _fmt(d: dict) -> str:
    kind = d.pop("kind")
    return kind + "(" + ", ".join(f"{k}={v:g}" for k, v in d.items()) + ")"


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = RUN_EXAMPLE
    p.add_argument("netlist", help=NETLIST_HELP)
    p.add_argument("--steps", type=integer(0), default=100, help="steps to run (default 100)")
    p.add_argument("--input", metavar="FILE.npy",
                   help="input batch (B, n_input) or one input (n_input,); default: seeded "
                        "uniform random in [0, 1]")
    p.add_argument("--batch", type=integer(1), default=1,
                   help="samples for the random input (default 1)")
    p.add_argument("--seed", type=seed, default=None,
                   help="run seed, 0..2**63-1 (default: the netlist's)")
    p.add_argument("--engine", default="lockstep", help=engine_help() + "; async reports its "
                   "bus: packets, late and early packets, queueing delay, utilisation")
    p.add_argument("--threads", type=integer(1), default=1, help="numba threads (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_trace_arguments(p)


def check_batch(batch: int, cn) -> None:
    """A random-input ``--batch`` the session can hold, checked before the input is drawn
    (:data:`neuroemu.engines.session.MAX_STATE_CELLS`)."""
    from ..engines.session import MAX_STATE_CELLS
    if batch * cn.n_neurons > MAX_STATE_CELLS:
        raise EngineError(f"--batch: {batch} samples of {cn.n_neurons} neurons exceed the "
                          f"session limit of {MAX_STATE_CELLS} (sample, neuron) cells "
                          f"(got --batch {batch})")


def make_input(args, n_in: int, seed: int) -> np.ndarray:
    if args.input:
        return read_input(args.input, n_in)
    if args.batch < 1:
        raise EngineError(f"--batch: must be a positive integer (got {args.batch})")
    return np.random.default_rng(seed).random((args.batch, n_in))


def summarise(result: engines.RunResult) -> list[dict]:
    rows = []
    steps = result.steps
    for l, (name, n) in enumerate(zip(result.names, result.sizes)):
        spikes = int(result.counters["spikes"][:, l].sum())
        rows.append({"population": name, "neurons": n, "spikes": spikes,
                     "rate_per_step": spikes / max(1, steps * n * result.batch),
                     "mean_state": float(result.final_states[name].mean())})
    return rows


def run_main(args) -> int:
    check_engine(args.engine)
    trace = getattr(args, "trace", None)
    if getattr(args, "probe", None) and not trace:
        raise EngineError(f"--probe: records into a trace; add --trace FILE.h5 "
                          f"(got --probe {' '.join(args.probe)})")
    unique_names(args.probe, "--probe")
    if trace:   # before any work: never onto the netlist, a folder, a FIFO, an existing file
        inputs = netlist_inputs(describe.resolve(args.netlist)) + [args.input]
        check_trace(trace, inputs=inputs, force=args.force)
    net = describe.load(args.netlist)
    cn = engines.build(net)
    seed = net.seed if args.seed is None else args.seed
    if not args.input:
        check_batch(args.batch, cn)
    x = make_input(args, cn.n_in, seed)
    if trace:  # stream the run into the trace in chunks of steps (memory stays flat)
        from ..record import run_traced
        probes = parse_probes(args.probe, cn)
        pvars = tuple(args.probe_vars)
        samples = parse_indices(args.trace_samples, x.shape[0], "--trace-samples").tolist()
        settings = {"steps": args.steps, "batch": int(x.shape[0]), "seed": seed,
                    "engine": args.engine, "threads": args.threads,
                    "input": args.input or "uniform random [0, 1)", "dt": args.dt,
                    "samples": samples, "probes": {k: v.tolist() for k, v in probes.items()},
                    "probe_every": args.probe_every, "probe_vars": list(pvars)}
        result = run_traced(trace, cn, x, args.steps, seed=seed, engine=args.engine,
                            threads=args.threads, samples=samples, dt=args.dt, probes=probes,
                            probe_every=args.probe_every, probe_vars=pvars, settings=settings)
        print(f"wrote trace {trace}", file=sys.stderr)
    else:
        result = engines.run(cn, x, args.steps, engine=args.engine, seed=seed,
                            threads=args.threads)
    rows = summarise(result)
    meta = result.metadata
    if args.json:
        out = {"netlist": str(args.netlist), "engine": meta.get("engine", args.engine),
               "steps": args.steps, "batch": result.batch, "seed": seed, "populations": rows}
        for key in ("hardware", "clusters", "bus"):     # the bus engine's
            if key in meta:
                out[key] = meta[key]
        print(dumps(out, indent=1))
        return 0
    print(f"{Path(args.netlist).name}: {args.steps} steps, batch {result.batch}, seed {seed}, "
          f"engine {meta.get('engine', args.engine)}")
    print(f"  {'population':<12}{'neurons':>8}{'spikes':>12}{'rate/step':>11}{'mean s':>9}")
    for r in rows:
        print(f"  {r['population']:<12}{r['neurons']:>8}{r['spikes']:>12}"
              f"{r['rate_per_step']:>11.4f}{r['mean_state']:>9.4f}")
    if "bus" in meta:
        print(f"  {bus_line(meta['bus'])}")
        print(f"  {hardware_line(meta, net)}; {meta.get('clusters', '?')} circuit clusters")
    return 0


def add_trace_arguments(p) -> None:
    g = p.add_argument_group("trace", "write an HDF5 spike trace (docs/trace-format.md)")
    g.add_argument("--trace", metavar="FILE.h5", help="write spikes (SONATA layout), counters "
                   "and provenance to this file, streaming as the run goes (as FILE.h5.partial "
                   "until it is complete); refused if FILE.h5 or FILE.h5.partial exists, unless "
                   "--force, and never onto the netlist or the input")
    g.add_argument("--force", action="store_true",
                   help="replace an existing trace (and its .partial)")
    g.add_argument("--probe", metavar="POP[:NEURONS]", action="append", default=[],
                   help="also record states of a population, e.g. hidden:0-9,20 (repeatable; "
                        "all neurons if no list)")
    g.add_argument("--probe-every", type=integer(1), default=1, metavar="K",
                   help="record probes every K steps (default 1)")
    g.add_argument("--probe-vars", type=subset(PROBE_VARS, "variable"), default=PROBE_VARS,
                   metavar="LIST",
                   help="probed variables: s (state), v (decoded input), eps (step size), "
                        "phi (encoder residue); default all")
    g.add_argument("--trace-samples", default="all", metavar="LIST",
                   help="samples of the batch to record, e.g. 0 or 0-3 (default all)")
    g.add_argument("--dt", type=number(positive=True), default=1.0, metavar="MS",
                   help="duration of one step in ms (spike times are step * dt; default 1)")
    p.epilog = (p.epilog or "") + ("\n  neuroemu run mnist-binary --steps 1000 "
                                   "--trace traces/run.h5 --probe hidden:0-9 --probe-every 10")


def parse_probes(specs, net) -> dict:
    probes = {}
    for spec in specs:
        name, _, sel = spec.partition(":")
        if name not in net.names:
            raise EngineError(f"--probe {spec}: no population {name!r} "
                              f"(have: {', '.join(net.names)})")
        probes[name] = parse_indices(sel, net.sizes[net.names.index(name)], f"--probe {spec}")
    return probes
