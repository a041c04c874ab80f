"""Issue 12, class 1: outputs never overwrite what the user has, and appear atomically.

Every refusal is checked through the command line (one line, exit 2, before any work: the
engine entry points are replaced by a tripwire) and the file that was there is unchanged.
Atomicity: writes interrupted at every step (``os.replace`` or ``np.save`` failing after k
calls) leave the old netlist or checkpoint bit for bit, or the new one, never a mix.  Every
file is made in tmp_path (FIFOs too); nothing touches /dev.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import neuroemu
from neuroemu import cli, describe, engines, files, record
from conftest import Work, set_tripwire
from neuroemu.errors import OutputError



@pytest.fixture
def tripwire(monkeypatch):
    """Replace the entry points where commands start their work."""
    set_tripwire(monkeypatch)


def refused(capsys, *argv, pattern: str = "") -> str:
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.startswith("neuroemu: error: ") and err.count("\n") == 1, err
    assert pattern in err, err
    return err


def snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes() if p.is_file() and not p.is_fifo() else None)
            for p in sorted(folder.iterdir())}


@pytest.fixture
def net_toml(tmp_path):
    """A netlist with .npy arrays beside it (80 weights > INLINE_MAX)."""
    path = tmp_path / "net.toml"
    describe.save(describe.layered([10, 8, 3], seed=3), path)
    return path


# ----------------------------------------------------------------- files.check_output

def test_check_output_rules(tmp_path):
    f = tmp_path / "a.h5"
    f.write_text("mine")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-fifo").symlink_to(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(f)
    os.link(f, tmp_path / "hard")
    with pytest.raises(OutputError, match=r"a.h5: already exists \(use --force"):
        files.check_output(f)
    assert files.check_output(f, force=True) == f
    assert files.check_output(f, resumable=True) == f
    for target, why in [(tmp_path, "a directory"), (tmp_path / "fifo", "a FIFO"),
                        (tmp_path / "to-fifo", "a FIFO")]:
        with pytest.raises(OutputError, match=why):
            files.check_output(target, force=True)
    for alias in (f, tmp_path / "link", tmp_path / "hard", tmp_path / "." / "a.h5"):
        with pytest.raises(OutputError, match="is an input of this command"):
            files.check_output(alias, inputs=[f], force=True)
    with pytest.raises(OutputError, match="is not a folder"):
        files.check_output(f / "x.h5")
    with pytest.raises(OutputError, match="needs a file name"):
        files.check_output("")
    (tmp_path / "b.h5.partial").write_text("crashed run")
    with pytest.raises(OutputError, match=r"b.h5.partial: a partial output"):
        files.check_partial(tmp_path / "b.h5")
    files.check_partial(tmp_path / "b.h5", force=True)
    assert f.read_text() == "mine" and (tmp_path / "fifo").is_fifo()


def test_replacing_keeps_the_old_file_on_error_and_leaves_no_temporary(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("old")
    with pytest.raises(RuntimeError):
        with files.replacing(f) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert f.read_text() == "old" and sorted(tmp_path.iterdir()) == [f]
    files.write_text(f, "new")
    assert f.read_text() == "new" and sorted(tmp_path.iterdir()) == [f]
    os.mkfifo(tmp_path / "p")
    with pytest.raises(OutputError, match="a FIFO"):
        files.write_text(tmp_path / "p", "x")


# ----------------------------------------------------------------- run --trace

def test_run_trace_refusals(tmp_path, net_toml, tripwire, capsys):
    npy = next(tmp_path.glob("net.*.npy"))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "to-fifo").symlink_to(tmp_path / "fifo")
    (tmp_path / "old.h5").write_text("an earlier trace")
    (tmp_path / "crash.h5.partial").write_text("what a crashed run left")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(10))
    before = snapshot(tmp_path)
    cases = [(net_toml, "is an input"), (npy, "is an input"), (x, "is an input"),
             (tmp_path, "a directory"), (tmp_path / "fifo", "a FIFO"),
             (tmp_path / "to-fifo", "a FIFO"), (tmp_path / "old.h5", "already exists"),
             (tmp_path / "crash.h5", "a partial output"), (tmp_path / "net.toml" / "t.h5",
                                                          "is not a folder")]
    for trace, why in cases:
        refused(capsys, "run", net_toml, "--input", x, "--trace", trace, pattern=why)
    for trace, why in cases[:6]:     # --force never writes onto an input or a non-file
        refused(capsys, "run", net_toml, "--input", x, "--trace", trace, "--force",
                pattern=why)
    assert snapshot(tmp_path) == before
    with pytest.raises(Work):       # --force: past the checks, to the work
        cli.main(["run", str(net_toml), "--trace", str(tmp_path / "old.h5"), "--force"])
    with pytest.raises(Work):
        cli.main(["run", str(net_toml), "--trace", str(tmp_path / "crash.h5"), "--force"])


def test_run_trace_force_replaces_and_the_writer_refuses_fifos(tmp_path, capsys):
    t = tmp_path / "t.h5"
    assert cli.main(["run", "tiny", "--steps", "3", "--trace", str(t)]) == 0
    capsys.readouterr()
    first = t.read_bytes()
    refused(capsys, "run", "tiny", "--steps", "3", "--trace", t, pattern="already exists")
    assert t.read_bytes() == first
    assert cli.main(["run", "tiny", "--steps", "4", "--trace", str(t), "--force"]) == 0
    with record.open(t) as tr:
        assert tr.t_end == 4
    os.mkfifo(tmp_path / "fifo.h5")
    cn = neuroemu.build(neuroemu.load("tiny"))
    res = engines.session(cn, np.zeros((1, cn.sizes[0]))).run(2, record_spikes=True)
    with pytest.raises(OutputError, match="a FIFO"):      # the library writer too
        record.TraceWriter(tmp_path / "fifo.h5", cn, batch=1)
    os.mkfifo(tmp_path / "g.h5.partial")
    with pytest.raises(OutputError, match="a FIFO"):
        record.TraceWriter(tmp_path / "g.h5", cn, batch=1)
    assert res is not None and (tmp_path / "fifo.h5").is_fifo()


# ----------------------------------------------------------------- other commands

def test_convert_refusals(tmp_path, net_toml, capsys):
    npy = next(tmp_path.glob("net.*.npy"))
    os.mkfifo(tmp_path / "fifo.h5")
    (tmp_path / "have.h5").write_text("mine")
    before = snapshot(tmp_path)
    for dest, why in [(net_toml, "is an input"), (tmp_path / "." / "net.toml", "is an input"),
                      (tmp_path / "fifo.h5", "a FIFO"), (tmp_path / "have.h5", "already exists")]:
        refused(capsys, "convert", net_toml, dest, pattern=why)
    refused(capsys, "convert", net_toml, net_toml, "--force", pattern="is an input")
    assert snapshot(tmp_path) == before
    assert npy.exists()
    assert cli.main(["convert", str(net_toml), str(tmp_path / "have.h5"), "--force"]) == 0


def test_inspect_energy_converge_refusals(tmp_path, net_toml, tripwire, capsys, monkeypatch):
    trace = tmp_path / "t.h5"
    trace.write_bytes(b"not read: the outputs are checked first")
    (tmp_path / "have.png").write_text("mine")
    os.mkfifo(tmp_path / "fifo.png")
    before = snapshot(tmp_path)
    refused(capsys, "inspect", trace, "--raster", trace, pattern="is an input")
    refused(capsys, "inspect", trace, "--states", tmp_path / "have.png", pattern="already exists")
    refused(capsys, "inspect", trace, "--raster", tmp_path / "r.png", "--states",
            tmp_path / "r.png", pattern="is also the output of --raster")
    refused(capsys, "inspect", trace, "--raster", tmp_path / "r", pattern="picture suffix")
    refused(capsys, "energy", net_toml, "--plot", net_toml, "--force", pattern="is an input")
    refused(capsys, "energy", net_toml, "--plot", tmp_path / "fifo.png", "--force",
            pattern="a FIFO")
    refused(capsys, "energy", net_toml, "--plot", tmp_path / "have.png", pattern="already exists")
    refused(capsys, "energy", net_toml, "--plot", tmp_path / "missing" / "x.pnq",
            pattern="picture suffix")
    refused(capsys, "converge", "--json", tmp_path, pattern="a directory")
    refused(capsys, "converge", "--plot", tmp_path / "have.png", pattern="already exists")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "converge.png").write_text("an earlier figure")   # the default name
    refused(capsys, "converge", "--runs", "1", pattern="converge.png: already exists")
    (tmp_path / "converge.png").unlink()
    assert snapshot(tmp_path) == before
    with pytest.raises(Work):
        cli.main(["energy", str(net_toml), "--plot", str(tmp_path / "have.png"), "--force"])
    with pytest.raises(Work):    # a missing folder is made when the file is written
        cli.main(["converge", "--plot", str(tmp_path / "new" / "fig.png")])


def test_demo_replaces_only_its_own_files(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    os.mkfifo(out / "demo-trace.h5")
    refused(capsys, "demo", "--digits", 2, "--out-dir", out, pattern="a FIFO")
    os.unlink(out / "demo-trace.h5")
    (tmp_path / "file").write_text("mine")
    refused(capsys, "demo", "--digits", 2, "--out-dir", tmp_path / "file",
            pattern="is not a folder")
    for _ in range(2):          # its own two files: a second demo replaces them
        assert cli.main(["demo", "--digits", "2", "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["demo-raster.png", "demo-trace.h5"]
    assert (tmp_path / "file").read_text() == "mine"


# ----------------------------------------------------------------- train

@pytest.fixture
def train_data(monkeypatch, tmp_path):
    from neuroemu.cli import train as train_cmd
    from neuroemu.learn.datasets import Dataset
    rng = np.random.default_rng(0)
    images, labels = rng.random((60, 16)), rng.integers(0, 10, 60)
    fit = Dataset(images[:40], labels[:40], "mnist", "train", tmp_path)
    val = Dataset(images[40:], labels[40:], "mnist", "validation", tmp_path)
    monkeypatch.setattr(train_cmd, "_load_data", lambda args: (fit, val, None))
    path = tmp_path / "net.toml"
    describe.save(describe.layered([16, 8, 10], neuron="continuous", seed=1), path)
    return path


def _train(path, *extra):
    return cli.main(["train", str(path), "--steps-free", "4", "--steps-nudged", "2",
                     "--batch", "10", "--no-train-eval", *map(str, extra)])


def test_train_refuses_existing_outputs_and_resumes_its_own(tmp_path, train_data, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = train_data
    refused(capsys, "train", path, "--out", path, "--force", pattern="is an input")
    refused(capsys, "train", path, "--plot", tmp_path, pattern="a directory")
    refused(capsys, "train", path, "--out", tmp_path / "o.json", pattern="unknown netlist")
    assert _train(path) == 0                     # default out: layered-trained.toml
    made = snapshot(tmp_path)
    assert {"layered-trained.toml", "layered-trained.ckpt.npz", "layered-trained-curve.png",
            "layered-trained-history.json"} <= set(made)
    err = refused(capsys, "train", path, pattern="layered-trained.toml: already exists")
    assert "--force" in err                      # two trainings of one netlist: refused
    refused(capsys, "train", path, "--out", "other.toml", "--checkpoint",
            "layered-trained.ckpt.npz", pattern="already exists")
    # resuming from a copy of the checkpoint is another run: its outputs need --force
    (tmp_path / "copy.ckpt.npz").write_bytes((tmp_path / "layered-trained.ckpt.npz").read_bytes())
    refused(capsys, "train", path, "--resume", "copy.ckpt.npz", "--epochs", 2,
            pattern="already exists")
    assert snapshot(tmp_path) == dict(made, **{"copy.ckpt.npz": made["layered-trained.ckpt.npz"]})
    # its own checkpoint: the run's outputs advance
    assert _train(path, "--resume", "layered-trained.ckpt.npz", "--epochs", 2) == 0
    assert neuroemu.load("layered-trained.toml").description.startswith("layered trained")
    assert _train(path, "--force", "--epochs", 1) == 0
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert not leftovers
    # the netlist names only arrays that exist; old epochs' arrays were cleaned up
    refs = files.toml_file_refs(tmp_path / "layered-trained.toml")
    on_disk = {p.name for p in tmp_path.glob("layered-trained.*.npy")}
    assert refs == on_disk


# ----------------------------------------------------------------- atomicity

def _arrays(net):
    return [p.weights.tobytes() for p in net.projections] + \
        [np.asarray(p.bias).tobytes() for p in net.populations]


class Crash(Exception):
    pass


def _crash_after(monkeypatch, module, name, k):
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapped(*a, **kw):
        if calls["n"] >= k:
            raise Crash(f"{name} #{calls['n']}")
        calls["n"] += 1
        return real(*a, **kw)
    monkeypatch.setattr(module, name, wrapped)
    return calls


@pytest.mark.parametrize("suffix", [".toml", ".h5"])
@pytest.mark.parametrize("where", [(os, "replace"), (np, "save")])
def test_describe_save_interrupted_leaves_old_or_new(tmp_path, suffix, where, monkeypatch):
    old = describe.layered([12, 9, 5], seed=1, bias=0.1)
    new = describe.layered([12, 9, 5], seed=2, bias=-0.2)
    path = tmp_path / f"n{suffix}"
    for k in range(8):
        for p in tmp_path.iterdir():
            p.unlink()
        describe.save(old, path)
        with monkeypatch.context() as m:
            calls = _crash_after(m, *where, k)
            try:
                describe.save(new, path)
                done = True
            except Crash:
                done = False
        got = _arrays(describe.load(path))
        assert got == (_arrays(new) if done else _arrays(old)), (k, calls)
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
        if done:
            break
    else:
        pytest.fail("the save never completed")
    if suffix == ".toml":   # the old arrays are gone, the new ones named
        assert files.toml_file_refs(path) == {p.name for p in tmp_path.glob("n.*.npy")}


def test_trained_netlist_and_checkpoint_interrupted(tmp_path, monkeypatch):
    from neuroemu.learn.eqprop import Hyper, Trainer, load_checkpoint, save_checkpoint, \
        save_netlist
    cn = engines.build(describe.layered([12, 9, 5], neuron="continuous", seed=1))
    tr = Trainer(cn, Hyper.for_network(cn, batch=2), seed=0)
    path, ckpt = tmp_path / "t.toml", tmp_path / "t.ckpt.npz"
    save_netlist(cn, path)
    save_checkpoint(ckpt, tr, 1, [], {})
    old, old_ckpt = _arrays(describe.load(path)), ckpt.read_bytes()
    tr.set_params([w * 2 + 0.5 for w in tr.W], [x + 1.0 for x in tr.b])
    save_netlist(cn, tmp_path / "want.toml")
    new = _arrays(describe.load(tmp_path / "want.toml"))
    assert new != old
    for k in range(8):
        with monkeypatch.context() as m:
            _crash_after(m, os, "replace", k)
            try:
                save_netlist(cn, path)
                done = True
            except Crash:
                done = False
        assert _arrays(describe.load(path)) == (new if done else old), k
        if done:
            break
    else:
        pytest.fail("the save never completed")
    with monkeypatch.context() as m:
        _crash_after(m, os, "replace", 0)
        with pytest.raises(Crash):
            save_checkpoint(ckpt, tr, 2, [], {})
    assert ckpt.read_bytes() == old_ckpt
    tr2 = Trainer(cn, Hyper.for_network(cn, batch=2), seed=0)
    assert load_checkpoint(ckpt, tr2)[0] == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_cleanup_keeps_arrays_neuroemu_did_not_name(tmp_path):
    path = tmp_path / "u.toml"
    describe.save(describe.layered([12, 9, 5], seed=1), path)
    ref = sorted(files.toml_file_refs(path))[0]
    (tmp_path / "u.mine.npy").write_bytes((tmp_path / ref).read_bytes())
    path.write_text(path.read_text().replace(f'"{ref}"', '"u.mine.npy"'), encoding="utf-8")
    assert "u.mine.npy" in files.toml_file_refs(path)
    describe.save(describe.layered([12, 9, 5], seed=7), path)
    assert (tmp_path / "u.mine.npy").exists()       # a name neuroemu did not give: kept
