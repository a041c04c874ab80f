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


def to_dict(net, weights=None, biases=None) -> dict[str, Any]:
    """The plain dict :func:`~neuroemu.describe.netlist.from_dict` accepts, with weights and
    biases as arrays.

    ``weights`` replaces projection matrices: a list with
    one array (or None to keep) per projection in layer order, or a dict keyed by projection
    index, ``"pre->post"`` or ``(pre, post)``.  ``biases`` likewise: a list with one entry per
    population (the input's must be None) or a dict keyed by population name or index.
    """
    base = _check(net)
    w = [p.weights for p in base.projections]
    b = [p.bias for p in base.populations]
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


def replace(net, weights=None, biases=None) -> Netlist:
    """A new validated Netlist with some weights and/or biases replaced (see :func:`to_dict`)."""
    base = _check(net)
    return from_dict(to_dict(net, weights, biases), path=base.path, text=base.text)


def same(a: Netlist, b: Netlist) -> bool:
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

