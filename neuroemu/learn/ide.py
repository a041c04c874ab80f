"""Implicit differentiation on the equilibrium state (IDE; Xiao et al., NeurIPS 2021) for
feedback networks of integrate-and-fire neurons given as compiled graph networks.

The forward pass is the emulated network itself: the engine runs ``T`` steps and
:meth:`state` gives every IF/LIF population's firing rate since the start.  Those rates are
treated as an approximate solution of the *rate map* ``a = F(a; x, theta)`` below, and the
gradient of a loss of the output rates comes from the implicit function theorem at that
solution -- no backpropagation through time and no surrogate of the spike function.

The rate map (``docs/model.md`` section 7.3's neuron, averaged over time).  For every
non-input population ``r`` (IF or LIF, leak ``l``, threshold ``th``, reset by subtraction):

    I_r = sum over deliveries into r of  m_src M_p  (forward)  or  m_src M_p^T  (backward,
          symmetric projections only)  +  b_r
    z_r = (I_r - (1 - l) h th) / th          the unclamped rate, h = ``leak_offset`` (1/2)
    a_r = clamp(z_r, 0, 1)

where ``m_src`` is the source's average message: its rate ``a`` for an IF/LIF population,
``clip(x, 0, 1)`` for an input population (what its encoder sends on average).  Why: summing
``V(t) = l V(t-1) + u(t) + b``, ``V -= th q`` over T steps gives exactly

    th * rate = mean(u + b) - (1 - l) * mean(V after reset) - (V(T) - V(0)) / T,

and while a neuron fires at a rate in (0, 1) its membrane after reset stays in [0, th), so
the leak term lies between 0 and (1 - l) th: the map takes its middle (``h = 1/2``); the
rate it predicts is off by at most (1 - l)/2 plus O(1/T).  For IF (l = 1) the relation is
exact up to O(1/T), and the map is the paper's ``a = clamp((W a + F x + b) / V_th, 0, 1)``.

The backward pass.  With ``D = diag(clamp'(z))`` (the surrogate below) and ``Z = dz/da``
(the delivery matrices divided by each receiver's threshold), a loss ``L(a_out, z_out)`` has

    dL/dtheta = delta^T dz/dtheta|_a,    (I - D Z^T) delta = D dL/da + dL/dz,

solved by the fixed-point iteration ``delta <- D dL/da + dL/dz + D Z^T delta`` (converges
when the recurrent part of ``D Z`` is a contraction, as the paper ensures with a spectral
norm of the feedback weights <= 1 and V_th = 2); then per delivery of projection p from
``src`` into ``dst``: ``dM_p += m_src^T (delta_dst / th_dst)`` (forward) or its transpose
(backward), projected onto p's parameters (dense: itself; sparse: the existing synapses;
one-to-one: the diagonal; conv2d: the correlation of the two maps; avgpool2d: nothing), and
``db_r = sum_B delta_r / th_r``.

Surrogate of the clamp's derivative: 1 on the closed interval [0, 1] (PyTorch's
``clamp`` convention, which the paper's code inherits), ``surrogate`` (default 0: the exact
derivative almost everywhere) outside it.

Losses (averaged over the batch): ``"mse"`` -- ``sum_j (a_j - y_j)^2`` on the output rates,
the EP cost; ``"ce"`` -- softmax cross-entropy with the outputs' unclamped rates ``z`` as
logits (the paper reads out a linear classifier of the hidden rates; an IF output
population's ``z`` is exactly that linear readout divided by its threshold).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..engines import as_compiled, check_input, compiled
from ..engines import kernels as K
from ..engines import session as open_session
from ..errors import CompileError, EngineError

__all__ = ["IDEGradients", "RateMap", "ide_gradients", "engine_rates", "equilibrium",
           "map_loss", "loss_terms", "solve_adjoint",
           "LOSSES", "SOLVERS"]

LOSSES = ("mse", "ce")
SOLVERS = ("fixed_point",)
LEAK_OFFSET = 0.5


class IDEGradients(NamedTuple):
    """What :func:`ide_gradients` returns (descend along -dW, -db)."""

    dW: list              # per projection: dL/dparams in its weights' shape, None if fixed
    db: list              # per population: dL/db (n,), None for input populations
    loss: float           # the batch-mean loss at the rates used
    rates: list           # per population (B, n): rates (inputs: clip(x, 0, 1))
    info: dict            # solver: iterations, residual (relative), converged


# --------------------------------------------------------------------------- projections

class _Op:
    """The matrix ``M_p`` of one projection as products and a parameter gradient."""

    def __init__(self, net, p: int, w=None):
        self.kind = {v: k for k, v in compiled.KINDS.items()}[int(net.pj[p, K.PJ_KIND])]
        self.pre, self.post = int(net.pj[p, K.PJ_PRE]), int(net.pj[p, K.PJ_POST])
        self.n_pre, self.n_post = int(net.pj[p, K.PJ_NPRE]), int(net.pj[p, K.PJ_NPOST])
        self.shape = net.projection_shape(p)
        self.w = None
        if self.kind != "avgpool2d":
            self.w = np.array(net.weights(p) if w is None else w, dtype=np.float64)
            if self.w.shape != self.shape:
                raise EngineError(f"weights[{p}]: must have shape {self.shape} (got "
                                  f"{self.w.shape})")
        if self.kind == "sparse":
            idx = net.netlist.projections[p].indices
            self.rows, self.cols = np.asarray(idx[0], np.int64), np.asarray(idx[1], np.int64)
            self.M = np.zeros((self.n_pre, self.n_post))
            self.M[self.rows, self.cols] = self.w
        if self.kind in ("conv2d", "avgpool2d"):
            g = net.pj[p]
            (self.ci, self.hi, self.wi, self.co, self.ho, self.wo, self.kh, self.kw,
             self.sy, self.sx, self.py, self.px) = (int(v) for v in g[K.PJ_CI:K.PJ_PX + 1])
            self.pool_w = float(np.float32(1.0 / (self.kh * self.kw)))

    # v (B, n_pre) -> (B, n_post)
    def forward(self, v):
        k = self.kind
        if k == "dense":
            return v @ self.w
        if k == "sparse":
            return v @ self.M
        if k == "one_to_one":
            return v * self.w
        return self._conv(v)

    # g (B, n_post) -> (B, n_pre)
    def backward(self, g):
        k = self.kind
        if k == "dense":
            return g @ self.w.T
        if k == "sparse":
            return g @ self.M.T
        if k == "one_to_one":
            return g * self.w
        return self._conv_t(g)

    def grad(self, A, G):
        """``A^T G`` (pre x post, summed over the batch) projected onto the parameters."""
        k = self.kind
        if k == "dense":
            return A.T @ G
        if k == "sparse":
            return np.einsum("bk,bk->k", A[:, self.rows], G[:, self.cols])
        if k == "one_to_one":
            return np.einsum("bk,bk->k", A, G)
        if k == "conv2d":
            return self._corr(A, G)
        return None

    def _windows(self):
        for ky in range(self.kh):
            for kx in range(self.kw):
                yield ky, kx, (slice(None), slice(None),
                               slice(ky, ky + self.sy * (self.ho - 1) + 1, self.sy),
                               slice(kx, kx + self.sx * (self.wo - 1) + 1, self.sx))

    def _pad(self, v):
        B = v.shape[0]
        xp = np.zeros((B, self.ci, self.hi + 2 * self.py, self.wi + 2 * self.px))
        xp[:, :, self.py:self.py + self.hi, self.px:self.px + self.wi] = \
            v.reshape(B, self.ci, self.hi, self.wi)
        return xp

    def _conv(self, v):
        xp, B = self._pad(v), v.shape[0]
        out = np.zeros((B, self.co, self.ho, self.wo))
        for ky, kx, win in self._windows():
            if self.kind == "conv2d":
                out += np.einsum("bcyx,dc->bdyx", xp[win], self.w[:, :, ky, kx])
            else:
                out += self.pool_w * xp[win]
        return out.reshape(B, -1)

    def _conv_t(self, g):
        B = g.shape[0]
        y = g.reshape(B, self.co, self.ho, self.wo)
        gp = np.zeros((B, self.ci, self.hi + 2 * self.py, self.wi + 2 * self.px))
        for ky, kx, win in self._windows():
            if self.kind == "conv2d":
                gp[win] += np.einsum("bdyx,dc->bcyx", y, self.w[:, :, ky, kx])
            else:
                gp[win] += self.pool_w * y
        return gp[:, :, self.py:self.py + self.hi, self.px:self.px + self.wi].reshape(B, -1)

    def _corr(self, A, G):
        xp, B = self._pad(A), A.shape[0]
        y = G.reshape(B, self.co, self.ho, self.wo)
        out = np.empty(self.shape)
        for ky, kx, win in self._windows():
            out[:, :, ky, kx] = np.einsum("bcyx,bdyx->dc", xp[win], y)
        return out


# --------------------------------------------------------------------------- the rate map

class RateMap:
    """The rate map ``a = clamp(z(a))`` of a compiled network (module docstring), with its
    transposed Jacobian and parameter gradients.  ``leak_offset`` is ``h``: the mean
    membrane after reset assumed by the leak correction, in thresholds; ``weights``
    optionally replaces the projections' parameters (float64; None entries keep the
    network's float32 weights), ``biases`` the non-input populations' biases."""

    def __init__(self, net, leak_offset: float = LEAK_OFFSET, weights=None, biases=None):
        net = as_compiled(net)
        self.net = net
        P = net.n_pops
        self.inputs = set(net.inputs)
        self.hidden = [r for r in range(P) if r not in self.inputs]
        self.thr = np.ones(P)
        self.shift = np.zeros(P)
        for r in self.hidden:
            lp = net.lp[r]
            name = net.names[r]
            if lp[K.LP_MODEL] == K.MODEL_PAPER:
                raise CompileError(f"population {name!r}: implicit differentiation needs "
                                   "integrate-and-fire neurons (model = \"if\" or \"lif\"), "
                                   "not the paper's neuron")
            if lp[K.LP_RESET] != K.RESET_SUBTRACT:
                raise CompileError(f"population {name!r}: implicit differentiation needs "
                                   "reset = \"subtract\" (the rate map assumes no charge is "
                                   "lost at a spike)")
            self.thr[r] = lp[K.LP_THR]
            self.shift[r] = (1.0 - lp[K.LP_LEAK]) * leak_offset * lp[K.LP_THR]
        weights = [None] * net.n_projections if weights is None else list(weights)
        self.ops = [_Op(net, p, weights[p]) for p in range(net.n_projections)]
        self.bias = [np.array(net.biases(r) if biases is None or biases[r] is None
                              else biases[r], dtype=np.float64) for r in range(P)]
        # deliveries (projection, direction, source) into each population
        self.into = {r: [(int(p), int(d), self.ops[p].pre if d == 0 else self.ops[p].post)
                         for p, d in net.dl[net.dl_off[r]:net.dl_off[r + 1]]]
                     for r in self.hidden}

    def split(self, y, which="outputs"):
        """Columns of ``y`` (B, n_out) (or x, ``which="inputs"``) per population."""
        net = self.net
        offs = net.yoff if which == "outputs" else net.xoff
        return {r: y[:, offs[r]:offs[r] + net.sizes[r]]
                for r in range(net.n_pops) if offs[r] >= 0}

    def messages(self, x):
        """The input populations' average messages ``clip(x, 0, 1)`` by population."""
        x = check_input(x, self.net.n_in)
        return {r: np.clip(v, 0.0, 1.0) for r, v in self.split(x, "inputs").items()}

    def drive(self, a):
        """The unclamped rates ``z_r`` (B, n_r) of every non-input population, given the
        messages ``a`` (a list or dict by population index, inputs included)."""
        z = {}
        for r in self.hidden:
            B = len(a[0])
            I = np.broadcast_to(self.bias[r], (B, self.net.sizes[r])).copy()
            for p, d, src in self.into[r]:
                op = self.ops[p]
                I += op.forward(a[src]) if d == 0 else op.backward(a[src])
            z[r] = (I - self.shift[r]) / self.thr[r]
        return z

    def zeros(self, B):
        return {r: np.zeros((B, self.net.sizes[r])) for r in self.hidden}

    def vjp(self, delta):
        """``Z^T delta``: per non-input source population, the sum over its deliveries of
        ``delta_dst / th_dst`` sent back through the delivery matrix."""
        B = next(iter(delta.values())).shape[0]
        out = self.zeros(B)
        for r in self.hidden:
            g = delta[r] / self.thr[r]
            for p, d, src in self.into[r]:
                if src in self.inputs:
                    continue
                op = self.ops[p]
                out[src] += op.backward(g) if d == 0 else op.forward(g)
        return out

    def param_grads(self, a, delta):
        """``delta^T dz/dtheta`` at messages ``a``: (dW per projection, db per population)."""
        net = self.net
        dW = [None] * net.n_projections
        for r in self.hidden:
            g = delta[r] / self.thr[r]
            for p, d, src in self.into[r]:
                op = self.ops[p]
                if op.kind == "avgpool2d":
                    continue
                part = op.grad(a[src], g) if d == 0 else op.grad(g, a[src])
                dW[p] = part if dW[p] is None else dW[p] + part
        for p, op in enumerate(self.ops):
            if op.kind != "avgpool2d" and dW[p] is None:
                dW[p] = np.zeros(op.shape)
        db = [None if r in self.inputs else (delta[r] / self.thr[r]).sum(axis=0)
              for r in range(net.n_pops)]
        return dW, db


def _clamp_deriv(z, surrogate: float):
    inside = (z >= 0.0) & (z <= 1.0)
    return np.where(inside, 1.0, float(surrogate))


def _as_list(rm: RateMap, msg: dict) -> list:
    return [msg[r] for r in range(rm.net.n_pops)]


# --------------------------------------------------------------------------- forward passes

def engine_rates(net, x, T: int, *, engine: str = "lockstep", seed=None, **kwargs) -> list:
    """Run the network ``T`` steps on ``x`` and return every population's average message:
    the firing rates of IF/LIF populations (``state()``), ``clip(x, 0, 1)`` for inputs."""
    cn = as_compiled(net)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise EngineError(f"T: must be a positive integer (got {T!r})")
    sess = open_session(cn, x, engine=engine, seed=seed, **kwargs)
    sess.run(int(T))
    out = []
    for r, name in enumerate(cn.names):
        s = sess.state(name)
        out.append(np.clip(s, 0.0, 1.0) if cn.xoff[r] >= 0 else s)
    return out


def equilibrium(net, x, *, iterations: int = 1000, tol: float = 1e-13, init=None,
                leak_offset: float = LEAK_OFFSET, rate_map: RateMap | None = None):
    """The fixed point of the rate map by plain iteration in float64 (from zero rates, or
    ``init``): returns (rates per population, iterations used, final max change)."""
    rm = rate_map or RateMap(net, leak_offset)
    msg = rm.messages(x)
    B = next(iter(msg.values())).shape[0]
    if init is None:
        msg.update(rm.zeros(B))
    else:
        msg.update({r: np.array(init[r], dtype=np.float64) for r in rm.hidden})
    change = np.inf
    k = 0
    for k in range(1, iterations + 1):
        z = rm.drive(msg)
        change = max(float(np.max(np.abs(np.clip(z[r], 0, 1) - msg[r]), initial=0.0))
                     for r in rm.hidden)
        msg.update({r: np.clip(z[r], 0.0, 1.0) for r in rm.hidden})
        if change <= tol:
            break
    return _as_list(rm, msg), k, change


# --------------------------------------------------------------------------- losses

def loss_terms(loss: str, a_out, z_out, y):
    """Batch-mean loss and its partial derivatives (dL/da, dL/dz) on the concatenated
    outputs; one of them is None when the loss does not depend on it."""
    B = y.shape[0]
    if loss == "mse":
        diff = a_out - y
        return float(np.sum(diff ** 2) / B), 2.0 * diff / B, None
    if loss == "ce":
        zs = z_out - z_out.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        return float(-np.sum(y * logp) / B), None, (np.exp(logp) * y.sum(axis=1,
                                                     keepdims=True) - y) / B
    raise EngineError(f"loss: must be one of {', '.join(LOSSES)} (got {loss!r})")


# --------------------------------------------------------------------------- the gradient

def solve_adjoint(rm: RateMap, D: dict, h: dict, *, solver: str = "fixed_point",
                  iterations: int = 30, tol: float = 1e-12):
    """Solve ``(I - D Z^T) delta = h`` by ``delta <- h + D Z^T delta`` (from delta = h);
    returns (delta, info).  Stops after ``iterations`` or when the update falls below
    ``tol`` times the size of ``h``."""
    if solver not in SOLVERS:
        raise EngineError(f"solver: must be one of {', '.join(SOLVERS)} (got {solver!r})")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
            or iterations < 0:
        raise EngineError(f"iterations: must be a non-negative integer (got {iterations!r})")
    delta = {r: v.copy() for r, v in h.items()}
    scale = max(max(float(np.max(np.abs(v), initial=0.0)) for v in h.values()), 1e-300)
    res, k = np.inf, 0
    for k in range(1, iterations + 1):
        back = rm.vjp(delta)
        new = {r: h[r] + D[r] * back[r] for r in rm.hidden}
        res = max(float(np.max(np.abs(new[r] - delta[r]), initial=0.0))
                  for r in rm.hidden) / scale
        delta = new
        if res <= tol:
            break
    if iterations == 0:
        k, res = 0, 0.0
    return delta, {"solver": solver, "iterations": k, "residual": res,
                   "converged": bool(res <= max(tol, 1e-6))}


def ide_gradients(net, x, y, T: int | None = None, *, loss: str = "mse",
                  solver: str = "fixed_point", iterations: int = 30, tol: float = 1e-12,
                  surrogate: float = 0.0, leak_offset: float = LEAK_OFFSET, rates=None,
                  engine: str = "lockstep", seed=None, map_iterations: int = 1000,
                  weights=None, biases=None, **engine_kwargs) -> IDEGradients:
    """Gradients of the batch-mean ``loss`` with respect to every projection's parameters
    and every non-input population's biases, by implicit differentiation at the rates'
    equilibrium.

    The rates come from ``rates`` (per population, as :func:`engine_rates` returns) if
    given; else from the engine run for ``T`` steps (the forward pass of the method); else
    (``T=None``) from the rate map's own fixed point (:func:`equilibrium`, float64).  The
    backward system is set up at those rates (the paper does the same with its SNN's
    rates); ``y`` (B, n_out) holds the targets (one-hot for ``"ce"``), split over the output
    populations in order.  ``surrogate`` is the clamp's derivative outside [0, 1].
    Returns :class:`IDEGradients` (dW[p] None for an avgpool2d projection; db[r] None for
    an input population)."""
    rm = RateMap(net, leak_offset, weights, biases)
    cn = rm.net
    x = check_input(x, cn.n_in)
    y = check_input(y, cn.n_out, "target")
    if y.shape[0] != x.shape[0]:
        raise EngineError(f"target: must have {x.shape[0]} rows like the inputs "
                          f"(got {y.shape[0]})")
    if loss not in LOSSES:
        raise EngineError(f"loss: must be one of {', '.join(LOSSES)} (got {loss!r})")
    if rates is not None:
        a = [np.asarray(v, dtype=np.float64) for v in rates]
        if len(a) != cn.n_pops or any(v.shape != (x.shape[0], n)
                                      for v, n in zip(a, cn.sizes)):
            raise EngineError("rates: must hold one (batch, size) array per population")
        a = list(a)
        for r, v in rm.messages(x).items():
            a[r] = v
        info_fwd = {"forward": "given"}
    elif T is not None:
        a = engine_rates(cn, x, T, engine=engine, seed=seed, **engine_kwargs)
        info_fwd = {"forward": "engine", "T": int(T)}
    else:
        a, k, ch = equilibrium(cn, x, iterations=map_iterations, rate_map=rm)
        info_fwd = {"forward": "map", "map_iterations": k, "map_change": ch}
    z = rm.drive(a)
    D = {r: _clamp_deriv(z[r], surrogate) for r in rm.hidden}
    outs = cn.outputs
    a_out = np.concatenate([a[r] for r in outs], axis=1)
    z_out = np.concatenate([z[r] for r in outs], axis=1)
    value, dLda, dLdz = loss_terms(loss, a_out, z_out, y)
    h = rm.zeros(x.shape[0])
    for r, cols in zip(outs, np.split(np.arange(cn.n_out),
                                      np.cumsum([cn.sizes[r] for r in outs])[:-1])):
        if dLda is not None:
            h[r] += D[r] * dLda[:, cols]
        if dLdz is not None:
            h[r] += dLdz[:, cols]
    delta, info = solve_adjoint(rm, D, h, solver=solver, iterations=iterations, tol=tol)
    dW, db = rm.param_grads(a, delta)
    info.update(info_fwd)
    return IDEGradients(dW, db, value, a, info)


def map_loss(net, x, y, *, loss: str = "mse", leak_offset: float = LEAK_OFFSET,
             iterations: int = 5000, tol: float = 1e-15, weights=None, biases=None) -> float:
    """The loss at the rate map's fixed point (float64), the function whose gradient
    :func:`ide_gradients` (``T=None``) returns; for finite-difference checks (``weights``,
    ``biases`` as for :class:`RateMap`)."""
    rm = RateMap(net, leak_offset, weights, biases)
    cn = rm.net
    a, _, _ = equilibrium(cn, x, iterations=iterations, tol=tol, rate_map=rm)
    z = rm.drive(a)
    y = check_input(y, cn.n_out, "target")
    a_out = np.concatenate([a[r] for r in cn.outputs], axis=1)
    z_out = np.concatenate([z[r] for r in cn.outputs], axis=1)
    return loss_terms(loss, a_out, z_out, y)[0]
