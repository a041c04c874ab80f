"""HDF5 netlists: a self-contained file holding a network with its weights and biases.

Trained networks ship in this form.  The file mirrors the TOML netlist (docs/netlist-format.md)
with every weight matrix and bias vector stored as a float64 dataset, so it needs nothing
beside it.  Loading goes through :func:`neuroemu.describe.netlist.from_dict` (all validation
lives there); the arrays are handed over as NumPy arrays.

Layout (format ``neuroemu-netlist`` 1.0; every dataset chunked with a fletcher32 checksum,
every string a fixed-length UTF-8 attribute, so a damaged file fails loudly)::

    /                       attrs format = "neuroemu-netlist", format_version = [1, 0],
                                  name, seed (int64), description
    /hardware               uint8: the [hardware] table as JSON text (absent if empty)
    /source                 uint8: the TOML text the netlist came from (absent if none)
    /population/<i>         i = 0, 1, ... in layer order; attrs name, size, role
    /population/<i>/bias    float64 (size,)  (not for the input population)
    /population/<i>/neuron  attrs encoder, predictive (uint8), decoder
    /population/<i>/neuron/lam, /neuron/eps   attrs kind and the component's parameters
    /projection/<i>         attrs pre, post
    /projection/<i>/weights float64 (pre.size, post.size)

Here: :func:`save_h5`, :func:`load_h5`, and :func:`write_group` / :func:`load_group` (used by
traces, which embed the network they ran), plus the small string and text helpers the trace
files share.  :func:`neuroemu.describe.load` and :func:`neuroemu.describe.save` pick the form
by file suffix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import NetlistError, NeuroemuError
from .dicts import _check, to_dict
from .netlist import Netlist, from_dict

FORMAT = "neuroemu-netlist"
FORMAT_VERSION = (1, 0)
H5_SUFFIXES = (".h5", ".hdf5")
# Dataset filters: deflate (readable by every HDF5 build), byte shuffle, fletcher32 checksum.
FILTERS = dict(compression="gzip", compression_opts=1, shuffle=True, fletcher32=True)
LIBVER = ("v110", "v110")  # HDF5 >= 1.10 file format: every metadata block is checksummed

# --------------------------------------------------------------------------- small h5 helpers

def set_str(attrs, key: str, value: str) -> None:
    """Store a fixed-length UTF-8 string attribute (kept in the checksummed object header)."""
    import h5py
    data = value.encode("utf-8")
    attrs.create(key, np.array(data, dtype=f"S{max(1, len(data))}"),
                 dtype=h5py.string_dtype("utf-8", max(1, len(data))))


def get_str(attrs, key: str) -> str:
    v = attrs[key]
    if isinstance(v, np.ndarray):
        v = v[()]
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def write_text(group, name: str, text: str, **filters) -> None:
    """Store text as a checksummed uint8 dataset (read back with :func:`read_text`)."""
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    if data.size:
        group.create_dataset(name, data=data, chunks=(min(data.size, 1 << 16),),
                             **(filters or FILTERS))


def read_text(group, name: str) -> str | None:
    if name not in group:
        return None
    return group[name][()].tobytes().decode("utf-8")


# --------------------------------------------------------------------------- HDF5 writing

def write_group(g, net: Netlist, weights=None, biases=None) -> None:
    """Write a netlist (with replaced weights or biases, see :func:`to_dict`) into an open,
    empty h5py group."""
    base = _check(net)
    raw = to_dict(net, weights, biases)
    label = base.path or base.name
    from_dict(raw, path=label)  # validate replacements before writing anything
    set_str(g.attrs, "format", FORMAT)
    g.attrs.create("format_version", np.array(FORMAT_VERSION, dtype=np.uint32))
    set_str(g.attrs, "name", base.name)
    g.attrs.create("seed", np.int64(base.seed))
    set_str(g.attrs, "description", base.description)
    if base.hardware:
        try:
            text = json.dumps(base.hardware, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise NetlistError(f"{label}: hardware: cannot be stored in an HDF5 netlist "
                               f"(only strings, numbers, booleans, arrays and tables: {exc})")
        write_text(g, "hardware", text)
    if base.text:
        write_text(g, "source", base.text)
    for kind, items in (("population", raw["population"]), ("projection", raw["projection"])):
        grp = g.create_group(kind)
        grp.attrs.create("count", np.int64(len(items)))
        for i, item in enumerate(items):
            sub = grp.create_group(str(i))
            for key, val in item.items():
                if isinstance(val, np.ndarray):
                    arr = np.ascontiguousarray(val, dtype=np.float64)
                    sub.create_dataset(key, data=arr, chunks=chunks_of(arr.shape), **FILTERS)
                elif key == "neuron":
                    _write_neuron(sub.create_group("neuron"), val)
                elif isinstance(val, str):
                    set_str(sub.attrs, key, val)
                else:
                    sub.attrs.create(key, np.int64(val))


def chunks_of(shape):
    """Chunks of about 1 MB (whole rows)."""
    if len(shape) == 1:
        return (max(1, min(shape[0], 1 << 17)),)
    rows = max(1, min(shape[0], (1 << 17) // max(1, shape[1])))
    return (rows, max(1, min(shape[1], 1 << 17)))


def _write_neuron(g, d: dict) -> None:
    set_str(g.attrs, "encoder", d["encoder"])
    g.attrs.create("predictive", np.uint8(bool(d["predictive"])))
    set_str(g.attrs, "decoder", d["decoder"])
    for comp in ("lam", "eps"):
        c = g.create_group(comp)
        set_str(c.attrs, "kind", d[comp]["kind"])
        for k, v in d[comp].items():
            if k != "kind":
                c.attrs.create(k, np.float64(v))


def save_h5(net: Netlist, path, *, weights=None, biases=None) -> Path:
    """Save a netlist as HDF5; ``weights`` / ``biases`` replace arrays on the way (see
    :func:`~neuroemu.describe.dicts.to_dict`).  The file is written under a temporary name and
    renamed when complete (:func:`neuroemu.files.replacing`: fsynced, a fresh temporary name
    in the same folder), so a crash leaves the old file or the new one.  Replaces an existing
    regular file (the command line checks ``--force`` first); refuses a directory or a
    non-regular file.  Returns the path."""
    from ..files import replacing
    path = Path(path)
    import h5py
    with replacing(path) as tmp:
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            write_group(f, net, weights, biases)
    return path


# --------------------------------------------------------------------------- HDF5 reading

def load_h5(path) -> Netlist:
    """Load an HDF5 netlist -- or the network embedded in a neuroemu trace."""
    import h5py
    path = Path(path)
    if not path.exists():
        raise NetlistError(f"{path}: file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NetlistError(f"{path}: not a readable HDF5 file ({_msg(exc)})") from None
    with f:
        g, label = f, str(path)
        if "format" not in f.attrs and "neuroemu" in f and "netlist" in f["neuroemu"]:
            g, label = f["neuroemu/netlist"], f"{path}:/neuroemu/netlist"  # a trace
        return load_group(g, label, path=path)


def _msg(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_group(g, label: str, path=None) -> Netlist:
    """Build a Netlist from an h5py group written by :func:`write_group`."""
    try:
        if "format" not in g.attrs or get_str(g.attrs, "format") != FORMAT:
            raise NetlistError(f"{label}: not a neuroemu netlist (attribute format = "
                               f"'{FORMAT}' missing)")
        ver = tuple(int(v) for v in g.attrs["format_version"])
        if ver[0] != FORMAT_VERSION[0]:
            raise NetlistError(f"{label}: format_version: netlist format {ver[0]}.{ver[1]} is "
                               f"not readable by this neuroemu (reads {FORMAT_VERSION[0]}.x)")
        net = {"name": get_str(g.attrs, "name"), "seed": int(g.attrs["seed"]),
               "description": get_str(g.attrs, "description")}
        raw = {"network": net}
        hw = read_text(g, "hardware")
        if hw is not None:
            raw["hardware"] = json.loads(hw)
        for kind in ("population", "projection"):
            raw[kind] = [_read_item(g, kind, i, label) for i in range(_count(g, kind, label))]
        text = read_text(g, "source")
    except NeuroemuError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise NetlistError(f"{label}: damaged or incomplete HDF5 netlist ({_msg(exc)})") from None
    return from_dict(raw, path=path if path is not None else label, text=text)


def _count(g, kind: str, label: str) -> int:
    if kind not in g:
        raise NetlistError(f"{label}: /{kind}: group missing")
    n = int(g[kind].attrs["count"])
    names = set(g[kind].keys())
    if names != {str(i) for i in range(n)}:
        raise NetlistError(f"{label}: /{kind}: must hold groups 0..{n - 1} (got "
                           f"{', '.join(sorted(names, key=lambda s: (len(s), s)))})")
    return n


def _read_item(g, kind: str, i: int, label: str) -> dict:
    sub = g[f"{kind}/{i}"]
    d = {}
    for key in sub.attrs:
        v = sub.attrs[key]
        d[key] = get_str(sub.attrs, key) if v.dtype.kind in "SOU" else int(v)
    for key in sub:
        if key == "neuron":
            d["neuron"] = _read_neuron(sub["neuron"])
        else:
            d[key] = sub[key][()]
    return d


def _read_neuron(g) -> dict:
    d = {"encoder": get_str(g.attrs, "encoder"), "predictive": bool(g.attrs["predictive"]),
         "decoder": get_str(g.attrs, "decoder")}
    for comp in ("lam", "eps"):
        c = g[comp]
        d[comp] = {k: (get_str(c.attrs, k) if k == "kind" else float(c.attrs[k]))
                   for k in c.attrs}
    return d


