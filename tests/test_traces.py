"""HDF5 spike traces: exact round trips against the engine's own records, the SONATA layout
read with plain h5py, streaming in whole chunks, and every failure the reader promises to catch
(truncation, flipped bytes, foreign and newer files, a writer killed with SIGKILL)."""

import json
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from neuroemu import cli

from neuroemu import engines

from neuroemu import describe

from neuroemu import record
from neuroemu.engines import compiled as compiler
from neuroemu.errors import EngineError, TraceError

from conftest import NETLISTS, ROOT


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny network, 3 samples, free 20 + 20 steps then nudged 20 steps, all recorded."""
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    x = np.random.default_rng(3).random((3, 4))
    sess = engines.session(cn, x, seed=5)
    path = tmp_path_factory.mktemp("tr") / "tiny.h5"
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    with record.TraceWriter.for_session(path, sess, dt=0.5, probes={"hidden": [0, 2],
                                                                    "input": None},
                                        probe_every=3, chunk=16) as w:
        for k in range(2):
            w.append(sess.run(20, name="free", **rec))
        w.append(sess.run(20, beta=0.5, target=np.eye(2)[[0, 1, 1]], name="nudged", **rec))
    return cn, x, sess, path


def reference_spikes(phases, b, lo, hi):
    """(step, neuron) pairs of one sample and layer, by an explicit loop over the records."""
    out = []
    for ph in phases:
        for r in range(ph.steps):
            for j in range(lo, hi):
                if ph.spikes[r, b, j]:
                    out.append((ph.t_start + r + 1, j - lo))
    return out


def test_spikes_round_trip_exactly(tiny_run):
    cn, x, sess, path = tiny_run
    with record.open(path) as t:
        assert t.complete and t.t_end == 60 and t.dt == 0.5
        assert t.populations == [f"{n}.{b}" for b in range(3) for n in cn.names]
        for pop in t.populations:
            inf = t.info(pop)
            l = cn.names.index(inf["layer"])
            ref = reference_spikes(sess.phases, inf["sample"], cn.off[l], cn.off[l + 1])
            steps, ids = t.spikes(pop)
            assert list(zip(steps.tolist(), ids.tolist())) == ref
            assert steps.dtype == np.int64 and ids.dtype == np.uint64
            ts, _ = t.spikes(pop, as_time=True)
            assert ts.tolist() == [s * 0.5 for s, _ in ref]
            assert inf["spikes"] == len(ref)
            w = t.spikes(pop, 17, 44)[0].tolist()
            assert w == [s for s, _ in ref if 17 <= s < 44]
            counts = np.bincount([i for _, i in ref], minlength=cn.sizes[l])
            assert t.rates(pop).tolist() == (counts / 60).tolist()
            assert np.allclose(t.rates(pop, hz=True), counts / 60 * 2000)


def test_counters_blocks_states_and_provenance(tiny_run):
    cn, x, sess, path = tiny_run
    with record.open(path) as t:
        c = t.counters()
        want = sess.counters()
        assert set(c) == set(want) and all(np.array_equal(c[k], want[k]) for k in c)
        assert t.counters_step == 60
        for pop in t.populations:    # the counters agree with the spikes in the file
            inf = t.info(pop)
            assert c["spikes"][inf["sample"], cn.names.index(inf["layer"])] == inf["spikes"]
        blocks = t.blocks()
        assert blocks["t_start"].tolist() == [0, 20, 40] and blocks["beta"].tolist() == [0, 0, .5]
        assert [p.decode() for p in blocks["phase"]] == ["free", "free", "nudged"]
        steps, s = t.states("hidden", "s")
        assert steps.tolist() == list(range(3, 61, 3))
        states = np.concatenate([p.states for p in sess.phases])
        extra = np.concatenate([p.extra for p in sess.phases])
        for r, step in enumerate(steps):
            for b in range(3):
                for k, j in enumerate([0, 2]):
                    assert s[r, b, k] == states[step - 1, b, cn.off[1] + j]
        _, phi = t.states("hidden", "phi", 10, 31)
        assert phi.shape == (7, 3, 2)
        assert np.array_equal(phi[:, :, 1], extra[np.arange(12, 31, 3) - 1, :, 2, cn.off[1] + 2])
        _, s_in = t.states("input", "s")
        assert np.array_equal(s_in, np.broadcast_to(x, s_in.shape))   # the clamped input
        assert np.array_equal(t.input, x)
        prov = t.provenance
        assert prov["seed"] == 5 and prov["engine"] == "lockstep"
        assert prov["netlist"]["name"] == "tiny" and prov["h5py"] == h5py.__version__
        back = t.netlist()
        assert back.projections[0].weights.tolist() == cn.weights(0).astype(float).tolist()
        assert t.netlist_text == (NETLISTS / "tiny.toml").read_text()
        with pytest.raises(TraceError, match=r"no probes for population 'output'"):
            t.states("output")
        with pytest.raises(TraceError, match=r"no population 'hidden' \(have: input\.0"):
            t.spikes("hidden")


def test_one_recorded_sample_uses_the_layer_names(tmp_path):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    x = np.random.default_rng(0).random((3, 4))
    res = engines.run(cn, x, 30, seed=2, record_spikes=True)
    record.write(tmp_path / "s.h5", cn, res, x=x, samples=[2])
    with h5py.File(tmp_path / "s.h5") as f:
        assert sorted(f["spikes"]) == ["hidden", "input", "output"]
        assert int(f["spikes/hidden"].attrs["sample"]) == 2
        ids = f["spikes/hidden/node_ids"][()]
        steps = f["spikes/hidden/timestamps"][()]
    r, i = np.nonzero(res.spikes()[:, 2, cn.off[1]:cn.off[2]])
    assert np.array_equal(steps, r + 1.0) and np.array_equal(ids, i)


def test_cli_trace_of_784_500_10_reads_with_plain_h5py(tmp_path):
    x = np.random.default_rng(11).random(784)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "traces" / "mnist.h5"
    assert cli.main(["run", str(NETLISTS / "mnist-binary.toml"), "--steps", "60", "--input",
                     str(tmp_path / "x.npy"), "--seed", "4", "--trace", str(out)]) == 0
    cn = compiler.build(describe.load(NETLISTS / "mnist-binary.toml"))
    ref = engines.run(cn, x, 60, seed=4, record_spikes=True).spikes()
    # the example of docs/trace-format.md
    with h5py.File(out, "r") as f:
        for pop in f["spikes"]:
            t = f[f"spikes/{pop}/timestamps"][:]          # ms (attribute units)
            ids = f[f"spikes/{pop}/node_ids"][:]           # neuron index within the layer
            dt = f["neuroemu"].attrs["dt"]                  # ms per step
            l = cn.names.index(pop)
            r, i = np.nonzero(ref[:, 0, cn.off[l]:cn.off[l + 1]])
            assert np.array_equal(np.rint(t / dt), r + 1) and np.array_equal(ids, i), pop
        assert f.attrs["magic"] == 0x0A7A and f.attrs["magic"].dtype == np.uint32
        assert f.attrs["version"].tolist() == [0, 1]
        g = f["spikes/hidden"]
        assert h5py.check_enum_dtype(g.attrs.get_id("sorting").dtype) == {
            "none": 0, "by_id": 1, "by_time": 2} and g.attrs["sorting"] == 2
        assert g["timestamps"].dtype == np.float64 and g["node_ids"].dtype == np.uint64
        assert g["timestamps"].attrs["units"].decode() == "ms"
        assert g["timestamps"].compression is None and g["timestamps"].fletcher32
        assert f["neuroemu/progress"][-1]["complete"] == 1


@pytest.mark.parametrize("every", [1, 7])
def test_cli_probes_every_k_steps_match_the_engine(tmp_path, every):
    out = tmp_path / "p.h5"
    assert cli.main(["run", str(NETLISTS / "tiny.toml"), "--steps", "50", "--batch", "2",
                     "--seed", "3", "--trace", str(out), "--probe", "hidden:0,2",
                     "--probe-every", str(every)]) == 0
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    x = np.random.default_rng(3).random((2, 4))          # neuroemu run's default input
    ref = engines.run(cn, x, 50, seed=3, record_spikes=True, record_states=True,
                     record_extra=True).phases[0]
    cols = cn.off[1] + np.array([0, 2])
    with record.open(out) as t:
        steps, s = t.states("hidden", "s")
        assert steps.tolist() == list(range(every, 51, every))
        assert np.array_equal(s, ref.states[steps - 1][:, :, cols])
        for k, var in ((0, "v"), (1, "eps"), (2, "phi")):
            assert np.array_equal(t.states("hidden", var)[1], ref.extra[steps - 1][:, :, k, cols])
        for pop in t.populations:
            inf = t.info(pop)
            l = cn.names.index(inf["layer"])
            r, i = np.nonzero(ref.spikes[:, inf["sample"], cn.off[l]:cn.off[l + 1]])
            got = t.spikes(pop)
            assert np.array_equal(got[0], r + 1) and np.array_equal(got[1], i)


def _datasets(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     else None)
    return out


def test_same_seed_and_settings_give_identical_datasets(tmp_path):
    args = ["run", str(NETLISTS / "tiny.toml"), "--steps", "40", "--batch", "2",
            "--probe", "hidden", "--probe-every", "4"]
    for name in ("a", "b", "c"):
        seed = "9" if name != "c" else "10"
        assert cli.main(args + ["--seed", seed, "--trace", str(tmp_path / f"{name}.h5")]) == 0
    a, b, c = (_datasets(tmp_path / f"{n}.h5") for n in "abc")
    assert a.keys() == b.keys() and len(a) > 20
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)     # the check can fail


def test_appender_writes_whole_chunks_only(tmp_path):
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        d = f.create_dataset("d", (0,), maxshape=(None,), chunks=(10,), dtype=np.int64)
        a = record.writer._Appender(d)
        parts = [np.arange(k, k + n) for k, n in enumerate(rng.integers(0, 25, 40))]
        for k, p in enumerate(parts):
            a.append(p)
            assert d.shape[0] % 10 == 0 and a.n < 10
            assert d.shape[0] + a.n == sum(len(q) for q in parts[:k + 1])
        a.finish()
        assert d[()].tolist() == np.concatenate(parts).tolist()


def _everything(path):
    """All that the reader offers, for comparing a damaged copy with the original."""
    with record.open(path) as t:
        out = {"meta": (t.populations, t.complete, t.t_end, t.samples, t.layers, t.sizes),
               "c": t.counters(), "b": t.blocks(), "x": t.input, "prov": t.provenance,
               "text": t.netlist_text}
        for pop in t.populations:
            out[pop] = t.spikes(pop, as_time=True)
        for layer, pr in t.probes.items():
            out[layer] = (pr["node_ids"], [t.states(layer, v) for v in pr["vars"]])
        n = t.netlist()
        out["net"] = ([p.weights for p in n.projections], [p.bias for p in n.populations],
                      [p.neuron for p in n.populations], n.name, n.seed)
    return out


def _equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def test_flipped_bytes_never_read_back_wrong(tiny_run, tmp_path):
    path = tiny_run[3]
    ref, data = _everything(path), path.read_bytes()
    positions = set(range(0, len(data), max(1, len(data) // 97)))
    with h5py.File(path) as f:       # and one byte inside every stored chunk of spikes
        for pop in f["spikes"]:
            d = f[f"spikes/{pop}/node_ids"]
            positions |= {d.id.get_chunk_info(k).byte_offset + 3
                          for k in range(d.id.get_num_chunks())}
    caught = 0
    for pos in sorted(positions):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        (tmp_path / "f.h5").write_bytes(bytes(bad))
        try:
            got = _everything(tmp_path / "f.h5")
        except TraceError as exc:
            assert "f.h5: " in str(exc)
            caught += 1
            continue
        assert _equal(got, ref), f"byte {pos} flipped: read back different data without error"
    assert caught > len(positions) // 2


def test_truncated_foreign_newer_and_missing_files(tiny_run, tmp_path):
    data = tiny_run[3].read_bytes()
    for cut in (len(data) // 3, len(data) - 100):
        (tmp_path / "cut.h5").write_bytes(data[:cut])
        with pytest.raises(TraceError, match=r"cut\.h5: .*(truncated|damaged)"):
            _everything(tmp_path / "cut.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(TraceError, match=r"text\.h5: not an HDF5 file"):
        record.open(tmp_path / "text.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.arange(10)
    with pytest.raises(TraceError, match=r"foreign\.h5: not a SONATA spike file"):
        record.open(tmp_path / "foreign.h5")
    with h5py.File(tmp_path / "sonata.h5", "w") as f:   # a SONATA report from another tool
        f.attrs["magic"] = np.uint32(0x0A7A)
        f["spikes/pop/timestamps"] = [1.0, 2.0]
        f["spikes/pop/node_ids"] = np.array([0, 1], np.uint64)
    with pytest.raises(TraceError, match=r"sonata\.h5: a foreign HDF5 file: no /neuroemu group"):
        record.open(tmp_path / "sonata.h5")
    (tmp_path / "newer.h5").write_bytes(data)
    with h5py.File(tmp_path / "newer.h5", "r+") as f:
        f["neuroemu"].attrs.modify("format_version", np.array([2, 0], np.uint32))
    with pytest.raises(TraceError, match=r"newer\.h5: trace format 2\.0 is not readable .* a "
                                         r"newer neuroemu wrote it"):
        record.open(tmp_path / "newer.h5")
    with pytest.raises(TraceError, match=r"none\.h5: file not found$"):
        record.open(tmp_path / "none.h5")
    (tmp_path / "half.h5.partial").write_bytes(data)
    with pytest.raises(TraceError, match=r"half\.h5: file not found, but half\.h5\.partial "
                                         r"exists"):
        record.open(tmp_path / "half.h5")


CHILD = r"""
import sys, numpy as np
from neuroemu import describe
from neuroemu.engines import compiled as C
from neuroemu import record
from neuroemu.engines import Phase
cn = C.build(describe.load(sys.argv[2]))
B, R = 2, 25
z = {"spikes": np.ones((B, 3), np.int64), "syn_events": np.ones((B, 2, 2), np.int64),
     "updates": np.ones((B, 3, 2), np.int64)}
w = record.TraceWriter(sys.argv[1], cn, batch=B, flush_seconds=0.0, chunk=64)
for k in range(10**6):
    spikes = np.random.default_rng(k).random((R, B, cn.n_neurons)) < 0.3
    w.append(Phase("free", k * R, R, 0.0, 1, z, spikes=spikes))
    print(k, flush=True)
"""


@pytest.mark.parametrize("appends", [4, 13])
def test_sigkilled_writer_leaves_a_readable_incomplete_file(tmp_path, appends, capsys):
    path = tmp_path / "killed.h5"
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(NETLISTS / "tiny.toml")],
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
    for line in p.stdout:
        if int(line) >= appends:
            break
    time.sleep(0.002 * appends)
    assert p.poll() is None, "the writer stopped before it was killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    part = tmp_path / "killed.h5.partial"
    assert part.exists() and not path.exists()
    with pytest.raises(OSError):      # plain readers refuse a file left open for writing ...
        h5py.File(part, "r")
    with h5py.File(part, "r", swmr=True) as f:     # ... SWMR readers open it (docs)
        assert not any(row["complete"] for row in f["neuroemu/progress"][()])
    with record.open(part) as t:
        assert not t.complete and t.live
        assert t.t_written >= 25 * (appends + 1)   # each append was committed
        assert t.t_end > 0 or appends < 10         # (until every population filled a chunk)
        spikes = np.concatenate([np.random.default_rng(k).random((25, 2, 9)) < 0.3
                                 for k in range(t.t_end // 25 + 1)])[:t.t_end]
        off = [0, 4, 7, 9]
        for pop in t.populations:
            inf = t.info(pop)
            l = t.layers.index(inf["layer"])
            r, i = np.nonzero(spikes[:, inf["sample"], off[l]:off[l + 1]])
            steps, ids = t.spikes(pop)
            assert np.array_equal(steps, r + 1) and np.array_equal(ids, i)
        c = t.counters()
        assert t.counters_step <= t.t_end and np.all(c["spikes"] == t.counters_step // 25)
    with pytest.raises(TraceError, match=r"killed\.h5: file not found, but killed\.h5\.partial"):
        record.open(path)
    assert cli.main(["inspect", str(part)]) == 0
    assert "INCOMPLETE: the writer did not finish" in capsys.readouterr().out


def test_an_exception_leaves_a_closed_file_marked_incomplete(tmp_path):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    sess = engines.session(cn, np.full((1, 4), 0.7), seed=1)
    with pytest.raises(RuntimeError, match="boom"):
        with record.TraceWriter.for_session(tmp_path / "e.h5", sess) as w:
            ph = sess.run(30, record_spikes=True)
            w.append(ph)
            raise RuntimeError("boom")
    part = tmp_path / "e.h5.partial"
    with h5py.File(part, "r") as f:       # closed properly: plain readers open it
        assert f["neuroemu/progress"][-1]["complete"] == 0
    with record.open(part) as t:
        assert not t.complete and t.t_end == 30
        r, i = np.nonzero(ph.spikes[:, 0, cn.off[1]:cn.off[2]])
        steps, ids = t.spikes("hidden")
        assert np.array_equal(steps, r + 1) and np.array_equal(ids, i)


def test_writer_rejects_what_it_cannot_record(tmp_path):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    sess = engines.session(cn, np.full((1, 4), 0.5), seed=1)
    with pytest.raises(EngineError, match=r"probe_vars: must be a non-empty subset of s, v, eps, "
                                          r"phi \(got q\)"):
        record.TraceWriter.for_session(tmp_path / "a.h5", sess, probes={"hidden": None},
                                       probe_vars=["s", "q"])
    with pytest.raises(EngineError, match=r"samples: must lie in \[0, 0\] \(got 3\)"):
        record.TraceWriter.for_session(tmp_path / "a.h5", sess, samples=[3])
    with record.TraceWriter.for_session(tmp_path / "b.h5", sess, probes={"hidden": None}) as w:
        with pytest.raises(EngineError, match=r"spikes must be recorded at every step"):
            w.append(sess.run(4, record_spikes=True, every=2))
        with pytest.raises(EngineError, match=r"starts after step 4 but the trace has reached "
                                              r"step 0"):
            w.append(sess.run(4, record_spikes=True))
    assert not (tmp_path / "a.h5.partial").exists()


def test_inspect_cli_summary_and_pictures(tmp_path, capsys):
    tr = tmp_path / "r.h5"
    assert cli.main(["run", str(NETLISTS / "tiny.toml"), "--steps", "120", "--batch", "2",
                     "--trace", str(tr), "--probe", "hidden", "--probe", "output:1",
                     "--probe-vars", "s,phi", "--dt", "0.25"]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(tr), "--json", "--raster", str(tmp_path / "r.png"),
                     "--states", str(tmp_path / "s.png"), "--sample", "1"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[:out.rindex("}") + 1])
    assert summary["complete"] and summary["t_end"] == 120 and summary["dt_ms"] == 0.25
    with h5py.File(tr) as f:
        for row in summary["populations"]:
            ids = f[f"spikes/{row['population']}/node_ids"][()]
            ts = f[f"spikes/{row['population']}/timestamps"][()]
            assert row["spikes"] == len(ids)
            assert row["active"] == len(np.unique(ids)) / row["size"]
            assert row["rate_per_step"] == len(ids) / (row["size"] * 120)
            assert (row["first_ms"], row["last_ms"]) == ((ts[0], ts[-1]) if len(ts) else
                                                         (None, None))
    assert summary["probes"]["output"] == {"node_ids": [1], "every": 1, "vars": ["s", "phi"]}
    for png in ("r.png", "s.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["inspect", str(tr)]) == 0
    text = capsys.readouterr().out
    assert "complete" in text and "hidden.1" in text
    assert cli.main(["inspect", str(tr), "--states", str(tmp_path / "x.png"), "--neurons",
                     "hidden:7"]) == 2
    assert "hidden:7: indices must lie in [0, 2]" in capsys.readouterr().err
    assert cli.main(["run", str(NETLISTS / "tiny.toml"), "--trace", str(tmp_path / "y.h5"),
                     "--probe", "nosuch"]) == 2
    assert "--probe nosuch: no population 'nosuch'" in capsys.readouterr().err
    assert cli.main(["validate", str(tr)]) == 0       # a trace carries its network
    assert "network 'tiny'" in capsys.readouterr().out
    assert cli.main(["run", str(tr), "--steps", "5"]) == 0


def test_async_trace_keeps_sub_tick_spike_times(tmp_path):
    """Spikes of the bus engine are stored at their cluster's tick time, not step * dt."""
    from neuroemu.engines import asyncbus
    net = compiler.build(describe.load(ROOT / "neuroemu" / "data" / "netlists" / "tiny.toml"))
    x = np.random.default_rng(3).random((2, 4))
    hw = {"cluster_size": 2, "quanta": 100, "clock": {"jitter": 30, "phase": 20}}
    sess = engines.session(net, x, engine="async", hardware=hw)
    with record.TraceWriter.for_session(tmp_path / "a.h5", sess, dt=0.5) as w:
        ph = sess.run(40, record_spikes=True)
        w.append(ph)
    want = asyncbus.spike_times(ph) * 0.5
    tr = record.open(tmp_path / "a.h5")
    for pop in tr.populations:
        t, ids = tr.spikes(pop, as_time=True)
        b, layer = tr.info(pop)["sample"], net.layer(tr.info(pop)["layer"])
        r, j = np.nonzero(ph.spikes[:, b, net.off[layer]:net.off[layer + 1]])
        assert np.array_equal(ids, j) and np.array_equal(t, want[r, b, net.off[layer] + j])
    times = np.concatenate([tr.spikes(p, as_time=True)[0] for p in tr.populations])
    assert np.any(times % 0.5 != 0)   # sub-tick times really are there
    assert h5py.File(tmp_path / "a.h5")["spikes"][tr.populations[0]].attrs["sorting"] == 0


def test_probe_without_trace_is_an_error(capsys):
    assert cli.main(["run", str(ROOT / "neuroemu" / "data" / "netlists" / "tiny.toml"), "--probe", "hidden"]) == 2
    assert "--probe: records into a trace; add --trace FILE.h5 (got --probe hidden)" in \
        capsys.readouterr().err
