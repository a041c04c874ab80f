"""The public API (``import neuroemu``, docs/api.md) against the command line and the
lower-level functions it wraps -- and every Python block of docs/api.md, run as written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

import neuroemu
from conftest import ROOT, make_netlist
from neuroemu import cli
from neuroemu.describe.netlist import glorot_uniform
from neuroemu.energy import accounting as E
from neuroemu.energy import hardware as hw
from neuroemu.energy.report import EnergyReport, plot_reports
from neuroemu.learn import converge
from neuroemu.learn.datasets import Dataset, one_hot
from neuroemu.learn.eqprop import Hyper, Trainer
from neuroemu.learn.plots import plot_learning_curve

STOCH = {"encoder": "stochastic", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}
CONTINUOUS = {"encoder": "none", "predictive": False, "decoder": "identity",
              "eps": {"kind": "constant", "eps0": 0.5}}


# ----------------------------------------------------------------------------- docs/api.md

def doc_blocks():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, re.S):
        line = text.count("\n", 0, m.start()) + 2
        out.append(pytest.param(m.group(1), id=f"api.md:{line}"))
    return out


def test_the_doc_has_blocks_and_names_every_public_name():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert len(doc_blocks()) >= 20
    missing = [n for n in neuroemu.__all__ if n != "__version__" and f"`{n}`" not in text]
    assert not missing, f"docs/api.md does not document {missing}"


@pytest.mark.parametrize("code", doc_blocks())
def test_doc_block_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)      # the examples write their files here
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "__doc_example__"})
    assert capsys.readouterr().out.strip()


def test_every_public_name_is_importable():
    for name in neuroemu.__all__:
        assert getattr(neuroemu, name) is not None


# ----------------------------------------------------------------------------- networks

def test_layered_is_the_shipped_mnist_binary_network():
    shipped = neuroemu.load("mnist-binary")
    made = neuroemu.layered([784, 500, 10], "binary", seed=shipped.seed)
    assert [(p.name, p.size, p.role, p.neuron) for p in made.populations] == \
        [(p.name, p.size, p.role, p.neuron) for p in shipped.populations]
    for a, b in zip(made.projections, shipped.projections):
        assert (a.pre, a.post) == (b.pre, b.post) and np.array_equal(a.weights, b.weights)


def test_layered_weights_biases_and_names():
    net = neuroemu.layered([5, 4, 4, 3], CONTINUOUS, seed=2, bias=0.25, gain=0.5, name="x")
    assert [p.name for p in net.populations] == ["input", "hidden1", "hidden2", "output"]
    for i, pr in enumerate(net.projections):
        want = glorot_uniform((pr.weights.shape), 2 * 1000 + i, 0.5)
        assert np.array_equal(pr.weights, want)
    assert all((p.bias == 0.25).all() for p in net.populations[1:])
    with pytest.raises(neuroemu.NeuroemuError, match=r"neuron: must be one of .*'spiky'"):
        neuroemu.layered([2, 2], "spiky")
    with pytest.raises(neuroemu.NeuroemuError, match=r"population\[1\].size.*\(got 0\)"):
        neuroemu.layered([2, 0, 2])


def test_digits_are_the_bundled_test_images():
    x, y = neuroemu.digits()
    assert x.shape == (300, 784) and x.min() == 0.0 and x.max() == 1.0
    with np.load(ROOT / "neuroemu" / "data" / "mnist_test_digits.npz") as z:
        assert np.array_equal(x * 255.0, z["images"].reshape(300, 784))
        assert np.array_equal(y, z["labels"])


def test_run_result_accessors_slice_the_recorded_phases(tiny):
    x = np.random.default_rng(0).random((3, 4))
    r = neuroemu.run(tiny, x, 12, nudge_steps=5, beta=0.5, target=np.eye(2)[[0, 1, 0]],
                     record_spikes=True, record_states=True)
    free, nudged = r.phases
    assert np.array_equal(r.spikes(), np.concatenate([free.spikes, nudged.spikes]))
    assert np.array_equal(r.spikes("hidden"), r.spikes()[:, :, 4:7])
    assert np.array_equal(r.states("output", phase="nudged"), nudged.states[:, :, 7:9])
    assert np.array_equal(r.states("output", phase=0), free.states[:, :, 7:9])
    assert np.array_equal(r.states("output")[-1], r.final_states["output"])
    assert r.phase("nudged") is nudged and "tiny (4-3-2), batch 3" in repr(r)
    with pytest.raises(neuroemu.NeuroemuError, match="no population named 'hiden'"):
        r.spikes("hiden")
    with pytest.raises(neuroemu.NeuroemuError, match="no phase named 'x'"):
        r.phase("x")
    assert neuroemu.run(tiny, x, 3).spikes("hidden") is None


def test_write_trace_takes_a_netlist(tmp_path, tiny):
    x = np.full((2, 4), 0.5)
    r = neuroemu.run(tiny, x, 10, record_spikes=True)
    path = neuroemu.write_trace(tmp_path / "t.h5", tiny, r, x=x)
    with neuroemu.open_trace(path) as tr:
        assert tr.layers == ["input", "hidden", "output"]
        hidden = r.spikes("hidden")[:, 1].sum(axis=0)
        assert np.array_equal(tr.counts("hidden.1"), hidden)


# ----------------------------------------------------------------------------- energy

def _cli_json(args, capsys):
    assert cli.main(["energy", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def test_estimate_energy_equals_the_command_on_a_netlist(tmp_path, capsys):
    net = make_netlist((6, 5, 4), STOCH, seed=3)
    path = tmp_path / "n.toml"
    neuroemu.save(net, path)
    rng = np.random.default_rng(8)
    x, y = rng.random((3, 6)), np.eye(4)[[1, 0, 3]]
    np.save(tmp_path / "x.npy", x)
    want = _cli_json([str(path), "--input", str(tmp_path / "x.npy"), "--steps", "9",
                      "--mesh", "3x3", "--neurons-per-core", "3", "--profile", "truenorth"],
                     capsys)
    kw = dict(mesh="3x3", neurons_per_core=3)
    r = neuroemu.run(net, x, 9, record_spikes=True)
    by_result = neuroemu.estimate_energy(r, "truenorth", net=net, **kw).to_dict()
    by_run = neuroemu.estimate_energy(str(path), "truenorth", x=x, steps=9, **kw).to_dict()
    assert _without(by_result, "source", "input") == _without(want, "source", "input")
    assert _without(by_run, "input") == _without(want, "input")
    assert by_run["input"].startswith("input x of 3 sample(s); seed 3")
    # a nudged phase: the result's two phases against the lower-level functions
    r = neuroemu.run(net, x, 9, nudge_steps=4, beta=0.5, target=y, record_spikes=True)
    rep = neuroemu.estimate_energy(r, "loihi", net=net, **kw)
    pl = hw.place(net.sizes, (3, 3), 3)
    setup = E.Setup(tuple(p.name for p in net.populations), net.sizes, E.coding_of(net), pl,
                    hw.route_table(pl, net.sizes, True))
    direct = E.report(setup, E.run_network(neuroemu.build(net), x, 9, 4, 0.5, y, net.seed),
                      hw.load_profile("loihi"))
    assert _without(rep.to_dict(), "source", "network", "input") == direct
    assert rep.per_training_update_j == direct["per_training_update_j"]
    assert rep.by_phase == {k: v["total_j"] for k, v in direct["phases"].items()}


def test_estimate_energy_of_a_trace_is_the_commands_json_and_text(tmp_path, capsys):
    net = make_netlist((6, 5, 4), STOCH, seed=3)
    x = np.random.default_rng(8).random((3, 6))
    r = neuroemu.run(net, x, 11, nudge_steps=7, beta=0.5, target=np.eye(4)[[1, 0, 3]],
                     record_spikes=True)
    path = str(neuroemu.write_trace(tmp_path / "t.h5", net, r, x=x, samples=[0, 2]))
    want = _cli_json([path, "--profile", "all", "--routing", "unicast"], capsys)
    got = neuroemu.estimate_energy(path, "all", multicast=False)
    assert [g.to_dict() for g in got] == want
    with neuroemu.open_trace(path) as tr:
        assert neuroemu.estimate_energy(tr, "loihi", multicast=False).to_dict() == want[1]
    assert cli.main(["energy", path, "--profile", "loihi", "--routing", "unicast"]) == 0
    text = capsys.readouterr().out
    rep = got[1]
    assert text.strip() == rep.summary().strip() == str(rep).strip()
    assert rep.per_sample_j == want[1]["total_j"] / 2 and rep.batch == 2
    assert "on loihi" in repr(rep)


def test_estimate_energy_says_what_is_missing(tiny):
    x = np.full((1, 4), 0.5)
    unrecorded = neuroemu.run(tiny, x, 5)
    with pytest.raises(neuroemu.NeuroemuError, match=r"phases\[0\] \('free'\): recorded no "
                       r"spikes.*record_spikes=True.*estimate_energy\(net, x=\.\.\.\)"):
        neuroemu.estimate_energy(unrecorded, net=tiny)
    sparse = neuroemu.run(tiny, x, 6, record_spikes=True, every=2)
    with pytest.raises(neuroemu.NeuroemuError, match="every 2 steps, not every step"):
        neuroemu.estimate_energy(sparse, net=tiny)
    recorded = neuroemu.run(tiny, x, 5, record_spikes=True)
    with pytest.raises(neuroemu.NeuroemuError, match="net: required with a RunResult"):
        neuroemu.estimate_energy(recorded)
    with pytest.raises(neuroemu.NeuroemuError, match=r"net: t \(4-2-2\) is not the network of "
                       r"the result \(4-3-2\)"):
        neuroemu.estimate_energy(recorded, net=make_netlist((4, 2, 2), STOCH))
    with pytest.raises(neuroemu.NeuroemuError, match="x: the input batch"):
        neuroemu.estimate_energy(tiny)
    with pytest.raises(neuroemu.NeuroemuError, match=r"x: must have shape \(batch, 4\)"):
        neuroemu.estimate_energy(tiny, x=np.zeros((1, 3)))
    with pytest.raises(neuroemu.NeuroemuError, match="unknown profile 'loihy'"):
        neuroemu.estimate_energy(recorded, "loihy", net=tiny)
    with pytest.raises(TypeError, match="got int"):
        neuroemu.estimate_energy(3)


def test_energy_plots_return_their_figure(tmp_path, tiny, capsys):
    reps = neuroemu.estimate_energy(tiny, "all", x=np.full((1, 4), 0.5), steps=20)
    fig = reps[0].plot(path=tmp_path / "one.png")
    assert isinstance(fig, Figure) and (tmp_path / "one.png").stat().st_size > 10_000
    own = Figure()
    ax = own.add_subplot()
    assert reps[1].plot(ax=ax) is own and plot_reports(reps, ax=own.add_subplot(212)) is own
    assert ax.get_title().startswith("tiny: this run / words")
    grid = plot_reports(reps)
    assert len(grid.axes) == 2 * len(hw.shipped_profiles())    # two rows per profile
    png = tmp_path / "cli.png"
    assert cli.main(["energy", "tiny", "--steps", "20", "--profile", "all", "--plot",
                     str(png)]) == 0
    assert png.stat().st_size > 10_000 and "plot written to" in capsys.readouterr().out
    assert isinstance(reps[0], EnergyReport) and neuroemu.profiles() == hw.shipped_profiles()


# ----------------------------------------------------------------------------- training

def _fake_data(n, dim, seed):
    """Ten clusters in [0, 1]^dim (a dataset the command can take via a patched loader)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((10, dim))
    labels = rng.integers(0, 10, n)
    images = np.clip(centres[labels] + 0.1 * rng.standard_normal((n, dim)), 0, 1)
    return images, labels.astype(np.int64)


@pytest.fixture
def fake_mnist(monkeypatch, tmp_path):
    """``neuroemu train`` on 16-pixel clusters: 120 training + 30 validation images."""
    images, labels = _fake_data(150, 16, 4)
    fit = Dataset(images[:120], labels[:120], "mnist", "train", tmp_path)
    val = Dataset(images[120:], labels[120:], "mnist", "validation", tmp_path)
    from neuroemu.cli import train as train_cmd
    monkeypatch.setattr(train_cmd, "_load_data", lambda args: (fit, val, None))
    path = tmp_path / "net.toml"
    neuroemu.save(make_netlist((16, 8, 10), CONTINUOUS, seed=2), path)
    return path, fit, val


def _cli_train(path, out, *extra):
    assert cli.main(["train", str(path), "--out", str(out), "--steps-free", "8",
                     "--steps-nudged", "3", "--batch", "10", "--no-test", *extra]) == 0
    return neuroemu.build(neuroemu.load(out))


def test_train_gives_the_commands_weights_bit_for_bit(tmp_path, fake_mnist, capsys):
    path, fit, val = fake_mnist
    by_cli = _cli_train(path, tmp_path / "a.toml", "--epochs", "2", "--shuffle", "--seed", "5")
    lines = capsys.readouterr().out
    res = neuroemu.train(neuroemu.load(path), fit.images, fit.labels, epochs=2, batch=10,
                         hyper={"n_free": 8, "n_nudged": 3}, shuffle=True, seed=5,
                         validation=(val.images, val.labels))
    for l in range(2):
        assert np.array_equal(res.net.weights(l), by_cli.weights(l))
        assert np.array_equal(res.net.biases(l + 1), by_cli.biases(l + 1))
    hist = json.loads((tmp_path / "a-history.json").read_text())["history"]
    for got, want in zip(res.history, hist):
        for k in ("epoch", "running_error", "train_loss", "val_error", "val_spikes_per_sample"):
            assert got[k] == want[k]
    assert "epoch 2: running error" in lines and len(res.history) == 2
    assert "validation error (images 120-149)" in lines


def test_a_resumed_command_run_equals_an_uninterrupted_train(tmp_path, fake_mnist, capsys):
    path, fit, val = fake_mnist
    _cli_train(path, tmp_path / "b.toml", "--epochs", "1", "--shuffle", "--seed", "1")
    resumed = _cli_train(path, tmp_path / "b.toml", "--epochs", "3", "--shuffle", "--seed", "1",
                         "--resume", str(tmp_path / "b.ckpt.npz"))
    assert "resumed from" in capsys.readouterr().out
    res = neuroemu.train(neuroemu.load(path), np.concatenate([fit.images, val.images]),
                         np.concatenate([fit.labels, val.labels]), epochs=3, batch=10,
                         hyper=Hyper(n_free=8, n_nudged=3, rates=(0.1, 0.05)), shuffle=True,
                         seed=1, validation=len(val))
    for l in range(2):
        assert np.array_equal(res.net.weights(l), resumed.weights(l))
    # one epoch in file order is the Trainer's minibatches one after the other
    cn = neuroemu.build(neuroemu.load(path))
    tr = Trainer(cn, Hyper(n_free=8, n_nudged=3, batch=10), seed=0)
    for k in range(len(fit) // 10):
        tr.train_batch(fit.images[k * 10:(k + 1) * 10], one_hot(fit.labels[k * 10:(k + 1) * 10]))
    plain = neuroemu.train(neuroemu.load(path), fit.images, fit.labels, batch=10,
                           hyper={"n_free": 8, "n_nudged": 3})
    assert np.array_equal(plain.net.weights(0), cn.weights(0))
    assert plain.history[0]["val_error"] is None and "1 epoch(s)" in repr(plain)


def _weights(net):
    return [(net.weights(l).copy(), net.biases(l + 1).copy()) for l in range(net.n_layers - 1)]


def test_train_error_after_training_is_an_independent_evaluation(tmp_path, fake_mnist, capsys):
    """The paper's training error at the end of ``neuroemu train``: the fit images (here the
    --train-limit subset) classified by the trained network as neuroemu.evaluate does; the
    weights written are the same bit for bit with and without it."""
    path, fit, val = fake_mnist
    common = ("--epochs", "2", "--shuffle", "--seed", "3", "--train-limit", "100")
    with_it = _cli_train(path, tmp_path / "a.toml", *common)
    out = capsys.readouterr().out
    without = _cli_train(path, tmp_path / "b.toml", *common, "--no-train-eval")
    out_without = capsys.readouterr().out
    for (wa, ba), (wb, bb) in zip(_weights(with_it), _weights(without)):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
    ind = neuroemu.evaluate(with_it, fit.images[:100], fit.labels[:100], steps=8)
    hist = json.loads((tmp_path / "a-history.json").read_text())
    last = hist["history"][-1]
    assert last["train_error_after"] == ind.error
    assert last["train_spikes_per_sample_after"] == pytest.approx(ind.spikes_per_sample,
                                                                  rel=1e-12)
    assert 0 < ind.errors < 100                  # a figure that tells nets apart
    assert hist["settings"]["train_images"] == "mnist training images 0-99"
    assert hist["settings"]["validation_images"] == "mnist training images 120-149"
    assert (f"train error (the paper's: training images after training) "
            f"{100 * ind.error:.2f}% on training images 0-99, ") in out
    assert "training images after training" not in out_without
    for rec in hist["history"]:
        assert "running_error" in rec and "train_error" not in rec
    assert "train_error_after" not in hist["history"][0]
    back = json.loads((tmp_path / "b-history.json").read_text())["history"]
    assert "train_error_after" not in back[-1]
    assert [r["running_error"] for r in back] == [r["running_error"] for r in hist["history"]]
    # the checkpoint holds it too; what the netlist says
    import neuroemu.learn.eqprop as eqprop
    tr = Trainer(neuroemu.build(neuroemu.load(path)), Hyper(n_free=8, n_nudged=3, batch=10))
    assert eqprop.load_checkpoint(tmp_path / "a.ckpt.npz", tr)[1][-1]["train_error_after"] \
        == ind.error
    assert f"train error after training {100 * ind.error:.2f}%" in \
        neuroemu.load(tmp_path / "a.toml").description


def test_library_train_error_after_training(fake_mnist):
    path, fit, val = fake_mnist
    x = np.concatenate([fit.images, val.images])
    y = np.concatenate([fit.labels, val.labels])
    kw = dict(epochs=2, batch=10, hyper={"n_free": 8, "n_nudged": 3}, shuffle=True, seed=2,
              validation=len(val))
    lines = []
    res = neuroemu.train(neuroemu.load(path), x, y, train_error=True, log=lines.append, **kw)
    plain = neuroemu.train(neuroemu.load(path), x, y, **kw)
    for (wa, ba), (wb, bb) in zip(_weights(res.net), _weights(plain.net)):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
    ind = neuroemu.evaluate(res.net, fit.images, fit.labels, steps=8)
    assert res.train_error == res.history[-1]["train_error_after"] == ind.error
    assert plain.train_error is None and "train_error_after" not in plain.history[-1]
    assert res.history[-1]["running_error"] == plain.history[-1]["running_error"]
    assert lines[-1].startswith(f"train error (the paper's: training images after training) "
                                f"{100 * ind.error:.2f}% on the 120 images trained on")
    assert "validation error (the last 30 images)" in lines[0]
    assert "train error (the paper's" in repr(res) and "running error" in repr(plain)


def test_resuming_a_checkpoint_that_calls_the_running_error_train_error(tmp_path, fake_mnist,
                                                                         capsys):
    """Checkpoints and histories written before the running error had its own name hold it
    as ``train_error``: a resume reads them, renames it, and trains on identically."""
    import neuroemu.learn.eqprop as eqprop
    path, fit, val = fake_mnist
    common = ("--shuffle", "--seed", "4", "--no-train-eval")
    _cli_train(path, tmp_path / "c.toml", "--epochs", "1", *common)
    ckpt = tmp_path / "c.ckpt.npz"
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    for rec in meta["history"]:                      # as an older neuroemu wrote it
        rec["train_error"] = rec.pop("running_error")
    old = tmp_path / "old.ckpt.npz"
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    resumed = _cli_train(path, tmp_path / "d.toml", "--epochs", "2", *common, "--resume", str(old))
    assert f"resumed from {old}" in capsys.readouterr().out
    straight = _cli_train(path, tmp_path / "e.toml", "--epochs", "2", *common)
    for (wa, ba), (wb, bb) in zip(_weights(resumed), _weights(straight)):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
    hist = json.loads((tmp_path / "d-history.json").read_text())["history"]
    want = json.loads((tmp_path / "e-history.json").read_text())["history"]
    assert [sorted(r) for r in hist] == [sorted(r) for r in want]
    assert [r["running_error"] for r in hist] == [r["running_error"] for r in want]
    tr = Trainer(neuroemu.build(neuroemu.load(path)), Hyper(n_free=8, n_nudged=3, batch=10))
    epoch, back, _ = eqprop.load_checkpoint(old, tr)
    assert epoch == 1 and "train_error" not in back[0]
    assert back[0]["running_error"] == want[0]["running_error"]


def test_train_rejects_bad_arguments_in_one_line(tiny):
    x = np.full((30, 4), 0.5)
    with pytest.raises(neuroemu.NeuroemuError, match=r"labels: must lie in 0\.\.1.*\(got 2\)"):
        neuroemu.train(tiny, x, np.full(30, 2))
    with pytest.raises(neuroemu.NeuroemuError, match=r"labels: .*30 class labels.*\(30, 2\)"):
        neuroemu.train(tiny, x, np.zeros((30, 2)))
    with pytest.raises(neuroemu.NeuroemuError, match=r"images: must have shape \(batch, 4\)"):
        neuroemu.train(tiny, np.zeros((30, 5)), np.zeros(30, int))
    with pytest.raises(neuroemu.NeuroemuError, match=r"epochs: must be an integer >= 0 \(got -1"):
        neuroemu.train(tiny, x, np.zeros(30, int), epochs=-1)
    with pytest.raises(neuroemu.NeuroemuError, match=r"validation: must hold out 1\.\.29"):
        neuroemu.train(tiny, x, np.zeros(30, int), validation=30)
    with pytest.raises(neuroemu.NeuroemuError, match=r"fewer training images \(10\)"):
        neuroemu.train(tiny, x[:10], np.zeros(10, int))
    with pytest.raises(neuroemu.NeuroemuError, match=r"rates: need one learning rate"):
        neuroemu.train(tiny, x, np.zeros(30, int), hyper={"rates": (0.1,)})


# ----------------------------------------------------------------------------- plots

def test_learning_curve_names_each_figure():
    hist = [{"epoch": 1, "running_error": 0.3, "val_error": 0.35},
            {"epoch": 2, "running_error": 0.2, "val_error": 0.3, "test_error": 0.25,
             "train_error_after": 0.15}]
    fig = plot_learning_curve(hist, val_label="validation error (images 50,000-59,999)",
                              test_label="test error (official 10,000 test images)")
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["running error (each minibatch's free phase, before its update)",
                      "validation error (images 50,000-59,999)",
                      "test error (official 10,000 test images) after epoch 2: 25.00%",
                      "train error (the paper's: training images after training) after "
                      "epoch 2: 15.00%"]
    diamond = [l for l in ax.get_lines() if l.get_marker() == "D"]
    assert len(diamond) == 1 and list(diamond[0].get_xydata()[0]) == [2, 15]


def test_learning_curve_short_runs_get_integer_epoch_ticks(tmp_path):
    # an older history: the running error under its old key, train_error
    hist = [{"epoch": 1, "train_error": 0.3, "val_error": 0.35},
            {"epoch": 2, "train_error": 0.2, "val_error": None, "test_error": 0.25}]
    fig = plot_learning_curve(hist, tmp_path / "c.png", "two epochs")
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [1, 2] and ax.get_title() == "two epochs"
    assert ax.get_legend().get_texts()[0].get_text().startswith("running error")
    assert list(ax.get_lines()[0].get_ydata()) == [30, 20]
    assert (tmp_path / "c.png").stat().st_size > 5_000
    one = plot_learning_curve(hist[:1])
    assert list(one.axes[0].get_xticks()) == [1]
    own = Figure()
    assert plot_learning_curve(hist, ax=own.add_subplot()) is own


def test_train_command_titles_a_subset_and_draws_integer_ticks(tmp_path, fake_mnist, capsys,
                                                               monkeypatch):
    path, fit, val = fake_mnist
    seen = {}
    from neuroemu.cli import train as train_cmd

    def spy(history, p, title, paper=None, **labels):
        seen["title"], seen["fig"] = title, plot_learning_curve(history, p, title, paper,
                                                                **labels)
        seen["labels"] = labels
    monkeypatch.setattr(train_cmd, "plot_learning_curve", spy)
    _cli_train(path, tmp_path / "s.toml", "--train-limit", "50")
    assert "a subset: the first 50 training images" in seen["title"]
    assert seen["labels"]["val_label"] == "validation error (images 120-149)"
    assert list(seen["fig"].axes[0].get_xticks()) == [1]
    legend = [t.get_text() for t in seen["fig"].axes[0].get_legend().get_texts()]
    assert legend[0].startswith("running error (each minibatch's free phase")
    assert legend[1] == "validation error (images 120-149)"
    assert legend[2].startswith("train error (the paper's: training images after training) "
                                "after epoch 1: ")
    assert (tmp_path / "s-curve.png").is_file()


def test_convergence_plot_takes_an_axes(tmp_path):
    proto = converge.Protocol(sizes=(6, 5, 3), batch=2, free=10, nudged=10, ref_free=100,
                              ref_nudged=100)
    curves = converge.experiment(1, 0, ["sd_osa"], proto, progress=False)
    fig = converge.plot(curves, proto, tmp_path / "f.png")
    assert isinstance(fig, Figure) and (tmp_path / "f.png").is_file()
    own = Figure()
    assert converge.plot(curves, proto, ax=own.add_subplot()) is own


def test_estimate_energy_prices_a_bus_engine_mesh_like_the_command(tmp_path, capsys):
    """A network run on the bus engine with a [hardware] mesh: the API, like the command,
    prices the packets on the engine's own cluster placement, and refuses placement options."""
    raw = {"network": {"name": "m", "seed": 3},
           "neuron": {"encoder": "sigma_delta"},
           "population": [{"name": "input", "size": 6}, {"name": "hidden", "size": 5},
                          {"name": "output", "size": 3, "bias": 0.1}],
           "projection": [{"pre": "input", "post": "hidden"}, {"pre": "hidden", "post": "output"}],
           "hardware": {"cluster_size": 2, "bus": {"topology": "mesh", "latency": 5},
                        "mesh": {"width": 3, "height": 3}}}
    net = neuroemu.from_dict(raw)
    path = tmp_path / "m.toml"
    neuroemu.save(net, path)
    x = np.random.default_rng(1).random((1, 6))
    np.save(tmp_path / "x.npy", x)
    rep = neuroemu.estimate_energy(path, "loihi", x=x, steps=20, engine="async")
    assert cli.main(["energy", str(path), "--input", str(tmp_path / "x.npy"), "--steps", "20",
                     "--engine", "async", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert rep.to_dict()["placement"] == out["placement"] == "hardware-clusters"
    assert rep.to_dict()["counts"] == out["counts"]
    with pytest.raises(neuroemu.NeuroemuError, match=r"mesh: the bus engine ran on the mesh"):
        neuroemu.estimate_energy(path, "loihi", x=x, steps=5, engine="async", mesh="4x4")


def test_an_ep_rate_schedule_from_the_command_line(tmp_path, fake_mnist, capsys):
    """--lr-milestones/--lr-gamma with EP: the command trains as the library does with the
    same Hyper fields, and differs from the constant-rate run after the milestone."""
    path, fit, val = fake_mnist
    by_cli = _cli_train(path, tmp_path / "s.toml", "--epochs", "2", "--lr-milestones", "1",
                        "--lr-gamma", "0.25")
    assert "rates x0.25 after epochs 1" in capsys.readouterr().out
    res = neuroemu.train(neuroemu.load(path), fit.images, fit.labels, epochs=2, batch=10,
                         hyper={"n_free": 8, "n_nudged": 3, "milestones": (1,), "gamma": 0.25},
                         validation=(val.images, val.labels))
    flat = neuroemu.train(neuroemu.load(path), fit.images, fit.labels, epochs=2, batch=10,
                          hyper={"n_free": 8, "n_nudged": 3},
                          validation=(val.images, val.labels))
    for l in range(2):
        assert np.array_equal(res.net.weights(l), by_cli.weights(l))
    assert not np.array_equal(res.net.weights(0), flat.net.weights(0))
