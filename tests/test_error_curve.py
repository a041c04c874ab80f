"""Error against inference length (neuroemu eval --curve): each point is exactly what a run of
that many steps gives (learn.evaluate.evaluate with steps=k)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import one_line_error, run_cli
from neuroemu import describe, digits
from neuroemu.errors import EngineError
from neuroemu.learn.evaluate import error_curve, evaluate


@pytest.mark.parametrize("name", ["mnist-binary-trained", "skip-binary"])
def test_each_point_is_the_run_of_that_length(name):
    net = describe.load(name)
    images, labels = digits()
    x, y = images[:30], labels[:30]
    points = error_curve(net, x, y, [25, 5, 12], batch=7)
    assert [p["steps"] for p in points] == [5, 12, 25]
    for p in points:
        ref = evaluate(net, x, y, steps=p["steps"], batch=30)
        assert p["errors"] == ref.errors and p["error"] == ref.error
        assert p["spikes_per_sample"] == pytest.approx(ref.spikes_per_sample, rel=1e-15)
        assert p["syn_events_per_sample"] == pytest.approx(ref.syn_events_per_sample, rel=1e-15)
    assert points[0]["spikes_per_sample"] < points[1]["spikes_per_sample"] < \
        points[2]["spikes_per_sample"]


def test_bad_step_lists_are_refused():
    net = describe.load("tiny")
    x, y = np.full((2, 4), 0.5), np.array([0, 1])
    with pytest.raises(EngineError, match=r"steps: must be a positive integer \(got 0\)"):
        error_curve(net, x, y, [5, 0])
    with pytest.raises(EngineError, match="at least one"):
        error_curve(net, x, y, [])


def test_cli_curve_table_and_plot(tmp_path, capsys, monkeypatch):
    import neuroemu.cli.eval as ev
    from neuroemu.learn.datasets import Dataset
    images, labels = digits()
    fake = Dataset(np.asarray(images[:20], dtype=np.float64), labels[:20].astype(np.int64),
                   "mnist", "test", tmp_path)      # 20 bundled digits stand in for the test set
    monkeypatch.setattr(ev, "load_split", lambda name, data, split: (fake, 0))
    png = tmp_path / "curve.png"
    rc, out, err = run_cli(capsys, "eval", "mnist-binary-trained", "--dataset", "mnist",
                           "--curve", "10,5", "--plot", png)
    assert rc == 0, err
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["5", "10"]
    assert png.is_file() and png.stat().st_size > 0
    err = one_line_error(capsys, "eval", "mnist-binary-trained", "--dataset", "mnist",
                         "--curve", "10", "--plot", png)
    assert "exists" in err or "--force" in err
    err = one_line_error(capsys, "eval", "mnist-binary-trained", "--dataset", "mnist",
                         "--plot", tmp_path / "x.png")
    assert "--curve" in err
    err = one_line_error(capsys, "eval", "mnist-binary-trained", "--dataset", "mnist",
                         "--curve", "10,-3")
    assert "-3" in err
