"""NIR export: a netlist as a ``nir.NIRGraph`` of NIR's standard nodes, plus the neuroemu
extension in the nodes' metadata (:mod:`.nirmeta`), so that any NIR reader gets the graph and
the weights, and neuroemu reads back exactly the netlist it wrote (docs/interop.md).

The standard structure (``dt``: seconds per engine step):

- input population -> ``Input`` (its shape);
- paper neuron -> ``LI``: ``tau = dt / eps`` (``eps0`` of a constant or scheduled step size,
  ``nu_bar`` for OSA), ``r = 1``, ``v_leak = bias``: forward Euler of ``tau dv/dt = v_leak - v
  + r I`` at ``dt`` is ``v <- (1 - eps) v + eps (I + bias)``, the paper's update without its
  clip, encoder and decoder;
- ``if`` (and ``lif`` with leak 1) -> ``IF``: ``r = 1 / dt`` (so ``dt r = 1``),
  ``v_threshold = threshold``, ``v_reset = 0``; the bias rides on the first dense projection
  into the population (``Affine.bias``), or on the first conv2d one when it is constant per
  channel (``Conv2d.bias``);
- ``lif`` -> ``LIF``: ``tau = dt / (1 - leak)``, ``r = tau / dt``, ``v_leak = bias / (1 -
  leak)``, ``v_threshold``, ``v_reset = 0``: Euler at ``dt`` gives ``v <- leak v + I + bias``;
- dense -> ``Affine(weight = W.T, bias)`` (after a ``Flatten`` "<label>.flatten" when the pre
  population is a map); sparse -> ``Linear`` with the dense matrix (synapses in metadata);
  conv2d -> ``Conv2d`` (dilation 1, groups 1); avgpool2d -> ``AvgPool2d``; one_to_one ->
  ``Scale`` (then a ``Flatten`` when a map feeds a vector);
- output population -> an edge to ``Output`` "<pop>.output".

A population's neuron node has its map shape ``[C, H, W]`` when it is an input or meets a
conv2d / avgpool2d projection, else the vector ``[n]`` (NIR 1.0 has no node that turns a vector
back into a map).  Graphs whose shapes still disagree (a dense projection into a map that also
meets a convolution, a one_to_one projection from a vector into a map) are built without
NIR's type check and must be read with ``nir.read(path, type_check=False)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..describe import Netlist, to_dict
from ..describe.checks import _MAX_WEIGHTS
from ..errors import NetlistError, OptionError
from ..files import check_output, replacing
from . import nirmeta
from .nirmeta import DEFAULT_DT

try:
    import nir
except ImportError as exc:   # neuroemu.interop turns this into the InteropError naming the extra
    raise ImportError(f"neuroemu's NIR export needs the optional package 'nir' (pip install "
                      f"'neuroemu[interop]'): {exc}") from exc

__all__ = ["to_nir", "write_nir", "DEFAULT_DT", "node_names", "node_shapes"]


def _check_dt(dt) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(dt)) or float(dt) <= 0:
        raise OptionError(f"dt: must be a finite number of seconds > 0 (got {dt!r})")
    return float(dt)


def node_names(net: Netlist) -> tuple[dict[str, str], list[str]]:
    """NIR node names: ``{population: node}`` (the population's name) and one node per
    projection in order (its label, or "<label>.projection" if a population has that name)."""
    pops = {p.name: p.name for p in net.populations}
    taken = set(pops.values())
    projs = []
    for p in net.projections:
        name = p.label
        while name in taken:
            name += ".projection"
        taken.add(name)
        projs.append(name)
    return pops, projs


def node_shapes(net: Netlist) -> dict[str, tuple[int, ...]]:
    """The shape of each population's NIR node: its map shape if it is an input or meets a
    conv2d / avgpool2d projection, else ``(size,)``."""
    maps = {e for p in net.projections if p.kind in ("conv2d", "avgpool2d")
            for e in (p.pre, p.post)}
    return {p.name: (p.dims if (p.role == "input" or p.name in maps) else (p.size,))
            for p in net.populations}


def _eps(neuron) -> float:
    eps = neuron.eps
    return eps.get("nu_bar") if eps.kind == "osa" else eps.get("eps0")


def _if_bias(net: Netlist, pop) -> tuple[int | None, np.ndarray | None]:
    """Where an IF population's bias goes: (projection index, Affine or Conv2d bias), or
    (None, None) when it is zero or no incoming dense / per-channel conv2d projection can
    hold it (the plain NIR reader then misses it; the extension keeps it)."""
    if not np.any(pop.bias):
        return None, None
    for i, p in enumerate(net.projections):
        if p.post != pop.name:
            continue
        if p.kind == "dense":
            return i, pop.bias.copy()
        if p.kind == "conv2d":
            per = pop.bias.reshape(pop.dims[0], -1)
            if np.all(per == per[:, :1]):
                return i, per[:, 0].copy()
    return None, None


def _neuron_node(pop, shape, dt: float, meta: dict):
    """A population's standard node (see the module docstring)."""
    n = pop.neuron
    full = lambda x: np.full(shape, x, dtype=np.float64)    # noqa: E731
    if pop.role == "input":
        return nir.Input(input_type={"input": np.array(shape, dtype=np.int64)}, metadata=meta)
    if n.model == "paper":
        return nir.LI(tau=full(dt / _eps(n)), r=full(1.0), v_leak=pop.bias.reshape(shape).copy(),
                      metadata=meta)
    if n.model == "if" or n.leak == 1.0:
        return nir.IF(r=full(1.0 / dt), v_threshold=full(n.threshold), v_reset=full(0.0),
                      metadata=meta)
    keep = 1.0 - n.leak
    tau = dt / keep
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=pop.bias.reshape(shape) / keep,
                   v_threshold=full(n.threshold), v_reset=full(0.0), metadata=meta)


def _projection_nodes(net: Netlist, i: int, name: str, shapes, bias, meta: dict):
    """The nodes of projection ``i``: [(node name, node)] from pre to post, and whether the
    chain's shapes agree with NIR's types."""
    p = net.projections[i]
    pre, post = net.population(p.pre), net.population(p.post)
    s_pre, s_post = shapes[p.pre], shapes[p.post]
    chain, ok = [], True
    if p.kind in ("dense", "sparse"):
        if len(s_pre) > 1:
            chain.append((f"{name}.flatten", nir.Flatten(
                input_type={"input": np.array(s_pre, dtype=np.int64)}, start_dim=0,
                end_dim=-1)))
        if p.kind == "dense":
            w = np.asarray(p.weights, dtype=np.float64)
            b = bias if bias is not None else np.zeros(post.size)
            node = nir.Affine(weight=w.T.copy(), bias=b, metadata=meta)
        else:
            if pre.size * post.size > _MAX_WEIGHTS:
                raise NetlistError(f"{net.path or net.name}: projection '{p.label}': a sparse "
                                   f"projection of {pre.size} x {post.size} is too large for "
                                   f"NIR's dense Linear node (at most {_MAX_WEIGHTS} entries)")
            m = np.zeros((post.size, pre.size))
            m[p.indices[1], p.indices[0]] = p.weights
            node = nir.Linear(weight=m, metadata=meta)
        ok = len(s_post) == 1
    elif p.kind == "conv2d":
        k = np.asarray(p.weights, dtype=np.float64)
        b = bias if bias is not None else np.zeros(k.shape[0])
        node = nir.Conv2d(input_shape=tuple(s_pre[1:]), weight=k.copy(),
                          stride=tuple(p.param("stride")), padding=tuple(p.param("padding")),
                          dilation=(1, 1), groups=1, bias=b, metadata=meta)
    elif p.kind == "avgpool2d":
        node = nir.AvgPool2d(kernel_size=np.array(p.param("kernel"), dtype=np.int64),
                             stride=np.array(p.param("stride"), dtype=np.int64),
                             padding=np.zeros(2, dtype=np.int64), metadata=meta)
    else:   # one_to_one
        node = nir.Scale(scale=np.asarray(p.weights, dtype=np.float64).reshape(s_pre).copy(),
                         metadata=meta)
    chain.append((name, node))
    if p.kind == "one_to_one" and s_pre != s_post:
        if len(s_post) == 1:
            chain.append((f"{name}.flatten", nir.Flatten(
                input_type={"input": np.array(s_pre, dtype=np.int64)}, start_dim=0,
                end_dim=-1)))
        else:
            ok = False
    return chain, ok


def _build(net: Netlist, dt: float):
    """(nodes, edges, graph metadata, whether NIR's types agree)."""
    raw = to_dict(net)
    pop_nodes, proj_nodes = node_names(net)
    shapes = node_shapes(net)
    nodes, edges, typed = {}, [], True
    biases = {}
    for pop in net.populations:
        if pop.role != "input" and pop.neuron.model != "paper" and \
                (pop.neuron.model == "if" or pop.neuron.leak == 1.0):
            i, b = _if_bias(net, pop)
            if i is not None:
                biases[i] = b
    for pop, d in zip(net.populations, raw["population"]):
        nodes[pop_nodes[pop.name]] = _neuron_node(pop, shapes[pop.name], dt,
                                                  nirmeta.encode_population(d))
    for i, (p, d) in enumerate(zip(net.projections, raw["projection"])):
        meta = nirmeta.encode_projection(d, p.indices if p.kind == "sparse" else None)
        chain, ok = _projection_nodes(net, i, proj_nodes[i], shapes, biases.get(i), meta)
        typed &= ok
        names = [pop_nodes[p.pre]] + [n for n, _ in chain] + [pop_nodes[p.post]]
        for name, node in chain:
            if name in nodes:
                raise NetlistError(f"{net.path or net.name}: NIR node name {name!r} is taken "
                                   "twice (rename a projection)")
            nodes[name] = node
        edges += list(zip(names[:-1], names[1:]))
    for pop in net.populations:
        if pop.role == "output":
            name = f"{pop_nodes[pop.name]}.output"
            nodes[name] = nir.Output(output_type={"output": np.array(shapes[pop.name],
                                                                     dtype=np.int64)})
            edges.append((pop_nodes[pop.name], name))
    meta = nirmeta.encode_network(raw, dt, [pop_nodes[p.name] for p in net.populations],
                                  proj_nodes)
    return nodes, edges, meta, typed


def to_nir(net: Netlist, dt: float = DEFAULT_DT):
    """``net`` as a ``nir.NIRGraph`` (see the module docstring); ``dt`` is the time step in
    seconds that NIR's time constants are given for.  The graph passes NIR's type check
    (``type_check=True``) unless its shapes cannot agree in NIR 1.0 (then it is built with
    ``type_check=False``).  :func:`neuroemu.interop.nirmeta.netlist_dict` gives ``net`` back
    exactly, whatever ``dt``."""
    if not isinstance(net, Netlist):
        raise TypeError(f"expected a Netlist, got {type(net).__name__} (a compiled network "
                        "gives its netlist with .to_netlist())")
    dt = _check_dt(dt)
    nodes, edges, meta, typed = _build(net, dt)
    if typed:
        try:
            return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
        except (ValueError, AssertionError):
            nodes, edges, meta, _ = _build(net, dt)   # the check may have changed the nodes
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def write_nir(net: Netlist, path, dt: float = DEFAULT_DT, *, force: bool = False) -> Path:
    """Write ``net`` as a NIR file (HDF5, ``nir.write``) at ``path``; returns the path.
    Atomic: written under a temporary name in the same folder, then renamed
    (:func:`neuroemu.files.replacing`).  An existing file is refused
    (:class:`~neuroemu.errors.OutputError`) unless ``force`` (the caller checked it may go);
    a directory or other non-regular file always is."""
    path = Path(os.fspath(path))
    graph = to_nir(net, dt)
    if not force:
        check_output(path)
    with replacing(path) as tmp:
        nir.write(tmp, graph)
    return path
