"""Describing networks: netlists in their text (TOML) and HDF5 forms, one validator, and the
registry of neuron components.

- :mod:`.neurons` -- component, neuron-model and projection-kind names, integer kinds,
  parameters and bounds (data only);
- :mod:`.netlist` -- the frozen :class:`Netlist` dataclasses and the one validator
  (:func:`from_dict`, :func:`loads`), built from the field checks of :mod:`.checks` and the
  projection kinds of :mod:`.projections` (netlist formats 1 and 2);
- :mod:`.dicts` -- a netlist as a plain dict, arrays replaced (:func:`to_dict`, :func:`replace`,
  :func:`same`);
- :mod:`.h5` and :mod:`.tomlwriter` -- the two file forms;
- this module -- :func:`load` and :func:`save` by file suffix, :func:`convert`, and the networks
  shipped inside the package (:func:`shipped`, :func:`resolve`).

Nothing here imports the engines: a netlist is a description, not a computation.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import NetlistError
from .dicts import replace, same, to_dict
from .h5 import H5_SUFFIXES, load_h5, save_h5
from .netlist import Component, Netlist, Neuron, Population, Projection, from_dict, loads
from .neurons import NEURON_PRESETS
from .tomlwriter import INLINE_MAX, save_toml

__all__ = ["Component", "Netlist", "Neuron", "Population", "Projection", "from_dict", "loads",
           "load", "save", "save_toml", "save_h5", "to_dict", "replace", "same", "convert",
           "shipped", "resolve", "layered", "INLINE_MAX"]

SUFFIXES = H5_SUFFIXES + (".toml",)


def shipped_dir() -> Path:
    """The folder of the networks shipped as package data."""
    return Path(str(resources.files("neuroemu") / "data" / "netlists"))


def shipped() -> dict[str, Path]:
    """Shipped networks by name (file stem): ``{"mnist-binary-trained": Path(...), ...}``."""
    d = shipped_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in SUFFIXES}


def resolve(name_or_path) -> Path:
    """A netlist file: an existing file as given, else a shipped network by name (``tiny``,
    or with its file's suffix, ``tiny.toml``).  A local file always wins over a shipped
    network of the same name, and a path with a folder (``./tiny``, ``netlists/tiny.toml``)
    is only ever a file; anything else gets a NetlistError listing the shipped networks."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    ships = shipped()
    bare = path.parent == Path(".") and not str(name_or_path).startswith(".")
    if bare and path.name in ships:
        return ships[path.name]
    if bare and path.stem in ships and ships[path.stem].name == path.name:
        return ships[path.stem]
    if path.exists():
        return path     # a directory or another non-file: load() says what is wrong
    key = path.stem if path.suffix.lower() in SUFFIXES else path.name
    if key in ships:
        hint = f" (a network {key!r} ships with neuroemu: use the bare name {key})"
    elif ships:
        hint = f" (not a file, nor a shipped network: {', '.join(ships)})"
    else:
        hint = ""
    raise NetlistError(f"{name_or_path}: file not found{hint}")


def load(name_or_path) -> Netlist:
    """Load a netlist: a ``.toml`` file, an ``.h5`` file (or the network embedded in a trace),
    or a shipped network by name (``"mnist-binary-trained"``; see :func:`shipped`)."""
    path = resolve(name_or_path)
    partial = path.suffix == ".partial" and Path(path.stem).suffix.lower() in H5_SUFFIXES
    if path.suffix.lower() in H5_SUFFIXES or partial:   # (the .partial a trace writer left)
        return load_h5(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NetlistError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})")
    except IsADirectoryError:
        raise NetlistError(f"{path}: is a directory, not a netlist file") from None
    return loads(text, path=path)


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
        if neuron not in NEURON_PRESETS:
            raise NetlistError(f"<layered>: neuron: must be one of {', '.join(NEURON_PRESETS)} "
                               f"or a dict of components (got {neuron!r})")
        neuron = NEURON_PRESETS[neuron]
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


def save(net: Netlist, path, *, weights=None, biases=None) -> Path:
    """Save a netlist to ``path``: HDF5 (``.h5``/``.hdf5``, self-contained) or TOML (``.toml``;
    large arrays in ``.npy`` files beside it).  ``weights`` / ``biases`` replace arrays on the
    way (see :func:`to_dict`)::

        describe.save(net, "out.h5", weights=[W0, W1], biases={"hidden": b1, "output": b2})

    Trained weights live in a compiled network: save ``compiled.to_netlist()``.  Returns the
    path.  The write is atomic (:mod:`neuroemu.files`: a crash leaves the old file or the new
    one, TOML and ``.npy`` files together); an existing regular file is replaced (the command
    line asks for ``--force`` first), a directory or non-regular file is refused."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return save_toml(net, path, weights=weights, biases=biases)
    if suffix not in H5_SUFFIXES:
        raise NetlistError(f"{path}: unknown netlist file type (use .toml, .h5 or .hdf5)")
    return save_h5(net, path, weights=weights, biases=biases)


def convert(src, dst, *, force: bool = False) -> Path:
    """Convert a netlist file between TOML and HDF5 (by file suffix); returns ``dst``.
    Refuses (:class:`~neuroemu.errors.OutputError`) a ``dst`` that is the source or one of
    the ``.npy`` files it names (even with ``force``), a directory or non-regular file, and an
    existing file unless ``force`` (:func:`neuroemu.files.check_output`)."""
    from ..files import check_output, netlist_inputs
    src, dst = resolve(src), Path(dst)
    if dst.suffix.lower() not in SUFFIXES:
        raise NetlistError(f"{dst}: unknown netlist file type (use .toml, .h5 or .hdf5)")
    check_output(dst, inputs=netlist_inputs(src), force=force)
    return save(load(src), dst)
