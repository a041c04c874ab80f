"""The ``[hardware.arithmetic]`` table: fixed-point weights, messages and accumulators.

A network computes in float (float32 weights and accumulator, float64 neuron state) unless
its netlist has an ``[hardware.arithmetic]`` table with ``weight_bits``::

    [hardware.arithmetic]
    weight_bits = 8          # signed mantissas of 2..16 bits: w = m * 2**e, |m| <= 2**(bits-1) - 1
    weight_exponent = "auto" # per projection: the smallest e with max|w| <= (2**(bits-1) - 1) * 2**e
    message_bits = 8         # real-valued messages: k / 2**message_bits, k = 0 .. 2**message_bits - 1
    accumulator_bits = 24    # a neuron's summed input per step saturates at +-(2**(bits-1) - 1)
    state_bits = 16          # optional: neuron states on the grid k / 2**state_bits (integer neuron)
    step_bits = 12           # with it: step sizes, lam, 1/lam and 2 beta as k / 2**step_bits

    [hardware.arithmetic.projection."input->hidden"]   # per projection, by its name or pre->post
    weight_bits = 16
    weight_exponent = -12

Descriptions only: what the engine does with them is in docs/arithmetic.md and
:mod:`neuroemu.engines.fixedpoint`.  Everything here is checked when the netlist loads, with
one-line errors naming the file, the field, the rule and the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NetlistError, where

WEIGHT_BITS = (2, 16)          # inclusive range of weight_bits
MESSAGE_BITS = (1, 16)
ACCUMULATOR_BITS = (8, 32)
STATE_BITS = (4, 30)           # fractional bits of a fixed-point neuron's state (0: float64)
STEP_BITS = (4, 24)            # fractional bits of its multipliers
EXPONENT = (-60, 60)           # inclusive range of an explicit weight_exponent
_NET_KEYS = ("weight_bits", "weight_exponent", "message_bits", "accumulator_bits", "state_bits",
             "step_bits", "projection")
_PROJ_KEYS = ("weight_bits", "weight_exponent")


@dataclass(frozen=True)
class WeightFormat:
    """How one projection's weights are stored: ``bits``-bit signed mantissas and one
    power-of-two exponent (None: chosen from the weights)."""

    bits: int
    exponent: int | None = None

    @property
    def max_mantissa(self) -> int:
        return (1 << (self.bits - 1)) - 1


@dataclass(frozen=True)
class Arithmetic:
    """A network's fixed-point setting (``weights`` None: float, the default)."""

    weights: WeightFormat | None = None
    message_bits: int = 8
    accumulator_bits: int = 32
    per_projection: tuple = ()     # ((label, WeightFormat), ...) in the table's order
    state_bits: int = 0            # fixed-point neuron state k / 2**state_bits (0: float64)
    step_bits: int = 12            # its multipliers k / 2**step_bits

    @property
    def fixed_state(self) -> bool:
        return self.fixed and self.state_bits > 0

    @property
    def fixed(self) -> bool:
        return self.weights is not None

    def weight_format(self, label: str) -> WeightFormat | None:
        for name, fmt in self.per_projection:
            if name == label:
                return fmt
        return self.weights

    def to_table(self) -> dict:
        """The ``[hardware.arithmetic]`` table that describes this setting."""
        if not self.fixed:
            return {}
        out = {"weight_bits": self.weights.bits,
               "weight_exponent": "auto" if self.weights.exponent is None else self.weights.exponent,
               "message_bits": self.message_bits, "accumulator_bits": self.accumulator_bits}
        if self.state_bits:
            out["state_bits"] = self.state_bits
            out["step_bits"] = self.step_bits
        if self.per_projection:
            out["projection"] = {name: {"weight_bits": f.bits, "weight_exponent":
                                        "auto" if f.exponent is None else f.exponent}
                                 for name, f in self.per_projection}
        return out


FLOAT = Arithmetic()


def parse_arithmetic(hardware, path=None, labels=()) -> Arithmetic:
    """The setting of a ``[hardware]`` table (its ``arithmetic`` sub-table; absent: float).

    ``labels``: the network's projection labels (name, or ``pre->post``), which the
    per-projection tables must name.
    """
    if not isinstance(hardware, dict) or "arithmetic" not in hardware:
        return FLOAT
    table = hardware["arithmetic"]

    def fail(fld, rule, value):
        raise NetlistError(f"{where(path, 'hardware.arithmetic' + fld)}: {rule} (got {value!r})")

    def integer(tab, key, fld, lo, hi, default):
        v = tab.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            fail(fld, "must be an integer", v)
        if not lo <= v <= hi:
            fail(fld, f"must lie in [{lo}, {hi}]", v)
        return v

    def fmt(tab, fld, default_bits):
        for k in tab:
            if k not in _PROJ_KEYS and fld:
                fail(f"{fld}.{k}", f"unknown key (allowed: {', '.join(_PROJ_KEYS)})", tab[k])
        if default_bits is None and "weight_bits" not in tab:
            fail(f"{fld}.weight_bits", "is required (the fixed-point setting starts with it; "
                 "the table's keys are)", sorted(table))
        bits = integer(tab, "weight_bits", f"{fld}.weight_bits", *WEIGHT_BITS, default_bits)
        e = tab.get("weight_exponent", "auto")
        if e != "auto":
            if isinstance(e, bool) or not isinstance(e, int):
                fail(f"{fld}.weight_exponent", 'must be "auto" or an integer', e)
            e = integer(tab, "weight_exponent", f"{fld}.weight_exponent", *EXPONENT, None)
        return WeightFormat(bits, None if e == "auto" else e)

    if not isinstance(table, dict):
        fail("", "must be a table", table)
    for k in table:
        if k not in _NET_KEYS:
            fail(f".{k}", f"unknown key (allowed: {', '.join(_NET_KEYS)})", table[k])
    if not table:
        return FLOAT
    weights = fmt({k: v for k, v in table.items() if k in _PROJ_KEYS}, "", None)
    msg = integer(table, "message_bits", ".message_bits", *MESSAGE_BITS, 8)
    acc = integer(table, "accumulator_bits", ".accumulator_bits", *ACCUMULATOR_BITS, 32)
    state = 0
    if "state_bits" in table:
        state = integer(table, "state_bits", ".state_bits", *STATE_BITS, None)
    elif "step_bits" in table:
        fail(".step_bits", "needs state_bits (step sizes are fixed point only with a "
             "fixed-point state)", table["step_bits"])
    step = integer(table, "step_bits", ".step_bits", *STEP_BITS, 12)
    per = []
    projs = table.get("projection", {})
    if not isinstance(projs, dict):
        fail(".projection", "must be a table of projection names", projs)
    for name, tab in projs.items():
        fld = f".projection.{name}"
        if labels and name not in labels:
            fail(fld, f"must name a projection ({', '.join(labels)})", name)
        if not isinstance(tab, dict):
            fail(fld, "must be a table", tab)
        per.append((name, fmt(tab, fld, weights.bits)))
    return Arithmetic(weights, msg, acc, tuple(per), state, step)
