"""Issue 14's done-when, through files and the public entry points: every shipped netlist
survives neuroemu -> NIR (a .nir file) -> neuroemu exactly, and runs the same spikes."""

from __future__ import annotations

import numpy as np
import pytest

from neuroemu import describe, engines, interop

pytest.importorskip("nir", reason="the interop extra installs nir")


@pytest.mark.parametrize("name", sorted(describe.shipped()))
def test_shipped_netlist_survives_a_nir_file_exactly(tmp_path, name):
    net = describe.load(name)
    path = interop.write_nir(net, tmp_path / f"{name}.nir")
    back = interop.read_nir(path)
    assert describe.same(net, back)
    assert back.format == net.format
    cn, cb = engines.build(net), engines.build(back)
    x = np.random.default_rng(0).random((2, cn.n_in))
    a = engines.session(cn, x, seed=3).run(5, record_spikes=True, record_states=True)
    b = engines.session(cb, x, seed=3).run(5, record_spikes=True, record_states=True)
    assert np.array_equal(a.spikes, b.spikes) and np.array_equal(a.states, b.states)


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 0.02])
def test_the_round_trip_does_not_depend_on_dt(tmp_path, dt):
    net = describe.load("feedback-lif")
    assert describe.same(net, interop.read_nir(interop.write_nir(net, tmp_path / "f.nir", dt=dt),
                                               dt=dt))
