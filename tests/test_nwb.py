"""NWB export of a trace's spikes (issue 14): files written from real traces (lockstep and bus
engine, several samples, a graph network with maps, a shipped network) open in pynwb with the
trace's spikes per population and neuron, times in seconds = the trace's ms / 1000; the output
rules; the missing-extra message."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from neuroemu import describe, engines, interop, record
from neuroemu.errors import InteropError, NeuroemuError, OutputError, TraceError

from conftest import NETLISTS
from test_graph_reference import NETWORKS, inputs

pynwb = pytest.importorskip("pynwb", reason="the test extra installs pynwb")

JITTER = {"cluster_size": 2, "quanta": 100, "clock": {"jitter": 30, "phase": 20}}


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """name -> trace path: lockstep (3 samples), bus engine (jittered clocks, 2 samples),
    a graph network with maps (2 of 3 samples), a single-sample run of the shipped tiny."""
    d = tmp_path_factory.mktemp("nwb")
    tiny = describe.load(NETLISTS / "tiny.toml")
    x = np.random.default_rng(0).random((3, 4))
    record.run_traced(d / "lockstep.h5", tiny, x, 40, seed=1, progress=False)
    record.run_traced(d / "async.h5", tiny, x[:2], 40, seed=2, engine="async", dt=0.5,
                      hardware=JITTER, progress=False)
    raw = NETWORKS["conv"]()
    net = describe.from_dict(raw, path="<test>")
    record.run_traced(d / "graph.h5", net, inputs(raw, 3, 4), 12, seed=3, samples=[0, 2],
                      progress=False)
    record.run_traced(d / "one.h5", tiny, x[:1], 25, seed=4, progress=False)
    return {p.stem: p for p in d.glob("*.h5")}


def read_nwb(path):
    """(units dataframe rows as dicts, {table name: rows}, notes, start time) of an NWB
    file, read with pynwb."""
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()

        def rows(table):
            cols = ("population", "layer", "sample", "neuron_id")
            return [dict({c: table[c][i] for c in cols},
                         spike_times=np.asarray(table["spike_times"][i]),
                         id=int(table.id[i])) for i in range(len(table))]
        main = rows(f.units)
        per = {name: rows(t) for name, t in f.processing["spikes"].data_interfaces.items()}
        return main, per, f.notes, f.session_start_time, f.units.resolution


@pytest.mark.parametrize("name", ["lockstep", "async", "graph", "one"])
def test_nwb_holds_the_traces_spikes(tmp_path, traces, name):
    out = interop.write_nwb(traces[name], tmp_path / f"{name}.nwb")
    assert out == tmp_path / f"{name}.nwb" and out.is_file()
    main, per, notes, t0, resolution = read_nwb(out)
    with record.open(traces[name]) as t:
        assert sorted(per) == sorted(t.populations)
        at, total = 0, 0
        for pop in t.populations:
            inf = t.info(pop)
            n = inf["size"]
            ts, ids = t.spikes(pop, as_time=True)
            table = per[pop]
            assert len(table) == n      # every neuron is a unit, silent ones too
            assert [r["id"] for r in table] == list(range(n))
            for i, r in enumerate(table):
                assert (r["population"], r["layer"], r["sample"], r["neuron_id"]) == \
                    (pop, inf["layer"], inf["sample"], i)
                want = np.sort(ts[ids == i]) / 1000.0
                assert np.array_equal(r["spike_times"], want), (pop, i)
                m = main[at + i]     # the main table: the same units, population by population
                assert m["id"] == at + i
                assert (m["population"], m["neuron_id"]) == (pop, i)
                assert np.array_equal(m["spike_times"], want)
            assert sum(len(r["spike_times"]) for r in table) == ts.size == inf["spikes"]
            at, total = at + n, total + ts.size
        assert len(main) == at and total > 0
        meta = json.loads(notes)
        assert meta["provenance"] == t.provenance
        assert meta["netlist"] == t.netlist().name
        assert meta["dt_ms"] == t.dt and meta["steps"] == t.t_end and meta["complete"]
        assert meta["samples"] == list(t.samples) and meta["populations"] == t.populations
    assert t0 == interop.nwb.NO_START_TIME
    if name == "async":
        assert resolution is None or np.isnan(resolution)
    else:
        assert resolution == pytest.approx(1e-3)


def test_graph_maps_say_their_shape(tmp_path, traces):
    out = interop.write_nwb(traces["graph"], tmp_path / "g.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert "map of shape (2, 4, 4)" in f.processing["spikes"]["c1.0"].description
        assert set(f.units["sample"][:]) == {0, 2}


def test_bulk_build_is_fast_on_conv_ep(tmp_path):
    """conv-ep's 28,954 neurons in well under the time of one add_unit per neuron."""
    import time
    net = describe.load(NETLISTS / "conv-ep.toml")
    n_in = sum(p.size for p in net.populations if p.role == "input")
    x = np.random.default_rng(0).random((1, n_in))
    trace = tmp_path / "c.h5"
    record.run_traced(trace, net, x, 5, seed=1, progress=False)
    t = time.perf_counter()
    out = interop.write_nwb(trace, tmp_path / "c.nwb")
    took = time.perf_counter() - t
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        assert len(io.read().units) == sum(p.size for p in net.populations)
    assert took < 20, took


def test_refusals(tmp_path, traces):
    out = tmp_path / "x.nwb"
    interop.write_nwb(traces["one"], out)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        interop.write_nwb(traces["one"], out)
    assert out.read_bytes() == before
    interop.write_nwb(traces["one"], out, force=True)      # --force replaces it
    with pytest.raises(OutputError, match="is an input of this command"):
        interop.write_nwb(traces["one"], traces["one"], force=True)
    with pytest.raises(TraceError, match="file not found"):
        interop.write_nwb(tmp_path / "missing.h5", tmp_path / "m.nwb")
    assert not (tmp_path / "m.nwb").exists()
    # no temporary files left beside the outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nwb"]


def test_a_trace_missing_a_dataset_is_one_trace_error(tmp_path, traces):
    import shutil

    import h5py
    bad = tmp_path / "bad.h5"
    shutil.copy(traces["lockstep"], bad)
    with h5py.File(bad, "a") as f:
        del f["spikes/hidden.1/timestamps"]
    with pytest.raises(TraceError) as e:
        interop.write_nwb(bad, tmp_path / "bad.nwb")
    assert "timestamps" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "bad.nwb").exists()


def test_a_netlist_is_no_trace(tmp_path):
    net = tmp_path / "tiny.h5"
    describe.save(describe.load(NETLISTS / "tiny.toml"), net)
    with pytest.raises(TraceError):
        interop.write_nwb(net, tmp_path / "n.nwb")


def hide(monkeypatch, package: str) -> None:
    """Make ``import package`` (and its submodules) fail for this test: a None entry in
    sys.modules raises ModuleNotFoundError, for import statements and importlib alike."""
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.parametrize("entry, args, package", [
    ("write_nwb", ("t.h5", "t.nwb"), "pynwb"),
    ("read_nir", ("x.nir",), "nir"),
    ("write_nir", (None, "x.nir"), "nir"),
    ("to_nir", (None,), "nir"),
    ("from_nir", (None,), "nir"),
])
def test_a_missing_extra_is_named(monkeypatch, entry, args, package):
    """Simulated: the optional package does not import, as where it is not installed."""
    hide(monkeypatch, package)
    with pytest.raises(InteropError) as e:
        getattr(interop, entry)(*args)
    msg = str(e.value)
    assert f"needs the optional package '{package}'" in msg
    assert "pip install 'neuroemu[interop]'" in msg and "\n" not in msg
    assert isinstance(e.value, NeuroemuError) and isinstance(e.value, RuntimeError)


def test_missing_extra_is_one_line_exit_2(monkeypatch, capsys, tmp_path, traces):
    from neuroemu.cli import main
    hide(monkeypatch, "pynwb")
    rc = main(["convert", str(traces["one"]), str(tmp_path / "o.nwb")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "needs the optional package 'pynwb' (pip install 'neuroemu[interop]')" in err
    assert not (tmp_path / "o.nwb").exists()
