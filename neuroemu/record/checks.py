"""What the trace reader checks before it trusts a file (docs/trace-format.md, Reading).

A trace is an input like any other: it may be damaged, crafted, or written by something else.
These helpers check one field each and raise a one-line :class:`~neuroemu.errors.TraceError`
naming the file, the field, the rule and the value.  Cheap checks run when the file is opened
(attributes, links, dtypes, shapes, progress rows); checks that need the data run on each
block of rows as it is read (:func:`check_spike_block`), so a trace larger than memory is
never scanned just to be opened.
"""

from __future__ import annotations

import numpy as np

from ..errors import TraceError

MAX_POP_SIZE = 10_000_000   # neurons of one population (the netlist validator's limit)
MAX_OBJECTS = 200_000        # groups, datasets and links of a trace, checked before reading


def fail(path, field: str, rule: str, value=None):
    got = "" if value is None else f" (got {_show(value)})"
    raise TraceError(f"{path}: {field}: {rule}{got}")


def _show(v) -> str:
    if isinstance(v, np.ndarray) and v.size > 4:
        return f"array of shape {v.shape}, dtype {v.dtype}"
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v[:40]
    s = repr(v.tolist() if isinstance(v, np.ndarray) else v)
    return s if len(s) <= 80 else s[:77] + "..."


def attr(path, attrs, name: str, field: str):
    if name not in attrs:
        fail(path, field, "missing")
    return attrs[name]


def integer(path, attrs, name: str, field: str, lo=None, hi=None, default=None) -> int:
    """A scalar integer attribute in [lo, hi]."""
    if default is not None and name not in attrs:
        return default
    v = attr(path, attrs, name, field)
    a = np.asarray(v)
    if a.shape not in ((), (1,)) or a.dtype.kind not in "iu":
        fail(path, field, "must be one integer", v)
    x = int(a.reshape(()))
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        fail(path, field, f"must be an integer {rng}", x)
    return x


def integers(path, attrs, name: str, field: str, n=None, lo=None, hi=None) -> list[int]:
    """A 1-D integer array attribute (of ``n`` values) in [lo, hi]."""
    v = attr(path, attrs, name, field)
    a = np.asarray(v)
    if a.ndim != 1 or a.dtype.kind not in "iu" or (n is not None and a.size != n) \
            or a.size > MAX_OBJECTS:
        fail(path, field, f"must be {n or 'a list of'} integer{'s' if n != 1 else ''}", v)
    if a.size and ((lo is not None and a.min() < lo) or (hi is not None and a.max() > hi)):
        fail(path, field, f"must lie in [{lo}, {hi}]", a)
    return [int(x) for x in a]


def number(path, attrs, name: str, field: str) -> float:
    """A finite positive scalar number."""
    v = attr(path, attrs, name, field)
    a = np.asarray(v)
    if a.shape not in ((), (1,)) or a.dtype.kind not in "iuf":
        fail(path, field, "must be a positive number", v)
    x = float(a.reshape(()))
    if not (np.isfinite(x) and x > 0):
        fail(path, field, "must be a positive finite number", x)
    return x


def text(path, attrs, name: str, field: str) -> str:
    v = attr(path, attrs, name, field)
    if isinstance(v, np.ndarray) and v.shape in ((), (1,)):
        v = v.reshape(())[()]
    if isinstance(v, bytes):
        try:
            v = v.decode("utf-8")
        except UnicodeDecodeError:
            fail(path, field, "must be UTF-8 text", v)
    if not isinstance(v, str):
        fail(path, field, "must be a string", v)
    return v


def dataset(path, grp, name: str, kinds: str, ndim: int, what: str):
    """A plain (not virtual, no external storage) dataset of a dtype kind and dimension."""
    import h5py
    field = f"{grp.name.rstrip('/')}/{name}"
    obj = grp.get(name)
    if not isinstance(obj, h5py.Dataset):
        fail(path, field, f"missing (a dataset of {what})")
    if obj.dtype.kind not in kinds or obj.ndim != ndim:
        fail(path, field, f"must be {what}", f"dtype {obj.dtype}, shape {obj.shape}")
    return obj


def no_foreign_storage(path, f) -> None:
    """Refuse external and soft links, virtual datasets and external raw storage: a trace
    holds its own data (a link or virtual dataset whose source is missing reads as zeros)."""
    import h5py
    bad, seen = [], [0]

    def visit(name, link):
        seen[0] += 1
        if seen[0] > MAX_OBJECTS:
            fail(path, "/", f"more than {MAX_OBJECTS} objects: not a trace")
        if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
            bad.append((name, f"is a {type(link).__name__} (a trace holds its own data)"))
            return
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                bad.append((name, "is a virtual dataset (a trace holds its own data)"))
            elif obj.external:
                bad.append((name, "stores its data in an external file"))
        return None

    f.visititems_links(lambda name, link: visit(name, link) if not bad else 1)
    if bad:
        fail(path, "/" + bad[0][0], bad[0][1])


def check_backed(path, ds, rows: int) -> None:
    """Every chunk holding the first ``rows`` rows is stored in the file: an unwritten chunk
    would read as the fill value (zeros), silently."""
    if rows == 0:
        return
    if ds.chunks is None:
        if ds.id.get_storage_size() < rows * ds.dtype.itemsize * int(np.prod(ds.shape[1:])):
            fail(path, ds.name, f"does not hold the {rows} rows the progress record says")
        return
    c = ds.chunks[0]
    need = -(-rows // c)
    have = np.zeros(need, dtype=bool)

    def mark(info):
        k = info.chunk_offset[0] // c
        if k < need:
            have[k] = True

    ds.id.chunk_iter(mark)
    if not have.all():
        k = int(np.argmin(have))
        fail(path, ds.name, f"rows {k * c}..{min(rows, (k + 1) * c) - 1} are not stored in the "
                            f"file (damaged, or written by something else)")


class SpikeCheck:
    """Checks the blocks of one population as they are read: finite times within the trace's
    span, in order when the population says ``by_time``, node ids within the population."""

    def __init__(self, path, pop: str, size: int, lo: float, hi: float, sorted_: bool):
        self.path, self.pop, self.size = path, pop, size
        self.lo, self.hi, self.sorted = lo, hi, sorted_
        self.last = -np.inf

    def __call__(self, ts: np.ndarray, ids: np.ndarray, first_row: int) -> None:
        if ts.size == 0:
            return
        bad = ~((ts >= self.lo) & (ts <= self.hi))   # NaN fails both
        if bad.any():
            k = int(np.argmax(bad))
            fail(self.path, f"spikes/{self.pop}/timestamps[{first_row + k}]",
                 f"must be a finite time in [{self.lo:g}, {self.hi:g}] ms (the steps the trace "
                 f"holds)", float(ts[k]))
        if self.sorted:
            if ts[0] < self.last or (ts.size > 1 and np.any(ts[1:] < ts[:-1])):
                k = 0 if ts[0] < self.last else int(np.argmax(ts[1:] < ts[:-1])) + 1
                fail(self.path, f"spikes/{self.pop}/timestamps[{first_row + k}]",
                     "out of order in a population sorted by_time", float(ts[k]))
            self.last = float(ts[-1])
        if ids.dtype.kind == "i" and ids.size and ids.min() < 0:
            k = int(np.argmin(ids))
            fail(self.path, f"spikes/{self.pop}/node_ids[{first_row + k}]",
                 "must be a neuron index >= 0", int(ids[k]))
        if ids.size and ids.max() >= self.size:
            k = int(np.argmax(ids))
            fail(self.path, f"spikes/{self.pop}/node_ids[{first_row + k}]",
                 f"must be below the population size {self.size}", int(ids[k]))
