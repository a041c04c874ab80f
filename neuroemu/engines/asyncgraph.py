"""The bus engine on graph networks (issue 13): what a circuit cluster hears and its tick.

Populations are cut into clusters as on a chain (column ranges of at most
``hardware.cluster_size`` neurons), with the same clocks, cores and network.  A cluster of
population r sends its messages to every cluster of every population r delivers into
(forwards to the posts of its projections, backwards to the pres of its symmetric ones:
the deliveries of the compiled network's table ``dl``), one packet per spike on the bus,
one per destination core on the mesh.  A packet is heard once per receiving cluster, whatever
the number of projections it travels through there.

At its tick a cluster takes the packets that arrived strictly before it, and for each of
its population's deliveries (p, d) in the fixed ``dl`` order hands the senders' messages,
by (send tick, sender cluster) -- increasing sender order, lockstep's -- to
:func:`~neuroemu.engines.kernels.graph_tick`, which delivers into the cluster's own columns
with :func:`~neuroemu.engines.kernels.deliver_range` (each unit gets the terms of
:func:`~neuroemu.engines.kernels.deliver_projection` in the same order, hence its bits),
then updates the paper's neurons and encodes, or integrates and fires IF/LIF neurons.  An
input population's clusters encode their columns of x (``compiled.xoff``); an output
population is nudged towards its columns of y (``compiled.yoff``).

:class:`GraphTicks` is the tick of :class:`~neuroemu.engines.asyncbus._Chip` on such
networks (mixed in there, so this module imports nothing of the bus engine).
"""

from __future__ import annotations

import numpy as np

import neuroemu.engines.kernels as K

_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0)


def receivers(net) -> list[set[int]]:
    """For each population, the populations its messages are delivered into (on a chain:
    the layer above, and the one below unless it is the clamped input)."""
    out = [set() for _ in range(net.n_pops)]
    for r in range(net.n_pops):
        for p, d in net.dl[net.dl_off[r]:net.dl_off[r + 1]]:
            out[int(net.pj[p, K.PJ_PRE] if d == 0 else net.pj[p, K.PJ_POST])].add(r)
    return out


def cluster_info(net, layout, binary: list[bool], osa: list[bool]) -> list[tuple]:
    """Per cluster, the constants of its tick: population, columns, where it reads x and y,
    OSA, and its deliveries (sender populations, projections, directions, binary)."""
    info = []
    for c in range(layout.n):
        r, lo, hi = layout.layer[c], layout.lo[c], layout.hi[c]
        u_lo = int(net.off[r])
        dl = net.dl[net.dl_off[r]:net.dl_off[r + 1]]
        dp = np.ascontiguousarray(dl[:, 0], dtype=np.int64)
        dd = np.ascontiguousarray(dl[:, 1], dtype=np.int64)
        srcs = tuple(int(net.pj[p, K.PJ_PRE] if d == 0 else net.pj[p, K.PJ_POST])
                     for p, d in dl)
        bins = np.array([binary[s] for s in srcs], dtype=np.bool_)
        x_lo = int(net.xoff[r]) + lo - u_lo if net.xoff[r] >= 0 else -1
        info.append((r, lo, hi, u_lo, x_lo, int(net.yoff[r]), osa[r],
                     float(net.lp[r, K.LP_ANNA]), srcs, dp, dd, bins,
                     np.zeros(len(srcs) + 1, dtype=np.int64), np.zeros(len(srcs), np.int64),
                     list(zip(dp.tolist(), dd.tolist())), bins.tolist()))
    return info


def _pack(ready, srcs, bins):
    """The senders (and messages of real-valued senders) of each delivery, concatenated in
    delivery order, each delivery's packets in (send tick, sender offset) order."""
    by_src = {}
    for e in ready:
        by_src.setdefault(e[0], []).append(e)
    ip, vp, seg, vseg = [], [], [0], [0]
    for src, b in zip(srcs, bins):
        es = by_src.get(src, ())
        m = 0
        for e in es:
            ip.append(e[4])
            m += len(e[4])
            if not b:
                vp.append(e[5])
        seg.append(seg[-1] + m)
        vseg.append(vseg[-1] + (0 if b else m))
    idx = (ip[0] if len(ip) == 1 else np.concatenate(ip)) if ip else _EMPTY_I
    vals = (vp[0] if len(vp) == 1 else np.concatenate(vp)) if vp else _EMPTY_F
    return idx, vals, np.array(seg, dtype=np.int64), np.array(vseg, dtype=np.int64)


class GraphTicks:
    """The tick of a circuit cluster of a graph network (a mixin of the bus engine's chip:
    it uses the chip's inboxes, counters and ``_emit``)."""

    def _tick(self, c: int, k: int, T: int) -> None:
        """Tick k of cluster c at time T: integrate, update, encode or fire, send."""
        sess = self.sess
        (r, lo, hi, u_lo, x_lo, y_lo, osa, nu_bar, srcs, dp, dd, bins, seg0, syn, pd,
         bins_l) = sess._info[c]
        x, y, s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev = self.rows
        net, kl = sess.net, self.k_layer
        idx, vals, seg, vseg = _EMPTY_I, _EMPTY_F, seg0, seg0
        nu = 0.0
        if x_lo < 0:
            box = self.inbox[c]
            if box:
                ready = [e for e in box if e[3] < T]
                self.inbox[c] = [e for e in box if e[3] >= T] if len(ready) < len(box) else []
                if ready:
                    # (sender population, send tick, sender offset): lockstep's order
                    ready.sort(key=lambda e: (e[0], e[1], e[2]))
                    late = early = rcv = 0
                    for e in ready:
                        m = len(e[4])
                        rcv += m
                        if k > e[1] + 1:
                            late += m
                        elif k <= e[1]:
                            early += m
                    kl["received"][r] += rcv
                    kl["late"][r] += late
                    kl["early"][r] += early
                    idx, vals, seg, vseg = _pack(ready, srcs, bins_l)
            if osa:
                nu = self.nu[c] = self.nu[c] / (1.0 + self.nu[c] - nu_bar)
            kl["upd"][r] += hi - lo
        n = K.graph_tick(r, lo, hi, k, nu, sess.beta, x_lo, y_lo, u_lo, net.lp, net.pj, dp, dd,
                         bins, seg, vseg, idx, vals, syn, net.wf, net.wb, net.ix, self.seed,
                         net.bias, y, x, s, v, a, eps, th, ob, od, ol, u, phi, xm, q, ev,
                         *self.poles)
        if x_lo < 0:
            ks = self.k_syn
            for (p, d), m in zip(pd, syn.tolist()):
                ks[p][d] += m
        self._emit(c, r, k, T, lo, hi, u_lo, n)
