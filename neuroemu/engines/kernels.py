"""All numba code of neuroemu.

This module imports nothing from neuroemu: it sees only flat arrays and integer kinds
(the numbers below must match :mod:`neuroemu.describe.neurons`; a test checks that).  Every jitted
helper a kernel calls lives in this file, so numba's on-disk cache sees every edit.

Layout (see :mod:`neuroemu.engines.compiled`): a network of ``L+1`` layers is flattened into
per-neuron arrays of shape ``(B, N)`` (B samples side by side, N neurons in layer order,
layer ``l`` at columns ``off[l]:off[l+1]``) and per-layer parameter arrays of length L+1.
Weights are float32 (as in the original implementation) and so is the accumulator of
delivered input ``u``; everything a neuron computes from it is float64.  Weights are two
flat buffers: ``wf`` holds ``W_l`` row-major (row i = fan-out of neuron i
of layer l to layer l+1), ``wb`` holds ``W_l^T`` row-major (fan-out of layer l+1 to l; none
for l = 0, as the clamped input receives nothing), so
that spike delivery always adds contiguous rows.

Semantics follow docs/model.md section 3 exactly; the whole step loop of the lockstep
engine runs inside :func:`run_lockstep`, one sample at a time (samples are independent),
optionally spread over threads with ``prange``.
"""

import types

import numpy as np
from numba import njit, prange

# The one decorator setting of the module: cached, IEEE division (numpy error model:
# x/0 gives inf/nan instead of raising, which is what lets divisions vectorise), and no
# fastmath, so runs are bit-reproducible and match the NumPy reference exactly.
JIT_OPTIONS = dict(cache=True, error_model="numpy")
jit = njit(**JIT_OPTIONS)

ENC_NONE, ENC_STOCHASTIC, ENC_SIGMA_DELTA = 0, 1, 2
ENC_SPIKE = 3   # not a user's encoder: what an IF/LIF neuron sends (its own spikes)
DEC_IDENTITY, DEC_PREDICTIVE = 0, 1
ANN_CONSTANT, ANN_SCHEDULED, ANN_OSA = 0, 1, 2
SCHED_CONSTANT, SCHED_SCHEDULED = 0, 1
MODEL_PAPER, MODEL_IF, MODEL_LIF = 0, 1, 2
RESET_SUBTRACT, RESET_ZERO = 0, 1
PK_DENSE, PK_SPARSE, PK_CONV, PK_POOL, PK_O2O = 0, 1, 2, 3, 4

# Indices into the per-population parameter table ``lp`` (float64, shape (P, LP_COUNT)).
# LP_POLE2 = 1 for a two-pole predictive code (second schedule LP_LAM2*), LP_CLAMP = 1 for
# a sigma-delta residue clamped to +-(LP_CLA + LP_CLB / t).  Fixed-point arithmetic
# (docs/arithmetic.md): LP_MSGQ = 2**message_bits rounds a real-valued message to that grid,
# LP_USAT > 0 saturates the summed input u at +-LP_USAT (0: float, neither); LP_FAST = 1 when
# a chain layer's deliveries all come from spiking senders with 8-bit weights on one quantum
# LP_QSCALE (= 2**e), so they run on the int8 copies (:func:`deliver_int8`).  LP_SQ = F > 0
# makes the neuron integer (:func:`update_fixed`): states on the grid k / 2**F, multipliers
# on k / 2**LP_SB.
(LP_ENC, LP_PRED, LP_LAMK, LP_LAMA, LP_LAMB, LP_DEC, LP_ANNK, LP_ANNA, LP_ANNB,
 LP_MODEL, LP_THR, LP_LEAK, LP_RESET, LP_V0,
 LP_POLE2, LP_LAM2K, LP_LAM2A, LP_LAM2B, LP_CLAMP, LP_CLA, LP_CLB,
 LP_MSGQ, LP_USAT, LP_FAST, LP_QSCALE, LP_SQ, LP_SB) = range(27)
LP_COUNT = 27

# Columns of the projection table ``pj`` (int64, shape (projections, PJ_COUNT)): kind,
# pre and post population, whether it delivers backwards (symmetric, pre not clamped),
# offsets of the forward weights in wf and of the backward copy in wb (-1: none), of the
# forward and backward CSR index arrays in ix (sparse), the number of synapses (sparse),
# the sizes of pre and post, and the geometry of conv and pool projections (maps C x H x W, kernel, stride, padding).
(PJ_KIND, PJ_PRE, PJ_POST, PJ_BWD, PJ_WF, PJ_WB, PJ_IXF, PJ_IXB, PJ_NNZ,
 PJ_CI, PJ_HI, PJ_WI, PJ_CO, PJ_HO, PJ_WO, PJ_KH, PJ_KW, PJ_SY, PJ_SX, PJ_PY, PJ_PX,
 PJ_NPRE, PJ_NPOST) = range(23)
PJ_COUNT = 23

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@jit
def mix64(z):
    """splitmix64 finaliser of ``z + golden`` (wrapping uint64 arithmetic)."""
    z = z + _GOLD
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def uniform01(seed, gid, t):
    """Counter-based uniform in [0, 1) keyed by (sample seed, global neuron id, step).

    Independent of evaluation order, so every engine draws the same numbers.
    """
    h = mix64(mix64(mix64(np.uint64(seed)) ^ np.uint64(gid)) ^ np.uint64(t))
    return float(h >> _S11) * (1.0 / 9007199254740992.0)


@jit
def schedule(kind, a, b, t):
    """Step-size or lambda schedule at step t (t counts from 1): a, or a / t**b."""
    if kind == SCHED_CONSTANT:
        return a
    return a / (float(t) ** b)


@jit
def osa_nu(nu, nu_bar):
    """One step of the OSA ``nu`` sequence (shared by all neurons of a layer)."""
    return nu / (1.0 + nu - nu_bar)


@jit
def deliver(qrow, ev, s_lo, n_ev, binary, w, w_lo, n_dst, urow, u_lo):
    """Event-driven weighted delivery of one sample's messages from one layer.

    ``ev[s_lo:s_lo + n_ev]`` lists (in increasing order) the senders of the layer that
    sent a non-zero message (indices within the layer); ``qrow[s_lo + i]`` is sender i's
    message.  Each adds its contiguous fan-out row (float32) into the float32
    accumulator ``urow[u_lo:u_lo + n_dst]``, in sender order: binary senders the row
    itself, real-valued ones ``float32(q) * row``.

    Binary rows are added four at a time: ``u = (((u + w_a) + w_b) + w_c) + w_d`` is the
    same sequence of float32 additions as four passes (no fast-math, so nothing is
    reassociated), but loads and stores the accumulator once per four rows.  Slices with
    0-based loops are what lets LLVM vectorise the row adds.
    """
    uu = urow[u_lo:u_lo + n_dst]
    k = 0
    if binary:
        while k + 4 <= n_ev:
            i0 = w_lo + ev[s_lo + k] * n_dst
            i1 = w_lo + ev[s_lo + k + 1] * n_dst
            i2 = w_lo + ev[s_lo + k + 2] * n_dst
            i3 = w_lo + ev[s_lo + k + 3] * n_dst
            w0, w1 = w[i0:i0 + n_dst], w[i1:i1 + n_dst]
            w2, w3 = w[i2:i2 + n_dst], w[i3:i3 + n_dst]
            for j in range(n_dst):
                uu[j] = (((uu[j] + w0[j]) + w1[j]) + w2[j]) + w3[j]
            k += 4
    for k in range(k, n_ev):
        i = ev[s_lo + k]
        ww = w[w_lo + i * n_dst:w_lo + (i + 1) * n_dst]
        if binary:
            for j in range(n_dst):
                uu[j] += ww[j]
        else:
            c = np.float32(qrow[s_lo + i])
            for j in range(n_dst):
                uu[j] += c * ww[j]


INT16_ROWS = 256      # rows of |m| <= 127 an int16 accumulator sums without overflow (<= 258)


@jit
def deliver_int8(ev, s_lo, n_ev, w8, w_lo, n_dst, acc, acc16):
    """Fixed point: spiking senders ``ev[s_lo:s_lo + n_ev]`` add their int8 weight rows
    (mantissas, row-major at ``w_lo``) into the int32 ``acc[:n_dst]``.

    Integer sums are exact in any order, so rows are summed in int16 blocks of
    ``INT16_ROWS`` (|partial sums| <= 256 * 127 < 2**15) and each block is added to ``acc``:
    twice the SIMD lanes of float32 and a quarter of the bytes.  The result is the exact
    integer sum, which the float32 path computes too (docs/arithmetic.md).
    """
    k = 0
    a16 = acc16[:n_dst]
    aa = acc[:n_dst]
    while k < n_ev:
        kend = min(n_ev, k + INT16_ROWS)
        for j in range(n_dst):
            a16[j] = 0
        while k + 4 <= kend:
            i0 = w_lo + ev[s_lo + k] * n_dst
            i1 = w_lo + ev[s_lo + k + 1] * n_dst
            i2 = w_lo + ev[s_lo + k + 2] * n_dst
            i3 = w_lo + ev[s_lo + k + 3] * n_dst
            w0, w1 = w8[i0:i0 + n_dst], w8[i1:i1 + n_dst]
            w2, w3 = w8[i2:i2 + n_dst], w8[i3:i3 + n_dst]
            for j in range(n_dst):
                a16[j] = np.int16(np.int16(np.int16(np.int16(a16[j] + w0[j]) + w1[j])
                                           + w2[j]) + w3[j])
            k += 4
        while k < kend:
            i0 = w_lo + ev[s_lo + k] * n_dst
            w0 = w8[i0:i0 + n_dst]
            for j in range(n_dst):
                a16[j] = np.int16(a16[j] + w0[j])
            k += 1
        for j in range(n_dst):
            aa[j] += a16[j]


@jit
def quantise_dense(W, inv, scale, mmax, wf, wf_lo, wb, wb_lo, w8f, w8b):
    """Fixed point: a dense projection's float master weights ``W`` (n0, n1) onto its grid,
    ``m = clip(rint(W * inv), -mmax, mmax)`` (``inv = 2**-e``, ``scale = 2**e``), stored as
    ``float32(m * scale)`` row-major in ``wf`` and transposed in ``wb`` (``wb_lo`` >= 0), and
    as int8 ``m`` in ``w8f``/``w8b`` when those are not empty (mmax <= 127 then)."""
    n0, n1 = W.shape
    for i in range(n0):
        for j in range(n1):
            m = min(max(np.rint(W[i, j] * inv), -mmax), mmax)
            v = np.float32(m * scale)
            wf[wf_lo + i * n1 + j] = v
            if wb_lo >= 0:
                wb[wb_lo + j * n0 + i] = v
            if w8f.shape[0] > 0:
                w8f[wf_lo + i * n1 + j] = np.int8(m)
                if wb_lo >= 0:
                    w8b[wb_lo + j * n0 + i] = np.int8(m)


@jit
def update_neurons(l, lo, hi, t, nu, beta, is_out, out_lo, lp, u, bias, y,
                   s, v, a, eps_s, th, ob, od, ol, v2):
    """Decoder, step size and state update of neurons [lo, hi) of layer l of one sample.

    All arrays are one sample's rows (1-D).  ``u`` holds the delivered input u(t);
    ``s`` holds s(t-1) on entry and s(t) on exit; ``a`` receives the drive a(t).
    ``nu`` is the layer's OSA nu for this step (already advanced).  A two-pole decoder
    filters u with lam2 into ``v2``, then ``v2`` with lam into ``v``.

    Performance note: each quantity has its own branch-free loop over 0-based slices
    touching few arrays, which is what lets LLVM vectorise (offset indices and loops
    that write many arrays defeat it).  The arithmetic per element is unchanged.
    """
    n = hi - lo
    saturate(l, lp, u, lo, hi)
    if lp[l, LP_SQ] != 0.0:
        update_fixed(l, lo, hi, t, beta, is_out, out_lo, lp, u, bias, y, s, v, a, eps_s)
        return
    lam = schedule(int(lp[l, LP_LAMK]), lp[l, LP_LAMA], lp[l, LP_LAMB], t)
    annk = int(lp[l, LP_ANNK])
    annb = lp[l, LP_ANNB]
    uu, ss, vv, aa, bb = u[lo:hi], s[lo:hi], v[lo:hi], a[lo:hi], bias[lo:hi]
    ee, tt, gb, gd, gl = eps_s[lo:hi], th[lo:hi], ob[lo:hi], od[lo:hi], ol[lo:hi]
    # decoder: v(t)
    if int(lp[l, LP_DEC]) == DEC_PREDICTIVE and lp[l, LP_POLE2] != 0.0:
        lam2 = schedule(int(lp[l, LP_LAM2K]), lp[l, LP_LAM2A], lp[l, LP_LAM2B], t)
        ww = v2[lo:hi]
        for j in range(n):
            ww[j] = (1.0 - lam2) * ww[j] + lam2 * float(uu[j])
            vv[j] = (1.0 - lam) * vv[j] + lam * ww[j]
    elif int(lp[l, LP_DEC]) == DEC_PREDICTIVE:
        for j in range(n):
            vv[j] = (1.0 - lam) * vv[j] + lam * float(uu[j])
    else:
        for j in range(n):
            vv[j] = float(uu[j])
    # drive: a = rho'(s(t-1)) * (v + b) [+ 2 beta (y - s(t-1)) on the output layer]
    for j in range(n):
        sp = ss[j]
        rp = 1.0 if (sp >= 0.0 and sp <= 1.0) else 0.0
        aa[j] = rp * (vv[j] + bb[j])
    if is_out:
        yy = y[lo - out_lo:hi - out_lo]
        for j in range(n):
            aa[j] = aa[j] + 2.0 * beta * (yy[j] - ss[j])
    # step size eps(t)
    if annk == ANN_OSA:
        for j in range(n):
            err = aa[j] - tt[j]
            gb[j] = (1.0 - nu) * gb[j] + nu * err
            gd[j] = (1.0 - nu) * gd[j] + nu * err * err
        if t == 1:
            for j in range(n):
                ee[j] = 1.0
        else:
            for j in range(n):
                var = (gd[j] - gb[j] * gb[j]) / (1.0 + gl[j])
                ee[j] = 1.0 - (var + annb) / (gd[j] + annb)
        for j in range(n):
            al = ee[j]
            gl[j] = (1.0 - al) * (1.0 - al) * gl[j] + al * al
        for j in range(n):
            al = ee[j]
            tt[j] = (1.0 - al) * tt[j] + al * aa[j]
    else:
        eps = layer_eps(l, lp, t)
        for j in range(n):
            ee[j] = eps
    # state: s(t) = clip((1 - eps) s(t-1) + eps a, 0, 1)
    for j in range(n):
        e = ee[j]
        ss[j] = min(max((1.0 - e) * ss[j] + e * aa[j], 0.0), 1.0)


@jit
def layer_eps(l, lp, t):
    """The step size eps(t) shared by the neurons of layer l (constant or scheduled)."""
    if int(lp[l, LP_ANNK]) == ANN_SCHEDULED:
        return schedule(SCHED_SCHEDULED, lp[l, LP_ANNA], lp[l, LP_ANNB], t)
    return lp[l, LP_ANNA]


@jit
def update_fixed(l, lo, hi, t, beta, is_out, out_lo, lp, u, bias, y, s, v, a, eps_s):
    """:func:`update_neurons` for an integer neuron (docs/arithmetic.md, "Integer neurons").

    Every quantity is an int64 count of ``2**-F`` (``F = LP_SQ``): the summed input
    ``u_k = rint(u 2**F)``, the decoded input, the bias ``rint(b 2**F)``, the target, the
    drive and the state (``0 <= s_k <= 2**F``).  The multipliers lam(t), eps(t) and 2 beta
    are ``rint(x 2**B)`` (``B = LP_SB``); each product ``z`` comes back as
    ``(z + 2**(B-1)) >> B`` (round to nearest, ties upwards: an adder and an arithmetic
    shift).  The arrays keep the values ``k 2**-F`` (exact in float64), so what reads states
    -- encoders, traces, learning -- is unchanged.
    """
    F = int(lp[l, LP_SQ])
    B = int(lp[l, LP_SB])
    one = np.int64(1) << np.int64(F)
    scale = 2.0 ** F
    inv = 1.0 / scale
    stp = 2.0 ** B
    lam_q = np.int64(np.rint(schedule(int(lp[l, LP_LAMK]), lp[l, LP_LAMA], lp[l, LP_LAMB], t)
                             * stp))
    eps_q = np.int64(np.rint(layer_eps(l, lp, t) * stp))
    b2_q = np.int64(np.rint(2.0 * beta * stp))
    half = np.int64(1) << np.int64(B - 1)
    sb = np.int64(B)
    n = hi - lo
    uu, vv, ss, aa, bb, ee = u[lo:hi], v[lo:hi], s[lo:hi], a[lo:hi], bias[lo:hi], eps_s[lo:hi]
    # one simple loop per quantity, as in update_neurons (sums of grid values are exact)
    if int(lp[l, LP_DEC]) == DEC_PREDICTIVE:
        for j in range(n):
            uk = np.int64(np.rint(float(uu[j]) * scale))
            vk = np.int64(vv[j] * scale)
            vv[j] = (vk + ((lam_q * (uk - vk) + half) >> sb)) * inv
    else:
        for j in range(n):
            vv[j] = np.rint(float(uu[j]) * scale) * inv
    for j in range(n):
        sp = ss[j]
        rp = 1.0 if (sp >= 0.0 and sp <= 1.0) else 0.0
        aa[j] = rp * (vv[j] + np.rint(bb[j] * scale) * inv)
    if is_out:
        yy = y[lo - out_lo:hi - out_lo]
        for j in range(n):
            d = np.int64(np.rint(yy[j] * scale)) - np.int64(ss[j] * scale)
            aa[j] = aa[j] + ((b2_q * d + half) >> sb) * inv
    for j in range(n):
        ee[j] = eps_q / stp
    for j in range(n):
        sk = np.int64(ss[j] * scale)
        sk = sk + ((eps_q * (np.int64(aa[j] * scale) - sk) + half) >> sb)
        ss[j] = min(max(sk, np.int64(0)), one) * inv


@jit
def quantize(l, t, lp, seed, ids, id_lo, n, cc, mm, pp, qq, m2):
    """The encoder chain of layer l at step t on n contiguous values (0-based arrays).

    ``cc[:n]`` are the values to send before rho, ``mm`` the predictive memories (``m2``
    the second ones, of a two-pole code), ``pp`` the sigma-delta residues; ``qq[:n]``
    receives the messages (0/1 for spiking encoders, the real value for ``none``).  A
    neuron's global id (which keys the stochastic encoder's random numbers) is ``ids[j]``
    if ``ids`` is non-empty, else ``id_lo + j``.
    """
    enc = int(lp[l, LP_ENC])
    lam = schedule(int(lp[l, LP_LAMK]), lp[l, LP_LAMA], lp[l, LP_LAMB], t)
    cc, qq, mm, pp = cc[:n], qq[:n], mm[:n], pp[:n]
    # quantizer input c (predictive wrapper: c = (x_t - (1 - lam) x_{t-1}) / lam; two
    # poles: w = that, then c = (w_t - (1 - lam2) w_{t-1}) / lam2)
    if lp[l, LP_SQ] != 0.0:          # integer neuron: values on the grid k / 2**F
        scale = 2.0 ** lp[l, LP_SQ]
        inv = 1.0 / scale
        B = int(lp[l, LP_SB])
        if lp[l, LP_PRED] != 0.0:     # q = m + (c - m) / lam, with 1/lam on k / 2**B
            r_q = np.int64(np.rint(2.0 ** B / lam))
            half = np.int64(1) << np.int64(B - 1)
            sb = np.int64(B)
            for j in range(n):
                qq[j] = np.rint(min(max(cc[j], 0.0), 1.0) * scale)       # c, in counts
            for j in range(n):
                ck = np.int64(qq[j])
                mk = np.int64(mm[j] * scale)
                mm[j] = qq[j] * inv
                qq[j] = (mk + ((r_q * (ck - mk) + half) >> sb)) * inv
        else:
            for j in range(n):
                qq[j] = np.rint(min(max(cc[j], 0.0), 1.0) * scale) * inv
    elif lp[l, LP_PRED] != 0.0 and lp[l, LP_POLE2] != 0.0:
        lam2 = schedule(int(lp[l, LP_LAM2K]), lp[l, LP_LAM2A], lp[l, LP_LAM2B], t)
        ww = m2[:n]
        for j in range(n):
            c = min(max(cc[j], 0.0), 1.0)
            w = (c - (1.0 - lam) * mm[j]) / lam
            mm[j] = c
            qq[j] = (w - (1.0 - lam2) * ww[j]) / lam2
            ww[j] = w
    elif lp[l, LP_PRED] != 0.0:
        for j in range(n):
            c = min(max(cc[j], 0.0), 1.0)
            qq[j] = (c - (1.0 - lam) * mm[j]) / lam
            mm[j] = c
    else:
        for j in range(n):
            qq[j] = min(max(cc[j], 0.0), 1.0)
    if enc == ENC_SIGMA_DELTA and lp[l, LP_CLAMP] != 0.0:
        bound = lp[l, LP_CLA] + lp[l, LP_CLB] / float(t)
        if lp[l, LP_SQ] != 0.0:      # integer neuron: the bound on the grid, rounded down
            bound = np.floor(bound * 2.0 ** lp[l, LP_SQ]) * 2.0 ** -lp[l, LP_SQ]
        for j in range(n):
            p = pp[j] + qq[j]
            qj = 1.0 if p > 0.5 else 0.0
            pp[j] = min(max(p - qj, -bound), bound)
            qq[j] = qj
    elif enc == ENC_SIGMA_DELTA:
        for j in range(n):
            p = pp[j] + qq[j]
            qj = 1.0 if p > 0.5 else 0.0
            pp[j] = p - qj
            qq[j] = qj
    elif enc == ENC_STOCHASTIC:
        if ids.shape[0] > 0:
            for j in range(n):
                qq[j] = 1.0 if qq[j] > uniform01(seed, ids[j], t) else 0.0
        else:
            for j in range(n):
                qq[j] = 1.0 if qq[j] > uniform01(seed, id_lo + j, t) else 0.0
    elif enc == ENC_NONE and lp[l, LP_MSGQ] != 0.0:   # fixed point: k / 2**message_bits
        sc = lp[l, LP_MSGQ]
        for j in range(n):
            qq[j] = min(np.rint(qq[j] * sc), sc - 1.0) / sc


@jit
def saturate(l, lp, u, lo, hi):
    """Fixed point: the summed input u[lo:hi] of population l saturates at +-LP_USAT."""
    sat = lp[l, LP_USAT]
    if sat > 0.0:
        hi32, lo32 = np.float32(sat), np.float32(-sat)
        for j in range(lo, hi):
            u[j] = min(max(u[j], lo32), hi32)


_NO_IDS = np.zeros(0, dtype=np.int64)


@jit
def encode_neurons(l, lo, hi, t, lp, seed, src, src_lo, xm, phi, q, ev, xm2):
    """Encoders of neurons [lo, hi) of layer l of one sample (1-D rows), at step t
    (``xm``, ``xm2``: the predictive memories, ``phi`` the residues).

    ``src[src_lo:src_lo + hi - lo]`` are the values to send before rho (the states, or
    the clamped input for layer 0).  Writes the message q(t) (0/1 for spiking encoders,
    the real value for ``none``), lists the senders of non-zero messages (indices within
    the layer, increasing) in ``ev[lo:lo + count]``, and returns that count.
    """
    n = hi - lo
    quantize(l, t, lp, seed, _NO_IDS, lo, n, src[src_lo:src_lo + n], xm[lo:hi], phi[lo:hi],
             q[lo:hi], xm2[lo:hi])
    # event list without a branch per neuron (spike patterns are close to random, so a
    # branch mispredicts often and costs more than the encoder arithmetic)
    qq = q[lo:hi]
    ee = ev[lo:hi]
    count = 0
    for j in range(n):
        ee[count] = j
        count += qq[j] != 0.0
    return count


@jit
def pack_clamped(n, x, xm, phi, q, ids, px, pm, pp, xm2, pm2):
    """Pack the clamped layer's live neurons (indices into ``ids``, values into
    px/pm/pp/pm2).

    A neuron whose clamped value clips to 0 and whose predictive memories, residue and last
    message are all 0 sends nothing, ever: every encoder maps c = 0 with zero memory and
    residue to the message 0 and leaves them at 0.  Only the others need encoding, which
    for an image (mostly black pixels) is a fraction of the layer.  Returns their count.
    """
    k = 0
    for j in range(n):
        if min(max(x[j], 0.0), 1.0) != 0.0 or xm[j] != 0.0 or phi[j] != 0.0 or q[j] != 0.0 \
                or xm2[j] != 0.0:
            ids[k] = j
            px[k] = x[j]
            pm[k] = xm[j]
            pp[k] = phi[j]
            pm2[k] = xm2[j]
            k += 1
    return k


@jit
def unpack_clamped(k, ids, pm, pp, xm, phi, pm2, xm2):
    """Write the packed memories and residues back into the layer's rows."""
    for i in range(k):
        xm[ids[i]] = pm[i]
        phi[ids[i]] = pp[i]
        xm2[ids[i]] = pm2[i]


@jit
def encode_packed(t, lp, seed, k, ids, px, pm, pp, pq, q, ev, pm2):
    """:func:`encode_neurons` for the clamped layer 0, on its packed live neurons: the
    same arithmetic, the messages scattered into ``q``, the event list (increasing, as
    ``ids`` is) into ``ev[0:count]``.  Returns the count."""
    quantize(0, t, lp, seed, ids, 0, k, px, pm, pp, pq, pm2)
    count = 0
    for i in range(k):
        j = ids[i]
        q[j] = pq[i]
        ev[count] = j
        count += pq[i] != 0.0
    return count


@jit
def step_sample(t, beta, x, y, off, lp, wf, wf_off, wb, wb_off, bias, seed,
                s, v, a, phi, xm, xm2, v2, q, ev, nev, eps_s, th, ob, od, ol, nu, u,
                c_spk, c_syn, c_upd, k0, ids, px, pm, pp, pq, pm2, w8f, w8b, acc, acc16):
    """One synchronous step t of one sample (model.md section 3), in place.

    Every array is that sample's own: rows (x, y, s, v, ..., u) and per-layer vectors.
    ``q``/``ev``/``nev`` hold the messages of step t-1 on entry (the message values, the
    per-layer event lists and their lengths) and those of step t on exit; ``nu`` the
    layers' OSA nu.  Counters (exact integers): ``c_spk[l]`` non-zero messages sent by
    layer l; ``c_syn[p, 0]`` synaptic events of projection p upwards (layer p -> p+1)
    and ``c_syn[p, 1]`` downwards (p+1 -> p); ``c_upd[l, 0]`` state updates (each runs
    the decoder and the annealer) and ``c_upd[l, 1]`` encoder updates.
    The clamped layer 0 is encoded from its ``k0`` packed live neurons (see
    :func:`pack_clamped`; ``xm``/``xm2``/``phi`` of layer 0 are stale until unpacked).
    ``xm2`` and ``v2`` are the encoders' and decoders' second-pole memories.  Fixed-point
    layers marked ``LP_FAST`` sum int8 mantissas (``w8f``/``w8b``, laid out as ``wf``/``wb``)
    in ``acc`` (int32) with the int16 scratch ``acc16``.
    """
    L = off.shape[0] - 2
    # 1. delivery of q(t-1) into u(t) for every non-input layer
    for l in range(1, L + 1):
        lo, hi = off[l], off[l + 1]
        n_here = hi - lo
        if lp[l, LP_FAST] != 0.0:
            acc[:n_here] = 0
            k = nev[l - 1]
            deliver_int8(ev, off[l - 1], k, w8f, wf_off[l - 1], n_here, acc, acc16)
            c_syn[l - 1, 0] += k * n_here
            if l < L:
                k = nev[l + 1]
                deliver_int8(ev, off[l + 1], k, w8b, wb_off[l], n_here, acc, acc16)
                c_syn[l, 1] += k * n_here
            sc = np.float32(lp[l, LP_QSCALE])
            for j in range(n_here):
                u[lo + j] = np.float32(acc[j]) * sc
            continue
        u[lo:hi] = np.float32(0.0)
        k = nev[l - 1]
        deliver(q, ev, off[l - 1], k, lp[l - 1, LP_ENC] != ENC_NONE,
                wf, wf_off[l - 1], n_here, u, lo)
        c_syn[l - 1, 0] += k * n_here
        if l < L:
            k = nev[l + 1]
            deliver(q, ev, off[l + 1], k, lp[l + 1, LP_ENC] != ENC_NONE,
                    wb, wb_off[l], n_here, u, lo)
            c_syn[l, 1] += k * n_here
    # 2. decoders, step sizes, states
    for l in range(1, L + 1):
        if lp[l, LP_ANNK] == ANN_OSA:
            nu[l] = osa_nu(nu[l], lp[l, LP_ANNA])
        update_neurons(l, off[l], off[l + 1], t, nu[l], beta, l == L, off[L], lp,
                       u, bias, y, s, v, a, eps_s, th, ob, od, ol, v2)
        c_upd[l, 0] += off[l + 1] - off[l]
    # 3. encoders of every layer, the clamped input included
    for l in range(L + 1):
        if l == 0:
            k = encode_packed(t, lp, seed, k0, ids, px, pm, pp, pq, q, ev, pm2)
        else:
            k = encode_neurons(l, off[l], off[l + 1], t, lp, seed, s, off[l], xm, phi, q, ev,
                               xm2)
        nev[l] = k
        c_spk[l] += k
        c_upd[l, 1] += off[l + 1] - off[l]


def _run(nsteps, beta, x, y, off, lp, wf, wf_off, wb, wb_off, bias, seeds,
         s, v, a, phi, xm, xm2, v2, q, ev, nev, eps_s, th, ob, od, ol, clock, nu, u,
         c_spk, c_syn, c_upd, w8f, w8b, rec_every, rec_q, rec_s, rec_x):
    """Run ``nsteps`` synchronous steps for every sample (the lockstep engine's loop).

    ``x`` (B, n_input) is the clamped input; ``y`` (B, n_output) the target of the nudge.
    Recording: every ``rec_every`` steps, row k of ``rec_q`` / ``rec_s`` (B, N) and
    ``rec_x`` (B, 3, N: decoded input v, step size eps, encoder residue phi) receives the
    values after that step, for the buffers with a non-zero first dimension.

    Each sample runs on private copies of its small per-layer arrays (clock, event-list
    lengths, OSA nu, counters), written back at the end: in the (B, layers) arrays
    neighbouring samples share cache lines, which threads would otherwise fight over
    every step.
    """
    B = s.shape[0]
    N = s.shape[1]
    n0 = off[1]
    for b in prange(B):
        ids = np.empty(n0, dtype=np.int64)
        px, pm, pp, pq = np.empty(n0), np.empty(n0), np.empty(n0), np.empty(n0)
        pm2 = np.empty(n0)
        acc = np.empty(N, dtype=np.int32)
        acc16 = np.empty(N, dtype=np.int16)
        k0 = pack_clamped(n0, x[b], xm[b], phi[b], q[b], ids, px, pm, pp, xm2[b], pm2)
        nev_b, nu_b = nev[b].copy(), nu[b].copy()
        spk_b, syn_b, upd_b = c_spk[b].copy(), c_syn[b].copy(), c_upd[b].copy()
        t = clock[b]
        sb, qb = s[b], q[b]
        for k in range(nsteps):
            t += 1
            step_sample(t, beta, x[b], y[b], off, lp, wf, wf_off, wb, wb_off, bias, seeds[b],
                        sb, v[b], a[b], phi[b], xm[b], xm2[b], v2[b], qb, ev[b], nev_b,
                        eps_s[b], th[b], ob[b], od[b], ol[b], nu_b, u[b], spk_b, syn_b, upd_b,
                        k0, ids, px, pm, pp, pq, pm2, w8f, w8b, acc, acc16)
            if (k + 1) % rec_every == 0:
                r = (k + 1) // rec_every - 1
                if r < rec_q.shape[0]:
                    for j in range(N):
                        rec_q[r, b, j] = qb[j] != 0.0
                if r < rec_s.shape[0]:
                    for j in range(N):
                        rec_s[r, b, j] = sb[j]
                if r < rec_x.shape[0]:
                    unpack_clamped(k0, ids, pm, pp, xm[b], phi[b], pm2, xm2[b])
                    for j in range(N):
                        rec_x[r, b, 0, j] = v[b, j]
                        rec_x[r, b, 1, j] = eps_s[b, j]
                        rec_x[r, b, 2, j] = phi[b, j]
        unpack_clamped(k0, ids, pm, pp, xm[b], phi[b], pm2, xm2[b])
        clock[b] = t
        nev[b], nu[b] = nev_b, nu_b
        c_spk[b], c_syn[b], c_upd[b] = spk_b, syn_b, upd_b


def _renamed(fn, name: str):
    """A copy of a Python function under another name.

    numba's on-disk cache names its files after the function and indexes them by
    signature only, so a serial and a ``parallel=True`` dispatcher built from the same
    function would share one cache entry (whichever compiled first is what the other
    loads: a "parallel" kernel running on one thread).  The threaded build therefore
    compiles a renamed copy, which gets cache files of its own.
    """
    code = fn.__code__.replace(co_name=name, co_qualname=name)
    out = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    out.__qualname__, out.__doc__ = name, fn.__doc__
    return out


class threads:
    """``with threads(n):`` -- numba's thread count set to ``n`` (at most
    NUMBA_NUM_THREADS) around a call of a ``*_parallel`` kernel, restored afterwards,
    with ``prange`` iterations handed out one at a time (samples differ in cost, so
    dynamic scheduling balances threads better than equal contiguous blocks)."""

    def __init__(self, n: int, chunk: int = 1):
        self.n, self.chunk = int(n), int(chunk)

    def __enter__(self):
        if self.n > 1:
            import numba
            self.prev = numba.get_num_threads()
            self.prev_chunk = numba.get_parallel_chunksize()
            numba.set_num_threads(min(self.n, numba.config.NUMBA_NUM_THREADS))
            numba.set_parallel_chunksize(self.chunk)
        return self

    def __exit__(self, *exc):
        if self.n > 1:
            import numba
            numba.set_num_threads(self.prev)
            numba.set_parallel_chunksize(self.prev_chunk)


run_lockstep = njit(**JIT_OPTIONS)(_run)
run_lockstep_parallel = njit(parallel=True, **JIT_OPTIONS)(_renamed(_run, "_run_parallel"))


# --------------------------------------------------------------------------- async engine

@jit
def deliver_cols(idx, vals, n_ev, binary, w, w_lo, row_len, col_lo, n_cols, urow, u_lo):
    """Delivery into a column range of the receiving layer (one circuit cluster).

    Like :func:`deliver`, but the senders come as a packed list: ``idx[k]`` is sender k's
    index within its layer and ``vals[k]`` its message (read only when not ``binary``).
    Each adds columns ``[col_lo, col_lo + n_cols)`` of its fan-out row (rows of length
    ``row_len`` starting at ``w_lo``) into ``urow[u_lo:u_lo + n_cols]``, in list order --
    with the list in sender order and the full row this is :func:`deliver`'s arithmetic.
    """
    uu = urow[u_lo:u_lo + n_cols]
    for k in range(n_ev):
        base = w_lo + idx[k] * row_len + col_lo
        ww = w[base:base + n_cols]
        if binary:
            for j in range(n_cols):
                uu[j] += ww[j]
        else:
            c = np.float32(vals[k])
            for j in range(n_cols):
                uu[j] += c * ww[j]


@jit
def integrate_cols(idx_a, val_a, n_a, bin_a, w_a, wlo_a, idx_b, val_b, n_b, bin_b, w_b, wlo_b,
                   row_len, col_lo, n_cols, urow, u_lo):
    """u(t) of one cluster: zero its columns, then deliver the messages from the layer
    below (``*_a``) and from the layer above (``*_b``), in that order (as step_sample)."""
    uu = urow[u_lo:u_lo + n_cols]
    for j in range(n_cols):
        uu[j] = np.float32(0.0)
    deliver_cols(idx_a, val_a, n_a, bin_a, w_a, wlo_a, row_len, col_lo, n_cols, urow, u_lo)
    deliver_cols(idx_b, val_b, n_b, bin_b, w_b, wlo_b, row_len, col_lo, n_cols, urow, u_lo)


@jit
def async_tick(l, lo, hi, t, nu, beta, is_out, out_lo, lp, seed, bias, y, x,
               w_a, wlo_a, w_b, wlo_b, row_len, col_lo,
               idx_a, val_a, n_a, bin_a, idx_b, val_b, n_b, bin_b,
               s, v, a, eps_s, th, ob, od, ol, u, phi, xm, q, ev, xm2, v2):
    """Tick t of one circuit cluster, neurons [lo, hi) of layer l of one sample (1-D rows).

    Layer 0 (clamped input) only encodes ``x``.  Other layers: :func:`integrate_cols` of
    the packets from below (``*_a``) and above (``*_b``), :func:`update_neurons` with the
    cluster's OSA ``nu`` for this step, then :func:`encode_neurons`.  Returns the number
    of non-zero messages (listed in ``ev[lo:lo + count]``, relative to ``lo``).
    """
    if l == 0:
        return encode_neurons(0, lo, hi, t, lp, seed, x, lo, xm, phi, q, ev, xm2)
    integrate_cols(idx_a, val_a, n_a, bin_a, w_a, wlo_a, idx_b, val_b, n_b, bin_b, w_b, wlo_b,
                   row_len, col_lo, hi - lo, u, lo)
    update_neurons(l, lo, hi, t, nu, beta, is_out, out_lo, lp, u, bias, y, s, v, a, eps_s,
                   th, ob, od, ol, v2)
    return encode_neurons(l, lo, hi, t, lp, seed, s, lo, xm, phi, q, ev, xm2)



# --------------------------------------------------------------------------- EP training

@jit
def ep_outer(A, Bm, C, D, out):
    """``out = A^T Bm + C^T D`` for (B, n0) / (B, n1) float64 arrays, without BLAS.

    The EP weight update is a sum of B outer products; rows of A or C that are zero
    (silent input pixels, the clamped input's zero change) are skipped.  Summation order
    is fixed (samples in order, the A term before the C term), so results do not depend
    on threads.  Used by :func:`neuroemu.learn.eqprop.ep_update`.
    """
    nb, n0 = A.shape
    n1 = Bm.shape[1]
    for i in range(n0):
        row = out[i]
        for j in range(n1):
            row[j] = 0.0
        for b in range(nb):
            ca = A[b, i]
            if ca != 0.0:
                bb = Bm[b]
                for j in range(n1):
                    row[j] += ca * bb[j]
            cc = C[b, i]
            if cc != 0.0:
                dd = D[b]
                for j in range(n1):
                    row[j] += cc * dd[j]


def _ep_step(A, Bm, C, D, scale, rate, W, wf, wf_lo, wb, wb_lo):
    """One SGD step of a projection's weights from the EP update, fused and row by row.

    For each row i: ``dW[i] = (A^T Bm + C^T D)[i] / scale`` summed exactly as
    :func:`ep_outer` does, then ``W[i] += rate * dW[i]`` on the float64 master, and
    ``float32(W[i])`` into the compiled network's ``wf`` (row-major) and, when ``wb_lo``
    >= 0, its transposed copy ``wb`` -- element for element the arithmetic of
    :func:`ep_outer`, NumPy's ``dW /= scale`` and ``W += rate * dW``, without the
    (n0, n1) temporaries.  Rows whose A and C columns are all zero (silent input pixels:
    most of an image) have dW = 0 and are left as they are.  Rows are independent, so
    the threaded build gives the same bits.
    """
    nb, n0 = A.shape
    n1 = Bm.shape[1]
    for i in prange(n0):
        # the non-zero terms of row i in summation order: (coefficient, row of Bm or D)
        coef = np.empty(2 * nb)
        src = np.empty(2 * nb, dtype=np.int64)
        m = 0
        for b in range(nb):
            if A[b, i] != 0.0:
                coef[m], src[m] = A[b, i], b
                m += 1
            if C[b, i] != 0.0:
                coef[m], src[m] = C[b, i], nb + b
                m += 1
        if m == 0:
            continue
        # acc = (((0 + c0 r0) + c1 r1) + ...), four terms per pass over acc: the same
        # additions in the same order as one pass per term
        acc = np.zeros(n1)
        k = 0
        while k + 4 <= m:
            r0 = Bm[src[k]] if src[k] < nb else D[src[k] - nb]
            r1 = Bm[src[k + 1]] if src[k + 1] < nb else D[src[k + 1] - nb]
            r2 = Bm[src[k + 2]] if src[k + 2] < nb else D[src[k + 2] - nb]
            r3 = Bm[src[k + 3]] if src[k + 3] < nb else D[src[k + 3] - nb]
            c0, c1, c2, c3 = coef[k], coef[k + 1], coef[k + 2], coef[k + 3]
            for j in range(n1):
                acc[j] = (((acc[j] + c0 * r0[j]) + c1 * r1[j]) + c2 * r2[j]) + c3 * r3[j]
            k += 4
        for k in range(k, m):
            r0 = Bm[src[k]] if src[k] < nb else D[src[k] - nb]
            c0 = coef[k]
            for j in range(n1):
                acc[j] += c0 * r0[j]
        wrow = W[i]
        base = wf_lo + i * n1
        for j in range(n1):
            w = wrow[j] + rate * (acc[j] / scale)
            wrow[j] = w
            wf[base + j] = np.float32(w)
        if wb_lo >= 0:
            for j in range(n1):
                wb[wb_lo + j * n0 + i] = wf[base + j]


ep_step = njit(**JIT_OPTIONS)(_ep_step)
ep_step_parallel = njit(parallel=True, **JIT_OPTIONS)(_renamed(_ep_step, "_ep_step_parallel"))


# --------------------------------------------------------------------------- graph networks

@jit
def _scatter_sparse(q, ev, s_lo, n_ev, binary, w, w_lo, ix, ip_lo, n_rows, urow, u_lo):
    """Senders' CSR rows (indptr at ix[ip_lo:ip_lo+n_rows+1], column indices after it,
    values at w[w_lo:]) added into urow[u_lo + col], in sender order; returns the count."""
    ind_lo = ip_lo + n_rows + 1
    syn = 0
    for k in range(n_ev):
        i = ev[s_lo + k]
        a, b = ix[ip_lo + i], ix[ip_lo + i + 1]
        syn += b - a
        if binary:
            for e in range(a, b):
                urow[u_lo + ix[ind_lo + e]] += w[w_lo + e]
        else:
            c = np.float32(q[s_lo + i])
            for e in range(a, b):
                urow[u_lo + ix[ind_lo + e]] += c * w[w_lo + e]
    return syn


@jit
def _conv_geometry(g, d):
    """(sender maps C, H, W; receiving maps C, H, W) of a conv projection, direction d."""
    if d == 0:
        return g[PJ_CI], g[PJ_HI], g[PJ_WI], g[PJ_CO], g[PJ_HO], g[PJ_WO]
    return g[PJ_CO], g[PJ_HO], g[PJ_WO], g[PJ_CI], g[PJ_HI], g[PJ_WI]


@jit
def _conv_coord(d, pos, k, stride, pad, n_recv):
    """Along one axis: the receiving coordinate that kernel tap k of a sender at ``pos``
    reaches, or -1.  Forwards output o with o * stride - pad + k == pos; backwards input
    pos * stride - pad + k of output pos."""
    if d == 0:
        n = pos + pad - k
        if n < 0 or n % stride != 0 or n // stride >= n_recv:
            return -1
        return n // stride
    i = pos * stride - pad + k
    return i if 0 <= i < n_recv else -1


@jit
def _conv_channels_last(g, d, q, ev, s_lo, n_ev, binary, wt, wt_lo, urow, u_lo):
    """Conv delivery (direction d) with the receiving maps accumulated channels-last in a
    scratch copy (loaded from and stored back to ``urow``: the same additions in the same
    order on the same values): each tap of a sender adds a contiguous run of the receiving
    channels' weights from the kernel copy ``wt``, laid out (C_in, kh, kw, C_out) forwards
    and (C_out, kh, kw, C_in) backwards."""
    cs_n, hs_n, ws_n, cr_n, hr_n, wr_n = _conv_geometry(g, d)
    kh, kw = g[PJ_KH], g[PJ_KW]
    sy, sx, py, px = g[PJ_SY], g[PJ_SX], g[PJ_PY], g[PJ_PX]
    if n_ev == 0:
        return 0
    hw = hr_n * wr_n
    sc = np.empty(hw * cr_n, dtype=np.float32)
    for c in range(cr_n):
        for j in range(hw):
            sc[j * cr_n + c] = urow[u_lo + c * hw + j]
    syn = 0
    for k in range(n_ev):
        i = ev[s_lo + k]
        cs, y, x = i // (hs_n * ws_n), (i // ws_n) % hs_n, i % ws_n
        f = np.float32(1.0) if binary else np.float32(q[s_lo + i])
        for ky in range(kh):
            ty = _conv_coord(d, y, ky, sy, py, hr_n)
            if ty < 0:
                continue
            for kx in range(kw):
                tx = _conv_coord(d, x, kx, sx, px, wr_n)
                if tx < 0:
                    continue
                pix = ty * wr_n + tx
                syn += cr_n
                ss = sc[pix * cr_n:(pix + 1) * cr_n]
                kb = wt_lo + ((cs * kh + ky) * kw + kx) * cr_n
                ww = wt[kb:kb + cr_n]
                if binary:
                    for c in range(cr_n):
                        ss[c] += ww[c]
                else:
                    for c in range(cr_n):
                        ss[c] += f * ww[c]
    for c in range(cr_n):
        for j in range(hw):
            urow[u_lo + c * hw + j] = sc[j * cr_n + c]
    return syn


@jit
def _conv_strided(g, d, q, ev, s_lo, n_ev, binary, w, w_lo, urow, u_lo):
    """Conv delivery (direction d) in place in ``urow``, reading the kernel in its own layout
    (C_out, C_in, kh, kw): forwards a spike of input (ci, y, x) adds K[co, ci, ky, kx] to
    every output channel co at the pixel its tap reaches, backwards a message of output
    (co, y, x) adds K[co, ci, ky, kx] to every input channel ci.  Each sender touches a
    receiving unit at most once, so every unit receives its terms in sender order."""
    cs_n, hs_n, ws_n, cr_n, hr_n, wr_n = _conv_geometry(g, d)
    kh, kw, ci_n = g[PJ_KH], g[PJ_KW], g[PJ_CI]
    sy, sx, py, px = g[PJ_SY], g[PJ_SX], g[PJ_PY], g[PJ_PX]
    hw = hr_n * wr_n
    # K[co, ci, ky, kx] of receiving channel cr: sender channel cs's base plus cr strides
    w_step = ci_n * kh * kw if d == 0 else kh * kw
    tp = np.empty(kh * kw, dtype=np.int64)      # a sender's taps in range: receiving pixel
    tw = np.empty(kh * kw, dtype=np.int64)      # ... and kernel offset ky * kw + kx
    syn = 0
    for k in range(n_ev):
        i = ev[s_lo + k]
        cs, y, x = i // (hs_n * ws_n), (i // ws_n) % hs_n, i % ws_n
        f = np.float32(1.0) if binary else np.float32(q[s_lo + i])
        m = 0
        for ky in range(kh):
            ty = _conv_coord(d, y, ky, sy, py, hr_n)
            if ty < 0:
                continue
            for kx in range(kw):
                tx = _conv_coord(d, x, kx, sx, px, wr_n)
                if tx >= 0:
                    tp[m] = ty * wr_n + tx
                    tw[m] = ky * kw + kx
                    m += 1
        syn += m * cr_n
        w_cs = w_lo + (cs * kh * kw if d == 0 else cs * ci_n * kh * kw)
        for cr in range(cr_n):
            ub = u_lo + cr * hw
            wb = w_cs + cr * w_step
            if binary:
                for t in range(m):
                    urow[ub + tp[t]] += w[wb + tw[t]]
            else:
                for t in range(m):
                    urow[ub + tp[t]] += f * w[wb + tw[t]]
    return syn


@jit
def _pool(g, d, q, ev, s_lo, n_ev, binary, urow, u_lo):
    """Average pooling with weight float32(1 / (kh * kw)): forwards a message of input unit
    (c, iy, ix) reaches every pooled unit whose window holds it; backwards a pooled unit's
    message spreads over its window."""
    c_n, hi_n, wi_n, ho_n, wo_n = g[PJ_CI], g[PJ_HI], g[PJ_WI], g[PJ_HO], g[PJ_WO]
    kh, kw, sy, sx = g[PJ_KH], g[PJ_KW], g[PJ_SY], g[PJ_SX]
    wv = np.float32(1.0 / (kh * kw))
    syn = 0
    for k in range(n_ev):
        i = ev[s_lo + k]
        cw = wv if binary else np.float32(q[s_lo + i]) * wv
        if d == 0:
            ch = i // (hi_n * wi_n)
            iy = (i // wi_n) % hi_n
            ixx = i % wi_n
            # pooled rows oy with oy*sy <= iy < oy*sy + kh
            oy_lo = 0 if iy < kh else (iy - kh) // sy + 1
            ox_lo = 0 if ixx < kw else (ixx - kw) // sx + 1
            for oy in range(oy_lo, min(iy // sy, ho_n - 1) + 1):
                for ox in range(ox_lo, min(ixx // sx, wo_n - 1) + 1):
                    urow[u_lo + (ch * ho_n + oy) * wo_n + ox] += cw
                    syn += 1
        else:
            ch = i // (ho_n * wo_n)
            oy = (i // wo_n) % ho_n
            ox = i % wo_n
            for ky in range(kh):
                for kx in range(kw):
                    urow[u_lo + (ch * hi_n + oy * sy + ky) * wi_n + ox * sx + kx] += cw
                    syn += 1
    return syn


@jit
def deliver_projection(pj, p, d, q, ev, s_lo, n_ev, binary, wf, wb, ix, urow, u_lo):
    """Deliver the messages of one sender population through projection ``p`` into the
    float32 accumulator ``urow`` (the receiving population starts at ``u_lo``): ``d = 0``
    the pre population's messages into the post population with W, ``d = 1`` the post's
    into the pre with W^T.  ``q[s_lo + i]`` is sender i's message and
    ``ev[s_lo:s_lo + n_ev]`` lists the senders with non-zero messages in increasing order;
    every receiving unit gets its terms in that order (the dense matrix's arithmetic, exactly).
    Returns the synaptic events: the weights touched."""
    g = pj[p]
    kind = g[PJ_KIND]
    if kind == PK_DENSE:
        # contiguous rows of W (pre x post) forwards, of its copy W^T backwards
        if d == 0:
            deliver(q, ev, s_lo, n_ev, binary, wf, g[PJ_WF], g[PJ_NPOST], urow, u_lo)
            return n_ev * g[PJ_NPOST]
        deliver(q, ev, s_lo, n_ev, binary, wb, g[PJ_WB], g[PJ_NPRE], urow, u_lo)
        return n_ev * g[PJ_NPRE]
    if kind == PK_SPARSE:
        if d == 0:
            return _scatter_sparse(q, ev, s_lo, n_ev, binary, wf, g[PJ_WF], ix, g[PJ_IXF],
                                   g[PJ_NPRE], urow, u_lo)
        return _scatter_sparse(q, ev, s_lo, n_ev, binary, wb, g[PJ_WB], ix, g[PJ_IXB],
                               g[PJ_NPOST], urow, u_lo)
    if kind == PK_CONV:
        # channels-last (the two copies of the kernel in wb: (C_in, kh, kw, C_out), then
        # (C_out, kh, kw, C_in)) where the channel runs are long and the taps outnumber the
        # receiving units (the scratch copy costs two passes over them); otherwise in place
        # with strided channels.  Either way the same additions in the same order.
        n_k = g[PJ_CO] * g[PJ_CI] * g[PJ_KH] * g[PJ_KW]
        run = g[PJ_CO] if d == 0 else g[PJ_CI]
        n_recv = g[PJ_NPOST] if d == 0 else g[PJ_NPRE]
        if run >= 8 and n_ev * g[PJ_KH] * g[PJ_KW] * run >= n_recv:
            return _conv_channels_last(g, d, q, ev, s_lo, n_ev, binary, wb,
                                       g[PJ_WB] + d * n_k, urow, u_lo)
        return _conv_strided(g, d, q, ev, s_lo, n_ev, binary, wf, g[PJ_WF], urow, u_lo)
    if kind == PK_POOL:
        return _pool(g, d, q, ev, s_lo, n_ev, binary, urow, u_lo)
    # one-to-one: unit i to unit i with weight w_i, in either direction
    w_lo = g[PJ_WF]
    for k in range(n_ev):
        i = ev[s_lo + k]
        if binary:
            urow[u_lo + i] += wf[w_lo + i]
        else:
            urow[u_lo + i] += np.float32(q[s_lo + i]) * wf[w_lo + i]
    return n_ev


@jit
def update_spiking(l, lo, hi, t, beta, is_out, y_lo, lp, u, bias, y, s, v, a, q, ev):
    """Integrate-and-fire neurons [lo, hi) of population l of one sample at step t.

    Membrane ``v``: ``v = leak * v + u + b`` (plus the nudge ``2 beta (y - s)`` on an output
    population); a neuron at or above the threshold spikes (q = 1) and is reset by
    subtracting the threshold or to zero.  ``s`` is the firing rate so far,
    ``s(t) = s(t-1) + (q - s(t-1)) / t``; ``a`` receives the input current ``u + b``.
    Lists the spiking neurons in ``ev[lo:lo + count]`` and returns the count."""
    n = hi - lo
    saturate(l, lp, u, lo, hi)
    thr, leak = lp[l, LP_THR], lp[l, LP_LEAK]
    zero = lp[l, LP_RESET] == RESET_ZERO
    uu, ss, vv, aa, bb = u[lo:hi], s[lo:hi], v[lo:hi], a[lo:hi], bias[lo:hi]
    qq, ee = q[lo:hi], ev[lo:hi]
    for j in range(n):
        aa[j] = float(uu[j]) + bb[j]
        vv[j] = leak * vv[j] + float(uu[j]) + bb[j]
    if is_out:
        for j in range(n):
            vv[j] = vv[j] + 2.0 * beta * (y[y_lo + j] - ss[j])
    count = 0
    for j in range(n):
        if vv[j] >= thr:
            qq[j] = 1.0
            vv[j] = 0.0 if zero else vv[j] - thr
        else:
            qq[j] = 0.0
        ee[count] = j
        count += qq[j] != 0.0
    for j in range(n):
        ss[j] = ss[j] + (qq[j] - ss[j]) / t
    return count


@jit
def step_graph(t, beta, x, y, off, lp, pj, dl, dl_off, xoff, yoff, wf, wb, ix, bias, seed,
               s, v, a, phi, xm, xm2, v2, q, ev, nev, eps_s, th, ob, od, ol, nu, u,
               c_spk, c_syn, c_upd):
    """One synchronous step t of one sample of any network (docs/model.md section 3 on a
    graph), in place; the arrays are as in :func:`step_sample`, with ``c_syn[p, d]`` the
    synaptic events of projection p forwards (d = 0) and backwards (d = 1).

    1. every non-input population zeroes u and receives the messages of step t-1 through
       its deliveries ``dl[dl_off[r]:dl_off[r+1]]`` (forward ones in projection order,
       then backward ones); 2. paper neurons run decoder, step size and state update,
       IF/LIF neurons integrate and fire; 3. the other populations encode (an input
       population its clamped values ``x[xoff[r]:...]``)."""
    P = off.shape[0] - 1
    for r in range(P):
        if xoff[r] >= 0:
            continue
        lo, hi = off[r], off[r + 1]
        u[lo:hi] = np.float32(0.0)
        for k in range(dl_off[r], dl_off[r + 1]):
            p, d = dl[k, 0], dl[k, 1]
            src = pj[p, PJ_PRE] if d == 0 else pj[p, PJ_POST]
            c_syn[p, d] += deliver_projection(pj, p, d, q, ev, off[src], nev[src],
                                              lp[src, LP_ENC] != ENC_NONE, wf, wb, ix, u, lo)
    for r in range(P):
        if xoff[r] >= 0:
            continue
        lo, hi = off[r], off[r + 1]
        if lp[r, LP_MODEL] == MODEL_PAPER:
            if lp[r, LP_ANNK] == ANN_OSA:
                nu[r] = osa_nu(nu[r], lp[r, LP_ANNA])
            update_neurons(r, lo, hi, t, nu[r], beta, yoff[r] >= 0, lo - yoff[r], lp,
                           u, bias, y, s, v, a, eps_s, th, ob, od, ol, v2)
        else:
            k = update_spiking(r, lo, hi, t, beta, yoff[r] >= 0, yoff[r], lp, u, bias, y,
                               s, v, a, q, ev)
            nev[r] = k
            c_spk[r] += k
            c_upd[r, 1] += hi - lo
        c_upd[r, 0] += hi - lo
    for r in range(P):
        if lp[r, LP_MODEL] != MODEL_PAPER:
            continue
        lo, hi = off[r], off[r + 1]
        if xoff[r] >= 0:
            k = encode_neurons(r, lo, hi, t, lp, seed, x, xoff[r], xm, phi, q, ev, xm2)
        else:
            k = encode_neurons(r, lo, hi, t, lp, seed, s, lo, xm, phi, q, ev, xm2)
        nev[r] = k
        c_spk[r] += k
        c_upd[r, 1] += hi - lo


def _run_graph(nsteps, beta, x, y, off, lp, pj, dl, dl_off, xoff, yoff, wf, wb, ix, bias,
               seeds, s, v, a, phi, xm, xm2, v2, q, ev, nev, eps_s, th, ob, od, ol, clock, nu, u,
               c_spk, c_syn, c_upd, rec_every, rec_q, rec_s, rec_x):
    """:func:`_run` for any network: ``nsteps`` steps of :func:`step_graph` per sample,
    recording as :func:`_run` does."""
    B = s.shape[0]
    N = s.shape[1]
    for b in prange(B):
        nev_b, nu_b = nev[b].copy(), nu[b].copy()
        spk_b, syn_b, upd_b = c_spk[b].copy(), c_syn[b].copy(), c_upd[b].copy()
        t = clock[b]
        sb, qb = s[b], q[b]
        for k in range(nsteps):
            t += 1
            step_graph(t, beta, x[b], y[b], off, lp, pj, dl, dl_off, xoff, yoff, wf, wb, ix,
                       bias, seeds[b], sb, v[b], a[b], phi[b], xm[b], xm2[b], v2[b], qb, ev[b],
                       nev_b,
                       eps_s[b], th[b], ob[b], od[b], ol[b], nu_b, u[b], spk_b, syn_b, upd_b)
            if (k + 1) % rec_every == 0:
                r = (k + 1) // rec_every - 1
                if r < rec_q.shape[0]:
                    for j in range(N):
                        rec_q[r, b, j] = qb[j] != 0.0
                if r < rec_s.shape[0]:
                    for j in range(N):
                        rec_s[r, b, j] = sb[j]
                if r < rec_x.shape[0]:
                    for j in range(N):
                        rec_x[r, b, 0, j] = v[b, j]
                        rec_x[r, b, 1, j] = eps_s[b, j]
                        rec_x[r, b, 2, j] = phi[b, j]
        clock[b] = t
        nev[b], nu[b] = nev_b, nu_b
        c_spk[b], c_syn[b], c_upd[b] = spk_b, syn_b, upd_b


run_graph = njit(**JIT_OPTIONS)(_run_graph)
run_graph_parallel = njit(parallel=True, **JIT_OPTIONS)(_renamed(_run_graph, "_run_graph_parallel"))


# --------------------------------------------------------------------------- bus engine on graphs

@jit
def deliver_range(pj, p, d, idx, vals, n_ev, binary, wf, wb, ix, urow, u_lo, c_lo, c_hi):
    """:func:`deliver_projection` into the units ``[c_lo, c_hi)`` of the receiving
    population only (one circuit cluster of the bus engine; the population starts at
    ``urow[u_lo]``), with the senders as a packed list: ``idx[k]`` is sender k's index
    within its population, ``vals[k]`` its message (read only when not ``binary``).

    Every unit in range receives exactly the terms :func:`deliver_projection` gives it, in
    list order -- with the list in increasing order, the same float32 additions in the same
    order, so the same bits.  Returns the synaptic events whose target is in range (summed
    over the clusters of a population: deliver_projection's count)."""
    g = pj[p]
    kind = g[PJ_KIND]
    n_cols = c_hi - c_lo
    if kind == PK_DENSE:
        if d == 0:
            deliver_cols(idx, vals, n_ev, binary, wf, g[PJ_WF], g[PJ_NPOST], c_lo, n_cols,
                         urow, u_lo + c_lo)
        else:
            deliver_cols(idx, vals, n_ev, binary, wb, g[PJ_WB], g[PJ_NPRE], c_lo, n_cols,
                         urow, u_lo + c_lo)
        return n_ev * n_cols
    syn = 0
    if kind == PK_SPARSE:
        if d == 0:
            w, w_lo, ip_lo, n_rows = wf, g[PJ_WF], g[PJ_IXF], g[PJ_NPRE]
        else:
            w, w_lo, ip_lo, n_rows = wb, g[PJ_WB], g[PJ_IXB], g[PJ_NPOST]
        ind_lo = ip_lo + n_rows + 1
        for k in range(n_ev):
            i = idx[k]
            c = np.float32(1.0) if binary else np.float32(vals[k])
            for e in range(ix[ip_lo + i], ix[ip_lo + i + 1]):
                j = ix[ind_lo + e]
                if j < c_lo or j >= c_hi:
                    continue
                syn += 1
                if binary:
                    urow[u_lo + j] += w[w_lo + e]
                else:
                    urow[u_lo + j] += c * w[w_lo + e]
        return syn
    if kind == PK_O2O:
        w_lo = g[PJ_WF]
        for k in range(n_ev):
            i = idx[k]
            if i < c_lo or i >= c_hi:
                continue
            syn += 1
            if binary:
                urow[u_lo + i] += wf[w_lo + i]
            else:
                urow[u_lo + i] += np.float32(vals[k]) * wf[w_lo + i]
        return syn
    ci_n, hi_n, wi_n, co_n, ho_n, wo_n = g[PJ_CI], g[PJ_HI], g[PJ_WI], g[PJ_CO], g[PJ_HO], g[PJ_WO]
    kh, kw, sy, sx, py, px = g[PJ_KH], g[PJ_KW], g[PJ_SY], g[PJ_SX], g[PJ_PY], g[PJ_PX]
    w_lo = g[PJ_WF]
    if kind == PK_POOL:
        wv = np.float32(1.0 / (kh * kw))
        for k in range(n_ev):
            i = idx[k]
            cw = wv if binary else np.float32(vals[k]) * wv
            if d == 0:
                ch = i // (hi_n * wi_n)
                iy = (i // wi_n) % hi_n
                ixx = i % wi_n
                oy_lo = 0 if iy < kh else (iy - kh) // sy + 1
                ox_lo = 0 if ixx < kw else (ixx - kw) // sx + 1
                for oy in range(oy_lo, min(iy // sy, ho_n - 1) + 1):
                    for ox in range(ox_lo, min(ixx // sx, wo_n - 1) + 1):
                        j = (ch * ho_n + oy) * wo_n + ox
                        if j >= c_lo and j < c_hi:
                            urow[u_lo + j] += cw
                            syn += 1
            else:
                ch = i // (ho_n * wo_n)
                oy = (i // wo_n) % ho_n
                ox = i % wo_n
                for ky in range(kh):
                    for kx in range(kw):
                        j = (ch * hi_n + oy * sy + ky) * wi_n + ox * sx + kx
                        if j >= c_lo and j < c_hi:
                            urow[u_lo + j] += cw
                            syn += 1
        return syn
    # conv2d: forwards the kernel slice around an input unit, backwards its transpose
    for k in range(n_ev):
        i = idx[k]
        c = np.float32(1.0) if binary else np.float32(vals[k])
        if d == 0:
            ci = i // (hi_n * wi_n)
            iy = (i // wi_n) % hi_n
            ixx = i % wi_n
            for ky in range(kh):
                ny = iy + py - ky
                if ny < 0 or ny % sy != 0 or ny // sy >= ho_n:
                    continue
                oy = ny // sy
                for kx in range(kw):
                    nx = ixx + px - kx
                    if nx < 0 or nx % sx != 0 or nx // sx >= wo_n:
                        continue
                    ox = nx // sx
                    for co in range(co_n):
                        j = (co * ho_n + oy) * wo_n + ox
                        if j < c_lo or j >= c_hi:
                            continue
                        syn += 1
                        wv = wf[w_lo + ((co * ci_n + ci) * kh + ky) * kw + kx]
                        if binary:
                            urow[u_lo + j] += wv
                        else:
                            urow[u_lo + j] += c * wv
        else:
            co = i // (ho_n * wo_n)
            oy = (i // wo_n) % ho_n
            ox = i % wo_n
            for ci in range(ci_n):
                for ky in range(kh):
                    iy = oy * sy - py + ky
                    if iy < 0 or iy >= hi_n:
                        continue
                    for kx in range(kw):
                        ixx = ox * sx - px + kx
                        if ixx < 0 or ixx >= wi_n:
                            continue
                        j = (ci * hi_n + iy) * wi_n + ixx
                        if j < c_lo or j >= c_hi:
                            continue
                        syn += 1
                        wv = wf[w_lo + ((co * ci_n + ci) * kh + ky) * kw + kx]
                        if binary:
                            urow[u_lo + j] += wv
                        else:
                            urow[u_lo + j] += c * wv
    return syn


@jit
def graph_tick(r, lo, hi, t, nu, beta, x_lo, y_lo, u_lo, lp, pj, dp, dd, bins, seg, vseg,
               idx, vals, syn, wf, wb, ix, seed, bias, y, x,
               s, v, a, eps_s, th, ob, od, ol, u, phi, xm, q, ev, xm2, v2):
    """Tick t of one circuit cluster of a graph network: neurons [lo, hi) of population r
    (which starts at column ``u_lo``) of one sample (1-D rows).

    An input population (``x_lo >= 0``: the cluster's first column in ``x``) only encodes its
    clamped values.  Any other zeroes its columns of u and takes its deliveries in order:
    delivery j is projection ``dp[j]`` in direction ``dd[j]`` with the senders
    ``idx[seg[j]:seg[j+1]]`` and, unless ``bins[j]``, their messages
    ``vals[vseg[j]:vseg[j+1]]`` (:func:`deliver_range`; its synaptic events go to
    ``syn[j]``).  Then the paper's neurons update (OSA ``nu`` already advanced) and encode,
    IF/LIF neurons integrate and fire (:func:`update_spiking`), as :func:`step_graph` does.
    ``y_lo`` is the population's first column in ``y`` (-1: not an output).  Returns the
    number of non-zero messages, listed in ``ev[lo:lo + count]`` (relative to ``lo``).

    The work is :func:`cluster_tick`'s, which takes the same arguments grouped in tuples
    (fewer than 30 arguments, so that the bus engine's event loop can have numba inline it:
    passing some 200 machine words per call costs more than a one-neuron tick)."""
    return cluster_tick((r, lo, hi, x_lo, y_lo, u_lo), t, nu, beta, (lp, pj, wf, wb, ix, bias),
                        (dp, dd, bins, seg, vseg, syn), idx, vals, seed,
                        (y, x, s, v, a, eps_s, th, ob, od, ol, u, phi, xm, q, ev, xm2, v2))


@jit
def cluster_tick(cl, t, nu, beta, net, dl, idx, vals, seed, rows):
    """:func:`graph_tick` with its arguments grouped: ``cl`` = (r, lo, hi, x_lo, y_lo, u_lo),
    ``net`` = (lp, pj, wf, wb, ix, bias), ``dl`` = (dp, dd, bins, seg, vseg, syn), ``rows`` =
    (y, x, s, v, a, eps_s, th, ob, od, ol, u, phi, xm, q, ev, xm2, v2)."""
    r, lo, hi, x_lo, y_lo, u_lo = cl
    lp, pj, wf, wb, ix, bias = net
    dp, dd, bins, seg, vseg, syn = dl
    y, x, s, v, a, eps_s, th, ob, od, ol, u, phi, xm, q, ev, xm2, v2 = rows
    if x_lo >= 0:
        return encode_neurons(r, lo, hi, t, lp, seed, x, x_lo, xm, phi, q, ev, xm2)
    for j in range(lo, hi):
        u[j] = np.float32(0.0)
    for j in range(dp.shape[0]):
        a0, a1 = seg[j], seg[j + 1]
        syn[j] = deliver_range(pj, dp[j], dd[j], idx[a0:a1], vals[vseg[j]:vseg[j + 1]],
                               a1 - a0, bins[j], wf, wb, ix, u, u_lo, lo - u_lo, hi - u_lo)
    is_out = y_lo >= 0
    if lp[r, LP_MODEL] == MODEL_PAPER:
        update_neurons(r, lo, hi, t, nu, beta, is_out, u_lo - y_lo, lp, u, bias, y,
                       s, v, a, eps_s, th, ob, od, ol, v2)
        return encode_neurons(r, lo, hi, t, lp, seed, s, lo, xm, phi, q, ev, xm2)
    return update_spiking(r, lo, hi, t, beta, is_out, y_lo + lo - u_lo, lp, u, bias, y,
                          s, v, a, q, ev)
