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
FORMAT_VERSION = (1, 0)
PROBE_VARS = ("s", "v", "eps", "phi")
# Spike times: deflate level 1 (runs of equal times compress ~100x); node ids: HDF5's lossless
# scale-offset filter (packs each chunk into the fewest bits: 9 for 500 neurons), which is 3x
# faster than deflate; probed values: deflate 1 with byte shuffling.  All with fletcher32.
TIME_FILTERS = dict(compression="gzip", compression_opts=1, fletcher32=True)
VALUE_FILTERS = dict(compression="gzip", compression_opts=1, shuffle=True, fletcher32=True)
SORTINGS = {"none": 0, "by_id": 1, "by_time": 2}


def _h5():
    import h5py
    return h5py


def _msg(exc) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__


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
