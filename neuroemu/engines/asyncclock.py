"""Per-circuit clocks from a file: a chip's measured clocks replayed on the bus engine.

``[hardware.clock] file = "clocks.csv"`` (or a ``.npy``) gives every circuit cluster its own
period and phase offset, and optionally its own jitter amplitude, in quanta:

- **CSV**: a header line naming the columns -- ``period`` (required), ``phase`` and
  ``jitter`` (optional), in any order, comma-separated -- then one row of integers per
  circuit; blank lines and lines starting with ``#`` are skipped;
- **.npy**: a 2-D array of integers (or integral floats) with 1 to 3 columns, in the order
  period, phase, jitter.

Row i is cluster i (clusters in population order, each population cut into ranges of
``cluster_size``), and the file must have one row per cluster -- or, with ``sample = true``,
any number of rows, from which every cluster draws one at random with the run's seed (a
measured distribution rather than a particular chip).  Missing columns mean phase 0 and the
table's ``clock.jitter`` (default 0).  Each row's jitter must stay below half its period, so
that a circuit's ticks never swap.

Every bad value is a :class:`~neuroemu.errors.NetlistError` naming the file, the column and
row, and the value (``clocks.csv: period[3]: must be an integer >= 1 (got 0)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..describe.arrays import open_regular, read_npy
from ..errors import NetlistError, where

COLUMNS = ("period", "phase", "jitter")
MAX_ROWS = 10_000_000
MAX_QUANTA = 1 << 40            # a period or phase beyond this is no clock (and overflows)
MAX_JITTER = (1 << 31) - 1      # the engine draws jitter with 32-bit bounded draws


@dataclass(frozen=True)
class ClockTable:
    """Per-row clocks read from a file (int64 arrays of equal length)."""

    path: str
    period: np.ndarray
    phase: np.ndarray
    jitter: np.ndarray
    sample: bool = False

    @property
    def rows(self) -> int:
        return int(self.period.shape[0])

    def for_clusters(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(period, phase, jitter) of n clusters: row i for cluster i, or rows drawn with
        the run's seed when sampling.  A file with the wrong number of rows is an error."""
        if self.sample:
            rows = np.random.default_rng([int(seed), 0x636C6F63]).integers(0, self.rows, n)
        else:
            if self.rows != n:
                raise NetlistError(
                    f"{self.path}: must have one row per circuit cluster, {n} (or set "
                    f"hardware.clock.sample = true to draw rows) (got {self.rows} rows)")
            rows = np.arange(n)
        return self.period[rows], self.phase[rows], self.jitter[rows]


def read_clock_table(value, sample, jitter, netlist_path) -> ClockTable:
    """The clocks of ``[hardware.clock] file = value``, a path relative to the netlist's
    folder; checked row by row.  ``jitter``: the table's ``clock.jitter`` (None if not
    given), every circuit's amplitude when the file has no jitter column."""
    field = "hardware.clock.file"
    if not isinstance(value, str) or not value:
        raise NetlistError(f"{where(netlist_path, field)}: must be the path of a .csv or "
                           f".npy file (got {value!r})")
    path = Path(value)
    if not path.is_absolute() and netlist_path is not None and \
            not str(netlist_path).startswith("<"):
        path = Path(netlist_path).parent / path
    if path.suffix.lower() in (".npy", ".csv") and not path.exists():
        raise NetlistError(f"{where(netlist_path, field)}: no such file {path} (got {value!r})")
    if path.suffix.lower() == ".npy":
        arr = read_npy(path, ndim=2, kinds="iuf", what="clock table")
        if not 1 <= arr.shape[1] <= 3:
            raise NetlistError(f"{path}: clock table must have 1 to 3 columns (period, phase, "
                               f"jitter) (got shape {arr.shape})")
        cols = {name: arr[:, i] for i, name in enumerate(COLUMNS[:arr.shape[1]])}
    elif path.suffix.lower() == ".csv":
        cols = _read_csv(path)
    else:
        raise NetlistError(f"{where(netlist_path, field)}: must end in .csv or .npy "
                           f"(got {value!r})")
    n = len(cols["period"])
    if n == 0:
        raise NetlistError(f"{path}: clock table has no rows (got 0 rows)")
    if n > MAX_ROWS:
        raise NetlistError(f"{path}: clock table has more than {MAX_ROWS} rows (got {n})")
    period = _integers(path, "period", cols["period"], 1, MAX_QUANTA)
    phase = _integers(path, "phase", cols["phase"], 0, MAX_QUANTA) if "phase" in cols else \
        np.zeros(n, np.int64)
    if "jitter" in cols:
        if jitter is not None:
            raise NetlistError(f"{where(netlist_path, 'hardware.clock.jitter')}: not used "
                               f"when {path} has a jitter column (got {jitter!r})")
        jitter = _integers(path, "jitter", cols["jitter"], 0, MAX_JITTER)
    else:
        jitter = np.full(n, jitter or 0, np.int64)
    bad = np.flatnonzero(2 * jitter >= period)
    if bad.size:
        i = int(bad[0])
        if "jitter" in cols:
            raise NetlistError(f"{path}: jitter[{i}]: must be < period[{i}] / 2 = "
                               f"{period[i] / 2:g} so that ticks stay in order (got "
                               f"{int(jitter[i])})")
        raise NetlistError(f"{where(netlist_path, 'hardware.clock.jitter')}: must be < "
                           f"{path}: period[{i}] / 2 = {period[i] / 2:g} so that ticks stay "
                           f"in order (got {int(jitter[i])})")
    return ClockTable(str(path), period, phase, jitter, bool(sample))


def _integers(path, name, values, lo, hi) -> np.ndarray:
    a = np.asarray(values) if not isinstance(values, list) else \
        np.array([min(max(v, -hi - 1), hi + 1) for v in values], dtype=np.int64)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise NetlistError(f"{path}: {name}[{i}]: must be an integer (got {float(a[i])!r})")
        if (np.abs(a) > hi).any():
            i = int(np.flatnonzero(np.abs(a) > hi)[0])
            raise NetlistError(f"{path}: {name}[{i}]: must be <= {hi} (got {float(a[i])!r})")
    if a.dtype.kind == "u" and (a > hi).any():
        i = int(np.flatnonzero(a > hi)[0])
        raise NetlistError(f"{path}: {name}[{i}]: must be <= {hi} (got {int(a[i])})")
    out = a.astype(np.int64)
    out_of = np.flatnonzero((out < lo) | (out > hi))
    if out_of.size:
        i = int(out_of[0])
        rule = f"must be an integer >= {lo}" if out[i] < lo else f"must be <= {hi}"
        got = values[i] if isinstance(values, list) else int(out[i])
        raise NetlistError(f"{path}: {name}[{i}]: {rule} (got {got})")
    return out


def _read_csv(path) -> dict[str, list]:
    with open_regular(path, NetlistError, "clock table") as fp:
        text = fp.read(64 * MAX_ROWS + 1)
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise NetlistError(f"{path}: clock table must be UTF-8 text (got undecodable bytes)") \
            from None
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and
            not ln.lstrip().startswith("#")]
    if not rows:
        raise NetlistError(f"{path}: clock table needs a header line naming its columns "
                           f"({', '.join(COLUMNS)}) (got an empty file)")
    header = [h.strip().lower() for h in rows[0][1].split(",")]
    for h in header:
        if h not in COLUMNS:
            raise NetlistError(f"{path}: line {rows[0][0]}: unknown column (allowed: "
                               f"{', '.join(COLUMNS)}; the first line names the columns) "
                               f"(got {h!r})")
    if len(set(header)) != len(header):
        raise NetlistError(f"{path}: line {rows[0][0]}: a column is named twice (got "
                           f"{rows[0][1].strip()!r})")
    if "period" not in header:
        raise NetlistError(f"{path}: line {rows[0][0]}: the header must name a 'period' "
                           f"column (got {rows[0][1].strip()!r})")
    cols: dict[str, list] = {h: [] for h in header}
    for r, (line_no, ln) in enumerate(rows[1:]):
        cells = [c.strip() for c in ln.split(",")]
        if len(cells) != len(header):
            raise NetlistError(f"{path}: line {line_no}: must have {len(header)} values "
                               f"({', '.join(header)}) (got {ln.strip()!r})")
        for h, cell in zip(header, cells):
            try:
                cols[h].append(int(cell))
            except ValueError:
                raise NetlistError(f"{path}: {h}[{r}]: must be an integer (line {line_no}) "
                                   f"(got {cell!r})") from None
    return cols
