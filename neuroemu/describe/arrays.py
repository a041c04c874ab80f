"""Reading arrays that users hand us (``.npy`` files), with declared sizes checked first.

Every reader of a user's ``.npy`` file (netlist weights and biases, placement maps, input
batches) goes through :func:`read_npy` (and of an ``.npz`` file, a sparse projection's
arrays, through :func:`read_npz`, which checks each member the same way):

1. the path must be a **regular file** -- opened with ``O_NONBLOCK`` and checked with
   ``fstat``, so a FIFO, a device or a directory is refused at once instead of blocking;
2. the **header** alone is read (``numpy.lib.format``): dtype (numbers only, never pickles),
   shape and order;
3. the declared shape is checked against the expected one and the element count against a
   limit, and the file's length against what the header promises -- **before** any data is
   read or any memory allocated;
4. only then is the body read, exactly ``count x itemsize`` bytes.

Each failure raises the caller's error class (a :class:`~neuroemu.errors.NeuroemuError`
subclass) with one line naming the file, the rule and the value.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import NetlistError

MAX_ITEMS = 200_000_000   # elements of any one array read from a user's file (1.6 GB float64)


def open_regular(path, error=NetlistError, what: str = "file"):
    """Open ``path`` for binary reading if it is a regular file (never blocks on a FIFO);
    returns the open file object."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot open {what} ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else
                    "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                    "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise error(f"{path}: {what} must be a regular file (got {kind})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def npy_header(fp, path, error=NetlistError) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the magic and header of an open ``.npy`` file: (shape, fortran_order, dtype).
    Object dtypes (pickles) are refused."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp)
        else:
            shape, fortran, dtype = fmt._read_array_header(fp, version)  # 3.0: UTF-8 header
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError,
            UnicodeDecodeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{path}: not a readable .npy file ({msg[:120]})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise error(f"{path}: .npy must hold plain numbers (got dtype {dtype}; pickled or "
                    "structured arrays are not read)")
    return tuple(int(n) for n in shape), bool(fortran), dtype


def read_npy(path, *, shape: tuple[int, ...] | None = None, ndim: int | None = None,
             max_items: int = MAX_ITEMS, kinds: str = "iuf", error=NetlistError,
             what: str = "array", expect: str | None = None) -> np.ndarray:
    """Read a ``.npy`` file after checking its header: dtype kind in ``kinds``, ``shape``
    (exact) or ``ndim``, at most ``max_items`` elements, and a file long enough.  Returns
    the array as stored (native byte order, C-contiguous, writable).  ``expect``, if given,
    is the rule printed for a wrong dtype or shape (followed by what the header says)."""
    path = Path(path)
    with open_regular(path, error, f"{what} file") as fp:
        dims, fortran, dtype = npy_header(fp, path, error)
        if expect and (dtype.kind not in kinds or shape is not None and dims != tuple(shape)):
            raise error(f"{path}: {expect} (got {dtype} {dims})")
        if dtype.kind not in kinds:
            raise error(f"{path}: {what} must hold numbers only (got dtype {dtype})")
        if shape is not None and dims != tuple(shape):
            raise error(f"{path}: {what} must have shape {tuple(shape)} (got shape {dims}, "
                        "from the file's header)")
        if ndim is not None and len(dims) != ndim:
            raise error(f"{path}: {what} must have {ndim} dimension(s) (got shape {dims})")
        count = math.prod(dims)
        # zero-length axes too: (0, 10^12, 10^12) holds nothing but is no valid array shape
        if math.prod(max(n, 1) for n in dims) > max_items:
            raise error(f"{path}: {what} declares shape {dims} ({count} elements), beyond the "
                        f"limit of {max_items} elements")
        nbytes = count * dtype.itemsize
        have = os.fstat(fp.fileno()).st_size - fp.tell()
        if have < nbytes:
            raise error(f"{path}: truncated .npy file: its header promises {nbytes} bytes of "
                        f"data, the file holds {have}")
        data = np.fromfile(fp, dtype=dtype, count=count) if count else np.zeros(0, dtype)
        if data.size != count:
            raise error(f"{path}: truncated .npy file: read {data.size} of {count} elements")
    arr = data.reshape(dims, order="F" if fortran else "C")
    arr = np.ascontiguousarray(arr)
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def read_npz(path, *, ndim: int | None = None, max_items: int = MAX_ITEMS, kinds: str = "iuf",
             error=NetlistError, what: str = "array", max_members: int = 16) -> dict:
    """Read the arrays of an ``.npz`` file (``numpy.savez`` or ``savez_compressed``) as
    :func:`numpy.load` with ``allow_pickle=False`` would, but header first: the file must be a
    regular file, a zip of at most ``max_members`` ``<key>.npy`` members; each member's
    ``.npy`` header (dtype kind in ``kinds``, no pickles, ``ndim``, at most ``max_items``
    elements) is checked before its data is read, and exactly the bytes the header promises
    are decompressed.  Returns ``{key: array}`` (native byte order, C-contiguous)."""
    import zipfile
    import zlib
    path = Path(path)
    with open_regular(path, error, f"{what} file") as fp:
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise error(f"{path}: not a readable .npz file ({str(exc)[:120] or 'bad zip'})") \
                from None
        out = {}
        with zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise error(f"{path}: .npz must hold at most {max_members} arrays (got "
                            f"{len(infos)} members)")
            for info in infos:
                name = info.filename
                key = name[:-4] if name.endswith(".npy") else ""
                if not key or key in out:
                    raise error(f"{path}: .npz members must be distinct <name>.npy arrays (got "
                                f"member {name[:80]!r})")
                at = f"{path}:{key}"
                try:
                    with zf.open(info) as m:
                        dims, fortran, dtype = npy_header(m, at, error)
                        if dtype.kind not in kinds:
                            raise error(f"{at}: {what} must hold numbers only (got dtype "
                                        f"{dtype})")
                        if ndim is not None and len(dims) != ndim:
                            raise error(f"{at}: {what} must have {ndim} dimension(s) (got "
                                        f"shape {dims})")
                        count = math.prod(dims)
                        if math.prod(max(n, 1) for n in dims) > max_items:
                            raise error(f"{at}: {what} declares shape {dims} ({count} "
                                        f"elements), beyond the limit of {max_items} elements")
                        nbytes = count * dtype.itemsize
                        buf = m.read(nbytes) if nbytes else b""
                except error:
                    raise
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
                        NotImplementedError, RuntimeError) as exc:
                    raise error(f"{at}: damaged .npz member ({str(exc)[:120] or 'read error'})") \
                        from None
                if len(buf) != nbytes:
                    raise error(f"{at}: truncated .npz member: its header promises {nbytes} "
                                f"bytes of data, it holds {len(buf)}")
                arr = np.frombuffer(buf, dtype=dtype).reshape(dims, order="F" if fortran else "C")
                arr = np.ascontiguousarray(arr)
                out[key] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out
