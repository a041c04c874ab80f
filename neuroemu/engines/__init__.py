"""Engines: the compiled form of a network, all numba kernels, the session contract, and the
two engines that run it.

- :mod:`.compiled` -- :func:`build`: Netlist -> :class:`CompiledNetwork` (flat arrays);
- :mod:`.kernels` -- every numba function (both engines call the same ones);
- :mod:`.session` -- what every engine's session holds and returns (:class:`Phase`,
  :class:`RunResult`, argument checks);
- :mod:`.lockstep` -- every neuron on one clock; :mod:`.asyncbus` -- circuits on their own
  clocks sending packets over a bus or mesh (a numba event loop, :mod:`.eventloop`, of the
  discrete-event model written in simpy in :mod:`.asyncsimpy`);
- this module -- the registry of engines by name, :func:`session` and :func:`run`.

The registry names its engines by module and class and imports one only when it is asked
for, so the engines never import this module back.
"""

from __future__ import annotations

import importlib

from ..describe import Netlist
from ..errors import EngineError
from .compiled import CompiledNetwork, build
from .session import COUNTER_DOC, Phase, RunResult, check_input

__all__ = ["ENGINES", "CompiledNetwork", "build", "session", "run", "Phase", "RunResult",
           "check_input", "COUNTER_DOC", "engine_class", "as_compiled"]

# name -> (module, session class, one-line description)
ENGINES = {
    "lockstep": ("lockstep", "LockstepSession", "every neuron steps on one global clock"),
    "async": ("asyncbus", "AsyncSession",
              "circuit clusters on their own clocks, spikes as packets on a bus or mesh"),
}


def engine_class(name: str) -> type:
    """The session class of the named engine."""
    if name not in ENGINES:
        raise EngineError(f"engine: must be one of {', '.join(ENGINES)} (got {name!r})")
    module, cls, _ = ENGINES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def as_compiled(net) -> CompiledNetwork:
    """A CompiledNetwork as given, or built from a Netlist."""
    if isinstance(net, CompiledNetwork):
        return net
    if isinstance(net, Netlist):
        return build(net)
    raise TypeError(f"expected a Netlist or a CompiledNetwork, got {type(net).__name__}")


def session(net, x, engine: str = "lockstep", **kwargs):
    """Open a session of the named engine on ``net`` (a Netlist or CompiledNetwork) with
    inputs ``x`` (B, n_input) or (n_input,).  Keyword arguments go to the engine's session
    (``seed``, ``sample_ids``, ``threads``; ``hardware`` for the bus engine)."""
    return engine_class(engine)(as_compiled(net), x, **kwargs)


def run(net, x, steps: int, *, engine: str = "lockstep", seed: int | None = None,
        nudge_steps: int = 0, beta: float = 0.0, target=None, record_spikes: bool = False,
        record_states: bool = False, record_extra: bool = False, every: int = 1,
        **kwargs) -> RunResult:
    """Run a free phase of ``steps`` (and optionally a nudged phase of ``nudge_steps`` with
    strength ``beta`` towards ``target``) and collect a :class:`RunResult`."""
    sess = session(net, x, engine=engine, seed=seed, **kwargs)
    rec = dict(record_spikes=record_spikes, record_states=record_states,
               record_extra=record_extra, every=every)
    sess.run(steps, name="free", **rec)
    if nudge_steps:
        sess.run(nudge_steps, beta=beta, target=target, name="nudged", **rec)
    return sess.result()
