"""One error hierarchy for everything a user can get wrong.

Every subclass also inherits the builtin exception it most resembles, so callers that
catch ``ValueError`` or ``OSError`` keep working.  Messages name the file, the field, the
rule and the offending value, e.g.::

    netlists/x.toml: populations[1].size: must be a positive integer (got -3)
"""

from __future__ import annotations


class NeuroemuError(Exception):
    """Base class of all errors caused by bad input (as opposed to bugs)."""


class NetlistError(NeuroemuError, ValueError):
    """A netlist file (TOML or HDF5) is malformed or inconsistent."""


class CompileError(NeuroemuError, ValueError):
    """A valid netlist cannot be turned into a compiled network."""


class EngineError(NeuroemuError, ValueError):
    """An engine was called with arguments it cannot honour (wrong shape, NaN input...)."""


class TraceError(NeuroemuError, OSError):
    """A trace file is truncated, corrupted, foreign or of an unsupported version."""


class DataError(NeuroemuError, OSError):
    """A dataset file is missing, damaged or of the wrong shape."""


class ProfileError(NeuroemuError, ValueError):
    """A hardware (energy) profile or placement is malformed."""


class TrainError(NeuroemuError, ValueError):
    """Training settings, checkpoints or outputs that cannot be used."""


class OutputError(NeuroemuError, OSError):
    """An output path that neuroemu refuses to write: an input of the same command, a
    directory, a non-regular file (device, FIFO, socket), or an existing file without
    ``--force`` (:mod:`neuroemu.files`)."""


class OptionError(NeuroemuError, ValueError):
    """A command-line option value out of its range (checked before any work starts)."""


class SweepError(NeuroemuError, ValueError):
    """A sweep specification (``neuroemu sweep SPEC.toml``) or its stored study that cannot
    be used: an unknown field, a value out of range, a study made from another spec."""


class InteropError(NeuroemuError, RuntimeError):
    """NIR or NWB conversion cannot run: the optional package it needs (``nir``, ``pynwb``:
    ``pip install 'neuroemu[interop]'``) is missing."""


def where(path, field: str) -> str:
    """Format the ``file: field`` prefix used by every message."""
    p = str(path) if path is not None else "<netlist>"
    return f"{p}: {field}" if field else p
