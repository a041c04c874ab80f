"""The neuroemu extension of NIR: what a NIR graph written by neuroemu carries beyond NIR's
standard nodes, so that neuroemu -> NIR -> neuroemu is exact (docs/interop.md).

NIR's standard nodes (``LI``, ``IF``, ``LIF``, ``Affine``, ``Conv2d``...) give any NIR reader
the graph and the weights; they cannot say everything a netlist says (the paper's neuron,
subtractive resets, ``v0``, symmetric projections, sparse synapses of weight zero...).  The
rest travels in NIR's ``metadata`` dicts, which ``nir.write`` / ``nir.read`` store in HDF5:

- the graph's ``metadata["neuroemu"]``: JSON text ``{"extension": "neuroemu", "version": 1,
  "dt": ..., "network": {name, seed, description, format}, "hardware": {...},
  "populations": [node names in netlist order], "projections": [node names in order]}``;
- a population node's ``metadata["neuroemu"]``: JSON ``{"population": {...}}``, the
  population's table as :func:`neuroemu.describe.to_dict` gives it (name, size or shape,
  role, neuron) without the bias, which is ``metadata["bias"]`` (float64, ``(size,)``; absent
  on inputs);
- a projection node's ``metadata["neuroemu"]``: JSON ``{"projection": {...}}``, the
  projection's table without its weights (pre, post, name, kind, symmetric, kernel_size,
  stride, padding); a sparse projection adds ``metadata["row"]`` and ``["col"]`` (int64).

The weights are read from the standard fields (exact: float64 both ways): dense from
``Affine.weight`` (the transpose), sparse from ``Linear.weight`` at ``(col, row)``, conv2d from
``Conv2d.weight``, one_to_one from ``Scale.scale``.  Structured values are JSON text because
``nir.read`` returns lists as arrays and ints as NumPy ints; JSON keeps floats bit for bit.

Nothing here imports ``nir``: :func:`netlist_dict` reads the graph's attributes (node types by
class name), so this module loads without the optional package.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..errors import NetlistError

KEY = "neuroemu"
EXTENSION_VERSION = 1
DEFAULT_DT = 1e-3   # seconds per engine step: NIR's time constants are in seconds

__all__ = ["KEY", "EXTENSION_VERSION", "DEFAULT_DT", "dumps", "encode_network",
           "encode_population", "encode_projection", "is_neuroemu", "netlist_dict",
           "population_types"]


def _plain(x):
    """JSON's ``default``: NumPy scalars and arrays as Python values."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def dumps(obj, what: str = "metadata") -> str:
    """Compact JSON text (floats exact: Python writes the shortest repr that reads back);
    NaN, infinities and values JSON cannot hold are a NetlistError naming ``what``."""
    try:
        return json.dumps(obj, default=_plain, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise NetlistError(f"{what}: cannot be stored in a NIR file's metadata (JSON: "
                           f"{exc})") from None


# ------------------------------------------------------------------------ encoding

def encode_network(raw: dict, dt: float, populations, projections) -> dict[str, Any]:
    """The graph's metadata: the network table of ``raw`` (a :func:`describe.to_dict`
    dict), its hardware table, ``dt`` and the node names of the populations and projections
    in netlist order."""
    net = raw["network"]
    table = {"extension": KEY, "version": EXTENSION_VERSION, "dt": float(dt),
             "network": {k: net[k] for k in ("name", "seed", "description", "format")
                         if k in net},
             "populations": list(populations), "projections": list(projections)}
    if raw.get("hardware"):
        table["hardware"] = raw["hardware"]
        dumps(raw["hardware"], f"{net['name']}: hardware")
    return {KEY: dumps(table, f"{net['name']}: network")}


def encode_population(d: dict) -> dict[str, Any]:
    """A population node's metadata from its :func:`describe.to_dict` table."""
    table = {k: v for k, v in d.items() if k != "bias"}
    meta = {KEY: dumps({"population": table}, f"population {d['name']!r}")}
    if "bias" in d:
        meta["bias"] = np.array(d["bias"], dtype=np.float64).reshape(-1)
    return meta


def encode_projection(d: dict, indices=None) -> dict[str, Any]:
    """A projection node's metadata from its :func:`describe.to_dict` table (its weights
    left out: they are the node's standard field); ``indices`` (2, nnz) of a sparse one."""
    table = {k: v for k, v in d.items() if k != "weights"}
    meta = {KEY: dumps({"projection": table}, f"projection {d['pre']}->{d['post']}")}
    if indices is not None:
        meta["row"] = np.array(indices[0], dtype=np.int64)
        meta["col"] = np.array(indices[1], dtype=np.int64)
    return meta


def population_types(neuron: dict, role: str) -> tuple[str, ...]:
    """The NIR node types a population of this neuron table and role is written as."""
    if role == "input":
        return ("Input",)
    model = neuron.get("model", "paper")
    return {"paper": ("LI",), "if": ("IF",), "lif": ("LIF", "IF")}.get(model, ())


# ------------------------------------------------------------------------ decoding

def _text(value) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SO":
        return _text(value[()])
    return value if isinstance(value, str) else None


def is_neuroemu(graph) -> bool:
    """True if ``graph`` (a ``nir.NIRGraph``) was written by neuroemu: its metadata holds the
    ``"neuroemu"`` key.  Such a graph is read with :func:`netlist_dict` (exact), which says
    what is wrong when the extension is damaged, rather than by the standard mapping."""
    meta = getattr(graph, "metadata", None)
    return isinstance(meta, dict) and KEY in meta


class _Reader:
    """Decoding with errors that name the file, the node and the field."""

    def __init__(self, graph, path):
        self.graph = graph
        self.where = str(path) if path is not None else "<nir>"

    def fail(self, node: str | None, field: str, rule: str, value=None):
        at = f"node '{node}'" if node is not None else "graph"
        got = "" if value is None else f" (got {_short(value)})"
        raise NetlistError(f"{self.where}: {at}: {field}: {rule}{got}")

    def json(self, meta, node, key):
        text = _text(meta.get(KEY)) if isinstance(meta, dict) else None
        if text is None:
            self.fail(node, f"metadata.{KEY}", "must be the neuroemu extension's JSON text",
                      _what(meta.get(KEY) if isinstance(meta, dict) else meta))
        try:
            obj = json.loads(text)
        except ValueError as exc:
            self.fail(node, f"metadata.{KEY}", f"is not valid JSON ({exc})")
        if key is None:
            return obj
        if not isinstance(obj, dict) or not isinstance(obj.get(key), dict):
            self.fail(node, f"metadata.{KEY}", f"must hold a table '{key}'", _what(obj))
        return obj[key]

    def node(self, name, types):
        if not isinstance(name, str):
            self.fail(None, f"metadata.{KEY}", "node names must be strings", _what(name))
        nodes = getattr(self.graph, "nodes", None)
        if not isinstance(nodes, dict) or name not in nodes:
            self.fail(name, "node", "is named by the neuroemu extension but missing from "
                      "the graph")
        node = nodes[name]
        kind = type(node).__name__
        if kind not in types:
            self.fail(name, "type", f"must be {' or '.join(types)} for what the neuroemu "
                      "extension says it is", kind)
        return node

    def array(self, node, name, field, shape, kind="f"):
        """A float64 (or int64) copy of the node's ``field`` ("metadata.x": its metadata's
        "x"), checked for type and shape."""
        if field.startswith("metadata."):
            a = node.metadata.get(field[len("metadata."):])
        else:
            a = getattr(node, field, None)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in ("fi" if kind == "f" else "iu"):
            self.fail(name, field, "must be a numeric array", _what(a))
        if shape is not None and a.shape != tuple(shape):
            self.fail(name, field, f"must have shape {list(shape)}", f"shape {list(a.shape)}")
        if kind == "f":
            return np.array(a, dtype=np.float64, order="C")
        return np.array(a, dtype=np.int64, order="C")


def _what(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {list(x.shape)}"
    return repr(x) if isinstance(x, (str, int, float, bool, type(None))) else type(x).__name__


def _short(x) -> str:
    s = str(x)
    return s if len(s) <= 80 else s[:77] + "..."


def _size(r: _Reader, name, d) -> int:
    if "shape" in d:
        shape = d["shape"]
        if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape):
            r.fail(name, "population.shape", "must be a list of positive integers", shape)
        return math.prod(shape)
    size = d.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        r.fail(name, "population.size", "must be a positive integer", size)
    return size


def netlist_dict(graph, path=None) -> dict[str, Any]:
    """The dict :func:`neuroemu.describe.from_dict` accepts for a graph neuroemu wrote (see
    :func:`is_neuroemu`): exactly the network that was exported (formats 1 and 2, names,
    seeds, neuron tables, biases, kinds, parameters, symmetric flags, sparse synapses,
    hardware table), weights read from the standard fields.  A damaged or inconsistent
    extension is a one-line NetlistError naming ``path``, the node and the field."""
    r = _Reader(graph, path)
    top = r.json(getattr(graph, "metadata", {}), None, None)
    if not isinstance(top, dict) or top.get("extension") != KEY:
        r.fail(None, f"metadata.{KEY}", "must be a table with extension = \"neuroemu\"",
               _what(top))
    version = top.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        r.fail(None, f"metadata.{KEY}.version", "must be a positive integer", version)
    if version > EXTENSION_VERSION:
        r.fail(None, f"metadata.{KEY}.version", f"written by a newer neuroemu (this one reads "
               f"extension version {EXTENSION_VERSION})", version)
    net = top.get("network")
    if not isinstance(net, dict):
        r.fail(None, f"metadata.{KEY}.network", "must be a table", _what(net))
    fmt = net.get("format", 1)
    pop_names, proj_names = top.get("populations"), top.get("projections")
    for key, val in (("populations", pop_names), ("projections", proj_names)):
        if not isinstance(val, list):
            r.fail(None, f"metadata.{KEY}.{key}", "must be a list of node names", _what(val))
    raw: dict[str, Any] = {"network": dict(net)}
    if "hardware" in top:
        raw["hardware"] = top["hardware"]

    pops, sizes = [], {}
    for name in pop_names:
        node = r.node(name, ("Input", "LI", "IF", "LIF"))
        d = dict(r.json(node.metadata, name, "population"))
        want = population_types(d.get("neuron") or {}, d.get("role", "hidden"))
        if type(node).__name__ not in want:
            r.fail(name, "type", f"must be {' or '.join(want) or 'a neuron node'} for a "
                   f"population of role {d.get('role')!r} and neuron {d.get('neuron')!r}",
                   type(node).__name__)
        size = _size(r, name, d)
        if "name" in d:
            sizes[d["name"]] = size
        if "bias" in node.metadata:
            d["bias"] = r.array(node, name, "metadata.bias", (size,))
        pops.append(d)
    raw["population"] = pops

    projs = []
    for name in proj_names:
        node = r.node(name, ("Affine", "Linear", "Conv2d", "AvgPool2d", "Scale"))
        d = dict(r.json(node.metadata, name, "projection"))
        projs.append(_projection(r, name, node, d, sizes, fmt))
    raw["projection"] = projs
    return raw


_KIND_TYPE = {"dense": "Affine", "sparse": "Linear", "conv2d": "Conv2d",
              "avgpool2d": "AvgPool2d", "one_to_one": "Scale"}


def _projection(r: _Reader, name, node, d, sizes, fmt) -> dict:
    """A projection's table with its weights from the node's standard field."""
    kind = d.get("kind", "dense") if fmt == 2 else "dense"
    if kind not in _KIND_TYPE:
        r.fail(name, "projection.kind", f"must be one of {', '.join(_KIND_TYPE)}", kind)
    if type(node).__name__ != _KIND_TYPE[kind]:
        r.fail(name, "type", f"must be {_KIND_TYPE[kind]} for a {kind} projection",
               type(node).__name__)
    n_pre, n_post = (sizes.get(d.get(end)) for end in ("pre", "post"))
    if n_pre is None or n_post is None:
        r.fail(name, "projection.pre/post", "must name populations of the extension",
               f"{d.get('pre')!r} -> {d.get('post')!r}")
    if kind == "dense":
        d["weights"] = r.array(node, name, "weight", (n_post, n_pre)).T.copy()
    elif kind == "sparse":
        w = r.array(node, name, "weight", (n_post, n_pre))
        row = r.array(node, name, "metadata.row", None, kind="i")
        col = r.array(node, name, "metadata.col", None, kind="i")
        if row.ndim != 1 or row.shape != col.shape:
            r.fail(name, "metadata.row/col", "must be two lists of equal length",
                   f"shapes {list(row.shape)} and {list(col.shape)}")
        if row.size and (row.min() < 0 or row.max() >= n_pre or col.min() < 0
                         or col.max() >= n_post):
            r.fail(name, "metadata.row/col", f"must index a {n_pre} x {n_post} matrix")
        rest = w.copy()
        rest[col, row] = 0.0
        if np.any(rest != 0):
            r.fail(name, "weight", "has non-zero entries off the sparse synapses that "
                   "metadata.row/col list (edited outside neuroemu?)")
        d["weights"] = {"row": row, "col": col, "data": w[col, row].copy()}
    elif kind == "conv2d":
        k = r.array(node, name, "weight", None)
        if k.ndim != 4:
            r.fail(name, "weight", "must be a (C_out, C_in, kh, kw) kernel",
                   f"shape {list(k.shape)}")
        d["weights"] = k
    elif kind == "one_to_one":
        s = r.array(node, name, "scale", None)
        if s.size != n_pre:
            r.fail(name, "scale", f"must hold {n_pre} weights", f"shape {list(s.shape)}")
        d["weights"] = s.reshape(-1).copy()
    return d
