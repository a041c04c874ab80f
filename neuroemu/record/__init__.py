"""Recording: HDF5 spike traces in the SONATA layout plus neuroemu's own groups
(docs/trace-format.md).

- :mod:`.layout` -- what the writer and the reader share (constants, filters, checksums);
- :mod:`.writer` -- :class:`TraceWriter` streams a session's phases into a file;
  :func:`write` writes a finished RunResult;
- :mod:`.traced` -- :func:`run_traced` runs and streams in chunks (Ctrl-C stops cleanly);
- :mod:`.checks` -- what the reader checks before it trusts a file;
- :mod:`.reader` -- :class:`Trace`, a lazy reader (:func:`open`);
- :mod:`.plots` -- the spike raster and the probed variables of a trace.

The writer and the reader depend only on :mod:`.layout`, never on each other.
"""

from __future__ import annotations

from .reader import Trace
from .traced import run_traced
from .writer import TraceWriter, write

__all__ = ["Trace", "TraceWriter", "open", "write", "run_traced"]


def open(path) -> Trace:  # noqa: A001  (record.open mirrors h5py.File / builtins.open)
    """Open a trace for reading: a lazy :class:`Trace` (use as a context manager or call
    close())."""
    return Trace(path)
