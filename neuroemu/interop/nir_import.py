"""NIR import: a graph of the Neuromorphic Intermediate Representation (the ``nir`` package)
as a format-2 netlist, discretised at ``dt`` seconds per engine step (forward Euler).

A graph neuroemu wrote (``nirmeta.is_neuroemu``) comes back exactly from its metadata; any
other goes through the standard mapping of docs/interop.md ("NIR import"): Input -> input
population; LIF/IF -> model lif/if (``leak = 1 - dt/tau``, incoming weights times ``dt r/tau``
or ``dt r``, ``bias = (dt/tau) v_leak`` + the scaled constants of the incoming chains, reset
zero); each chain of linear nodes from a source to a neuron node -> ONE one-way projection
(one_to_one, conv2d, avgpool2d or dense); a neuron node feeding an Output -> an output.
Errors: one line, ``<file>: node '<name>' (<Type>): <field>: <rule> (got <value>)``; sizes
are checked before anything is allocated.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..describe import Netlist, from_dict
from ..describe.checks import _MAX_SIZE, _MAX_WEIGHTS
from ..errors import NetlistError

DEFAULT_DT = 1e-3
DENSE_LIMIT = 20_000_000    # entries of a dense matrix built from a chain of linear nodes
PATH_LIMIT = 10_000         # source-to-neuron paths through linear nodes
UNSUPPORTED = {
    "CubaLIF": "a current-based LIF has a synaptic current state that neuroemu's neurons lack",
    "CubaLI": "a current-based leaky integrator has no neuroemu neuron model",
    "LI": "a leaky integrator without spikes has no neuroemu neuron model",
    "I": "an integrator without spikes has no neuroemu neuron model",
    "Threshold": "a bare threshold (no membrane) has no neuroemu neuron model",
    "Delay": "neuroemu projections have a fixed delay of one step",
    "Conv1d": "neuroemu has 2-D convolutions only",
    "NIRGraph": "nested subgraphs are not supported (flatten the graph first)",
}
LINEAR = ("Affine", "Linear", "Scale", "Flatten", "Conv2d", "SumPool2d", "AvgPool2d", "Identity")
NEURONS = ("IF", "LIF")


def _fmt(value) -> str:
    if isinstance(value, str) and value.startswith("\x00"):
        return value[1:]
    if isinstance(value, np.ndarray):
        return repr(value.tolist()) if value.size <= 6 else f"array of shape {list(value.shape)}"
    s = repr(value)
    return s if len(s) <= 80 else s[:77] + "..."


def said(text: str) -> str:   # a value description printed as is (not repr'd)
    return "\x00" + text


class _Importer:
    def __init__(self, graph, dt, path):
        self.where = str(path) if path is not None else "<nir>"
        self.graph, self.path, self.dt = graph, path, dt

    def fail(self, name, node, fld, rule, value=None):
        kind = type(node).__name__ if node is not None else "graph"
        head = f"{self.where}: node '{name}' ({kind})" if name is not None else \
            f"{self.where}: graph"
        got = "" if value is None else f" (got {_fmt(value)})"
        raise NetlistError(f"{head}: {fld}: {rule}{got}")

    def arr(self, name, node, fld, value=None, ndim=None):
        """A node field as a finite float64 array (its declared size checked first)."""
        value = getattr(node, fld) if value is None else value
        try:
            a = np.asarray(value)
        except Exception:
            self.fail(name, node, fld, "must be an array of numbers", said(type(value).__name__))
        if a.dtype.kind not in "iuf" or a.dtype == np.bool_ or a.size > _MAX_WEIGHTS:
            self.fail(name, node, fld, f"must hold at most {_MAX_WEIGHTS} numbers",
                      said(f"dtype {a.dtype}, shape {list(a.shape)}"))
        if ndim is not None and a.ndim != ndim:
            self.fail(name, node, fld, f"must have {ndim} dimensions", said(f"shape {a.shape}"))
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            self.fail(name, node, fld, "must be finite", a)
        return a

    def _whole(self, name, node, fld, value, sizes, rule):
        try:
            a = np.asarray(value).reshape(-1)
            assert a.dtype.kind in "iuf" and a.size in sizes
            v = tuple(int(x) for x in a)
            assert all(float(x) == float(y) for x, y in zip(v, a))
            return v
        except Exception:
            self.fail(name, node, fld, rule, value)

    def ints(self, name, node, fld, value, n=2, lo=0):
        """An int or ``n`` ints >= lo, as a tuple of ``n``."""
        v = self._whole(name, node, fld, value, (1, n), f"must be an integer or {n} integers")
        if any(x < lo for x in v):
            self.fail(name, node, fld, f"must be >= {lo}", value)
        return v * n if len(v) == 1 else v

    def shape(self, name, node, fld, value):
        """A declared shape: positive integers, at most _MAX_SIZE elements in all."""
        dims = self._whole(name, node, fld, value, range(1, 9), "must be a shape (1 to 8 "
                           "positive integers)")
        if any(d < 1 for d in dims) or math.prod(dims) > _MAX_SIZE:
            self.fail(name, node, fld, f"must be positive and hold at most {_MAX_SIZE} neurons",
                      list(dims))
        return dims

    def structure(self):
        g = self.graph
        nodes, edges = getattr(g, "nodes", None), getattr(g, "edges", None)
        if not isinstance(nodes, dict) or not isinstance(edges, (list, tuple)):
            self.fail(None, None, "nodes", "must be a NIRGraph (nodes and edges)",
                      said(type(g).__name__))
        self.nodes = dict(nodes)
        self.kind = {}
        for name, node in self.nodes.items():
            t = type(node).__name__
            if t in UNSUPPORTED:
                self.fail(name, node, "type", f"unsupported: {UNSUPPORTED[t]}", said(t))
            if t not in LINEAR + NEURONS + ("Input", "Output"):
                self.fail(name, node, "type", "unsupported node type (neuroemu imports Input, "
                          f"Output, IF, LIF, {', '.join(LINEAR)})", said(t))
            self.kind[name] = t
        self.succ, self.pred = {n: [] for n in self.nodes}, {n: [] for n in self.nodes}
        for k, e in enumerate(edges):
            if not (isinstance(e, (tuple, list)) and len(e) == 2):
                self.fail(None, None, f"edges[{k}]", "must be a pair (source, target)", e)
            a, b = e
            for end in (x for x in (a, b) if x not in self.nodes):
                self.fail(None, None, f"edges[{k}]", f"must join nodes of the graph (no node "
                          f"'{end}')", list(e))
            for n, t, rule in ((b, "Input", "receives"), (a, "Output", "sends")):
                if self.kind[n] == t:
                    self.fail(n, self.nodes[n], "edges", f"an {t} node {rule} no edges", list(e))
            if b not in self.succ[a]:
                self.succ[a].append(b)
                self.pred[b].append(a)
        self.inputs = [n for n, t in self.kind.items() if t == "Input"]
        if not self.inputs:
            self.fail(None, None, "nodes", "needs at least one Input node", list(self.kind))
        seen, todo = set(self.inputs), list(self.inputs)
        while todo:
            new = [b for b in self.succ[todo.pop()] if b not in seen]
            seen.update(new)
            todo += new
        for n in (n for n in self.nodes if n not in seen):
            self.fail(n, self.nodes[n], "edges", "has no path from an Input node",
                      said(f"inputs {self.inputs}"))
        self.linear_cycles()
        self.outputs = []
        for n, p in ((n, p) for n, t in self.kind.items() if t == "Output" for p in self.pred[n]):
            if self.kind[p] not in NEURONS:
                self.fail(n, self.nodes[n], "edges", "an Output must be fed by an IF or LIF "
                          "node (a linear node's currents have no neuroemu population)",
                          said(f"'{p}' ({self.kind[p]})"))
            self.outputs += [] if p in self.outputs else [p]
        if not self.outputs:
            self.fail(None, None, "nodes", "needs an Output node fed by an IF or LIF node",
                      list(self.kind))

    def linear_cycles(self):
        state = {}
        for start in self.nodes:
            if self.kind[start] not in LINEAR or start in state:
                continue
            stack = [(start, iter(self.succ[start]))]
            state[start] = 1
            while stack:
                n, it = stack[-1]
                nxt = next((b for b in it if self.kind[b] in LINEAR), None)
                if nxt is None:
                    state[n] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    cyc = [m for m, _ in stack][[m for m, _ in stack].index(nxt):] + [nxt]
                    self.fail(nxt, self.nodes[nxt], "edges", "is on a cycle through linear "
                              "nodes only (a loop needs a neuron node to run)",
                              said(" -> ".join(cyc)))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(self.succ[nxt])))

    def paths(self, start):
        """Every path of linear nodes from ``start``'s successors to a neuron node:
        (list of linear node names, target neuron name)."""
        out, stack = [], [(b, []) for b in reversed(self.succ[start])]
        while stack:
            n, path = stack.pop()
            t = self.kind[n]
            if t in NEURONS:
                out.append((path, n))
            elif t in LINEAR:
                stack.extend((b, path + [n]) for b in reversed(self.succ[n]))
            if len(out) + len(stack) > PATH_LIMIT:
                self.fail(start, self.nodes[start], "edges", f"more than {PATH_LIMIT} paths "
                          "through linear nodes", said(f"from '{start}'"))
        return out

    def neuron(self, name):
        node, t = self.nodes[name], self.kind[name]
        fields = ("tau", "r", "v_leak", "v_threshold", "v_reset") if t == "LIF" else \
            ("r", "v_threshold", "v_reset")
        vals = {f: self.arr(name, node, f, 0.0 if f == "v_reset" and getattr(node, f, None)
                            is None else None) for f in fields}
        dims = vals["r"].shape
        for f, v in vals.items():
            if v.shape != dims and v.size != 1:
                self.fail(name, node, f, f"must have the shape of r {list(dims)}",
                          said(f"shape {list(v.shape)}"))
        if not dims or vals["r"].size == 1 and len(dims) <= 1:
            dims = None   # a scalar: the shape comes from the incoming chains
        else:
            dims = self.shape(name, node, "r", dims)
        for f in ("v_threshold", "v_reset") + (("tau",) if t == "LIF" else ()):
            v = vals[f]
            if v.size and v.min() != v.max():
                self.fail(name, node, f, "must be uniform across the population (neuroemu has "
                          "one value per population)", said(f"{v.min():g} to {v.max():g}"))
        thr, reset = float(vals["v_threshold"].flat[0]), float(vals["v_reset"].flat[0])
        if reset != 0.0:
            self.fail(name, node, "v_reset", "must be 0 (neuroemu resets to zero or by "
                      "subtraction)", reset)
        if not 0.0 < thr < 1e20:
            self.fail(name, node, "v_threshold", "must lie in (0, 1e20) (neuroemu's threshold)",
                      thr)
        dt = self.dt
        if t == "LIF":
            tau = float(vals["tau"].flat[0])
            if not dt < tau:
                self.fail(name, node, "tau", f"must exceed dt = {dt:g} s (forward Euler: "
                          "leak = 1 - dt/tau must lie in (0, 1))", tau)
            leak = 1.0 - dt / tau
            gain, rest = dt * vals["r"] / tau, dt / tau * vals["v_leak"]
        else:
            leak, gain, rest = 1.0, dt * vals["r"], np.zeros(1)
        # NIR fires when v > v_threshold, neuroemu when V >= threshold: one ulp above
        # makes the two the same comparison in float64
        thr = float(np.nextafter(thr, np.inf))
        return {"name": name, "model": t.lower(), "dims": dims, "leak": leak, "threshold": thr,
                "gain": gain, "rest": rest}

    def declared(self, name, node, need=True):
        """The shape in a node's ``input_type`` (None if absent and not ``need``)."""
        it = getattr(node, "input_type", None)
        shape = it.get("input") if isinstance(it, dict) else None
        if shape is None and need:
            self.fail(name, node, "input_type", "must give the input's shape", it)
        return None if shape is None else self.shape(name, node, "input_type", shape)

    def op(self, name, cur, src):
        """Node ``name`` as an operation on inputs of shape ``cur`` (coming from ``src``):
        a dict with its type ``t``, parameters, ``in`` and ``out`` shapes.  Cached: a node met
        with two input shapes is an error."""
        if name in self.ops:
            op = self.ops[name]
            if op["in"] != cur and math.prod(op["in"]) != math.prod(cur):
                self.fail(name, self.nodes[name], "input", f"receives inputs of shape "
                          f"{list(op['in'])} and of another shape", said(f"{list(cur)} from "
                                                                          f"'{src}'"))
            return op
        node, t, n = self.nodes[name], self.kind[name], math.prod(cur)
        op = {"t": t, "name": name, "in": cur, "out": cur, "b": None}
        if t == "Identity":
            pass
        elif t == "Flatten":
            dims = self.declared(name, node, need=False)
            if dims is not None and math.prod(dims) != n:
                self.fail(name, node, "input_type", f"must hold the {n} values of shape "
                          f"{list(cur)} arriving from '{src}'", list(dims))
            op["out"] = (n,)
        elif t == "Scale":
            s = self.arr(name, node, "scale").reshape(-1)
            if s.size not in (1, n):
                self.fail(name, node, "scale", f"must have {n} values (shape {list(cur)} "
                          f"arriving from '{src}')", said(f"{s.size} values"))
            op["s"] = np.broadcast_to(s, (n,)).copy()
        elif t in ("Affine", "Linear"):
            w = self.arr(name, node, "weight", ndim=2)
            if w.shape[1] != n:
                self.fail(name, node, "weight", f"must have shape [out, {n}] (the {n} values "
                          f"of shape {list(cur)} arriving from '{src}')",
                          said(f"shape {list(w.shape)}"))
            if w.shape[0] > _MAX_SIZE:
                self.fail(name, node, "weight", f"must have at most {_MAX_SIZE} rows",
                          said(f"shape {list(w.shape)}"))
            op["W"], op["out"] = w, (w.shape[0],)
            if t == "Affine":
                b = self.arr(name, node, "bias").reshape(-1)
                if b.size not in (1, w.shape[0]):
                    self.fail(name, node, "bias", f"must have {w.shape[0]} values",
                              said(f"{b.size} values"))
                op["b"] = np.broadcast_to(b, (w.shape[0],)).copy()
        elif t == "Conv2d":
            self.conv_op(name, node, op, cur, src)
        else:
            self.pool_op(name, node, op, cur, src)
        self.ops[name] = op
        return op

    def map_in(self, name, node, cur, src, c=None, hw=None):
        n = math.prod(cur)
        if hw is not None and c is not None and c * hw[0] * hw[1] == n and \
                (len(cur) != 3 or tuple(cur) == (c, *hw)):
            return (c, *hw)
        if len(cur) == 3 and (c is None or cur[0] == c) and (hw is None or tuple(cur[1:]) == hw):
            return tuple(cur)
        want = f"[{c if c else 'C'}, {', '.join(map(str, hw)) if hw else 'H, W'}]"
        self.fail(name, node, "input_shape", f"needs a map input of shape {want}", said(
            f"shape {list(cur)} arriving from '{src}'"))

    def conv_op(self, name, node, op, cur, src):
        k = self.arr(name, node, "weight", ndim=4)
        groups = getattr(node, "groups", 1)
        if groups != 1:
            self.fail(name, node, "groups", "unsupported: must be 1 (neuroemu's conv2d joins "
                      "every input channel to every output channel)", groups)
        dil = self.ints(name, node, "dilation", getattr(node, "dilation", 1), lo=1)
        if dil != (1, 1):
            self.fail(name, node, "dilation", "unsupported: must be 1", list(dil))
        stride = self.ints(name, node, "stride", getattr(node, "stride", 1), lo=1)
        kh, kw = k.shape[2:]
        pad = getattr(node, "padding", 0)
        if isinstance(pad, str):
            same = pad == "same" and stride == (1, 1) and kh % 2 and kw % 2
            pad = (0, 0) if pad == "valid" else ((kh - 1) // 2, (kw - 1) // 2) if same else \
                self.fail(name, node, "padding", "unsupported: 'same' needs stride 1 and an "
                          "odd kernel (neuroemu pads symmetrically)", pad)
        pad = self.ints(name, node, "padding", pad)
        hw = getattr(node, "input_shape", None)
        hw = None if hw is None else self.ints(name, node, "input_shape", hw, lo=1)
        c, h, w = self.map_in(name, node, cur, src, k.shape[1], hw)
        if kh > h + 2 * pad[0] or kw > w + 2 * pad[1]:
            self.fail(name, node, "weight", f"kernel must fit in the padded input "
                      f"{[h + 2 * pad[0], w + 2 * pad[1]]}", [kh, kw])
        out = (k.shape[0], (h + 2 * pad[0] - kh) // stride[0] + 1,
               (w + 2 * pad[1] - kw) // stride[1] + 1)
        if math.prod(out) > _MAX_SIZE:
            self.fail(name, node, "weight", f"makes more than {_MAX_SIZE} outputs", list(out))
        b = getattr(node, "bias", None)
        if b is not None:
            b = self.arr(name, node, "bias", b).reshape(-1)
            if b.size not in (1, out[0]):
                self.fail(name, node, "bias", f"must have {out[0]} values (one per output "
                          "channel)", said(f"{b.size} values"))
            op["b"] = np.repeat(np.broadcast_to(b, (out[0],)), out[1] * out[2])
        op.update(K=k, stride=stride, pad=pad, out=out)
        op["in"] = (c, h, w)

    def pool_op(self, name, node, op, cur, src):
        c, h, w = self.map_in(name, node, cur, src)
        k = self.ints(name, node, "kernel_size", getattr(node, "kernel_size", None), lo=1)
        s = getattr(node, "stride", None)
        s = k if s is None else self.ints(name, node, "stride", s, lo=1)
        p = self.ints(name, node, "padding", getattr(node, "padding", 0))
        if k[0] > h + 2 * p[0] or k[1] > w + 2 * p[1]:
            self.fail(name, node, "kernel_size", f"must fit in the padded input "
                      f"{[h + 2 * p[0], w + 2 * p[1]]}", list(k))
        out = (c, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)
        diag = np.zeros((c, c, *k))
        diag[np.arange(c), np.arange(c)] = 1.0 / (k[0] * k[1] if op["t"] == "AvgPool2d" else 1)
        op.update(K=diag, stride=s, pad=p, out=out, k=k, **{"in": (c, h, w)})


def apply(op, x):
    """One linear node on a batch ``x`` (B, *op['in']) -> (B, *op['out']) (no bias)."""
    b = x.shape[0]
    t = op["t"]
    if t in ("Identity", "Flatten"):
        return x.reshape(b, *op["out"])
    if t == "Scale":
        return (x.reshape(b, -1) * op["s"]).reshape(b, *op["out"])
    if t in ("Affine", "Linear"):
        return x.reshape(b, -1) @ op["W"].T
    k, (sy, sx), (py, px) = op["K"], op["stride"], op["pad"]
    x = x.reshape(b, *op["in"])
    xp = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)))
    co, ho, wo = op["out"]
    out = np.zeros((b, co, ho, wo))
    for ky in range(k.shape[2]):
        for kx in range(k.shape[3]):
            win = xp[:, :, ky:ky + sy * (ho - 1) + 1:sy, kx:kx + sx * (wo - 1) + 1:sx]
            out += np.einsum("bchw,oc->bohw", win, k[:, :, ky, kx])
    return out


def _uniform(v, rows):
    """``v`` (flat) as (rows, -1): its per-row values if each row is constant, else None."""
    m = v.reshape(rows, -1)
    return m[:, 0].copy() if (m == m[:, :1]).all() else None


def _project(ops, n_pre, gain):
    """A path's linear nodes as one projection into neurons of gain ``gain`` (the factor
    dt r / tau of each post neuron): a dict of netlist projection keys, plus ``pre_map`` and
    ``post_map`` (the map shapes a conv2d/avgpool2d needs at its ends), or None when only a
    dense matrix (too large) could express it."""
    core = [o for o in ops if o["t"] not in ("Identity", "Flatten")]
    i = 0
    while i < len(core) and core[i]["t"] == "Scale":
        i += 1
    j = len(core)
    while j > i and core[j - 1]["t"] == "Scale":
        j -= 1
    mid = core[i:j]
    n_post = gain.size
    a = np.prod([o["s"] for o in core[:i]], axis=0) if i else np.ones(n_pre)
    c = (np.prod([o["s"] for o in core[j:]], axis=0) if j < len(core) else 1.0) * gain
    if not mid:
        return {"kind": "one_to_one", "weights": a * c}
    if len(mid) == 1 and mid[0]["t"] in ("Affine", "Linear"):
        return {"kind": "dense", "weights": (a[:, None] * mid[0]["W"].T) * c[None, :]}
    conv = None
    if len(mid) == 1 and mid[0]["t"] in ("Conv2d", "SumPool2d", "AvgPool2d"):
        conv = dict(mid[0])
    elif len(mid) == 2 and mid[0]["t"] in ("SumPool2d", "AvgPool2d") and \
            mid[1]["t"] == "Conv2d":
        p, q = mid
        (_, h, w), (ky, kx) = p["in"], p["k"]
        if p["stride"] == p["k"] and p["pad"] == (0, 0) and \
                (h % ky == 0 and w % kx == 0 or q["pad"] == (0, 0)):
            k = np.repeat(np.repeat(q["K"], ky, axis=2), kx, axis=3) * p["K"][0, 0, 0, 0]
            conv = {"t": "Conv2d", "K": k, "in": p["in"], "out": q["out"],
                    "stride": (q["stride"][0] * ky, q["stride"][1] * kx),
                    "pad": (q["pad"][0] * ky, q["pad"][1] * kx)}
    if conv is not None:
        a_ch, c_ch = _uniform(a, conv["in"][0]), _uniform(c, conv["out"][0])
        if a_ch is not None and c_ch is not None:
            ends = {"pre_map": conv["in"], "post_map": conv["out"]}
            if conv["t"] == "AvgPool2d" and conv["pad"] == (0, 0) and \
                    (a_ch == 1).all() and (c_ch == 1).all():
                return {"kind": "avgpool2d", "kernel_size": list(conv["k"]),
                        "stride": list(conv["stride"]), **ends}
            k = conv["K"] * a_ch[None, :, None, None] * c_ch[:, None, None, None]
            return {"kind": "conv2d", "weights": k, "kernel_size": list(k.shape[2:]),
                    "stride": list(conv["stride"]), "padding": list(conv["pad"]), **ends}
    if n_pre * n_post > DENSE_LIMIT:
        return None
    m = np.empty((n_pre, n_post))
    step = max(1, DENSE_LIMIT // (4 * max(n_pre, n_post)))
    for lo in range(0, n_pre, step):
        hi = min(n_pre, lo + step)
        x = np.zeros((hi - lo, n_pre))
        x[np.arange(hi - lo), np.arange(lo, hi)] = 1.0
        for o in ops:
            x = apply(o, x)
        m[lo:hi] = x.reshape(hi - lo, -1)
    return {"kind": "dense", "weights": m * gain[None, :]}


def _names(raw):
    out, seen = {}, set()
    for n in raw:
        s = re.sub(r"[^A-Za-z0-9_-]", "_", str(n))[:60] or "node"
        base, k = s, 1
        while s in seen:
            k += 1
            s = f"{base}_{k}"
        seen.add(s)
        out[n] = s
    return out


class _Builder(_Importer):
    def build(self) -> Netlist:
        self.structure()
        self.ops = {}
        neurons = {n: self.neuron(n) for n, t in self.kind.items() if t in NEURONS}
        dims = {n: self.declared(n, self.nodes[n]) for n in self.inputs}
        dims.update({n: v["dims"] for n, v in neurons.items()})
        pending = [(s, path, t) for s in self.inputs + list(neurons)
                   for path, t in self.paths(s)]
        done = []
        while pending:
            left = []
            for s, path, t in pending:
                if dims[s] is None:
                    left.append((s, path, t))
                    continue
                cur, ops = dims[s], []
                for n in path:
                    ops.append(self.op(n, cur, s))
                    cur = ops[-1]["out"]
                if dims[t] is None:
                    dims[t] = self.shape(t, self.nodes[t], "input", cur)
                elif math.prod(cur) != math.prod(dims[t]):
                    via = f" through {', '.join(path)}" if path else ""
                    self.fail(t, self.nodes[t], "input", f"must receive the node's shape "
                              f"{list(dims[t])}", said(f"shape {list(cur)} from '{s}'{via}"))
                done.append((s, path, t, ops))
            stuck = len(left) == len(pending)
            pending = [] if stuck else left
        for t in neurons:
            if dims[t] is None:
                self.fail(t, self.nodes[t], "r", "has scalar parameters and no incoming chain "
                          "that gives its shape", said("shape []"))
        size = {n: math.prod(d) for n, d in dims.items()}
        const = {t: np.zeros(size[t]) for t in neurons}
        for b, op in self.ops.items():
            if op["b"] is None or not op["b"].any():
                continue
            for path, t in self.paths(b):
                x = op["b"][None]
                for n in path:
                    x = apply(self.ops[n], x)
                const[t] += x.reshape(-1)
        gain = {t: np.broadcast_to(v["gain"].reshape(-1), (size[t],)) if v["gain"].size == 1
                else v["gain"].reshape(-1) for t, v in neurons.items()}
        names = _names(list(dims))
        shapes = {n: d for n, d in dims.items()}
        out, count = [], {}
        for s, path, t, ops in done:
            p = _project(ops, size[s], gain[t])
            if p is None:
                self.fail(t, self.nodes[t], "input", f"the chain from '{s}' through "
                          f"{', '.join(path)} needs a dense matrix beyond {DENSE_LIMIT} "
                          "entries (unsupported)", said(f"{size[s]} x {size[t]}"))
            for end, key in ((s, "pre_map"), (t, "post_map")):
                want = p.pop(key, None)
                if want is not None and shapes[end] != want:
                    if len(shapes[end]) == 3 and shapes[end] != dims[end] or \
                            len(dims[end]) == 3 and dims[end] != want:
                        self.fail(end, self.nodes[end], "shape", f"must be the map "
                                  f"{list(want)} (the {key[:-4]} end of {', '.join(path)})",
                                  list(shapes[end]))
                    shapes[end] = want
            k = count[(s, t)] = count.get((s, t), -1) + 1
            out.append(((s, t), {"pre": names[s], "post": names[t], "symmetric": False, **p,
                                 "name": f"{names[s]}-{names[t]}-{k}"}))
        out = [e if count[st] else {k: v for k, v in e.items() if k != "name"}
               for st, e in out]   # a pair joined once keeps the default label pre->post
        pops = []
        for n in dims:
            shp = list(shapes[n]) if len(shapes[n]) in (1, 3) else [size[n]]
            pop = {"name": names[n], "shape": shp, "role": "input"}
            if n in neurons:
                v = neurons[n]
                nd = {"model": v["model"], "threshold": v["threshold"], "reset": "zero"}
                if v["model"] == "lif":
                    nd["leak"] = v["leak"]
                pop.update(role="output" if n in self.outputs else "hidden", neuron=nd,
                           bias=v["rest"].reshape(-1) + gain[n] * const[n])
            pops.append(pop)
        stem = Path(self.path).stem if self.path is not None else "nir"
        raw = {"network": {"name": _names([stem])[stem], "format": 2,
                           "description": f"imported from NIR at dt = {self.dt!r} s"},
               "population": pops, "projection": out}
        return from_dict(raw, path=self.where)


def from_nir(graph, dt: float = DEFAULT_DT, path=None) -> Netlist:
    """A NIR graph (``nir.NIRGraph``) as a format-2 netlist, discretised at ``dt`` seconds per
    step.  A graph neuroemu exported comes back exactly (:mod:`.nirmeta`)."""
    where = str(path) if path is not None else "<nir>"
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) or \
            not (math.isfinite(dt) and dt > 0):
        raise NetlistError(f"{where}: dt: must be a positive number of seconds per step "
                           f"(got {dt!r})")
    try:
        from . import nirmeta
    except ImportError:   # the exporter's module is optional here
        nirmeta = None
    if nirmeta is not None and nirmeta.is_neuroemu(graph):
        return from_dict(nirmeta.netlist_dict(graph, path=path), path=path)
    return _Builder(graph, float(dt), path).build()
