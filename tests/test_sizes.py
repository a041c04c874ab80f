"""Issue 12, class 3 (and the HDF5 netlist part of class 4): declared sizes are checked before
anything is allocated, only regular files are read, and crafted or damaged HDF5 netlists give
one line, never a traceback, a hang or another file's data.

Allocation is measured with tracemalloc (NumPy reports its buffers to it): every refusal of a
huge declared size must happen with a few MB at most.  Everything is written under tmp_path.
"""

import gzip
import os
import shutil
import signal
import struct
import tracemalloc
from contextlib import contextmanager

import h5py
import numpy as np
import numpy.lib.format as npformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroemu import describe, engines
from neuroemu.describe.arrays import read_npy
from neuroemu.energy import hardware as hw
from neuroemu.engines.session import MAX_STATE_CELLS
from neuroemu.errors import DataError, EngineError, NetlistError, NeuroemuError, ProfileError
from neuroemu.learn.datasets import read_idx

LIMIT = 16 << 20  # bytes a refusal may allocate


@contextmanager
def bounded(limit=LIMIT, seconds=10):
    """Fail if the block allocates more than ``limit`` bytes or runs over ``seconds``."""
    def alarm(*_):
        raise TimeoutError("blocked")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert peak < limit, f"allocated {peak} bytes"


def one_line(exc) -> str:
    assert "\n" not in str(exc)
    return str(exc)


def npy(path, shape, descr="<f8", fortran=False, body=b"\0" * 64, version=(1, 0)):
    """A .npy file whose header says what we like, with a short body."""
    with open(path, "wb") as fp:
        header = {"descr": descr, "fortran_order": fortran, "shape": shape}
        if version == (1, 0):
            npformat.write_array_header_1_0(fp, header)
        else:
            npformat.write_array_header_2_0(fp, header)
        fp.write(body)
    return path


TOML = """\
[network]
name = "t"
[[population]]
name = "input"
size = 4
[[population]]
name = "output"
size = 3
bias = BIAS
[[projection]]
pre = "input"
post = "output"
weights = { file = "w.npy" }
"""


def netlist_with(tmp_path, bias="0.0"):
    (tmp_path / "n.toml").write_text(TOML.replace("BIAS", bias))
    return tmp_path / "n.toml"


# --------------------------------------------------------------------------- .npy headers

@pytest.mark.parametrize("shape,match", [
    ((10**6, 10**6), r"must have shape \(4, 3\) \(got shape \(1000000, 1000000\), from the file's "
                     r"header\)"),
    ((4, 3, 10**9), r"must have shape \(4, 3\)"),
    ((4, 3), r"truncated \.npy file: its header promises 96 bytes of data, the file holds 8"),
])
def test_npy_header_checked_before_reading(tmp_path, shape, match):
    npy(tmp_path / "w.npy", shape, body=b"\0" * 8)
    with bounded(), pytest.raises(NetlistError, match=r"projection\[0\]\.weights\.file: .*" + match):
        describe.load(netlist_with(tmp_path))


def test_wrong_shape_large_npy_is_not_read(tmp_path):
    """A 2 GB .npy of the wrong shape (a sparse file) is refused from its header alone."""
    path = npy(tmp_path / "w.npy", (16384, 16384), body=b"")
    with open(path, "r+b") as fp:
        fp.truncate(fp.seek(0, 2) + 16384 * 16384 * 8)
    with bounded(), pytest.raises(NetlistError, match=r"must have shape \(4, 3\)"):
        describe.load(netlist_with(tmp_path))


@pytest.mark.parametrize("descr,match", [
    ("|O", r"plain numbers .*dtype object"), ("<c16", r"numbers only \(got dtype complex128\)"),
    ("|b1", r"numbers only \(got dtype bool\)"), ("<U3", r"numbers only"),
])
def test_npy_dtype_refused_before_reading(tmp_path, descr, match):
    npy(tmp_path / "w.npy", (4, 3), descr=descr)
    with bounded(), pytest.raises(NetlistError, match=match):
        describe.load(netlist_with(tmp_path))


def test_npy_orders_and_byte_orders_read_exactly(tmp_path):
    w = np.arange(12.0).reshape(4, 3) / 7
    for i, arr in enumerate((w, np.asfortranarray(w), w.astype(">f8"), w.astype("<f4"))):
        np.save(tmp_path / "w.npy", arr)
        np.testing.assert_array_equal(describe.load(netlist_with(tmp_path)).projections[0].weights,
                                      arr.astype(np.float64))
    npy(tmp_path / "w.npy", (4, 3), version=(2, 0), body=w.tobytes())
    np.testing.assert_array_equal(describe.load(netlist_with(tmp_path)).projections[0].weights, w)


def test_fifo_and_directory_as_weights_file_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "w.npy")
    with bounded(seconds=5), pytest.raises(NetlistError, match=r"w\.npy: array file must be a "
                                                               r"regular file \(got a FIFO\)"):
        describe.load(netlist_with(tmp_path))
    (tmp_path / "w.npy").unlink()
    (tmp_path / "w.npy").mkdir()
    with pytest.raises(NetlistError, match=r"must be a regular file \(got a directory\)"):
        describe.load(netlist_with(tmp_path))


def test_bias_file_header_checked(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((4, 3)))
    npy(tmp_path / "b.npy", (10**12,), body=b"")
    with bounded(), pytest.raises(NetlistError, match=r"population\[1\]\.bias\.file: .*must have "
                                                      r"shape \(3,\)"):
        describe.load(netlist_with(tmp_path, bias='{ file = "b.npy" }'))


headers = st.fixed_dictionaries({
    "shape": st.one_of(st.lists(st.integers(0, 10**12), max_size=3).map(tuple),
                       st.sampled_from([(4, 3), (3, 4), (12,), (4, 3, 1)])),
    "descr": st.sampled_from(["<f8", ">f8", "<f4", "<i8", ">i2", "|u1", "|b1", "|O", "<c8",
                              "<U2", "<M8[s]", "|V8"]),
    "fortran": st.booleans(),
    "body": st.binary(max_size=200),
})


def _npy_property(tmp_path, h):
    try:
        npy(tmp_path / "w.npy", h["shape"], h["descr"], h["fortran"], h["body"])
    except ValueError:
        return  # numpy will not even write such a header
    try:
        with bounded():
            net = describe.load(netlist_with(tmp_path))
    except NetlistError as exc:
        one_line(exc)
        return
    assert net.projections[0].weights.shape == (4, 3)
    assert np.isfinite(net.projections[0].weights).all()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(headers)
def test_generated_npy_headers(tmp_path_factory, h):
    _npy_property(tmp_path_factory.mktemp("npy"), h)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(headers)
def test_generated_npy_headers_slow(tmp_path_factory, h):
    _npy_property(tmp_path_factory.mktemp("npy"), h)


@pytest.mark.parametrize("shape", [(0, 10**12, 10**12), (10**12, 0)])
def test_empty_but_impossible_shapes(tmp_path, shape):
    npy(tmp_path / "a.npy", shape, body=b"")
    with bounded(), pytest.raises(NetlistError, match=r"declares shape \(.*\) \(0 elements\), beyond the limit"):
        read_npy(tmp_path / "a.npy")
    (tmp_path / "x").write_bytes(idx((0, 2**31, 2**31)))
    with bounded(), pytest.raises(DataError, match=r"declares shape .* more than the limit"):
        read_idx(tmp_path / "x")


def test_read_npy_limit(tmp_path):
    npy(tmp_path / "a.npy", (10**5,), body=b"")
    with pytest.raises(NetlistError, match=r"declares shape \(100000,\) \(100000 elements\), beyond the limit of 10 "):
        read_npy(tmp_path / "a.npy", max_items=10)


# --------------------------------------------------------------------------- placement maps

def test_placement_core_index_bounded(tmp_path):
    core = np.zeros(9, np.int64)
    core[3] = 10**12
    np.save(tmp_path / "m.npy", core)
    with bounded(), pytest.raises(ProfileError, match=r"m\.npy: \[3\]: core index must be below "
                                                      r"1048576 \(got 1000000000000\)"):
        hw.place((4, 3, 2), None, 256, str(tmp_path / "m.npy"))


def test_placement_map_header_and_fifo(tmp_path):
    npy(tmp_path / "h.npy", (10**6, 10**6), descr="<i8")
    with bounded(), pytest.raises(ProfileError, match=r"integer array of shape \(9,\).*"
                                                      r"\(got int64 \(1000000, 1000000\)\)"):
        hw.place((4, 3, 2), None, 256, str(tmp_path / "h.npy"))
    os.mkfifo(tmp_path / "f.npy")
    with bounded(seconds=5), pytest.raises(ProfileError, match=r"regular file \(got a FIFO\)"):
        hw.place((4, 3, 2), None, 256, str(tmp_path / "f.npy"))


def test_sparse_placement_routes_without_a_cores_squared_matrix(tmp_path):
    """Cores spread far apart (a million-core mesh): route tables over used cores only."""
    core = np.array([0, 1, 2, 3, 500_000, 600_000, 700_000, 1_048_575, 1_000_000], np.int64)
    np.save(tmp_path / "m.npy", core)
    with bounded(64 << 20):
        pl = hw.place((4, 3, 2), (1024, 1024), 256, str(tmp_path / "m.npy"))
        rt = hw.route_table(pl, (4, 3, 2))
    x, y = pl.xy(core)
    # neuron 0 (layer 0, core 0) sends to the 3 cores of layer 1 (multicast)
    assert rt.hops_ew[0] == sum(abs(x[0] - x[j]) for j in (4, 5, 6))
    assert rt.hops_ns[0] == sum(abs(y[0] - y[j]) for j in (4, 5, 6))


# --------------------------------------------------------------------------- sessions

def test_batch_bound_before_allocation(tiny):
    x = np.broadcast_to(np.zeros(4), (MAX_STATE_CELLS // 9 + 1, 4))  # no memory behind it
    with bounded(), pytest.raises(EngineError, match=r"inputs: a batch of \d+ samples of 9 neurons "
                                                     r"needs \d+ state cells, more than the limit"):
        engines.session(tiny, x)


# --------------------------------------------------------------------------- IDX datasets

def idx(shape, code=0x08):
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def test_gzip_bomb_refused_without_inflating(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as g:
        g.write(idx((10,)) + bytes(10))
        for _ in range(16):
            g.write(bytes(1 << 22))          # 64 MiB of zeros after the declared payload
    with bounded(8 << 20), pytest.raises(DataError, match=r"payload holds more than \d+ bytes, "
                                                          r"header promises 10"):
        read_idx(path)


def test_idx_declared_size_bounded(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx((10**6, 10**6, 10))))
    with bounded(), pytest.raises(DataError, match=r"declares shape \(1000000, 1000000, 10\).* "
                                                   r"more than the limit"):
        read_idx(path)


def test_idx_shape_checked_before_payload(tmp_path):
    from neuroemu.learn import datasets
    folder = tmp_path / "mnist"
    folder.mkdir()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as g:
        g.write(idx((100, 28, 29)))
        g.write(bytes(1 << 20))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx((100,)) + bytes(100))
    with bounded(4 << 20), pytest.raises(DataError, match=r"shape: expected uint8 images of shape "
                                                          r"\(N, 28, 28\) \(got uint8 \(100, 28, 29\)\)"):
        datasets.load("mnist", data_dir=tmp_path, split="test", verify=False)


def test_idx_fifo_refused(tmp_path):
    os.mkfifo(tmp_path / "x.gz")
    with bounded(seconds=5), pytest.raises(DataError, match=r"must be a regular file \(got a FIFO\)"):
        read_idx(tmp_path / "x.gz")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.sampled_from(
    [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]), st.binary(max_size=300), st.booleans())
def test_generated_idx_headers(tmp_path_factory, shape, code, body, gz):
    data = idx(shape, code) + body
    path = tmp_path_factory.mktemp("idx") / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        with bounded():
            arr = read_idx(path)
    except DataError as exc:
        one_line(exc)
        return
    assert arr.shape == tuple(shape)


# --------------------------------------------------------------------------- HDF5 netlists

@pytest.fixture
def h5net(tmp_path):
    path = tmp_path / "n.h5"
    describe.save(describe.load("tiny"), path)
    return path


def edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def _replace(f, at, **kw):
    grp, _, name = at.rpartition("/")
    del f[at]
    return f[grp or "/"].create_dataset(name, **kw)


@pytest.mark.parametrize("fn,match", [
    (lambda f: _replace(f, "projection/0/weights", shape=(10**6, 10**6), maxshape=(None, None),
                        chunks=(1, 1), dtype="f8"),
     r"projection\[0\]\.weights: must have shape \(4, 3\) \(got shape \(1000000, 1000000\), not read\)"),
    (lambda f: _replace(f, "population/1/bias", shape=(10**12,), maxshape=(None,), chunks=(1,),
                        dtype="f8"),
     r"population\[1\]\.bias: must have shape \(3,\) \(got shape \(1000000000000,\)"),
    (lambda f: f["population"].attrs.__setitem__("count", 10**12),
     r"/population: count: must be an integer in \[0, 100000\] \(got 1000000000000\)"),
    (lambda f: f["population/1"].attrs.__setitem__("size", 10**12),
     r"population\[1\]\.size: must be an integer in \[1, 10000000\]"),
    (lambda f: _replace(f, "source", shape=(10**12,), maxshape=(None,), chunks=(1,), dtype="u1"),
     r"/source: must be UTF-8 text stored as a 1-D uint8 dataset"),
    (lambda f: f["projection/0"].__setitem__("extra", np.zeros(3)),
     r"projection\[0\]\.extra: unknown key"),
])
def test_hdf5_declared_sizes_checked_first(h5net, fn, match):
    edit(h5net, fn)
    with bounded(), pytest.raises(NetlistError, match=match) as info:
        describe.load(h5net)
    one_line(info.value)


def test_hdf5_huge_population_sizes_not_allocated(h5net):
    def fn(f):
        for i in (0, 1, 2):
            f[f"population/{i}"].attrs["size"] = 20_000
        for i in (1, 2):
            del f[f"population/{i}/bias"]
        _replace(f, "projection/0/weights", shape=(20_000, 20_000), maxshape=(None, None),
                 chunks=(1, 1), dtype="f8")
    edit(h5net, fn)
    with bounded(), pytest.raises(NetlistError, match=r"at most 200000000 weights per projection"):
        describe.load(h5net)


def test_trace_embedding_a_huge_netlist(tmp_path):
    """A trace-like file whose embedded netlist declares 10^9 neurons: one line, no allocation."""
    src = tmp_path / "n.h5"
    describe.save(describe.load("tiny"), src)
    path = tmp_path / "trace.h5"
    with h5py.File(src, "r") as a, h5py.File(path, "w") as b:
        b.attrs["magic"] = np.uint32(0x0A7A)
        b.create_group("neuroemu")
        a.copy(a["/"], b["neuroemu"], "netlist")
        b["neuroemu/netlist/population/1"].attrs["size"] = 10**9
        del b["neuroemu/netlist/population/1/bias"]
        b["neuroemu/netlist/population/1"].create_dataset("bias", shape=(10**9,), dtype="f8",
                                                          chunks=(1024,), maxshape=(None,))
    with bounded(), pytest.raises(NetlistError, match=r"trace\.h5: population\[1\]\.size: must be "
                                                      r"an integer in \[1, 10000000\]"):
        describe.load_h5(path)


def test_external_link_refused(h5net, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.ones((4, 3))
    edit(h5net, lambda f: (f["projection/0"].__delitem__("weights"),
                           f["projection/0"].__setitem__("weights", h5py.ExternalLink(str(other),
                                                                                      "/w"))))
    with pytest.raises(NetlistError, match=r"/projection/0/weights: is an external link to "
                                           r".*other\.h5:/w; a netlist must be self-contained"):
        describe.load(h5net)


def test_external_link_to_whole_group_refused(h5net, tmp_path):
    good = tmp_path / "good.h5"
    shutil.copy(h5net, good)
    edit(h5net, lambda f: (f.__delitem__("projection"),
                           f.__setitem__("projection", h5py.ExternalLink(str(good), "/projection"))))
    with pytest.raises(NetlistError, match=r"/projection: is an external link"):
        describe.load(h5net)


@pytest.mark.parametrize("missing_source", [False, True])
def test_virtual_dataset_refused(h5net, tmp_path, missing_source):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["w"] = np.ones((4, 3))
    lay = h5py.VirtualLayout(shape=(4, 3), dtype="f8")
    lay[:] = h5py.VirtualSource(str(src), "w", shape=(4, 3))
    edit(h5net, lambda f: (f["projection/0"].__delitem__("weights"),
                           f["projection/0"].create_virtual_dataset("weights", lay)))
    if missing_source:
        src.unlink()
    with pytest.raises(NetlistError, match=r"/projection/0/weights: is a virtual dataset"):
        describe.load(h5net)


def test_external_storage_refused(h5net, tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones((4, 3)).tobytes())
    edit(h5net, lambda f: _replace(f, "projection/0/weights", shape=(4, 3), dtype="f8",
                                   external=[(str(raw), 0, 96)]))
    with pytest.raises(NetlistError, match=r"is stored in external file\(s\)"):
        describe.load(h5net)


def test_hdf5_non_regular_file(tmp_path):
    os.mkfifo(tmp_path / "f.h5")
    with bounded(seconds=5), pytest.raises(NetlistError, match=r"f\.h5: must be a regular file"):
        describe.load(tmp_path / "f.h5")


def _flip_property(h5net, tmp_path, positions):
    good = describe.load(h5net)
    data = h5net.read_bytes()
    bad = tmp_path / "bad.h5"
    for pos in positions:
        pos %= len(data)
        b = bytearray(data)
        b[pos] ^= 0xFF
        bad.write_bytes(bytes(b))
        try:
            net = describe.load(bad)
        except NetlistError as exc:
            one_line(exc)
            continue
        # a flip the file's checksums cannot see lies outside what the netlist is made of
        assert describe.same(net, good), f"byte {pos}: silently different netlist"


def test_damaged_hdf5_bytes_give_one_line(h5net, tmp_path):
    """Bytes flipped in the metadata (the root object header among them): a NetlistError or
    the same netlist, never a KeyError or another netlist."""
    _flip_property(h5net, tmp_path, range(0, 4096, 7))


@pytest.mark.slow
def test_damaged_hdf5_every_byte(h5net, tmp_path):
    _flip_property(h5net, tmp_path, range(h5net.stat().st_size))


def test_root_header_checksum(h5net):
    """The root group's object header fails its checksum: one line, not a KeyError."""
    with h5py.File(h5net, "r") as f:
        addr = f.id.get_info().addr if hasattr(f.id, "get_info") else h5py.h5o.get_info(f.id).addr
    data = bytearray(h5net.read_bytes())
    data[addr + 12] ^= 0x55
    h5net.write_bytes(bytes(data))
    with pytest.raises(NetlistError) as info:
        describe.load(h5net)
    one_line(info.value)


attr_values = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True), st.booleans(),
    st.text("abc01 .", max_size=4), st.lists(st.integers(-3, 10**12), min_size=0, max_size=3))
targets = st.sampled_from([
    ("/", "seed"), ("/", "name"), ("/", "description"), ("population", "count"),
    ("projection", "count"), ("population/0", "size"), ("population/1", "size"),
    ("population/1", "name"), ("population/1", "role"), ("projection/0", "pre"),
    ("projection/1", "post"), ("population/1/neuron", "predictive"),
    ("population/1/neuron", "encoder"), ("population/2/neuron/eps", "nu_bar"),
    ("population/2/neuron/eps", "reg"), ("population/1/neuron/lam", "value"),
    ("population/1/neuron/lam", "kind"), ("/", "format_version")])


def _set(attrs, key, v):
    if key in attrs:
        del attrs[key]
    if isinstance(v, str):
        attrs.create(key, v, dtype=h5py.string_dtype())
    elif isinstance(v, list):
        attrs.create(key, np.array(v, dtype=np.int64))
    elif isinstance(v, bool):
        attrs.create(key, np.bool_(v))
    else:
        attrs.create(key, v)


def _attr_property(base, tmp_path, edits, shapes):
    path = tmp_path / "g.h5"
    shutil.copy(base, path)
    with h5py.File(path, "a") as f:
        for (where, key), v in edits:
            _set(f[where].attrs, key, v)
        for at, shape in shapes:
            _replace(f, at, shape=shape, maxshape=tuple(None for _ in shape),
                     chunks=tuple(1 for _ in shape), dtype="f8")
    try:
        with bounded():
            describe.load(path)
    except NetlistError as exc:
        one_line(exc)
    except NeuroemuError as exc:  # pragma: no cover - any other class is a bug here
        pytest.fail(f"{type(exc).__name__}: {exc}")


shapes = st.lists(st.tuples(st.sampled_from(["projection/0/weights", "projection/1/weights",
                                             "population/1/bias"]),
                            st.lists(st.integers(0, 10**12), min_size=1, max_size=3).map(tuple)),
                  max_size=2, unique_by=lambda t: t[0])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(targets, attr_values), max_size=3), shapes)
def test_generated_hdf5_netlists(tmp_path_factory, edits, shp):
    tmp = tmp_path_factory.mktemp("h5")
    base = tmp / "base.h5"
    describe.save(describe.load("tiny"), base)
    _attr_property(base, tmp, edits, shp)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(targets, attr_values), max_size=4), shapes)
def test_generated_hdf5_netlists_slow(tmp_path_factory, edits, shp):
    tmp = tmp_path_factory.mktemp("h5")
    base = tmp / "base.h5"
    describe.save(describe.load("tiny"), base)
    _attr_property(base, tmp, edits, shp)
