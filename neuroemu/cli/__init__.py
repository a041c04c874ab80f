"""Command line: ``neuroemu demo | netlists | validate | run | inspect | convert | energy |
train | eval | converge | sanafe``.

One module per subcommand in this package (``neuroemu.cli.<module>``), providing
``add_<name>_arguments(parser)`` and ``<name>_main(args) -> int``; the library it calls lives in
the stages below (describe, engines, record, energy, learn).  Bad input (any NeuroemuError) prints
one line ``neuroemu: error: <message>`` and exits 2; anything else is a bug and keeps its
traceback (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

# The command line runs NumPy's BLAS on one thread unless the user says otherwise: the
# engines are single-threaded unless --threads asks for more, and BLAS threads competing
# with them (or with other jobs on a shared machine) made dense reference computations
# ten times slower in our measurements.  Set before anything imports NumPy.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from ..errors import NeuroemuError

# name -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("demo", "classify bundled MNIST digits with the shipped trained network"),
    "netlists": ("netlists", "list the networks shipped with neuroemu"),
    "validate": ("run", "check a netlist file and describe it"),
    "run": ("run", "run an emulation of a netlist and summarise it"),
    "inspect": ("inspect", "summarise and draw an HDF5 spike trace"),
    "convert": ("convert", "convert a netlist (TOML, HDF5, NIR) or a trace's spikes (NWB)"),
    "energy": ("energy", "estimate communication energy on a hardware profile"),
    "train": ("train", "train a network with Equilibrium Propagation (or --method ide)"),
    "eval": ("eval", "a network's error on a dataset, with spikes and synaptic events per sample"),
    "converge": ("converge", "the paper's Fig. 2 convergence experiment"),
    "sweep": ("sweep", "search netlist and training settings (Optuna trials on Dask)"),
    "sanafe": ("sanafe", "neuroemu against SANA-FE on the same recorded traffic and architecture"),
}

EPILOG = """examples:
  neuroemu demo
  neuroemu netlists
  neuroemu validate tiny
  neuroemu run mnist-binary-trained --steps 100
  neuroemu eval mnist-binary-trained --dataset mnist
  neuroemu converge --runs 20 --json out.json --plot fig2.png
  neuroemu sweep docs/sweeps/fewest-events.toml --workers 2
run 'neuroemu COMMAND --help' for each command's options and an example."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as every other bad input: one line ``neuroemu: error: ...``
    (no usage block), exit 2.  Subcommand parsers are of this class too."""

    def error(self, message: str):
        message = message[len("argument "):] if message.startswith("argument ") else message
        m = re.fullmatch(r"(.*): invalid choice: (.*) \(choose from (.*)\)", message, re.S)
        if m:
            choices = ", ".join(c.strip("'") for c in m[3].split(", "))
            message = f"{m[1]}: must be one of {choices} (got {m[2]})"
        sub = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f" (neuroemu {sub} --help)" if sub else " (neuroemu --help)"
        self.exit(2, f"neuroemu: error: {' '.join(message.split())}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__
    parser = Parser(
        prog="neuroemu", description="Event-driven emulator of neuromorphic hardware "
        "(spiking Equilibrium Propagation, O'Connor et al. 2019).", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"neuroemu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (modname, help_) in SUBCOMMANDS.items():
        mod = importlib.import_module(f"{__name__}.{modname}")
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        getattr(mod, f"add_{name}_arguments")(p)
        p.set_defaults(_main=getattr(mod, f"{name}_main"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:    # bad options: Parser.error's one line, returned as 2 (--help, --version exit 0)
        args = parser.parse_args(None if argv is None else [str(a) for a in argv])
    except SystemExit as exc:
        if not exc.code:
            raise
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except NeuroemuError as exc:
        print(f"neuroemu: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:   # run_traced says what its .partial file holds
        print(f"neuroemu: interrupted{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:     # the reader went away (neuroemu netlists | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
