"""Crafted and damaged traces through every reader (issue 12, class 4).

Small real traces (lockstep and bus engine) are written in tmp_path, then mutated with h5py
(attributes, dtypes, values, shapes, links, virtual datasets, progress rows) or by flipping
bytes.  Every reader -- the Trace API, ``neuroemu inspect`` (text, --json, --raster),
``neuroemu energy TRACE``, ``neuroemu run TRACE`` -- must give the pristine file's answer or
a one-line error (TraceError in Python, exit 2 and one line from the command line): never a
traceback, a hang or a different answer.  Every crafted mutation breaks an invariant the
reader relies on, so at least one reader must refuse it.  The long run is marked slow."""

import json
import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroemu import cli, describe, engines, record
from neuroemu.engines import compiled as compiler
from neuroemu.errors import NeuroemuError
from neuroemu.record.layout import progress_check

from conftest import NETLISTS


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    x = np.random.default_rng(3).random((2, 4))
    sess = engines.session(cn, x, seed=5)
    rec = dict(record_spikes=True, record_states=True, record_extra=True)
    lock = d / "lock.h5"
    with record.TraceWriter.for_session(lock, sess, probes={"hidden": [0, 2]}, probe_every=3,
                                        chunk=16) as w:
        w.append(sess.run(20, name="free", **rec))
        w.append(sess.run(15, beta=0.5, target=np.eye(2)[[0, 1]], name="nudged", **rec))
    bus = d / "bus.h5"
    record.run_traced(bus, cn, x, 30, engine="async", seed=2, dt=0.5,
                      hardware={"clock": {"jitter": 10, "phase": 30}})
    out = {}
    for p in (lock, bus):
        out[p.name] = (p, answers(p, d))
    return out


def one_line_error(fn):
    try:
        return ("ok", fn())
    except NeuroemuError as exc:
        msg = str(exc)
        assert "\n" not in msg.strip() and msg.strip(), msg
        return ("error", None)


def api_answers(path):
    """Every Trace API answer, each ("ok", value) or ("error", None)."""
    out = {}
    t = one_line_error(lambda: record.open(path))
    if t[0] == "error":
        return {"open": t}
    t = t[1]
    with t:
        out["head"] = ("ok", (t.complete, t.t_end, t.dt, t.populations, t.samples, t.batch))
        for pop in t.populations:
            for win in ((None, None), (5, 20), (30, None)):
                out[f"spikes {pop} {win}"] = one_line_error(
                    lambda: [a.tolist() for a in t.spikes(pop, *win, as_time=True)])
            out[f"counts {pop}"] = one_line_error(lambda: t.counts(pop).tolist())
        out["summary"] = one_line_error(t.summary)
        out["counters"] = one_line_error(lambda: {k: v.tolist()
                                                  for k, v in t.counters().items()})
        out["blocks"] = one_line_error(lambda: t.blocks().tolist())
        for layer, pr in t.probes.items():
            for v in pr["vars"]:
                out[f"states {layer} {v}"] = one_line_error(
                    lambda: [a.tolist() for a in t.states(layer, v)])
        out["netlist"] = one_line_error(lambda: describe.same(t.netlist(), t.netlist()))
        out["provenance"] = one_line_error(lambda: t.provenance)
    return out


def cli_answers(path, tmp, capsys):
    out = {}
    for name, argv in (("inspect", ["inspect", str(path)]),
                       ("inspect json", ["inspect", str(path), "--json"]),
                       ("raster", ["inspect", str(path), "--raster", str(tmp / "r.png")]),
                       ("energy", ["energy", str(path), "--json"]),
                       ("run", ["run", str(path), "--steps", "5", "--json"])):
        capsys.readouterr()
        (tmp / "r.png").unlink(missing_ok=True)
        rc = cli.main(argv)        # a traceback fails the test
        o, e = capsys.readouterr()
        if rc == 0:
            out[name] = ("ok", o.replace(str(path), "TRACE").replace(str(tmp), "TMP")
                         .replace(path.name, "TRACE"))
        else:
            assert rc == 2 and len(e.strip().splitlines()) == 1 and \
                e.startswith("neuroemu: error: "), (name, rc, e)
            out[name] = ("error", None)
    return out


class _Cap:
    """capsys for the module fixture (which cannot take the function-scoped one)."""

    def __init__(self):
        import io
        import sys
        self.sys, self.io = sys, io
        self.o, self.e = io.StringIO(), io.StringIO()

    def readouterr(self):
        o, e = self.o.getvalue(), self.e.getvalue()
        self.o.seek(0), self.o.truncate(), self.e.seek(0), self.e.truncate()
        return o, e


def answers(path, tmp, capsys=None):
    if capsys is None:
        import contextlib
        cap = _Cap()
        with contextlib.redirect_stdout(cap.o), contextlib.redirect_stderr(cap.e):
            return {**api_answers(path), **cli_answers(path, tmp, cap)}
    return {**api_answers(path), **cli_answers(path, tmp, capsys)}


def compare(got, want, must_fail: bool, what):
    """Each answer the pristine one or an error; a crafted mutation is refused somewhere."""
    if "open" in got:
        assert got["open"][0] == "error"
    for k, (kind, v) in got.items():
        if kind == "ok" and k in want:
            assert want[k] == ("ok", v), f"{what}: {k}: a different answer"
    if must_fail:
        assert any(kind == "error" for kind, _ in got.values()), f"{what}: read as if fine"


# --------------------------------------------------------------------------- crafted mutations

def _replace(f, name, data):
    """Replace a dataset by ``data`` (any dtype/shape), keeping its attributes."""
    attrs = dict(f[name].attrs)
    del f[name]
    d = f.create_dataset(name, data=data, maxshape=(None,) + np.shape(data)[1:],
                         chunks=True if np.size(data) else None)
    for k, v in attrs.items():
        d.attrs[k] = v


def _set_col(f, name, k, value, dtype=None):
    a = f[name][()]
    a = a.astype(dtype) if dtype else a.copy()
    if isinstance(k, tuple) and isinstance(k[-1], str):   # (row, field) of a record dataset
        a[k[-1]][k[0]] = value
    else:
        a[k] = value
    _replace(f, name, a)


def _forge_progress(f, **fields):
    p = f["neuroemu/progress"]
    row = p[-1]
    for k, v in fields.items():
        row[k] = v
    row["check"] = progress_check(row)
    p[-1] = row


def _pop(f):
    return sorted(f["spikes"])[1]


def _grow_unwritten(f):
    cols = json.loads(bytes(f["neuroemu/progress_columns"][()]).decode())
    ds = f[f"spikes/{_pop(f)}/node_ids"]
    k = cols.index(ds.name)
    n = ds.shape[0]
    ds.resize((n + 1000,))
    f[f"spikes/{_pop(f)}/timestamps"].resize((n + 1000,))
    rows = f["neuroemu/progress"][-1]["rows"].copy()
    rows[k] += 1000
    rows[cols.index(f"/spikes/{_pop(f)}/timestamps")] += 1000
    _forge_progress(f, rows=rows)


def _probes(f, what, value):
    if not len(f["neuroemu/probes"]):
        raise KeyError("no probes")
    for g in f["neuroemu/probes"].values():
        if what == "every":
            g.attrs["every"] = value
        else:
            _set_col(f, g["node_ids"].name, 0, 10**6)


def _unsort(f):
    if f[f"spikes/{_pop(f)}"].attrs["sorting"] != 2:
        raise KeyError("an unsorted population may hold any order")
    ts = f[f"spikes/{_pop(f)}/timestamps"][()]
    i = int(np.argmax(ts > ts[0]))
    _set_col(f, f"spikes/{_pop(f)}/timestamps", [0, i], ts[[i, 0]])


def _decrease(f):
    c = f["neuroemu/counters/syn_events"]
    if c.shape[0] < 2:
        raise KeyError("one row cannot decrease")
    _set_col(f, c.name, -1, 0)


def _external(f, tmp):
    name = _pop(f)
    del f["spikes"][name]
    f["spikes"][name] = h5py.ExternalLink(str(tmp / "other.h5"), "/x")


def _virtual(f, tmp):
    ds = f[f"spikes/{_pop(f)}/node_ids"]
    n = ds.shape[0]
    layout = h5py.VirtualLayout(shape=(n,), dtype=np.uint64, maxshape=(None,))
    layout[:] = h5py.VirtualSource(str(tmp / "missing.h5"), "ids", shape=(n,))
    del f[ds.name]
    f[f"spikes/{_pop(f)}"].create_virtual_dataset("node_ids", layout, fillvalue=0)


CRAFTED = {
    "dt -1": lambda f, t: f["neuroemu"].attrs.__setitem__("dt", -1.0),
    "dt 0": lambda f, t: f["neuroemu"].attrs.__setitem__("dt", 0.0),
    "dt nan": lambda f, t: f["neuroemu"].attrs.__setitem__("dt", np.nan),
    "dt string": lambda f, t: f["neuroemu"].attrs.__setitem__("dt", "1"),
    "magic 0": lambda f, t: f.attrs.__setitem__("magic", np.uint32(0)),
    "magic missing": lambda f, t: f.attrs.__delitem__("magic"),
    "format missing": lambda f, t: f["neuroemu"].attrs.__delitem__("format"),
    "format_version 2": lambda f, t: f["neuroemu"].attrs.__setitem__(
        "format_version", np.array([2, 0], np.uint32)),
    "format_version string": lambda f, t: f["neuroemu"].attrs.__setitem__("format_version", "1"),
    "batch 0": lambda f, t: f["neuroemu"].attrs.__setitem__("batch", 0),
    "samples out of range": lambda f, t: f["neuroemu"].attrs.__setitem__(
        "samples", np.array([0, 7])),
    "size string": lambda f, t: f["neuroemu/netlist/population/1"].attrs.__setitem__(
        "size", "3"),
    "size huge": lambda f, t: f["neuroemu/netlist/population/1"].attrs.__setitem__(
        "size", 10**12),
    "count string": lambda f, t: f["neuroemu/netlist/population"].attrs.__setitem__(
        "count", "3"),
    "pop size mismatch": lambda f, t: f[f"spikes/{_pop(f)}"].attrs.__setitem__(
        "size", np.uint64(99)),
    "timestamp nan": lambda f, t: _set_col(f, f"spikes/{_pop(f)}/timestamps", 3, np.nan),
    "timestamp negative": lambda f, t: _set_col(f, f"spikes/{_pop(f)}/timestamps", 0, -4.0),
    "timestamp beyond": lambda f, t: _set_col(f, f"spikes/{_pop(f)}/timestamps", -1, 1e9),
    "timestamps unsorted": lambda f, t: _unsort(f),
    "timestamps int": lambda f, t: _replace(
        f, f"spikes/{_pop(f)}/timestamps", f[f"spikes/{_pop(f)}/timestamps"][()].astype(int)),
    "node id too big": lambda f, t: _set_col(f, f"spikes/{_pop(f)}/node_ids", 2, 3),
    "node id negative": lambda f, t: _set_col(f, f"spikes/{_pop(f)}/node_ids", 2, -1,
                                              np.int64),
    "node ids string": lambda f, t: _replace(
        f, f"spikes/{_pop(f)}/node_ids",
        np.array([b"1"] * f[f"spikes/{_pop(f)}/node_ids"].shape[0])),
    "node ids float": lambda f, t: _replace(
        f, f"spikes/{_pop(f)}/node_ids",
        f[f"spikes/{_pop(f)}/node_ids"][()].astype(float)),
    "node ids 2d": lambda f, t: _replace(
        f, f"spikes/{_pop(f)}/node_ids", f[f"spikes/{_pop(f)}/node_ids"][()][:, None]),
    "counter negative": lambda f, t: _set_col(f, "neuroemu/counters/spikes", (0, 0, 0), -5),
    "counter decreasing": lambda f, t: _decrease(f),
    "counter nan": lambda f, t: _set_col(f, "neuroemu/counters/spikes", (0, 0, 0), np.nan,
                                         np.float64),
    "t_end decreasing": lambda f, t: _set_col(f, "neuroemu/counters/t_end", 0, 10**6),
    "blocks gap": lambda f, t: _set_col(f, "neuroemu/blocks", (-1, "t_start"),
                                        f["neuroemu/blocks"][-1]["t_start"] + 3),
    "blocks nan beta": lambda f, t: _set_col(f, "neuroemu/blocks", (-1, "beta"), np.nan),
    "blocks bad utf8": lambda f, t: _set_col(f, "neuroemu/blocks", (0, "phase"), b"\xff\xfe"),
    "progress rows beyond": lambda f, t: _forge_progress(f, t_end=10**9, t_complete=10**9),
    "progress t_complete > t_end": lambda f, t: _forge_progress(f, t_complete=10**6),
    "progress unwritten rows": lambda f, t: _grow_unwritten(f),
    "probe every 0": lambda f, t: _probes(f, "every", 0),
    "probe ids out of range": lambda f, t: _probes(f, "node_ids", None),
    "no spikes group": lambda f, t: f.__delitem__("spikes"),
    "population missing": lambda f, t: f["spikes"].__delitem__(_pop(f)),
    "population renamed": lambda f, t: f["spikes"].move(_pop(f), "zzz"),
    "external link": lambda f, t: _external(f, t),
    "soft link": lambda f, t: f["neuroemu"].__setitem__("alias", h5py.SoftLink("/spikes")),
    "virtual dataset": _virtual,
}


def mutated(src, tmp, name):
    dst = tmp / f"m-{src.name}"
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        try:
            CRAFTED[name](f, tmp)
        except KeyError:   # the mutation does not apply to this trace (no probes)
            return None
    return dst


BUS_DEFAULT = {"timestamp nan", "timestamp negative", "timestamp beyond", "node id too big",
               "dt 0", "progress unwritten rows"}   # the rest of the bus ones run with -m slow


@pytest.mark.parametrize("kind,name", [("lock.h5", n) for n in sorted(CRAFTED)] + [
    pytest.param("bus.h5", n, marks=() if n in BUS_DEFAULT else pytest.mark.slow)
    for n in sorted(CRAFTED)])
def test_crafted_trace_gives_an_error_never_a_wrong_answer(traces, tmp_path, capsys, kind, name):
    src, want = traces[kind]
    path = mutated(src, tmp_path, name)
    if path is None:
        pytest.skip("not applicable")
    compare(answers(path, tmp_path, capsys), want, True, name)


def test_pristine_traces_read_back(traces, tmp_path, capsys):
    for src, want in traces.values():
        got = answers(src, tmp_path, capsys)
        assert all(kind == "ok" for kind, _ in got.values()), got
        assert got == want


def test_damaged_magic_is_one_error_everywhere(traces, tmp_path, capsys):
    path = mutated(traces["lock.h5"][0], tmp_path, "magic 0")
    with pytest.raises(NeuroemuError, match=r"m-lock\.h5: / attribute magic: must be 0x0a7a "
                                            r"\(a damaged trace\) \(got 0\)"):
        record.open(path)
    for argv in (["inspect", str(path)], ["energy", str(path)], ["run", str(path)],
                 ["convert", str(path), str(tmp_path / "x.toml")]):
        assert cli.main(argv) == 2
        assert "magic" in capsys.readouterr().err


def test_nan_timestamp_does_not_drop_spikes_silently(traces, tmp_path):
    path = mutated(traces["lock.h5"][0], tmp_path, "timestamp nan")
    with record.open(path) as t:
        pop = sorted(t.populations)[1]
        with pytest.raises(NeuroemuError, match=r"timestamps\[3\]: must be a finite time .* "
                                                r"\(got nan\)"):
            t.spikes(pop)


# --------------------------------------------------------------------------- flipped bytes

def flip(src, dst, positions, data):
    b = bytearray(src.read_bytes())
    for p, v in zip(positions, data):
        b[p % len(b)] ^= (v % 255) + 1
    dst.write_bytes(bytes(b))


def fuzz_bytes(traces, tmp_path, capsys, kind, positions, data):
    src, want = traces[kind]
    dst = tmp_path / f"f-{kind}"
    flip(src, dst, positions, data)
    compare(answers(dst, tmp_path, capsys), want, False, f"flip {positions}")


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow], derandomize=True)


@settings(max_examples=12, **SETTINGS)
@given(kind=st.sampled_from(["lock.h5", "bus.h5"]),
       positions=st.lists(st.integers(0, 10**7), min_size=1, max_size=3),
       data=st.lists(st.integers(0, 254), min_size=3, max_size=3))
def test_flipped_bytes_give_the_answer_or_an_error(traces, tmp_path, capsys, kind, positions,
                                                    data):
    fuzz_bytes(traces, tmp_path, capsys, kind, positions, data)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(kind=st.sampled_from(["lock.h5", "bus.h5"]),
       positions=st.lists(st.integers(0, 10**7), min_size=1, max_size=4),
       data=st.lists(st.integers(0, 254), min_size=4, max_size=4))
def test_flipped_bytes_long_run(traces, tmp_path, capsys, kind, positions, data):
    fuzz_bytes(traces, tmp_path, capsys, kind, positions, data)
