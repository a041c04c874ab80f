"""When things happen on the bus engine's chips: clock jitter and the event calendar.

**Jitter**, in numba, draw for draw the simpy engine's.

The simpy engine (:mod:`neuroemu.engines.asyncsimpy`) draws cluster c's jitter for ticks
1024 m + 1 ... 1024 (m + 1) as ``numpy.random.default_rng([seed, c, m]).integers(-J, J + 1,
1024)``.  Building that generator costs tens of microseconds in Python, which one circuit
per neuron cannot afford, so this module computes the same numbers in numba: numpy's
SeedSequence hash mixing (pool of 4 words), PCG64 seeding and its 128-bit LCG with the
XSL-RR output, and the buffered 32-bit Lemire draw of ``integers``
(tests/test_async_clocks.py compares them with numpy's own for many seeds and ranges).

**The event calendar** orders events as simpy does, by (time, sequence number): a ring of
one bucket per quantum over a horizon longer than any clock period, each bucket a FIFO list
(events of one time join it in sequence order), and a binary heap of rows ``[time, seq,
kind, arg]`` for events beyond the horizon, which join their bucket when time comes near.
"""

import numpy as np
from numba import njit

from .kernels import JIT_OPTIONS

jit_nr = njit(_nrt=False, **JIT_OPTIONS)        # never allocates: no reference counting

# a cluster's tick state (rows of ``ck``): tick count, clock shift, time of the last tick,
# the tick whose jitter was drawn last
C_TICK, C_SHIFT, C_TPREV, C_JK = range(4)
C_FIELDS = 4

# event kinds
WAKE, GRANT, FINISH, RELEASE, RESUME, DONE = 0, 1, 2, 3, 4, 5
# a chip's scalars (``sc``)
S_NOW, S_SEQ, S_NWAIT, S_HEAP, S_NB, S_TOP, S_FIN, S_QN, S_QFREE, S_QTOP = range(10)
S_FIELDS = 10

_U = np.uint64
_M32 = _U(0xFFFFFFFF)
_INIT_A, _MULT_A = _U(0x43B0D7E5), _U(0x931E8875)
_INIT_B, _MULT_B = _U(0x8B51F9DD), _U(0x58F38DED)
_MIX_L, _MIX_R = _U(0xCA01F9DD), _U(0x4973F715)
_PCG_H, _PCG_L = _U(2549297995355413924), _U(4865540595714422341)
_Z, _ONE, _S1, _S16, _S32, _S58, _S63, _S64 = (_U(0), _U(1), _U(1), _U(16), _U(32), _U(58),
                                               _U(63), _U(64))
JITTER_BLOCK = 1024
MAX_JITTER = (1 << 31) - 1


@jit_nr
def _hashmix(value, hc):
    value = (value ^ hc) & _M32
    hc = (hc * _MULT_A) & _M32
    value = (value * hc) & _M32
    return value ^ (value >> _S16), hc


@jit_nr
def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> _S16)


@jit_nr
def _mulhi(a, b):
    a0, a1, b0, b1 = a & _M32, a >> _S32, b & _M32, b >> _S32
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    return a1 * b1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)


@jit_nr
def _pcg_step(sh, sl, ih, il):
    """state * multiplier + increment, modulo 2^128 (high, low words)."""
    lo = sl * _PCG_L
    hi = _mulhi(sl, _PCG_L) + sh * _PCG_L + sl * _PCG_H
    nlo = lo + il
    return hi + ih + (_ONE if nlo < lo else _Z), nlo


@jit_nr
def seed_jitter(seed, c, blk, g, w):
    """g[:6] = PCG64 state (high, low), increment (high, low) and the 32-bit buffer
    (has, value) of numpy's ``default_rng([seed, c, blk])`` (w: 12 words of scratch)."""
    nw = 0
    s = _U(seed)
    if s == _Z:
        w[0] = _Z
        nw = 1
    while s > _Z:                         # the seed as little-endian 32-bit words
        w[nw] = s & _M32
        s = s >> _S32
        nw += 1
    w[nw], w[nw + 1] = _U(c), _U(blk)
    nw += 2
    hc = _INIT_A                          # SeedSequence: hash the entropy into a pool of 4
    for i in range(4):
        w[8 + i], hc = _hashmix(w[i] if i < nw else _Z, hc)
    for i_src in range(4):
        for i_dst in range(4):
            if i_src != i_dst:
                h, hc = _hashmix(w[8 + i_src], hc)
                w[8 + i_dst] = _mix(w[8 + i_dst], h)
    for i_src in range(4, nw):
        for i_dst in range(4):
            h, hc = _hashmix(w[i_src], hc)
            w[8 + i_dst] = _mix(w[8 + i_dst], h)
    hc = _INIT_B                          # generate_state(4, uint64)
    for i in range(8):
        d = (w[8 + i % 4] ^ hc) & _M32
        hc = (hc * _MULT_B) & _M32
        d = (d * hc) & _M32
        w[i] = d ^ (d >> _S16)
    s0, s1 = w[0] | (w[1] << _S32), w[2] | (w[3] << _S32)
    i0, i1 = w[4] | (w[5] << _S32), w[6] | (w[7] << _S32)
    ih = (i0 << _S1) | (i1 >> _S63)       # PCG64 seeding: inc = seq << 1 | 1, step, add, step
    il = (i1 << _S1) | _ONE
    sh, sl = _pcg_step(_Z, _Z, ih, il)
    nl = sl + s1
    sh = sh + s0 + (_ONE if nl < sl else _Z)
    sh, sl = _pcg_step(sh, nl, ih, il)
    g[0], g[1], g[2], g[3], g[4], g[5] = sh, sl, ih, il, _Z, _Z


@jit_nr
def _next32(g):
    if g[4] != _Z:
        g[4] = _Z
        return g[5]
    sh, sl = _pcg_step(g[0], g[1], g[2], g[3])
    g[0], g[1] = sh, sl
    v = sh ^ sl
    rot = sh >> _S58
    v = (v >> rot) | (v << ((_S64 - rot) & _S63))
    g[4], g[5] = _ONE, v >> _S32
    return v & _M32


@jit_nr
def bounded_draw(g, rng):
    """A uniform integer in [0, rng] (rng < 2^32 - 1): numpy's buffered Lemire draw."""
    excl = _U(rng) + _ONE
    m = _next32(g) * excl
    left = m & _M32
    if left < excl:
        thr = (_M32 - _U(rng)) % excl
        while left < thr:
            m = _next32(g) * excl
            left = m & _M32
    return np.int64(m >> _S32)


@jit_nr
def jitter(seed, c, k, J, jg, ck, w):
    """The jitter of cluster c's tick k, in [-J, J]: draw (k-1) % 1024 of block (k-1) // 1024.
    Consecutive ticks continue the stream kept in jg[c]; any other tick reseeds and skips.
    (ck[c, C_JK]: the tick drawn last; w: 12 words of scratch.)"""
    if J == 0:
        return 0
    g = jg[c]
    i = (k - 1) % JITTER_BLOCK
    if ck[c, C_JK] != k - 1 or i == 0:
        seed_jitter(seed, c, (k - 1) // JITTER_BLOCK, g, w)
        for _ in range(i):
            bounded_draw(g, 2 * J)
    ck[c, C_JK] = k
    return bounded_draw(g, 2 * J) - J


# --------------------------------------------------------------------------- event queue

@jit_nr
def _push(h, n, t, seq, kind, arg):
    i = n
    while i > 0:
        p = (i - 1) >> 1
        if h[p, 0] < t or (h[p, 0] == t and h[p, 1] < seq):
            break
        h[i, 0], h[i, 1], h[i, 2], h[i, 3] = h[p, 0], h[p, 1], h[p, 2], h[p, 3]
        i = p
    h[i, 0], h[i, 1], h[i, 2], h[i, 3] = t, seq, kind, arg
    return n + 1


@jit_nr
def _pop(h, n):
    """Remove the first event (read h[0] before); returns the new size."""
    n -= 1
    t, seq, kind, arg = h[n, 0], h[n, 1], h[n, 2], h[n, 3]
    i = 0
    while True:
        l = 2 * i + 1
        if l >= n:
            break
        m = l
        r = l + 1
        if r < n and (h[r, 0] < h[l, 0] or (h[r, 0] == h[l, 0] and h[r, 1] < h[l, 1])):
            m = r
        if h[m, 0] > t or (h[m, 0] == t and h[m, 1] > seq):
            break
        h[i, 0], h[i, 1], h[i, 2], h[i, 3] = h[m, 0], h[m, 1], h[m, 2], h[m, 3]
        i = m
    h[i, 0], h[i, 1], h[i, 2], h[i, 3] = t, seq, kind, arg
    return n


@jit_nr
def _qappend(nq, qb, sc, t, kind, arg):
    """Append an event (time, kind, arg) at the tail of its time's calendar bucket, in a node
    from the free list (or a new one)."""
    i = sc[S_QFREE]
    if i >= 0:
        sc[S_QFREE] = nq[i, 3]
    else:
        i = sc[S_QTOP]
        sc[S_QTOP] += 1
    nq[i, 0], nq[i, 1], nq[i, 2], nq[i, 3] = t, kind, arg, -1
    bk = t & (qb.shape[0] - 1)
    if qb[bk, 1] >= 0:
        nq[qb[bk, 1], 3] = i
    else:
        qb[bk, 0] = i
    qb[bk, 1] = i
    sc[S_QN] += 1


@jit_nr
def _qpush(h, hn, nq, qb, sc, now, t, seq, kind, arg):
    """Schedule an event: within the calendar's horizon (t - now < its buckets) at the tail
    of its time's bucket (a bucket's events are then in sequence order: the simpy order),
    else in the overflow heap.  Returns the heap size."""
    if t - now >= qb.shape[0]:
        return _push(h, hn, t, seq, kind, arg)
    _qappend(nq, qb, sc, t, kind, arg)
    return hn


@jit_nr
def _qpop(h, hn, nq, qb, sc, now):
    """The next event (time, kind, arg) and the heap size: the first of the earliest
    non-empty bucket; when time moves on, overflow events that come within the horizon
    join their buckets first (their buckets are still empty then, and they were scheduled
    before anything that will join them)."""
    nb_ = qb.shape[0]
    mask = nb_ - 1
    if sc[S_QN] == 0:
        t = h[0, 0]
    else:
        t = now
        while qb[t & mask, 0] < 0:
            t += 1
    while hn > 0 and h[0, 0] - t < nb_:
        et, ek, ea = h[0, 0], h[0, 2], h[0, 3]
        hn = _pop(h, hn)
        _qappend(nq, qb, sc, et, ek, ea)
    bk = t & mask
    i = qb[bk, 0]
    kind, arg, nxt = nq[i, 1], nq[i, 2], nq[i, 3]
    qb[bk, 0] = nxt
    if nxt < 0:
        qb[bk, 1] = -1
    nq[i, 3] = sc[S_QFREE]
    sc[S_QFREE] = i
    sc[S_QN] -= 1
    return t, kind, arg, hn


# --------------------------------------------------------------------------- sorting a tick's packets

_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_BIT = np.array([0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55,
                          59, 36, 53, 51, 43, 22, 45, 39, 33, 30, 24, 18, 12, 5, 63, 47, 56,
                          27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15,
                          34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6], dtype=np.int64)
_ONE64, _S58 = np.uint64(1), np.uint64(58)


@jit_nr
def _sort(tk, a, b, lo_key, hi_key, bits, smap):
    """Sort rows tk[a:b] (key, batch) by key; keys are distinct and lie in [lo_key, hi_key].
    Few rows: insertion sort.  Keys spanning at most 64 x len(bits): a bitmap of the keys
    (one pass to set, one over the words, lowest bits first), which costs a few operations
    per row -- what a one-neuron receiver needs for the ~100 packets of each of its ticks.
    Otherwise heapsort."""
    n = b - a
    if n <= 16:
        for i in range(a + 1, b):
            k0, v0 = tk[i, 0], tk[i, 1]
            j = i - 1
            while j >= a and tk[j, 0] > k0:
                tk[j + 1, 0], tk[j + 1, 1] = tk[j, 0], tk[j, 1]
                j -= 1
            tk[j + 1, 0], tk[j + 1, 1] = k0, v0
        return
    span = hi_key - lo_key + 1
    if span <= 64 * bits.shape[0]:
        nw = (span + 63) >> 6
        for w in range(nw):
            bits[w] = 0
        for i in range(a, b):
            off = tk[i, 0] - lo_key
            bits[off >> 6] |= _ONE64 << np.uint64(off & 63)
            smap[off] = tk[i, 1]
        i = a
        for w in range(nw):
            word = bits[w]
            while word != 0:
                low = word & (~word + _ONE64)
                off = (w << 6) + _DEBRUIJN_BIT[(low * _DEBRUIJN) >> _S58]
                tk[i, 0], tk[i, 1] = lo_key + off, smap[off]
                i += 1
                word ^= low
        return
    for start in range(n // 2 - 1, -1, -1):
        _sift(tk, a, start, n)
    for end in range(n - 1, 0, -1):
        tk[a, 0], tk[a + end, 0] = tk[a + end, 0], tk[a, 0]
        tk[a, 1], tk[a + end, 1] = tk[a + end, 1], tk[a, 1]
        _sift(tk, a, 0, end)


@jit_nr
def _sift(tk, a, i, n):
    k0, v0 = tk[a + i, 0], tk[a + i, 1]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and tk[a + c + 1, 0] > tk[a + c, 0]:
            c += 1
        if tk[a + c, 0] <= k0:
            break
        tk[a + i, 0], tk[a + i, 1] = tk[a + c, 0], tk[a + c, 1]
        i = c
    tk[a + i, 0], tk[a + i, 1] = k0, v0
