"""The slow, obvious reference of implicit differentiation at the rates' equilibrium (issue 16),
written from the model (the rate map and its adjoint; /work draft of docs/model.md section 8),
not from neuroemu/learn/ide.py: every projection as its dense implied matrix, the whole state
of one sample as one vector, the Jacobian as an explicit matrix, the adjoint system solved by
numpy.linalg.solve, and each parameter's derivative as the sum of the dense gradient over the
positions where the parameter appears (dM/dw_e = the matrix with only w_e = 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from reference_graph import dense_matrix


def _model(neuron) -> str:
    return getattr(neuron, "model", "paper")


def _m32(nl, proj):
    """The implied matrix with float32 weights, as the compiled network stores them."""
    return dense_matrix(nl, proj).astype(np.float32).astype(np.float64)


class Layout:
    """Non-input populations stacked into one state vector."""

    def __init__(self, nl, leak_offset=0.5):
        self.nl = nl
        self.pops = list(nl.populations)
        self.names = [p.name for p in self.pops]
        self.state = [i for i, p in enumerate(self.pops) if p.role != "input"]
        self.start, n = {}, 0
        for i in self.state:
            self.start[i] = n
            n += self.pops[i].size
        self.n = n
        self.thr = np.zeros(n)
        self.shift = np.zeros(n)
        self.bias = np.zeros(n)
        for i in self.state:
            nr = self.pops[i].neuron
            assert _model(nr) in ("if", "lif") and nr.reset == "subtract"
            sl = self.cols(i)
            self.thr[sl] = nr.threshold
            self.shift[sl] = (1.0 - nr.leak) * leak_offset * nr.threshold
            self.bias[sl] = self.pops[i].bias
        # (projection, implied matrix, source, destination, direction)
        self.edges = []
        for p, pr in enumerate(nl.projections):
            a, b = self.names.index(pr.pre), self.names.index(pr.post)
            M = _m32(nl, pr)
            self.edges.append((p, M, a, b, 0))
            if getattr(pr, "symmetric", True) and self.pops[a].role != "input":
                self.edges.append((p, M, b, a, 1))

    def cols(self, i):
        return slice(self.start[i], self.start[i] + self.pops[i].size)

    def inputs(self, x):
        """clip(x, 0, 1) split over the input populations, in order."""
        out, k = {}, 0
        for i, p in enumerate(self.pops):
            if p.role == "input":
                out[i] = np.clip(x[k:k + p.size], 0.0, 1.0)
                k += p.size
        return out

    def A_c(self, x):
        """z = A a + c for one sample: A (n, n) from the recurrent deliveries, c from inputs
        and biases (column-vector convention)."""
        A = np.zeros((self.n, self.n))
        c = self.bias - self.shift
        xin = self.inputs(x)
        for p, M, src, dst, d in self.edges:
            Mt = (M if d == 0 else M.T)          # m_src @ Mt is the delivery
            rows = self.cols(dst)
            if src in xin:
                c[rows] += xin[src] @ Mt
            else:
                A[rows, self.cols(src)] += Mt.T
        return A, c / self.thr, A / self.thr[:, None]

    def fixed_point(self, x, iters=20000):
        _, c, A = self.A_c(x)
        a = np.zeros(self.n)
        for _ in range(iters):
            new = np.clip(A @ a + c, 0.0, 1.0)
            if np.max(np.abs(new - a)) < 1e-15:
                return new
            a = new
        return a


def reference_gradients(nl, x, y, rates, loss="mse", surrogate=0.0, leak_offset=0.5):
    """(dW per projection, db per population, loss): the adjoint solved exactly per sample at
    the given rates (list per population, as ide_gradients returns)."""
    L = Layout(nl, leak_offset)
    B = x.shape[0]
    outs = [i for i, p in enumerate(L.pops) if p.role == "output"]
    dM = [np.zeros(_m32(nl, pr).shape) for pr in nl.projections]
    db = np.zeros(L.n)
    total = 0.0
    for b in range(B):
        _, c, A = L.A_c(x[b])
        a = np.concatenate([rates[i][b] for i in L.state])
        z = A @ a + c
        D = np.where((z >= 0) & (z <= 1), 1.0, surrogate)
        a_out = np.concatenate([a[L.cols(i)] for i in outs])
        z_out = np.concatenate([z[L.cols(i)] for i in outs])
        dLda, dLdz = np.zeros(L.n), np.zeros(L.n)
        if loss == "mse":
            total += np.sum((a_out - y[b]) ** 2)
            g = 2 * (a_out - y[b])
            tgt = dLda
        else:
            e = np.exp(z_out - z_out.max())
            sm = e / e.sum()
            total += -np.sum(y[b] * np.log(sm))
            g = sm * y[b].sum() - y[b]
            tgt = dLdz
        k = 0
        for i in outs:
            n = L.pops[i].size
            tgt[L.cols(i)] = g[k:k + n]
            k += n
        h = D * dLda + dLdz
        lam = np.linalg.solve((np.eye(L.n) - A @ np.diag(D)).T, h)
        gI = lam / L.thr                     # dL/dI per neuron
        db += gI
        full = {i: rates[i][b] for i in range(len(L.pops))}
        full.update(L.inputs(x[b]))
        for p, M, src, dst, d in L.edges:
            G = np.outer(full[src], gI[L.cols(dst)])
            dM[p] += G if d == 0 else G.T
    dW = []
    for p, pr in enumerate(nl.projections):
        if getattr(pr, "kind", "dense") == "avgpool2d":
            dW.append(None)
            continue
        w = np.asarray(pr.weights)
        out = np.zeros(w.shape)
        for e in range(w.size):
            unit = np.zeros(w.shape)
            unit.flat[e] = 1.0
            out.flat[e] = np.sum(dM[p] * dense_matrix(nl, dataclasses.replace(pr, weights=unit)))
        dW.append(out / B)
    dbs = [None if p.role == "input" else db[L.cols(i)] / B for i, p in enumerate(L.pops)]
    return dW, dbs, total / B
