"""Clocks of the bus engine: the jitter generator against numpy's own (the definition the
simpy engine used), per-circuit clocks from a file (CSV or .npy, row per circuit or rows
drawn), the tick times they give, and every bad table as one line naming the file, the
field and the value."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import build, make_netlist
from neuroemu import describe, engines
from neuroemu.engines import eventtime
from neuroemu.engines.asyncbus import parse_hardware
from neuroemu.errors import NetlistError

SD = {"encoder": "sigma_delta", "eps": {"kind": "scheduled", "eps0": 1.0, "eta": 0.5}}


@pytest.mark.parametrize("seed", [0, 1, 2**32 - 1, 2**32, 2**63 + 12345, 2**64 - 1])
def test_jitter_draws_are_numpys(seed):
    """default_rng([seed, cluster, block]).integers(-J, J + 1, 1024), draw for draw, for
    seeds of one and two 32-bit words and ranges that need Lemire's rejection step."""
    g, w = np.zeros(6, np.uint64), np.zeros(12, np.uint64)
    for c, blk, J in ((0, 0, 1), (5, 0, 10), (1293, 3, 49), (2**31 + 7, 1, 2**31 - 1),
                      (77, 2, 1000003)):
        want = np.random.default_rng([seed, c, blk]).integers(-J, J + 1, 1024)
        eventtime.seed_jitter(np.uint64(seed), c, blk, g, w)
        got = [eventtime.bounded_draw(g, 2 * J) - J for _ in range(1024)]
        assert got == want.tolist(), (seed, c, blk, J)


def test_jitter_stream_crosses_blocks_and_restarts():
    """Tick k's jitter is draw (k-1) % 1024 of block (k-1) // 1024, whether the ticks come
    in order (the stream continues) or not (it reseeds)."""
    seed, c, J = np.uint64(99), 4, 17
    jg = np.zeros((6, 6), np.uint64)
    ck = np.zeros((6, eventtime.C_FIELDS), np.int64)
    w = np.zeros(12, np.uint64)
    blocks = [np.random.default_rng([99, c, m]).integers(-J, J + 1, 1024) for m in range(3)]
    want = lambda k: int(blocks[(k - 1) // 1024][(k - 1) % 1024])  # noqa: E731
    for k in range(1, 2300):
        assert eventtime.jitter(seed, c, k, J, jg, ck, w) == want(k)
    for k in (5, 2049, 1024, 1025, 7):
        assert eventtime.jitter(seed, c, k, J, jg, ck, w) == want(k)
    assert eventtime.jitter(seed, c, 3, 0, jg, ck, w) == 0


def net_with(hw, path="<t>"):
    raw = make_netlist([4, 3, 2], SD, seed=2)
    return build(describe.from_dict(dict(describe.to_dict(raw), hardware=hw), path=path))


def test_a_csv_clock_table_sets_every_circuits_ticks(tmp_path):
    (tmp_path / "clk.csv").write_text(
        "# measured on the bench\nphase, period\n3, 90\n0, 100\n\n17, 111\n5, 97\n"
        "40, 120\n2, 100\n0, 101\n1, 99\n9, 100\n")
    hw = {"cluster_size": 1, "clock": {"file": "clk.csv"}}
    toml = tmp_path / "n.toml"
    net = net_with(hw, path=str(toml))
    sess = engines.session(net, np.full(4, 0.6), engine="async", seed=1)
    assert sess.layout.period.tolist() == [90, 100, 111, 97, 120, 100, 101, 99, 100]
    assert sess.layout.phase.tolist() == [3, 0, 17, 5, 40, 2, 0, 1, 9]
    ph = sess.run(12, record_spikes=True)
    k = np.arange(1, 13)[:, None]
    assert np.array_equal(ph.tick_times[:, 0], sess.layout.phase + k * sess.layout.period)
    assert sess.result().metadata["hardware"]["clock_file"].endswith("clk.csv")


def test_per_circuit_jitter_from_a_npy_and_drawn_rows(tmp_path):
    table = np.array([[100, 0, 30], [100, 50, 0], [80, 10, 5]])
    np.save(tmp_path / "clk.npy", table)
    hw = {"cluster_size": 1, "clock": {"file": str(tmp_path / "clk.npy"), "sample": True}}
    net = net_with(hw)
    sess = engines.session(net, np.full((2, 4), 0.6), engine="async", seed=5)
    lay = sess.layout
    rows = np.random.default_rng([5, 0x636C6F63]).integers(0, 3, lay.n)
    assert lay.period.tolist() == table[rows, 0].tolist()
    assert lay.jitter.tolist() == table[rows, 2].tolist()
    ph = sess.run(40, record_spikes=True)
    dev = ph.tick_times - (lay.phase + np.arange(1, 41)[:, None, None] * lay.period)
    assert (np.abs(dev) <= lay.jitter).all()
    assert (np.abs(dev).max(axis=(0, 1)) > 0).tolist() == (lay.jitter > 0).tolist()
    again = engines.session(net, np.full((2, 4), 0.6), engine="async", seed=6).layout
    assert again.period.tolist() != lay.period.tolist() or \
        again.jitter.tolist() != lay.jitter.tolist()


BAD_TABLES = [
    ("period\n100\n0\n", r"clk\.csv: period\[1\]: must be an integer >= 1 \(got 0\)"),
    ("period,phase\n100,-3\n", r"clk\.csv: phase\[0\]: must be an integer >= 0 \(got -3\)"),
    ("period,jitter\n100,50\n", r"clk\.csv: jitter\[0\]: must be < period\[0\] / 2 = 50 .*"
                                r"\(got 50\)"),
    ("period\n1.5\n", r"clk\.csv: period\[0\]: must be an integer \(line 2\) \(got '1\.5'\)"),
    ("period,speed\n100,3\n", r"clk\.csv: line 1: unknown column .*\(got 'speed'\)"),
    ("phase\n3\n", r"clk\.csv: line 1: the header must name a 'period' column \(got 'phase'\)"),
    ("period,phase\n100\n", r"clk\.csv: line 2: must have 2 values \(period, phase\) "
                            r"\(got '100'\)"),
    ("period\n", r"clk\.csv: clock table has no rows \(got 0 rows\)"),
    ("", r"clk\.csv: clock table needs a header line .*\(got an empty file\)"),
    ("period\n" + "1" * 30 + "\n", r"clk\.csv: period\[0\]: must be <= 1099511627776 \(got "),
]


@pytest.mark.parametrize("text,pattern", BAD_TABLES, ids=[p[:30] for _, p in BAD_TABLES])
def test_bad_csv_tables_are_one_line_errors(tmp_path, text, pattern):
    (tmp_path / "clk.csv").write_text(text)
    with pytest.raises(NetlistError, match=pattern) as e:
        parse_hardware({"clock": {"file": "clk.csv"}}, tmp_path / "n.toml")
    assert "\n" not in str(e.value)


BAD_SETTINGS = [
    ({"file": "clk.csv", "drift": 2}, r"n\.toml: hardware\.clock\.drift: not used with "
                                      r"clock\.file .*\(got 2\)"),
    ({"file": "clk.csv", "period": 90}, r"hardware\.clock\.period: not used with clock\.file"),
    ({"sample": True}, r"n\.toml: hardware\.clock\.sample: only used with clock\.file "
                       r"\(got True\)"),
    ({"file": "clk.csv", "sample": "yes"}, r"hardware\.clock\.sample: must be true or false "
                                           r"\(got 'yes'\)"),
    ({"file": "clk.txt"}, r"n\.toml: hardware\.clock\.file: must end in \.csv or \.npy "
                          r"\(got 'clk\.txt'\)"),
    ({"file": 3}, r"hardware\.clock\.file: must be the path of a \.csv or \.npy file "
                  r"\(got 3\)"),
    ({"file": "missing.csv"}, r"n\.toml: hardware\.clock\.file: no such file .*missing\.csv "
                              r"\(got 'missing\.csv'\)"),
    ({"file": "jit.csv", "jitter": 3}, r"hardware\.clock\.jitter: not used when .*jit\.csv "
                                       r"has a jitter column \(got 3\)"),
    ({"file": "clk.csv", "jitter": 40}, r"n\.toml: hardware\.clock\.jitter: must be < "
                                        r".*clk\.csv: period\[1\] / 2 = 35 .*\(got 40\)"),
    ({"jitter": 2**31}, r"hardware\.clock\.jitter: must be <= 2147483647 \(got 2147483648\)"),
]


@pytest.mark.parametrize("clock,pattern", BAD_SETTINGS, ids=[p[:40] for _, p in BAD_SETTINGS])
def test_bad_clock_settings_are_one_line_errors(tmp_path, clock, pattern):
    (tmp_path / "clk.csv").write_text("period\n100\n70\n")
    (tmp_path / "jit.csv").write_text("period,jitter\n100,3\n")
    with pytest.raises(NetlistError, match=pattern):
        parse_hardware({"clock": clock}, tmp_path / "n.toml")


def test_a_table_with_the_wrong_number_of_rows(tmp_path):
    (tmp_path / "clk.csv").write_text("period\n100\n100\n")
    net = net_with({"cluster_size": 2, "clock": {"file": str(tmp_path / "clk.csv")}})
    with pytest.raises(NetlistError, match=r"clk\.csv: must have one row per circuit cluster, "
                                           r"5 .*sample = true.*\(got 2 rows\)"):
        engines.session(net, np.zeros(4), engine="async")


@pytest.mark.parametrize("array,pattern", [
    (np.zeros((3, 4), np.int64), r"must have 1 to 3 columns .*\(got shape \(3, 4\)\)"),
    (np.array([[100.5]]), r"period\[0\]: must be an integer \(got 100\.5\)"),
    (np.array([[np.nan]]), r"period\[0\]: must be an integer \(got nan\)"),
    (np.array([[2**63]], dtype=np.uint64), r"period\[0\]: must be <= \d+ \(got 9223372036854775808\)"),
    (np.zeros(3), r"must have 2 dimension\(s\) \(got shape \(3,\)\)"),
])
def test_bad_npy_tables(tmp_path, array, pattern):
    np.save(tmp_path / "c.npy", array)
    with pytest.raises(NetlistError, match=pattern):
        parse_hardware({"clock": {"file": str(tmp_path / "c.npy")}})


def test_the_documented_example_runs(tmp_path):
    """docs/netlist-format.md's [hardware] example, with a table of one row per neuron."""
    import tomllib
    from conftest import ROOT
    doc = (ROOT / "docs" / "netlist-format.md").read_text()
    block = doc.split("## Hardware (`[hardware]`)")[1].split("```toml\n")[1].split("```")[0]
    hw = tomllib.loads(block)["hardware"]
    rows = "\n".join(f"{1000 + i % 7},{(37 * i) % 500},{i % 90}" for i in range(9))
    (tmp_path / "chip7-clocks.csv").write_text("period,phase,jitter\n" + rows + "\n")
    net = net_with(hw, path=str(tmp_path / "x.toml"))
    sess = engines.session(net, np.full(4, 0.7), engine="async", seed=0)
    ph = sess.run(8, record_spikes=True)
    assert sess.layout.n == 9 and sess.layout.jitter.tolist() == [i % 90 for i in range(9)]
    assert (np.diff(ph.tick_times[:, 0], axis=0) > 0).all()
