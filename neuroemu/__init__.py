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
  :class:`Netlist`, :func:`build`, :class:`CompiledNetwork`;
- running: :func:`run`, :func:`session`, :class:`RunResult`;
- traces: :func:`open_trace`, :func:`write_trace`, :class:`Trace`;
- energy: :func:`estimate_energy`, :class:`EnergyReport`, :func:`profiles`;
- learning: :func:`train`, :class:`TrainResult`, :class:`Hyper`, :func:`evaluate`,
  :class:`EvalResult`, :func:`digits`;
- errors: :class:`NeuroemuError` (every error a user can cause; one line naming the file,
  field and value).

The package is laid out by stage, imports pointing down the data flow only: ``describe``
(netlists) -> ``engines`` (compiled form, kernels, sessions) -> ``record`` (traces) and
``energy`` -> ``learn`` (datasets, training, experiments) -> this API -> ``cli``.
"""

from importlib import resources as _resources

from ._version import __version__
from .describe import Netlist, from_dict, load, save, shipped
from .energy.hardware import shipped_profiles as _shipped_profiles
from .energy.report import EnergyReport, estimate_energy
from .engines import CompiledNetwork, RunResult, as_compiled as _as_compiled, build, run, session
from .errors import NeuroemuError
from .learn.eqprop import Hyper
from .learn.evaluate import EvalResult, evaluate
from .learn.train import TrainResult, train
from .record import Trace, write as _write_trace

__all__ = ["__version__", "Netlist", "load", "from_dict", "layered", "save", "shipped",
           "CompiledNetwork", "build", "session", "run", "RunResult", "Trace", "open_trace",
           "write_trace", "estimate_energy", "EnergyReport", "profiles", "train", "TrainResult",
           "Hyper", "evaluate", "EvalResult", "digits", "NeuroemuError"]

# Neuron components by name for layered(): the paper's two MNIST networks (docs/model.md).
NEURONS = {
    "binary": {"encoder": "sigma_delta", "predictive": True, "decoder": "predictive",
               "lam": {"kind": "constant", "value": 0.275},
               "eps": {"kind": "osa", "nu_bar": 0.0346}},
    "continuous": {"encoder": "none", "predictive": False, "decoder": "identity",
                   "eps": {"kind": "constant", "eps0": 0.5}},
}


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


def profiles() -> list[str]:
    """Names of the hardware profiles shipped with neuroemu (for :func:`estimate_energy`)."""
    return _shipped_profiles()


def layered(sizes, neuron="binary", *, seed: int = 0, name: str = "layered", bias=0.0,
            gain: float = 1.0, description: str = "") -> Netlist:
    """A chain of populations ``input, hidden..., output`` of the given ``sizes``, each
    adjacent pair joined by a projection of Glorot-uniform weights (scaled by ``gain``,
    drawn from ``seed``); every non-input population has bias ``bias``.

    ``neuron``: ``"binary"`` (the paper's spiking neuron: sigma-delta, predictive coding
    with lambda = 0.275, OSA step sizes), ``"continuous"`` (real-valued messages,
    eps = 0.5), or a dict of components (``encoder``, ``predictive``, ``decoder``, ``lam``,
    ``eps``; see docs/netlist-format.md).  Goes through the same validator as a netlist
    file (:func:`from_dict`), so errors name the field and the value."""
    if isinstance(neuron, str):
        if neuron not in NEURONS:
            from .errors import NetlistError
            raise NetlistError(f"<layered>: neuron: must be one of {', '.join(NEURONS)} or a "
                               f"dict of components (got {neuron!r})")
        neuron = NEURONS[neuron]
    sizes = list(sizes)
    hidden = ["hidden"] if len(sizes) == 3 else [f"hidden{i}" for i in range(1, len(sizes) - 1)]
    names = ["input"] + hidden + ["output"] if len(sizes) >= 2 else ["input"] * len(sizes)
    raw = {"network": {"name": name, "seed": seed, "description": description},
           "neuron": neuron,
           "population": [{"name": n, "size": s} for n, s in zip(names, sizes)],
           "projection": [{"pre": names[i], "post": names[i + 1],   # seeds: seed * 1000 + i
                           "weights": {"init": "glorot_uniform", "gain": gain}}
                          for i in range(len(sizes) - 1)]}
    for p in raw["population"][1:]:
        p["bias"] = bias
    return from_dict(raw, path="<layered>")


def digits():
    """The 300 MNIST test digits shipped with neuroemu (official test images 0-299):
    (images (300, 784) float64 in [0, 1], labels (300,) int64)."""
    import numpy as np
    path = _resources.files("neuroemu") / "data" / "mnist_test_digits.npz"
    with _resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        return z["images"].reshape(len(z["images"]), -1) / 255.0, z["labels"].astype(np.int64)
