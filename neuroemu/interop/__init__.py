"""Networks and spikes in and out of neuroemu (issue 14): NIR import and export, NWB export of
spikes, and the SANA-FE cross-check.  docs/interop.md and docs/sanafe.md describe the mappings.

The entry points here import their module -- and the optional package it needs, ``nir`` or
``pynwb`` -- only when called, so ``import neuroemu`` works without them; a missing package is
an :class:`~neuroemu.errors.InteropError` naming the extra (``pip install
'neuroemu[interop]'``), which the command line prints as one line (exit 2).

- :func:`read_nir` (``nir_file``), :func:`from_nir` (``nir_import``): a NIR file or graph
  -> a Netlist.
- :func:`write_nir`, :func:`to_nir` (``nir_export``): a Netlist -> a NIR graph / file.
- :func:`write_nwb` (``nwb``): a trace's spikes -> an NWB file (one Units table per recorded
  population).
- :func:`compare_with_sanafe` (``sanafe``): a network's or a trace's spikes priced by neuroemu
  and replayed in SANA-FE on one architecture file, side by side (SANA-FE, ``pip install
  sanafe``, is only needed for its side).

NIR's time constants are in seconds; a network runs in engine steps, so importing and
exporting take ``dt``, the seconds one engine step stands for (default :data:`DEFAULT_DT`).
This stage imports describe, engines, record, energy, errors and files (never learn or cli).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import InteropError
# needs no optional package to import (SANA-FE itself is imported when its side runs)
from .sanafe import compare_with_sanafe

#: Seconds per engine step when a NIR network is read or written without ``dt`` (1 ms: the
#: step of a trace with the default ``--dt 1`` ms).
DEFAULT_DT = 1e-3

EXTRA = "pip install 'neuroemu[interop]'"

# module of this package -> the optional package it needs
_NEEDS = {"nir_import": "nir", "nir_file": "nir", "nir_export": "nir", "nwb": "pynwb"}

__all__ = ["DEFAULT_DT", "read_nir", "write_nir", "to_nir", "from_nir", "write_nwb",
           "compare_with_sanafe", "require"]


def require(package: str, what: str):
    """Import the optional ``package`` (for ``what``, e.g. "NIR import"), or raise an
    InteropError naming the extra."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise InteropError(f"{what} needs the optional package '{package}' ({EXTRA}); "
                           f"importing it failed: {exc}") from None


def _module(name: str, what: str):
    """``neuroemu.interop.<name>``, after checking that its optional package imports."""
    require(_NEEDS[name], what)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:     # the package imported, but something it needs did not
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] in ("nir", "pynwb", "hdmf"):
            raise InteropError(f"{what} needs the optional package '{_NEEDS[name]}' ({EXTRA}); "
                               f"importing it failed: {exc}") from None
        raise


def read_nir(path, dt: float = DEFAULT_DT):
    """Read a NIR file (``nir.read``) as a :class:`~neuroemu.describe.Netlist`, discretised
    at ``dt`` seconds per step; damaged or unsupported graphs raise a one-line NetlistError
    naming the file (and the node and field)."""
    return _module("nir_file", "NIR import").read_nir(path, dt)


def from_nir(graph, dt: float = DEFAULT_DT, path=None):
    """A ``nir.NIRGraph`` as a Netlist (``path``: the file it came from, for messages)."""
    return _module("nir_import", "NIR import").from_nir(graph, dt, path)


def to_nir(net, dt: float = DEFAULT_DT):
    """A Netlist as a ``nir.NIRGraph`` (neuroemu's parameters in the metadata, exact both
    ways)."""
    return _module("nir_export", "NIR export").to_nir(net, dt)


def write_nir(net, path, dt: float = DEFAULT_DT, *, force: bool = False) -> Path:
    """Write a Netlist as a NIR file (``nir.write``, atomically); returns the path.  An
    existing file is refused unless ``force``."""
    return _module("nir_export", "NIR export").write_nir(net, path, dt, force=force)


def write_nwb(trace_path, out_path, *, force: bool = False) -> Path:
    """Write the spikes of a neuroemu trace as an NWB file: one Units table per recorded
    population, times in seconds, provenance in the notes (:mod:`neuroemu.interop.nwb`).
    Refuses to overwrite an existing file unless ``force``, and never writes onto the
    trace."""
    return _module("nwb", "NWB export").write_nwb(trace_path, out_path, force=force)
