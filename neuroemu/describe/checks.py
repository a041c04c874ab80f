"""The field checks the one netlist validator is built from (:mod:`.netlist`, :mod:`.projections`).

Each check raises a :class:`~neuroemu.errors.NetlistError` naming the file, the field, the rule
and the value; none of them allocates more than the sizes it has already checked allow.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetlistError, where
from .arrays import read_npy
from .neurons import MAX_VALUE

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_MAX_SIZE = 10_000_000
_MAX_WEIGHTS = 200_000_000  # per projection: 1.6 GB as float64
V2 = "needs [network] format = 2"   # the rule for a format-2 key in a format-1 file


class _Said(str):
    """A value description that is printed as is (not repr'd), e.g. 'shape (2, 3)'."""


def _short(value: Any) -> str:
    s = str(value) if isinstance(value, _Said) else repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _member(value: Any, allowed) -> bool:
    return isinstance(value, str) and value in allowed


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """A value as the user would write it (an ndarray from HDF5 as a list) for messages."""
    return value.tolist() if isinstance(value, np.ndarray) else value


class Checks:
    """Field-by-field checks; each failure raises NetlistError with file, field, rule, value.

    ``fmt`` is the netlist's format (1 or 2): a key only format 2 knows, met in a format-1
    file, is refused with the rule ``needs [network] format = 2``."""

    fmt = 1

    def __init__(self, path):
        self.path = path
        self.base = Path(path).parent if path else Path.cwd()

    def fail(self, fld: str, rule: str, value: Any = ...) -> None:
        got = "" if value is ... else f" (got {_short(value)})"
        raise NetlistError(f"{where(self.path, fld)}: {rule}{got}")

    def known(self, table: dict, fld: str, allowed, v2_only=(), what: str = "unknown key") -> None:
        """Every key of ``table`` must be one of ``allowed``; a key of ``v2_only`` in a
        format-1 file needs format 2."""
        for key in table:
            if key not in allowed:
                name = f"{fld}.{key}" if fld else str(key)
                if key in v2_only and self.fmt == 1:
                    self.fail(name, V2, _plain(table[key]))
                self.fail(name, f"{what} (allowed: {', '.join(sorted(allowed))})",
                          table[key])

    def table(self, value, fld):
        if not isinstance(value, dict):
            self.fail(fld, "must be a table", value)
        return value

    def string(self, value, fld):
        if not isinstance(value, str) or not _NAME_RE.match(value):
            self.fail(fld, "must be a name of letters, digits, '_' or '-' (1-64 chars)", value)
        return value

    def integer(self, value, fld, lo, hi):
        if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
            self.fail(fld, "must be an integer", value)
        if not lo <= value <= hi:
            self.fail(fld, f"must be an integer in [{lo}, {hi}]", value)
        return int(value)

    def number(self, value, fld):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            self.fail(fld, "must be a number", value)
        value = float(value)
        if not math.isfinite(value):
            self.fail(fld, "must be finite", value)
        return value

    def boolean(self, value, fld):
        if not isinstance(value, (bool, np.bool_)):
            self.fail(fld, "must be true or false", value)
        return bool(value)

    def ints(self, value, fld, lens, lo, rule, hi=_MAX_SIZE) -> tuple[int, ...]:
        """A list (or 1-D integer ndarray) of ``len in lens`` integers in [lo, hi]."""
        ok = isinstance(value, (list, tuple)) or \
            isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu"
        if not ok or len(value) not in lens or not all(_is_int(x) and x >= lo for x in value):
            self.fail(fld, rule, _plain(value))
        if any(x > hi for x in value):
            self.fail(fld, f"{rule}, each at most {hi}", _plain(value))
        return tuple(int(x) for x in value)

    def pair(self, value, fld, lo, names) -> tuple[int, int]:
        """``k`` or ``[a, b]`` of integers >= lo (kernel size, stride, padding)."""
        rule = f"must be a {'positive' if lo else 'non-negative'} integer or [{names}]"
        if _is_int(value):
            if value < lo:
                self.fail(fld, rule, value)
            if value > _MAX_SIZE:
                self.fail(fld, f"{rule}, each at most {_MAX_SIZE}", value)
            return int(value), int(value)
        return self.ints(value, fld, (2,), lo, rule)

    def array(self, spec, fld, shape):
        """A scalar, nested list, {file=...} or ndarray, checked for shape and finiteness."""
        if isinstance(spec, dict):
            if set(spec) != {"file"} or not isinstance(spec["file"], str):
                self.fail(fld, "a table here must be { file = \"name.npy\" }", spec)
            fpath = (self.base / spec["file"])
            try:  # header first: shape and size are checked before the data is read
                arr = read_npy(fpath, shape=shape, max_items=_MAX_WEIGHTS, what="array")
            except NetlistError as exc:
                self.fail(f"{fld}.file", f"cannot use .npy file: {exc}", spec["file"])
            fld = f"{fld}.file ({fpath})"
        elif isinstance(spec, (int, float)) and not isinstance(spec, bool) and len(shape) == 1:
            x = self.number(spec, fld)
            if abs(x) > MAX_VALUE:
                self.fail(fld, f"must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}]", spec)
            arr = np.full(shape, x)
        else:
            try:
                arr = np.asarray(spec)
            except (ValueError, TypeError):
                self.fail(fld, "must be a rectangular array of numbers", spec)
        if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
            self.fail(fld, "must hold numbers only", _Said(f"dtype {arr.dtype}"))
        if arr.shape != shape:
            self.fail(fld, f"must have shape {shape}", _Said(f"shape {arr.shape}"))
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        self.bounded(arr, fld)
        arr.setflags(write=False)
        return arr

    def bounded(self, arr, fld):
        """Finite and at most MAX_VALUE in magnitude (docs/netlist-format.md, Bounds): the
        engine computes in float32 (weights, delivered input) and float64, and every sum and
        square it forms of such values stays finite."""
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(arr) <= MAX_VALUE)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            x = float(arr[idx])
            rule = "must be finite" if not math.isfinite(x) else \
                f"must lie in [-{MAX_VALUE:g}, {MAX_VALUE:g}] (the engine computes in float32)"
            self.fail(f"{fld}{list(idx)}", rule, x)
