"""Traces that SONATA readers open: the /spikes datasets use only filters every HDF5 build has
(libsonata's wheels carry an HDF5 without deflate), libsonata reads a trace of each engine with
the same spikes as h5py and neuroemu's reader, and packed timestamps read back bit for bit."""

import h5py
import numpy as np
import pytest

from neuroemu import describe, engines, record
from neuroemu.engines import Phase, asyncbus
from neuroemu.engines import compiled as compiler
from neuroemu.errors import EngineError
from neuroemu.record.layout import SONATA_FILTERS

from conftest import NETLISTS

libsonata = pytest.importorskip("libsonata", reason="the test extra installs libsonata")

# HDF5 filter ids (H5Zpublic.h) by the names SONATA_FILTERS uses
FILTER_NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit",
                6: "scaleoffset"}
JITTER = {"cluster_size": 2, "quanta": 100, "clock": {"jitter": 30, "phase": 20}}


def filters(ds) -> set:
    plist = ds.id.get_create_plist()
    return {FILTER_NAMES.get(plist.get_filter(k)[0], str(plist.get_filter(k)[0]))
            for k in range(plist.get_nfilters())}


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """A lockstep trace of the 784-500-10 network (2 samples, 60 steps, many chunks) and a
    bus-engine trace with jittered, phase-shifted clusters (sub-tick, unsorted times)."""
    d = tmp_path_factory.mktemp("sonata")
    cn = compiler.build(describe.load(NETLISTS / "mnist-binary.toml"))
    x = np.random.default_rng(5).random((2, 784))
    sess = engines.session(cn, x, seed=2)
    with record.TraceWriter.for_session(d / "lockstep.h5", sess, chunk=1024,
                                        probes={"hidden": [0, 1]}) as w:
        for _ in range(3):
            w.append(sess.run(20, record_spikes=True, record_states=True, record_extra=True))
    tiny = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    xa = np.random.default_rng(3).random((2, 4))
    bus = engines.session(tiny, xa, engine="async", hardware=JITTER, seed=4)
    with record.TraceWriter.for_session(d / "async.h5", bus, dt=0.5, chunk=16) as w:
        for _ in range(2):
            w.append(bus.run(40, record_spikes=True))
    return {"lockstep": (d / "lockstep.h5", cn, sess), "async": (d / "async.h5", tiny, bus)}


def engine_spikes(net, sess, pop_sample, layer, dt):
    """(times, node ids) of one layer of one sample from the session's own records, in the
    writer's order (by step, then neuron)."""
    l = net.layer(layer)
    ts, ids = [], []
    for ph in sess.phases:
        r, j = np.nonzero(ph.spikes[:, pop_sample, net.off[l]:net.off[l + 1]])
        if getattr(ph, "tick_times", None) is not None:
            ts.append(asyncbus.spike_times(ph)[r, pop_sample, net.off[l] + j] * dt)
        else:
            ts.append((ph.t_start + r + 1) * dt)
        ids.append(j)
    return np.concatenate(ts).astype(np.float64), np.concatenate(ids).astype(np.uint64)


def test_spike_datasets_use_only_filters_every_hdf5_build_has(traces):
    for name, (path, _, _) in traces.items():
        with h5py.File(path) as f:
            for pop in f["spikes"]:
                for ds in ("timestamps", "node_ids"):
                    used = filters(f[f"spikes/{pop}/{ds}"])
                    assert "fletcher32" in used and used <= SONATA_FILTERS, (name, pop, ds, used)
            if name == "lockstep":   # only neuroemu reads /neuroemu: deflate stays there
                assert "deflate" in filters(f["neuroemu/probes/hidden/s"])
                assert "scaleoffset" in filters(f["spikes/hidden.0/timestamps"])
            else:                    # sub-tick times are stored as they are
                assert filters(f["spikes/hidden.0/timestamps"]) == {"fletcher32"}


@pytest.mark.parametrize("engine", ["lockstep", "async"])
def test_libsonata_reads_what_h5py_and_neuroemu_read(traces, engine):
    path, net, sess = traces[engine]
    dt = 0.5 if engine == "async" else 1.0
    reader = libsonata.SpikeReader(str(path))
    with record.open(path) as t, h5py.File(path) as f:
        assert sorted(reader.get_population_names()) == sorted(t.populations)
        for pop in t.populations:
            inf = t.info(pop)
            want_t, want_ids = engine_spikes(net, sess, inf["sample"], inf["layer"], dt)
            sp = reader[pop]
            assert sp.sorting == ("none" if engine == "async" else "by_time")
            assert sp.time_units == "ms"
            got = sp.get_dict()
            assert got["node_ids"].dtype == np.uint64 and got["timestamps"].dtype == np.float64
            # the same spikes, in the same order, bit for bit, from every reader
            for ts, ids in (
                    (got["timestamps"], got["node_ids"]),
                    (f[f"spikes/{pop}/timestamps"][()], f[f"spikes/{pop}/node_ids"][()]),
                    t.spikes(pop, as_time=True)):
                assert np.array_equal(bits(ts), bits(want_t)), pop
                assert np.array_equal(ids, want_ids), pop
            assert inf["spikes"] == len(want_ids) == len(sp.get())
            assert len(want_ids) > 0 or inf["layer"] == "output"
        times = np.concatenate([reader[p].get_dict()["timestamps"] for p in t.populations])
        if engine == "async":   # sub-tick, and out of order within a population
            assert np.any(times / dt != np.round(times / dt))
            assert any(np.any(np.diff(reader[p].get_dict()["timestamps"]) < 0)
                       for p in t.populations)
        else:
            assert np.array_equal(times, np.round(times)) and len(times) > 20000


def test_packed_timestamps_are_exact_at_large_times_and_integer_dt(tmp_path):
    """Scale-offset rounds to whole numbers: exact for whole-ms times however large."""
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    B, R, t0 = 1, 30, 2**45
    z = {"spikes": np.zeros((B, 3), np.int64), "syn_events": np.zeros((B, 2, 2), np.int64),
         "updates": np.zeros((B, 3, 2), np.int64)}
    spikes = np.random.default_rng(0).random((R, B, cn.n_neurons)) < 0.4
    with record.TraceWriter(tmp_path / "big.h5", cn, batch=B, dt=3.0, t_start=t0,
                            chunk=8) as w:
        w.append(Phase("free", t0, R, 0.0, 1, z, spikes=spikes))
    with h5py.File(tmp_path / "big.h5") as f:
        assert "scaleoffset" in filters(f["spikes/hidden/timestamps"])
        r, _ = np.nonzero(spikes[:, 0, cn.off[1]:cn.off[2]])
        want = (t0 + 1 + r) * 3.0
        assert np.array_equal(bits(f["spikes/hidden/timestamps"][()]), bits(want))
        assert want[0] % 2 ** 12 != 0     # not a coincidence of round numbers
    sp = libsonata.SpikeReader(str(tmp_path / "big.h5"))["hidden"]
    assert np.array_equal(bits(sp.get_dict()["timestamps"]), bits(want))


def test_fractional_dt_and_sub_tick_times_are_stored_unpacked(tmp_path):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    res = engines.run(cn, np.full((1, 4), 0.6), 20, seed=1, record_spikes=True)
    record.write(tmp_path / "f.h5", cn, res, dt=0.1)
    with h5py.File(tmp_path / "f.h5") as f:
        ts = f["spikes/hidden/timestamps"]
        assert filters(ts) == {"fletcher32"}
        r, _ = np.nonzero(res.spikes()[:, 0, cn.off[1]:cn.off[2]])
        assert np.array_equal(bits(ts[()]), bits((r + 1) * 0.1))   # 0.30000000000000004 too


def test_a_packed_trace_refuses_sub_tick_times(tmp_path):
    """A writer told nothing about sub-tick times packs them: it must fail, not round them."""
    net = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    sess = engines.session(net, np.full((1, 4), 0.7), engine="async", hardware=JITTER, seed=1)
    with pytest.raises(EngineError, match=r"phase 'free': spike time \d+\.\d+ ms is not a whole "
                                          r"number of ms, .*TraceWriter\(sub_tick=True\)"):
        with record.TraceWriter(tmp_path / "p.h5", net, x=sess.x, time_sorted=False) as w:
            w.append(sess.run(20, name="free", record_spikes=True))


def test_reader_reads_traces_with_deflated_timestamps(tmp_path, monkeypatch):
    """Traces written before this layout deflated their timestamps: still readable."""
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    res = engines.run(cn, np.full((1, 4), 0.6), 25, seed=1, record_spikes=True)
    old = dict(compression="gzip", compression_opts=1, fletcher32=True)
    new = record.writer.spike_filters
    monkeypatch.setattr(record.writer, "spike_filters",
                        lambda kind: old if kind != "node_ids" else new(kind))
    record.write(tmp_path / "old.h5", cn, res)
    with h5py.File(tmp_path / "old.h5") as f:
        assert "deflate" in filters(f["spikes/hidden/timestamps"])
    with record.open(tmp_path / "old.h5") as t:
        steps, ids = t.spikes("hidden")
        r, j = np.nonzero(res.spikes()[:, 0, cn.off[1]:cn.off[2]])
        assert np.array_equal(steps, r + 1) and np.array_equal(ids, j)


def test_reader_windows_of_a_drifting_bus_trace(tmp_path):
    """Bus-engine clocks drift: a spike of step k may carry a time far from k * dt.  A window
    left open keeps every spike; a closed one selects by time, not by row position."""
    net = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    hw = {"quanta": 100, "cluster_size": 1, "clock": {"drift": 20, "jitter": 5, "phase": 40}}
    sess = engines.session(net, np.full((1, 4), 0.8), engine="async", hardware=hw, seed=3)
    with record.TraceWriter.for_session(tmp_path / "d.h5", sess) as w:
        w.append(sess.run(60, record_spikes=True))
    ph = sess.phases[0]
    want = asyncbus.spike_times(ph)[:, 0][ph.spikes[:, 0]]
    with record.open(tmp_path / "d.h5") as t:
        every = np.concatenate([t.spikes(p, as_time=True)[0] for p in t.populations])
        assert np.array_equal(np.sort(every), np.sort(want))
        assert every.max() > 60.5          # drift took some spikes past the last step
        assert sum(t.info(p)["spikes"] for p in t.populations) == len(want)
        win = np.concatenate([t.spikes(p, 20, 40, as_time=True)[0] for p in t.populations])
        assert np.array_equal(np.sort(win), np.sort(want[(want >= 19.5) & (want < 39.5)]))
