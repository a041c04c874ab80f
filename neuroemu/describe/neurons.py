"""Registry of neuron components: names, integer kinds, parameters, defaults and bounds.

Descriptions only -- the arithmetic lives in :mod:`neuroemu.engines.kernels`, which dispatches on
the integer kinds defined here.  See ``docs/model.md`` for the equations.
"""

from __future__ import annotations

from dataclasses import dataclass

# Integer kinds shared with kernels.py (kernels.py does not import this module; the
# numbers are repeated there as module constants and checked by a test).
ENCODERS = {"none": 0, "stochastic": 1, "sigma_delta": 2}
DECODERS = {"identity": 0, "predictive": 1}
ANNEALERS = {"constant": 0, "scheduled": 1, "osa": 2}
SCHEDULES = {"constant": 0, "scheduled": 1}  # for the predictive-coding lambda
ROLES = ("input", "hidden", "output")


@dataclass(frozen=True)
class Param:
    """One numeric parameter of a component: default and open/closed bounds."""

    name: str
    default: float | None
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    doc: str = ""

    def check(self, value: float) -> str | None:
        """Return a rule violated by ``value`` or None."""
        lo_ok = value > self.lo if self.lo_open else value >= self.lo
        hi_ok = value < self.hi if self.hi_open else value <= self.hi
        if lo_ok and hi_ok:
            return None
        if self.hi == INF:
            return f"must be {'>' if self.lo_open else '>='} {self.lo:g}"
        lb = "(" if self.lo_open else "["
        hb = ")" if self.hi_open else "]"
        return f"must lie in {lb}{self.lo:g}, {self.hi:g}{hb}"


INF = float("inf")

# Bounds that keep every quantity the engine computes finite (docs/netlist-format.md,
# "Bounds"): weights, biases, inputs, targets and beta are at most MAX_VALUE in magnitude,
# so the float32 accumulator of delivered input (10^7 senders of messages up to 2 / LAM_MIN)
# and the float64 drive, its square (OSA) and the state update cannot overflow.  LAM_MIN
# bounds the predictive encoder's division by lambda; ETA_MAX keeps lam0 / t**eta above 0
# for any reachable t; the scheduled step size is at most EPS_MAX.
MAX_VALUE = 1e20
LAM_MIN = 1e-6
ETA_MAX = 10.0
EPS_MAX = 1e6

# Parameters of each step-size annealer ("eps" table of a population).
ANNEALER_PARAMS = {
    "constant": (Param("eps0", 0.5, 0.0, 1.0, lo_open=True, doc="eps_t = eps0"),),
    "scheduled": (
        Param("eps0", 1.0, 0.0, EPS_MAX, lo_open=True, doc="eps_t = eps0 / t**eta"),
        Param("eta", 0.5, 0.0, INF, doc="decay exponent"),
    ),
    "osa": (
        Param("nu_bar", None, 0.0, 1.0, lo_open=True, hi_open=True,
              doc="OSA target step size (George & Powell 2006)"),
        Param("reg", 1e-15, 0.0, INF, lo_open=True,
              doc="regulariser e in alpha = 1 - (var+e)/(delta+e); > 0, as delta = var = 0 "
                  "(a constant drive) would give 0/0"),
    ),
}

# Parameters of each lambda schedule ("lam" table of a population).
SCHEDULE_PARAMS = {
    "constant": (Param("value", None, LAM_MIN, 1.0, doc="lam_t = value"),),
    "scheduled": (
        Param("lam0", None, LAM_MIN, 1.0, doc="lam_t = lam0 / t**eta"),
        Param("eta", None, 0.0, ETA_MAX, doc="decay exponent"),
    ),
}

# Optional parts of the paper's neuron (absent, or ``false``: not used; model.md 3.1-3.2).
# ``lam2``: a second lambda schedule (same kinds and parameters as ``lam``) that makes the
# predictive code two-pole: the encoder inverts two cascaded one-pole low-passes, lam then
# lam2, and the decoder applies them, lam2 then lam.  ``clamp``: after each step the
# sigma-delta residue is held in [-(a + b/t), a + b/t].
CLAMP_PARAMS = (
    Param("a", None, 0.0, MAX_VALUE, lo_open=True, doc="bound on |phi| as t grows"),
    Param("b", 0.0, 0.0, MAX_VALUE, doc="extra bound b/t early in the run"),
)
OPTIONAL_KEYS = ("lam2", "clamp")

# Default neuron: the continuous Hopfield neuron of the paper (real-valued messages, eps=0.5).
DEFAULT_NEURON = {
    "encoder": "none",
    "predictive": False,
    "decoder": "identity",
    "lam": {"kind": "constant", "value": 1.0},
    "eps": {"kind": "constant", "eps0": 0.5},
}

# Neurons by name for describe.layered(): the paper's two MNIST networks (docs/model.md 4.4).
NEURON_PRESETS = {
    "binary": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.275},
               "eps": {"kind": "osa", "nu_bar": 0.0346}},
    "continuous": {"encoder": "none", "predictive": False, "decoder": "identity",
                   "eps": {"kind": "constant", "eps0": 0.5}},
}

# ----------------------------------------------------------------- netlist format 2

# Neuron models (integer kinds shared with kernels.py, like the components above).  "paper" is
# the neuron of model.md with the components above; "if" and "lif" are integrate-and-fire
# neurons of feedback SNNs: V = leak * V + input + bias, a spike when V >= threshold, then
# V -= threshold ("subtract") or V = 0 ("zero"); V starts at v0.  "if" is "lif" with leak 1.
MODELS = {"paper": 0, "if": 1, "lif": 2}
RESETS = {"subtract": 0, "zero": 1}
PROJECTION_KINDS = {"dense": 0, "sparse": 1, "conv2d": 2, "avgpool2d": 3, "one_to_one": 4}

# The keys a [neuron] table may hold for each model ("model" itself aside).
PAPER_KEYS = tuple(DEFAULT_NEURON) + OPTIONAL_KEYS
MODEL_PARAMS = {
    "if": (
        Param("threshold", 1.0, 0.0, MAX_VALUE, lo_open=True, doc="spike when V >= threshold"),
        Param("v0", 0.0, -MAX_VALUE, MAX_VALUE, doc="initial membrane potential"),
    ),
    "lif": (
        Param("threshold", 1.0, 0.0, MAX_VALUE, lo_open=True, doc="spike when V >= threshold"),
        Param("leak", None, 0.0, 1.0, lo_open=True, doc="V = leak * V + input + bias"),
        Param("v0", 0.0, -MAX_VALUE, MAX_VALUE, doc="initial membrane potential"),
    ),
}
MODEL_KEYS = {"paper": PAPER_KEYS,
              "if": ("threshold", "reset", "v0"),
              "lif": ("threshold", "leak", "reset", "v0")}
DEFAULT_RESET = "subtract"
