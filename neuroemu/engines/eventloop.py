"""The bus engine's event loop: one sample's chip, in numba, from one phase barrier to the next.

This is the discrete-event simulation :mod:`neuroemu.engines.asyncsimpy` writes with simpy
(the model: its processes, events and resources are the documentation of what happens),
done on arrays so that its cost is per event -- a circuit tick, a packet batch -- and not
per Python object.  It reproduces the simpy model exactly, including the order in which
simpy processes events that fall on the same quantum:

* the event queue is simpy's: ordered by (time, sequence number), the number handed out
  when an event is scheduled (:mod:`.eventtime`: a calendar of one bucket per quantum,
  and a heap beyond its horizon);
* a clock process per group of clusters sharing a clock (every cluster alone unless all
  clocks are the same) waits for its tick time (``WAKE``), ticks its clusters in order and
  schedules its next wake; a process that has done its ticks waits for the phase's resume
  event, whose processing (``RESUME``) restarts the waiting processes in the order they
  began to wait; the last to finish schedules ``DONE``, which ends the phase;
* a channel is a ``simpy.Resource``: a batch's request joins the port's FIFO queue and is
  granted while fewer than ``channels`` batches hold it (``GRANT``, counted then); it
  holds the channel for its serialization time (``FINISH``: released, the batch arrives
  ``latency x hops`` later at each receiver); the release event (``RELEASE``) grants the
  next request.

Packets are not copied to receivers.  A batch is logged once, at release, in its sending
population's log (a row: batch, release time, sort key, send tick, messages, payload
offset, sender); a receiving cluster keeps a cursor per source population and at its tick
T takes every logged batch whose arrival at it lies in [previous tick, T) -- exactly the
packets that arrived strictly before T and were not taken before -- ordered by (send tick,
sender cluster), which is the simpy engine's inbox sort.  The arithmetic is the shared
kernels' (:func:`~neuroemu.engines.kernels.cluster_tick`, what ``graph_tick`` calls: it
delivers with ``deliver_range``/``deliver_cols``, updates with ``update_neurons`` or
``update_spiking`` and encodes with ``encode_neurons``), compiled from the same source to
be inlined here and without reference counting: passing a tick's ~1000 machine words of
array arguments from call to call, and numba's atomic reference counts on them, cost more
than a one-neuron tick's arithmetic.  Chains run through the graph tick too (its ``dl``
order -- from below, then from above -- is the chain's, bit for bit).

:func:`advance` holds no Python object and allocates nothing: it returns when a store is
too small for the next event, and the session grows the store and calls it again.
"""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import numpy as np
from numba import njit
from numba.core.dispatcher import Dispatcher

from . import kernels as K
from .eventtime import (C_FIELDS, C_JK, C_SHIFT, C_TICK, C_TPREV, DONE, FINISH, GRANT,  # noqa: F401
                        RELEASE, RESUME, S_FIELDS, S_FIN, S_HEAP, S_NB, S_NOW, S_NWAIT,
                        S_QFREE, S_QN, S_QTOP, S_SEQ, S_TOP, WAKE, _qpop, _qpush, _sort, jitter)

_OPTS = dict(K.JIT_OPTIONS)
jit = njit(**_OPTS)                       # may allocate (reference counted)
jit_nr = njit(_nrt=False, **_OPTS)        # never allocates: no reference counting
inline_nr = njit(_nrt=False, inline="always", **_OPTS)   # ... and is inlined where called


def _inlined_kernels():
    """Copies of the kernels compiled to be inlined where they are called (numba inlines
    calls of fewer than 30 arguments), without reference counting, calling each other:
    the same code objects, renamed so that numba's on-disk cache keeps them apart from the
    originals (and cached against kernels.py, their file).  A call passes every array as
    some 7 machine words and numba counts references to them atomically, which costs a
    one-neuron tick more than its arithmetic."""
    env = dict(vars(K))
    out = {}
    for name, obj in vars(K).items():
        if isinstance(obj, Dispatcher) and not obj.targetoptions.get("parallel"):
            fn = obj.py_func
            code = fn.__code__.replace(co_name=fn.__name__ + "_nr",
                                       co_qualname=fn.__name__ + "_nr")
            copy = types.FunctionType(code, env, code.co_name, fn.__defaults__, fn.__closure__)
            out[name] = (inline_nr if code.co_argcount < 30 else jit_nr)(copy)
    env.update(out)                       # a copy's calls resolve to copies at compile time
    return out


_cluster_tick = _inlined_kernels()["cluster_tick"]

# log rows (``lg[p, i]``): batch, release time, sort key (send tick x clusters + sender's
# rank), send tick, messages, payload offset, sender cluster
L_B, L_REL, L_KEY, L_K, L_N, L_OFF, L_SRC = range(7)
L_FIELDS = 7
# batch fields (rows of ``bt``)
B_SRC, B_K, B_T, B_OFF, B_N, B_NPK, B_SER, B_NEXT, B_REL = range(9)
B_FIELDS = 9

# --------------------------------------------------------------------------- a tick

@inline_nr
def _gather(c, k, T, tprev, lat, mesh, s_lo, s_hi, ps_pop, hmin, cur, lg, lg_n,
            cl_x, cl_y, tk, slot, cnt, bits, smap):
    """The batches cluster c takes at its tick k (time T): per source population (slot j),
    those logged whose arrival at c lies in [tprev, T), as rows (key, log row) of tk sorted
    by key = send tick x clusters + sender's rank (the simpy inbox order); slot[j] = their
    range in tk and the population.  Advances c's cursors; cnt[:3] += received, late, early
    messages."""
    m = 0
    rcv = late = early = 0
    for j in range(s_hi - s_lo):
        p = ps_pop[s_lo + j]
        start = m
        pos, n, first = cur[c, j], lg_n[p], -1
        stop = T - lat * hmin[c, j]           # logged at or after: arrives at T or later
        last, ordered, lo_key = -1, True, 1 << 62
        while pos < n:
            row = lg[p, pos]
            rel = row[L_REL]
            if rel >= stop:
                break
            if mesh:
                src = row[L_SRC]
                arr = rel + lat * (abs(cl_x[src] - cl_x[c]) + abs(cl_y[src] - cl_y[c]))
            else:
                arr = rel + lat
            if arr < T:
                if arr >= tprev:
                    key, ks = row[L_KEY], row[L_K]
                    tk[m, 0], tk[m, 1] = key, pos
                    m += 1
                    ordered = ordered & (key > last)      # (branch-free bookkeeping:
                    lo_key = min(lo_key, key)              # arrival order is random)
                    last = max(last, key)
                    msg = row[L_N]
                    rcv += msg
                    late += msg * (k > ks + 1)
                    early += msg * (k <= ks)
            elif first < 0:
                first = pos
            pos += 1
        cur[c, j] = first if first >= 0 else pos
        if not ordered:
            _sort(tk, start, m, lo_key, last, bits, smap)
        slot[j, 0], slot[j, 1], slot[j, 2] = start, m, p
    cnt[0] += rcv
    cnt[1] += late
    cnt[2] += early
    return m


@inline_nr
def _pack(d_lo, d_hi, pd_slot, pd_bin, tk, slot, lg, pl_i, pl_v, ms_i, ms_v, seg, vseg):
    """Each delivery's senders (and messages of real-valued senders), concatenated in
    delivery order: what graph_tick reads (seg/vseg: the deliveries' ranges)."""
    mi = mv = 0
    seg[0] = vseg[0] = 0
    for j in range(d_hi - d_lo):
        js = pd_slot[d_lo + j]
        binary = pd_bin[d_lo + j]
        p = slot[js, 2]
        for t in range(slot[js, 0], slot[js, 1]):
            pos = tk[t, 1]
            off, n = lg[p, pos, L_OFF], lg[p, pos, L_N]
            if n == 1:                  # (a copy loop of one element costs LLVM's checks)
                ms_i[mi] = pl_i[off]
                if not binary:
                    ms_v[mv] = pl_v[off]
            else:
                for i in range(n):
                    ms_i[mi + i] = pl_i[off + i]
                if not binary:
                    for i in range(n):
                        ms_v[mv + i] = pl_v[off + i]
            mi += n
            if not binary:
                mv += n
        seg[j + 1] = mi
        vseg[j + 1] = mv
    return mi


@inline_nr
def _log(lg, lg_n, p, bb, rel, bt, R, rank):
    """Log batch bb of population p (R clusters), released at time rel."""
    row = lg[p, lg_n[p]]
    k = bt[bb, B_K]
    row[L_B], row[L_REL], row[L_KEY], row[L_K] = bb, rel, k * R + rank, k
    row[L_N], row[L_OFF], row[L_SRC] = bt[bb, B_N], bt[bb, B_OFF], bt[bb, B_SRC]
    lg_n[p] += 1


@jit_nr
def _record(b, c, k, T, lo, hi, t0, every, rq, rs, rx, rt, q, s, v, eps, phi):
    kk = k - t0
    if kk % every != 0:
        return
    r = kk // every - 1
    if r < rq.shape[0]:
        for j in range(lo, hi):
            rq[r, b, j] = q[j] != 0.0
        rt[r, b, c] = T
    if r < rs.shape[0]:
        for j in range(lo, hi):
            rs[r, b, j] = s[j]
    if r < rx.shape[0]:
        for j in range(lo, hi):
            rx[r, b, 0, j] = v[j]
            rx[r, b, 1, j] = eps[j]
            rx[r, b, 2, j] = phi[j]


@inline_nr
def _trigger(port, now, seq, h, hn, nq, qb, sc, pt, bt, channels):
    """simpy's Resource._trigger_put: grant the head of the port's queue if a channel is
    free.  Returns (heap size, next sequence number)."""
    head = pt[port, 1]
    if head >= 0 and pt[port, 0] < channels:
        nxt = bt[head, B_NEXT]
        pt[port, 1] = nxt
        if nxt < 0:
            pt[port, 2] = -1
        pt[port, 0] += 1
        hn = _qpush(h, hn, nq, qb, sc, now, now, seq, GRANT, head)
        seq += 1
    return hn, seq


# columns of a chip's per-population counters (``cpop``) and scalars (``csc``)
P_SPK, P_UPD, P_ENC, P_PK, P_RCV, P_LATE, P_EARLY = range(7)
P_FIELDS = 7
X_HOPS, X_QDELAY, X_BUSY = range(3)


@inline_nr
def _tick(c, k, T, now, seq, hn, nb, top, run, hwi, L, W, R, chip, store, scratch, ctr, rec):
    """Tick k of cluster c at time T (= now): take what arrived, integrate, update, encode
    (the shared cluster_tick), record, and send the messages as one batch.  Returns the heap
    size, next sequence number, batch count and payload top."""
    (cl_pop, cl_lo, cl_hi, cl_rank, cl_port, cl_x, cl_y, cl_pps, cl_hps, cl_dest,
     p_ulo, p_xoff, p_yoff, p_osa, p_nubar, p_bin, p_nclu,
     pd_off, pd_p, pd_d, pd_bin, pd_slot, ps_off, ps_pop, hmin) = L
    b, beta, seed, t0, every, recording, bw = run
    ck, cnu, cur, pt, chip_sc = chip
    h, nq, qb, bt, pl_i, pl_v, lg, lg_n, tk, ms_i, ms_v = store
    slot, seg, vseg, syn, cnt, bits, smap = scratch
    cpop, csyn, csc = ctr
    y, x, s, v, a, eps, q, ev, phi = R[1], R[0], R[2], R[3], R[4], R[5], R[13], R[14], R[11]
    quanta, lat, channels, mesh, unlimited = hwi[0], hwi[1], hwi[2], hwi[3], hwi[4]
    r, lo, hi = cl_pop[c], cl_lo[c], cl_hi[c]
    u_lo = p_ulo[r]
    d_lo, d_hi = pd_off[r], pd_off[r + 1]
    nu = 0.0
    x_lo = -1
    if p_xoff[r] >= 0:
        x_lo = p_xoff[r] + lo - u_lo
    else:
        cnt[0] = cnt[1] = cnt[2] = 0
        _gather(c, k, T, ck[c, C_TPREV], lat, mesh, ps_off[r], ps_off[r + 1], ps_pop, hmin,
                cur, lg, lg_n, cl_x, cl_y, tk, slot, cnt, bits, smap)
        cpop[r, P_RCV] += cnt[0]
        cpop[r, P_LATE] += cnt[1]
        cpop[r, P_EARLY] += cnt[2]
        _pack(d_lo, d_hi, pd_slot, pd_bin, tk, slot, lg, pl_i, pl_v, ms_i, ms_v, seg, vseg)
        if p_osa[r]:
            nu = cnu[c] / (1.0 + cnu[c] - p_nubar[r])
            cnu[c] = nu
        cpop[r, P_UPD] += hi - lo
    n = _cluster_tick((r, lo, hi, x_lo, p_yoff[r], u_lo), k, nu, beta, W,
                      (pd_p[d_lo:d_hi], pd_d[d_lo:d_hi], pd_bin[d_lo:d_hi], seg, vseg, syn),
                      ms_i, ms_v, seed, (y, x) + R[2:])
    if x_lo < 0:
        for j in range(d_hi - d_lo):
            csyn[pd_p[d_lo + j], pd_d[d_lo + j]] += syn[j]
    ck[c, C_TPREV] = T
    cpop[r, P_SPK] += n
    cpop[r, P_ENC] += hi - lo
    if recording:
        _record(b, c, k, T, lo, hi, t0, every, rec[0], rec[1], rec[2], rec[3], q, s, v, eps,
                phi)
    if n == 0 or not cl_dest[c]:
        return hn, seq, nb, top
    for i in range(n):                         # the payload: senders within the population
        rel = ev[lo + i]
        pl_i[top + i] = rel + lo - u_lo
        if not p_bin[r]:
            pl_v[top + i] = q[lo + rel]
    npk = n * cl_pps[c]
    cpop[r, P_PK] += npk
    csc[X_HOPS] += n * cl_hps[c]
    bb = nb
    bt[bb, B_SRC], bt[bb, B_K], bt[bb, B_T], bt[bb, B_OFF] = c, k, T, top
    bt[bb, B_N], bt[bb, B_NPK], bt[bb, B_NEXT] = n, npk, -1
    if unlimited:                              # no channel: logged (released) at once
        bt[bb, B_SER], bt[bb, B_REL] = 0, 1
        _log(lg, lg_n, r, bb, T, bt, p_nclu[r], cl_rank[c])
    else:                                      # request a channel of the cluster's port
        bt[bb, B_SER] = np.int64(np.ceil(npk * quanta / bw))
        bt[bb, B_REL] = 0
        port = cl_port[c]
        if pt[port, 2] >= 0:
            bt[pt[port, 2], B_NEXT] = bb
        else:
            pt[port, 1] = bb
        pt[port, 2] = bb
        hn, seq = _trigger(port, now, seq, h, hn, nq, qb, chip_sc, pt, bt, channels)
    return hn, seq, nb + 1, top + n


@jit_nr
def _compact(cl_pop, ps_off, ps_pop, cur, lg, lg_n, bt, nb, pl_i, pl_v, h, hn, nq, qb, pt,
             remap, mn):
    """Drop what no receiver will read again: log rows every reader's cursor has passed,
    and the batches (and payload) that are neither in a log nor still on a channel.
    Renumbers the rest in order (heap, queues, logs, cursors).  Returns (batches, top)."""
    P = lg_n.shape[0]
    for p in range(P):
        mn[p] = lg_n[p]
    for c in range(cl_pop.shape[0]):
        r = cl_pop[c]
        for j in range(ps_off[r + 1] - ps_off[r]):
            p = ps_pop[ps_off[r] + j]
            mn[p] = min(mn[p], cur[c, j])
    for i in range(nb):
        remap[i] = 1 if bt[i, B_REL] == 0 else 0
    for p in range(P):
        for pos in range(mn[p], lg_n[p]):
            remap[lg[p, pos, L_B]] = 1
    kept = top = 0
    for i in range(nb):
        if remap[i] == 0:
            remap[i] = -1
            continue
        off, n = bt[i, B_OFF], bt[i, B_N]
        for f in range(B_FIELDS):
            bt[kept, f] = bt[i, f]
        for t in range(n):
            pl_i[top + t] = pl_i[off + t]
            pl_v[top + t] = pl_v[off + t]
        bt[kept, B_OFF] = top
        top += n
        remap[i] = kept
        kept += 1
    for i in range(kept):
        if bt[i, B_NEXT] >= 0:
            bt[i, B_NEXT] = remap[bt[i, B_NEXT]]
    for port in range(pt.shape[0]):
        for f in (1, 2):
            if pt[port, f] >= 0:
                pt[port, f] = remap[pt[port, f]]
    for i in range(hn):
        if h[i, 2] == GRANT or h[i, 2] == FINISH:
            h[i, 3] = remap[h[i, 3]]
    for bk in range(qb.shape[0]):
        i = qb[bk, 0]
        while i >= 0:
            if nq[i, 1] == GRANT or nq[i, 1] == FINISH:
                nq[i, 2] = remap[nq[i, 2]]
            i = nq[i, 3]
    for p in range(P):
        d = mn[p]
        for pos in range(d, lg_n[p]):
            for f in range(L_FIELDS):
                lg[p, pos - d, f] = lg[p, pos, f]
            lg[p, pos - d, L_B] = remap[lg[p, pos, L_B]]
            lg[p, pos - d, L_OFF] = bt[lg[p, pos - d, L_B], B_OFF]
        lg_n[p] -= d
    for c in range(cl_pop.shape[0]):
        r = cl_pop[c]
        for j in range(ps_off[r + 1] - ps_off[r]):
            cur[c, j] -= mn[ps_pop[ps_off[r] + j]]
    return kept, top


# what advance() returns: done, or which storage to grow before calling it again
DONE_OK, NEED_HEAP, NEED_BATCHES, NEED_PAYLOAD, NEED_LOG, NEED_TAKEN, NEED_MESSAGES = range(7)


@njit(nogil=True, _nrt=False, **_OPTS)
def advance(b, start, limit, t0, every, beta, seed, recording, L, clocks, W, R, hwi, bw,
            ck, cnu, jg, cur, pt, waiters, sc, dyn, scratch, cpop, csyn, csc, rec):
    """Run chip b from its phase barrier until every clock has done tick ``limit`` (the
    simpy engine's ``advance``; ``start``: the phase begins, else the call resumes one).
    Returns DONE_OK, or NEED_* when a store is too small for the next event: the caller
    grows it (every chip's state lives in the arrays) and calls again with start = 0."""
    period, phase, jamp, grp_off, grp_mem = clocks
    cl_pop, cl_port, ps_off, ps_pop = L[0], L[4], L[22], L[23]
    h, nq, qb, bt, pl_i, pl_v, lg, lg_n, tk, ms_i, ms_v, remap = dyn
    slot, seg, vseg, syn, cnt, wtmp, w12, mn, bits, smap = scratch
    run = (b, beta, seed, t0, every, recording, bw)
    chip = (ck, cnu, cur, pt, sc)
    tick_scratch = (slot, seg, vseg, syn, cnt, bits, smap)
    ctr = (cpop, csyn, csc)
    G, C, N = grp_off.shape[0] - 1, cl_pop.shape[0], R[2].shape[0]
    dmax, channels = seg.shape[0] - 1, hwi[2]
    now, seq, nw, hn, nb, top = sc[S_NOW], sc[S_SEQ], sc[S_NWAIT], sc[S_HEAP], sc[S_NB], sc[S_TOP]
    fin = sc[S_FIN]
    status = DONE_OK
    if start:
        if hn + 1 > h.shape[0] or sc[S_QN] + 1 > nq.shape[0]:
            return NEED_HEAP
        fin = 0
        hn = _qpush(h, hn, nq, qb, sc, now, now, seq, RESUME, 0)   # the phase's resume
        seq += 1
    while True:
        store = (h, nq, qb, bt, pl_i, pl_v, lg, lg_n, tk, ms_i, ms_v)
        # room for whatever one event can add (every cluster ticking once)
        if hn + G + C + 2 > h.shape[0] or sc[S_QN] + G + C + 2 > nq.shape[0]:
            status = NEED_HEAP
            break
        lmax = 0
        for p in range(lg_n.shape[0]):
            lmax = max(lmax, lg_n[p])
        if nb + C > bt.shape[0] or top + N > pl_i.shape[0] or lmax + C > lg.shape[1]:
            nb, top = _compact(cl_pop, ps_off, ps_pop, cur, lg, lg_n, bt, nb, pl_i, pl_v, h,
                               hn, nq, qb, pt, remap, mn)
            lmax = 0
            for p in range(lg_n.shape[0]):
                lmax = max(lmax, lg_n[p])
            status = NEED_BATCHES if 2 * (nb + C) > bt.shape[0] else \
                NEED_PAYLOAD if 2 * (top + N) > pl_i.shape[0] else \
                NEED_LOG if 2 * (lmax + C) > lg.shape[1] else DONE_OK
            if status != DONE_OK:
                break
        if lg_n.sum() + C > tk.shape[0]:
            status = NEED_TAKEN
            break
        if dmax * (top + N) > ms_i.shape[0]:
            status = NEED_MESSAGES
            break
        now, kind, arg, hn = _qpop(h, hn, nq, qb, sc, now)
        if kind == DONE:
            break
        if kind == GRANT:                           # a batch gets a channel
            ser = bt[arg, B_SER]
            csc[X_QDELAY] += (now - bt[arg, B_T]) * bt[arg, B_NPK]
            csc[X_BUSY] += ser
            hn = _qpush(h, hn, nq, qb, sc, now, now + ser, seq, FINISH, arg)
            seq += 1
            continue
        if kind == FINISH:                          # serialized: release, log (arrive)
            src = bt[arg, B_SRC]
            port = cl_port[src]
            pt[port, 0] -= 1
            hn = _qpush(h, hn, nq, qb, sc, now, now, seq, RELEASE, port)
            seq += 1
            p = cl_pop[src]
            _log(lg, lg_n, p, arg, now, bt, L[16][p], L[3][src])
            bt[arg, B_REL] = 1
            continue
        if kind == RELEASE:
            hn, seq = _trigger(arg, now, seq, h, hn, nq, qb, sc, pt, bt, channels)
            continue
        m = 1                                       # WAKE: one process; RESUME: the waiting
        if kind == RESUME:
            m = nw
            for i in range(m):
                wtmp[i] = waiters[i]
            nw = 0
        else:
            wtmp[0] = arg
        for i in range(m):
            g = wtmp[i]
            woke = kind == WAKE
            g0, g1 = grp_off[g], grp_off[g + 1]
            c0 = grp_mem[g0]
            while True:
                k = ck[c0, C_TICK] + 1
                if woke:
                    T = now
                    woke = False
                else:
                    if k > limit:                   # done: wait for the next phase
                        fin += 1
                        if fin == G:
                            hn = _qpush(h, hn, nq, qb, sc, now, now, seq, DONE, 0)
                            seq += 1
                        waiters[nw] = g
                        nw += 1
                        break
                    T = phase[c0] + k * period[c0] + ck[c0, C_SHIFT] + \
                        jitter(seed, c0, k, jamp[c0], jg, ck, w12)
                    if T < now:                     # held back by the barrier: shift
                        for ci in range(g0, g1):
                            ck[grp_mem[ci], C_SHIFT] += now - T
                        T = now
                    elif T > now:
                        hn = _qpush(h, hn, nq, qb, sc, now, T, seq, WAKE, g)
                        seq += 1
                        break
                for ci in range(g0, g1):
                    c = grp_mem[ci]
                    hn, seq, nb, top = _tick(c, k, T, now, seq, hn, nb, top, run, hwi, L, W,
                                             R, chip, store, tick_scratch, ctr, rec)
                    ck[c, C_TICK] = k
    sc[S_NOW], sc[S_SEQ], sc[S_NWAIT], sc[S_HEAP], sc[S_NB], sc[S_TOP] = now, seq, nw, hn, nb, top
    sc[S_FIN] = fin
    return status


@jit
def in_flight(L, lat, mesh, ck, cur, lg, lg_n):
    """Messages sent and released but not yet integrated, counted once per receiving
    cluster (what the simpy engine's inboxes hold)."""
    cl_pop, cl_x, cl_y, ps_off, ps_pop, hmin = L[0], L[5], L[6], L[22], L[23], L[24]
    total = 0
    for c in range(cl_pop.shape[0]):
        r = cl_pop[c]
        for j in range(ps_off[r + 1] - ps_off[r]):
            p = ps_pop[ps_off[r] + j]
            for pos in range(cur[c, j], lg_n[p]):
                src = lg[p, pos, L_SRC]
                hops = abs(cl_x[src] - cl_x[c]) + abs(cl_y[src] - cl_y[c]) if mesh else 1
                if lg[p, pos, L_REL] + lat * hops >= ck[c, C_TPREV]:
                    total += lg[p, pos, L_N]
    return total


def _stamp(*paths) -> bytes:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.digest()


def _cache_against(*modules) -> None:
    """numba's on-disk cache checks only the file that defines a function, so a cached
    kernel of this module would keep running an edited kernels.py's old code.  Every
    dispatcher here is therefore cached against this file and the modules it calls
    (their sources' hash is part of its cache's stamp); if numba's cache does not have the
    shape this relies on, caching is turned off (slower starts, never stale code)."""
    extra = _stamp(*(m.__file__ for m in modules))
    for obj in list(globals().values()):
        if isinstance(obj, Dispatcher) and obj._cache is not None:
            try:
                cf = obj._cache._cache_file
                cf._source_stamp = (cf._source_stamp, extra)
            except AttributeError:
                from numba.core.caching import NullCache
                obj._cache = NullCache()


from . import eventtime as _eventtime  # noqa: E402

_cache_against(K, _eventtime)
