"""Output paths: one place that decides whether neuroemu may write a file, and writes it
atomically.

Nothing the user has is lost (docs/architecture.md):

- :func:`check_output` refuses, with a one-line :class:`~neuroemu.errors.OutputError`, an
  output that is an input of the same command (same resolved path, or the same file by
  ``os.path.samefile``: hard links and symlinks too), a directory, any non-regular file
  (device node, FIFO, socket, or a symlink to one), an existing file unless ``force`` (or
  ``resumable``: the command's own output that it advances, ``train --resume``'s checkpoint),
  and a parent that is not a folder or not writable.  Commands call it for every output
  **before** any work starts; the writers call :func:`check_target` again when they open.
- :func:`replacing` yields a temporary name in the same folder (keeping the suffix, so
  matplotlib and h5py see the right type); when the block ends the file is fsynced and
  renamed over the final name (``os.replace``); on an error the temporary file is removed and
  the final name is untouched.  :func:`write_text` and :func:`write_bytes` use it.
- Multi-file netlists (a TOML naming ``.npy`` files beside it): :func:`save_npy` writes each
  array atomically under a content-addressed name (``<stem>.<key>.<sha256[:12]>.npy``), then
  :func:`replace_text_with_arrays` replaces the TOML last and removes the ``.npy`` files of
  that form the old TOML named that the new one does not (a TOML copied by hand beside another
  shares its arrays: copy netlists with ``neuroemu convert``, which writes its own).  A crash
  at any point leaves either the old complete netlist or the new complete one, never a mix:
  arrays are never written in place.

This module sits beside :mod:`neuroemu.errors` at the bottom of the package: it imports
nothing else of neuroemu.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import stat
from pathlib import Path

from .errors import OutputError

# errno values of a full disk, a file-size limit and a disk quota
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}

__all__ = ["check_output", "check_target", "check_partial", "is_input", "replacing",
           "write_text", "write_bytes", "save_npy", "replace_text_with_arrays",
           "toml_file_refs", "netlist_inputs"]


def _label(path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def is_input(path, inputs) -> str | None:
    """The input ``path`` is (as given in ``inputs``), or None: compares resolved paths and,
    where both exist, ``os.path.samefile`` (hard links, symlinks, bind mounts)."""
    p = Path(path)
    try:
        rp = p.resolve()
    except (OSError, RuntimeError):
        rp = None
    for inp in inputs:
        if inp is None:
            continue
        q = Path(inp)
        try:
            if rp is not None and rp == q.resolve():
                return str(inp)
        except (OSError, RuntimeError):
            pass
        try:
            if os.path.samefile(p, q):
                return str(inp)
        except (OSError, ValueError):
            pass
    return None


def check_target(path, *, option: str | None = None) -> Path:
    """Refuse a directory or non-regular file at ``path`` (following symlinks); an existing
    regular file (or a dangling symlink) is allowed.  The check a writer makes when it
    opens, whatever ``force`` said."""
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        return p        # nothing there (or a dangling symlink: replaced by the rename); a
                        # parent that is no folder is check_output's to explain
    except OSError as exc:
        raise OutputError(f"{_label(p, option)}: cannot write here ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{_label(p, option)}: is {_kind(st.st_mode)}; refusing to write "
                          f"onto it (give a file name)")
    return p


def _check_parent(p: Path, option: str | None) -> None:
    """The nearest existing ancestor must be a writable folder (missing folders are made
    when the file is written)."""
    parent = p.parent
    while True:
        try:
            st = os.stat(parent)
            break
        except (FileNotFoundError, NotADirectoryError):
            if parent == parent.parent:
                return
            parent = parent.parent
        except OSError as exc:
            raise OutputError(f"{_label(p, option)}: cannot write here ({parent}: "
                              f"{exc.strerror})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{_label(p, option)}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{_label(p, option)}: folder {parent} is not writable")


def check_output(path, *, inputs=(), force: bool = False, resumable: bool = False,
                 option: str | None = None) -> Path:
    """Check that neuroemu may write ``path`` (see the module docstring); returns it as a
    Path.  ``inputs``: the paths this command reads (never written, even with ``force``);
    ``option``: the option that named the path, for the message (``"--trace"``)."""
    if path is None or str(path) == "":
        raise OutputError(f"{option or 'output'}: needs a file name (got an empty one)")
    p = Path(path)
    same = is_input(p, inputs)
    if same is not None:
        raise OutputError(f"{_label(p, option)}: is an input of this command ({same}); "
                          f"refusing to overwrite it")
    check_target(p, option=option)
    if os.path.lexists(p) and not (force or resumable):
        raise OutputError(f"{_label(p, option)}: already exists (use --force to overwrite)")
    _check_parent(p, option)
    return p


def check_partial(path, *, force: bool = False, option: str | None = None) -> Path:
    """The ``NAME.partial`` a streaming writer (a trace) works in: not a directory or
    non-regular file, and -- it is what a user is told to read after a crash -- not an
    existing one unless ``force``."""
    part = Path(str(path) + ".partial")
    check_target(part, option=option)
    if os.path.lexists(part) and not force:
        raise OutputError(f"{_label(part, option)}: a partial output of an earlier run is "
                          f"there (read it with neuroemu inspect, move it away, or use --force "
                          f"to replace it)")
    return part


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path) -> Path:
    """A fresh name beside ``path`` (same folder, same suffix): ``.NAME.tmp-XXXXXXXX.SUFFIX``."""
    p = Path(path)
    return p.with_name(f".{p.stem}.tmp-{secrets.token_hex(4)}{p.suffix}")


@contextlib.contextmanager
def replacing(path, *, fsync: bool = True):
    """``with replacing(path) as tmp: write tmp`` -- the file appears under ``path`` only when
    the block ends without an error (fsync, then ``os.replace``); otherwise ``tmp`` is
    removed and whatever was at ``path`` stays.  Makes missing parent folders; refuses a
    directory or non-regular file at ``path`` (:func:`check_target`)."""
    p = check_target(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(p)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        check_target(p)         # nothing became a FIFO or folder meanwhile
        os.replace(tmp, p)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in _NO_ROOM:   # a full disk or a file-size limit: one line, say what stays
            kept = "the file that was there is kept" if p.exists() else "nothing was written"
            raise OutputError(f"{p}: writing failed ({exc.strerror or exc}); {kept}") from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(p.parent)


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`replacing`)."""
    p = Path(path)
    with replacing(p) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
    return p


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (:func:`replacing`)."""
    return write_bytes(path, text.encode(encoding))


# ------------------------------------------------------------- multi-file netlists

def npy_name(stem: str, key: str, arr) -> str:
    """The content-addressed file name of an array: ``<stem>.<key>.<12 hex digits>.npy``
    (the digest covers dtype, shape and bytes, so equal names mean equal arrays)."""
    import numpy as np
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B") if a.size else b"")
    return f"{stem}.{key}.{h.hexdigest()[:12]}.npy"


def save_npy(folder, stem: str, key: str, arr) -> str:
    """Write ``arr`` atomically as ``folder/<npy_name>``; returns the file name (relative, as
    the TOML names it).  An existing file of that name holds the same array: it is replaced
    by an identical one, so a TOML that names it reads the same values throughout."""
    import numpy as np
    a = np.ascontiguousarray(arr)
    name = npy_name(stem, key, a)
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    write_bytes(Path(folder) / name, buf.getvalue())
    return name


def toml_file_refs(path) -> set[str]:
    """The ``{ file = "..." }`` values a TOML netlist names (empty if it is missing or not
    TOML): the files that belong to it."""
    import tomllib
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return set()
            raw = tomllib.load(f)
    except (OSError, ValueError):
        return set()
    refs: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            if isinstance(v.get("file"), str):
                refs.add(v["file"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(raw)
    return refs


def netlist_inputs(path) -> list[Path]:
    """A netlist file and the files its TOML names beside it (all inputs of a command that
    reads it)."""
    p = Path(path)
    out = [p]
    if p.suffix.lower() == ".toml":
        out += [p.parent / r for r in sorted(toml_file_refs(p))]
    return out


def replace_text_with_arrays(path, text: str, new_files) -> Path:
    """The last step of writing a TOML whose arrays are in ``new_files`` (already written by
    :func:`save_npy`): replace the TOML atomically, then remove the ``.npy`` files the old TOML
    named that the new one does not -- only regular files in the same folder whose names
    neuroemu gave them (``<stem>.<key>.<12 hex digits>.npy``, :func:`npy_name`), so arrays the
    user made, or an older neuroemu wrote under plain names, are kept."""
    p = Path(path)
    old = toml_file_refs(p)
    write_text(p, text)
    ours = re.compile(re.escape(p.stem) + r"\.[^/\\]+\.[0-9a-f]{12}\.npy")
    for ref in old - set(new_files):
        if Path(ref).parent != Path(".") or not ours.fullmatch(ref):
            continue
        target = p.parent / ref
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(target).st_mode):
                target.unlink()
    return p
