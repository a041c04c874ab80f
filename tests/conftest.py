from pathlib import Path

import pytest

from neuroemu.engines import compiled as compiler
from neuroemu import describe

ROOT = Path(__file__).resolve().parents[1]
NETLISTS = ROOT / "neuroemu" / "data" / "netlists"


@pytest.fixture
def tiny():
    return describe.load(NETLISTS / "tiny.toml")


def make_netlist(sizes, neuron: dict, seed=0, bias=0.0, gain=1.0, extra=None):
    """Build a layered netlist from Python values (through the validating loader)."""
    names = ["input"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["output"]
    raw = {"network": {"name": "t", "seed": seed}, "neuron": neuron,
           "population": [{"name": n, "size": s} for n, s in zip(names, sizes)],
           "projection": [{"pre": names[i], "post": names[i + 1],
                           "weights": {"init": "glorot_uniform", "seed": seed + i, "gain": gain}}
                          for i in range(len(sizes) - 1)]}
    for p in raw["population"][1:]:
        p["bias"] = bias
    if extra:
        raw.update(extra)
    return describe.from_dict(raw, path="<test>")


def build(net):
    return compiler.build(net)


class Work(Exception):
    """The tripwire: a command reached its work."""


def set_tripwire(monkeypatch, build: bool = True) -> None:
    """Replace the entry points where commands start their work by a tripwire raising
    :class:`Work`, so a test sees whether a command line got past its checks."""
    import neuroemu.cli.converge as cv
    import neuroemu.cli.demo as dm
    import neuroemu.cli.energy as en
    import neuroemu.cli.train as tr
    import neuroemu.learn.evaluate as ev
    from neuroemu import engines, record

    def trip(*a, **k):
        raise Work()
    if build:
        monkeypatch.setattr(engines, "build", trip)
    for mod, name in ((engines, "run"), (record, "run_traced"), (cv, "experiment"),
                      (dm, "evaluate"), (en, "run_network"), (tr, "run_epochs"),
                      (ev, "evaluate")):
        monkeypatch.setattr(mod, name, trip)


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of ``neuroemu ARGV``."""
    from neuroemu import cli
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *argv) -> str:
    """``neuroemu ARGV`` must fail with exit status 2 and one line on stderr; returns it."""
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2, (out, err)
    assert err.startswith("neuroemu: error: ") and err.count("\n") == 1, err
    return err


def mutated(raw: dict, mutations) -> dict:
    """A deep copy of a netlist dict with each (path, value) applied: the value set at the
    path, or the key deleted when the value is KeyError; paths that do not exist are skipped
    (the fuzz tests' mutation)."""
    import copy
    raw = copy.deepcopy(raw)
    for path, value in mutations:
        node = raw
        try:
            for k in path[:-1]:
                node = node[k]
            if value is KeyError:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return raw
