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
    /population/<i>/neuron/lam2               the same, when the neuron has a second pole
    /population/<i>/neuron/clamp              attrs a, b, when the residue is clamped
    /projection/<i>         attrs pre, post
    /projection/<i>/weights float64 (pre.size, post.size)

A format-2 netlist (``[network] format = 2``) is written as ``format_version = [1, 1]`` with
the root attribute ``network_format = 2`` and the format-2 keys beside the others: a
population's ``shape`` (int64 array, instead of ``size``), its neuron's ``model`` (and
``threshold``, ``leak``, ``v0`` float64, ``reset`` string for if/lif); a projection's ``name``,
``kind``, ``symmetric`` (uint8) and ``kernel_size``, ``stride``, ``padding`` (int64 pairs);
``weights`` in the kind's shape (conv2d ``(C_out, C_in, kh, kw)``, one_to_one ``(n,)``, none for
avgpool2d), for sparse a group of 1-D datasets ``row``, ``col`` (int64) and ``data`` (float64).

Here: :func:`save_h5`, :func:`load_h5`, and :func:`write_group` / :func:`load_group` (used by
traces, which embed the network they ran), plus the small string and text helpers the trace
files share.  :func:`neuroemu.describe.load` and :func:`neuroemu.describe.save` pick the form
by file suffix.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import NetlistError, NeuroemuError, where
from .dicts import _check, to_dict
from .netlist import _MAX_SIZE, _MAX_WEIGHTS, Netlist, from_dict

FORMAT = "neuroemu-netlist"
FORMAT_VERSION = (1, 0)
FORMAT_VERSION_2 = (1, 1)   # format-2 netlists: shapes, models, kinds, sparse groups
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
    checked = from_dict(raw, path=label)  # validate replacements before writing anything
    if base.format == 2:   # written as validated: sparse synapses sorted
        raw = to_dict(checked)
    set_str(g.attrs, "format", FORMAT)
    version = FORMAT_VERSION if base.format == 1 else FORMAT_VERSION_2
    g.attrs.create("format_version", np.array(version, dtype=np.uint32))
    set_str(g.attrs, "name", base.name)
    g.attrs.create("seed", np.int64(base.seed))
    set_str(g.attrs, "description", base.description)
    if base.format != 1:
        g.attrs.create("network_format", np.int64(base.format))
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
                    _dataset(sub, key, np.ascontiguousarray(val, dtype=np.float64))
                elif key == "neuron":
                    _write_neuron(sub.create_group("neuron"), val)
                elif key == "weights" and isinstance(val, dict):   # sparse: row, col, data
                    w = sub.create_group("weights")
                    for k, arr in val.items():
                        _dataset(w, k, np.ascontiguousarray(
                            arr, dtype=np.float64 if k == "data" else np.int64))
                elif isinstance(val, str):
                    set_str(sub.attrs, key, val)
                elif isinstance(val, (list, tuple)):
                    sub.attrs.create(key, np.array(val, dtype=np.int64))
                else:
                    sub.attrs.create(key, np.int64(val))


def _dataset(g, key: str, arr: np.ndarray) -> None:
    if arr.size:
        g.create_dataset(key, data=arr, chunks=chunks_of(arr.shape), **FILTERS)
    else:   # no chunk fits an empty array (a sparse projection without synapses)
        g.create_dataset(key, data=arr)


def chunks_of(shape):
    """Chunks of about 1 MB (whole rows)."""
    if len(shape) == 1:
        return (max(1, min(shape[0], 1 << 17)),)
    if len(shape) > 2:
        inner = math.prod(shape[1:])
        if inner <= 1 << 17:
            return (max(1, min(shape[0], (1 << 17) // max(1, inner))),) + tuple(shape[1:])
        return (1,) + chunks_of(shape[1:])
    rows = max(1, min(shape[0], (1 << 17) // max(1, shape[1])))
    return (rows, max(1, min(shape[1], 1 << 17)))


def _write_neuron(g, d: dict) -> None:
    if "model" in d:
        set_str(g.attrs, "model", d["model"])
    if "encoder" in d:
        set_str(g.attrs, "encoder", d["encoder"])
        g.attrs.create("predictive", np.uint8(bool(d["predictive"])))
        set_str(g.attrs, "decoder", d["decoder"])
        for comp in ("lam", "eps", "lam2", "clamp"):
            if comp not in d:                   # lam2 and clamp only when used
                continue
            c = g.create_group(comp)
            for k, v in d[comp].items():
                if k == "kind":
                    set_str(c.attrs, "kind", v)
                else:
                    c.attrs.create(k, np.float64(v))
    for k in ("threshold", "leak", "v0"):
        if k in d:
            g.attrs.create(k, np.float64(d[k]))
    if "reset" in d:
        set_str(g.attrs, "reset", d["reset"])


def save_h5(net: Netlist, path, *, weights=None, biases=None) -> Path:
    """Save a netlist as HDF5; ``weights`` / ``biases`` replace arrays on the way (see
    :func:`~neuroemu.describe.dicts.to_dict`).  The file is written under a temporary name and
    renamed when complete (:func:`neuroemu.files.replacing`: fsynced, a fresh temporary name
    in the same folder), so a crash leaves the old file or the new one.  Replaces an existing
    regular file (the command line checks ``--force`` first); refuses a directory or a
    non-regular file.  Returns the path."""
    import io

    import h5py

    from ..files import write_bytes
    # built in memory, then written by plain file I/O: a full disk or a file-size limit is
    # then an ordinary OSError on the temporary file, never an HDF5 library left holding a
    # half-written file (which crashes the interpreter at exit)
    image = io.BytesIO()
    with h5py.File(image, "w", libver=LIBVER) as f:
        write_group(f, net, weights, biases)
    return write_bytes(Path(path), image.getvalue())


# --------------------------------------------------------------------------- HDF5 reading

def load_h5(path) -> Netlist:
    """Load an HDF5 netlist -- or the network embedded in a neuroemu trace.

    One error boundary: whatever the file holds (damaged headers, foreign objects, links to
    other files), the result is a Netlist or a one-line NetlistError."""
    import h5py
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NetlistError(f"{path}: file not found") from None
    except OSError as exc:
        raise NetlistError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise NetlistError(f"{path}: must be a regular file (an HDF5 netlist)")
    try:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:   # a trace left open by a killed writer: read the SWMR way
            if "already open for write" not in str(exc):
                raise
            f = h5py.File(path, "r", swmr=True)
    except Exception as exc:  # noqa: BLE001 -- h5py raises many kinds on damaged files
        raise NetlistError(f"{path}: not a readable HDF5 file ({_msg(exc)})") from None
    with f:
        try:
            g, label = f, str(path)
            if "format" not in f.attrs and _member(f, "neuroemu", label) is not None \
                    and _member(f["neuroemu"], "netlist", label) is not None:
                g, label = f["neuroemu/netlist"], f"{path}:/neuroemu/netlist"  # a trace
                magic = np.asarray(f.attrs.get("magic", 0))
                if magic.dtype.kind not in "iu" or magic.size != 1 or int(magic.flat[0]) != 0x0A7A:
                    raise NetlistError(f"{path}: / attribute magic: must be 0x0a7a (a damaged "
                                       f"trace) (got {f.attrs.get('magic')!r})")
        except NeuroemuError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise NetlistError(f"{path}: damaged or incomplete HDF5 file ({_msg(exc)})") from None
        return load_group(g, label, path=path)


def _msg(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_group(g, label: str, path=None) -> Netlist:
    """Build a Netlist from an h5py group written by :func:`write_group`.

    Attribute values go to :func:`from_dict` as they are (numbers, strings, arrays), so the
    HDF5 form obeys exactly the rules of the TOML form; only a boolean stored as the integer
    0 or 1 (HDF5 has no boolean type) becomes false / true.  Every dataset's shape is checked
    against the sizes it must have before it is read; external links, virtual datasets and
    external storage are refused (a netlist never reads another file)."""
    where_ = path if path is not None else label
    try:
        if "format" not in g.attrs or _attr(g.attrs, "format") != FORMAT:
            raise NetlistError(f"{label}: not a neuroemu netlist (attribute format = "
                               f"'{FORMAT}' missing)")
        ver = np.asarray(g.attrs.get("format_version", ()))
        if ver.shape != (2,) or ver.dtype.kind not in "iu":
            raise NetlistError(f"{label}: format_version: must be two integers [major, minor] "
                               f"(got {_short(ver)})")
        ver = tuple(int(v) for v in ver)
        if ver[0] != FORMAT_VERSION[0]:
            raise NetlistError(f"{label}: format_version: netlist format {ver[0]}.{ver[1]} is "
                               f"not readable by this neuroemu (reads {FORMAT_VERSION[0]}.x)")
        net = {k: _attr(g.attrs, k) for k in g.attrs
               if k not in ("format", "format_version", "network_format")}
        if "network_format" in g.attrs:
            net["format"] = _attr(g.attrs, "network_format")
        raw = {"network": net}
        hw = _text(g, "hardware", label)
        if hw is not None:
            raw["hardware"] = json.loads(hw)
        sizes: dict = {}
        for kind in ("population", "projection"):
            raw[kind] = [_read_item(g, kind, i, label, where_, sizes)
                         for i in range(_count(g, kind, label))]
        text = _text(g, "source", label)
    except NeuroemuError:
        raise
    except Exception as exc:  # noqa: BLE001 -- one boundary: h5py raises many kinds
        raise NetlistError(f"{label}: damaged or incomplete HDF5 netlist ({_msg(exc)})") from None
    return from_dict(raw, path=where_, text=text)


_MAX_TEXT = 1 << 26    # bytes of the stored source text or [hardware] JSON
_MAX_ITEMS = 100_000   # populations or projections of one netlist


def _short(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _member(g, name: str, label: str):
    """``g[name]`` if present, refusing links to other files, virtual datasets and datasets
    stored in external files; None if absent."""
    import h5py
    link = g.get(name, getlink=True)
    if link is None:
        return None
    at = f"{g.name.rstrip('/')}/{name}"
    if isinstance(link, h5py.ExternalLink):
        raise NetlistError(f"{label}: {at}: is an external link to {link.filename}:{link.path}; "
                           "a netlist must be self-contained")
    obj = g[name]
    if isinstance(obj, h5py.Dataset):
        if obj.is_virtual:
            raise NetlistError(f"{label}: {at}: is a virtual dataset (it reads other files); a "
                               "netlist must be self-contained")
        if obj.external:
            raise NetlistError(f"{label}: {at}: is stored in external file(s); a netlist must "
                               "be self-contained")
    return obj


def _attr(attrs, key: str):
    """An attribute as a plain Python value, uncoerced: str, int, float, bool, or an ndarray
    when it is not a scalar."""
    v = attrs[key]
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8")
    if isinstance(v, np.str_):
        return str(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _text(g, name: str, label: str) -> str | None:
    """A text dataset (see :func:`write_text`), its shape and size checked before reading."""
    ds = _member(g, name, label)
    if ds is None:
        return None
    import h5py
    if not isinstance(ds, h5py.Dataset) or len(ds.shape) != 1 or ds.dtype != np.uint8 \
            or ds.shape[0] > _MAX_TEXT:
        raise NetlistError(f"{label}: {ds.name}: must be UTF-8 text stored as a 1-D uint8 "
                           f"dataset of at most {_MAX_TEXT} bytes (got "
                           f"{getattr(ds, 'dtype', 'a group')} {getattr(ds, 'shape', '')})")
    return ds[()].tobytes().decode("utf-8")


def _count(g, kind: str, label: str) -> int:
    grp = _member(g, kind, label)
    if grp is None:
        raise NetlistError(f"{label}: /{kind}: group missing")
    if "count" not in grp.attrs:
        raise NetlistError(f"{label}: /{kind}: attribute count missing")
    n = _attr(grp.attrs, "count")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX_ITEMS:
        raise NetlistError(f"{label}: /{kind}: count: must be an integer in [0, {_MAX_ITEMS}] "
                           f"(got {_short(n)})")
    names = set(grp.keys())
    if len(names) != n or names != {str(i) for i in range(n)}:
        shown = ", ".join(sorted(names, key=lambda s: (len(s), s))[:10])
        raise NetlistError(f"{label}: /{kind}: must hold groups 0..{n - 1} (got "
                           f"{shown}{', ...' if len(names) > 10 else ''})")
    return n


def _size_of(value):
    """A population size exactly as from_dict accepts it, else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_SIZE
    return value if ok else None


def _dims_of(d: dict):
    """A population's dims, ``(size,)`` or its shape, exactly as from_dict accepts them, else
    None."""
    shape = d.get("shape")
    if shape is None:
        size = _size_of(d.get("size"))
        return None if size is None else (size,)
    if "size" in d or not isinstance(shape, np.ndarray) or shape.ndim != 1 \
            or shape.dtype.kind not in "iu" or shape.size not in (1, 3):
        return None
    dims = tuple(int(n) for n in shape)
    return dims if min(dims) >= 1 and math.prod(dims) <= _MAX_SIZE else None


def _pair(value):
    """A kernel size ``k`` or ``[kh, kw]`` as from_dict accepts it, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = np.array([value, value])
    if not isinstance(value, np.ndarray) or value.shape != (2,) or value.dtype.kind not in "iu":
        return None
    pair = tuple(int(n) for n in value)
    return pair if all(1 <= n <= _MAX_SIZE for n in pair) else None


def _want(d: dict, sizes: dict) -> dict:
    """The shape a projection's weights dataset must have (None where it cannot be known)."""
    pre, post = (sizes.get(d.get(e)) if isinstance(d.get(e), str) else None
                 for e in ("pre", "post"))
    n_pre, n_post = (math.prod(x) if x else None for x in (pre, post))
    kind = d.get("kind", "dense")
    if kind == "one_to_one":
        return {"weights": (n_pre,)}
    if kind == "conv2d":
        k = _pair(d.get("kernel_size"))
        maps = pre and post and len(pre) == 3 and len(post) == 3 and k
        return {"weights": (post[0], pre[0]) + k if maps else (None,)}
    if kind in ("sparse", "avgpool2d"):
        return {}
    return {"weights": (n_pre, n_post)}


def _read_item(g, kind: str, i: int, label: str, where_, sizes: dict) -> dict:
    """Population or projection ``i``: attributes uncoerced, datasets read only when their
    declared shape is the one the netlist needs (``sizes``: population name -> dims, or None
    when that name is not a valid, unique population)."""
    import h5py
    sub = _member(g[kind], str(i), label)
    if not isinstance(sub, h5py.Group):
        raise NetlistError(f"{label}: /{kind}/{i}: must be a group")
    d = {key: _attr(sub.attrs, key) for key in sub.attrs}
    if kind == "population":
        name = d.get("name")
        if isinstance(name, str):
            sizes[name] = _dims_of(d) if name not in sizes else None
        dims = _dims_of(d)
        want = {"bias": (math.prod(dims) if dims else None,)}
    else:
        if "symmetric" in d and not isinstance(d["symmetric"], bool) \
                and isinstance(d["symmetric"], int) and d["symmetric"] in (0, 1):
            d["symmetric"] = bool(d["symmetric"])  # HDF5 has no boolean: stored as 0 / 1
        want = _want(d, sizes)
    for key in sub:
        obj = _member(sub, key, label)
        fld = f"{kind}[{i}].{key}"
        if key == "neuron" and isinstance(obj, h5py.Group):
            d["neuron"] = _read_neuron(obj, label)
        elif key == "weights" and d.get("kind") == "sparse" and isinstance(obj, h5py.Group):
            d["weights"] = _read_sparse(obj, label, where_, fld)
        elif isinstance(obj, h5py.Dataset):
            shape = want.get(key)
            if shape is None or None in shape or math.prod(shape) > _MAX_WEIGHTS:
                d[key] = _UNREAD  # from_dict fails on the size or the name first
            elif tuple(obj.shape) != shape:
                raise NetlistError(f"{where(where_, fld)}: must have shape {shape} (got shape "
                                   f"{tuple(obj.shape)}, not read)")
            else:
                d[key] = obj[()]
        else:
            d[key] = _UNREAD
    return d


def _read_sparse(g, label: str, where_, fld: str) -> dict:
    """A sparse projection's weights group: 1-D datasets row, col, data (or indptr, indices,
    data), each checked for rank, dtype and length before it is read; from_dict checks the
    rest (equal lengths, index ranges, repeats)."""
    import h5py
    out = {}
    for key in g:
        obj = _member(g, key, label)
        if not isinstance(obj, h5py.Dataset) or key not in ("row", "col", "data", "indptr",
                                                            "indices"):
            out[key] = _UNREAD
            continue
        kinds, what = ("iuf", "numbers") if key == "data" else ("iu", "integers")
        if len(obj.shape) != 1 or obj.dtype.kind not in kinds or obj.shape[0] > _MAX_WEIGHTS:
            raise NetlistError(f"{where(where_, f'{fld}.{key}')}: must be a 1-D dataset of "
                               f"{what} with at most {_MAX_WEIGHTS} entries (got {obj.dtype} "
                               f"shape {tuple(obj.shape)}, not read)")
        out[key] = obj[()]
    return out


class _Unread:
    """Stands for a dataset that was not read (an unknown key, or one whose shape cannot be
    known because its size or population name is invalid); from_dict reports those first."""

    def __repr__(self) -> str:
        return "<HDF5 object, not read>"


_UNREAD = _Unread()


def _read_neuron(g, label: str) -> dict:
    import h5py
    d = {k: _attr(g.attrs, k) for k in g.attrs}
    if "predictive" in d and not isinstance(d["predictive"], bool) \
            and isinstance(d["predictive"], int) and d["predictive"] in (0, 1):
        d["predictive"] = bool(d["predictive"])  # HDF5 has no boolean: stored as uint8 0 / 1
    for key in g:
        obj = _member(g, key, label)
        d[key] = {k: _attr(obj.attrs, k) for k in obj.attrs} \
            if isinstance(obj, h5py.Group) else _UNREAD
    return d


