"""Conv delivery takes one of two paths -- in place with strided channels, or channels-last in
a scratch copy of the receiving maps (long channel runs, many taps) -- and both must give the
dense matrix's arithmetic exactly (tests/reference_graph.py)."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from conftest import build
from neuroemu.describe import from_dict
from neuroemu.engines import kernels as K


def conv(ci, co, size, stride, padding, seed=0):
    post = (size + 2 * padding - 3) // stride + 1
    raw = {"network": {"name": "paths", "format": 2, "seed": seed},
           "neuron": {"encoder": "sigma_delta"},
           "population": [{"name": "a", "shape": [ci, size, size]},
                          {"name": "b", "shape": [co, post, post], "role": "output"},
                          {"name": "x", "size": 1, "role": "input"}],
           "projection": [{"pre": "a", "post": "b", "kind": "conv2d", "kernel_size": 3,
                           "stride": stride, "padding": padding,
                           "weights": {"init": "glorot_uniform", "gain": 3.0}}]}
    return from_dict(raw)


@pytest.mark.parametrize("ci,co,stride,padding", [(8, 12, 1, 0), (9, 16, 2, 1), (3, 10, 1, 1),
                                                  (12, 2, 1, 0)])
@pytest.mark.parametrize("frac", [0.01, 0.2, 0.7])
@pytest.mark.parametrize("binary", [True, False])
def test_both_paths_equal_the_implied_matrix(ci, co, stride, padding, frac, binary):
    nl = conv(ci, co, 9, stride, padding)
    cn = build(nl)
    M32 = ref.dense_matrix(nl, nl.projections[0]).astype(np.float32)
    S = ref.structure(nl, nl.projections[0])
    rng = np.random.default_rng(int(frac * 100) + ci)
    for d in (0, 1):
        n_src, n_dst = (M32.shape[0], M32.shape[1]) if d == 0 else M32.shape[::-1]
        mat = M32 if d == 0 else np.ascontiguousarray(M32.T)
        on = rng.random(n_src) < frac
        q = np.where(on, 1.0 if binary else rng.uniform(-1.5, 1.5, n_src), 0.0)
        ev = np.flatnonzero(q).astype(np.int32)
        u0 = rng.uniform(-1, 1, n_dst + 5).astype(np.float32)   # a non-zero accumulator
        u = u0.copy()
        syn = K.deliver_projection(cn.pj, 0, d, q, ev, 0, len(ev), binary, cn.wf, cn.wb, cn.ix,
                                   u, 5)
        want = u0.copy()
        ref.deliver_into(want[5:], q, mat)
        assert np.array_equal(u, want)
        assert syn == int((S if d == 0 else S.T)[ev].sum())


def test_the_parameters_reach_both_paths():
    """The cases above cover both sides of the dispatch rule in deliver_projection."""
    seen = set()
    for ci, co, stride, padding in [(8, 12, 1, 0), (9, 16, 2, 1), (3, 10, 1, 1), (12, 2, 1, 0)]:
        post = (9 + 2 * padding - 3) // stride + 1
        for frac in (0.01, 0.2, 0.7):
            for d, (c_run, n_src, n_dst) in enumerate(((co, ci * 81, co * post * post),
                                                       (ci, co * post * post, ci * 81))):
                taps = max(1, int(frac * n_src)) * 9
                seen.add(c_run >= 8 and taps * c_run >= n_dst)
    assert seen == {True, False}
