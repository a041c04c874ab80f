"""A slow, obvious simulation of a NIR graph (the ``nir`` package's node definitions), written
from NIR's equations discretised by forward Euler at ``dt`` seconds per step -- not from
neuroemu's code -- for tests/test_nir_import.py.

Time (neuroemu's, docs/interop.md): the value a node delivers at step t is computed from
what its sources sent at step t - 1: the spikes of neurons, and an Input's constant value,
which it sends from step 1 on (so it first reaches a neuron at step 2; constant terms such as
an Affine bias act from step 1).  Every path from one neuron (or Input) to the next through
linear nodes thus takes one step.

Neurons (NIR):
- LIF: ``tau dv/dt = (v_leak - v) + r I`` -> ``v += dt / tau * (v_leak - v + r I)``;
- IF:  ``dv/dt = r I``                     -> ``v += dt * r * I``;
- then ``z = v > v_threshold`` and ``v = v_reset`` where ``z``.
Linear nodes: Affine ``W x + b``, Linear ``W x``, Scale ``s * x``, Flatten (a reshape),
Conv2d (PyTorch's cross-correlation with zero padding, stride, dilation, groups), SumPool2d
(window sums, zero padding), AvgPool2d (window means counting the padding).
"""

from __future__ import annotations

import numpy as np


def _pair(v):
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def conv2d(x, weight, stride, padding, dilation=1, groups=1, bias=None):
    """x (C_in, H, W) -> (C_out, Ho, Wo): out[o, i, j] = b[o] + sum over c in o's group, ky,
    kx of weight[o, c, ky, kx] * xpad[c, i*sy + ky*dy, j*sx + kx*dx]."""
    sy, sx = _pair(stride)
    py, px = _pair(padding)
    dy, dx = _pair(dilation)
    c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    xp = np.zeros((c_in, h + 2 * py, w + 2 * px))
    xp[:, py:py + h, px:px + w] = x
    ho = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    wo = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    out = np.zeros((c_out, ho, wo))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for i in range(ho):
            for j in range(wo):
                acc = 0.0 if bias is None else float(np.asarray(bias).reshape(-1)[o])
                for c in range(cg):
                    for ky in range(kh):
                        for kx in range(kw):
                            acc += weight[o, c, ky, kx] * xp[g * cg + c, i * sy + ky * dy,
                                                               j * sx + kx * dx]
                out[o, i, j] = acc
    return out


def pool2d(x, kernel, stride, padding, mean):
    ky, kx = _pair(kernel)
    sy, sx = _pair(stride)
    py, px = _pair(padding)
    c, h, w = x.shape
    xp = np.zeros((c, h + 2 * py, w + 2 * px))
    xp[:, py:py + h, px:px + w] = x
    ho, wo = (h + 2 * py - ky) // sy + 1, (w + 2 * px - kx) // sx + 1
    out = np.zeros((c, ho, wo))
    for ch in range(c):
        for i in range(ho):
            for j in range(wo):
                win = xp[ch, i * sy:i * sy + ky, j * sx:j * sx + kx]
                out[ch, i, j] = win.mean() if mean else win.sum()
    return out


def linear_node(node, x, in_shape=None):
    """One linear NIR node applied to one sample ``x``."""
    t = type(node).__name__
    if t == "Affine":
        return np.asarray(node.weight) @ x.reshape(-1) + np.asarray(node.bias)
    if t == "Linear":
        return np.asarray(node.weight) @ x.reshape(-1)
    if t == "Scale":
        return np.asarray(node.scale).reshape(-1) * x.reshape(-1)
    if t in ("Flatten", "Identity"):
        return x.reshape(-1)
    if t == "Conv2d":
        w = np.asarray(node.weight)
        if x.ndim != 3:
            x = x.reshape(w.shape[1] * node.groups, *_pair(node.input_shape))
        return conv2d(x, w, node.stride, node.padding, node.dilation, node.groups, node.bias)
    if t in ("SumPool2d", "AvgPool2d"):
        x = x if x.ndim == 3 else x.reshape(in_shape)
        return pool2d(x, node.kernel_size, node.stride, node.padding, t == "AvgPool2d")
    raise ValueError(f"not a linear node: {t}")


def nir_run(graph, inputs: dict, dt: float, steps: int, shapes: dict | None = None):
    """Simulate ``graph`` for ``steps`` steps of one sample.  ``inputs``: Input name -> its
    constant value (its shape).  ``shapes``: map shapes for pooling nodes fed by flat
    neurons (name -> (C, H, W)).  Returns (spikes, margin, ties): spikes name -> bool
    (steps, n) of every IF/LIF node; margin: the least nonzero |v - v_threshold| met before
    any reset; ties: how often v == v_threshold exactly (no spike: NIR's ``>`` is strict)."""
    shapes = shapes or {}
    nodes, edges = graph.nodes, graph.edges
    pred = {n: [a for a, b in edges if b == n] for n in nodes}
    neurons = [n for n, v in nodes.items() if type(v).__name__ in ("IF", "LIF")]
    v = {n: np.zeros(np.asarray(nodes[n].v_threshold).shape) for n in neurons}
    z = {n: np.zeros(v[n].shape) for n in neurons}
    out = {n: [] for n in neurons}
    margin, ties = np.inf, 0

    def value(n, memo):
        if n in memo:
            return memo[n]
        t = type(nodes[n]).__name__
        if t == "Input":
            r = np.asarray(inputs[n], dtype=np.float64) * (step > 1)
        elif n in z:
            r = z[n]
        else:
            total = None
            for p in pred[n]:
                x = value(p, memo)
                total = x if total is None else total + x
            r = linear_node(nodes[n], total, shapes.get(n))
        memo[n] = r
        return r

    for step in range(1, steps + 1):
        memo = {}
        current = {}
        for n in neurons:
            total = np.zeros(v[n].size)
            for p in pred[n]:
                total = total + value(p, memo).reshape(-1)
            current[n] = total.reshape(v[n].shape)
        for n in neurons:
            node = nodes[n]
            r = np.asarray(node.r, dtype=np.float64)
            if type(node).__name__ == "LIF":
                tau = np.asarray(node.tau, dtype=np.float64)
                v[n] = v[n] + dt / tau * (np.asarray(node.v_leak) - v[n] + r * current[n])
            else:
                v[n] = v[n] + dt * r * current[n]
            thr = np.asarray(node.v_threshold, dtype=np.float64)
            gap = np.abs(v[n] - thr)
            ties += int((gap == 0).sum())
            if (gap > 0).any():
                margin = min(margin, float(gap[gap > 0].min()))
            z[n] = (v[n] > thr).astype(np.float64)
            v[n] = np.where(z[n] > 0, np.asarray(node.v_reset, dtype=np.float64), v[n])
            out[n].append(z[n].reshape(-1) > 0)
    return {n: np.array(s) for n, s in out.items()}, margin, ties
