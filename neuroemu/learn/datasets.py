"""MNIST and Fashion-MNIST from local IDX files, verified; nothing is ever downloaded.

Usage::

    from neuroemu.learn import datasets

    train = datasets.load("mnist")                     # 60,000 x 784 floats in [0, 1]
    test = datasets.load("fashion-mnist", split="test")
    fit, val = datasets.train_validation_split(train)  # images 0-49,999 / 50,000-59,999
    targets = datasets.one_hot(fit.labels)             # (50000, 10) float64

Where the data lives (see :func:`resolve_data_dir`): the ``data_dir`` argument (the CLI's
``--data DIR``), else the ``NEUROEMU_DATA`` environment variable, else
``../shared/datasets`` relative to the current directory or to this repository's root.
A directory given explicitly may be the dataset folder itself or a parent holding
``mnist/`` and ``fashion-mnist/``; it is never silently passed over for a default.

A dataset folder holds the four standard files (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``; uncompressed copies without ``.gz`` also work) and
optionally ``MD5SUMS`` in ``md5sum`` format.  ``load(..., verify=True)`` checks each file
against ``MD5SUMS`` (once per process per unchanged file) and checks the standard sizes.
Every problem raises :class:`neuroemu.errors.DataError` with a one-line message naming
the file, what is wrong and the offending value.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..describe.arrays import open_regular
from ..errors import DataError, where

ENV_VAR = "NEUROEMU_DATA"
NAMES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist"}
SPLIT_SIZES = {"train": 60000, "test": 10000}
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IDX_FILES = [f"{p}-{kind}" for p in _FILE_PREFIX.values()
              for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
# IDX type codes (third magic byte); multi-byte values are big-endian.
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_REPO_ROOT = Path(__file__).resolve().parents[2]
_VERIFIED: set[tuple[str, int, int]] = set()  # (resolved path, size, mtime_ns) whose MD5 matched


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as float64 rows of 784 pixels scaled to [0, 1], labels as int64 in 0..9."""

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str  # "train", "test" or "validation"
    path: Path  # the folder the files came from

    def __len__(self) -> int:
        return len(self.labels)


# The most bytes of data one IDX file may declare (MNIST's training images: 47 MB).
MAX_IDX_BYTES = 1 << 28
_EXTRA_COUNTED = 1 << 20   # bytes past the declared payload counted before giving up


def read_idx(path, expect=None) -> np.ndarray:
    """Parse an IDX file (gzipped or plain) into a native-endian array of the header's shape.

    The header is read and checked first (for a gzip file, the first bytes of the stream):
    the declared payload must be at most :data:`MAX_IDX_BYTES`, and ``expect`` -- a function
    of (dtype, shape) returning an error message or None -- is asked before any data is read
    or inflated; then exactly the declared payload is read, so a file that inflates to more
    is refused without inflating it all.  Regular files only (a FIFO never blocks)."""
    path = Path(path)
    with open_regular(path, DataError, "file") as fp:
        start = fp.read(2)
        fp.seek(0)
        if path.suffix == ".gz" or start == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=fp, mode="rb")
            size = None
        else:
            stream, size = fp, os.fstat(fp.fileno()).st_size
        try:
            return _parse_idx(path, stream, size, expect)
        except (OSError, EOFError, zlib.error) as e:
            if isinstance(e, DataError):
                raise
            if stream is fp:
                raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None
            raise DataError(f"{where(path, 'gzip')}: not a valid gzip stream ({e})") from None


def _parse_idx(path: Path, stream, size, expect) -> np.ndarray:
    head = where(path, "header")
    raw = stream.read(4)
    if len(raw) < 4:
        raise DataError(f"{head}: file holds {len(raw)} bytes, too short for the 4-byte magic number")
    if raw[:2] != b"\0\0":
        raise DataError(f"{head}: magic number must start with two zero bytes (got 0x{raw[:4].hex()})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{head}: unknown dtype code 0x{code:02x} (known: "
                        f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    if ndim == 0:
        raise DataError(f"{head}: dimension count must be at least 1 (got 0)")
    hsize = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{head}: file holds {4 + len(dims)} bytes, a header with {ndim} "
                        f"dimensions needs {hsize}")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(_IDX_DTYPES[code])
    nbytes = math.prod(shape) * dtype.itemsize
    # zero-length axes too: (0, 2^21, 2^21) holds nothing but is no valid array shape
    if math.prod(max(n, 1) for n in shape) * dtype.itemsize > MAX_IDX_BYTES:
        raise DataError(f"{head}: declares shape {shape} of {dtype.name} ({nbytes} bytes), more "
                        f"than the limit of {MAX_IDX_BYTES} bytes")
    rule = expect(dtype.newbyteorder("="), shape) if expect else None
    if rule:
        raise DataError(f"{where(path, 'shape')}: {rule}")
    if size is not None and size - hsize != nbytes:
        raise DataError(f"{head}: payload holds {size - hsize} bytes, header promises {nbytes}")
    payload = stream.read(nbytes)
    if len(payload) != nbytes:
        raise DataError(f"{head}: payload holds {len(payload)} bytes, header promises {nbytes}")
    extra = 0
    while extra <= _EXTRA_COUNTED:
        more = stream.read(1 << 16)
        if not more:
            break
        extra += len(more)
    if extra:
        held = f"{nbytes + extra}" if extra <= _EXTRA_COUNTED else f"more than {nbytes + extra}"
        raise DataError(f"{head}: payload holds {held} bytes, header promises {nbytes}")
    array = np.frombuffer(payload, dtype, count=math.prod(shape)).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable, native-endian copy


def _canonical(name: str) -> str:
    try:
        return NAMES[name.lower()]
    except KeyError:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(NAMES)})") from None


def _holds_idx(folder: Path) -> bool:
    return any((folder / f).is_file() or (folder / f"{f}.gz").is_file() for f in _IDX_FILES)


def resolve_data_dir(name: str, data_dir=None) -> Path:
    """Find the folder holding dataset ``name``'s IDX files (see the module docstring)."""
    canonical = _canonical(name)
    if data_dir is not None or os.environ.get(ENV_VAR):
        source, base = ("data_dir", Path(data_dir)) if data_dir is not None \
            else (ENV_VAR, Path(os.environ[ENV_VAR]))
        if (base / canonical).is_dir():
            return base / canonical
        # The folder itself, unless it is plainly another dataset's folder.
        if _holds_idx(base) and NAMES.get(base.name.lower(), canonical) == canonical:
            return base
        looked = [f"{source}={base} (neither {canonical} IDX files nor a {canonical}/ folder)"]
    else:
        tried: dict[Path, str] = {}
        for base in (Path("..", "shared", "datasets"), _REPO_ROOT.parent / "shared" / "datasets"):
            folder = base / canonical
            if folder.is_dir():
                return folder
            tried.setdefault(folder.resolve(), str(folder))
        looked = list(tried.values())
    raise DataError(f"{canonical}: data not found (looked in: {'; '.join(looked)}); pass --data DIR or "
                    f"set {ENV_VAR}=DIR, DIR being the folder of IDX files or a parent of {canonical}/")


def _find_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder / (stem + '.gz')}: file not found (searched folder {folder} "
                    f"for {stem}.gz and {stem})")


def _read_md5sums(sums: Path) -> dict[str, str]:
    table = {}
    for number, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, filename = line.strip().partition(" ")
        if len(digest) != 32 or not all(c in "0123456789abcdefABCDEF" for c in digest) or not filename.strip():
            raise DataError(f"{where(sums, f'line {number}')}: expected '<md5>  <file name>' (got {line!r})")
        table[filename.strip().lstrip("*")] = digest.lower()
    return table


def _verify_md5(path: Path) -> None:
    """Check ``path`` against ``MD5SUMS`` beside it, if that exists and lists it."""
    sums = path.parent / "MD5SUMS"
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED or not sums.is_file():
        return
    expected = _read_md5sums(sums).get(path.name)
    if expected is None:
        return
    actual = hashlib.md5(path.read_bytes()).hexdigest()
    if actual != expected:
        raise DataError(f"{where(path, 'md5')}: file hashes to {actual}, {sums} says {expected}")
    _VERIFIED.add(key)


def load(name: str, data_dir=None, split: str = "train", verify: bool = True) -> Dataset:
    """Load one split of ``name`` ("mnist" or "fashion-mnist") as a :class:`Dataset`.

    Shapes, dtypes, matching lengths and the label range are always checked; ``verify``
    adds the MD5 check against ``MD5SUMS`` and the standard split size (60,000 / 10,000).
    """
    if split not in SPLIT_SIZES:
        raise DataError(f"{name}: split must be 'train' or 'test' (got {split!r})")
    canonical = _canonical(name)
    folder = resolve_data_dir(canonical, data_dir)
    image_path = _find_file(folder, f"{_FILE_PREFIX[split]}-images-idx3-ubyte")
    label_path = _find_file(folder, f"{_FILE_PREFIX[split]}-labels-idx1-ubyte")
    if verify:
        _verify_md5(image_path)
        _verify_md5(label_path)
    def images_ok(dtype, shape):
        if dtype != np.uint8 or len(shape) != 3 or shape[1:] != IMAGE_SHAPE:
            return f"expected uint8 images of shape (N, 28, 28) (got {dtype} {shape})"
        return None

    def labels_ok(dtype, shape):
        if len(shape) != 1 or not np.issubdtype(dtype, np.integer):
            return f"expected a 1-D integer array (got {dtype} {shape})"
        return None

    images, labels = read_idx(image_path, images_ok), read_idx(label_path, labels_ok)
    if len(images) != len(labels):
        raise DataError(f"{folder}: {image_path.name} holds {len(images)} images but "
                        f"{label_path.name} holds {len(labels)} labels")
    if verify and len(images) != SPLIT_SIZES[split]:
        raise DataError(f"{where(image_path, 'count')}: the {split} split must hold "
                        f"{SPLIT_SIZES[split]} images (got {len(images)})")
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise DataError(f"{where(label_path, 'labels')}: must lie in 0..{N_CLASSES - 1} (got {bad})")
    return Dataset(images=images.reshape(len(images), -1) / 255.0, labels=labels.astype(np.int64),
                   name=canonical, split=split, path=folder)


def train_validation_split(ds: Dataset, n_validation: int = 10000,
                           seed: int | None = None) -> tuple[Dataset, Dataset]:
    """Split a training set into (train, validation).

    Without ``seed`` the last ``n_validation`` images in file order are the validation set
    (for MNIST: training on images 0-49,999, validating on 50,000-59,999, as in the original
    paper); with ``seed``, the split follows a permutation drawn from that seed.
    """
    if ds.split != "train":
        raise DataError(f"{ds.path}: refusing to split the {ds.split} set of {ds.name}; "
                        f"only a training set is split into train/validation")
    n = len(ds)
    if not 0 < n_validation < n:
        raise DataError(f"{ds.path}: n_validation must lie in 1..{n - 1} (got {n_validation})")
    if seed is None:
        fit, val = slice(0, n - n_validation), slice(n - n_validation, n)
    else:
        order = np.random.default_rng(seed).permutation(n)
        fit, val = order[: n - n_validation], order[n - n_validation:]
    return (replace(ds, images=ds.images[fit], labels=ds.labels[fit]),
            replace(ds, images=ds.images[val], labels=ds.labels[val], split="validation"))


def one_hot(labels, n_classes: int = N_CLASSES) -> np.ndarray:
    """Encode integer labels 0..n_classes-1 as rows of a float64 identity matrix."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise ValueError(f"labels must be a 1-D integer array (got {labels.dtype} {labels.shape})")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1} (got {labels.min()}..{labels.max()})")
    return np.eye(n_classes)[labels.astype(np.intp)]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 300 MNIST test digits shipped inside the package (official test images 0-299):
    (images (300, 784) float64 in [0, 1], labels (300,) int64).  Needs no dataset folder."""
    from importlib import resources
    path = resources.files("neuroemu") / "data" / "mnist_test_digits.npz"
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        return z["images"].reshape(len(z["images"]), -1) / 255.0, z["labels"].astype(np.int64)
