"""The command line: shipped networks by name, ``neuroemu netlists``, ``neuroemu eval`` (and
:func:`neuroemu.learn.evaluate.evaluate` under it), the bus engine's figures in ``run`` and
``energy``, ``--engine`` checks, the demo, and an example in every command's help.

Everything runs from an empty temporary folder (``monkeypatch.chdir(tmp_path)``) and writes
only there."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from conftest import NETLISTS, make_netlist, one_line_error, run_cli
from neuroemu import cli, describe, engines
from neuroemu.errors import EngineError, NetlistError
from neuroemu.learn import datasets
from neuroemu.learn.eqprop import Hyper, Trainer
from neuroemu.learn.evaluate import classify, default_steps, evaluate


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)


# ------------------------------------------------------------------ shipped networks by name

def test_resolve_finds_shipped_networks_by_name():
    ships = describe.shipped()
    assert {"tiny", "mnist-binary-trained", "fig2"} <= set(ships)
    assert describe.resolve("tiny") == ships["tiny"] == describe.shipped_dir() / "tiny.toml"
    assert describe.resolve("tiny.toml") == ships["tiny"]
    assert describe.resolve("mnist-binary-trained").suffix == ".h5"
    assert describe.load("tiny").name == "tiny"


def test_a_local_file_wins_over_a_shipped_name(tmp_path):
    text = (NETLISTS / "tiny.toml").read_text().replace('name = "tiny"', 'name = "mine"')
    (tmp_path / "tiny.toml").write_text(text)
    assert describe.load("tiny.toml").name == "mine"
    assert describe.load("tiny").name == "tiny"          # the bare name is the shipped one
    (tmp_path / "fig2").mkdir()                           # a folder is never a netlist
    assert describe.resolve("fig2") == describe.shipped()["fig2"]


@pytest.mark.parametrize("arg,pattern", [
    ("nothing", r"nothing: file not found \(not a file, nor a shipped network: .*tiny"),
    ("netlists/tiny.toml", r"netlists/tiny.toml: file not found \(a network 'tiny' ships "
                           r"with neuroemu: use the bare name tiny\)"),
    ("./tiny", r"\./tiny: file not found \(a network 'tiny' ships"),
    ("tiny.h5", r"tiny.h5: file not found \(a network 'tiny' ships"),
])
def test_unknown_names_say_what_ships(arg, pattern):
    with pytest.raises(NetlistError, match=pattern):
        describe.resolve(arg)


def test_netlists_lists_every_shipped_network(capsys):
    rc, out, _ = run_cli(capsys, "netlists")
    assert rc == 0
    for name, path in describe.shipped().items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert "-".join(map(str, describe.load(path).sizes)) in line
    assert str(describe.shipped_dir()) in out
    rc, out, _ = run_cli(capsys, "netlists", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(describe.shipped())
    assert all(r["file"] == str(describe.shipped()[r["name"]]) for r in rows)


def test_commands_take_shipped_names(capsys, tmp_path):
    rc, out, _ = run_cli(capsys, "validate", "tiny")
    assert rc == 0 and "tiny: ok -- network 'tiny'" in out
    rc, out, _ = run_cli(capsys, "run", "mnist-binary-trained", "--steps", "5", "--json")
    assert rc == 0 and json.loads(out)["populations"][0]["neurons"] == 784
    rc, out, _ = run_cli(capsys, "convert", "tiny", tmp_path / "tiny.h5")
    assert rc == 0 and describe.same(describe.load(tmp_path / "tiny.h5"), describe.load("tiny"))
    rc, out, _ = run_cli(capsys, "energy", "tiny", "--steps", "5", "--json")
    assert rc == 0 and json.loads(out)["network"] == "tiny"
    one_line_error(capsys, "run", "netlists/tiny.toml")


@pytest.mark.parametrize("command", list(cli.SUBCOMMANDS))
def test_every_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "example" in capsys.readouterr().out


# ------------------------------------------------------------------ eval

SD = {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
      "lam": {"kind": "constant", "value": 0.275}, "eps": {"kind": "osa", "nu_bar": 0.0346}}
STOCH = {"encoder": "stochastic", "predictive": True, "decoder": "predictive",
         "lam": {"kind": "constant", "value": 0.5}, "eps": {"kind": "constant", "eps0": 0.3}}


def idx_file(path, array):
    code = {np.dtype("u1"): 0x08}[array.dtype]
    path.write_bytes(bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.tobytes())


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    """A folder holding an MNIST-shaped test split (10,000 images: the loader checks the
    official size) of random digits, and a 784-6-10 spiking network saved beside it."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = np.zeros((10000, 28, 28), dtype=np.uint8)
    images[:64] = rng.integers(0, 256, (64, 28, 28)) * (rng.random((64, 28, 28)) < 0.3)
    idx_file(folder / "t10k-images-idx3-ubyte", images)
    idx_file(folder / "t10k-labels-idx1-ubyte", (np.arange(10000) % 10).astype(np.uint8))
    path = root / "net.toml"
    describe.save(make_netlist([784, 6, 10], SD, seed=4, bias=0.05, gain=3.0), path)
    return root, path


def plain_run(net, x, steps, seed):
    """The free phase in one plain session (sample ids 0..n-1): (argmax, counters)."""
    sess = engines.session(net, x, seed=seed)
    sess.run(steps)
    return sess.state(net.n_layers - 1).argmax(1), sess.counters()


def test_eval_command_matches_a_plain_session(fake_mnist, capsys):
    root, path = fake_mnist
    rc, out, err = run_cli(capsys, "eval", path, "--dataset", "mnist", "--data", root,
                           "--limit", 30, "--steps", 20, "--batch", 7, "--json")
    assert rc == 0 and err == ""            # no progress bar when stderr is no terminal
    got = json.loads(out)
    ds = datasets.load("mnist", root, split="test")
    net = engines.build(describe.load(path))
    pred, c = plain_run(net, ds.images[:30], 20, net.netlist.seed)
    assert got["predictions"] == pred.tolist()
    assert len(set(pred.tolist())) > 1                  # the test tells classes apart
    wrong = int((pred != ds.labels[:30]).sum())
    assert got["errors"] == wrong and got["error"] == wrong / 30 and got["n"] == 30
    assert got["steps"] == 20 and got["seed"] == 4 and got["split"] == "test"
    spk = c["spikes"].mean(axis=0)
    assert got["spikes_per_population"] == dict(zip(net.names, spk.tolist()))
    assert got["spikes_per_sample"] == pytest.approx(c["spikes"].sum() / 30, rel=1e-15)
    syn = c["syn_events"].mean(axis=0)
    assert got["syn_events_per_projection"] == {
        "input->h1": syn[0, 0], "h1->input": syn[0, 1],
        "h1->output": syn[1, 0], "output->h1": syn[1, 1]}
    assert got["syn_events_per_sample"] == pytest.approx(c["syn_events"].sum() / 30, rel=1e-15)
    rc, text, _ = run_cli(capsys, "eval", path, "--dataset", "mnist", "--data", root,
                          "--limit", 30, "--steps", 20)
    assert rc == 0 and f"test error {100 * wrong / 30:.2f}% ({wrong} of 30" in text
    assert f"spikes per sample: {c['spikes'].sum() / 30:.1f} = " in text


def test_eval_split_fit_is_the_images_training_fits(fake_mnist, tmp_path, monkeypatch, capsys):
    """--split fit: training images 0..n-10,001 (train_validation_split's first part, what
    neuroemu train fits by default); validation the rest; train all of them.  A training file
    of 10,010 images (the standard size check is patched down to it) keeps the test small:
    fit = images 0-9, validation = 10-10,009."""
    root, path = fake_mnist
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    images = np.zeros((10010, 28, 28), dtype=np.uint8)
    images[:20] = rng.integers(0, 256, (20, 28, 28)) * (rng.random((20, 28, 28)) < 0.3)
    idx_file(folder / "train-images-idx3-ubyte", images)
    idx_file(folder / "train-labels-idx1-ubyte", (np.arange(10010) * 7 % 10).astype(np.uint8))
    monkeypatch.setitem(datasets.SPLIT_SIZES, "train", 10010)
    full = datasets.load("mnist", folder.parent, split="train")
    fit, val = datasets.train_validation_split(full)
    net = engines.build(describe.load(path))

    def run(split, *extra):
        rc, out, _ = run_cli(capsys, "eval", path, "--dataset", "mnist", "--data",
                             folder.parent, "--split", split, "--steps", 20, "--json", *extra)
        assert rc == 0
        return json.loads(out)

    got = run("fit")
    pred, _ = plain_run(net, fit.images, 20, net.netlist.seed)
    assert np.array_equal(fit.images, full.images[:10]) and got["n"] == 10
    assert got["predictions"] == pred.tolist() and len(set(pred.tolist())) > 1
    assert got["errors"] == int((pred != fit.labels).sum())
    assert got["split"] == "fit" and got["first_image"] == 0
    assert got["images"] == "mnist training images 0-9, the ones neuroemu train fits"
    got = run("validation", "--limit", 5)
    pred, _ = plain_run(net, val.images[:5], 20, net.netlist.seed)
    assert np.array_equal(val.images[:5], full.images[10:15])
    assert got["predictions"] == pred.tolist() and got["first_image"] == 10
    assert got["images"] == "mnist training images 10-14, held out for validation"
    got = run("train", "--limit", 12)
    assert got["predictions"][:10] == run("fit")["predictions"] and got["first_image"] == 0
    rc, text, _ = run_cli(capsys, "eval", path, "--dataset", "mnist", "--data", folder.parent,
                          "--split", "fit", "--steps", 20)
    err = int((plain_run(net, fit.images, 20, net.netlist.seed)[0] != fit.labels).sum())
    assert rc == 0 and "on mnist training images 0-9, the ones neuroemu train fits" in text
    assert (f"train error (the paper's: training images after training) {10 * err:.2f}% "
            f"({err} of 10 misclassified") in text


def test_evaluate_classifies_as_training_validates(fake_mnist):
    root, path = fake_mnist
    ds = datasets.load("mnist", root, split="test")
    x, y = ds.images[:25], ds.labels[:25]
    net = engines.build(describe.load(path))
    res = evaluate(net, x, y, batch=10)
    assert res.steps == default_steps(net) == Hyper.for_network(net).n_free == 100
    err, spikes = Trainer(net, Hyper.for_network(net), seed=net.netlist.seed).evaluate(x, y)
    assert res.error == err and res.spikes_per_sample == pytest.approx(spikes, rel=1e-15)
    d = res.to_dict()
    assert d["predictions"] == res.predictions.tolist() and d["accuracy"] == 1 - err
    assert "predictions" not in res.to_dict(predictions=False)


def test_evaluate_does_not_depend_on_batching():
    net = engines.build(make_netlist([12, 7, 5], STOCH, seed=2, gain=2.0))
    x = np.random.default_rng(3).random((11, 12))
    y = np.arange(11) % 5
    one = evaluate(net, x, y, steps=15, batch=11)
    for batch, threads in ((3, 1), (4, 2)):
        other = evaluate(net, x, y, steps=15, batch=batch, threads=threads)
        assert np.array_equal(one.predictions, other.predictions)
        assert one.to_dict() == other.to_dict()
    pred, c = plain_run(net, x, 15, net.netlist.seed)
    assert np.array_equal(one.predictions, pred)
    got = classify(net, x, 15, batch=4)
    for k, v in c.items():
        assert np.array_equal(got.counters[k], v), k


@pytest.mark.parametrize("kw,pattern", [
    ({"steps": 0}, r"steps: must be a positive integer \(got 0\)"),
    ({"batch": -1}, r"batch: must be a positive integer \(got -1\)"),
    ({"threads": 0}, r"threads: must be a positive integer \(got 0\)"),
])
def test_evaluate_rejects_bad_settings(tiny, kw, pattern):
    with pytest.raises(EngineError, match=pattern):
        evaluate(tiny, np.zeros((2, 4)), [0, 1], **kw)
    with pytest.raises(EngineError, match=r"images: must have shape \(batch, 4\) \(got shape "
                                          r"\(2, 5\)\)"):
        evaluate(tiny, np.zeros((2, 5)), [0, 1])
    with pytest.raises(EngineError, match=r"labels: must be 2 integers"):
        evaluate(tiny, np.zeros((2, 4)), [0, 1, 1])


@pytest.mark.parametrize("extra,pattern", [
    (["--steps", "0"], r"--steps: must be a positive integer \(got 0\)"),
    (["--limit", "0"], r"--limit: must be a positive integer \(got 0\)"),
    (["--batch", "0"], r"--batch: must be a positive integer \(got 0\)"),
    (["--split", "dev"], r"--split: must be one of test, train, fit, validation \(got 'dev'\)"),
])
def test_eval_bad_options(fake_mnist, capsys, extra, pattern):
    root, path = fake_mnist
    err = one_line_error(capsys, "eval", path, "--dataset", "mnist", "--data", root, *extra)
    assert re.search(pattern, err), err


def test_eval_bad_data(fake_mnist, capsys, tmp_path):
    root, path = fake_mnist
    err = one_line_error(capsys, "eval", "tiny", "--dataset", "mnist", "--data", root)
    assert "input population has 4 neurons, but mnist images have 784 pixels" in err
    err = one_line_error(capsys, "eval", path, "--dataset", "mnist", "--data", tmp_path / "none")
    assert "mnist: data not found" in err and str(tmp_path / "none") in err
    err = one_line_error(capsys, "eval", path, "--dataset", "cifar", "--data", root)
    assert "unknown dataset 'cifar'" in err


# ------------------------------------------------------------------ the bus engine

MESH_HW = {"cluster_size": 2, "bus": {"topology": "mesh", "latency": 10},
           "mesh": {"width": 4, "height": 2}}
LATE_HW = {"quanta": 100, "bus": {"latency": 250, "bandwidth": 3}}


def hw_netlist(tmp_path, hardware, name="chip.toml"):
    path = tmp_path / name
    describe.save(make_netlist([6, 5, 3], SD, seed=3, gain=2.0, extra={"hardware": hardware}),
                  path)
    return path


def test_run_async_reports_the_bus(tmp_path, capsys):
    path = hw_netlist(tmp_path, LATE_HW)
    rc, out, _ = run_cli(capsys, "run", path, "--engine", "async", "--batch", 2, "--steps", 40,
                         "--json")
    got = json.loads(out)
    net = describe.load(path)
    x = np.random.default_rng(net.seed).random((2, 6))
    sess = engines.session(net, x, engine="async")
    sess.run(40)
    want = sess.bus_report()
    assert rc == 0 and got["engine"] == "async" and got["bus"] == want
    assert want["late"] > 0 and want["mean_queue_delay_ticks"] > 0     # the settings bite
    assert got["hardware"]["latency"] == 250 and got["hardware"]["bandwidth"] == 3
    rc, text, _ = run_cli(capsys, "run", path, "--engine", "async", "--batch", 2, "--steps", 40)
    assert f"bus: {want['packets']} packets, {want['late']} late" in text
    assert f"mean queue delay {want['mean_queue_delay_ticks']:.4g} ticks" in text
    assert f"utilisation {want['utilisation']:.4f}" in text
    assert f"hardware ([hardware] of {path})" in text and "latency 250" in text
    rc, out, _ = run_cli(capsys, "run", path, "--json")
    lock = json.loads(out)
    assert lock["engine"] == "lockstep" and "bus" not in lock


@pytest.mark.parametrize("command", ["run", "energy"])
def test_unknown_engine_lists_every_engine(command, capsys):
    err = one_line_error(capsys, command, "tiny", "--engine", "warp")
    assert "--engine: must be one of" in err and "(got 'warp')" in err
    for name in engines.ENGINES:
        assert name in err


def test_energy_async_runs_on_the_netlists_hardware(tmp_path, capsys):
    path = hw_netlist(tmp_path, LATE_HW)
    args = ["energy", path, "--engine", "async", "--batch", 2, "--steps", 40, "--json"]
    rc, out, _ = run_cli(capsys, *args)
    got = json.loads(out)
    net = describe.load(path)
    x = np.random.default_rng(net.seed).random((2, 6))
    sess = engines.session(net, x, engine="async")      # the netlist's [hardware]
    sess.run(40)
    c = sess.counters()
    assert rc == 0 and got["engine"] == "async" and got["bus"] == sess.bus_report()
    assert got["counts"]["messages"] == c["spikes"].sum()
    assert got["hardware"]["latency"] == 250 and got["hardware_source"] == f"[hardware] of {path}"
    ideal = engines.session(net, x, engine="async", hardware={})
    ideal.run(40)
    assert ideal.counters()["spikes"].sum() != c["spikes"].sum()   # the hardware mattered
    rc, text, _ = run_cli(capsys, *args[:-1])
    assert rc == 0 and f"async engine hardware ([hardware] of {path}): quanta 100" in text
    assert "latency 250" in text and f"bus: {got['bus']['packets']} packets" in text


def test_energy_async_prices_the_hardware_mesh(tmp_path, capsys):
    path = hw_netlist(tmp_path, MESH_HW)
    rc, out, _ = run_cli(capsys, "energy", path, "--engine", "async", "--batch", 3, "--steps",
                         30, "--nudge-steps", 10, "--json")
    got = json.loads(out)
    assert rc == 0 and got["mesh"] == "4x2" and got["placement"] == "hardware-clusters"
    assert got["neurons_per_core"] == 2 and got["cores_used"] == 8
    net = describe.load(path)
    rng = np.random.default_rng(net.seed)
    x = rng.random((3, 6))
    y = np.eye(3)[rng.integers(0, 3, 3)]
    sess = engines.session(net, x, engine="async")
    sess.run(30)
    sess.run(10, beta=0.5, target=y)
    c = sess.counters()
    # the energy model's packets and hops are the engine's own on that mesh
    assert got["counts"]["packet"] == c["packets"].sum()
    assert got["counts"]["hop_ew"] + got["counts"]["hop_ns"] == c["hops"].sum()
    err = one_line_error(capsys, "energy", path, "--engine", "async", "--mesh", "4x4")
    assert "--mesh: the async engine ran on the 4x2 mesh" in err and "(got --mesh 4x4)" in err


def test_validate_shows_the_hardware(tmp_path, capsys):
    path = hw_netlist(tmp_path, MESH_HW)
    rc, out, _ = run_cli(capsys, "validate", path)
    assert rc == 0 and "topology mesh" in out and "mesh [4, 2] (used by --engine async)" in out


# ------------------------------------------------------------------ the demo

def test_demo_prints_the_figures(capsys):
    rc, out, _ = run_cli(capsys, "demo", "--no-files")
    assert rc == 0
    assert "accuracy 99.00% (3 errors in 300)" in out
    assert "spikes per digit: 12667 in total" in out
    assert "energy on profile 'loihi': 121.9 uJ per classified digit" in out


def test_demo_writes_its_files_where_asked(tmp_path, capsys):
    rc, out, _ = run_cli(capsys, "demo", "--digits", 2, "--out-dir", tmp_path / "o")
    assert rc == 0 and (tmp_path / "o" / "demo-raster.png").is_file()
    assert (tmp_path / "o" / "demo-trace.h5").is_file()
    assert "--digits: must be an integer in 1..300 (got 301)" in one_line_error(capsys, "demo", "--digits",
                                                                      301)
