"""The slow, obvious reference for networks as graphs (issue 13), written from docs/model.md and
the netlist format 2 definitions, not from the engine.  ``reference.py`` re-exports these names.

- :func:`dense_matrix` / :func:`structure`: the (pre.size, post.size) matrix every projection kind
  implies, and where it has synapses (what a delivery touches);
- :class:`GraphNetwork`: one sample of any network stepped as the spec says;
- :func:`continuous_graph_run`: the continuous Hopfield dynamics with float64 dense matmuls.

Netlist objects are read through the fields of format 2 (``kind``, ``symmetric``, ``params``,
``indices``, ``neuron.model``, ``shape``), with format 1's defaults where a field is absent, so a
format-1 chain runs here too.
"""

from __future__ import annotations

import numpy as np

from reference import make_annealer, make_decoder, make_encoder

# --------------------------------------------------------------------------- netlist access


def kind(proj) -> str:
    return getattr(proj, "kind", "dense")


def symmetric(proj) -> bool:
    return getattr(proj, "symmetric", True)


def model(neuron) -> str:
    return getattr(neuron, "model", "paper")


def dims(pop) -> tuple[int, ...]:
    shape = tuple(getattr(pop, "shape", ()) or ())
    return shape if shape else (pop.size,)


def param(proj, key) -> tuple[int, ...]:
    return tuple(int(v) for v in dict(proj.params)[key])


def populations_by_name(net) -> dict:
    return {p.name: p for p in net.populations}


# --------------------------------------------------------------------------- implied matrices


def _conv_taps(pre_dims, post_dims, proj):
    """Every synapse of a conv2d projection as (input index, output index, co, ci, ky, kx):
    PyTorch's cross-correlation, out[co, oy, ox] = sum over ci, ky, kx of
    w[co, ci, ky, kx] * in[ci, oy*sy - py + ky, ox*sx - px + kx] (zero outside the map)."""
    ci_n, h, w = pre_dims
    co_n, ho, wo = post_dims
    kh, kw = param(proj, "kernel")
    sy, sx = param(proj, "stride")
    py, px = param(proj, "padding")
    for co in range(co_n):
        for oy in range(ho):
            for ox in range(wo):
                for ci in range(ci_n):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * sy - py + ky
                            ix = ox * sx - px + kx
                            if 0 <= iy < h and 0 <= ix < w:
                                yield (ci * h * w + iy * w + ix, co * ho * wo + oy * wo + ox,
                                       co, ci, ky, kx)


def _pool_taps(pre_dims, post_dims, proj):
    """Every synapse of an avgpool2d projection as (input index, output index): pooled unit
    (c, oy, ox) averages in[c, oy*sy + ky, ox*sx + kx] over the kh x kw window."""
    c_n, h, w = pre_dims
    _, ho, wo = post_dims
    kh, kw = param(proj, "kernel")
    sy, sx = param(proj, "stride")
    for c in range(c_n):
        for oy in range(ho):
            for ox in range(wo):
                for ky in range(kh):
                    for kx in range(kw):
                        yield (c * h * w + (oy * sy + ky) * w + (ox * sx + kx),
                               c * ho * wo + oy * wo + ox)


def _matrices(net, proj):
    pops = populations_by_name(net)
    pre, post = pops[proj.pre], pops[proj.post]
    m = np.zeros((pre.size, post.size))
    has = np.zeros((pre.size, post.size), dtype=bool)
    k = kind(proj)
    w = np.asarray(proj.weights, dtype=np.float64)
    if k == "dense":
        m[:, :] = w
        has[:, :] = True
    elif k == "sparse":
        rows, cols = np.asarray(proj.indices)
        for r, c, v in zip(rows, cols, w):
            m[r, c] = v
            has[r, c] = True
    elif k == "conv2d":
        for i, j, co, ci, ky, kx in _conv_taps(dims(pre), dims(post), proj):
            m[i, j] = w[co, ci, ky, kx]
            has[i, j] = True
    elif k == "avgpool2d":
        # delivered as float32(1 / (kh * kw)): float32(dense_matrix) gives exactly that
        kh, kw = param(proj, "kernel")
        for i, j in _pool_taps(dims(pre), dims(post), proj):
            m[i, j] = 1.0 / (kh * kw)
            has[i, j] = True
    elif k == "one_to_one":
        for i in range(pre.size):
            m[i, i] = w[i] if w.ndim else float(w)
            has[i, i] = True
    else:
        raise ValueError(f"unknown projection kind {k!r}")
    return m, has


def dense_matrix(net, proj) -> np.ndarray:
    """The float64 (pre.size, post.size) matrix the projection implies (maps flattened C-order);
    delivery forward is q @ M, backward (symmetric projections) q @ M.T."""
    return _matrices(net, proj)[0]


def structure(net, proj) -> np.ndarray:
    """bool (pre.size, post.size): where the projection has a synapse (a weight, whatever its
    value).  A message of pre neuron i touches structure[i].sum() weights forward; one of post
    neuron j touches structure[:, j].sum() backward: the synaptic events it counts."""
    return _matrices(net, proj)[1]


# --------------------------------------------------------------------------- one sample


def deliver_into(u, q, W32):
    """u += sum over senders i with q_i != 0 of q_i * W32[i], float32, in increasing i."""
    for i in range(len(q)):
        if q[i] != 0.0:
            u += W32[i] if q[i] == 1.0 else np.float32(q[i]) * W32[i]


def split(v, pops, role):
    """Split a concatenated vector over the populations with ``role`` (population order)."""
    out, k = {}, 0
    for p in pops:
        if p.role == role:
            out[p.name] = np.asarray(v[k:k + p.size], dtype=float)
            k += p.size
    if k != len(v):
        raise ValueError(f"{role} vector has {len(v)} values, the {role} populations {k}")
    return out


class GraphNetwork:
    """One sample of a network of any shape, stepped as model.md section 3 says, generalised:

    each step every non-input population r gets u_r = float32 zeros; then the forward
    deliveries (q_pre @ W) of the projections with post == r, in projection order, then the
    backward deliveries (q_post @ W^T) of the symmetric projections with pre == r, in projection
    order; each sender by sender in increasing order with float32(dense_matrix) rows.  All
    deliveries read the messages of the previous step.  paper neurons update as in
    reference.Network; if/lif: V = leak*V + float64(u) + b [+ 2 beta (y - s) on outputs],
    q = 1 if V >= threshold, then V -= threshold (subtract) or V = 0 (zero), and the rate
    s(t) = s(t-1) + (q - s(t-1)) / t.  paper encoders run after every state of the step.

    ``x`` (the input populations' values, concatenated in population order) is clamped; ``y``
    in :meth:`step` likewise over the output populations.  Global neuron id = column in
    population order (the stochastic encoder's random numbers).  ``syn_events[p, d]`` counts
    the weights touched by projection p's deliveries (d = 0 forward, 1 backward)."""

    def __init__(self, net, x, seed):
        self.net, self.seed, self.t = net, seed, 0
        self.pops = list(net.populations)
        self.projs = list(net.projections)
        self.idx = {p.name: k for k, p in enumerate(self.pops)}
        self.off = np.concatenate([[0], np.cumsum([p.size for p in self.pops])]).astype(int)
        xs = split(np.asarray(x, dtype=float), self.pops, "input")
        self.W32, self.fanout, self.fanin = [], [], []
        for pj in self.projs:
            m, has = _matrices(net, pj)
            self.W32.append(m.astype(np.float32))
            self.fanout.append(has.sum(axis=1))
            self.fanin.append(has.sum(axis=0))
        self.s, self.q, self.V = [], [], []
        self.enc, self.dec, self.ann = [], [], []
        for p in self.pops:
            nr, n = p.neuron, p.size
            self.s.append(xs[p.name].copy() if p.role == "input" else np.zeros(n))
            self.q.append(np.zeros(n))
            paper = model(nr) == "paper"
            if p.role == "input" and not paper:
                raise ValueError(f"input population {p.name} must be a paper neuron")
            self.V.append(None if paper else np.full(n, float(nr.v0)))
            self.enc.append(make_encoder(nr, n) if paper else None)
            inner = paper and p.role != "input"
            self.dec.append(make_decoder(nr, n) if inner else None)
            self.ann.append(make_annealer(nr, n) if inner else None)
        self.spikes = np.zeros(len(self.pops), dtype=np.int64)
        self.syn_events = np.zeros((len(self.projs), 2), dtype=np.int64)

    def deliveries(self, r):
        """(projection index, direction, sender population index) into population r, in order."""
        name = self.pops[r].name
        out = [(k, 0, self.idx[pj.pre]) for k, pj in enumerate(self.projs) if pj.post == name]
        out += [(k, 1, self.idx[pj.post]) for k, pj in enumerate(self.projs)
                if pj.pre == name and symmetric(pj)]
        return out

    def received(self, r):
        u = np.zeros(self.pops[r].size, dtype=np.float32)
        for k, d, sp in self.deliveries(r):
            q = self.q[sp]
            deliver_into(u, q, self.W32[k] if d == 0 else self.W32[k].T)
            touched = self.fanout[k] if d == 0 else self.fanin[k]
            self.syn_events[k, d] += int(touched[q != 0].sum())
        return u

    def step(self, beta=0.0, y=None):
        """Advance one step (nudged towards ``y`` with ``beta`` when ``y`` is given); return the
        messages of every neuron (population order)."""
        self.t += 1
        t = self.t
        ys = split(np.asarray(y, dtype=float), self.pops, "output") if y is not None else {}
        us = {r: self.received(r) for r, p in enumerate(self.pops) if p.role != "input"}
        new_q = list(self.q)
        for r, u in us.items():
            p, nr, sp = self.pops[r], self.pops[r].neuron, self.s[r]
            if model(nr) == "paper":
                v = self.dec[r](u.astype(np.float64), t)
                rho_prime = ((sp >= 0.0) & (sp <= 1.0)).astype(float)
                a = rho_prime * (v + p.bias)
                if p.name in ys:
                    a = a + 2.0 * beta * (ys[p.name] - sp)
                eps = self.ann[r](a, t)
                self.s[r] = np.clip((1.0 - eps) * sp + eps * a, 0.0, 1.0)
            else:
                V = nr.leak * self.V[r] + u.astype(np.float64) + p.bias
                if p.name in ys:
                    V = V + 2.0 * beta * (ys[p.name] - sp)
                q = (V >= nr.threshold).astype(float)
                V = V - nr.threshold * q if nr.reset == "subtract" else np.where(q != 0, 0.0, V)
                self.V[r], new_q[r] = V, q
                self.s[r] = sp + (q - sp) / t
        for r, p in enumerate(self.pops):
            if self.enc[r] is not None:
                gids = np.arange(self.off[r], self.off[r + 1])
                new_q[r] = self.enc[r](np.clip(self.s[r], 0.0, 1.0), t, self.seed, gids)
            self.spikes[r] += int(np.count_nonzero(new_q[r]))
        self.q = new_q
        return np.concatenate(self.q)

    def membranes(self):
        """V of every neuron in population order; NaN for the paper's neurons (no membrane)."""
        return np.concatenate([np.full(p.size, np.nan) if self.V[r] is None else self.V[r]
                               for r, p in enumerate(self.pops)])

    def states(self):
        """s of every neuron in population order, the input populations' reported as zeros."""
        return np.concatenate([np.zeros(p.size) if p.role == "input" else self.s[r]
                               for r, p in enumerate(self.pops)])


# --------------------------------------------------------------------------- continuous


def continuous_graph_run(net, x, steps, beta=0.0, y=None, eps=0.5, s=None):
    """model.md section 2 on a graph, batched, float64 dense matmuls: every non-input
    population r, synchronously from the previous step's states,
    s_r <- clip((1-eps) s_r + eps (sum_fwd rho(s_pre) @ M + sum_bwd rho(s_post) @ M.T + b_r
    [+ 2 beta (y_r - s_r) on outputs]), 0, 1); forward over projections with post == r,
    backward over symmetric ones with pre == r.  x (B, sum of input sizes); y likewise over
    the outputs.  Starts from all zeros (the inputs' too: the input lag) unless ``s`` (a list
    of per-population states, as returned) is given.  Returns the list of states."""
    pops, projs = list(net.populations), list(net.projections)
    x = np.atleast_2d(np.asarray(x, dtype=float))
    B = x.shape[0]
    mats = [dense_matrix(net, pj) for pj in projs]
    idx = {p.name: k for k, p in enumerate(pops)}
    xs = split(x.T, pops, "input")
    ys = split(np.atleast_2d(y).T, pops, "output") if y is not None else {}
    if s is None:
        s = [np.zeros((B, p.size)) for p in pops]
    rho = lambda z: np.clip(z, 0.0, 1.0)  # noqa: E731
    for _ in range(steps):
        prev = s
        s = []
        for r, p in enumerate(pops):
            if p.role == "input":
                s.append(xs[p.name].T.copy())
                continue
            drive = np.zeros((B, p.size))
            for k, pj in enumerate(projs):
                if pj.post == p.name:
                    drive = drive + rho(prev[idx[pj.pre]]) @ mats[k]
            for k, pj in enumerate(projs):
                if pj.pre == p.name and symmetric(pj):
                    drive = drive + rho(prev[idx[pj.post]]) @ mats[k].T
            drive = drive + p.bias
            if p.name in ys:
                drive = drive + 2.0 * beta * (ys[p.name].T - prev[r])
            s.append(np.clip((1 - eps) * prev[r] + eps * drive, 0.0, 1.0))
    return s
