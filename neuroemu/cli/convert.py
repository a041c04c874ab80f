"""``neuroemu convert A B``: convert by file suffix -- a netlist between TOML and HDF5, a
netlist to and from NIR (``.nir``), a trace's spikes to NWB (``.nwb``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import describe, interop
from ..errors import NetlistError, OptionError, TraceError
from ..files import check_output, netlist_inputs
from .options import integer, number

CONVERT_EXAMPLE = f"""examples:
  neuroemu convert tiny traces/tiny.h5
  neuroemu convert traces/tiny.h5 traces/tiny-copy.toml   (large arrays go to .npy files beside)
  neuroemu convert tiny tiny.nir                 (NIR, for snnTorch, Norse, Sinabs, Lava...)
  neuroemu convert model.nir net.toml --dt 0.001 (NIR time constants in s, one step = --dt s)
  neuroemu convert traces/run.h5 run.nwb         (a trace's spikes as NWB Units tables)
  neuroemu convert mnist-binary-trained m8.h5 --weight-bits 8   (fixed point: 8-bit weights)
  neuroemu convert mnist-continuous c8.h5 --weight-bits 8 --message-bits 7 --state-bits 10
                                                 (and integer neurons, states on k / 2**10)

--weight-bits (and --weight-exponent, --message-bits, --accumulator-bits, --state-bits,
--step-bits) write the network with an [hardware.arithmetic] table and its weights on that
grid: docs/arithmetic.md.  The options replace the source's table (give --state-bits again
to keep integer neurons).
NIR and NWB need the optional packages nir and pynwb: pip install 'neuroemu[interop]'.
--dt (NIR only): the seconds one engine step stands for; NIR's neuron time constants are
discretised (forward Euler) at this step; default {interop.DEFAULT_DT:g} s.  docs/interop.md."""

NETLIST_SUFFIXES = describe.SUFFIXES


def add_convert_arguments(p) -> None:
    p.epilog = CONVERT_EXAMPLE
    p.add_argument("source", help="file to read: a netlist (.toml, .h5, or a shipped name), a "
                   "trace .h5 (its network, or its spikes for .nwb), or a NIR graph (.nir)")
    p.add_argument("dest", help="file to write: a netlist (.toml or .h5), a NIR graph (.nir) "
                   "or, from a trace, an NWB file (.nwb); TOML output puts arrays of more "
                   f"than {describe.INLINE_MAX} numbers in .npy files beside it")
    p.add_argument("--dt", type=number(positive=True), default=None, metavar="SECONDS",
                   help="NIR only: seconds per engine step, at which NIR's continuous-time "
                   f"neurons are discretised (default {interop.DEFAULT_DT:g})")
    p.add_argument("--force", action="store_true", help="overwrite an existing destination")
    f = p.add_argument_group("fixed point (netlist to netlist; docs/arithmetic.md)")
    f.add_argument("--weight-bits", type=integer(2, 16), metavar="BITS", default=None,
                   help="store every weight as a BITS-bit signed mantissa times one power of "
                   "two per projection")
    f.add_argument("--weight-exponent", type=integer(-60, 60), metavar="E", default=None,
                   help="the exponent of every projection (default: the smallest that fits "
                   "its largest weight)")
    f.add_argument("--message-bits", type=integer(1, 16), metavar="BITS", default=8,
                   help="real-valued messages on a grid of 2**-BITS (default 8)")
    f.add_argument("--accumulator-bits", type=integer(8, 32), metavar="BITS", default=32,
                   help="a neuron's summed input saturates at BITS signed bits of its "
                   "quantum (default 32)")
    f.add_argument("--state-bits", type=integer(4, 30), metavar="BITS", default=None,
                   help="integer neurons: states on a grid of 2**-BITS (default: float64 "
                   "neurons)")
    f.add_argument("--step-bits", type=integer(4, 24), metavar="BITS", default=None,
                   help="with --state-bits: lam, eps, 1/lam and 2 beta on a grid of 2**-BITS "
                   "(default 12)")


def _suffix(path) -> str:
    return Path(str(path)).suffix.lower()


def is_trace(path) -> bool:
    """Whether ``path`` is an HDF5 file holding a ``/spikes`` group (a trace; an HDF5
    netlist has none).  Unreadable or non-HDF5 files are no trace."""
    import h5py
    p = Path(path)
    if not p.is_file():
        return False
    for swmr in (False, True):   # a trace left open by its writer opens the SWMR way
        try:
            with h5py.File(p, "r", swmr=swmr) as f:
                return isinstance(f.get("spikes"), h5py.Group)
        except OSError:
            continue
    return False


def convert_main(args) -> int:
    src, dst = args.source, args.dest
    s_suf, d_suf = _suffix(src), _suffix(dst)
    if d_suf not in NETLIST_SUFFIXES + (".nir", ".nwb"):
        raise NetlistError(f"{dst}: unknown netlist file type (use .toml, .h5 or .hdf5; .nir "
                           "for NIR; .nwb for a trace's spikes)")
    if s_suf == ".nwb":
        raise NetlistError(f"{src}: reading NWB is not supported (NWB is written from a "
                           "trace: neuroemu convert TRACE.h5 OUT.nwb)")
    if args.dt is not None and ".nir" not in (s_suf, d_suf):
        raise OptionError(f"--dt: applies to NIR conversions only (got --dt {args.dt:g} for "
                          f"{src} -> {dst})")
    fixed = args.weight_bits is not None
    given = [o for o, v in (("--weight-exponent", args.weight_exponent),
                            ("--message-bits", args.message_bits != 8 or None),
                            ("--accumulator-bits", args.accumulator_bits != 32 or None),
                            ("--state-bits", args.state_bits), ("--step-bits", args.step_bits))
             if v is not None]
    if not fixed and given:
        raise OptionError(f"{given[0]}: goes with --weight-bits (the fixed-point conversion; "
                          f"got {' '.join(given)} without it)")
    if args.step_bits is not None and args.state_bits is None:
        raise OptionError(f"--step-bits: goes with --state-bits (integer neurons; got "
                          f"--step-bits {args.step_bits} alone)")
    if fixed and (".nir" in (s_suf, d_suf) or d_suf == ".nwb" or is_trace(src)):
        raise OptionError(f"--weight-bits: converts a netlist to a netlist (.toml or .h5), "
                          f"not {src} -> {dst}")
    if fixed:
        return _to_fixed(src, dst, args)
    if d_suf == ".nwb":
        return _to_nwb(src, dst, args.force)
    if s_suf == ".nir" and d_suf == ".nir":
        raise NetlistError(f"{dst}: NIR to NIR is not a conversion (copy the file)")
    dt = interop.DEFAULT_DT if args.dt is None else args.dt
    if s_suf == ".nir":
        return _from_nir(src, dst, dt, args.force)
    if d_suf == ".nir":
        return _to_nir(src, dst, dt, args.force)
    out = describe.convert(src, dst, force=args.force)
    net = describe.load(out)
    _same(net, describe.load(src), out, src)
    _report(src, out, net, "identical")
    return 0


def _to_fixed(src, dst, args) -> int:
    from ..engines import fixedpoint
    path = describe.resolve(src)
    out = check_output(dst, inputs=netlist_inputs(path), force=args.force)
    net = describe.load(path)
    e = "auto" if args.weight_exponent is None else args.weight_exponent
    opts = (f"--weight-bits {args.weight_bits} --message-bits {args.message_bits} "
            f"--accumulator-bits {args.accumulator_bits}"
            + ("" if args.weight_exponent is None else f" --weight-exponent {e}")
            + ("" if args.state_bits is None else f" --state-bits {args.state_bits}")
            + ("" if args.step_bits is None else f" --step-bits {args.step_bits}"))
    fixed = fixedpoint.to_fixed(net, args.weight_bits, weight_exponent=e,
                                message_bits=args.message_bits,
                                accumulator_bits=args.accumulator_bits,
                                state_bits=args.state_bits, step_bits=args.step_bits,
                                label=f"{src} with {opts}")
    describe.save(fixed, out)
    back = describe.load(out)
    _same(back, fixed, out, src)
    from ..engines import build
    fp = build(back).fixed
    a = fp.arithmetic
    _report(src, out, back, f"identical; {args.weight_bits}-bit weights"
            + (f", integer neurons: states on k / 2**{a.state_bits}, step sizes and lam on "
               f"k / 2**{a.step_bits}" if a.state_bits else ""))
    had = (net.hardware or {}).get("arithmetic", {}).get("state_bits")
    if had and not a.state_bits:
        print(f"  note: {src} had integer neurons (state_bits = {had}); {out} has float64 "
              f"neurons (give --state-bits to keep them)")
    for p, (a, b) in enumerate(zip(net.projections, back.projections)):
        if fp.formats[p] is None:
            continue
        err = float(np.max(np.abs(a.weights - b.weights))) if a.weights.size else 0.0
        step = 2.0 ** int(fp.exponents[p])
        top = fp.formats[p].max_mantissa * step
        clipped = int(np.count_nonzero(np.abs(a.weights) > top + step / 2))
        print(f"  {a.label}: exponent {int(fp.exponents[p])}, step {step:.4g}, "
              f"largest change {err:.4g}"
              + (f"; {clipped:,} weights beyond +-{top:.4g} saturated" if clipped else ""))
    return 0


def _same(a, b, out, src) -> None:
    if not describe.same(a, b):   # a bug, not bad input: keep the traceback
        raise RuntimeError(f"{out}: does not read back as the network in {src}")


def _report(src, out, net, how: str) -> None:
    n_w = sum(p.weights.size for p in net.projections)
    print(f"{src} -> {out}: network '{net.name}', {len(net.populations)} populations, "
          f"{n_w} weights (read back: {how})")


def _from_nir(src, dst, dt: float, force: bool) -> int:
    out = check_output(dst, inputs=[src], force=force)
    if not Path(src).exists():
        raise NetlistError(f"{src}: file not found")
    net = interop.read_nir(src, dt)
    describe.save(net, out)
    _same(describe.load(out), net, out, src)
    _report(src, out, net, f"identical; dt = {dt:g} s per step")
    return 0


def _to_nir(src, dst, dt: float, force: bool) -> int:
    path = describe.resolve(src)
    out = check_output(dst, inputs=netlist_inputs(path), force=force)
    net = describe.load(path)
    interop.write_nir(net, out, dt, force=force)
    _same(interop.read_nir(out, dt), net, out, src)
    _report(src, out, net, f"identical through neuroemu's NIR metadata; dt = {dt:g} s per step")
    return 0


def _to_nwb(src, dst, force: bool) -> int:
    p = Path(src)
    if not p.exists() and p.name in describe.shipped() and p.parent == Path("."):
        raise TraceError(f"{src}: a shipped network, not a spike trace; NWB export takes a "
                         f"trace (neuroemu run {src} --trace TRACE.h5)")
    if not p.exists():
        part = p.with_name(p.name + ".partial")
        hint = f" ({part.name} exists: a trace whose writer did not finish; convert that " \
               "file)" if part.exists() else ""
        raise TraceError(f"{src}: file not found{hint}")
    if not is_trace(p):
        raise TraceError(f"{src}: not a spike trace (no /spikes group); NWB export takes a "
                         "trace written by neuroemu run NET --trace TRACE.h5")
    out = interop.write_nwb(p, dst, force=force)
    from .. import record
    with record.open(p) as t:
        n = sum(t.info(pop)["spikes"] for pop in t.populations)
        units = sum(t.sizes[t.layers.index(t.info(pop)["layer"])] for pop in t.populations)
        pops = len(t.populations)
    print(f"{src} -> {out}: {pops} populations, {units} units, {n} spikes (NWB: units, and "
          f"one Units table per population in processing/spikes; times in s)")
    return 0
