"""Slow, obvious NumPy versions of every kernel and of whole runs, written from
docs/model.md (not from neuroemu/engines/kernels.py).  Tests compare the kernels against these.

Numerical conventions shared with the kernels (docs/model.md of the project): weights and
the delivered-input sum are float32, summed in increasing sender order; everything else is
float64 with the formulas exactly as written in the spec.
"""

from __future__ import annotations

import numpy as np

MASK = (1 << 64) - 1


def mix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def uniform(seed: int, gid: int, t: int) -> float:
    """The documented counter-based uniform: splitmix64 chain of (seed, neuron id, step)."""
    h = mix64(mix64(mix64(int(seed)) ^ int(gid)) ^ int(t))
    return (h >> 11) / 2.0**53


def schedule(spec: dict, t: int) -> float:
    if spec["kind"] == "constant":
        return spec.get("value", spec.get("eps0"))
    a = spec.get("lam0", spec.get("eps0"))
    return a / float(t) ** spec["eta"]


class SigmaDelta:
    """First-order sigma-delta; ``clamp = (a, b)`` holds the residue in +-(a + b/t)."""

    def __init__(self, n, clamp=None):
        self.phi = np.zeros(n)
        self.clamp = clamp

    def __call__(self, c, t, seed, gids):
        out = np.zeros(len(c))
        for k in range(len(c)):
            self.phi[k] += c[k]
            out[k] = 1.0 if self.phi[k] > 0.5 else 0.0
            self.phi[k] -= out[k]
            if self.clamp is not None:
                bound = self.clamp[0] + self.clamp[1] / t
                self.phi[k] = min(max(self.phi[k], -bound), bound)
        return out


class Stochastic:
    def __call__(self, c, t, seed, gids):
        return np.array([1.0 if c[k] > uniform(seed, gids[k], t) else 0.0 for k in range(len(c))])


class Identity:
    def __call__(self, c, t, seed, gids):
        return np.array(c, dtype=float)


class PredictiveEncoder:
    """Predictive coding: the inverse of the one-pole low-pass ``lam`` -- and with ``lam2``,
    then of a second one (two poles)."""

    def __init__(self, inner, lam_spec, n, lam2_spec=None):
        self.inner, self.lam_spec, self.prev = inner, lam_spec, np.zeros(n)
        self.lam2_spec, self.prev2 = lam2_spec, np.zeros(n)

    def __call__(self, x, t, seed, gids):
        lam = schedule(self.lam_spec, t)
        c = (x - (1.0 - lam) * self.prev) / lam
        self.prev = np.array(x, dtype=float)
        if self.lam2_spec is not None:
            w = c
            lam2 = schedule(self.lam2_spec, t)
            c = (w - (1.0 - lam2) * self.prev2) / lam2
            self.prev2 = w
        return self.inner(c, t, seed, gids)


class PredictiveDecoder:
    """The low-pass ``lam`` -- with ``lam2``, preceded by the low-pass ``lam2``."""

    def __init__(self, lam_spec, n, lam2_spec=None):
        self.lam_spec, self.v = lam_spec, np.zeros(n)
        self.lam2_spec, self.v2 = lam2_spec, np.zeros(n)

    def __call__(self, u, t):
        lam = schedule(self.lam_spec, t)
        if self.lam2_spec is not None:
            lam2 = schedule(self.lam2_spec, t)
            self.v2 = (1.0 - lam2) * self.v2 + lam2 * u
            u = self.v2
        self.v = (1.0 - lam) * self.v + lam * u
        return self.v


class IdentityDecoder:
    def __call__(self, u, t):
        return np.array(u, dtype=float)


class OSA:
    """George & Powell's optimal step-size algorithm, per neuron, as in model.md 3."""

    def __init__(self, n, nu_bar, reg):
        self.nu_bar, self.e = nu_bar, reg
        self.nu = 1.0
        self.beta = np.zeros(n)
        self.delta = np.zeros(n)
        self.lamb = np.zeros(n)
        self.theta = np.zeros(n)
        self.first = True

    def __call__(self, x, t):
        err = x - self.theta
        self.nu = self.nu / (1.0 + self.nu - self.nu_bar)
        self.beta = (1.0 - self.nu) * self.beta + self.nu * err
        self.delta = (1.0 - self.nu) * self.delta + self.nu * err * err
        var = (self.delta - self.beta * self.beta) / (1.0 + self.lamb)
        if self.first:
            alpha = np.ones_like(x)
            self.first = False
        else:
            alpha = 1.0 - (var + self.e) / (self.delta + self.e)
        self.lamb = (1.0 - alpha) * (1.0 - alpha) * self.lamb + alpha * alpha
        self.theta = (1.0 - alpha) * self.theta + alpha * x
        return alpha


class Scheduled:
    def __init__(self, spec):
        self.spec = spec

    def __call__(self, x, t):
        return np.full(len(x), schedule(self.spec, t))


def _lam2(neuron):
    """The second lambda schedule (a dict), or None for a one-pole code."""
    lam2 = getattr(neuron, "lam2", None)
    return lam2.as_dict() if lam2 is not None else None


def make_encoder(neuron, n):
    clamp = getattr(neuron, "clamp", None)
    inner = {"none": Identity, "sigma_delta": lambda: SigmaDelta(n, clamp),
             "stochastic": Stochastic}[neuron.encoder]()
    lam2 = _lam2(neuron)
    if neuron.predictive:
        return PredictiveEncoder(inner, neuron.lam.as_dict(), n, lam2)
    return inner


def make_decoder(neuron, n):
    if neuron.decoder == "predictive":
        return PredictiveDecoder(neuron.lam.as_dict(), n, _lam2(neuron))
    return IdentityDecoder()


def make_annealer(neuron, n):
    spec = neuron.eps.as_dict()
    if spec["kind"] == "osa":
        return OSA(n, spec["nu_bar"], spec["reg"])
    return Scheduled(spec)


def deliver(q, W32):
    """u = sum over senders i with q_i != 0 of q_i * W[i], float32, in sender order."""
    u = np.zeros(W32.shape[1], dtype=np.float32)
    for i in range(len(q)):
        if q[i] != 0.0:
            u += W32[i] if q[i] == 1.0 else np.float32(q[i]) * W32[i]
    return u


class Network:
    """One sample of a whole network, stepped exactly as docs/model.md section 3 says."""

    def __init__(self, net, x, seed):
        self.net = net
        pops = net.populations
        self.L = len(pops) - 1
        self.W = [p.weights.astype(np.float32) for p in net.projections]
        self.b = [p.bias for p in pops]
        self.x = np.asarray(x, dtype=float)
        self.seed = seed
        self.off = np.concatenate([[0], np.cumsum([p.size for p in pops])])
        self.s = [np.zeros(p.size) for p in pops]
        self.s[0] = self.x.copy()
        self.q = [np.zeros(p.size) for p in pops]
        self.enc = [make_encoder(p.neuron, p.size) for p in pops]
        self.dec = [None] + [make_decoder(p.neuron, p.size) for p in pops[1:]]
        self.ann = [None] + [make_annealer(p.neuron, p.size) for p in pops[1:]]
        self.t = 0
        self.spikes = np.zeros(self.L + 1, dtype=np.int64)

    def drive(self, l):
        """The summed input u(t) of layer l (float32 sums, in sender order), as float64."""
        u = deliver(self.q[l - 1], self.W[l - 1])
        if l < self.L:
            u = u.copy()
            for i in range(len(self.q[l + 1])):
                if self.q[l + 1][i] != 0.0:
                    qi = self.q[l + 1][i]
                    u += (self.W[l][:, i] if qi == 1.0 else np.float32(qi) * self.W[l][:, i])
        return u.astype(np.float64)

    def send(self, l, q):
        """What layer l's encoder output becomes on the wire (as it is, here)."""
        return q

    def step(self, beta=0.0, y=None):
        self.t += 1
        t, L = self.t, self.L
        new_s = [self.s[0]]
        for l in range(1, L + 1):
            v = self.dec[l](self.drive(l), t)
            sp = self.s[l]
            rho_prime = ((sp >= 0.0) & (sp <= 1.0)).astype(float)
            a = rho_prime * (v + self.b[l])
            if l == L and y is not None:
                a = a + 2.0 * beta * (y - sp)
            eps = self.ann[l](a, t)
            new_s.append(np.clip((1.0 - eps) * sp + eps * a, 0.0, 1.0))
        self.s = new_s
        for l in range(L + 1):
            gids = np.arange(self.off[l], self.off[l + 1])
            self.q[l] = self.send(l, self.enc[l](np.clip(self.s[l], 0.0, 1.0), t, self.seed,
                                                 gids))
            self.spikes[l] += int(np.count_nonzero(self.q[l]))
        return np.concatenate(self.q)


def continuous_run(W, b, x, steps, beta=0.0, y=None, eps=0.5, s=None):
    """The continuous Hopfield dynamics of model.md section 2 with dense float64 matmuls,
    batched: W list of (n_l, n_l+1), b list of the non-input layers' biases, x (B, n_0).

    Starts from all-zero states (the input layer's output included, so layer 1 sees x
    only from step 2) unless ``s`` (a list of states to continue from) is given.
    Returns the list of states after ``steps`` synchronous (Jacobi) steps.
    """
    L = len(W)
    if s is None:
        s = [np.zeros((x.shape[0], n)) for n in [x.shape[1]] + [w.shape[1] for w in W]]
    rho = lambda z: np.clip(z, 0.0, 1.0)  # noqa: E731
    for _ in range(steps):
        prev = s
        s = [x.copy()]
        for l in range(1, L + 1):
            drive = rho(prev[l - 1]) @ W[l - 1] + b[l - 1]
            if l < L:
                drive = drive + rho(prev[l + 1]) @ W[l].T
            if l == L and y is not None:
                drive = drive + 2.0 * beta * (y - prev[l])
            s.append(np.clip((1 - eps) * prev[l] + eps * drive, 0.0, 1.0))
    return s


# The reference for networks as graphs (issue 13) lives in reference_graph.py; its names are
# reachable from here (ref.dense_matrix, ref.GraphNetwork, ...), imported on first use.
GRAPH_NAMES = ("dense_matrix", "structure", "deliver_into", "GraphNetwork",
               "continuous_graph_run")


def __getattr__(name):
    if name in GRAPH_NAMES:
        import reference_graph
        return getattr(reference_graph, name)
    raise AttributeError(f"module 'reference' has no attribute {name!r}")
