"""``neuroemu convert`` for NIR and NWB (issue 14), end to end through the command line: a
trace to NWB, a netlist to NIR and back, and every bad input as one line with exit 2."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from neuroemu import cli, describe

from conftest import NETLISTS, one_line_error, run_cli


def hide(monkeypatch, package: str) -> None:
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, package, None)


# ------------------------------------------------------------------------------------ NWB

@pytest.fixture
def trace(tmp_path, capsys):
    path = tmp_path / "t.h5"
    rc, _, err = run_cli(capsys, "run", "tiny", "--steps", "30", "--batch", "2", "--trace", path)
    assert rc == 0, err
    return path


def test_trace_to_nwb_end_to_end(tmp_path, capsys, trace):
    pynwb = pytest.importorskip("pynwb")
    out = tmp_path / "t.nwb"
    rc, text, err = run_cli(capsys, "convert", trace, out)
    assert rc == 0, err
    assert f"{trace} -> {out}: 6 populations, 18 units" in text
    from neuroemu import record
    with record.open(trace) as t, pynwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert sorted(f.processing["spikes"].data_interfaces) == sorted(t.populations)
        for pop in t.populations:
            table = f.processing["spikes"][pop]
            counts = [len(table["spike_times"][i]) for i in range(len(table))]
            assert counts == t.counts(pop).tolist()
        assert f"{sum(len(v) for v in f.units['spike_times'][:])} spikes" in text
    # refusals: existing output, output == input, --dt, a netlist, a shipped name, no file
    err = one_line_error(capsys, "convert", trace, out)
    assert "already exists (use --force to overwrite)" in err
    assert run_cli(capsys, "convert", trace, out, "--force")[0] == 0
    assert "is an input of this command" in one_line_error(capsys, "convert", trace, trace,
                                                           "--force")
    assert "--dt: applies to NIR conversions only" in one_line_error(
        capsys, "convert", trace, tmp_path / "d.nwb", "--dt", "0.001")
    net_h5 = tmp_path / "net.h5"
    assert run_cli(capsys, "convert", "tiny", net_h5)[0] == 0
    err = one_line_error(capsys, "convert", net_h5, tmp_path / "n.nwb")
    assert f"{net_h5}: not a spike trace (no /spikes group)" in err
    assert "a shipped network, not a spike trace" in one_line_error(
        capsys, "convert", "tiny", tmp_path / "n.nwb")
    assert "file not found" in one_line_error(capsys, "convert", tmp_path / "no.h5",
                                              tmp_path / "n.nwb")
    assert "reading NWB is not supported" in one_line_error(capsys, "convert", out,
                                                            tmp_path / "x.toml")
    assert not (tmp_path / "n.nwb").exists() and not (tmp_path / "d.nwb").exists()


def test_a_trace_still_converts_to_its_netlist(tmp_path, capsys, trace):
    rc, text, err = run_cli(capsys, "convert", trace, tmp_path / "net.toml")
    assert rc == 0 and "(read back: identical)" in text, err
    assert describe.same(describe.load(tmp_path / "net.toml"), describe.load(trace))


def test_unknown_destination_suffix(tmp_path, capsys):
    err = one_line_error(capsys, "convert", "tiny", tmp_path / "x.json")
    assert "x.json: unknown netlist file type (use .toml, .h5 or .hdf5; .nir for NIR; .nwb " \
        "for a trace's spikes)" in err


def test_missing_pynwb_is_one_line(tmp_path, capsys, monkeypatch, trace):
    hide(monkeypatch, "pynwb")
    err = one_line_error(capsys, "convert", trace, tmp_path / "t.nwb")
    assert "needs the optional package 'pynwb' (pip install 'neuroemu[interop]')" in err


def test_help_documents_dt(capsys):
    with pytest.raises(SystemExit):
        cli.main(["convert", "--help"])
    out = capsys.readouterr().out
    assert "--dt SECONDS" in out and "default 0.001" in out and ".nwb" in out


# ------------------------------------------------------------------------------------ NIR

def nir_ready():
    pytest.importorskip("nir")
    pytest.importorskip("neuroemu.interop.nir_export")
    pytest.importorskip("neuroemu.interop.nir_import")


@pytest.mark.parametrize("dest", ["back.toml", "back.h5"])
def test_netlist_to_nir_and_back(tmp_path, capsys, dest):
    nir_ready()
    out = tmp_path / "out.nir"
    rc, text, err = run_cli(capsys, "convert", "tiny", out)
    assert rc == 0, err
    assert "read back: identical" in text
    rc, text, err = run_cli(capsys, "convert", out, tmp_path / dest)
    assert rc == 0, err
    assert describe.same(describe.load(tmp_path / dest), describe.load(NETLISTS / "tiny.toml"))
    # an explicit --dt both ways gives the same network too
    rc, _, err = run_cli(capsys, "convert", "tiny", tmp_path / "dt.nir", "--dt", "0.0005")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "convert", tmp_path / "dt.nir", tmp_path / "dt.toml",
                         "--dt", "0.0005")
    assert rc == 0, err
    assert describe.same(describe.load(tmp_path / "dt.toml"), describe.load(NETLISTS / "tiny.toml"))


def test_nir_refusals(tmp_path, capsys):
    nir_ready()
    out = tmp_path / "out.nir"
    assert run_cli(capsys, "convert", "tiny", out)[0] == 0
    assert "already exists" in one_line_error(capsys, "convert", "tiny", out)
    assert run_cli(capsys, "convert", "tiny", out, "--force")[0] == 0
    assert "NIR to NIR" in one_line_error(capsys, "convert", out, tmp_path / "o2.nir")
    for bad in ("0", "-1", "nan", "x"):
        err = one_line_error(capsys, "convert", "tiny", tmp_path / "b.nir", "--dt", bad)
        assert "--dt" in err and bad in err
    assert not (tmp_path / "b.nir").exists()


@pytest.mark.parametrize("content", [b"not a NIR file at all\n", b"", None])
def test_a_bad_nir_file_is_one_line(tmp_path, capsys, content):
    nir_ready()
    bad = tmp_path / "bad.nir"
    if content is None:   # an HDF5 file that is no NIR graph: a netlist under a .nir name
        describe.save(describe.load(NETLISTS / "tiny.toml"), tmp_path / "n.h5")
        (tmp_path / "n.h5").rename(bad)
    else:
        bad.write_bytes(content)
    err = one_line_error(capsys, "convert", bad, tmp_path / "x.toml")
    assert str(bad) in err
    assert not (tmp_path / "x.toml").exists()


def test_a_missing_nir_file(tmp_path, capsys):
    nir_ready()
    err = one_line_error(capsys, "convert", tmp_path / "none.nir", tmp_path / "x.toml")
    assert "none.nir" in err and "not found" in err


def test_missing_nir_is_one_line(tmp_path, capsys, monkeypatch):
    hide(monkeypatch, "nir")
    err = one_line_error(capsys, "convert", "tiny", tmp_path / "t.nir")
    assert "needs the optional package 'nir' (pip install 'neuroemu[interop]')" in err
    (tmp_path / "x.nir").write_bytes(b"x")
    err = one_line_error(capsys, "convert", tmp_path / "x.nir", tmp_path / "x.toml")
    assert "needs the optional package 'nir'" in err
    assert not (tmp_path / "t.nir").exists() and not (tmp_path / "x.toml").exists()


def test_shipped_netlists_through_nir_cli(tmp_path, capsys):
    """Every shipped network: neuroemu -> NIR -> neuroemu through the command line."""
    nir_ready()
    for name in describe.shipped():
        out = tmp_path / f"{name}.nir"
        rc, _, err = run_cli(capsys, "convert", name, out)
        assert rc == 0, (name, err)
        rc, _, err = run_cli(capsys, "convert", out, tmp_path / f"{name}.h5")
        assert rc == 0, (name, err)
        assert describe.same(describe.load(tmp_path / f"{name}.h5"), describe.load(name)), name
        np.testing.assert_equal(len(describe.load(tmp_path / f"{name}.h5").projections),
                                len(describe.load(name).projections))
