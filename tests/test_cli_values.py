"""Issue 12, class 8: command-line values.  Every option is checked before any work starts;
a bad value is one line ``neuroemu: error: ...`` with exit 2, never a traceback.

The work of each command is replaced by a tripwire (:class:`Work`): a command line either
fails with one line and exit 2 before reaching it, or reaches it (or finishes with exit 0 when
it has no work, like validate).  Hypothesis draws option values (negative, huge, NaN,
infinite, non-numeric, duplicated lists) per subcommand; for each value the test knows
whether it is valid, and a bad one must be refused before the tripwire and create no file.
Everything is made in tmp_path.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Work, set_tripwire
from neuroemu import cli, describe
from neuroemu.learn.converge import SCHEMES
from neuroemu.learn.datasets import Dataset

INT_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A folder with a small netlist (arrays in .npy files), an input array and fake data."""
    root = tmp_path_factory.mktemp("values")
    net = root / "net.toml"
    describe.save(describe.layered([16, 8, 10], neuron="continuous", seed=1), net)
    np.save(root / "x.npy", np.zeros((2, 16)))
    return root, net


@pytest.fixture
def tripped(monkeypatch, env):
    import neuroemu.cli.eval as evc
    import neuroemu.cli.train as tr
    set_tripwire(monkeypatch, build=False)
    rng = np.random.default_rng(0)
    images, labels = rng.random((60, 16)), rng.integers(0, 10, 60)
    fit = Dataset(images[:40], labels[:40], "mnist", "train", env[0])
    val = Dataset(images[40:], labels[40:], "mnist", "validation", env[0])
    monkeypatch.setattr(tr, "_load_data", lambda args: (fit, val, None))
    monkeypatch.setattr(evc, "load_split", lambda name, d, split: (val, 0))
    return env


def outcome(capsys, argv) -> str:
    """'work' (reached the tripwire), 'ok' (exit 0) or 'error' (one line, exit 2); anything
    else -- a traceback, another exit status, a second line -- fails the test."""
    try:
        rc = cli.main([str(a) for a in argv])
    except Work:
        capsys.readouterr()
        return "work"
    out, err = capsys.readouterr()
    if rc == 0:
        return "ok"
    assert rc == 2, (argv, rc, err)
    assert err.startswith("neuroemu: error: ") and err.count("\n") == 1, (argv, err)
    return "error"


# ------------------------------------------------------------------ crafted

@pytest.mark.parametrize("argv,pattern", [
    (["run", "{net}", "--seed", "-1"], r"--seed: must be an integer in \[0, 2\*\*63-1\] \(got -1\)"),
    (["run", "{net}", "--seed", str(2**63)], r"--seed: must be an integer in"),
    (["train", "{net}", "--seed", "-1"], r"--seed: must be an integer in"),
    (["run", "{net}", "--trace", "{root}/t.h5", "--probe-vars", "s,s"], r"'s' is named twice"),
    (["run", "{net}", "--trace", "{root}/t.h5", "--probe-vars", "s,q"], r"unknown variable 'q'"),
    (["run", "{net}", "--trace", "{root}"], r"is a directory"),
    (["run", "{net}", "--dt", "nan"], r"--dt: must be a finite number > 0 \(got nan\)"),
    (["run", "{net}", "--steps", "-1"], r"--steps: must be a non-negative integer \(got -1\)"),
    (["run", "{net}", "--steps", "1.5"], r"--steps: must be a non-negative integer"),
    (["run", "{net}", "--batch", "0"], r"--batch: must be a positive integer \(got 0\)"),
    (["run", "{net}", "--threads", "0"], r"--threads: must be a positive integer"),
    (["run", "{net}", "--probe-every", "0"], r"--probe-every: must be a positive integer"),
    (["train", "{net}", "--train-limit", "-1"], r"--train-limit: must be a positive integer"),
    (["train", "{net}", "--val-limit", "0"], r"--val-limit: must be a positive integer"),
    (["train", "{net}", "--beta", "inf"], r"--beta: must be a finite number > 0"),
    (["train", "{net}", "--rates", "0.1,nan"], r"--rates: must be comma-separated finite"),
    (["train", "{net}", "--epochs", "-2"], r"--epochs: must be a non-negative integer"),
    (["train", "{net}", "--plot", "{root}/missing/x.pnq"], r"picture suffix"),
    (["converge", "--json", "{root}"], r"--json .*: is a directory"),
    (["converge", "--schemes", "x"], r"unknown scheme 'x'"),
    (["converge", "--runs", "0"], r"--runs: must be a positive integer"),
    (["energy", "{net}", "--mesh", "0x4"], r"--mesh: must be WIDTHxHEIGHT"),
    (["energy", "{net}", "--word-bits", "0"], r"--word-bits: must be an integer in 1..4096"),
    (["energy", "{net}", "--routing", "x"], r"--routing: must be one of multicast, unicast"),
    (["energy", "{net}", "--batch", str(10**12)], r"exceed the session limit"),
    (["eval", "{net}", "--dataset", "mnist", "--split", "dev"], r"--split: must be one of"),
    (["inspect", "{root}/none.h5", "--sample", "-1"], r"--sample: must be a non-negative"),
    (["demo", "--digits", "301"], r"--digits: must be an integer in 1..300 \(got 301\)"),
    (["run", "{net}", "--bogus"], r"unrecognized arguments: --bogus"),
    (["run"], r"the following arguments are required: netlist"),
])
def test_bad_values_are_one_line_before_work(tripped, capsys, argv, pattern):
    import re
    root, net = tripped
    before = sorted(p.name for p in root.iterdir())
    argv = [a.format(net=net, root=root) for a in argv]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("neuroemu: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert sorted(p.name for p in root.iterdir()) == before


def test_a_shipped_profile_name_is_the_shipped_profile(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loihi").write_text("not a profile")     # a file named like a shipped profile
    assert cli.main(["energy", "tiny", "--steps", "2", "--profile", "loihi", "--json"]) == 0
    assert '"profile": "loihi"' in capsys.readouterr().out
    assert cli.main(["energy", "tiny", "--steps", "2", "--profile", "./loihi"]) == 2
    assert "loihi" in capsys.readouterr().err               # a path is a path
    assert cli.main(["demo", "--digits", "1", "--no-files", "--profile", "loihi"]) == 0


def test_argparse_errors_are_one_line(capsys):
    for argv in (["frob"], ["run", "tiny", "--steps"], ["train"], ["eval", "tiny"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("neuroemu: error: ") and err.count("\n") == 1, err


# ------------------------------------------------------------------ generated

def _int_ok(lo, hi=INT_MAX):
    def ok(text):
        try:
            v = int(text)
        except ValueError:
            return False
        return lo <= v <= hi
    return ok


def _float_ok(positive=False):
    def ok(text):
        try:
            v = float(text)
        except ValueError:
            return False
        return math.isfinite(v) and (v > 0 or not positive)
    return ok


def _subset_ok(choices):
    def ok(text):
        names = [s.strip() for s in text.split(",") if s.strip()]
        return bool(names) and all(n in choices for n in names) and len(set(names)) == len(names)
    return ok


# option -> (which values are valid); per subcommand, with the arguments that come first
SPECS = {
    "run": (["{net}"], {"--steps": _int_ok(0), "--batch": _int_ok(1), "--seed": _int_ok(0),
                        "--threads": _int_ok(1), "--probe-every": _int_ok(1),
                        "--dt": _float_ok(True), "--probe-vars": _subset_ok(("s", "v", "eps",
                                                                              "phi"))}),
    "train": (["{net}"], {"--epochs": _int_ok(0), "--batch": _int_ok(1), "--seed": _int_ok(0),
                          "--threads": _int_ok(1), "--steps-free": _int_ok(1),
                          "--steps-nudged": _int_ok(1), "--train-limit": _int_ok(1),
                          "--val-limit": _int_ok(1), "--validation": _int_ok(1),
                          "--beta": _float_ok(True)}),
    "eval": (["{net}", "--dataset", "mnist"], {"--steps": _int_ok(1), "--limit": _int_ok(1),
                                               "--batch": _int_ok(1), "--threads": _int_ok(1),
                                               "--seed": _int_ok(0)}),
    "energy": (["{net}"], {"--steps": _int_ok(0), "--nudge-steps": _int_ok(0),
                           "--batch": _int_ok(1), "--seed": _int_ok(0), "--offset": _int_ok(0),
                           "--neurons-per-core": _int_ok(1), "--word-bits": _int_ok(1, 4096),
                           "--beta": _float_ok()}),
    "converge": ([], {"--runs": _int_ok(1), "--seed": _int_ok(0),
                      "--schemes": _subset_ok(tuple(SCHEMES))}),
    "demo": (["--no-files"], {"--digits": _int_ok(1, 300)}),
}

VALUES = st.one_of(
    st.integers(-2**70, 2**70).map(str),
    st.integers(-3, 400).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "0.5", "1.5", "abc", "0x10",
                     "1e3", "", " 3", "s,s", "s,v", "eps", "x,,s", "sd_eps_sqrt",
                     "sd_eps_sqrt,sd_eps_sqrt", "sd_eps_sqrt,sd_pred_poly"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _case(command):
    lead, opts = SPECS[command]
    return st.tuples(st.just(command), st.sampled_from(sorted(opts)), VALUES)


CASES = st.one_of(*[_case(c) for c in SPECS])


def _check(tripped, capsys, case):
    root, net = tripped
    command, option, value = case
    lead, opts = SPECS[command]
    if command == "converge":
        lead = ["--plot", ""]          # no default converge.png in the working folder
    argv = [command] + [a.format(net=net) for a in lead] + [f"{option}={value}"]
    before = sorted(p.name for p in root.iterdir())
    got = outcome(capsys, argv)
    if not opts[option](value):
        assert got == "error", (argv, got)
    assert sorted(p.name for p in root.iterdir()) == before, argv


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_generated_option_values(tripped, capsys, case):
    _check(tripped, capsys, case)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_generated_option_values_long(tripped, capsys, case):
    _check(tripped, capsys, case)
