"""The bus engine gives, on every pinned case, exactly what the simpy engine gave before the
event loop replaced it: the same spikes, states, v/eps/phi records, tick times, counters
(the bus's included), final states and bus report, phase by phase (SHA-256 digests in
tests/data/async_golden.json; the cases and how they were recorded: tests/async_cases.py)."""

import json

import pytest

import async_cases as AC

GOLDEN = json.loads(AC.GOLDEN.read_text())
CASES = AC.cases()


def test_every_case_is_pinned():
    assert sorted(GOLDEN) == sorted(AC.case_id(*c) for c in CASES)
    assert len(CASES) > 300


@pytest.mark.parametrize("net", sorted({c[0] for c in CASES}))
def test_the_engine_gives_the_recorded_outputs(net):
    """All hardware settings and seeds of one network (one test per network keeps the
    report short; the first differing digest names the case, phase and quantity)."""
    for case in (c for c in CASES if c[0] == net):
        cid = AC.case_id(*case)
        got, want = AC.run_case(*case), GOLDEN[cid]
        for key in want:
            assert got.get(key) == want[key], f"{cid}: {key} differs"
        assert got.keys() == want.keys(), cid
