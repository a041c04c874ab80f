"""A non-editable install is self-contained: the wheel carries the shipped networks, the
hardware profiles and the demo's digits, builds without a setuptools warning, and the
installed ``neuroemu`` works from an empty folder.

Slow (``-m slow``): it copies the source into a temporary folder, builds a wheel there with
this environment's setuptools (``--no-build-isolation``: offline), installs it with
``--no-deps`` into a fresh venv that borrows this environment's packages (numpy, numba, ...)
through a ``.pth`` file, and runs the installed command from an empty folder.  Everything is
written under the test's temporary folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "datasets"
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".hypothesis", "traces", "runs", "out", "*.nbi",
                              "*.nbc")

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


def _backend_can_build_wheels() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    if (major, minor) >= (70, 1):
        return True                     # bdist_wheel is part of setuptools
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, the build's output) of neuroemu built and installed from a copy of
    the source tree."""
    if not _backend_can_build_wheels():
        pytest.skip("needs setuptools >= 70.1 (or the wheel package) to build offline: "
                    "pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "NEUROEMU_DATA")}
    build = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps",
                  "--no-build-isolation", "--no-index", "-w", tmp / "dist", src], tmp, env)
    v = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(v)
    py = v / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp).stdout.strip())
    # this environment's packages (numpy, numba, h5py, ...), after the venv's own: its .pth
    # files (an editable neuroemu) are not processed from there
    (site / "_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((tmp / "dist").glob("neuroemu-*.whl"))
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
          wheel], tmp, env)
    return v, build.stdout + build.stderr, wheel, env


def test_the_build_prints_no_setuptools_warning(installed):
    _, log, _, _ = installed
    bad = [line for line in log.splitlines()
           if re.search(r"warn|deprecat|!!", line, re.IGNORECASE)
           and "byte-compiling is disabled" not in line]
    assert not bad, "\n".join(bad)


def test_the_wheel_carries_the_package_data(installed):
    from neuroemu import describe
    _, _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    data = describe.shipped_dir().parent
    for f in data.rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            assert f"neuroemu/{f.relative_to(data.parent).as_posix()}" in names, f


def test_the_installed_command_runs_from_an_empty_folder(installed, tmp_path):
    v, _, _, env = installed
    exe = v / "bin" / "neuroemu"
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([v / "bin" / "python", "-c", "import neuroemu; print(neuroemu.__file__)"],
                 empty, env).stdout
    assert where.startswith(str(v)), where           # the installed copy, not the source
    out = _run([exe, "netlists"], empty, env).stdout
    assert "mnist-binary-trained" in out and "tiny " in out and str(v) in out
    out = _run([exe, "demo", "--no-files"], empty, env).stdout
    assert "accuracy 99.00% (3 errors in 300)" in out
    assert "spikes per digit: 12667 in total" in out
    assert "energy on profile 'loihi': 121.9 uJ per classified digit" in out
    out = _run([exe, "run", "mnist-binary-trained", "--steps", "10"], empty, env).stdout
    assert out.startswith("mnist-binary-trained: 10 steps")
    assert "ok -- network 'fig2'" in _run([exe, "validate", "fig2"], empty, env).stdout
    assert "profile loihi" in _run([exe, "energy", "tiny", "--steps", "10"], empty, env).stdout
    _run([exe, "convert", "tiny", "tiny.h5"], empty, env)
    assert sorted(p.name for p in empty.iterdir()) == ["tiny.h5"]


@pytest.mark.skipif(not (REAL_DATA / "mnist").is_dir(), reason=f"no MNIST in {REAL_DATA}")
def test_the_installed_command_trains_and_evaluates_shipped_names(installed, tmp_path):
    v, _, _, env = installed
    exe = v / "bin" / "neuroemu"
    out = _run([exe, "eval", "mnist-binary-trained", "--dataset", "mnist", "--data", REAL_DATA,
                "--limit", "300"], tmp_path, env).stdout
    assert "test error 1.00% (3 of 300 misclassified" in out      # the demo's 300 digits
    out = _run([exe, "train", "mnist-binary", "--dataset", "mnist", "--data", REAL_DATA,
                "--train-limit", "40", "--val-limit", "20", "--no-test", "--out",
                tmp_path / "t.toml"], tmp_path, env).stdout
    assert "epoch 1: running error" in out and (tmp_path / "t.toml").is_file()
