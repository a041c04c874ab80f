"""``neuroemu convert A B``: convert a netlist between TOML and HDF5 (by file suffix)."""

from __future__ import annotations

from .. import describe

CONVERT_EXAMPLE = """examples:
  neuroemu convert tiny traces/tiny.h5
  neuroemu convert traces/tiny.h5 traces/tiny-copy.toml   (large arrays go to .npy files beside)"""


def add_convert_arguments(p) -> None:
    p.epilog = CONVERT_EXAMPLE
    p.add_argument("source", help="netlist to read (.toml, .h5, or a trace .h5)")
    p.add_argument("dest", help="file to write (.toml or .h5); TOML output puts arrays of more "
                   f"than {describe.INLINE_MAX} numbers in .npy files beside it")
    p.add_argument("--force", action="store_true", help="overwrite an existing destination")


def convert_main(args) -> int:
    out = describe.convert(args.source, args.dest, force=args.force)
    net = describe.load(out)
    if not describe.same(net, describe.load(args.source)):  # a bug, not bad input: keep the traceback
        raise RuntimeError(f"{out}: does not read back as the network in {args.source}")
    n_w = sum(p.weights.size for p in net.projections)
    print(f"{args.source} -> {out}: network '{net.name}', {len(net.populations)} populations, "
          f"{n_w} weights (read back: identical)")
    return 0
