"""--input arrays are read header first, and JSON output is strict (issue 12, classes 2 and 3)."""

import os
import threading

import numpy as np
import pytest

from neuroemu import cli
from neuroemu.cli.options import dumps
from neuroemu.errors import NeuroemuError


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("command", ["run", "energy"])
def test_input_fifo_is_refused_without_blocking(tmp_path, capsys, command):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    done = []
    t = threading.Thread(target=lambda: done.append(
        cli.main([command, "tiny", "--input", str(fifo), "--steps", "3"])), daemon=True)
    t.start()
    t.join(30)
    assert done == [2], "the command blocked on a FIFO or did not refuse it"
    assert "x.npy" in one_line(capsys)


def test_input_with_a_huge_declared_shape_is_refused_before_reading(tmp_path, capsys):
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 4)})
        f.write(b"\0" * 64)
    assert cli.main(["run", "tiny", "--input", str(path), "--steps", "3"]) == 2
    assert "big.npy" in one_line(capsys)


@pytest.mark.parametrize("bad", [[[1e308, 0, 0, 0]], [[np.nan, 0, 0, 0]], [[0, 0, 0]]])
def test_input_values_and_shapes_are_checked(tmp_path, capsys, bad):
    path = tmp_path / "x.npy"
    np.save(path, np.array(bad, dtype=np.float64))
    assert cli.main(["run", "tiny", "--input", str(path), "--steps", "3", "--json"]) == 2
    assert "x.npy" in one_line(capsys)


def test_a_good_input_runs(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.linspace(0, 1, 8).reshape(2, 4))
    assert cli.main(["run", "tiny", "--input", str(path), "--steps", "3", "--json"]) == 0
    assert '"batch": 2' in capsys.readouterr().out


def test_json_output_never_prints_nan_or_infinity():
    assert dumps({"a": [1.0, 2]}) == '{"a": [1.0, 2]}'
    with pytest.raises(NeuroemuError, match=r"JSON output: a\.1\.b is not finite"):
        dumps({"a": [0.0, {"b": float("inf")}]})
