"""neuroemu: an event-driven emulator of neuromorphic hardware running the spiking
Equilibrium-Propagation model of O'Connor, Gavves & Welling (AISTATS 2019).

The public API is the handful of names below, documented with examples in docs/api.md::

    import neuroemu
    net = neuroemu.load("mnist-binary-trained")        # a file, or a shipped network by name
    images, labels = neuroemu.digits()                 # 300 bundled MNIST test digits
    result = neuroemu.run(net, images[:10], steps=100, record_spikes=True)
    report = neuroemu.estimate_energy(result, "loihi", net=net)
    print(report.per_sample_j, report.by_kind)

- networks: :func:`load`, :func:`from_dict`, :func:`layered`, :func:`save`, :func:`shipped`,
  :class:`Netlist`, :func:`build`, :class:`CompiledNetwork`, :func:`to_fixed` (fixed-point
  weights, docs/arithmetic.md);
- running: :func:`run`, :func:`session`, :class:`RunResult`;
- traces: :func:`open_trace`, :func:`write_trace`, :class:`Trace`;
- energy: :func:`estimate_energy`, :class:`EnergyReport`, :func:`profiles`,
  :func:`compare_with_sanafe` (the same spikes replayed in SANA-FE, side by side);
- learning: :func:`train`, :class:`TrainResult`, :class:`Hyper`, :func:`evaluate`,
  :class:`EvalResult`, :func:`digits`;
- errors: :class:`NeuroemuError` (every error a user can cause; one line naming the file,
  field and value).

The package is laid out by stage, imports pointing down the data flow only: ``describe``
(netlists) -> ``engines`` (compiled form, kernels, sessions) -> ``record`` (traces) and
``energy`` -> ``learn`` (datasets, training, experiments) -> this API -> ``cli``.
"""

from ._version import __version__
from .describe import Netlist, from_dict, layered, load, save, shipped
from .energy.hardware import shipped_profiles as _shipped_profiles
from .energy.report import EnergyReport, estimate_energy
from .engines import CompiledNetwork, RunResult, as_compiled as _as_compiled, build, run, session
from .errors import NeuroemuError
from .interop import compare_with_sanafe
from .learn.datasets import digits
from .learn.eqprop import Hyper
from .learn.evaluate import EvalResult, evaluate
from .learn.train import TrainResult, train
from .record import Trace, write as _write_trace

__all__ = ["__version__", "Netlist", "load", "from_dict", "layered", "save", "shipped",
           "CompiledNetwork", "build", "to_fixed", "session", "run", "RunResult", "Trace", "open_trace",
           "write_trace", "estimate_energy", "EnergyReport", "profiles",
           "compare_with_sanafe", "train", "TrainResult",
           "Hyper", "evaluate", "EvalResult", "digits", "NeuroemuError"]

def open_trace(path) -> Trace:
    """Open an HDF5 spike trace for reading (a lazy :class:`~neuroemu.record.Trace`; use it as
    a context manager)."""
    return Trace(path)


def write_trace(path, net, result, *, x=None, **kwargs):
    """Write a RunResult that recorded spikes every step (``record_spikes=True``) as an HDF5
    spike trace (SONATA layout, docs/trace-format.md) at ``path``; ``net`` is the Netlist or
    CompiledNetwork it ran, ``x`` its input (stored for provenance).  Keyword arguments go to
    :class:`neuroemu.record.TraceWriter` (``samples``, ``dt``, ...).  Returns the path."""
    return _write_trace(path, _as_compiled(net), result, x=x, **kwargs)


def to_fixed(net, weight_bits: int, *, weight_exponent="auto", message_bits: int = 8,
             accumulator_bits: int = 32, state_bits: int | None = None,
             step_bits: int | None = None) -> Netlist:
    """The network ``net`` (a Netlist, a netlist file or a shipped name) computing in fixed
    point: an ``[hardware.arithmetic]`` table with these widths and its weights on that grid;
    ``state_bits`` (4..30) makes its neurons integer too, with ``step_bits`` (4..24, default
    12) (docs/arithmetic.md; ``neuroemu convert NET OUT --weight-bits B [--state-bits F]``)."""
    from .engines.fixedpoint import to_fixed as _to_fixed
    if not isinstance(net, Netlist):
        net = load(net)
    return _to_fixed(net, weight_bits, weight_exponent=weight_exponent,
                     message_bits=message_bits, accumulator_bits=accumulator_bits,
                     state_bits=state_bits, step_bits=step_bits)


def profiles() -> list[str]:
    """Names of the hardware profiles shipped with neuroemu (for :func:`estimate_energy`)."""
    return _shipped_profiles()
