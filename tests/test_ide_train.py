"""Training by implicit differentiation at the equilibrium (neuroemu.learn.ide_train, issue 16):
one update is SGD with momentum and weight decay along ide_gradients' direction, bit for bit;
checkpoints resume exactly; the feedback stays within its spectral bound; small networks learn;
``neuroemu train --method ide`` writes the files EP training writes; bad options give one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neuroemu
from conftest import build, make_netlist, one_line_error, run_cli
from neuroemu.describe import from_dict
from neuroemu.errors import TrainError
from neuroemu.learn import ide
from neuroemu.learn.datasets import Dataset, one_hot
from neuroemu.learn.eqprop import Hyper, Trainer, load_checkpoint, save_checkpoint
from neuroemu.learn.evaluate import classify, evaluate, readout, window_start
from neuroemu.learn.ide_train import IDEHyper, IDETrainer, depth, lr_at


def fb_netlist(n_in=6, n_hid=5, n_out=3, leak=0.95, thr=1.0, fb=0.6, seed=3, bias=0.1):
    """inputs -> LIF (or IF) with recurrent feedback -> IF outputs (feedback-lif's shape)."""
    hid = {"model": "lif" if leak < 1 else "if", "threshold": thr, "reset": "subtract"}
    if leak < 1:
        hid["leak"] = leak
    raw = {"network": {"name": "fb", "format": 2, "seed": seed},
           "population": [
               {"name": "x", "size": n_in, "role": "input", "neuron": {"encoder": "none"}},
               {"name": "h", "size": n_hid, "bias": bias, "neuron": hid},
               {"name": "o", "size": n_out, "role": "output", "bias": bias,
                "neuron": {"model": "if", "threshold": thr, "reset": "subtract"}}],
           "projection": [
               {"pre": "x", "post": "h", "symmetric": False,
                "weights": {"init": "glorot_uniform", "gain": 2.0}},
               {"pre": "h", "post": "h", "symmetric": False, "name": "feedback",
                "weights": {"init": "glorot_uniform", "gain": fb}},
               {"pre": "h", "post": "o", "symmetric": False,
                "weights": {"init": "glorot_uniform", "gain": 2.0}}]}
    return from_dict(raw)


def clusters(n, dim, k, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    centres = rng.random((k, dim))
    labels = rng.integers(0, k, n)
    return np.clip(centres[labels] + noise * rng.standard_normal((n, dim)), 0, 1), labels


def test_one_update_is_sgd_with_momentum_along_ide_gradients():
    net = build(fb_netlist())
    hp = IDEHyper.for_network(net, batch=4, lr=0.3, momentum=0.9, weight_decay=0.01,
                              feedback_bound=0.0)
    tr = IDETrainer(net, hp, seed=0)
    x, lab = clusters(8, 6, 3)
    y = one_hot(lab, 3)
    W = [w.copy() for w in tr.W]
    b = [v.copy() for v in tr.b]
    mW = [np.zeros_like(w) for w in W]
    mb = [np.zeros_like(v) for v in b]
    for k in range(2):
        xb, yb = x[4 * k:4 * k + 4], y[4 * k:4 * k + 4]
        rates, _, _ = tr.forward(xb)
        g = ide.ide_gradients(net, xb, yb, rates=rates, loss="ce", weights=W,
                              biases=[None, b[1], b[2]])
        tr.train_batch(xb, yb)
        for p in range(3):
            mW[p] = 0.9 * mW[p] + (g.dW[p] + 0.01 * W[p])
            W[p] = W[p] - 0.3 * mW[p]
            assert np.array_equal(tr.W[p], W[p]) and np.array_equal(tr.mW[p], mW[p])
            assert np.array_equal(net.weights(p), W[p].astype(np.float32))
        for r in (1, 2):
            mb[r] = 0.9 * mb[r] + (g.db[r] + 0.01 * b[r])
            b[r] = b[r] - 0.3 * mb[r]
            assert np.array_equal(tr.b[r], b[r]) and np.array_equal(net.biases(r), b[r])
        assert np.abs(g.dW[0]).max() > 0


def test_forward_rates_are_the_counted_steps_only():
    net = build(fb_netlist())
    hp = IDEHyper.for_network(net, T=4)
    assert hp.warmup == depth(net) == 2
    tr = IDETrainer(net, hp)
    x, _ = clusters(3, 6, 3)
    rates, out, _ = tr.forward(x)
    sess = neuroemu.engines.session(net, x)
    sess.run(2)
    c2 = sess.state("h") * 2
    start = window_start(sess)
    sess.run(4)
    assert np.allclose(rates[1], (sess.state("h") * 6 - c2) / 4, atol=1e-12)
    assert np.allclose(rates[1] * 4, np.rint(rates[1] * 4))
    assert np.array_equal(out, readout(sess, start))
    assert lr_at(IDEHyper(milestones=(2, 4), lr=1.0, gamma=0.5), 1) == 1.0
    assert lr_at(IDEHyper(milestones=(2, 4), lr=1.0, gamma=0.5), 3) == 0.5
    assert lr_at(IDEHyper(milestones=(2, 4), lr=1.0, gamma=0.5), 5) == 0.25


def test_if_readout_is_the_mean_drive():
    """An IF output's readout is (mean delivered input + bias) / th over the window."""
    net = build(fb_netlist(leak=1.0, thr=0.7))
    x, _ = clusters(4, 6, 3, seed=1)
    sess = neuroemu.engines.session(net, x)
    u_sum = np.zeros((4, 3))
    sess.run(1)
    start = window_start(sess)
    for _ in range(6):
        sess.run(1)
        u_sum += sess.u[:, net.off[2]:net.off[3]]
    z = readout(sess, start)
    assert np.allclose(z, (u_sum / 6 + net.biases(2)) / 0.7, atol=1e-6)
    # its argmax agrees with the counts wherever they differ
    c = classify(net, x, 6, warmup=1)
    assert np.array_equal(c.predictions, z.argmax(1))


def test_checkpoint_resumes_exactly(tmp_path):
    x, lab = clusters(60, 6, 3, seed=2)
    y = one_hot(lab, 3)

    def trainer():
        net = build(fb_netlist())
        return IDETrainer(net, IDEHyper.for_network(net, batch=10, lr=0.2), seed=7)

    a = trainer()
    for k in range(3):
        a.train_batch(x[10 * k:10 * k + 10], y[10 * k:10 * k + 10])
    save_checkpoint(tmp_path / "c.npz", a, 1, [{"epoch": 1}], {"s": 1})
    for k in range(3, 6):
        a.train_batch(x[10 * k:10 * k + 10], y[10 * k:10 * k + 10])
    b = trainer()
    assert load_checkpoint(tmp_path / "c.npz", b) == (1, [{"epoch": 1}], {"s": 1})
    for k in range(3, 6):
        b.train_batch(x[10 * k:10 * k + 10], y[10 * k:10 * k + 10])
    for p in range(3):
        assert np.array_equal(a.W[p], b.W[p]) and np.array_equal(a.mW[p], b.mW[p])
    for r in range(3):
        assert np.array_equal(a.b[r], b.b[r]) and np.array_equal(a.mb[r], b.mb[r])
    assert np.array_equal(a.power[1], b.power[1]) and a._batches == b._batches
    # an EP checkpoint is not an IDE one, and the other way round
    ep_net = build(make_netlist([6, 5, 3], {"encoder": "none", "predictive": False,
                                            "decoder": "identity"}))
    ep = Trainer(ep_net, Hyper.for_network(ep_net), seed=0)
    with pytest.raises(TrainError, match=r"c.npz: meta.method: the checkpoint was written by "
                                         r"--method 'ide', this run trains with --method ep"):
        load_checkpoint(tmp_path / "c.npz", ep)


def test_feedback_stays_within_its_spectral_bound():
    for thr, bound in ((1.0, 0.5), (2.0, 0.5), (1.0, 0.3)):
        net = build(fb_netlist(n_hid=12, fb=3.0, thr=thr, bias=0.2 * thr))
        tr = IDETrainer(net, IDEHyper.for_network(net, batch=10, lr=0.5, momentum=0.9,
                                                  feedback_bound=bound), seed=1)
        lim = bound * thr
        assert np.linalg.norm(tr.W[1], 2) <= lim * (1 + 1e-6)      # projected at the start
        x, lab = clusters(100, 6, 3, seed=3)
        for k in range(10):
            tr.train_batch(x[10 * k:10 * k + 10], one_hot(lab[10 * k:10 * k + 10], 3))
            assert np.linalg.norm(tr.W[1], 2) <= lim * 1.01
            assert tr.norms[1] <= np.linalg.norm(tr.W[1], 2) / min(1.0, lim / tr.norms[1]) \
                * (1 + 1e-9)
        assert np.linalg.norm(tr.W[1], 2) > 0.9 * lim          # the bound is active
    # 0 switches the bound off
    net = build(fb_netlist(n_hid=12, fb=3.0))
    w = net.weights(1).astype(np.float64)
    tr = IDETrainer(net, IDEHyper.for_network(net, feedback_bound=0.0))
    assert np.array_equal(tr.W[1], w)


@pytest.mark.parametrize("leak", [1.0, 0.95])
def test_training_lowers_the_loss(leak):
    net = build(fb_netlist(n_in=8, n_hid=10, leak=leak, seed=4))
    x, lab = clusters(200, 8, 3, seed=5)
    res = neuroemu.train(net, x, lab, epochs=3, method="ide",
                         hyper={"lr": 0.1, "batch": 10, "T": 5}, shuffle=True, seed=2,
                         validation=50)
    h = res.history
    assert h[-1]["train_loss"] < 0.6 * h[0]["train_loss"]
    assert h[-1]["val_error"] < 0.15 and h[-1]["val_error"] <= h[0]["val_error"]
    assert isinstance(res.hyper, IDEHyper) and "IDE training" in res.plot().axes[0].get_title()


# ----------------------------------------------------------------------------- the command

@pytest.fixture
def fake_data(monkeypatch, tmp_path):
    images, labels = clusters(150, 16, 10, seed=4)
    fit = Dataset(images[:120], labels[:120], "mnist", "train", tmp_path)
    val = Dataset(images[120:], labels[120:], "mnist", "validation", tmp_path)
    from neuroemu.cli import train as train_cmd
    monkeypatch.setattr(train_cmd, "_load_data", lambda args: (fit, val, None))
    path = tmp_path / "net.toml"
    neuroemu.save(fb_netlist(n_in=16, n_hid=8, n_out=10, seed=2), path)
    return path, fit, val


def _ide(capsys, path, out, *extra):
    rc, text, err = run_cli(capsys, "train", path, "--method", "ide", "--out", out,
                            "--batch", "10", "--ide-steps", "4", "--lr", "0.1", "--no-test",
                            *extra)
    assert rc == 0, err
    return text


def test_command_writes_what_ep_training_writes(tmp_path, fake_data, capsys):
    path, fit, val = fake_data
    text = _ide(capsys, path, tmp_path / "a.toml", "--epochs", "2", "--shuffle", "--seed", "5")
    for name in ("a.toml", "a.ckpt.npz", "a-history.json", "a-curve.png"):
        assert (tmp_path / name).is_file(), name
    doc = json.loads((tmp_path / "a-history.json").read_text())
    assert doc["settings"]["method"] == "ide" and doc["hyper"]["T"] == 4
    assert doc["hyper"]["warmup"] == 2
    h = doc["history"]
    for k in ("epoch", "running_error", "train_loss", "train_spikes_per_sample", "val_error",
              "val_spikes_per_sample", "samples_per_second", "train_error_after"):
        assert k in h[-1], k
    assert "method=ide T=4 warmup=2" in text and "epoch 2: running error" in text
    assert "--steps 4 --warmup 2" in text
    trained = neuroemu.build(neuroemu.load(tmp_path / "a.toml"))
    # validation is neuroemu eval --steps T --warmup K on the saved network
    res = evaluate(trained, val.images, val.labels, steps=4, warmup=2)
    assert res.error == h[-1]["val_error"]
    assert res.spikes_per_sample == pytest.approx(h[-1]["val_spikes_per_sample"], rel=1e-12)
    # the library gives the command's weights bit for bit
    lib = neuroemu.train(neuroemu.load(path), fit.images, fit.labels, epochs=2, method="ide",
                         hyper={"T": 4, "lr": 0.1}, batch=10, shuffle=True, seed=5,
                         validation=(val.images, val.labels))
    for p in range(3):
        assert np.array_equal(lib.net.weights(p), trained.weights(p))
    # a resumed run equals an uninterrupted one
    _ide(capsys, path, tmp_path / "b.toml", "--epochs", "1", "--shuffle", "--seed", "5")
    text = _ide(capsys, path, tmp_path / "b.toml", "--epochs", "2", "--shuffle", "--seed", "5",
                "--resume", tmp_path / "b.ckpt.npz")
    assert "resumed from" in text
    resumed = neuroemu.build(neuroemu.load(tmp_path / "b.toml"))
    for p in range(3):
        assert np.array_equal(resumed.weights(p), trained.weights(p))
    # an IDE checkpoint does not resume an EP run
    err = one_line_error(capsys, "train", path, "--out", tmp_path / "c.toml", "--no-test",
                         "--resume", tmp_path / "b.ckpt.npz")
    assert "meta.method" in err


@pytest.mark.parametrize("extra, pattern", [
    (("--method", "ide", "--beta", "0.5"), "--beta: only with --method ep"),
    (("--method", "ide", "--rule", "full"), "--rule: only with --method ep"),
    (("--lr", "0.1"), "--lr: only with --method ide"),
    (("--ide-warmup", "3"), "--ide-warmup: only with --method ide"),
    (("--method", "ide", "--momentum", "1.5"), r"--momentum: must be a finite number in \[0, 1\) \(got 1.5\)"),
    (("--method", "ide", "--feedback-bound", "2"), r"--feedback-bound: must be a finite number in \[0, 1\]"),
    (("--method", "ide", "--lr", "-1"), "--lr: must be a finite number > 0"),
    (("--method", "ide", "--lr-milestones", "5,3"), "--lr-milestones: must be increasing epochs"),
    (("--method", "ide", "--ide-steps", "0"), "--ide-steps: must be a positive integer"),
    (("--method", "ide", "--loss", "hinge"), "--loss: must be one of mse, ce"),
    (("--method", "sgd",), "--method: must be one of ep, ide"),
])
def test_bad_options_give_one_line(tmp_path, fake_data, capsys, extra, pattern):
    path, _, _ = fake_data
    err = one_line_error(capsys, "train", path, "--out", tmp_path / "x.toml", *extra)
    assert __import__("re").search(pattern, err), err
    assert not (tmp_path / "x.toml").exists()


def test_ide_needs_integrate_and_fire_neurons(tmp_path, capsys, monkeypatch):
    path = tmp_path / "ep.toml"
    neuroemu.save(make_netlist([16, 8, 10], {"encoder": "none", "predictive": False,
                                             "decoder": "identity"}), path)
    err = one_line_error(capsys, "train", path, "--method", "ide", "--out", tmp_path / "y.toml")
    assert "--method ide: population 'h1': implicit differentiation needs integrate-and-fire" \
        in err
