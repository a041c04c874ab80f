"""The reproduction manifest (benchmarks/manifest.toml) and its checker: the manifest covers
docs/results.md, the checker notices what differs, and -- marked slow -- every short entry
re-runs to exactly its figures."""

import importlib.util
import re

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("reproduce", ROOT / "benchmarks" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)

ENTRIES = reproduce.load_manifest()
DATA = ROOT.parent / "shared" / "datasets"


def test_every_results_section_has_manifest_entries():
    sections = re.findall(r"^## (.+)$", (ROOT / "docs" / "results.md").read_text(), re.M)
    named = " | ".join(e["section"] for e in ENTRIES.values())
    missing = [s for s in sections if s not in named]
    assert not missing, f"sections of docs/results.md without a manifest entry: {missing}"


@pytest.mark.parametrize("name", list(ENTRIES))
def test_entries_say_where_their_figures_came_from(name):
    e = ENTRIES[name]
    assert e["commit"] and e["wall_seconds"] > 0 and isinstance(e["seed"], int)
    compared = [k for k in ("stdout", "sha256", "json", "json_file") if k in e]
    assert compared if e["kind"] == "exact" else not compared


def test_paths_and_comparison():
    doc = {"a": [{"b": 1.0}, {"b": 2.5}], "c": "x"}
    assert reproduce.at(doc, "a.-1.b") == 2.5 and reproduce.at(doc, "c") == "x"
    assert reproduce.same(1.0, 1.0, 0.0) and not reproduce.same(1.0, 1.0 + 1e-15, 0.0)
    assert reproduce.same(1.0, 1.0 + 1e-15, 1e-12) and not reproduce.same(1.0, 1.01, 1e-3)
    assert reproduce.same({"x": [1, 2.0]}, {"x": [1, 2.0]}, 0.0)
    assert not reproduce.same({"x": [1, 2.0]}, {"x": [1]}, 0.0)
    assert not reproduce.same(True, 1, 0.0)


def test_digest_is_the_same_for_both_file_forms(tmp_path):
    import neuroemu
    net = neuroemu.load("tiny")
    neuroemu.save(net, tmp_path / "t.h5")
    neuroemu.save(net, tmp_path / "t.toml")
    d = reproduce.netlist_digest(tmp_path / "t.h5")
    assert d == reproduce.netlist_digest(tmp_path / "t.toml")
    other = neuroemu.describe.replace(net, biases={"output": [0.0, 1e-300]})
    neuroemu.save(other, tmp_path / "u.h5")
    assert reproduce.netlist_digest(tmp_path / "u.h5") != d


def test_the_checker_reports_what_differs(tmp_path):
    import neuroemu
    good = reproduce.netlist_digest(neuroemu.shipped()["tiny"])
    entry = {"name": "t", "section": "-", "kind": "exact",
             "command": "neuroemu convert tiny {out}/t.h5",
             "sha256": {"file": "t.h5", "digest": good},
             "stdout": ["(read back: identical)"]}
    assert reproduce.check(entry, str(DATA), tmp_path, echo=lambda *a: None) == []
    entry["sha256"]["digest"] = "0" * 64
    entry["stdout"] = ["no such line"]
    bad = reproduce.check(entry, str(DATA), tmp_path, echo=lambda *a: None)
    assert len(bad) == 2 and "sha256 of t.h5" in bad[1] and "no such line" in bad[0]
    entry = {"name": "j", "section": "-", "kind": "exact",
             "command": "neuroemu netlists --json",
             "json": [{"file": "-", "values": {"-1.name": "tiny", "-1.sizes": [4, 3, 5]}}]}
    bad = reproduce.check(entry, str(DATA), tmp_path, echo=lambda *a: None)
    assert bad == ["-: -1.sizes = [4, 3, 2] (manifest [4, 3, 5], rtol 0)"]


SHORT = [n for n, e in ENTRIES.items() if e.get("short")]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHORT)
def test_short_entries_reproduce(name, tmp_path):
    entry = ENTRIES[name]
    if reproduce.needs_data(entry) and not (DATA / "mnist").is_dir():
        pytest.skip(f"needs the datasets in {DATA}")
    assert reproduce.check(entry, str(DATA), tmp_path) == []
