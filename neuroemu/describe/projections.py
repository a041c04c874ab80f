"""Projections: the :class:`Projection` dataclass and the checks of each projection kind.

Format 1 knows one kind: a dense matrix between adjacent layers of a chain, used in both
directions.  Format 2 (docs/netlist-format.md) joins any two populations with a projection of
a kind -- ``dense``, ``sparse`` (COO/CSR), ``conv2d``, ``avgpool2d``, ``one_to_one`` -- either
``symmetric`` (delivered forward with W and backward with its transpose) or one-way.  Here are
the checks of each kind (shapes, parameters, index ranges, sizes before any allocation) and
the initialisers (Glorot-uniform, dense, convolutional and sparse).  Descriptions only: what a
kind computes is the engine's business (:mod:`neuroemu.engines`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NetlistError
from .arrays import read_npy, read_npz
from .checks import _MAX_WEIGHTS, Checks, _is_int, _member, _plain, _Said
from .neurons import MAX_VALUE, PROJECTION_KINDS


def default_seed(network_seed: int, k: int) -> int:
    """The seed of projection k's initial weights when its ``init`` gives none:
    ``(network.seed * 1000 + k) mod 2**63`` (the modulus keeps any valid network seed valid)."""
    return (int(network_seed) * 1000 + k) % 2**63


@dataclass(frozen=True, eq=False)
class Projection:
    """One projection.  ``weights`` (float64, read-only) by kind: dense ``(pre.size,
    post.size)`` (maps flattened in C order); sparse ``(nnz,)`` with ``indices`` (int64 ``(2,
    nnz)``: rows, cols; sorted by (row, col), no repeats); conv2d ``(C_out, C_in, kh, kw)``
    (cross-correlation, PyTorch's conv2d); avgpool2d ``(0,)`` (fixed weight ``1 / (kh kw)``);
    one_to_one ``(n,)``.  ``params``: sorted ``(key, ints)`` pairs: conv2d ``kernel``,
    ``padding``, ``stride``; avgpool2d ``kernel``, ``stride``."""

    pre: str
    post: str
    weights: np.ndarray
    weights_spec: Any = None  # what the file said
    kind: str = "dense"
    symmetric: bool = True
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    indices: np.ndarray | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.pre}->{self.post}"

    def param(self, key: str) -> tuple[int, ...]:
        return dict(self.params)[key]


_COMMON_KEYS = ("pre", "post", "name", "kind", "symmetric")
_KIND_KEYS = {"dense": ("weights",), "sparse": ("weights",),
              "conv2d": ("kernel_size", "stride", "padding", "weights"),
              "avgpool2d": ("kernel_size", "stride"), "one_to_one": ("weights",)}
V1_PROJ_KEYS = ("pre", "post", "weights")
V2_PROJ_KEYS = {k for keys in _KIND_KEYS.values() for k in keys} | set(_COMMON_KEYS)
_SPARSE_FORMS = ("{ file = \"w.npz\" }, { row = [...], col = [...], data = [...] }, "
                 "{ indptr, indices, data } or { init = \"glorot_uniform\", density = ... }")


def glorot_uniform(shape, seed: int, gain: float = 1.0, fans=None) -> np.ndarray:
    """Glorot-uniform weights ``U(-a, a)``, ``a = gain * sqrt(6 / (n_in + n_out))``; the fans
    are ``shape`` (a matrix) unless given (conv2d: ``C_in kh kw`` and ``C_out kh kw``)."""
    n_in, n_out = fans if fans is not None else shape
    a = gain * math.sqrt(6.0 / (n_in + n_out))
    return np.random.default_rng(seed).uniform(-a, a, size=shape)


def sparse_glorot(shape, density: float, seed: int, gain: float = 1.0, zeros: bool = False,
                  limit: int = _MAX_WEIGHTS):
    """A sparse random matrix: each (i, j) of ``shape`` kept with probability ``density``
    (gaps between kept entries of the C-order flattening are geometric), values Glorot-uniform
    with the bound of the dense sizes (or zeros).  Returns (rows, cols, values), sorted by
    (row, col); None if more than ``limit`` entries came out."""
    total = shape[0] * shape[1]
    rng = np.random.default_rng(seed)
    parts, last, count = [], -1, 0
    while True:   # fixed chunks: the stream, and so the draw, depends on the seed only
        gaps = np.minimum(rng.geometric(density, size=1 << 16), total + 1)   # no overflow
        flat = last + np.cumsum(gaps, dtype=np.int64)
        keep = flat[flat < total]
        parts.append(keep)
        count += keep.size
        if count > limit:
            return None
        if keep.size < flat.size:
            break
        last = int(flat[-1])
    flat = np.concatenate(parts)
    rows, cols = np.divmod(flat, shape[1])
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    values = np.zeros(flat.size) if zeros else rng.uniform(-a, a, size=flat.size)
    return rows, cols, values


class ProjectionChecks(Checks):
    """The checks of ``[[projection]]`` tables (mixed into the netlist validator)."""

    # ------------------------------------------------------------------- both formats

    def projection(self, value, i, pops, seed):
        fld = f"projection[{i}]"
        self.table(value, fld)
        kind = "dense"
        if self.fmt == 1:
            self.known(value, fld, V1_PROJ_KEYS, V2_PROJ_KEYS)
        else:
            kind = value.get("kind", "dense")
            if not _member(kind, PROJECTION_KINDS):
                self.fail(f"{fld}.kind", f"must be one of {', '.join(PROJECTION_KINDS)}", kind)
            if kind == "avgpool2d" and "weights" in value:
                self.fail(f"{fld}.weights", "avgpool2d has no weights key (its weights are "
                          "fixed: 1 / (kh * kw))", _plain(value["weights"]))
            self.known(value, fld, _COMMON_KEYS + _KIND_KEYS[kind],
                       what=f"unknown key for kind {kind}")
        by_name = {p.name: p for p in pops}
        ends = []
        for end in ("pre", "post"):
            n = value.get(end)
            if not _member(n, by_name):
                self.fail(f"{fld}.{end}", f"must name a population ({', '.join(by_name)})", n)
            ends.append(by_name[n])
        pre, post = ends
        if self.fmt == 1:
            w, spec = self.dense(value, fld, pre, post, seed, i)
            return Projection(pre.name, post.name, w, spec)
        if post.role == "input":
            self.fail(f"{fld}.post", "must not be an input population (inputs are clamped)",
                      post.name)
        name = self.string(value["name"], f"{fld}.name") if "name" in value else ""
        symmetric = self.boolean(value.get("symmetric", True), f"{fld}.symmetric")
        indices, params = None, ()
        if kind == "dense":
            w, spec = self.dense(value, fld, pre, post, seed, i)
        elif kind == "sparse":
            w, indices, spec = self.sparse(value, fld, pre, post, seed, i)
        elif kind == "conv2d":
            w, spec, params = self.conv2d(value, fld, pre, post, seed, i)
        elif kind == "avgpool2d":
            w, spec, params = self.avgpool2d(value, fld, pre, post)
        else:
            w, spec = self.one_to_one(value, fld, pre, post)
        return Projection(pre.name, post.name, w, spec, kind=kind, symmetric=symmetric,
                          params=params, indices=indices, name=name)

    def dense(self, value, fld, pre, post, seed, i):
        shape = (pre.size, post.size)
        if pre.size * post.size > _MAX_WEIGHTS:
            self.fail(fld, f"at most {_MAX_WEIGHTS} weights per projection",
                      _Said(f"{pre.size} x {post.size}"))
        spec = value.get("weights", {"init": "glorot_uniform"})
        if isinstance(spec, dict) and "init" in spec:
            return self.init(spec, f"{fld}.weights", shape, seed, i), spec
        return self.array(spec, f"{fld}.weights", shape), spec

    def init(self, spec, fld, shape, seed, i, fans=None):
        self.known(spec, fld, ("init", "seed", "gain"))
        rule = spec["init"]
        if not _member(rule, ("glorot_uniform", "zeros")):
            self.fail(f"{fld}.init", "must be one of glorot_uniform, zeros", rule)
        if rule == "zeros":
            w = np.zeros(shape)
        else:
            s = self.integer(spec.get("seed", default_seed(seed, i)), f"{fld}.seed", 0,
                             2**63 - 1)
            gain = self.number(spec.get("gain", 1.0), f"{fld}.gain")
            n_in, n_out = fans if fans is not None else shape
            if abs(gain) * math.sqrt(6.0 / (n_in + n_out)) > MAX_VALUE:
                self.fail(f"{fld}.gain", f"makes weights beyond [-{MAX_VALUE:g}, {MAX_VALUE:g}] "
                          "(the engine computes in float32)", gain)
            w = glorot_uniform(shape, s, gain, fans)
        w.setflags(write=False)
        return w

    def chain(self, pops, projs):
        """Format 1: a chain of layers, one projection between each adjacent pair."""
        names = [p.name for p in pops]
        seen = {}
        for i, pr in enumerate(projs):
            a, b = names.index(pr.pre), names.index(pr.post)
            if b != a + 1:
                self.fail(f"projection[{i}]", "only adjacent layers can be connected, from the "
                          f"lower to the next (expected pre = '{names[b - 1] if b else names[0]}'"
                          f" for post = '{pr.post}')", f"{pr.pre} -> {pr.post}")
            if a in seen:
                self.fail(f"projection[{i}]", f"duplicates projection[{seen[a]}]",
                          f"{pr.pre} -> {pr.post}")
            seen[a] = i
        for a in range(len(pops) - 1):
            if a not in seen:
                self.fail("projection", f"layers '{names[a]}' and '{names[a + 1]}' are not "
                          "connected (every adjacent pair needs one [[projection]])")

    def unique_labels(self, projs):
        """Format 2: projection names (default ``pre->post``) are unique."""
        seen = {}
        for i, pr in enumerate(projs):
            if pr.label in seen:
                rule = "must be unique" + ("" if pr.name else
                                           f" (projection[{seen[pr.label]}] joins the same pair:"
                                           " give each a name)")
                self.fail(f"projection[{i}].name", rule, pr.label)
            seen[pr.label] = i

    def coding_match(self, pops, projs):
        """Predictive decoding is only exact if every sender encodes with the same lambda
        schedules (``lam``, and ``lam2`` or none).
        Deliveries into each receiver: forward along projections into it, backward along
        symmetric projections out of it (for a chain: from the layer below, then above)."""
        index = {p.name: k for k, p in enumerate(pops)}
        for r, recv in enumerate(pops):
            if recv.role == "input":
                continue
            senders = [pj.pre for pj in projs if pj.post == recv.name] + \
                [pj.post for pj in projs if pj.symmetric and pj.pre == recv.name]
            for s in senders:
                send = pops[index[s]]
                pred = send.neuron.predictive
                if recv.neuron.model != "paper":
                    if pred:
                        self.fail(f"population[{r}].neuron.model", f"decodes with identity, so "
                                  f"its sender '{send.name}' must not be predictive",
                                  recv.neuron.model)
                    continue
                fld = f"population[{r}].neuron.decoder"
                if (recv.neuron.decoder == "predictive") != pred:
                    self.fail(fld, f"must be 'predictive' exactly when its sender '{send.name}' "
                              f"has predictive = true (sender predictive = "
                              f"{str(pred).lower()})", recv.neuron.decoder)
                if pred and send.neuron.lam != recv.neuron.lam:
                    self.fail(f"population[{r}].neuron.lam", f"must equal the lambda schedule of "
                              f"its sender '{send.name}' ({send.neuron.lam.as_dict()})",
                              recv.neuron.lam.as_dict())
                if pred and send.neuron.lam2 != recv.neuron.lam2:
                    said = lambda c: c.as_dict() if c is not None else False  # noqa: E731
                    self.fail(f"population[{r}].neuron.lam2", f"must equal the second lambda "
                              f"schedule of its sender '{send.name}' ({said(send.neuron.lam2)})",
                              said(recv.neuron.lam2))

    # ------------------------------------------------------------------- format 2 kinds

    def map_of(self, pop, fld, kind):
        if len(pop.shape) != 3:
            self.fail(fld, f"{kind} joins maps: '{pop.name}' needs shape = [C, H, W]",
                      _Said(f"shape {list(pop.dims)}"))
        return pop.shape

    def conv2d(self, value, fld, pre, post, seed, i):
        (c_in, h, w), post_shape = self.map_of(pre, f"{fld}.pre", "conv2d"), \
            self.map_of(post, f"{fld}.post", "conv2d")
        if "kernel_size" not in value:
            self.fail(f"{fld}.kernel_size", "is required for conv2d (k or [kh, kw])")
        kh, kw = self.pair(value["kernel_size"], f"{fld}.kernel_size", 1, "kh, kw")
        sy, sx = self.pair(value.get("stride", 1), f"{fld}.stride", 1, "sy, sx")
        py, px = self.pair(value.get("padding", 0), f"{fld}.padding", 0, "py, px")
        if kh > h + 2 * py or kw > w + 2 * px:
            self.fail(f"{fld}.kernel_size", f"must fit in the padded input ({h + 2 * py} x "
                      f"{w + 2 * px} for '{pre.name}' {list(pre.shape)}, padding [{py}, {px}])",
                      [kh, kw])
        c_out = post_shape[0]
        want = (c_out, (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1)
        if post_shape != want:
            self.fail(f"{fld}.post", f"'{post.name}' must have shape {list(want)} (the output "
                      f"of '{pre.name}' {list(pre.shape)} with kernel [{kh}, {kw}], stride "
                      f"[{sy}, {sx}], padding [{py}, {px}])", _Said(f"shape {list(post_shape)}"))
        shape = (c_out, c_in, kh, kw)
        if math.prod(shape) > _MAX_WEIGHTS:
            self.fail(fld, f"at most {_MAX_WEIGHTS} weights per projection",
                      _Said(" x ".join(map(str, shape))))
        spec = value.get("weights", {"init": "glorot_uniform"})
        if isinstance(spec, dict) and "init" in spec:
            wts = self.init(spec, f"{fld}.weights", shape, seed, i,
                            fans=(c_in * kh * kw, c_out * kh * kw))
        else:
            wts = self.array(spec, f"{fld}.weights", shape)
        params = (("kernel", (kh, kw)), ("padding", (py, px)), ("stride", (sy, sx)))
        return wts, spec, params

    def avgpool2d(self, value, fld, pre, post):
        (c, h, w), post_shape = self.map_of(pre, f"{fld}.pre", "avgpool2d"), \
            self.map_of(post, f"{fld}.post", "avgpool2d")
        if "kernel_size" not in value:
            self.fail(f"{fld}.kernel_size", "is required for avgpool2d (k or [kh, kw])")
        kh, kw = self.pair(value["kernel_size"], f"{fld}.kernel_size", 1, "kh, kw")
        sy, sx = self.pair(value.get("stride", [kh, kw]), f"{fld}.stride", 1, "sy, sx")
        if kh > h or kw > w:
            self.fail(f"{fld}.kernel_size", f"must fit in the input ({h} x {w} for "
                      f"'{pre.name}' {list(pre.shape)})", [kh, kw])
        want = (c, (h - kh) // sy + 1, (w - kw) // sx + 1)
        if post_shape != want:
            self.fail(f"{fld}.post", f"'{post.name}' must have shape {list(want)} (the output "
                      f"of '{pre.name}' {list(pre.shape)} with kernel [{kh}, {kw}], stride "
                      f"[{sy}, {sx}])", _Said(f"shape {list(post_shape)}"))
        wts = np.zeros(0)
        wts.setflags(write=False)
        return wts, None, (("kernel", (kh, kw)), ("stride", (sy, sx)))

    def one_to_one(self, value, fld, pre, post):
        if pre.size != post.size:
            self.fail(f"{fld}.post", f"one_to_one joins populations of equal size ('{pre.name}'"
                      f" has {pre.size} neurons)", _Said(f"'{post.name}' of size {post.size}"))
        spec = value.get("weights", 1.0)
        if isinstance(spec, dict) and "init" in spec:
            self.fail(f"{fld}.weights", "one_to_one weights are a number, a list or "
                      "{ file = \"w.npy\" } (default 1.0)", spec)
        return self.array(spec, f"{fld}.weights", (pre.size,)), spec

    # ------------------------------------------------------------------- sparse

    def sparse(self, value, fld, pre, post, seed, i):
        fld = f"{fld}.weights"
        if "weights" not in value:
            self.fail(fld, f"is required for kind sparse: {_SPARSE_FORMS}")
        spec = value["weights"]
        if not isinstance(spec, dict):
            self.fail(fld, f"must be {_SPARSE_FORMS}", _plain(spec))
        shape = (pre.size, post.size)
        if "init" in spec:
            rows, cols, data = self.sparse_init(spec, fld, shape, seed, i)
        else:
            if set(spec) == {"file"}:
                arrays, at = self.npz(spec["file"], f"{fld}.file")
            else:
                arrays, at = spec, fld
            rows, cols, data = self.coo(arrays, at, shape, pre, post)
        order = np.lexsort((cols, rows))
        rows, cols, data = rows[order], cols[order], data[order]
        dup = np.flatnonzero((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))
        if dup.size:
            r, c = int(rows[dup[0]]), int(cols[dup[0]])
            self.fail(fld, "must not repeat a synapse (row, col)", _Said(f"({r}, {c}) twice"))
        indices = np.ascontiguousarray(np.stack([rows, cols]), dtype=np.int64)
        data = np.ascontiguousarray(data, dtype=np.float64)
        indices.setflags(write=False)
        data.setflags(write=False)
        return data, indices, spec

    def sparse_init(self, spec, fld, shape, seed, i):
        self.known(spec, fld, ("init", "density", "seed", "gain"))
        rule = spec["init"]
        if not _member(rule, ("glorot_uniform", "zeros")):
            self.fail(f"{fld}.init", "must be one of glorot_uniform, zeros", rule)
        if "density" not in spec:
            self.fail(f"{fld}.density", "is required (the probability of each synapse, in "
                      "(0, 1])")
        density = self.number(spec["density"], f"{fld}.density")
        if not 0.0 < density <= 1.0:
            self.fail(f"{fld}.density", "must lie in (0, 1]", spec["density"])
        expect = density * shape[0] * shape[1]
        if expect > _MAX_WEIGHTS:
            self.fail(f"{fld}.density", f"makes about {expect:.4g} synapses of {shape[0]} x "
                      f"{shape[1]}, beyond the limit of {_MAX_WEIGHTS} per projection", density)
        s = self.integer(spec.get("seed", default_seed(seed, i)), f"{fld}.seed", 0, 2**63 - 1)
        gain = self.number(spec.get("gain", 1.0), f"{fld}.gain")
        if abs(gain) * math.sqrt(6.0 / (shape[0] + shape[1])) > MAX_VALUE:
            self.fail(f"{fld}.gain", f"makes weights beyond [-{MAX_VALUE:g}, {MAX_VALUE:g}] "
                      "(the engine computes in float32)", gain)
        out = sparse_glorot(shape, density, s, gain, zeros=rule == "zeros")
        if out is None:
            self.fail(f"{fld}.density", f"drew more than {_MAX_WEIGHTS} synapses", density)
        return out

    def npz(self, fname, fld):
        if not isinstance(fname, str):
            self.fail(fld, "must be the name of an .npz file", fname)
        fpath = self.base / fname
        try:   # each member's header (dtype, shape) is checked before its data is read
            return read_npz(fpath, ndim=1, max_items=_MAX_WEIGHTS, what="sparse weights",
                            max_members=3), f"{fld} ({fpath})"
        except NetlistError as exc:
            self.fail(fld, f"cannot use .npz file: {exc}", fname)

    def member(self, arrays, key, at, kinds, what):
        """Member ``key`` of a sparse table: a list, a 1-D array or { file = "x.npy" }."""
        fld = f"{at}.{key}"
        v = arrays[key]
        if isinstance(v, dict):
            if set(v) != {"file"} or not isinstance(v["file"], str):
                self.fail(fld, "a table here must be { file = \"name.npy\" }", v)
            fpath = self.base / v["file"]
            try:
                arr = read_npy(fpath, ndim=1, max_items=_MAX_WEIGHTS, kinds=kinds, what=what)
            except NetlistError as exc:
                self.fail(f"{fld}.file", f"cannot use .npy file: {exc}", v["file"])
            return arr
        if isinstance(v, np.ndarray):
            arr = v
        elif isinstance(v, list) and all(_is_int(x) if kinds == "iu" else
                                         isinstance(x, (int, float)) and not isinstance(x, bool)
                                         for x in v):
            try:
                arr = np.asarray(v, dtype=np.int64 if kinds == "iu" else np.float64)
            except (OverflowError, ValueError):
                self.fail(fld, f"must be a list of {what} (each within 64 bits)", _plain(v))
        else:
            arr = None
        if arr is None or arr.ndim != 1 or arr.dtype.kind not in kinds:
            self.fail(fld, f"must be a list of {what} or {{ file = \"name.npy\" }}",
                      _plain(v) if arr is None or arr.size < 20 else
                      _Said(f"{arr.dtype} shape {arr.shape}"))
        if arr.size > _MAX_WEIGHTS:
            self.fail(fld, f"at most {_MAX_WEIGHTS} synapses per projection",
                      _Said(f"{arr.size} entries"))
        return arr

    def coo(self, arrays, at, shape, pre, post):
        """(rows, cols, data) from the COO or CSR members, lengths and ranges checked."""
        keys = set(arrays)
        if keys not in ({"row", "col", "data"}, {"indptr", "indices", "data"}):
            self.fail(at, "must hold row, col and data (COO) or indptr, indices and data (CSR)",
                      _Said(", ".join(sorted(map(str, keys))) or "nothing"))
        data = self.member(arrays, "data", at, "iuf", "numbers")
        if "row" in keys:
            rows = self.member(arrays, "row", at, "iu", "integer indices")
            cols = self.member(arrays, "col", at, "iu", "integer indices")
            if not rows.size == cols.size == data.size:
                self.fail(at, "row, col and data must have equal lengths",
                          _Said(f"{rows.size}, {cols.size}, {data.size}"))
        else:
            ptr = self.member(arrays, "indptr", at, "iu", "integer offsets")
            cols = self.member(arrays, "indices", at, "iu", "integer indices")
            if ptr.size != shape[0] + 1:
                self.fail(f"{at}.indptr", f"must have pre.size + 1 = {shape[0] + 1} entries",
                          _Said(f"{ptr.size} entries"))
            if cols.size != data.size:
                self.fail(at, "indices and data must have equal lengths",
                          _Said(f"{cols.size}, {data.size}"))
            ptr = ptr.astype(np.int64)
            bad = np.flatnonzero(np.diff(ptr) < 0)
            if ptr[0] != 0 or bad.size or ptr[-1] != cols.size:
                self.fail(f"{at}.indptr", f"must rise from 0 to len(indices) = {cols.size}",
                          _plain(ptr) if ptr.size < 20 else _Said(f"{int(ptr[0])} ... "
                                                                  f"{int(ptr[-1])}"))
            rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(ptr))
        name_r = "row" if "row" in keys else "indptr"
        name_c = "col" if "row" in keys else "indices"
        for idx, n, key, pop in ((rows, shape[0], name_r, pre), (cols, shape[1], name_c, post)):
            bad = np.flatnonzero((idx < 0) | (idx >= n))
            if bad.size:
                k = int(bad[0])
                where_ = f"{at}.{key}[{k}]" if key != "indptr" else f"{at}.indptr"
                self.fail(where_, f"must be an index in [0, {n}) ('{pop.name}' has {n} "
                          "neurons)", int(idx[k]))
        data = np.asarray(data, dtype=np.float64)
        self.bounded(data, f"{at}.data")
        return rows.astype(np.int64), cols.astype(np.int64), data
