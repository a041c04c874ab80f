"""Faults while a trace is written (issue 12, classes 5-7): Ctrl-C at random moments (exit 130,
one line, a readable NAME.partial), kill -9 at random moments (the readable prefix reaches the
last commit), a file-size limit (one line saying what was kept, the .partial reads as that),
several writers of one path (one wins, the others get one line), and a traced run's RunResult
(phases merged, so memory stays flat; counters as an untraced run's).  Writers run as
subprocesses of `neuroemu run ... --trace` in tmp_path; the 20-try Ctrl-C run is marked slow."""

import random
import resource
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from neuroemu import describe, engines, record
from neuroemu.engines import compiled as compiler
from neuroemu.record.layout import progress_check

from conftest import NETLISTS


def start(path, steps=10**6, net="mnist-binary", extra=(), **kw):
    return subprocess.Popen([sys.executable, "-m", "neuroemu", "run", net, "--steps", str(steps),
                             "--trace", str(path), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=path.parent, **kw)


def wait_for(path, p, timeout=60.0):
    t0 = time.monotonic()
    while not path.exists():
        assert p.poll() is None, f"the writer ended before {path.name} appeared: " \
                                 f"{p.communicate()[1]}"
        assert time.monotonic() - t0 < timeout
        time.sleep(0.01)


def last_commit(part) -> int:
    """t_end of the last progress row whose checksum holds, read with plain h5py."""
    try:
        f = h5py.File(part, "r", swmr=True)
    except OSError:
        f = h5py.File(part, "r")
    with f:
        rows = [r for r in f["neuroemu/progress"][()] if int(r["check"]) == progress_check(r)]
    return int(rows[-1]["t_end"]) if rows else 0


def check_partial(part) -> int:
    """The .partial reads up to its last commit, and its spikes agree with its counters."""
    last = last_commit(part)
    with record.open(part) as t:
        assert not t.complete and t.t_end == last
        c = t.counters()
        assert t.counters_step == t.t_end
        for pop in t.populations:
            inf = t.info(pop)
            steps, ids = t.spikes(pop)
            assert len(steps) == c["spikes"][t.samples.index(inf["sample"]),
                                             t.layers.index(inf["layer"])]
            assert steps.size == 0 or (steps.min() >= 1 and steps.max() <= t.t_end)
        t.summary()
    return last


def interrupt(tmp_path, tries, rng, sig):
    """Start `tries` writers at once, signal each at a random moment after its file appears."""
    runs = []
    for k in range(tries):
        path = tmp_path / f"run{k}.h5"
        runs.append((path, start(path)))
    for path, p in runs:
        wait_for(path.with_name(path.name + ".partial"), p)
    order = sorted(range(tries), key=lambda _: rng.random())
    for k in order:
        time.sleep(rng.uniform(0, 1.0 / max(1, tries // 4)))
        runs[k][1].send_signal(sig)
    out = []
    for path, p in runs:
        _, err = p.communicate(timeout=120)
        out.append((path, p.returncode, err))
    return out


def check_sigint(tmp_path, tries, seed):
    for path, rc, err in interrupt(tmp_path, tries, random.Random(seed), signal.SIGINT):
        lines = err.strip().splitlines()
        assert rc == 130, err
        assert len(lines) == 1 and lines[0].startswith("neuroemu: interrupted: stopped after "
                                                       "step"), err
        part = path.with_name(path.name + ".partial")
        assert part.exists() and not path.exists()
        t_end = check_partial(part)
        assert f"holds steps 1..{t_end} " in lines[0]


def test_ctrl_c_stops_a_traced_run_cleanly(tmp_path):
    check_sigint(tmp_path, 2, seed=1)


@pytest.mark.slow
def test_ctrl_c_stops_a_traced_run_cleanly_20_of_20(tmp_path):
    for k in range(4):
        sub = tmp_path / str(k)
        sub.mkdir()
        check_sigint(sub, 5, seed=100 + k)


@pytest.mark.parametrize("tries", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_kill_9_leaves_a_prefix_reaching_the_last_commit(tmp_path, tries):
    for path, rc, err in interrupt(tmp_path, tries, random.Random(tries), signal.SIGKILL):
        assert rc == -signal.SIGKILL
        part = path.with_name(path.name + ".partial")
        assert part.exists() and not path.exists()
        check_partial(part)


def test_a_file_size_limit_gives_one_line_and_keeps_what_was_committed(tmp_path):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))
    path = tmp_path / "big.h5"
    p = start(path, preexec_fn=limit)
    _, err = p.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, err
    assert "big.h5.partial: writing failed (File too large); the file keeps steps 1.." in err
    kept = int(lines[0].split("keeps steps 1..")[1].split(",")[0])
    part = tmp_path / "big.h5.partial"
    assert check_partial(part) == kept
    # the commands that read traces accept what is left
    for cmd in (["inspect", str(part)], ["inspect", str(part), "--json"],
                ["energy", str(part), "--json"]):
        r = subprocess.run([sys.executable, "-m", "neuroemu", *cmd], capture_output=True,
                           text=True, cwd=tmp_path)
        assert r.returncode == 0 or (kept == 0 and r.returncode == 2), r.stderr


@pytest.mark.parametrize("suffix", [".h5", ".toml"])
def test_convert_under_a_file_size_limit_does_not_crash(tmp_path, suffix):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    r = subprocess.run([sys.executable, "-m", "neuroemu", "convert",
                        str(NETLISTS / "mnist-binary.toml"), str(tmp_path / f"out{suffix}")],
                       capture_output=True, text=True, cwd=tmp_path, preexec_fn=limit)
    assert r.returncode in (1, 2), r.stderr          # never a signal (segfault)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "writing failed (File too large)" in r.stderr, r.stderr
    assert not (tmp_path / f"out{suffix}").exists()  # nothing half-written under the name
    assert [p.name for p in tmp_path.iterdir()] == []


def test_concurrent_writers_of_one_path(tmp_path):
    path = tmp_path / "same.h5"
    ps = [start(path, steps=3000, extra=("--force",)) for _ in range(3)]
    res = [(p.communicate(timeout=120)[1], p.returncode) for p in ps]
    assert sorted(rc for _, rc in res) == [0, 2, 2] or \
        [rc for _, rc in res].count(0) >= 1, res
    for err, rc in res:
        if rc:
            assert len(err.strip().splitlines()) == 1 and "another process" in err, err
    with record.open(path) as t:
        assert t.complete and t.t_end == 3000
        c = t.counters()
        for pop in t.populations:
            assert len(t.spikes(pop)[0]) == c["spikes"][0, t.layers.index(pop)]
    assert not list(tmp_path.glob(".*.lock"))


@pytest.mark.parametrize("engine", ["lockstep", "async"])
def test_traced_run_keeps_one_merged_phase_with_the_untraced_counters(tmp_path, engine):
    cn = compiler.build(describe.load(NETLISTS / "tiny.toml"))
    x = np.random.default_rng(2).random((2, 4))
    plain = engines.run(cn, x, 301, engine=engine, seed=3)
    traced = record.run_traced(tmp_path / "t.h5", cn, x, 301, engine=engine, seed=3,
                               probes={"hidden": None}, probe_every=2)
    assert [(p.name, p.t_start, p.steps) for p in traced.phases] == [("free", 0, 301)]
    for k, v in plain.counters.items():
        assert np.array_equal(traced.counters[k], v)
        assert np.array_equal(traced.phases[0].counters[k], plain.phases[0].counters[k])
    for k, v in plain.final_states.items():
        assert np.array_equal(traced.final_states[k], v)
    with record.open(tmp_path / "t.h5") as t:
        assert t.t_end == 301 and len(t.blocks()) == 301   # the file keeps every call


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`neuroemu energy ... --json | head -c 20`: the reader goes away after a few bytes of
    an output larger than the pipe's buffer (~167 KB here); neuroemu stops without a
    traceback, with the status a shell reports for SIGPIPE."""
    p = subprocess.Popen([sys.executable, "-m", "neuroemu", "energy", "mnist-binary-trained",
                          "--steps", "3", "--json", "--profile", "all", "--batch", "50"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(20)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err.strip() == "", err
