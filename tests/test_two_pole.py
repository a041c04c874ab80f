"""Two-pole predictive coding (a neuron's second schedule ``lam2``) and the sigma-delta
residue clamp (``clamp``): the kernels against the slow reference (tests/reference.py, written
from docs/model.md 3.1-3.2), exact decoding of real-valued messages, the bus engine, snapshots,
the validator and the netlist files.  Whole networks against the reference step run in
tests/test_kernels.py (its variants ``sd_pred2_osa_clamp`` and ``continuous_pred2``)."""

import re

import numpy as np
import pytest

import reference as ref
from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import kernels as K
from neuroemu.errors import NetlistError

LAM = {"kind": "scheduled", "lam0": 0.5438, "eta": 0.4194}
LAM2 = {"kind": "scheduled", "lam0": 0.7795, "eta": 0.5624}
TWO_POLE = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
            "lam": LAM, "lam2": LAM2, "clamp": {"a": 1.466, "b": 229.1},
            "eps": {"kind": "osa", "nu_bar": 0.3737, "reg": 1e-7}}


def signals(T, n, seed=0):
    """Constants, slow drifts, a jump at T/2, jitter, and values outside [0, 1] (clipped)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    x = rng.random(n)[None] + 0.05 * np.sin(t / 30.0 + rng.random(n)) \
        + (t >= T // 2) * rng.normal(0, 0.2, n) + rng.normal(0, 0.003, (T, n))
    x[:, :4] = [0.0, 1.0, 0.5, 0.25]                        # constants
    x[:, 4] = np.where(t[:, 0] % 2, 1.3, -0.2)              # outside [0, 1] every step
    return x


def input_kernel(neuron, n):
    """(lp, state rows) for encoding n values as the input population of a netlist."""
    cn = build(make_netlist([n, 3, 2], neuron, seed=1))
    rows = [np.zeros(cn.n_neurons) for _ in range(4)]           # xm, phi, q, xm2
    return cn, rows, np.zeros(cn.n_neurons, dtype=np.int32)


@pytest.mark.parametrize("clamp", [{"a": 1.466, "b": 229.1}, {"a": 0.7, "b": 2.0}, None])
@pytest.mark.parametrize("schedules", ["scheduled", "constant"])
def test_encoder_matches_the_reference_spike_for_spike(clamp, schedules):
    T, n = 500, 64
    neuron = dict(TWO_POLE)
    if schedules == "constant":
        neuron |= {"lam": {"kind": "constant", "value": 0.3},
                   "lam2": {"kind": "constant", "value": 0.6}}
    if clamp is None:
        del neuron["clamp"]
    else:
        neuron["clamp"] = clamp
    cn, (xm, phi, q, xm2), ev = input_kernel(neuron, n)
    x = signals(T, n)
    nd = make_netlist([n, 3, 2], neuron, seed=1).populations[0].neuron
    enc = ref.make_encoder(nd, n)
    clamped = 0
    for t in range(1, T + 1):
        k = K.encode_neurons(0, 0, n, t, cn.lp, np.uint64(0), x[t - 1], 0, xm, phi, q, ev, xm2)
        want = enc(np.clip(x[t - 1], 0.0, 1.0), t, 0, None)
        assert np.array_equal(q[:n], want), t
        assert np.array_equal(phi[:n], enc.inner.phi), t
        assert np.array_equal(xm2[:n], enc.prev2), t
        assert k == want.sum() and list(ev[:k]) == list(np.flatnonzero(want))
        if clamp is not None:
            clamped += int(np.sum(np.abs(phi[:n]) == clamp["a"] + clamp["b"] / t))
    if clamp is not None:
        assert clamped > 0                      # the clamp acted on these signals


def test_encoder_pulse_and_clamp_by_hand():
    """One neuron, constant lam = 0.5, lam2 = 0.25, clamp a = 1, b = 0: x steps 0 -> 1 at
    t = 1.  w_1 = 1 / 0.5 = 2, c_1 = 2 / 0.25 = 8: phi = 8 - 1 (spike) = 7, clamped to 1.
    t = 2: w_2 = (1 - 0.5) / 0.5 = 1, c_2 = (1 - 0.75 * 2) / 0.25 = -2: phi = -1, no spike."""
    neuron = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
              "lam": {"kind": "constant", "value": 0.5},
              "lam2": {"kind": "constant", "value": 0.25}, "clamp": {"a": 1.0}}
    cn, (xm, phi, q, xm2), ev = input_kernel(neuron, 1)
    one = np.ones(1)
    K.encode_neurons(0, 0, 1, 1, cn.lp, np.uint64(0), one, 0, xm, phi, q, ev, xm2)
    assert (q[0], phi[0], xm[0], xm2[0]) == (1.0, 1.0, 1.0, 2.0)
    K.encode_neurons(0, 0, 1, 2, cn.lp, np.uint64(0), one, 0, xm, phi, q, ev, xm2)
    assert (q[0], phi[0], xm[0], xm2[0]) == (0.0, -1.0, 1.0, 1.0)


def decoder_rows(n, neuron):
    cn = build(make_netlist([2, n, 2], neuron, seed=1))
    N = cn.n_neurons
    rows = dict(s=np.zeros(N), v=np.zeros(N), a=np.zeros(N), eps=np.zeros(N),
                th=np.zeros(N), ob=np.zeros(N), od=np.zeros(N), ol=np.zeros(N), v2=np.zeros(N))
    return cn, rows


def decode(cn, rows, t, u):
    """update_neurons on population 1 (columns 2:2+n) with delivered input u."""
    r = rows
    n = cn.sizes[1]
    K.update_neurons(1, 2, 2 + n, t, 1.0, 0.0, False, 0, cn.lp, u, cn.bias,
                     np.zeros(2), r["s"], r["v"], r["a"], r["eps"], r["th"], r["ob"], r["od"],
                     r["ol"], r["v2"])


def test_decoder_matches_the_reference():
    n, T = 16, 300
    cn, rows = decoder_rows(n, TWO_POLE)
    nd = make_netlist([2, n, 2], TWO_POLE, seed=1).populations[1].neuron
    dec = ref.make_decoder(nd, n)
    rng = np.random.default_rng(3)
    for t in range(1, T + 1):
        u = np.zeros(cn.n_neurons, dtype=np.float32)
        u[2:2 + n] = rng.normal(0, 2, n).astype(np.float32)
        decode(cn, rows, t, u)
        want = dec(u[2:2 + n].astype(np.float64), t)
        assert np.array_equal(rows["v"][2:2 + n], want), t
        assert np.array_equal(rows["v2"][2:2 + n], dec.v2), t


def test_real_valued_messages_decode_exactly():
    """Encoder 'none' with two constant poles: what the decoder makes at step t of the
    messages sent at t-1 is the value sent, up to rounding (model.md 3.2)."""
    n, T = 12, 200
    neuron = {"encoder": "none", "predictive": True, "decoder": "predictive",
              "lam": {"kind": "constant", "value": 0.3},
              "lam2": {"kind": "constant", "value": 0.45}}
    cn, (xm, phi, q, xm2), ev = input_kernel(neuron, n)
    dcn, rows = decoder_rows(n, neuron)
    x = np.clip(signals(T, n, seed=4), 0.0, 1.0)
    u = np.zeros(dcn.n_neurons)                # float64 deliveries: nothing rounded on the way
    worst, largest = 0.0, 0.0
    for t in range(1, T + 1):
        decode(dcn, rows, t, u)                # u holds the messages of step t-1
        if t > 1:
            worst = max(worst, np.abs(rows["v"][2:2 + n] - x[t - 2]).max())
        K.encode_neurons(0, 0, n, t, cn.lp, np.uint64(0), x[t - 1], 0, xm, phi, q, ev, xm2)
        largest = max(largest, np.abs(q[:n]).max())
        u[2:2 + n] = q[:n]
    assert largest > 5.0                       # the messages are pre-emphasised ...
    assert worst < 1e-12                       # ... and decode to the values sent


def test_bus_engine_is_lockstep_with_two_poles():
    """The bus engine runs the same kernels: with clusters of 2 on an ideal bus it is the
    lockstep engine bit for bit (spikes, states, decoded input, residues)."""
    raw = make_netlist([6, 5, 3], TWO_POLE | {"clamp": {"a": 0.7, "b": 3.0}}, seed=2,
                       gain=2.0)
    net = build(raw)
    rng = np.random.default_rng(0)
    x = rng.random((3, 6)) * 1.2 - 0.1
    y = np.eye(3)[rng.integers(0, 3, 3)]
    out = []
    for name, kw in (("lockstep", {}), ("async", {"hardware": {"cluster_size": 2}})):
        sess = engines.session(net, x, engine=name, seed=5, **kw)
        rec = dict(record_spikes=True, record_states=True, record_extra=True)
        out.append((sess, sess.run(25, **rec), sess.run(15, beta=0.5, target=y, **rec)))
    (a, *pa), (b, *pb) = out
    for p, q in zip(pa, pb):
        assert np.array_equal(p.spikes, q.spikes)
        assert np.array_equal(p.states, q.states)
        assert np.array_equal(p.extra, q.extra)
    assert np.array_equal(a.xm2, b.xm2) and np.array_equal(a.v2, b.v2)
    assert np.any(a.v2 != 0) and np.any(a.xm2 != 0)


def test_snapshot_restores_the_second_poles():
    """Symmetric nudging runs two phases from one snapshot: the second-pole memories must
    come back with everything else."""
    net = build(make_netlist([6, 5, 3], TWO_POLE, seed=2, gain=2.0))
    x = np.random.default_rng(1).random((2, 6))
    y = np.eye(3)[[0, 2]]
    sess = engines.session(net, x, seed=3)
    sess.run(30)
    snap = sess.snapshot()
    first = sess.run(20, beta=0.5, target=y, record_states=True, record_spikes=True)
    sess.run(7, beta=-0.5, target=y)
    sess.restore(snap)
    again = sess.run(20, beta=0.5, target=y, record_states=True, record_spikes=True)
    assert np.array_equal(first.states, again.states)
    assert np.array_equal(first.spikes, again.spikes)
    # and the memories matter: zeroing them after a restore changes the run
    sess.restore(snap)
    sess.xm2.fill(0.0)
    sess.v2.fill(0.0)
    other = sess.run(20, beta=0.5, target=y, record_states=True)
    assert not np.array_equal(first.states, other.states)


def test_one_pole_netlists_compile_as_before():
    """Without lam2 and clamp the parameter rows say so (the kernels then run the one-pole
    code), and the neuron table has exactly the five keys it always had."""
    one = make_netlist([4, 3, 2], {k: v for k, v in TWO_POLE.items()
                                   if k not in ("lam2", "clamp")})
    cn = build(one)
    assert not cn.lp[:, K.LP_POLE2:K.LP_CLB + 1].any()
    assert list(one.populations[1].neuron.as_dict()) == ["encoder", "predictive", "decoder",
                                                         "lam", "eps"]
    two = build(make_netlist([4, 3, 2], TWO_POLE))
    assert np.all(two.lp[:, K.LP_POLE2] == 1.0) and np.all(two.lp[:, K.LP_CLAMP] == 1.0)
    assert tuple(two.lp[0, [K.LP_LAM2K, K.LP_LAM2A, K.LP_LAM2B, K.LP_CLA, K.LP_CLB]]) == \
        (K.SCHED_SCHEDULED, 0.7795, 0.5624, 1.466, 229.1)


# ---------------------------------------------------------------- the netlist

def bad(neuron, pop_neuron=None):
    """The one-line error of a 2-2-2 netlist with this [neuron] table (and the hidden
    population's own neuron table)."""
    net = dict(network={"name": "t"}, neuron=neuron,
               population=[{"name": "input", "size": 2}, {"name": "h", "size": 2},
                           {"name": "output", "size": 2}],
               projection=[{"pre": "input", "post": "h", "weights": np.zeros((2, 2))},
                           {"pre": "h", "post": "output", "weights": np.zeros((2, 2))}])
    if pop_neuron is not None:
        net["population"][1]["neuron"] = pop_neuron
    with pytest.raises(NetlistError) as e:
        describe.from_dict(net, path="n.toml")
    msg = str(e.value)
    assert "\n" not in msg
    return msg


SD_PRED = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
           "lam": {"kind": "constant", "value": 0.3}}


@pytest.mark.parametrize("neuron,pop,pattern", [
    ({"encoder": "sigma_delta", "lam2": {"kind": "constant", "value": 0.5}}, None,
     r"^n.toml: neuron.lam2: a second pole needs predictive = true or decoder = 'predictive' "
     r"\(or lam2 = false\) \(got \{'kind': 'constant', 'value': 0.5\}\)$"),
    (SD_PRED | {"lam2": {"kind": "constant", "value": 0.0}}, None,
     r"^n.toml: neuron.lam2.value: must lie in \[1e-06, 1\] \(got 0.0\)$"),
    (SD_PRED | {"lam2": {"kind": "osa"}}, None,
     r"^n.toml: neuron.lam2.kind: must be one of constant, scheduled \(got 'osa'\)$"),
    (SD_PRED | {"lam2": True}, None, r"^n.toml: neuron.lam2: must be a table \(got True\)$"),
    ({"encoder": "stochastic", "clamp": {"a": 1.0}}, None,
     r"^n.toml: neuron.clamp: clamps the sigma_delta encoder's residue: needs encoder = "
     r"'sigma_delta' \(or clamp = false\); encoder is 'stochastic' "
     r"\(got \{'a': 1.0, 'b': 0.0\}\)$"),
    ({"encoder": "sigma_delta", "clamp": {"b": 1.0}}, None,
     r"^n.toml: neuron.clamp.a: is required for clamp$"),
    ({"encoder": "sigma_delta", "clamp": {"a": 0}}, None,
     r"^n.toml: neuron.clamp.a: must lie in \(0, 1e\+20\] \(got 0\)$"),
    ({"encoder": "sigma_delta", "clamp": {"a": 1.0, "b": -1.0}}, None,
     r"^n.toml: neuron.clamp.b: must lie in \[0, 1e\+20\] \(got -1.0\)$"),
    ({"encoder": "sigma_delta", "clamp": {"a": 1.0, "c": 2.0}}, None,
     r"^n.toml: neuron.clamp.c: unknown parameter of clamp \(allowed: a, b\) \(got 2.0\)$"),
    ({"encoder": "sigma_delta", "clamp": 1.5}, None,
     r"^n.toml: neuron.clamp: must be a table \(got 1.5\)$"),
    # the decoder is shared by all senders: they must agree on lam2 as on lam
    (SD_PRED | {"lam2": {"kind": "constant", "value": 0.5}}, {"lam2": False},
     r"^n.toml: population\[1\].neuron.lam2: must equal the second lambda schedule of its "
     r"sender 'input' \(\{'kind': 'constant', 'value': 0.5\}\) \(got False\)$"),
    (SD_PRED, {"lam2": {"kind": "constant", "value": 0.5}},
     r"^n.toml: population\[1\].neuron.lam2: must equal the second lambda schedule of its "
     r"sender 'input' \(False\) \(got \{'kind': 'constant', 'value': 0.5\}\)$"),
])
def test_bad_fields_are_one_line_errors(neuron, pop, pattern):
    msg = bad(neuron, pop)
    assert re.match(pattern, msg), msg


def test_toml_and_hdf5_keep_the_new_fields(tmp_path):
    """Both files give the network back exactly -- also when one population switches a
    field of the [neuron] table off (the writer then says clamp = false)."""
    raw = {"network": {"name": "two", "seed": 4}, "neuron": TWO_POLE,
           "population": [{"name": "input", "size": 3}, {"name": "h", "size": 4},
                          {"name": "h2", "size": 4},
                          {"name": "output", "size": 2, "neuron": {"clamp": False}}],
           "projection": [{"pre": a, "post": b, "weights": {"init": "glorot_uniform", "seed": i}}
                          for i, (a, b) in enumerate([("input", "h"), ("h", "h2"),
                                                      ("h2", "output")])]}
    net = describe.from_dict(raw, path="<test>")
    assert net.populations[3].neuron.clamp is None
    assert net.populations[2].neuron.clamp == (1.466, 229.1)
    assert net.populations[3].neuron.lam2.as_dict() == LAM2
    for suffix in (".toml", ".h5"):
        path = describe.save(net, tmp_path / f"n{suffix}")
        back = describe.load(path)
        assert describe.same(net, back), suffix
        assert [p.neuron for p in back.populations] == [p.neuron for p in net.populations]
    text = (tmp_path / "n.toml").read_text()
    assert "clamp = false" in text and "lam2 = " in text


def test_the_documented_neuron_is_the_converge_scheme():
    """docs/netlist-format.md's two-pole [neuron] example is `neuroemu converge`'s scheme."""
    import tomllib
    from conftest import ROOT
    from neuroemu.learn.converge import SCHEMES
    doc = (ROOT / "docs" / "netlist-format.md").read_text()
    block = [b for b in re.findall(r"```toml\n(.*?)```", doc, re.S) if "lam2 = " in b]
    assert len(block) == 1
    assert tomllib.loads(block[0])["neuron"] == SCHEMES["sd_pred2_osa_clamp"]


def test_energy_counts_both_poles():
    """A two-pole code runs two filters in the wrapper and two in the decoder per step: the
    energy model counts twice the one-pole network's wrapper and decoder steps."""
    from neuroemu.energy.report import estimate_energy
    one = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
           "lam": {"kind": "constant", "value": 0.4}, "eps": {"kind": "constant", "eps0": 0.5}}
    two = {**one, "lam2": {"kind": "constant", "value": 0.7}}
    x = np.random.default_rng(1).random((2, 6))
    c1, c2 = (estimate_energy(make_netlist([6, 5, 3], n, seed=2), "generic-45nm", x=x,
                              steps=10).to_dict()["counts"] for n in (one, two))
    assert c2["predictive_update"] == 2 * c1["predictive_update"] > 0
    assert c2["decoder_update"] == 2 * c1["decoder_update"] > 0
