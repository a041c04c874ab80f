"""The Equilibrium Propagation update on graph networks (docs/model.md section 7.4).

Every symmetric projection p with implied matrix ``M_p`` (pre x post) contributes
``-rho(s_pre)^T M_p rho(s_post)`` to the Hopfield energy, so the EP estimate of the
gradient with respect to ``M_p`` is the outer-product rule of the chain, applied to the
states of p's two populations; a projection whose weights are shared or absent gets that
dense update projected onto its parameters (the derivative of a tied weight is the sum
over the positions it appears in):

- dense: the outer product itself;  sparse: its entries at the existing synapses;
- conv2d: the correlation of pre and post maps,
  ``dK[co, ci, ky, kx] = sum_b sum_(oy, ox) X[b, ci, oy*sy - py + ky, ox*sx - px + kx]
  Y[b, co, oy, ox]``;
- one_to_one: the diagonal;  avgpool2d: fixed (no parameters).

Two estimates, both from end-of-phase states:

- one-sided (the paper's): free states ``s0``, nudged with ``beta'`` = +-beta (random sign):
  first-order ``[s0_pre^T (s'_post - s0_post) + (s'_pre - s0_pre)^T s0_post] / (beta' B)``,
  full ``[rho(s')_pre^T rho(s')_post - rho(s0)_pre^T rho(s0)_post] / (beta' B)``;
- symmetric (Laborieux et al. 2021): from the free state, one phase at +beta and one at
  -beta, the same formulas with ``s'`` -> ``s+``, ``s0`` -> ``s-`` (full) or the differences
  ``s+ - s-`` around ``s0`` (first-order), divided by ``2 beta B``.

Biases of the paper's neurons: ``db_r = mean_B (s'_r - s0_r) / beta'`` (one-sided) or
``mean_B (s+_r - s-_r) / 2beta``; IF/LIF populations are not part of the energy either.
One-way projections are not part of an energy; EP leaves them alone (their rate is unused).
"""

from __future__ import annotations

import numpy as np

from ..engines import kernels as K


def _rho(z):
    return np.clip(z, 0.0, 1.0)


def conv_correlation(X, Y, g) -> np.ndarray:
    """``sum_b sum_(oy, ox) X[b, ci, oy*sy-py+ky, ox*sx-px+kx] Y[b, co, oy, ox]`` as a
    (C_out, C_in, kh, kw) array; X (B, C_in*H*W), Y (B, C_out*Ho*Wo) flattened C-order;
    ``g`` the projection's row of the compiled table."""
    ci, hi, wi, co, ho, wo = (int(g[k]) for k in (K.PJ_CI, K.PJ_HI, K.PJ_WI, K.PJ_CO,
                                                   K.PJ_HO, K.PJ_WO))
    kh, kw, sy, sx, py, px = (int(g[k]) for k in (K.PJ_KH, K.PJ_KW, K.PJ_SY, K.PJ_SX,
                                                   K.PJ_PY, K.PJ_PX))
    B = X.shape[0]
    xp = np.zeros((B, ci, hi + 2 * py, wi + 2 * px))
    xp[:, :, py:py + hi, px:px + wi] = X.reshape(B, ci, hi, wi)
    y = Y.reshape(B, co, ho, wo)
    out = np.empty((co, ci, kh, kw))
    for ky in range(kh):
        for kx in range(kw):
            win = xp[:, :, ky:ky + sy * (ho - 1) + 1:sy, kx:kx + sx * (wo - 1) + 1:sx]
            out[:, :, ky, kx] = np.einsum("bcyx,bdyx->dc", win, y)
    return out


def pair(net, p: int, X, Y):
    """``X^T M_p Y``'s derivative with respect to projection p's parameters, summed over the
    batch: X (B, pre) and Y (B, post).  None for a projection without parameters."""
    g = net.pj[p]
    kind = g[K.PJ_KIND]
    if kind == K.PK_DENSE:
        return X.T @ Y
    if kind == K.PK_SPARSE:
        rows, cols = net.netlist.projections[p].indices
        return np.einsum("bk,bk->k", X[:, rows], Y[:, cols])
    if kind == K.PK_CONV:
        return conv_correlation(X, Y, g)
    if kind == K.PK_O2O:
        return np.einsum("bk,bk->k", X, Y)
    return None


def graph_update(net, s_ref, s_a, s_b, denom: float, rule: str):
    """The EP direction for every projection and population of a compiled network.

    ``s_ref``, ``s_a``, ``s_b``: per-population lists of (B, n) states (input populations:
    their clamped values).  One-sided: ``(s0, s0, s', beta')``; symmetric: ``(s0, s-, s+,
    2 beta)``.  Returns (dW per projection in its kind's layout, or None where EP leaves it;
    db per population, None for inputs)."""
    B = s_a[0].shape[0]
    scale = denom * B
    dW = []
    for p in range(net.n_projections):
        pre, post = int(net.pj[p, K.PJ_PRE]), int(net.pj[p, K.PJ_POST])
        if not net.netlist.projections[p].symmetric or net.pj[p, K.PJ_KIND] == K.PK_POOL:
            dW.append(None)
            continue
        if rule == "full":
            g = pair(net, p, _rho(s_b[pre]), _rho(s_b[post])) - \
                pair(net, p, _rho(s_a[pre]), _rho(s_a[post]))
        else:
            g = pair(net, p, s_ref[pre], s_b[post] - s_a[post]) + \
                pair(net, p, s_b[pre] - s_a[pre], s_ref[post])
        dW.append(g / scale)
    db = [None if net.xoff[r] >= 0 or net.lp[r, K.LP_MODEL] != K.MODEL_PAPER
          else (s_b[r] - s_a[r]).mean(axis=0) / denom for r in range(net.n_pops)]
    return dW, db
