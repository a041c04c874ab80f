"""neuroemu: an event-driven emulator of neuromorphic hardware running the spiking
Equilibrium-Propagation model of O'Connor, Gavves & Welling (AISTATS 2019).

The public API is the handful of names below, documented with examples in docs/api.md::

    import neuroemu
    net = neuroemu.load("mnist-binary-trained")        # a file, or a shipped network by name
    result = neuroemu.run(net, x, steps=100, record_spikes=True)

The package is laid out by stage, imports pointing down the data flow only: ``describe``
(netlists) -> ``engines`` (compiled form, kernels, sessions) -> ``record`` (traces) and
``energy`` -> ``learn`` (datasets, training, experiments) -> ``cli``.
"""

from ._version import __version__
from .describe import Netlist, from_dict, load, save, shipped
from .engines import CompiledNetwork, RunResult, build, run, session
from .errors import NeuroemuError
from .record import Trace, write as write_trace

__all__ = ["__version__", "Netlist", "load", "from_dict", "save", "shipped", "CompiledNetwork",
           "build", "session", "run", "RunResult", "Trace", "open_trace", "write_trace",
           "NeuroemuError"]


def open_trace(path) -> Trace:
    """Open an HDF5 spike trace for reading (a lazy :class:`~neuroemu.record.Trace`; use it as
    a context manager)."""
    return Trace(path)
