"""The trace file's layout, shared by the writer and the reader (docs/trace-format.md): the
SONATA constants, the filters of each dataset, the checksum of a progress row, population
names, and the index lists both the command line and the reader parse."""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import EngineError

MAGIC = 0x0A7A
SONATA_VERSION = (0, 1)
FORMAT = "neuroemu-trace"
FORMAT_VERSION = (1, 1)   # 1.1: counters name their projections; maps have a shape
PROBE_VARS = ("s", "v", "eps", "phi")
# The SONATA datasets (/spikes) use only filters every HDF5 build has: libsonata's wheels carry
# an HDF5 without deflate, so a deflated spike dataset cannot be read there.  Node ids: HDF5's
# lossless integer scale-offset filter (each chunk packed into the fewest bits: 9 for 500
# neurons).  Timestamps: the float scale-offset filter with decimal scale 0, which rounds every
# value to a whole number -- exact, bit for bit, for times that are whole numbers of ms
# (integer step * integer dt), and so used only for those (spike_filters); other times (the
# bus engine's sub-tick times, a fractional dt) are stored as they are.  All with fletcher32.
# Only neuroemu reads /neuroemu: there deflate 1 (probed values with byte shuffling).
VALUE_FILTERS = dict(compression="gzip", compression_opts=1, shuffle=True, fletcher32=True)
SONATA_FILTERS = {"fletcher32", "scaleoffset"}   # what /spikes may use (tests check)
SORTINGS = {"none": 0, "by_id": 1, "by_time": 2}


def _h5():
    import h5py
    return h5py


def _msg(exc) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


def spike_filters(kind: str) -> dict:
    """create_dataset keywords of a /spikes dataset: ``kind`` is "node_ids", "whole_times"
    (timestamps that are all whole numbers of ms) or "times" (any other timestamps)."""
    if kind == "times":
        return dict(fletcher32=True)
    h5py = _h5()
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    if kind == "node_ids":
        dcpl.set_scaleoffset(h5py.h5z.SO_INT, h5py.h5z.SO_INT_MINBITS_DEFAULT)
    else:   # decimal scale 0: stores round(t - chunk minimum), exact for whole numbers
        dcpl.set_scaleoffset(h5py.h5z.SO_FLOAT_DSCALE, 0)
    return dict(fletcher32=True, dcpl=dcpl)


def pop_name(layer: str, sample: int, n_samples: int) -> str:
    """SONATA population name of one layer of one recorded sample."""
    return layer if n_samples == 1 else f"{layer}.{sample}"


def progress_check(row) -> int:
    """CRC-32 of a progress row's fields (t_end, t_complete, complete, rows)."""
    data = (np.array([row["t_end"], row["t_complete"]], dtype="<i8").tobytes()
            + bytes([int(row["complete"])]) + np.asarray(row["rows"], dtype="<u8").tobytes())
    return zlib.crc32(data)


def parse_indices(text: str, n: int, what: str) -> np.ndarray:
    """'0-3,7' -> [0, 1, 2, 3, 7]; 'all' -> all of range(n)."""
    if text.strip() in ("", "all"):
        return np.arange(n)
    out = []
    for part in text.split(","):
        try:
            lo, _, hi = part.strip().partition("-")
            lo, hi = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise EngineError(f"{what}: must be indices like 0-9,20 (got {text!r})") from None
        if not 0 <= lo <= hi < n:
            raise EngineError(f"{what}: indices must lie in [0, {n - 1}] (got {part.strip()!r})")
        out.extend(range(lo, hi + 1))
    return np.unique(np.array(out, dtype=np.int64))


def looks_like_trace(path) -> bool:
    """Whether a command given ``path`` should read it as a trace rather than a netlist: an
    ``.h5``/``.hdf5`` file, or the ``NAME.h5.partial`` an unfinished writer leaves, that is not
    an HDF5 netlist (root attribute ``format``) -- it has a SONATA ``magic``, a ``/neuroemu``
    or ``/spikes`` group (then a damaged ``magic`` is the trace reader's one-line error, not a
    netlist to run), or cannot be opened at all (the trace reader says why)."""
    import os
    import stat
    from pathlib import Path
    p = Path(path)
    name = p.name[:-len(".partial")] if p.name.endswith(".partial") else p.name
    if Path(name).suffix.lower() not in (".h5", ".hdf5"):
        return False
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):
            return False
    except OSError:
        return False
    h5py = _h5()
    try:
        try:
            f = h5py.File(p, "r")
        except OSError as exc:   # left open by a writer that did not finish: the SWMR way
            if "already open for write" not in str(exc):   # (SWMR retries damaged reads
                return True                                 # for a long time: not those)
            f = h5py.File(p, "r", swmr=True)
        with f:
            if "format" in f.attrs:
                return False
            return "magic" in f.attrs or "neuroemu" in f or "spikes" in f
    except Exception:  # noqa: BLE001 -- damaged: let the trace reader explain what is wrong
        return True
