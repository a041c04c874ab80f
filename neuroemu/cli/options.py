"""Option values checked while the command line is parsed, before any work starts.

Each helper returns an ``argparse`` ``type=`` callable that raises
``argparse.ArgumentTypeError`` with the rule and the value; :class:`neuroemu.cli.Parser`
prints it as one line ``neuroemu: error: --seed: must be an integer in [0, 2**63-1] (got -1)``
and exits 2.  Checks that need a file (an output path, a netlist) are in the commands, still
before any work: :func:`check_outputs` (every output path of a command, via
:mod:`neuroemu.files`) and :func:`resolve_profile`.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from ..files import check_output, check_partial

INT_MAX = 2**63 - 1     # the engines' integers are int64; seeds are the netlist's [0, 2**63-1]


def _fail(rule: str, text) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{rule} (got {text!r})" if not isinstance(text, str)
                                      else f"{rule} (got {text})")


def integer(lo: int = 0, hi: int = INT_MAX):
    """An integer in [lo, hi]; named for the help (``integer >= 1``)."""
    rule = ({0: "must be a non-negative integer", 1: "must be a positive integer"}.get(
        lo, f"must be an integer >= {lo}") if hi == INT_MAX else f"must be an integer in {lo}..{hi}")

    def parse(text: str) -> int:
        try:
            v = int(str(text).strip(), 10)
        except ValueError:
            raise _fail(rule, text) from None
        if not lo <= v <= hi:
            raise _fail(rule, text)
        return v
    parse.__name__ = "integer"
    return parse


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**63-1] (the range a netlist's seed takes)."""
    try:
        v = int(str(text).strip(), 10)
    except ValueError:
        v = -1
    if not 0 <= v <= INT_MAX:
        raise _fail("must be an integer in [0, 2**63-1]", text)
    return v


def number(lo: float | None = None, *, positive: bool = False):
    """A finite number (not nan or inf); ``positive``: > 0; ``lo``: >= lo."""
    rule = ("must be a finite number" + (" > 0" if positive else "")
            + (f" >= {lo:g}" if lo is not None else ""))

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise _fail(rule, text) from None
        if not math.isfinite(v) or (positive and v <= 0) or (lo is not None and v < lo):
            raise _fail(rule, text)
        return v
    parse.__name__ = "number"
    return parse


def subset(choices, what: str = "items"):
    """A comma-separated list of distinct names from ``choices`` (at least one) -> tuple."""
    choices = tuple(choices)

    def parse(text: str) -> tuple:
        names = [s.strip() for s in str(text).split(",") if s.strip()]
        bad = [n for n in names if n not in choices]
        if bad:
            raise _fail(f"unknown {what} {bad[0]!r} (known: {', '.join(choices)})", text)
        if not names:
            raise _fail(f"must name at least one of {', '.join(choices)}", repr(text))
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _fail(f"{dup[0]!r} is named twice", text)
        return tuple(names)
    parse.__name__ = "list"
    return parse


def integers(lo: int = 1, hi: int = INT_MAX):
    """A comma-separated list of integers in [lo, hi] -> tuple of ints."""
    def parse(text: str) -> tuple:
        out = []
        for part in str(text).split(","):
            try:
                v = int(part.strip(), 10)
            except ValueError:
                raise _fail("must be comma-separated integers", text) from None
            if not lo <= v <= hi:
                raise _fail(f"must be comma-separated integers in {lo}..{hi}", text)
            out.append(v)
        return tuple(out)
    parse.__name__ = f"integers >= {lo}"
    return parse


def numbers(lo: float = 0.0):
    """A comma-separated list of finite numbers >= ``lo`` -> tuple of floats."""
    def parse(text: str) -> tuple:
        out = []
        for part in str(text).split(","):
            try:
                v = float(part)
            except ValueError:
                raise _fail("must be comma-separated numbers", text) from None
            if not math.isfinite(v) or v < lo:
                raise _fail(f"must be comma-separated finite numbers >= {lo:g}", text)
            out.append(v)
        return tuple(out)
    parse.__name__ = "numbers"
    return parse


def mesh(text: str) -> str:
    """``WIDTHxHEIGHT`` of cores, each at least 1 (kept as text: the energy model parses it)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m or int(m[1]) < 1 or int(m[2]) < 1 or int(m[1]) * int(m[2]) > 2**31:
        raise _fail("must be WIDTHxHEIGHT, two positive integers like 4x4", text)
    return f"{int(m[1])}x{int(m[2])}"


def nonempty(text: str) -> str:
    """A file name that is not empty."""
    if not str(text).strip():
        raise _fail("needs a file name", repr(text))
    return text


def unique_names(values, option: str) -> None:
    """Repeatable ``POP[:LIST]`` options (``--probe``, ``--neurons``): each population once."""
    seen = set()
    for v in values or []:
        name = v.partition(":")[0]
        if name in seen:
            from ..errors import OptionError
            raise OptionError(f"{option}: population {name!r} is given twice (got "
                              f"{' '.join(f'{option} {x}' for x in values)})")
        seen.add(name)


def check_outputs(outputs, *, inputs=(), force: bool = False, resumable=()) -> None:
    """Check every output path of a command before any work: ``outputs`` is a list of
    ``(option, path)`` (``path`` None: not written); ``resumable``: paths that may exist (the
    command's own resumable outputs).  Two outputs naming one file are refused too."""
    from ..errors import OutputError
    from ..files import is_input
    seen: list[tuple[str, Path]] = []
    for option, path in outputs:
        if path is None:
            continue
        other = is_input(path, [p for _, p in seen])
        if other is not None:
            opt = next(o for o, p in seen if str(p) == other)
            raise OutputError(f"{option} {path}: is also the output of {opt}")
        check_output(path, inputs=inputs, force=force, option=option,
                     resumable=any(is_input(path, [r]) for r in resumable if r is not None))
        seen.append((option, Path(path)))


def check_trace(path, *, inputs=(), force: bool = False, option: str = "--trace") -> None:
    """A trace output and the ``NAME.partial`` it is written under."""
    check_output(path, inputs=inputs, force=force, option=option)
    check_partial(path, force=force, option=option)


def resolve_profile(arg: str) -> str:
    """``--profile``: a shipped profile's name means the shipped profile, whatever files the
    current folder holds, unless the argument is a path with a folder (``./loihi``) or a
    ``.toml`` suffix -- as :func:`neuroemu.describe.resolve` treats netlist names."""
    from ..energy import hardware as hw
    s = str(arg)
    p = Path(s)
    bare = p.parent == Path(".") and not s.startswith(".") \
        and not s.lower().endswith((".toml", ".yaml", ".yml"))
    if bare and s != "all" and s in hw.shipped_profiles():
        return str(hw.shipped_profile_path(s))
    return s        # 'all', or a file (the loader says what is wrong with it)


def check_plot(path, option: str) -> None:
    """A picture output: its suffix must name a format matplotlib writes (``.png``, ``.pdf``,
    ``.svg``...), so the file appears under the name given (matplotlib would add ``.png`` to a
    name without one)."""
    if path is None or str(path) == "":
        return
    suffix = Path(path).suffix.lower().lstrip(".")
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix not in formats:
        from ..errors import OutputError
        raise OutputError(f"{option} {path}: must end in a picture suffix, e.g. .png (matplotlib "
                          f"writes {', '.join('.' + f for f in sorted(formats))})")


def read_input(path, n_in: int):
    """``--input FILE.npy``: header first (a regular file, numbers, at most 2 dimensions and
    the session's cell limit), then the values (finite, within the engine's bounds)."""
    from ..describe.arrays import read_npy
    from ..engines import check_input
    from ..engines.session import MAX_STATE_CELLS
    from ..errors import EngineError
    x = read_npy(path, max_items=MAX_STATE_CELLS, error=EngineError, what="input",
                 expect=f"must hold numbers of shape (batch, {n_in}) or ({n_in},)")
    if x.ndim not in (1, 2):
        raise EngineError(f"{path}: must hold numbers of shape (batch, {n_in}) or ({n_in},) "
                          f"(got shape {x.shape})")
    return check_input(x, n_in, str(path))


def dumps(obj, **kwargs) -> str:
    """JSON for the user: strict (a NaN or infinity is an error naming the first path that
    holds one, never printed as NaN/Infinity)."""
    import json
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        from ..errors import EngineError
        raise EngineError(f"JSON output: {_non_finite(obj) or 'a value'} is not finite; "
                          "nothing was printed") from None


def _non_finite(obj, path="") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "the result"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        found = _non_finite(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None
