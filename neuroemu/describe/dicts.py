"""Netlists as plain dicts, with arrays replaced: the form both file writers start from.

:func:`to_dict` gives the dict :func:`neuroemu.describe.netlist.from_dict` accepts (weights and
biases as NumPy arrays); :func:`replace` gives a new validated Netlist with some weights or
biases swapped (after training, say); :func:`same` compares two netlists bit for bit.  All take a
:class:`~neuroemu.describe.netlist.Netlist` -- a compiled network turns itself back into one with
``CompiledNetwork.to_netlist()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NetlistError
from .netlist import Netlist, from_dict


def _check(net) -> Netlist:
    if not isinstance(net, Netlist):
        raise TypeError(f"expected a Netlist, got {type(net).__name__} (a compiled network "
                        "gives its netlist with .to_netlist())")
    return net


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


def _keys(base) -> list:
    """The keys each projection answers to: its label, its index and -- if no other projection
    joins the same pair -- ``(pre, post)``."""
    pairs = [(p.pre, p.post) for p in base.projections]
    return [(p.label, i) + ((pairs[i],) if pairs.count(pairs[i]) == 1 else ())
            for i, p in enumerate(base.projections)]


def neuron_dict(neuron, fmt: int) -> dict[str, Any]:
    """A neuron table; format 2 names the model of every population (``paper`` too)."""
    d = neuron.as_dict()
    return {"model": "paper", **d} if fmt == 2 and "model" not in d else d


def _weights(p, new, label: str):
    """A projection's ``weights`` value in the dict: arrays of the kind's native shape (a
    sparse projection takes its data ``(nnz,)`` on its synapses, or a whole table { row, col,
    data }); None for avgpool2d, whose weights are fixed."""
    if p.kind == "avgpool2d":
        if new is not p.weights and np.asarray(new).size:
            raise NetlistError(f"{label}: weights: projection '{p.label}' is avgpool2d: its "
                               "weights are fixed (give None)")
        return None
    if p.kind == "sparse":
        if isinstance(new, dict):
            return new
        return {"row": p.indices[0], "col": p.indices[1], "data": np.asarray(new)}
    return np.asarray(new)


def to_dict(net, weights=None, biases=None) -> dict[str, Any]:
    """The plain dict :func:`~neuroemu.describe.netlist.from_dict` accepts, with weights and
    biases as arrays.

    ``weights`` replaces projection weights, each in its kind's native shape (dense ``(pre,
    post)``, sparse ``(nnz,)`` on the same synapses, conv2d ``(C_out, C_in, kh, kw)``,
    one_to_one ``(n,)``; avgpool2d: None): a list with one array (or None to keep) per
    projection in order, or a dict keyed by projection index, label (its name, or
    ``"pre->post"``) or ``(pre, post)`` (when one projection joins that pair).  ``biases``
    likewise: a list with one entry per population (inputs' must be None) or a dict keyed by
    population name or index.
    """
    base = _check(net)
    w = [p.weights for p in base.projections]
    b = [p.bias for p in base.populations]
    label = base.path or base.name
    w = _override(w, weights, _keys(base), "weights", label)
    b = _override(b, biases, [(p.name, i) for i, p in enumerate(base.populations)],
                  "biases", label)
    v2 = base.format == 2
    pops = []
    for i, p in enumerate(base.populations):
        d = {"name": p.name}
        if p.shape:
            d["shape"] = list(p.shape)
        else:
            d["size"] = p.size
        d |= {"role": p.role, "neuron": neuron_dict(p.neuron, base.format)}
        if p.role != "input":
            d["bias"] = np.asarray(b[i])
        elif np.any(np.asarray(b[i]) != 0):
            raise NetlistError(f"{label}: biases: the input population '{p.name}' has no bias "
                               "(give None or zeros for it)")
        pops.append(d)
    projs = []
    for i, p in enumerate(base.projections):
        if not v2:
            projs.append({"pre": p.pre, "post": p.post, "weights": np.asarray(w[i])})
            continue
        d = {"pre": p.pre, "post": p.post} | ({"name": p.name} if p.name else {})
        d |= {"kind": p.kind, "symmetric": p.symmetric}
        for key, val in p.params:
            d["kernel_size" if key == "kernel" else key] = list(val)
        wts = _weights(p, w[i], label)
        if wts is not None:
            d["weights"] = wts
        projs.append(d)
    raw = {"network": {"name": base.name, "seed": base.seed, "description": base.description},
           "population": pops, "projection": projs}
    if v2:
        raw["network"]["format"] = 2
    if base.hardware:
        raw["hardware"] = base.hardware
    return raw


def replace(net, weights=None, biases=None) -> Netlist:
    """A new validated Netlist with some weights and/or biases replaced (see :func:`to_dict`)."""
    base = _check(net)
    return from_dict(to_dict(net, weights, biases), path=base.path, text=base.text)


def same(a: Netlist, b: Netlist) -> bool:
    """True if two netlists describe the same network exactly (arrays compared bit for bit)."""
    if (a.name, a.seed, a.description, a.hardware, a.format) != \
            (b.name, b.seed, b.description, b.hardware, b.format):
        return False
    if len(a.populations) != len(b.populations) or len(a.projections) != len(b.projections):
        return False
    for p, q in zip(a.populations, b.populations):
        if (p.name, p.size, p.shape, p.role, p.neuron) != \
                (q.name, q.size, q.shape, q.role, q.neuron) or not np.array_equal(p.bias, q.bias):
            return False
    return all((p.pre, p.post, p.name, p.kind, p.symmetric, p.params) ==
               (q.pre, q.post, q.name, q.kind, q.symmetric, q.params)
               and np.array_equal(p.weights, q.weights)
               and (p.indices is None) == (q.indices is None)
               and (p.indices is None or np.array_equal(p.indices, q.indices))
               for p, q in zip(a.projections, b.projections))
