"""Sweeps on Dask (neuroemu.sweep.runner): a two-worker local cluster runs a small sweep end to
end; a scheduler started here runs one by address; a resumed sweep runs no finished trial
again; trials left running are failed and run again; a worker killed during a trial leaves
the sweep running, the trial retried or marked failed.

The trials are tiny (a 784-8-10 binary network, the bundled digits, a few steps) so that the
cluster's start dominates; the worker functions below wrap the real trial and write a line per
call into the test's folder, which is how the tests see what ran where and how often."""

from __future__ import annotations

import csv
import functools
import json
import os
import signal

import numpy as np
import pytest

pytest.importorskip("optuna")
distributed = pytest.importorskip("distributed")

from neuroemu import describe, digits  # noqa: E402
from neuroemu.learn.evaluate import evaluate  # noqa: E402
from neuroemu.sweep import loads_spec  # noqa: E402
from neuroemu.sweep.runner import STUDY_FILE, open_study, run_sweep  # noqa: E402
from neuroemu.sweep.trial import run_trial  # noqa: E402

SPEC = """
[sweep]
name = "tiny-sweep"
netlist = "small.toml"
dataset = "digits"
trials = 4
seed = 5
objectives = ["validation_error", "syn_events_per_weight"]

[train]
images = 40
validation_images = 20
steps_free = 6
steps_nudged = 3

[[param]]
field = "neuron.lam.value"
low = 0.1
high = 0.5

[[param]]
field = "train.steps_free"
low = 3
high = 8
"""


def logged_trial(folder, config, data, base):
    """The real trial, with a line per call (trial number, process) in folder/calls.txt."""
    with open(os.path.join(folder, "calls.txt"), "a") as f:
        f.write(f"{config['trial']} {os.getpid()}\n")
    return run_trial(config, data, base)


def killing_trial(folder, config, data, base):
    """Trial 1 kills its worker the first time it runs; trial 2 every time."""
    n = config["trial"]
    marker = os.path.join(folder, f"killed-{n}")
    with open(os.path.join(folder, "calls.txt"), "a") as f:
        f.write(f"{n} {os.getpid()}\n")
    if n == 2 or (n == 1 and not os.path.exists(marker)):
        open(marker, "a").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_trial(config, data, base)


def calls(folder) -> list[int]:
    path = folder / "calls.txt"
    return [int(line.split()[0]) for line in path.read_text().splitlines()] \
        if path.exists() else []


@pytest.fixture
def folder(tmp_path):
    describe.save(describe.layered([784, 8, 10], "binary", seed=1, name="small"),
                  tmp_path / "small.toml")
    return tmp_path


@pytest.fixture(scope="module")
def cluster():
    """A two-worker cluster whose scheduler the sweeps reach by address."""
    import dask
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=50) as c:
            yield c


def spec_of(folder, text=SPEC):
    path = folder / "spec.toml"
    path.write_text(text)
    return loads_spec(text, path)


def test_a_two_worker_local_cluster_runs_a_sweep_end_to_end(folder):
    spec = spec_of(folder)
    out = folder / "out"
    res = run_sweep(spec, out, workers=2, trial_fn=functools.partial(logged_trial, str(folder)))
    assert res["ran"] == 4 and res["failed"] == 0
    assert sorted(calls(folder)) == [0, 1, 2, 3]
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in table] == [0, 1, 2, 3]
    assert all(r["state"] == "complete" for r in table)
    doc = json.loads((out / "results.json").read_text())
    rows = doc["trials"]
    # the reference trial ran first with the base values
    assert rows[0]["reference"] and rows[0]["params"] == {"neuron.lam.value": 0.275,
                                                          "train.steps_free": 6}
    for r, t in zip(rows, table):
        assert r["params"]["neuron.lam.value"] == float(t["neuron.lam.value"])
        assert 0.1 <= r["params"]["neuron.lam.value"] <= 0.5
        assert 3 <= r["params"]["train.steps_free"] <= 8
        assert r["seed"] == 5 and r["config"]["train"]["steps_free"] == \
            r["params"]["train.steps_free"]
        for o in spec.objectives:
            assert r[o] == r["metrics"][o] == float(t[o])
    # the front: the trials no other trial beats in both objectives
    pts = [(r["validation_error"], r["syn_events_per_weight"]) for r in rows]
    front = [i for i, p in enumerate(pts)
             if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)]
    assert res["front"] == front and [r["trial"] for r in rows if r["pareto"]] == front
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each front trial's netlist classifies the validation images as the trial recorded
    x, y = digits()
    best = sorted((out / "best").iterdir())
    assert [d.name for d in best] == [f"trial-{n:04d}" for n in front]
    for d, n in zip(best, front):
        net = describe.load(next(d.glob("*.toml")))
        info = json.loads((d / "trial.json").read_text())
        assert info["trial"] == n
        r = evaluate(net, x[200:220], y[200:220], steps=rows[n]["params"]["train.steps_free"])
        assert r.error == rows[n]["validation_error"]
        assert net.populations[1].neuron.lam.get("value") == rows[n]["params"]["neuron.lam.value"]


def test_a_sweep_on_a_scheduler_by_address_resumes_without_rerunning(folder, cluster):
    spec = spec_of(folder)
    out = folder / "out"
    fn = functools.partial(logged_trial, str(folder))
    first = run_sweep(spec, out, scheduler=cluster.scheduler_address, trials=3, trial_fn=fn)
    assert first["ran"] == 3 and sorted(calls(folder)) == [0, 1, 2]
    before = json.loads((out / "results.json").read_text())["trials"]
    again = run_sweep(spec, out, scheduler=cluster.scheduler_address, trials=5, trial_fn=fn)
    assert again["resumed"] == 3 and again["ran"] == 2
    assert sorted(calls(folder)) == [0, 1, 2, 3, 4]          # no finished trial ran again
    after = json.loads((out / "results.json").read_text())["trials"]
    for a, b in zip(before, after[:3]):
        assert a["params"] == b["params"] and a["validation_error"] == b["validation_error"]
    # a third run with what the study holds runs nothing
    third = run_sweep(spec, out, scheduler=cluster.scheduler_address, trial_fn=fn)
    assert third["ran"] == 0 and len(calls(folder)) == 5
    # another search space is refused; extending it in trials is not
    from neuroemu.errors import SweepError
    with pytest.raises(SweepError, match=r"study.journal: the stored study was made by another "
                                         r"spec \(param"):
        run_sweep(spec_of(folder, SPEC.replace("high = 0.5", "high = 0.4")), out,
                  scheduler=cluster.scheduler_address, trial_fn=fn)


def test_trials_left_running_are_failed_and_run_again(folder, cluster):
    spec = spec_of(folder)
    out = folder / "out"
    out.mkdir()
    study = open_study(spec, out)
    stale = study.ask()         # a sweep that died with this trial on a worker
    stale.suggest_float("neuron.lam.value", 0.1, 0.5)
    stale.suggest_int("train.steps_free", 3, 8)
    values = dict(stale.params)
    res = run_sweep(spec, out, scheduler=cluster.scheduler_address, trials=2,
                    trial_fn=functools.partial(logged_trial, str(folder)))
    assert res["requeued"] == 1 and res["ran"] == 2
    rows = json.loads((out / "results.json").read_text())["trials"]
    assert rows[0]["state"] == "failed" and rows[0]["error"].startswith("interrupted")
    rerun = [r for r in rows if r.get("rerun_of") == 0]
    assert len(rerun) == 1 and rerun[0]["state"] == "complete"
    assert rerun[0]["params"] == values
    assert sum(r["state"] == "complete" for r in rows) == 2


def test_ctrl_c_fails_the_running_trials_and_queues_them_again(folder, cluster):
    """Ctrl-C (a KeyboardInterrupt in the process running the sweep, here raised after the
    first finished trial) leaves the study resumable: the trials in flight are failed as
    interrupted, their values queued, and the next run finishes the sweep."""
    spec = spec_of(folder)
    out = folder / "out"
    fn = functools.partial(logged_trial, str(folder))

    def interrupt(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="run the same command again to resume"):
        run_sweep(spec, out, scheduler=cluster.scheduler_address, trial_fn=fn, log=interrupt)
    rows = json.loads((out / "results.json").read_text())["trials"]
    assert [r["state"] for r in rows[:2]].count("complete") == 1
    cut = [r for r in rows if r["state"] == "failed"]
    assert len(cut) == 1 and cut[0]["error"].startswith("interrupted (Ctrl-C)")
    res = run_sweep(spec, out, scheduler=cluster.scheduler_address, trial_fn=fn)
    rows = res["rows"]
    assert sum(r["state"] == "complete" for r in rows) == 4 and res["requeued"] == 0
    again = [r for r in rows if r.get("rerun_of") == cut[0]["trial"]]
    assert len(again) == 1 and again[0]["params"] == cut[0]["params"]
    assert again[0]["state"] == "complete"


@pytest.mark.slow
def test_a_killed_worker_leaves_the_sweep_running(folder):
    """Trial 1 kills its worker once (Dask runs it again: complete); trial 2 kills every
    worker it lands on (failed with KilledWorker after allowed-failures + 1 deaths)."""
    import dask
    spec = spec_of(folder, SPEC.replace("trials = 4", "trials = 5"))
    out = folder / "out"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        res = run_sweep(spec, out, workers=2,
                        trial_fn=functools.partial(killing_trial, str(folder)))
    rows = json.loads((out / "results.json").read_text())["trials"]
    states = {r["trial"]: r["state"] for r in rows}
    assert states == {0: "complete", 1: "complete", 2: "failed", 3: "complete", 4: "complete"}
    # Dask gives up on it (KilledWorker), or loses it with the copies of the data on the
    # workers it killed -- sent again, up to runner.LOST_RETRIES times
    assert "KilledWorker" in rows[2]["error"] or rows[2]["error"].startswith("Dask lost it")
    ran = calls(folder)
    assert ran.count(1) >= 2 and ran.count(2) >= 2        # run again after each death (a
    # finished trial whose result was on a worker that died before it was fetched runs again)
    assert res["ran"] == 5 and res["failed"] == 1


def test_a_trial_that_fails_is_recorded_and_the_sweep_goes_on(folder, cluster):
    # batch 30 > the 20 images of the smaller trials: TrainError in those, not in the others
    text = SPEC.replace('field = "train.steps_free"\nlow = 3\nhigh = 8',
                        'field = "train.images"\nchoices = [20, 40]').replace(
        "steps_nudged = 3", "steps_nudged = 3\nbatch = 30")
    spec = spec_of(folder, text)
    res = run_sweep(spec, folder / "out", scheduler=cluster.scheduler_address, trials=6)
    rows = res["rows"]
    assert len(rows) == 6 and res["ran"] == 6
    for r in rows:
        if r["params"]["train.images"] == 20:
            assert r["state"] == "failed"
            assert r["error"].startswith("images: fewer training images (20) than one minibatch")
        else:
            assert r["state"] == "complete" and r["error"] is None
    with open(folder / "out" / "results.csv") as f:
        failed = [r for r in csv.DictReader(f) if r["state"] == "failed"]
    assert all("fewer training images" in r["error"] for r in failed)


def test_the_study_file_is_a_journal(folder, cluster):
    spec = spec_of(folder)
    run_sweep(spec, folder / "out", scheduler=cluster.scheduler_address, trials=1)
    lines = (folder / "out" / STUDY_FILE).read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert np.isfinite(json.loads((folder / "out" / "results.json").read_text())
                       ["trials"][0]["validation_error"])


# ------------------------------------------------------------------ the command line

def sweep_cli(capsys, *argv):
    """(exit status, stdout, stderr) of ``neuroemu sweep ARGV`` (through neuroemu.cli.main once
    the subcommand is registered; until then the same parse, call and error handling)."""
    import sys

    from neuroemu import cli
    from neuroemu.errors import NeuroemuError
    argv = [str(a) for a in argv]
    if "sweep" in cli.SUBCOMMANDS:
        rc = cli.main(["sweep", *argv])
    else:
        from neuroemu.cli.sweep import add_sweep_arguments, sweep_main
        p = cli.Parser(prog="neuroemu sweep")
        add_sweep_arguments(p)
        try:
            rc = sweep_main(p.parse_args(argv))
        except SystemExit as exc:
            rc = exc.code
        except NeuroemuError as exc:
            print(f"neuroemu: error: {exc}", file=sys.stderr)
            rc = 2
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_command_runs_resumes_reruns_and_reports(folder, cluster, capsys):
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    out = folder / "runs"
    addr = cluster.scheduler_address
    rc, text, err = sweep_cli(capsys, spec, "--scheduler", addr, "--out", out, "--trials", 3)
    assert rc == 0, err
    assert f"sweep tiny-sweep: 3 trials in {out} (3 complete, 0 failed; 3 run now)" in text
    assert "Pareto front" in text and "reference (trial 0" in text
    assert (out / "results.csv").is_file() and (out / "pareto.png").is_file()
    rc, text, err = sweep_cli(capsys, spec, "--scheduler", addr, "--out", out, "--trials", 4)
    assert rc == 0 and "resuming" in text and "1 run now" in text
    rc, text, err = sweep_cli(capsys, spec, "--out", out, "--rerun", 2)
    assert rc == 0, err
    assert "every figure but the timings is the same" in text
    rc, text, err = sweep_cli(capsys, spec, "--out", out, "--report", "--json")
    assert rc == 0
    doc = json.loads(text)
    assert doc["ran"] == 0 and [t["trial"] for t in doc["trials"]] == [0, 1, 2, 3]
    rc, text, err = sweep_cli(capsys, spec, "--check")
    assert rc == 0 and "neuron.lam.value: [0.1, 0.5]" in text and "the spec is valid" in text


@pytest.mark.parametrize("argv, pattern", [
    (["missing.toml"], r"missing.toml: file not found"),
    (["SPEC", "--check", "--report"], r"--report: not with --check"),
    (["SPEC", "--scheduler", "localhost:8786"],
     r"--scheduler: must be an address like tcp://HOST:PORT \(got 'localhost:8786'\)"),
    (["SPEC", "--workers", "0"], r"--workers: must be"),
    (["SPEC", "--rerun", "3"], r"no study there"),
])
def test_command_errors_are_one_line(folder, capsys, argv, pattern):
    import re
    spec = folder / "spec.toml"
    spec.write_text(SPEC.replace('"small.toml"', f'"{folder / "small.toml"}"'))
    argv = [str(spec) if a == "SPEC" else str(folder / a) if a.endswith(".toml") else a
            for a in argv]
    rc, text, err = sweep_cli(capsys, *argv, "--out", folder / "o", "--data", folder)
    assert rc == 2, (text, err)
    assert err.startswith("neuroemu: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert not (folder / "o").exists()          # nothing written


def test_a_new_sweep_reads_its_data_before_writing_anything(folder):
    from neuroemu.errors import DataError
    (folder / "nodata").mkdir()
    spec = spec_of(folder, SPEC.replace('dataset = "digits"', 'dataset = "mnist"\ndata = "nodata"'))
    with pytest.raises(DataError, match="nodata"):
        run_sweep(spec, folder / "out", workers=1)
    assert not (folder / "out").exists()
