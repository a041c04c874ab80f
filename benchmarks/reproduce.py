"""Re-run the commands behind the shipped networks and the figures of docs/results.md, and
compare what they produce with what the reproduction manifest (benchmarks/manifest.toml) says.

    python benchmarks/reproduce.py --list                    # every entry, one line each
    python benchmarks/reproduce.py --check demo fig2         # re-run entries and compare
    python benchmarks/reproduce.py --check --short           # every short entry (pytest -m slow)
    python benchmarks/reproduce.py --check train-mnist-binary --data ../shared/datasets

Each manifest entry names the results.md section it backs, the command or a list of commands run
one after another (``neuroemu ...`` runs with this interpreter; ``{out}`` is a fresh folder,
``{data}`` the dataset folder, ``{root}`` the repository), the commit
and seed that produced the figures, the wall time, and what to compare:

- ``sha256``: the digest of the weights and biases of a netlist the command wrote
  (:func:`netlist_digest`: float64 arrays in projection order, then biases in population order);
- ``json``: values at paths (``0.per_inference_j``, ``history.-1.test_error``) of a JSON file the
  command wrote, or of its standard output (``-``), equal within ``rtol`` (0: exactly);
- ``json_file``: the same paths compared with a JSON file kept in the repository;
- ``stdout``: lines that the command prints.

Entries of ``kind = "timing"`` are re-run and printed but never compared: their figures are
timings of a shared machine.  Exit status 0 when every checked entry matches, 1 otherwise, 2
for bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "benchmarks" / "manifest.toml"


def load_manifest(path=MANIFEST) -> dict[str, dict]:
    """Entries by name, in file order."""
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    entries = {}
    for i, e in enumerate(raw.get("entry", [])):
        for key in ("name", "section", "command", "kind"):
            if key not in e:
                raise SystemExit(f"{path}: entry[{i}].{key}: missing")
        if e["kind"] not in ("exact", "timing"):
            raise SystemExit(f"{path}: entry[{i}].kind: must be exact or timing "
                             f"(got {e['kind']!r})")
        if e["name"] in entries:
            raise SystemExit(f"{path}: entry[{i}].name: duplicates an earlier entry "
                             f"({e['name']!r})")
        entries[e["name"]] = e
    return entries


def netlist_digest(path) -> str:
    """SHA-256 of a netlist's weights and biases as float64 (projection order, then
    population order): the same for the .toml and .h5 forms of one network."""
    import neuroemu
    net = neuroemu.load(path)
    h = hashlib.sha256()
    for p in net.projections:
        h.update(np.ascontiguousarray(p.weights, dtype=np.float64).tobytes())
    for p in net.populations:
        h.update(np.ascontiguousarray(p.bias, dtype=np.float64).tobytes())
    return h.hexdigest()


def at(obj, path: str):
    """The value at a dotted path; integer parts index lists (negative from the end)."""
    for part in path.split("."):
        if isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = obj[part]
    return obj


def same(a, b, rtol: float) -> bool:
    """Equal numbers (within rtol), equal strings, or equal nested lists/dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)
    return a == b


def argv_of(command: str, out: Path, data: str) -> list[str]:
    """The command's argv: ``neuroemu`` runs as this interpreter's ``-m neuroemu``, a
    ``benchmarks/x.py`` script with this interpreter."""
    words = [w.replace("{out}", str(out)).replace("{data}", data).replace("{root}", str(ROOT))
             for w in shlex.split(command)]
    if words[0] == "neuroemu":
        return [sys.executable, "-m", "neuroemu"] + words[1:]
    if words[0].endswith(".py"):
        return [sys.executable, str(ROOT / words[0])] + words[1:]
    raise SystemExit(f"manifest: command must start with neuroemu or a benchmarks script "
                     f"(got {command!r})")


def needs_data(entry) -> bool:
    return "{data}" in str(entry["command"])


def check(entry: dict, data: str, keep: Path | None = None, echo=print) -> list[str]:
    """Run one entry and compare; returns the mismatches (empty: it reproduces)."""
    out = Path(tempfile.mkdtemp(prefix=f"reproduce-{entry['name']}-", dir=keep))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    commands = entry["command"] if isinstance(entry["command"], list) else [entry["command"]]
    for command in commands:    # several: one after another in the same folder
        argv = argv_of(command, out, data)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        echo(f"{entry['name']}: {shlex.join(argv[2:] if argv[1] == '-m' else argv[1:])} "
             f"({wall:.0f} s; the manifest's run took {entry.get('wall_seconds', '?')} s "
             f"in all)")
        if proc.returncode != 0:
            return [f"exit status {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"]
    if entry["kind"] == "timing":
        echo(proc.stdout.rstrip())
        return []
    bad = []
    for line in entry.get("stdout", []):
        if line not in proc.stdout:
            bad.append(f"stdout: missing {line!r}")
    if "sha256" in entry:
        got = netlist_digest(out / entry["sha256"]["file"])
        if got != entry["sha256"]["digest"]:
            bad.append(f"sha256 of {entry['sha256']['file']}: {got} (manifest "
                       f"{entry['sha256']['digest']})")
    for spec in entry.get("json", []):
        doc = json.loads(proc.stdout if spec["file"] == "-" else
                         (out / spec["file"]).read_text())
        rtol = float(spec.get("rtol", 0.0))
        for path, want in spec["values"].items():
            got = at(doc, path)
            if not same(got, want, rtol):
                bad.append(f"{spec['file']}: {path} = {got!r} (manifest {want!r}, rtol {rtol:g})")
    for spec in entry.get("json_file", []):
        doc = json.loads((out / spec["file"]).read_text())
        ref = json.loads((ROOT / spec["expected"]).read_text())
        rtol = float(spec.get("rtol", 0.0))
        for path in spec.get("paths", [None]):      # no paths: the whole document
            if not same(doc if path is None else at(doc, path),
                        ref if path is None else at(ref, path), rtol):
                bad.append(f"{spec['file']}: {path or 'the document'} differs from "
                           f"{spec['expected']} (rtol {rtol:g})")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:2]))
    ap.add_argument("names", nargs="*", help="entries to check (see --list)")
    ap.add_argument("--list", action="store_true", help="list the entries")
    ap.add_argument("--check", action="store_true", help="re-run the entries and compare")
    ap.add_argument("--short", action="store_true", help="every entry marked short")
    ap.add_argument("--data", default=os.environ.get("NEUROEMU_DATA",
                                                     str(ROOT.parent / "shared" / "datasets")),
                    help="dataset folder for {data} (default $NEUROEMU_DATA or ../shared/datasets)")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's files under DIR")
    args = ap.parse_args(argv)
    entries = load_manifest()
    if args.list or not (args.check or args.names):
        for e in entries.values():
            flags = ("short " if e.get("short") else "") + e["kind"]
            print(f"{e['name']:<30} {flags:<13} {e.get('wall_seconds', '?'):>7} s  "
                  f"{e['section']}")
        return 0
    names = list(args.names) + [n for n, e in entries.items() if args.short and e.get("short")]
    unknown = [n for n in names if n not in entries]
    if unknown or not names:
        print(f"reproduce: unknown or no entries: {', '.join(unknown) or '(none)'} "
              f"(have: {', '.join(entries)})", file=sys.stderr)
        return 2
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    failed = 0
    for n in dict.fromkeys(names):
        bad = check(entries[n], args.data, keep)
        timing = entries[n]["kind"] == "timing"
        print("  DIFFERS" if bad else "  ran (timing: not compared)" if timing else
              "  reproduces")
        for b in bad:
            print(f"    {b}")
        failed += bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
