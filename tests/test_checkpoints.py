"""Damaged and crafted training checkpoints (issue 12, class 4): each resumes exactly as
written or is refused with one line naming the file and the field -- never a traceback, a
resume from a negative epoch, non-finite weights, or a big allocation."""

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import build, make_netlist
from neuroemu.errors import TrainError
from neuroemu.learn.eqprop import Hyper, Trainer, load_checkpoint, save_checkpoint

BINARY = {"encoder": "sigma_delta", "eps": {"kind": "osa", "nu_bar": 0.05}}


def trainer():
    net = build(make_netlist((6, 5, 3), BINARY, seed=1))
    return Trainer(net, Hyper.for_network(net, n_free=5, n_nudged=3))


@pytest.fixture
def good(tmp_path):
    tr = trainer()
    x = np.random.default_rng(0).random((4, 6))
    tr.train_batch(x, np.eye(3)[[0, 1, 2, 0]])
    path = tmp_path / "good.ckpt.npz"
    save_checkpoint(path, tr, 2, [{"epoch": 1}, {"epoch": 2}], {"netlist": "t"})
    return path, tr


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def npy(arr) -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array(b, np.asarray(arr), allow_pickle=False)
    return b.getvalue()


def rewrite(path, out, **changes) -> None:
    m = members(path)
    m.update(changes)
    with zipfile.ZipFile(out, "w") as z:
        for n, data in m.items():
            if data is not None:
                z.writestr(n, data)


def meta_of(path) -> dict:
    return json.loads(str(np.lib.format.read_array(io.BytesIO(members(path)["meta.npy"]))))


def refused(path, field):
    tr = trainer()
    before = [w.copy() for w in tr.W]
    with pytest.raises(TrainError) as info:
        load_checkpoint(path, tr)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and field in msg, msg
    assert all(np.array_equal(a, b) for a, b in zip(before, tr.W))   # nothing half-restored


def test_a_good_checkpoint_resumes_exactly(good):
    path, tr = good
    back = trainer()
    epoch, hist, settings_ = load_checkpoint(path, back)
    assert epoch == 2 and [h["epoch"] for h in hist] == [1, 2] and settings_ == {"netlist": "t"}
    assert all(np.array_equal(a, b) for a, b in zip(back.W, tr.W))
    assert back.rng.bit_generator.state == tr.rng.bit_generator.state


def test_not_a_zip_truncated_or_empty(good, tmp_path):
    path, _ = good
    for name, data in (("junk", b"not a zip at all"), ("half", path.read_bytes()[:300]),
                       ("empty", b"")):
        p = tmp_path / f"{name}.npz"
        p.write_bytes(data)
        refused(p, "not a readable neuroemu training checkpoint")


@pytest.mark.parametrize("change, field", [
    ({"rng": None}, "meta.rng"),
    ({"rng": {"bit_generator": "PCG64", "state": "x"}}, "meta.rng"),
    ({"epoch": -5}, "meta.epoch"),
    ({"epoch": 1.5}, "meta.epoch"),
    ({"epoch": True}, "meta.epoch"),
    ({"batches": "many"}, "meta.batches"),
    ({"history": {"epoch": 1}}, "meta.history"),
    ({"history": [1, 2]}, "meta.history[0]"),
    ({"settings": [1]}, "meta.settings"),
])
def test_bad_metadata(good, tmp_path, change, field):
    path, _ = good
    meta = meta_of(path)
    meta.update(change)
    if change.get("rng", 0) is None:
        del meta["rng"]
    out = tmp_path / "bad.npz"
    rewrite(path, out, **{"meta.npy": npy(json.dumps(meta))})
    refused(out, field)


@pytest.mark.parametrize("name, value, field", [
    ("W0.npy", np.zeros((5, 6)), "W0"),                       # transposed
    ("W1.npy", np.zeros((5, 3), dtype=np.int64), "W1"),      # not floats
    ("b1.npy", np.full(5, np.nan), "b1[0]"),
    ("b2.npy", np.array([0.0, np.inf, 0.0]), "b2[1]"),
    ("W0.npy", np.full((6, 5), 1e30), "W0[0, 0]"),
    ("W1.npy", None, "W1"),                                   # missing
    ("meta.npy", None, "meta"),
    ("meta.npy", npy(np.zeros(3)), "meta"),
])
def test_bad_arrays(good, tmp_path, name, value, field):
    path, _ = good
    out = tmp_path / "bad.npz"
    rewrite(path, out, **{name: None if value is None else
                          value if isinstance(value, bytes) else npy(value)})
    refused(out, field)


def test_a_huge_declared_array_is_refused_from_its_header(good, tmp_path):
    path, _ = good
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    out = tmp_path / "huge.npz"
    rewrite(path, out, **{"W0.npy": b"\x93NUMPY\x01\x00" + head.getvalue()[8:] + b"\0" * 64})
    refused(out, "W0")


def test_a_directory_or_fifo_is_refused(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo.npz")
    refused(tmp_path / "fifo.npz", "FIFO")
    (tmp_path / "dir.npz").mkdir()
    refused(tmp_path / "dir.npz", "directory")


def generated_damage(tmp_path_factory, data):
    """Flip bytes of a good checkpoint, or replace a metadata field by a generated value:
    the result loads exactly as written or is one line; never a traceback."""
    tmp = tmp_path_factory.mktemp("gen")
    tr = trainer()
    src = tmp / "c.npz"
    save_checkpoint(src, tr, 1, [{"epoch": 1}], {})
    raw = bytearray(src.read_bytes())
    if data.draw(st.booleans()):
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            raw[i] ^= data.draw(st.integers(1, 255))
        bad = tmp / "d.npz"
        bad.write_bytes(bytes(raw))
    else:
        meta = meta_of(src)
        key = data.draw(st.sampled_from(sorted(meta)))
        meta[key] = data.draw(st.one_of(st.integers(-10**20, 10**20), st.floats(),
                                        st.text(max_size=5), st.none(),
                                        st.lists(st.integers(), max_size=3)))
        bad = tmp / "d.npz"
        rewrite(src, bad, **{"meta.npy": npy(json.dumps(meta))})
    back = trainer()
    try:
        epoch, _, _ = load_checkpoint(bad, back)
    except TrainError as exc:
        assert "\n" not in str(exc)
        return
    assert epoch >= 0 and all(np.isfinite(w).all() for w in back.W)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_damage_is_refused_or_resumes_exactly(tmp_path_factory, data):
    generated_damage(tmp_path_factory, data)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_damage_is_refused_or_resumes_exactly_slow(tmp_path_factory, data):
    generated_damage(tmp_path_factory, data)
