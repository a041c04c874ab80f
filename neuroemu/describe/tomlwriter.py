"""Writing netlists as TOML text (docs/netlist-format.md), exactly: reading the file back gives
the same network bit for bit.  Arrays of more than ``inline_max`` numbers go to ``.npy`` files
beside the TOML."""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path

import numpy as np

from ..files import check_target, replace_text_with_arrays, save_npy
from ..errors import NetlistError
from .dicts import _check, to_dict
from .netlist import from_dict
from .neurons import OPTIONAL_KEYS

INLINE_MAX = 64            # arrays up to this many numbers are written inline


def save_toml(net, path, *, weights=None, biases=None, inline_max: int = INLINE_MAX) -> Path:
    """Write a netlist as TOML.  Arrays of at most ``inline_max`` numbers are written inline
    (shortest round-tripping decimal form, so exact); larger ones go to ``.npy`` files beside
    the TOML, named ``<stem>.<pre>-<post>.weights.<digest>.npy`` (format 2: ``<name>.weights``
    for a named projection; a sparse projection's ``row``, ``col`` and ``data`` each in a file
    of its own, ``...weights.row.<digest>.npy``) and
    ``<stem>.<population>.bias.<digest>.npy`` (``<digest>``: 12 hex digits of the array's
    SHA-256, :func:`neuroemu.files.npy_name`) and referenced as ``{ file = "..." }``.  A bias
    that is one number everywhere is written as that number.  Loading the TOML gives back
    exactly the same network.

    Atomic (:mod:`neuroemu.files`): the ``.npy`` files are written first under their new names,
    the TOML is replaced last, then the ``.npy`` files only the old TOML named are removed; a
    crash at any point leaves the old netlist or the new one, complete.  Replaces an existing
    regular file at ``path`` (the command line checks ``--force`` first); refuses a directory
    or a non-regular file."""
    base = _check(net)
    raw = to_dict(net, weights, biases)
    checked = from_dict(raw, path=base.path or base.name)
    if base.format == 2:   # written as validated: sparse synapses sorted, defaults filled in
        raw = to_dict(checked)
    path = check_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    written = []

    def npy(arr, key):
        fname = save_npy(path.parent, stem, key, arr)
        written.append(fname)
        return toml_value({"file": fname})

    def array(arr, key):
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if arr.ndim == 1 and arr.size and np.all(arr == arr[0]) and \
                np.all(np.signbit(arr) == np.signbit(arr[0])):
            return toml_value(float(arr[0]))
        if arr.size <= inline_max:
            return toml_value(arr.tolist())
        return npy(arr, key)

    def sparse(d, key):   # { row, col, data }: each inline or in its own .npy file
        parts = []
        for k, dtype in (("row", np.int64), ("col", np.int64), ("data", np.float64)):
            arr = np.ascontiguousarray(d[k], dtype=dtype)
            parts.append(f"{k} = " + (toml_value(arr.tolist()) if arr.size <= inline_max
                                      else npy(arr, f"{key}.{k}")))
        return "{ " + ", ".join(parts) + " }"

    neurons = [p["neuron"] for p in raw["population"]]
    default = max(neurons, key=lambda n: neurons.count(n))
    out = [f"# {base.name}: written by neuroemu from {base.path or 'a netlist in memory'}", "",
           "[network]", f"name = {toml_value(base.name)}", f"seed = {base.seed}"]
    if base.description:
        out.append(f"description = {toml_value(base.description)}")
    if base.format != 1:
        out.append(f"format = {base.format}")
    out += ["", "[neuron]"] + [f"{_key(k)} = {toml_value(v)}" for k, v in default.items()]
    for p in raw["population"]:
        size = f"shape = {toml_value(p['shape'])}" if "shape" in p else f"size = {p['size']}"
        out += ["", "[[population]]", f"name = {toml_value(p['name'])}", size,
                f"role = {toml_value(p['role'])}"]
        if "bias" in p:
            out.append(f"bias = {array(p['bias'], p['name'] + '.bias')}")
        if p["neuron"] != default:
            # a key of [neuron] the population's table lacks would be inherited: lam2 and
            # clamp, optional, are switched off explicitly
            off = {k: False for k in OPTIONAL_KEYS if k in default and k not in p["neuron"]}
            out.append(f"neuron = {toml_value(p['neuron'] | off)}")
    for p in raw["projection"]:
        key = f"{p.get('name') or p['pre'] + '-' + p['post']}.weights"
        out += ["", "[[projection]]"]
        out += [f"{k} = {toml_value(v)}" for k, v in p.items() if k != "weights"]
        if "weights" in p:
            w = p["weights"]
            out.append("weights = " + (sparse(w, key) if isinstance(w, dict) else array(w, key)))
    if base.hardware:
        out += _toml_tables(["hardware"], base.hardware)
    return replace_text_with_arrays(path, "\n".join(out) + "\n", written)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_\-]+", k) else toml_value(k)


def toml_value(v) -> str:
    """An inline TOML value (strings, numbers, booleans, dates, arrays, inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        esc = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
        return '"' + "".join(esc.get(c, c if (ord(c) >= 0x20 and ord(c) != 0x7f)
                                     else f"\\u{ord(c):04x}") for c in v) + '"'
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }" \
            if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise NetlistError(f"cannot write {type(v).__name__} value {v!r} as TOML")


def _toml_tables(keys: list[str], table: dict) -> list[str]:
    """A TOML table with its sub-tables and arrays of tables, in standard block form."""
    head = ".".join(_key(k) for k in keys)
    out, subs = ["", f"[{head}]"], []
    for k, v in table.items():
        if isinstance(v, dict):
            subs.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            subs.append((k, v))
        else:
            out.append(f"{_key(k)} = {toml_value(v)}")
    for k, v in subs:
        if isinstance(v, dict):
            out += _toml_tables(keys + [k], v)
        else:
            for item in v:
                lines = _toml_tables(keys + [k], item)
                lines[1] = "[" + lines[1] + "]"
                out += lines
    return out

