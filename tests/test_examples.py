"""The scripts in examples/ run as a user runs them: each a subprocess writing into its own
temporary folder (all started at once, so the module costs about the slowest one)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT

EXAMPLES = ROOT / "examples"
# script -> files it must write into its output folder
OUTPUTS = {
    "emulate_raster.py": ["run.h5", "raster.png"],
    "energy_profiles.py": ["energy.json", "energy.png"],
    "train_tiny.py": ["tiny-trained.h5", "curve.png"],
    "read_trace_libsonata.py": ["tiny.h5"],
}


# lighter settings than the scripts' defaults (the same code paths, fewer steps)
ARGS = {"emulate_raster.py": ["--steps", "40"],
        "energy_profiles.py": ["--digits", "5", "--steps", "40"],
        "train_tiny.py": ["--epochs", "2"]}


def has_libsonata() -> bool:
    return importlib.util.find_spec("libsonata") is not None


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(OUTPUTS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every example started in a subprocess at once: {script: (process, output folder)}."""
    base = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "TMPDIR": str(base), "MPLBACKEND": "Agg"}
    procs = {}
    for name in OUTPUTS:
        if name == "read_trace_libsonata.py" and not has_libsonata():
            continue
        out = base / name.removesuffix(".py")
        cmd = [sys.executable, str(EXAMPLES / name), str(out), *ARGS.get(name, [])]
        procs[name] = (subprocess.Popen(cmd,
                                        cwd=base, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True), out)
    yield procs
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_example_runs_and_writes_its_files(name, runs):
    if name == "read_trace_libsonata.py" and not has_libsonata():
        pytest.skip("libsonata is not installed (the test extra installs it)")
    proc, out = runs[name]
    stdout, stderr = proc.communicate(timeout=600)   # a guard against a hang, not a timing
    assert proc.returncode == 0, stderr
    assert "wrote" in stdout or "libsonata read" in stdout
    for f in OUTPUTS[name]:
        assert (out / f).stat().st_size > 0, f
    if name == "read_trace_libsonata.py":
        assert "DIFFERENT" not in stdout and "the same as neuroemu's reader" in stdout


def test_examples_keep_earlier_outputs_without_force(tmp_path):
    spec = importlib.util.spec_from_file_location("energy_profiles",
                                                  EXAMPLES / "energy_profiles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "energy.png").write_text("mine")
    with pytest.raises(SystemExit, match=r"energy.png: already exists \(use --force"):
        mod.main([str(tmp_path)])
    assert (tmp_path / "energy.png").read_text() == "mine"
