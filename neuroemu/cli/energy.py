"""``neuroemu energy``: communication energy of a netlist run or a recorded trace on one or
more hardware profiles, as a table, JSON or a plot.

The accounting itself is :mod:`neuroemu.energy`; this module reads the options, makes the
input (bundled digits, a dataset or random), runs or reads the phases and prints.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..energy import hardware as hw
from ..energy.accounting import (KINDS, Setup, coding_of, fmt_j, fmt_n, report, run_network,
                                  trace_phases)
from ..errors import EngineError, ProfileError

EXAMPLE = """examples:
  neuroemu energy netlists/mnist-binary.toml --profile loihi
  neuroemu energy netlists/mnist-binary.toml --profile all --mesh 4x4 --neurons-per-core 256
  neuroemu energy netlists/mnist-binary.toml --dataset mnist --batch 4 --nudge-steps 50 --json
  neuroemu energy --list-profiles"""


def _make_input(args, cn, seed):
    """(x, target or None, description) for a netlist run."""
    n_in, n_out = cn.sizes[0], cn.sizes[-1]
    if args.batch < 1:
        raise EngineError(f"--batch: must be a positive integer (got {args.batch})")
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
        from ..engines import check_input
        try:
            x = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise EngineError(f"{args.input}: cannot read input array ({exc})") from None
        x, desc = check_input(x, n_in, args.input), f"input {args.input}"
    else:
        x, desc = rng.random((args.batch, n_in)), f"seeded uniform random input (seed {seed})"
    y = np.eye(n_out)[rng.integers(0, n_out, len(x))]
    return x, y, desc


def _load_source(args):
    """(netlist, phases, description, sample ids or None) from a netlist (run here) or a
    trace (read)."""
    from .. import describe, engines
    path = Path(args.source)
    trace = _open_trace(path)
    if trace is not None:
        return trace
    net = describe.load(path)
    cn = engines.build(net)
    seed = net.seed if args.seed is None else args.seed
    for opt in ("steps", "nudge_steps"):
        v = getattr(args, opt)
        if v < 0:
            raise EngineError(f"--{opt.replace('_', '-')}: must be a non-negative integer "
                              f"(got {v})")
    x, y, desc = _make_input(args, cn, seed)
    phases = run_network(cn, x, args.steps, args.nudge_steps, args.beta, y, seed, args.engine,
                         progress=True)
    return net, phases, f"{desc}; seed {seed}, engine {args.engine}", None


def _open_trace(path: Path):
    """:func:`trace_phases` of a trace file, or None if ``path`` is no trace."""
    if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
        return None
    import h5py

    from .. import record
    from ..record.layout import MAGIC
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("magic", -1)) != MAGIC:
                return None  # an HDF5 netlist
    except OSError:
        pass  # let the trace reader explain what is wrong with the file
    with record.open(path) as tr:
        return trace_phases(tr)


# --------------------------------------------------------------------------- CLI

def add_energy_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXAMPLE
    p.add_argument("source", nargs="?", help="netlist (.toml/.h5) to run, or a trace file")
    p.add_argument("--profile", action="append", metavar="NAME|FILE",
                   help="hardware profile: a shipped name, a .toml file, or 'all' "
                        "(repeatable; default loihi)")
    p.add_argument("--list-profiles", action="store_true", help="list shipped profiles and exit")
    g = p.add_argument_group("placement and routing")
    g.add_argument("--mesh", help="WIDTHxHEIGHT of cores (default: smallest square that fits)")
    g.add_argument("--neurons-per-core", type=int, default=256, help="default 256")
    g.add_argument("--placement", default="layer",
                   help="layer (each population from a fresh core; default), packed, or a .npy "
                        "file of one core index per neuron")
    g.add_argument("--routing", choices=("multicast", "unicast"), default="multicast",
                   help="one packet per destination core (default) or per destination neuron")
    g.add_argument("--word-bits", type=int, help="bits of a real-valued word (default: the "
                                                 "profile's, 32 in the shipped ones)")
    r = p.add_argument_group("running a netlist")
    r.add_argument("--steps", type=int, default=100, help="free-phase steps (default 100)")
    r.add_argument("--nudge-steps", type=int, default=0,
                   help="nudged-phase steps after the free phase (default 0: inference only)")
    r.add_argument("--beta", type=float, default=0.5, help="nudge strength (default 0.5)")
    r.add_argument("--batch", type=int, default=1, help="samples (default 1)")
    r.add_argument("--input", metavar="FILE.npy", help="input batch (B, n_input)")
    r.add_argument("--dataset", help="mnist or fashion-mnist: take --batch images as input")
    r.add_argument("--data", metavar="DIR", help="dataset folder (see neuroemu.datasets)")
    r.add_argument("--split", choices=("train", "test"), default="test", help="default test")
    r.add_argument("--offset", type=int, default=0, help="first image (default 0)")
    r.add_argument("--seed", type=int, help="run seed (default: the netlist's)")
    r.add_argument("--engine", default="lockstep", help="lockstep (default) or async")
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print JSON (a list if several profiles)")
    o.add_argument("--plot", metavar="FILE.png", help="stacked bars of where the energy goes")


def _profiles(args) -> list[hw.Profile]:
    names = args.profile or ["loihi"]
    if "all" in names:
        names = [n for n in names if n != "all"] + hw.shipped_profiles()
    out = []
    for n in dict.fromkeys(names):
        prof = hw.load_profile(n)
        if args.word_bits is not None:
            if not 1 <= args.word_bits <= 4096:
                raise ProfileError(f"--word-bits: must be an integer in [1, 4096] "
                                   f"(got {args.word_bits})")
            prof = replace(prof, word_bits=args.word_bits)
        out.append(prof)
    return out


def energy_main(args) -> int:
    if args.list_profiles:
        for n in hw.shipped_profiles():
            print(f"{n:<14} {hw.load_profile(n).description}")
        return 0
    if not args.source:
        raise EngineError("energy: give a NETLIST or TRACE file (or --list-profiles)")
    profiles = _profiles(args)
    net, phases, desc, ids = _load_source(args)
    mesh = hw.parse_mesh(args.mesh) if args.mesh else None
    names, sizes = tuple(p.name for p in net.populations), net.sizes
    placement = hw.place(sizes, mesh, args.neurons_per_core, args.placement)
    setup = Setup(names, sizes, coding_of(net), placement,
                  hw.route_table(placement, sizes, args.routing == "multicast"))
    reports = [report(setup, phases, prof, ids) for prof in profiles]
    for rep in reports:
        rep.update({"source": str(args.source), "network": net.name, "input": desc})
    if args.plot:
        plot(reports, args.plot)
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1))
        return 0
    for i, rep in enumerate(reports):
        print_report(rep, setup, profiles[i], header=(i == 0))
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def print_report(rep: dict, setup: Setup, prof: hw.Profile, header: bool = True) -> None:
    B = rep["batch"]
    pl = setup.placement
    binary = not setup.coding.real.any()
    if header:
        steps = ", ".join(f"{n} {s}" for n, s in rep["steps"].items())
        print(f"{rep['source']}: network {rep['network']} ({'-'.join(map(str, setup.sizes))}), "
              f"steps {steps}, batch {B}; {rep['input']}")
        print(f"placement {pl.policy} on a {pl.mesh} mesh ({pl.cores_used} of {pl.n_cores} cores, "
              f"{pl.neurons_per_core} neurons per core), {rep['routing']} XY routing; hop counts "
              + ("exact (per-neuron message counts)" if rep["hops_exact"]
                 else "ESTIMATED (no per-neuron counts)"))
    print(f"\nprofile {prof.name}: {prof.description}")
    print(f"  packets: spike {rep['packet_bits']['spike']} bits, {rep['word_bits']}-bit word "
          f"{rep['packet_bits']['word']} bits; flits of {rep['flit_bits']} bit(s)")
    this = "this run (spikes)" if binary else "this run (words, zeros skipped)"
    print(f"  energy per sample (mean of {B})   {this:>28}   {'real-valued words, every step':>30}")
    print(f"  {'kind':<18}{'count':>14}{'energy':>12}{'share':>7}   {'count':>14}{'energy':>12}")
    tot, rtot = rep["total_j"], rep["real_valued_total_j"]
    for k in KINDS:
        n, e = rep["counts"][k] / B, rep["by_kind"][k] / B
        rn, re = rep["real_valued_counts"][k] / B, rep["real_valued_by_kind"][k] / B
        if n == 0 and rn == 0:
            continue
        print(f"  {k:<18}{fmt_n(n):>14}{fmt_j(e):>12}{100 * e * B / tot if tot else 0:>6.1f}%"
              f"   {fmt_n(rn):>14}{fmt_j(re):>12}")
    print(f"  {'total':<18}{'':>14}{fmt_j(tot / B):>12}{'':>7}   {'':>14}{fmt_j(rtot / B):>12}")
    ratio = rep["spike_vs_real_ratio"]
    if ratio:
        print(f"  this run / real-valued energy ratio: {ratio:.4f} (real-valued costs "
              f"{1 / ratio:.3g}x this run)")
    c, rc = rep["counts"], rep["real_valued_counts"]
    print("  traffic per sample: " + ", ".join(
        f"{fmt_n(c[k] / B)} {k.replace('_', '-')} (real-valued {fmt_n(rc[k] / B)})"
        for k in ("messages", "bits", "bit_hops")))
    print("  by population (neuron updates and the traffic it sends):  "
          + ", ".join(f"{n} {fmt_j(e / B)}" for n, e in rep["by_population"].items()))
    print("  by projection (synaptic events; weight updates):  "
          + ", ".join(f"{n} {fmt_j(e / B)}" for n, e in rep["by_projection"].items() if e))
    nb = rep["neurobench"]
    print(f"  NeuroBench-style per sample: {fmt_n(nb['effective_acs'])} effective ACs, "
          f"{fmt_n(nb['effective_macs'])} effective MACs, {fmt_n(nb['dense_synaptic_ops'])} dense "
          f"synaptic ops; activation sparsity {nb['activation_sparsity']:.4f}")
    if len(rep["phases"]) > 1:
        for name, ph in rep["phases"].items():
            print(f"  phase {name}: {ph['steps']} steps, {fmt_j(ph['total_j'] / B)} per sample "
                  f"(real-valued {fmt_j(ph['real_valued_total_j'] / B)})")
    line = f"  per inference (free phase): {fmt_j(rep['per_inference_j'])}"
    if rep["per_training_update_j"] is not None:
        line += (f"; per training update (both phases + weight updates): "
                 f"{fmt_j(rep['per_training_update_j'])}")
        if not rep["weight_update_modelled"]:
            line += " [this profile has no weight-update figure: counted as 0]"
    print(line)


def plot(reports: list[dict], path) -> None:
    """Stacked bars per profile (columns): this run vs real-valued words, split by event
    kind; the bottom row leaves the synaptic events out so the smaller kinds show."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(reports)
    fig, axes = plt.subplots(2, n, figsize=(3.4 * n + 2.4, 7.4), squeeze=False)
    colors = dict(zip(KINDS, plt.get_cmap("tab20")(np.linspace(0, 1, len(KINDS)))))
    syn = ("synaptic_op", "synaptic_mac")
    for col, rep in enumerate(reports):
        B = rep["batch"]
        this = "spikes\n(this run)" if rep["counts"]["synaptic_mac"] == 0 else "words\n(this run)"
        for row, kinds in enumerate((KINDS, [k for k in KINDS if k not in syn])):
            ax, bottoms = axes[row, col], np.zeros(2)
            for k in kinds:
                vals = np.array([rep["by_kind"][k], rep["real_valued_by_kind"][k]]) / B * 1e6
                if vals.any():
                    ax.bar([0, 1], vals, 0.6, bottom=bottoms, color=colors[k], label=k)
                    bottoms += vals
            if not bottoms.any():
                ax.text(0.5, 0.5, "nothing else is priced\n(all-in synaptic figure)",
                        ha="center", va="center", transform=ax.transAxes, fontsize=9)
            ax.set_xlim(-0.6, 1.6)
            ax.set_xticks([0, 1], [this, f"{rep['word_bits']}-bit words\nevery step"])
            ax.set_ylabel("uJ per sample" + ("" if row == 0 else ", without synaptic events"),
                          fontsize=9)
            if row == 0:
                ax.set_title(f"{rep['profile']}: this run / words = "
                             f"{rep['spike_vs_real_ratio']:.3f}", fontsize=10)
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [k for k in KINDS if k in handles]
    right = 1 - 1.7 / (3.4 * n + 2.4)
    fig.legend([handles[k] for k in order], order, loc="center left", fontsize=8,
               bbox_to_anchor=(right, 0.5))
    steps = ", ".join(f"{k} {v}" for k, v in reports[0]["steps"].items())
    fig.suptitle(f"{reports[0]['network']}: where the energy goes per sample (steps {steps}; "
                 f"{reports[0]['mesh']} mesh, {reports[0]['placement']} placement, "
                 f"{reports[0]['routing']})", fontsize=10)
    fig.tight_layout(rect=(0, 0, right, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
