"""The ``.nir`` file layer of NIR import: a file is checked before the ``nir`` package reads it
(HDF5, no links or datasets outside it, no more numbers than a netlist could hold), then read
without nir's own type inference and handed to :func:`.nir_import.from_nir`."""

from __future__ import annotations

import math
from pathlib import Path

from ..describe import Netlist
from ..describe.checks import _MAX_WEIGHTS
from ..errors import NetlistError
from .nir_import import DEFAULT_DT, from_nir

FILE_LIMIT = 2 * _MAX_WEIGHTS   # numbers in all datasets of a .nir file


def _scan(path: Path) -> None:
    """Refuse, before nir reads it, a file that is not HDF5, links outside itself, or declares
    more numbers than any netlist could hold."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise NetlistError(f"{path}: not a NIR file (not readable as HDF5: "
                           f"{(str(exc) or type(exc).__name__).splitlines()[0]})") from None
    with f:
        if "node" not in f:
            raise NetlistError(f"{path}: not a NIR file (no 'node' group; have "
                               f"{sorted(f.keys())[:8]})")
        todo, total = [("", f)], 0
        while todo:
            at, group = todo.pop()
            for key in group:
                link, obj = group.get(key, getlink=True), None
                if not isinstance(link, h5py.HardLink):
                    raise NetlistError(f"{path}: {at}{key}: links outside the file are refused "
                                       f"(got {type(link).__name__})")
                obj = group[key]
                if isinstance(obj, h5py.Group):
                    todo.append((f"{at}{key}/", obj))
                elif obj.is_virtual or obj.external:
                    raise NetlistError(f"{path}: {at}{key}: virtual or external datasets are "
                                       "refused (a NIR file must be self-contained)")
                else:
                    total += int(math.prod(obj.shape or ()))
                    if total > FILE_LIMIT:
                        raise NetlistError(f"{path}: {at}{key}: the file declares more than "
                                           f"{FILE_LIMIT} numbers (got shape {list(obj.shape)})")


def read_nir(path, dt: float = DEFAULT_DT) -> Netlist:
    """Read a ``.nir`` file (``nir.write``'s HDF5) as a netlist: :func:`from_nir` of
    ``nir.read``; a damaged or foreign file is a one-line NetlistError naming the file."""
    import nir
    path = Path(path)
    if not path.is_file():
        raise NetlistError(f"{path}: " + ("is not a regular file" if path.exists() else
                                          "file not found"))
    _scan(path)
    try:     # nir's own type inference is skipped: from_nir checks every shape itself
        graph = nir.read(str(path), type_check=False)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise NetlistError(f"{path}: not a readable NIR graph ({type(exc).__name__}"
                           f"{': ' + msg[:120] if msg else ''})") from None
    return from_nir(graph, dt, path=path)
