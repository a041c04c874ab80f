"""Fixed-point arithmetic ([hardware.arithmetic], docs/arithmetic.md) against the integer
reference (tests/reference_fixed.py), and its checks."""

import numpy as np
import pytest

import reference_fixed as rf
from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import fixedpoint
from neuroemu.errors import CompileError, NetlistError

SD_PRED_OSA = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.275},
               "eps": {"kind": "osa", "nu_bar": 0.0346}}
CONTINUOUS = {"encoder": "none", "eps": {"kind": "constant", "eps0": 0.5}}


def arith(**kw):
    return {"hardware": {"arithmetic": kw}}


def run_both(net, x, steps, bits, message_bits=8, acc=32, free=None, beta=0.5, y=None,
             threads=1):
    f = steps if free is None else free
    sess = engines.session(build(net), x, seed=7, threads=threads)
    ph = [sess.run(f, record_spikes=True, record_states=True)]
    if f < steps:
        ph.append(sess.run(steps - f, beta=beta, target=y, record_spikes=True,
                           record_states=True))
    spikes = np.concatenate([p.spikes for p in ph])
    states = np.concatenate([p.states for p in ph])
    rq, rs = [], []
    for b in range(x.shape[0]):
        r = rf.FixedNetwork(net, x[b], int(sess.seeds[b]), bits, message_bits, acc)
        qs, ss = [], []
        for t in range(1, steps + 1):
            nudge = t > f
            qs.append(r.step(beta if nudge else 0.0, y[b] if nudge else None))
            ss.append(np.concatenate([np.zeros(len(x[b]))] + r.s[1:]))
        rq.append(qs)
        rs.append(ss)
    return sess, spikes, states, np.array(rq).transpose(1, 0, 2), np.array(rs).transpose(1, 0, 2)


@pytest.mark.parametrize("bits,acc", [(8, 32), (4, 32), (8, 9), (16, 32)])
def test_spiking_chain_matches_integer_reference(bits, acc):
    """Spikes and states bit for bit, free and nudged, with the summed input saturating
    (9-bit accumulator) or not."""
    net = make_netlist([12, 9, 6, 3], SD_PRED_OSA, seed=3, bias=0.05, gain=2.0,
                       extra=arith(weight_bits=bits, accumulator_bits=acc))
    rng = np.random.default_rng(1)
    x = rng.random((3, 12))
    y = np.eye(3)[[0, 2, 1]]
    sess, spikes, states, rq, rs = run_both(net, x, 60, [bits] * 3, acc=acc, free=40, y=y)
    assert spikes.any()
    assert np.array_equal(spikes, rq != 0)
    assert np.array_equal(states[:, :, 12:], rs[:, :, 12:])


def test_saturation_binds_and_changes_the_run():
    """With a 9-bit accumulator the summed input does saturate in this network, so the
    test above exercises it; the same network at 32 bits runs differently."""
    extra = arith(weight_bits=8, accumulator_bits=9)
    net = make_netlist([12, 9, 6, 3], SD_PRED_OSA, seed=3, bias=0.05, gain=2.0, extra=extra)
    x = np.random.default_rng(1).random((3, 12))
    r = rf.FixedNetwork(net, x[0], 7, [8, 8, 8], 8, 9)
    hit = False
    for _ in range(40):
        r.step()
        for l in (1, 2, 3):
            qexp = min(r.e[l - 1], r.e[l] if l < 3 else r.e[l - 1])
            hit |= bool(np.any(np.abs(r.drive(l)) >= 255 * 2.0 ** qexp))
    assert hit
    wide = make_netlist([12, 9, 6, 3], SD_PRED_OSA, seed=3, bias=0.05, gain=2.0,
                        extra=arith(weight_bits=8, accumulator_bits=32))
    a = engines.session(build(net), x, seed=7).run(40, record_states=True).states
    b = engines.session(build(wide), x, seed=7).run(40, record_states=True).states
    assert not np.array_equal(a, b)


def test_real_valued_messages_match_integer_reference():
    net = make_netlist([10, 7, 3], CONTINUOUS, seed=5, bias=0.1, gain=1.5,
                       extra=arith(weight_bits=6, message_bits=4))
    x = np.random.default_rng(2).random((2, 10))
    y = np.eye(3)[[1, 2]]
    sess, spikes, states, rq, rs = run_both(net, x, 30, [6, 6], message_bits=4, free=20, y=y)
    assert np.array_equal(states[:, :, 10:], rs[:, :, 10:])
    # messages on the 1/16 grid
    q = sess.q[:, :]
    assert np.array_equal(q * 16, np.rint(q * 16))


@pytest.mark.parametrize("neuron,table", [
    (SD_PRED_OSA, dict(weight_bits=8)),
    ({**SD_PRED_OSA, "eps": {"kind": "constant", "eps0": 0.4}},     # integer neurons too
     dict(weight_bits=8, state_bits=10, step_bits=9))])
def test_threads_and_engines_agree(neuron, table):
    """Integer sums do not depend on order: two threads, and the bus engine with ideal
    timing, give the lockstep engine's bits (with integer neurons as well)."""
    net = make_netlist([12, 9, 3], neuron, seed=4, gain=2.0, extra=arith(**table))
    x = np.random.default_rng(3).random((4, 12))
    one = engines.session(build(net), x, seed=7).run(30, record_states=True).states
    two = engines.session(build(net), x, seed=7, threads=2).run(30, record_states=True).states
    bus = engines.session(build(net), x, seed=7, engine="async").run(30, record_states=True)
    assert np.array_equal(one, two)
    assert np.array_equal(one, bus.states)


def test_float_networks_are_unchanged_and_weights_on_grid():
    net = make_netlist([12, 9, 3], SD_PRED_OSA, seed=4, gain=2.0)
    assert build(net).fixed is None
    q = fixedpoint.to_fixed(net, 8)
    cn = build(q)
    for p, pr in enumerate(net.projections):
        e = rf.exponent(pr.weights, 8)
        assert cn.fixed.exponents[p] == e
        m = np.array([[rf.mantissa(v, e, 8) for v in row] for row in pr.weights])
        assert np.array_equal(cn.weights(p), (m * 2.0 ** e).astype(np.float32))
        assert np.array_equal(q.projections[p].weights, m * 2.0 ** e)
        top = np.abs(pr.weights).max()           # e is the smallest exponent that fits
        assert top <= 127 * 2.0 ** e and top > 127 * 2.0 ** (e - 1)
        assert 64 <= np.abs(m).max() <= 127
    again = fixedpoint.to_fixed(q, 8)
    assert describe.same(again, q)


@pytest.mark.parametrize("table,field,rule", [
    ({"weight_bits": 1}, "hardware.arithmetic.weight_bits", "must lie in [2, 16]"),
    ({"weight_bits": 8, "accumulator_bits": 40}, "hardware.arithmetic.accumulator_bits",
     "must lie in [8, 32]"),
    ({"weight_bits": 8.0}, "hardware.arithmetic.weight_bits", "must be an integer"),
    ({"weight_bits": 8, "rounding": "up"}, "hardware.arithmetic.rounding", "unknown key"),
    ({"message_bits": 8}, "hardware.arithmetic.weight_bits",
     "is required (the fixed-point setting starts with it; the table's keys are) (got ['message_bits'])"),
    ({"weight_bits": 8, "weight_exponent": "Auto"}, "hardware.arithmetic.weight_exponent",
     'must be "auto" or an integer'),
    ({"weight_bits": 8, "weight_exponent": 61}, "hardware.arithmetic.weight_exponent",
     "must lie in [-60, 60]"),
    ({"weight_bits": 8, "projection": {"nope": {"weight_bits": 4}}},
     "hardware.arithmetic.projection.nope", "must name a projection"),
    ({"weight_bits": 8, "projection": {"h1->output": {"bits": 4}}},
     "hardware.arithmetic.projection.h1->output.bits", "unknown key"),
])
def test_bad_tables_give_one_line(table, field, rule):
    with pytest.raises(NetlistError) as e:
        make_netlist([5, 4, 3], SD_PRED_OSA, extra={"hardware": {"arithmetic": table}})
    msg = str(e.value)
    assert "\n" not in msg and f"<test>: {field}: {rule}" in msg


def test_per_projection_format():
    extra = arith(weight_bits=8, projection={"h1->output": {"weight_bits": 4,
                                                             "weight_exponent": -3}})
    net = make_netlist([6, 5, 3], SD_PRED_OSA, seed=2, gain=2.0, extra=extra)
    cn = build(net)
    assert list(cn.fixed.exponents) == [rf.exponent(net.projections[0].weights, 8), -3]
    m = cn.weights(1) * 8
    assert np.array_equal(m, np.rint(m)) and np.abs(m).max() <= 7


def test_sums_that_could_leave_float32_are_refused():
    net = make_netlist([1100, 4, 3], SD_PRED_OSA, extra=arith(weight_bits=16))
    with pytest.raises(CompileError, match=r"population 'h1' can reach .* over the 2\*\*24"):
        build(net)


def test_real_valued_predictive_senders_are_refused():
    neuron = {**CONTINUOUS, "predictive": True, "decoder": "predictive",
              "lam": {"kind": "constant", "value": 0.5}}
    net = make_netlist([5, 4, 3], neuron, extra=arith(weight_bits=8))
    with pytest.raises(CompileError, match="cannot use predictive coding"):
        build(net)


def test_training_keeps_float_masters_and_runs_on_the_grid():
    """Quantisation-aware EP: the trainer's float64 masters move by the EP rule, the network
    runs with their quantisation (exponents re-planned), and training still learns."""
    from neuroemu.learn.eqprop import Hyper, Trainer
    rng = np.random.default_rng(0)
    protos = rng.uniform(0, 1, (4, 16))
    labels = rng.integers(0, 4, 200)
    x = np.clip(protos[labels] + rng.normal(0, 0.15, (200, 16)), 0, 1)
    y = np.eye(4)[labels]
    net = build(make_netlist((16, 12, 4), SD_PRED_OSA, seed=4, extra=arith(weight_bits=6)))
    tr = Trainer(net, Hyper.for_network(net, batch=10), seed=0)

    def loss():
        _, out, _ = tr.predict(x)
        return float(((y - out) ** 2).sum(1).mean())

    loss0 = loss()
    for k in range(60):
        i = (k * 10) % 200
        tr.train_batch(x[i:i + 10], y[i:i + 10])
        if k % 20 == 0:
            for p in range(2):
                e = rf.exponent(tr.W[p], 6)
                m = np.array([[rf.mantissa(v, e, 6) for v in row] for row in tr.W[p]])
                assert np.array_equal(net.weights(p), (m * 2.0 ** e).astype(np.float32))
                assert not np.array_equal(tr.W[p], m * 2.0 ** e)     # masters stay float
    assert loss() < 0.5 * loss0


@pytest.mark.parametrize("threads", [1, 2])
def test_int8_path_equals_the_float32_path(threads):
    """Chain layers with spiking senders and 8-bit weights on one quantum sum int8
    mantissas in int16 blocks; the float32 path on the same grid gives the same bits (both
    are the exact integer sum).  More than 256 senders spike, so the blocks roll over."""
    net = make_netlist([600, 40, 10], SD_PRED_OSA, seed=6, gain=1.0,
                       extra=arith(weight_bits=8, weight_exponent=-9))
    x = np.random.default_rng(4).uniform(0.6, 1.0, (3, 600))
    fast = build(net)
    assert list(fast.lp[:, engines.kernels.LP_FAST]) == [0.0, 1.0, 1.0]
    slow = build(net)
    slow.lp[:, engines.kernels.LP_FAST] = 0.0
    a = engines.session(fast, x, seed=7, threads=threads).run(40, record_states=True,
                                                              record_spikes=True)
    b = engines.session(slow, x, seed=7, threads=threads).run(40, record_states=True,
                                                              record_spikes=True)
    assert a.spikes[:, :, :600].sum(axis=2).max() > 256
    assert np.array_equal(a.states, b.states) and np.array_equal(a.spikes, b.spikes)
    r = rf.FixedNetwork(net, x[1], int(engines.session(fast, x, seed=7).seeds[1]), [8, 8],
                        exponents=[-9, -9])
    for _ in range(40):
        r.step()
    assert np.array_equal(a.states[-1, 1, 600:], np.concatenate(r.s[1:]))


def test_energy_reads_the_widths(tmp_path):
    """Real-valued messages carry message_bits of payload; on a profile that says its
    synaptic op reads a 32-bit weight, an 8-bit weight reads a quarter of a word."""
    from neuroemu.energy import hardware as hw
    from neuroemu.energy.report import estimate_energy, make_setup
    net = make_netlist([10, 7, 3], CONTINUOUS, seed=5, gain=1.5,
                       extra=arith(weight_bits=8, message_bits=6))
    prof = hw.load_profile("generic-45nm")
    setup = make_setup(net)
    fixed, info = hw.for_arithmetic(prof, setup.arithmetic)
    read = prof.memory["sram_read_pj"]
    assert fixed.pj("synaptic_op") == pytest.approx(prof.pj("synaptic_op") - 0.75 * read)
    assert fixed.pj("synaptic_mac") == pytest.approx(prof.pj("synaptic_mac") - 0.75 * read)
    assert fixed.word_bits == 6 and info["weight_bits"] == 8
    x = np.random.default_rng(2).random((2, 10))
    rep = estimate_energy(net, "generic-45nm", x=x, steps=5).to_dict()
    assert rep["packet_bits"]["word"] == hw.packet_bits(setup.placement, prof, False) + 6
    assert rep["arithmetic"]["message_bits"] == 6
    float_net = make_netlist([10, 7, 3], CONTINUOUS, seed=5, gain=1.5)
    assert make_setup(float_net).arithmetic is None
    assert hw.for_arithmetic(prof, None) == (prof, None)


def test_trained_toml_keeps_the_arithmetic(tmp_path):
    from neuroemu.learn.eqprop import save_netlist
    net = fixedpoint.to_fixed(make_netlist([6, 5, 3], SD_PRED_OSA, seed=2), 6, message_bits=5)
    back = describe.load(save_netlist(build(net), tmp_path / "t.toml"))
    assert back.hardware == net.hardware
    assert build(back).fixed is not None
    assert all(np.array_equal(a.weights, b.weights)
               for a, b in zip(back.projections, net.projections))


def test_refusals_name_where_the_widths_came_from(tmp_path, capsys):
    from neuroemu.cli import main
    with pytest.raises(NetlistError, match=r"^to_fixed\(\): hardware.arithmetic.weight_bits: "
                                           r"must lie in \[2, 16\] \(got 17\)$"):
        fixedpoint.to_fixed(make_netlist([5, 4, 3], SD_PRED_OSA), 17)
    # 784 real-valued senders at 8-bit weights and 8-bit messages: over 2**24; the hint fits
    wide = make_netlist([784, 4, 3], CONTINUOUS)
    with pytest.raises(CompileError, match=r"try weight_bits <= 7 or message_bits <= 7\)$"):
        fixedpoint.to_fixed(wide, 8)
    bound = build(fixedpoint.to_fixed(wide, 8, message_bits=7)).fixed.bound[1]
    assert 784 * 127 * 127 < bound < 2 ** 24       # the inputs, plus the outputs' feedback
    src = tmp_path / "wide.toml"
    describe.save(wide, src)
    assert main(["convert", str(src), str(tmp_path / "w.h5"), "--weight-bits", "8"]) == 2
    err = capsys.readouterr().err
    assert f"{src} with --weight-bits 8 --message-bits 8 --accumulator-bits 32:" in err
    # validate compiles, so it refuses what run would
    bad = tmp_path / "bad.toml"
    describe.save(make_netlist([784, 4, 3], CONTINUOUS, extra=arith(weight_bits=8)), bad)
    assert main(["validate", str(bad)]) == 2
    assert "over the 2**24" in capsys.readouterr().err


def test_graph_network_with_convolutions_and_pools():
    """A graph with strided/padded convolutions, an average pool (weight 1/4 = 2**-2 exactly)
    and a one-way skip, at 6 bits: the engine equals the graph reference run on the grid
    weights, and every weight sits on its projection's grid."""
    import test_graph_reference as tg
    net = fixedpoint.to_fixed(describe.from_dict(tg.conv_net(), path="<conv>"), 6)
    cn = build(net)
    assert cn.graph and cn.fixed.formats[1] is None and cn.fixed.exponents[1] == -2
    for p, pr in enumerate(net.projections):
        if cn.fixed.formats[p] is not None:
            m = pr.weights / 2.0 ** int(cn.fixed.exponents[p])
            assert np.array_equal(m, np.rint(m)) and np.abs(m).max() <= 31
    x = np.random.default_rng(3).uniform(0, 1, (1, 49))
    sess = engines.session(cn, x, seed=5)
    states = sess.run(25, record_states=True).states[:, 0]
    _, ref_states, _ = tg.reference_run(net, x[0], 25, int(sess.seeds[0]))
    assert np.array_equal(states, ref_states) and states.any()
    raw = tg.network([tg.pop("img", "input", shape=(1, 6, 6)), tg.pop("p", shape=(1, 2, 2)),
                      tg.pop("out", "output", size=2)],
                     [tg.proj("img", "p", kind="avgpool2d", kernel_size=3),
                      tg.proj("p", "out", np.full((4, 2), 0.1))], neuron=tg.SD)
    raw.update(arith(weight_bits=8))
    with pytest.raises(CompileError, match="powers of two"):    # a pool of 1/9: no grid
        build(describe.from_dict(raw, path="<pool>"))
