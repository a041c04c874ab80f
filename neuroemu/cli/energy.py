"""``neuroemu energy``: communication energy of a netlist run or a recorded trace on one or
more hardware profiles, as a table, JSON or a plot.

The accounting itself is :mod:`neuroemu.energy`; this module reads the options, makes the
input (bundled digits, a dataset or random), runs or reads the phases and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..energy import hardware as hw
from ..energy.ann import ann_bits as ann_width
from ..energy.accounting import run_network, trace_phases
from ..energy.report import EnergyReport, cluster_setup, make_setup, plot_reports
from ..energy.report import profiles as load_profiles
from ..energy.report import reports as energy_reports
from ..errors import EngineError
from ..files import netlist_inputs, replacing
from .options import (check_outputs, check_plot, dumps, integer, mesh, number, read_input,
                      resolve_profile, seed)
from .run import bus_line, check_batch, check_engine, engine_help

EXAMPLE = """examples:
  neuroemu energy mnist-binary --profile loihi
  neuroemu energy mnist-binary --profile all --mesh 4x4 --neurons-per-core 256
  neuroemu energy mnist-binary-trained --dataset mnist --batch 4 --nudge-steps 50 --json
  neuroemu energy mnist-binary-trained --dataset mnist --ann-bits 4 --plot energy.png
  neuroemu energy my-chip.toml --engine async   (timing, and a mesh placement, from [hardware])
  neuroemu energy --list-profiles"""


def _make_input(args, cn, seed):
    """(x, target or None, description) for a netlist run."""
    n_in, n_out = cn.n_in, cn.n_out
    check_batch(args.batch, cn)
    if args.dataset:
        from ..learn import datasets
        ds = datasets.load(args.dataset, args.data, split=args.split)
        if ds.images.shape[1] != n_in:
            raise EngineError(f"--dataset {args.dataset}: images have {ds.images.shape[1]} pixels, "
                              f"the network's input has {n_in} neurons")
        lo = args.offset
        if not 0 <= lo <= len(ds) - args.batch:
            raise EngineError(f"--offset: must lie in 0..{len(ds) - args.batch} for --batch "
                              f"{args.batch} (got {lo})")
        y = datasets.one_hot(ds.labels[lo:lo + args.batch], n_out) if n_out == 10 else None
        return (ds.images[lo:lo + args.batch], y,
                f"{ds.name} {ds.split} images {lo}..{lo + args.batch - 1}")
    rng = np.random.default_rng(seed)
    if args.input:
        x, desc = read_input(args.input, n_in), f"input {args.input}"
    else:
        x, desc = rng.random((args.batch, n_in)), f"seeded uniform random input (seed {seed})"
    y = np.eye(n_out)[rng.integers(0, n_out, len(x))]
    return x, y, desc


def _load_source(args):
    """(netlist, phases, description, sample ids or None, the bus engine's settings and
    results or None) from a netlist (run here) or a trace (read)."""
    from .. import describe, engines
    path = Path(args.source)
    trace = _open_trace(path)
    if trace is not None:
        return (*trace, None)
    net = describe.load(path)
    cn = engines.build(net)
    seed = net.seed if args.seed is None else args.seed
    for opt in ("steps", "nudge_steps"):
        v = getattr(args, opt)
        if v < 0:
            raise EngineError(f"--{opt.replace('_', '-')}: must be a non-negative integer "
                              f"(got {v})")
    x, y, desc = _make_input(args, cn, seed)
    bus = _bus_engine(args, net, cn, seed) if args.engine == "async" else None
    if bus is None:     # the placement (a --placement file too) is checked before the run
        args._setup = _setup(args, net)
    # the session reads the netlist's [hardware] itself (AsyncSession: hardware=None)
    phases = run_network(cn, x, args.steps, args.nudge_steps, args.beta, y, seed, args.engine,
                         progress=True)
    if bus is not None:
        total = phases[0].counters
        for ph in phases[1:]:
            total = {k: total[k] + ph.counters[k] for k in total}
        bus["bus"] = bus.pop("session").bus_report(total)
    return net, phases, f"{desc}; seed {seed}, engine {args.engine}", None, bus


def _bus_engine(args, net, cn, seed) -> dict:
    """The bus engine's settings from the netlist's ``[hardware]`` (validated), and -- for a
    mesh -- the energy model's placement of its circuit clusters on the same cores (one
    packet per destination core, XY hops: the engine's own routing), so that the energy is
    priced on the chip that was emulated."""
    from .. import engines
    from .run import hardware_line, hardware_settings
    sess = engines.session(cn, np.zeros((1, cn.n_in)), engine="async", seed=seed)
    hwc, lay = sess.hw, sess.layout
    settings = hardware_settings(hwc)
    out = {"engine": "async", "session": sess, "clusters": lay.n,
           "hardware_source": f"[hardware] of {net.path}" if net.hardware else
           "defaults (the netlist has no [hardware])"}
    if hwc.topology == "mesh":
        given = [f"--{k.replace('_', '-')} {v}" for k, v in
                 (("mesh", args.mesh), ("placement", args.placement),
                  ("neurons_per_core", args.neurons_per_core)) if v is not None]
        if args.routing != "multicast":
            given.append(f"--routing {args.routing}")
        if given:
            raise EngineError(f"{given[0].split()[0]}: the async engine ran on the "
                              f"{hwc.mesh[0]}x{hwc.mesh[1]} mesh of {net.path}'s [hardware] "
                              f"(multicast, its clusters on their cores): the energy is priced "
                              f"on that placement (got {given[0]})")
        out["setup"] = cluster_setup(cn, seed)
        out["placement"] = "the [hardware] mesh, one core per circuit cluster"
    else:
        out["placement"] = ("the options below (a bus has no mesh: the engine's timing, the "
                            "energy model's placement)")
    out["hardware"] = settings
    out["line"] = hardware_line({"hardware": settings}, net)
    return out


def _open_trace(path: Path):
    """:func:`trace_phases` of a trace file (or the ``.partial`` an unfinished writer left),
    or None if ``path`` is no trace (:func:`neuroemu.record.layout.looks_like_trace`)."""
    from .. import record
    from ..record.layout import looks_like_trace
    if not looks_like_trace(path):
        return None
    with record.open(path) as tr:
        return trace_phases(tr)


# --------------------------------------------------------------------------- CLI

def add_energy_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLE
    p.add_argument("source", nargs="?", help="netlist (.toml/.h5) to run, or a trace file")
    p.add_argument("--profile", action="append", metavar="NAME|FILE",
                   help="hardware profile: a shipped name (always the shipped profile, whatever "
                        "files the current folder holds), a .toml file or a path with a folder "
                        "(./loihi), or 'all' (repeatable; default loihi)")
    p.add_argument("--list-profiles", action="store_true", help="list shipped profiles and exit")
    g = p.add_argument_group("placement and routing")
    g.add_argument("--mesh", type=mesh,
                   help="WIDTHxHEIGHT of cores (default: smallest square that fits)")
    g.add_argument("--neurons-per-core", type=integer(1), help="default 256")
    g.add_argument("--placement",
                   help="layer (each population from a fresh core; default), packed, or a .npy "
                        "file of one core index per neuron")
    g.add_argument("--routing", choices=("multicast", "unicast"), default="multicast",
                   help="one packet per destination core (default) or per destination neuron")
    g.add_argument("--word-bits", type=integer(1, 4096), help="bits of a real-valued word (default: the "
                                                 "profile's, 32 in the shipped ones)")
    g.add_argument("--ann-bits", type=integer(1, 64), metavar="B",
                   help="bits of the weights and activations of the one-pass ANN baseline "
                        "(default: the profile's memory.ann_bits, 8 in the shipped ones; a MAC "
                        "scales as B^2, an add as B)")
    r = p.add_argument_group("running a netlist")
    r.add_argument("--steps", type=integer(0), default=100,
                   help="free-phase steps (default 100)")
    r.add_argument("--nudge-steps", type=integer(0), default=0,
                   help="nudged-phase steps after the free phase (default 0: inference only)")
    r.add_argument("--beta", type=number(), default=0.5, help="nudge strength (default 0.5)")
    r.add_argument("--batch", type=integer(1), default=1, help="samples (default 1)")
    r.add_argument("--input", metavar="FILE.npy", help="input batch (B, n_input)")
    r.add_argument("--dataset", help="mnist or fashion-mnist: take --batch images as input")
    r.add_argument("--data", metavar="DIR", help="dataset folder (see neuroemu.learn.datasets)")
    r.add_argument("--split", choices=("train", "test"), default="test", help="default test")
    r.add_argument("--offset", type=integer(0), default=0, help="first image (default 0)")
    r.add_argument("--seed", type=seed, help="run seed, 0..2**63-1 (default: the netlist's)")
    r.add_argument("--engine", default="lockstep",
                   help=engine_help() + "; async runs on the netlist's [hardware] (its clocks, "
                   "bus or mesh; a mesh also places the cores the energy is priced on)")
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print JSON (a list if several profiles)")
    o.add_argument("--plot", metavar="FILE.png", help="stacked bars of where the energy goes")
    o.add_argument("--force", action="store_true", help="replace an existing --plot file")


def _profiles(args) -> list[hw.Profile]:
    names = []
    for arg in args.profile or ["loihi"]:     # shipped names mean the shipped profiles
        for n in (hw.shipped_profiles() if arg == "all" else [arg]):
            n = resolve_profile(n)
            if n not in names:
                names.append(n)
    return load_profiles(names, args.word_bits)


def _setup(args, net):
    """The energy model's placement from the options (as neuroemu.estimate_energy)."""
    return make_setup(net, args.mesh or None,
                      256 if args.neurons_per_core is None else args.neurons_per_core,
                      args.placement or "layer", args.routing == "multicast")


def energy_main(args) -> int:
    if args.list_profiles:
        for n in hw.shipped_profiles():
            print(f"{n:<14} {hw.load_profile(n).description}")
        return 0
    if not args.source:
        raise EngineError("energy: give a NETLIST or TRACE file (or --list-profiles)")
    check_engine(args.engine)
    placement = args.placement if args.placement not in (None, "layer", "packed") else None
    inputs = [args.input, placement] + [p for p in (args.profile or []) if Path(p).exists()]
    if Path(args.source).is_file():
        inputs += netlist_inputs(args.source)
    check_outputs([("--plot", args.plot)], inputs=inputs, force=args.force)
    check_plot(args.plot, "--plot")
    profiles = _profiles(args)
    for prof in profiles:                       # a bad --ann-bits before anything runs
        ann_width(prof, args.ann_bits)
    args._setup = None
    net, phases, desc, ids, bus = _load_source(args)
    if bus is not None and "setup" in bus:      # priced on the [hardware] mesh it ran on
        setup = bus["setup"]
    else:  # the same assembly as neuroemu.estimate_energy (neuroemu/energy/report.py)
        setup = args._setup or _setup(args, net)
    reports = energy_reports(setup, phases, profiles, ids, source=str(args.source),
                             network=net.name, input=desc, ann_bits=args.ann_bits)
    if args.plot:
        with replacing(args.plot) as tmp:       # atomic: the old picture or the new one
            plot(reports, tmp)
    engine = {} if bus is None else {
        "engine": "async", "hardware": bus["hardware"], "hardware_source": bus["hardware_source"],
        "clusters": bus["clusters"], "energy_placement": bus["placement"], "bus": bus["bus"]}
    if args.json:
        dicts = [dict(rep.to_dict(), **engine) for rep in reports]
        print(dumps(dicts[0] if len(dicts) == 1 else dicts, indent=1))
        return 0
    if bus is not None:
        print(f"async engine {bus['line']}; {bus['clusters']} circuit clusters; energy "
              f"placement: {bus['placement']}")
        print(f"  {bus_line(bus['bus'])}")
    for i, rep in enumerate(reports):
        print(rep.summary(header=(i == 0)))
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def plot(reports: list[EnergyReport], path) -> None:
    """Stacked bars per profile (columns): this run, real-valued words and the one-pass ANN
    baseline, split by kind; the bottom row leaves the synaptic events and the ANN's MACs out
    so the smaller kinds show (:func:`neuroemu.energy.plots.plot_reports`, also
    ``EnergyReport.plot``)."""
    plot_reports(reports, path)
