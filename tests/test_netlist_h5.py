"""HDF5 netlists: exact TOML <-> HDF5 round trips, saving replaced weights, damaged files."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from neuroemu import cli

from neuroemu import describe
from neuroemu.engines import compiled as compiler
from neuroemu.errors import NetlistError

from conftest import NETLISTS, ROOT

SHIPPED = sorted(p.name for p in NETLISTS.glob("*.toml"))


def assert_same(a, b):
    """Field by field, arrays bit for bit (independent of describe.same)."""
    assert (a.name, a.seed, a.description, a.hardware, a.format) == \
        (b.name, b.seed, b.description, b.hardware, b.format)
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations):
        assert (p.size, p.shape, p.role, p.neuron) == (q.size, q.shape, q.role, q.neuron)
        assert p.bias.dtype == q.bias.dtype == np.float64
        assert p.bias.tobytes() == q.bias.tobytes()
    assert len(a.projections) == len(b.projections)
    for p, q in zip(a.projections, b.projections):
        assert (p.pre, p.post) == (q.pre, q.post)
        assert (p.label, p.kind, p.symmetric, p.params) == (q.label, q.kind, q.symmetric, q.params)
        assert (p.indices is None and q.indices is None) or \
            p.indices.tobytes() == q.indices.tobytes()
        assert p.weights.shape == q.weights.shape and p.weights.tobytes() == q.weights.tobytes()


@pytest.mark.parametrize("name", SHIPPED)
def test_toml_h5_toml_round_trip_is_exact(name, tmp_path):
    net = describe.load(NETLISTS / name)
    h5 = describe.save(net, tmp_path / "n.h5")
    back = describe.load(h5)
    assert_same(net, back)
    assert back.text == net.text           # the TOML source travels along
    toml = describe.save(back, tmp_path / "n.toml")
    again = describe.load(toml)
    assert_same(net, again)
    describe.save(again, tmp_path / "n2.h5")
    with h5py.File(tmp_path / "n.h5") as f, h5py.File(tmp_path / "n2.h5") as g:
        for i in range(len(net.projections)):
            if "weights" not in f[f"projection/{i}"]:     # avgpool2d: fixed weights
                assert "weights" not in g[f"projection/{i}"]
                continue
            a, b = f[f"projection/{i}/weights"], g[f"projection/{i}/weights"]
            if isinstance(a, h5py.Group):                  # sparse: row, col, data
                assert sorted(a) == sorted(b)
                assert all(np.array_equal(a[k][()], b[k][()]) for k in a)
            else:
                assert np.array_equal(a[()], b[()])


def test_layout_is_readable_with_plain_h5py(tmp_path):
    net = describe.load(NETLISTS / "tiny.toml")
    describe.save(net, tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5") as f:
        assert f.attrs["format"].decode() == "neuroemu-netlist"
        assert list(f.attrs["format_version"]) == [1, 0]
        assert f.attrs["name"].decode() == "tiny" and int(f.attrs["seed"]) == 7
        w0 = f["projection/0/weights"][()]
        assert w0.tolist() == [[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.7],
                               [0.25, -0.3, 0.05]]          # the numbers in tiny.toml
        assert f["population/1/bias"][()].tolist() == [0.1, -0.05, 0.0]
        assert "bias" not in f["population/0"]
        assert f["population/2"].attrs["name"].decode() == "output"
        assert f["population/1/neuron/eps"].attrs["kind"].decode() == "osa"
        assert float(f["population/1/neuron/eps"].attrs["nu_bar"]) == 0.0346
        assert float(f["population/1/neuron/lam"].attrs["value"]) == 0.275
        assert f["projection/0/weights"].fletcher32


def test_toml_output_inlines_small_arrays_and_writes_npy_for_large(tmp_path):
    net = describe.load(NETLISTS / "mnist-binary.toml")
    describe.save(net, tmp_path / "m.toml")
    text = (tmp_path / "m.toml").read_text()
    fname = next(p.name for p in tmp_path.glob("m.input-hidden.weights.*.npy"))
    assert f'weights = {{ file = "{fname}" }}' in text
    assert np.load(tmp_path / fname).tobytes() == \
        net.projections[0].weights.tobytes()
    assert "bias = 0.0" in text                               # constant bias as one number
    tiny = describe.load(NETLISTS / "tiny.toml")
    describe.save(tiny, tmp_path / "t.toml")
    assert "bias = [0.1, -0.05, 0.0]" in (tmp_path / "t.toml").read_text()


def test_compiled_to_netlist_keeps_trained_weights(tmp_path):
    net = describe.load(NETLISTS / "tiny.toml")
    cn = compiler.build(net)
    w = np.arange(6, dtype=np.float32).reshape(3, 2) / 7   # "trained"
    cn.set_weights(1, w)
    cn.bias[cn.off[2]:cn.off[3]] = [0.25, -0.5]
    describe.save(cn.to_netlist(), tmp_path / "trained.h5")
    back = describe.load(tmp_path / "trained.h5")
    assert back.projections[1].weights.tolist() == w.astype(np.float64).tolist()
    assert back.populations[2].bias.tolist() == [0.25, -0.5]
    assert back.projections[0].weights.tolist() == \
        net.projections[0].weights.astype(np.float32).astype(np.float64).tolist()
    cn2 = compiler.build(back)
    assert cn2.wf.tobytes() == cn.wf.tobytes() and cn2.wb.tobytes() == cn.wb.tobytes()


def test_replace_weights_and_biases(tmp_path):
    net = describe.load(NETLISTS / "tiny.toml")
    w1 = np.full((3, 2), 0.125)
    out = describe.replace(net, weights={"hidden->output": w1}, biases={"output": [1.0, 2.0]})
    assert out.projections[1].weights.tolist() == w1.tolist()
    assert out.projections[0].weights.tobytes() == net.projections[0].weights.tobytes()
    assert out.populations[2].bias.tolist() == [1.0, 2.0]
    describe.save(net, tmp_path / "r.h5", weights=[None, w1], biases=[None, None, [3.0, 4.0]])
    back = describe.load(tmp_path / "r.h5")
    assert back.projections[1].weights.tolist() == w1.tolist()
    assert back.populations[2].bias.tolist() == [3.0, 4.0]
    with pytest.raises(NetlistError, match=r"projection\[1\]\.weights: must have shape \(3, 2\) "
                                           r"\(got shape \(2, 3\)\)"):
        describe.save(net, tmp_path / "bad.h5", weights={1: np.zeros((2, 3))})
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(NetlistError, match=r"weights: no entry 'a->b'"):
        describe.replace(net, weights={"a->b": w1})
    with pytest.raises(NetlistError, match=r"weights: must give 2 arrays .* \(got 1\)"):
        describe.replace(net, weights=[w1])
    with pytest.raises(NetlistError, match=r"input population 'input' has no bias"):
        describe.replace(net, biases={"input": np.ones(4)})
    with pytest.raises(NetlistError, match=r"population\[1\]\.bias\[1\]: must be finite"):
        describe.replace(net, biases={"hidden": [0.0, np.nan, 0.0]})


def test_hardware_and_strings_round_trip(tmp_path):
    src = (NETLISTS / "tiny.toml").read_text().replace(
        'description = "4-3-2 sigma-delta network with predictive coding and OSA step sizes"',
        'description = "quote \\" backslash \\\\ tab \\t newline \\n unicode \\u00e9\\u4e2d"')
    src += ('\n[hardware]\nprofile = "loihi-like"\nbits = 8\nscale = 1.5e-12\nflags = [1, 2, 3]'
            '\non = true\n[hardware.bus]\nlatency = 10\n[[hardware.cores]]\nid = 0\n'
            '[[hardware.cores]]\nid = 1\nname = "b"\n')
    (tmp_path / "h.toml").write_text(src)
    net = describe.load(tmp_path / "h.toml")
    assert net.hardware["cores"][1] == {"id": 1, "name": "b"} and "\u4e2d" in net.description
    describe.save(net, tmp_path / "h.h5")
    back = describe.load(tmp_path / "h.h5")
    assert_same(net, back)
    assert isinstance(back.hardware["bits"], int) and isinstance(back.hardware["scale"], float)
    describe.save(back, tmp_path / "h2.toml")
    assert_same(net, describe.load(tmp_path / "h2.toml"))


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def test_damaged_foreign_and_newer_files_raise(tmp_path):
    good = describe.save(describe.load(NETLISTS / "tiny.toml"), tmp_path / "g.h5")
    data = good.read_bytes()
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(NetlistError, match=r"text\.h5: not a readable HDF5 file"):
        describe.load(tmp_path / "text.h5")
    (tmp_path / "cut.h5").write_bytes(data[:len(data) // 2])
    with pytest.raises(NetlistError, match=r"cut\.h5: (not a readable HDF5 file|damaged)"):
        describe.load(tmp_path / "cut.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(NetlistError, match=r"foreign\.h5: not a neuroemu netlist"):
        describe.load(tmp_path / "foreign.h5")
    for name, fn, pattern in [
        ("newer.h5", lambda f: f.attrs.modify("format_version", np.array([2, 0], np.uint32)),
         r"format_version: netlist format 2\.0 is not readable"),
        ("kind.h5", lambda f: describe.h5.set_str(f["population/1/neuron"].attrs, "encoder",
                                                 "laser"),
         r"kind\.h5: population\[1\]\.neuron\.encoder: must be one of"),
        ("gap.h5", lambda f: f.move("population/2", "population/5"),
         r"/population: must hold groups 0\.\.2 \(got 0, 1, 5\)"),
        ("shape.h5", lambda f: (f["projection/0"].__delitem__("weights"),
                                f["projection/0"].create_dataset("weights", data=np.zeros((3, 4)))),
         r"projection\[0\]\.weights: must have shape \(4, 3\)"),
    ]:
        (tmp_path / name).write_bytes(data)
        _edit(tmp_path / name, fn)
        with pytest.raises(NetlistError, match=pattern):
            describe.load(tmp_path / name)
    # a flipped byte inside the weights' stored chunk: the checksum catches it
    with h5py.File(good) as f:
        info = f["projection/0/weights"].id.get_chunk_info(0)
    bad = bytearray(data)
    bad[info.byte_offset + info.size // 2] ^= 0xFF
    (tmp_path / "flip.h5").write_bytes(bytes(bad))
    with pytest.raises(NetlistError, match=r"flip\.h5: damaged or incomplete HDF5 netlist"):
        describe.load(tmp_path / "flip.h5")


def test_convert_cli(tmp_path, capsys):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.toml", tmp_path / "c.h5"
    assert cli.main(["convert", str(NETLISTS / "mnist-binary.toml"), str(a)]) == 0
    assert "read back: identical" in capsys.readouterr().out
    assert cli.main(["convert", str(a), str(b)]) == 0
    assert cli.main(["convert", str(b), str(c)]) == 0
    assert_same(describe.load(NETLISTS / "mnist-binary.toml"), describe.load(c))
    assert cli.main(["convert", str(b), str(c)]) == 2
    assert "c.h5: already exists (use --force to overwrite)" in capsys.readouterr().err
    assert cli.main(["convert", str(b), str(c), "--force"]) == 0
    assert cli.main(["convert", str(b), str(tmp_path / "x.json")]) == 2
    assert "x.json: unknown netlist file type" in capsys.readouterr().err


def test_convert_help_has_an_example():
    out = subprocess.run([sys.executable, "-m", "neuroemu", "convert", "--help"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    assert "neuroemu convert tiny traces/tiny.h5" in out
