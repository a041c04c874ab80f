"""HDF5 netlists: a self-contained file holding a network with its weights and biases.

Trained networks ship in this form.  The file mirrors the TOML netlist (docs/netlist-format.md)
with every weight matrix and bias vector stored as a float64 dataset, so it needs nothing
beside it.  Loading goes through :func:`neuroemu.netlist.from_dict` (all validation lives
there); the arrays are handed over as NumPy arrays.

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

Public API: :func:`save`, :func:`load`, :func:`replace`, :func:`to_dict`, :func:`save_toml`,
:func:`convert`, and :func:`write_group` / :func:`load_group` (used by traces, which embed
the network they ran).  ``neuroemu convert A B`` converts between TOML and HDF5.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import netlist as nl
from .errors import NetlistError, NeuroemuError

FORMAT = "neuroemu-netlist"
FORMAT_VERSION = (1, 0)
H5_SUFFIXES = (".h5", ".hdf5")
# Dataset filters: deflate (readable by every HDF5 build), byte shuffle, fletcher32 checksum.
FILTERS = dict(compression="gzip", compression_opts=1, shuffle=True, fletcher32=True)
LIBVER = ("v110", "v110")  # HDF5 >= 1.10 file format: every metadata block is checksummed
INLINE_MAX = 64            # TOML output: arrays up to this many numbers are written inline

CONVERT_EXAMPLE = """examples:
  neuroemu convert netlists/tiny.toml traces/tiny.h5
  neuroemu convert traces/tiny.h5 traces/tiny-copy.toml   (large arrays go to .npy files beside)"""


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


# --------------------------------------------------------------------------- netlist <-> dict

def _resolve(net):
    """(Netlist, default weights, default biases) of a Netlist or a CompiledNetwork."""
    if isinstance(net, nl.Netlist):
        return net, [p.weights for p in net.projections], [p.bias for p in net.populations]
    from .compile import CompiledNetwork
    if isinstance(net, CompiledNetwork):
        w = [net.weights(l).astype(np.float64) for l in range(net.n_layers - 1)]
        b = [net.biases(l).astype(np.float64) for l in range(net.n_layers)]
        return net.netlist, w, b
    raise TypeError(f"expected a Netlist or CompiledNetwork, got {type(net).__name__}")


def _override(base: list, new, keys_of, what: str, where_: str) -> list:
    """Apply a list (None entries keep) or a dict {key: array} of replacements."""
    out = list(base)
    if new is None:
        return out
    if isinstance(new, dict):
        for key, arr in new.items():
            for i, keys in enumerate(keys_of):
                if key in keys:
                    out[i] = arr
                    break
            else:
                names = ", ".join(str(k[0]) for k in keys_of)
                raise NetlistError(f"{where_}: {what}: no entry {key!r} (have: {names})")
        return out
    new = list(new)
    if len(new) != len(base):
        raise NetlistError(f"{where_}: {what}: must give {len(base)} arrays (one per "
                           f"{'projection' if what == 'weights' else 'population'}; None keeps "
                           f"the current one) (got {len(new)})")
    return [b if n is None else n for b, n in zip(base, new)]


def to_dict(net, weights=None, biases=None) -> dict[str, Any]:
    """The plain dict :func:`netlist.from_dict` accepts, with weights and biases as arrays.

    ``net`` is a Netlist or a CompiledNetwork (whose float32 weights -- e.g. after training --
    are widened exactly to float64).  ``weights`` replaces projection matrices: a list with
    one array (or None to keep) per projection in layer order, or a dict keyed by projection
    index, ``"pre->post"`` or ``(pre, post)``.  ``biases`` likewise: a list with one entry per
    population (the input's must be None) or a dict keyed by population name or index.
    """
    base, w, b = _resolve(net)
    label = base.path or base.name
    w = _override(w, weights, [(f"{p.pre}->{p.post}", i, (p.pre, p.post))
                               for i, p in enumerate(base.projections)], "weights", label)
    b = _override(b, biases, [(p.name, i) for i, p in enumerate(base.populations)],
                  "biases", label)
    pops = []
    for i, p in enumerate(base.populations):
        d = {"name": p.name, "size": p.size, "role": p.role, "neuron": p.neuron.as_dict()}
        if p.role != "input":
            d["bias"] = np.asarray(b[i])
        elif np.any(np.asarray(b[i]) != 0):
            raise NetlistError(f"{label}: biases: the input population '{p.name}' has no bias "
                               "(give None or zeros for it)")
        pops.append(d)
    projs = [{"pre": p.pre, "post": p.post, "weights": np.asarray(w[i])}
             for i, p in enumerate(base.projections)]
    raw = {"network": {"name": base.name, "seed": base.seed, "description": base.description},
           "population": pops, "projection": projs}
    if base.hardware:
        raw["hardware"] = base.hardware
    return raw


def replace(net, weights=None, biases=None) -> nl.Netlist:
    """A new validated Netlist with some weights and/or biases replaced (see :func:`to_dict`)."""
    base, _, _ = _resolve(net)
    return nl.from_dict(to_dict(net, weights, biases), path=base.path, text=base.text)


def same(a: nl.Netlist, b: nl.Netlist) -> bool:
    """True if two netlists describe the same network exactly (arrays compared bit for bit)."""
    if (a.name, a.seed, a.description, a.hardware) != (b.name, b.seed, b.description, b.hardware):
        return False
    if len(a.populations) != len(b.populations) or len(a.projections) != len(b.projections):
        return False
    for p, q in zip(a.populations, b.populations):
        if (p.name, p.size, p.role, p.neuron) != (q.name, q.size, q.role, q.neuron) or \
                not np.array_equal(p.bias, q.bias):
            return False
    return all((p.pre, p.post) == (q.pre, q.post) and np.array_equal(p.weights, q.weights)
               for p, q in zip(a.projections, b.projections))


# --------------------------------------------------------------------------- HDF5 writing

def write_group(g, net, weights=None, biases=None) -> None:
    """Write a network (Netlist or CompiledNetwork) into an open, empty h5py group."""
    base, _, _ = _resolve(net)
    raw = to_dict(net, weights, biases)
    label = base.path or base.name
    nl.from_dict(raw, path=label)  # validate replacements before writing anything
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
                    sub.create_dataset(key, data=arr, chunks=_chunks(arr.shape), **FILTERS)
                elif key == "neuron":
                    _write_neuron(sub.create_group("neuron"), val)
                elif isinstance(val, str):
                    set_str(sub.attrs, key, val)
                else:
                    sub.attrs.create(key, np.int64(val))


def _chunks(shape):
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


def save(net, path, *, weights=None, biases=None) -> Path:
    """Save a network to ``path``: HDF5 (``.h5``/``.hdf5``) or TOML (``.toml``, see
    :func:`save_toml`).

    ``net`` is a Netlist or a CompiledNetwork (trained weights live in the compiled network;
    its float32 weights are stored as exact float64).  ``weights`` / ``biases`` replace
    arrays on the way (see :func:`to_dict`), e.g. after training::

        netlist_h5.save(compiled, "netlists/mnist-binary-trained.h5")
        netlist_h5.save(net, "out.h5", weights=[W0, W1], biases={"hidden": b1, "output": b2})

    The file is written under a temporary name and renamed when complete.  Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return save_toml(net, path, weights=weights, biases=biases)
    if suffix not in H5_SUFFIXES:
        raise NetlistError(f"{path}: unknown netlist file type (use .toml, .h5 or .hdf5)")
    import h5py
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            write_group(f, net, weights, biases)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- HDF5 reading

def load(path) -> nl.Netlist:
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


def load_group(g, label: str, path=None) -> nl.Netlist:
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
    return nl.from_dict(raw, path=path if path is not None else label, text=text)


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


# --------------------------------------------------------------------------- TOML writing

def save_toml(net, path, *, weights=None, biases=None, inline_max: int = INLINE_MAX) -> Path:
    """Write a netlist as TOML.  Arrays of at most ``inline_max`` numbers are written inline
    (shortest round-tripping decimal form, so exact); larger ones go to ``.npy`` files beside
    the TOML, named ``<stem>.<pre>-<post>.weights.npy`` and ``<stem>.<population>.bias.npy``
    and referenced as ``{ file = "..." }``.  A bias that is one number everywhere is written
    as that number.  Loading the TOML gives back exactly the same network."""
    base, _, _ = _resolve(net)
    raw = to_dict(net, weights, biases)
    nl.from_dict(raw, path=base.path or base.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.stem

    def array(arr, fname):
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if arr.ndim == 1 and arr.size and np.all(arr == arr[0]) and \
                np.all(np.signbit(arr) == np.signbit(arr[0])):
            return _toml_value(float(arr[0]))
        if arr.size <= inline_max:
            return _toml_value(arr.tolist())
        np.save(path.parent / fname, arr, allow_pickle=False)
        return _toml_value({"file": fname})

    neurons = [p["neuron"] for p in raw["population"]]
    default = max(neurons, key=lambda n: neurons.count(n))
    out = [f"# {base.name}: written by neuroemu from {base.path or 'a netlist in memory'}", "",
           "[network]", f"name = {_toml_value(base.name)}", f"seed = {base.seed}"]
    if base.description:
        out.append(f"description = {_toml_value(base.description)}")
    out += ["", "[neuron]"] + [f"{_key(k)} = {_toml_value(v)}" for k, v in default.items()]
    for p in raw["population"]:
        out += ["", "[[population]]", f"name = {_toml_value(p['name'])}", f"size = {p['size']}",
                f"role = {_toml_value(p['role'])}"]
        if "bias" in p:
            fname = f"{stem}.{p['name']}.bias.npy"
            out.append(f"bias = {array(p['bias'], fname)}")
        if p["neuron"] != default:
            out.append(f"neuron = {_toml_value(p['neuron'])}")
    for p in raw["projection"]:
        fname = f"{stem}.{p['pre']}-{p['post']}.weights.npy"
        out += ["", "[[projection]]", f"pre = {_toml_value(p['pre'])}",
                f"post = {_toml_value(p['post'])}", f"weights = {array(p['weights'], fname)}"]
    if base.hardware:
        out += _toml_tables(["hardware"], base.hardware)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _key(k: str) -> str:
    import re
    return k if re.fullmatch(r"[A-Za-z0-9_\-]+", k) else _toml_value(k)


def _toml_value(v) -> str:
    """An inline TOML value (strings, numbers, booleans, dates, arrays, inline tables)."""
    import datetime
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
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }" \
            if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
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
            out.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in subs:
        if isinstance(v, dict):
            out += _toml_tables(keys + [k], v)
        else:
            for item in v:
                lines = _toml_tables(keys + [k], item)
                lines[1] = "[" + lines[1] + "]"
                out += lines
    return out


# --------------------------------------------------------------------------- convert / CLI

def convert(src, dst, *, force: bool = False) -> Path:
    """Convert a netlist file between TOML and HDF5 (by file suffix); returns ``dst``."""
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in H5_SUFFIXES + (".toml",):
        raise NetlistError(f"{dst}: unknown netlist file type (use .toml, .h5 or .hdf5)")
    if dst.exists() and not force:
        raise NetlistError(f"{dst}: already exists (use --force to overwrite)")
    if dst.exists() and src.resolve() == dst.resolve():
        raise NetlistError(f"{dst}: is the source file itself")
    net = nl.load(src)
    return save(net, dst)


def add_convert_arguments(p) -> None:
    p.epilog = CONVERT_EXAMPLE
    p.add_argument("source", help="netlist to read (.toml, .h5, or a trace .h5)")
    p.add_argument("dest", help="file to write (.toml or .h5); TOML output puts arrays of more "
                   f"than {INLINE_MAX} numbers in .npy files beside it")
    p.add_argument("--force", action="store_true", help="overwrite an existing destination")


def convert_main(args) -> int:
    out = convert(args.source, args.dest, force=args.force)
    net = nl.load(out)
    if not same(net, nl.load(args.source)):  # a bug, not bad input: keep the traceback
        raise RuntimeError(f"{out}: does not read back as the network in {args.source}")
    n_w = sum(p.weights.size for p in net.projections)
    print(f"{args.source} -> {out}: network '{net.name}', {len(net.populations)} populations, "
          f"{n_w} weights (read back: identical)")
    return 0
