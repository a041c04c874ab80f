"""Data-parallel evaluation (neuroemu.sweep.parallel_eval): the images split across Dask
workers give exactly the serial neuroemu.learn.evaluate.evaluate result -- predictions,
counters, every figure -- whatever the chunks and batches."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from neuroemu import describe, digits  # noqa: E402
from neuroemu.errors import EngineError, OptionError  # noqa: E402
from neuroemu.learn.evaluate import evaluate  # noqa: E402
from neuroemu.sweep.parallel_eval import chunks, evaluate_distributed  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as c:
        yield c


def same(a, b):
    assert a.to_dict() == b.to_dict()
    assert np.array_equal(a.predictions, b.predictions)
    assert np.array_equal(a.labels, b.labels)


def stochastic_inputs():
    """The shipped trained network with a stochastic input encoder: its samples' spike trains
    depend on their sample ids."""
    raw = describe.to_dict(describe.load("mnist-binary-trained"))
    raw["population"][0]["neuron"]["encoder"] = "stochastic"
    return describe.from_dict(raw, path="<stochastic>")


def test_the_chunks_cover_the_set_once():
    for n, slots, batch, chunk in ((95, 2, 10, None), (7, 4, 100, None), (60, 3, 7, 13)):
        cs = chunks(n, slots, batch, chunk)
        assert cs[0][0] == 0 and cs[-1][1] == n
        assert all(a < b for a, b in cs) and all(cs[i][1] == cs[i + 1][0]
                                                 for i in range(len(cs) - 1))


@pytest.mark.parametrize("name, steps, warmup", [("mnist-binary-trained", 12, 0),
                                                 ("stochastic", 8, 0),
                                                 ("feedback-lif", 5, 2)])
def test_parallel_evaluation_equals_the_serial_one(cluster, name, steps, warmup):
    net = stochastic_inputs() if name == "stochastic" else describe.load(name)
    x, y = digits()
    x, y = x[:61], y[:61]
    serial = evaluate(net, x, y, steps=steps, batch=16, warmup=warmup)
    par = evaluate_distributed(net, x, y, steps=steps, batch=7, chunk=13, warmup=warmup,
                               scheduler=cluster.scheduler_address)
    same(par, serial)
    assert serial.spikes_per_sample > 0


def test_sample_ids_run_across_chunks(cluster):
    """The check above can fail: chunks classified as sets of their own (sample ids from 0
    in each) give other spike counts on the stochastic network."""
    net = stochastic_inputs()
    x, y = digits()
    whole = evaluate(net, x[:40], y[:40], steps=8)
    parts = [evaluate(net, x[a:a + 20], y[a:a + 20], steps=8) for a in (0, 20)]
    assert (parts[0].spikes_per_sample + parts[1].spikes_per_sample) / 2 != \
        whole.spikes_per_sample
    same(evaluate_distributed(net, x[:40], y[:40], steps=8, chunk=20,
                              scheduler=cluster.scheduler_address), whole)


def test_a_local_cluster_of_two_workers():
    net = describe.load("mnist-binary-trained")
    x, y = digits()
    same(evaluate_distributed(net, x[:30], y[:30], steps=10, workers=2),
         evaluate(net, x[:30], y[:30], steps=10))


def test_bad_arguments_are_one_line_errors(cluster):
    net = describe.load("tiny")
    x, y = np.full((3, 4), 0.5), np.array([0, 1, 1])
    with pytest.raises(EngineError, match=r"steps: must be a positive integer \(got 0\)"):
        evaluate_distributed(net, x, y, steps=0, client=object())
    with pytest.raises(EngineError, match=r"labels: must be 3 integers"):
        evaluate_distributed(net, x, y[:2], client=object())
    with pytest.raises(OptionError, match=r"--scheduler: must be an address like "
                                          r"tcp://HOST:PORT \(got 'localhost'\)"):
        evaluate_distributed(net, x, y, scheduler="localhost")
    with pytest.raises(OptionError, match=r"--workers 2: the cluster at --scheduler"):
        evaluate_distributed(net, x, y, workers=2, scheduler=cluster.scheduler_address)


def test_the_eval_command_on_a_scheduler_prints_what_one_process_prints(cluster, tmp_path,
                                                                         capsys):
    """`neuroemu eval --scheduler ADDRESS` gives the serial command's JSON (wall time aside)."""
    import json
    import struct

    from neuroemu import cli
    folder = tmp_path / "mnist"
    folder.mkdir()
    x, y = digits()
    images = np.zeros((10000, 28, 28), dtype=np.uint8)      # the loader checks the official size
    images[:60] = np.round(np.asarray(x[:60]) * 255).reshape(60, 28, 28)
    labels = np.zeros(10000, dtype=np.uint8)
    labels[:60] = y[:60]
    for name, a in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        (folder / name).write_bytes(bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
                                    + a.tobytes())
    base = ["eval", "mnist-binary-trained", "--dataset", "mnist", "--data", str(tmp_path),
            "--limit", "60", "--steps", "15", "--json"]
    assert cli.main(base) == 0
    serial = json.loads(capsys.readouterr().out)
    assert cli.main(base + ["--scheduler", cluster.scheduler_address]) == 0
    par = json.loads(capsys.readouterr().out)
    for d in (serial, par):
        for key in [k for k in d if "wall" in k or "per_second" in k]:
            d.pop(key)
    assert par == serial and len(serial["predictions"]) == 60
    assert cli.main(base[:-3] + ["--curve", "5,10", "--workers", "2"]) == 2
    assert "--curve: runs in one process" in capsys.readouterr().err
