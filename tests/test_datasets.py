"""Tests for neuroemu.learn.datasets: IDX parsing, data-folder resolution, verification, splits."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from neuroemu.learn import datasets
from neuroemu.learn.datasets import (Dataset, load, one_hot, read_idx, resolve_data_dir,
                               train_validation_split)
from neuroemu.errors import DataError

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
         np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise ``array`` (already in an IDX dtype) as an IDX file."""
    header = bytes([0, 0, CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def make_folder(folder: Path, n: int = 5, split: str = "train", md5: bool = False) -> Path:
    """A tiny dataset folder: n images whose pixel values encode their index, labels i % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    images = (np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8))
    write(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images))
    write(folder / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(np.arange(n, dtype=np.uint8) % 10))
    if md5:
        (folder / "MD5SUMS").write_text("".join(
            f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.name}\n" for f in sorted(folder.glob("*.gz"))))
    return folder


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)


# --- read_idx -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,shape", [("u1", (3, 28, 28)), ("i1", (7,)), (">i2", (2, 3)),
                                         (">i4", (4, 1, 2)), (">f4", (5,)), (">f8", (2, 2))])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=shape) * 100).astype(dtype)
    got = read_idx(write(tmp_path / f"x.idx{suffix}", idx_bytes(array)))
    assert got.shape == shape
    assert got.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(got, array)


def test_read_idx_detects_gzip_without_suffix(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "plain-name"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)


def test_truncated_payload(tmp_path):
    path = write(tmp_path / "short.gz", idx_bytes(np.zeros((3, 28, 28), np.uint8))[:16 + 100])
    with pytest.raises(DataError, match=re.escape(f"{path}: header: payload holds 100 bytes, header promises 2352")):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    path = write(tmp_path / "long", idx_bytes(np.zeros(4, np.uint8)) + b"\0")
    with pytest.raises(DataError, match="long: header: payload holds 5 bytes, header promises 4"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = write(tmp_path / "magic", b"\x01\x02\x08\x03" + bytes(100))
    with pytest.raises(DataError, match=r"magic: header: magic number .*\(got 0x01020803\)"):
        read_idx(path)


@pytest.mark.parametrize("data,message", [
    (b"\0\0\x07\x01" + bytes(8), "unknown dtype code 0x07"),
    (b"\0\0\x08\x00", r"dimension count must be at least 1 \(got 0\)"),
    (b"\0\0\x08\x03\0\0\0\x01", "file holds 8 bytes, a header with 3 dimensions needs 16"),
    (b"\0\0", "file holds 2 bytes, too short"),
])
def test_bad_header(tmp_path, data, message):
    with pytest.raises(DataError, match=f"hdr: header: {message}"):
        read_idx(write(tmp_path / "hdr", data))


def test_bad_gzip(tmp_path):
    path = tmp_path / "garbage.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match=r"garbage\.gz: gzip: not a valid gzip stream"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))[:-20])
    with pytest.raises(DataError, match=r"cut\.gz: gzip: not a valid gzip stream"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.gz: file not found"):
        read_idx(tmp_path / "nothere.gz")


# --- load, verification ---------------------------------------------------------------

def test_load_small_folder_unverified(tmp_path):
    ds = load("mnist", data_dir=make_folder(tmp_path / "mnist", n=5), verify=False)
    assert ds.images.shape == (5, 784) and ds.images.dtype == np.float64
    np.testing.assert_allclose(ds.images[:, 0], np.arange(5) / 255.0)
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [0, 1, 2, 3, 4]
    assert (ds.name, ds.split, ds.path, len(ds)) == ("mnist", "train", tmp_path / "mnist", 5)


def test_load_checks_standard_size_when_verifying(tmp_path):
    folder = make_folder(tmp_path / "mnist", n=5, md5=True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: count: the train split must hold 60000 images \(got 5\)"):
        load("mnist", data_dir=folder)


def test_md5_mismatch(tmp_path):
    folder = make_folder(tmp_path / "mnist", n=5, md5=True)
    labels = folder / "train-labels-idx1-ubyte.gz"
    write(labels, idx_bytes(np.full(5, 3, np.uint8)))  # content no longer matches MD5SUMS
    actual = hashlib.md5(labels.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=rf"train-labels-idx1-ubyte\.gz: md5: file hashes to {actual}, .*MD5SUMS says"):
        load("mnist", data_dir=folder)


def test_md5_cache_is_keyed_on_file_state(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "mnist", n=5, md5=True)
    calls = []
    real_md5 = hashlib.md5
    monkeypatch.setattr(datasets.hashlib, "md5", lambda data: calls.append(1) or real_md5(data))
    for _ in range(2):
        with pytest.raises(DataError, match="count"):  # MD5 passes, then the size check fails
            load("mnist", data_dir=folder)
    assert len(calls) == 2  # images and labels hashed once each, not again on the second load
    labels = folder / "train-labels-idx1-ubyte.gz"
    write(labels, idx_bytes(np.zeros(6, np.uint8)))
    os.utime(labels, ns=(1, 1))
    with pytest.raises(DataError, match="md5"):  # a changed file is hashed again
        load("mnist", data_dir=folder)


def test_missing_dataset_file_names_file_and_folder(tmp_path):
    folder = make_folder(tmp_path / "mnist", n=5)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=re.escape(f"{folder}/train-labels-idx1-ubyte.gz: file not found (searched folder {folder}")):
        load("mnist", data_dir=folder, verify=False)


def test_length_mismatch_and_label_range(tmp_path):
    folder = make_folder(tmp_path / "mnist", n=5)
    write(folder / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match="holds 5 images but train-labels-idx1-ubyte.gz holds 4 labels"):
        load("mnist", data_dir=folder, verify=False)
    write(folder / "train-labels-idx1-ubyte.gz", idx_bytes(np.array([0, 1, 12, 3, 4], np.uint8)))
    with pytest.raises(DataError, match=r"labels: must lie in 0\.\.9 \(got 12\)"):
        load("mnist", data_dir=folder, verify=False)


def test_uncompressed_files_are_found(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    write(folder / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((2, 28, 28), np.uint8)))
    write(folder / "t10k-labels-idx1-ubyte", idx_bytes(np.array([7, 2], np.uint8)))
    assert load("mnist", data_dir=folder, split="test", verify=False).labels.tolist() == [7, 2]


def test_bad_name_and_split(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load("cifar", data_dir=tmp_path)
    with pytest.raises(DataError, match="split must be 'train' or 'test' \\(got 'valid'\\)"):
        load("mnist", data_dir=tmp_path, split="valid")


# --- resolve_data_dir -----------------------------------------------------------------

def test_env_var_parent_folder(tmp_path, monkeypatch):
    make_folder(tmp_path / "mnist")
    make_folder(tmp_path / "fashion-mnist")
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
    assert resolve_data_dir("mnist") == tmp_path / "mnist"
    assert resolve_data_dir("fashion_mnist") == tmp_path / "fashion-mnist"


def test_env_var_dataset_folder_itself(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "my-digits")
    monkeypatch.setenv(datasets.ENV_VAR, str(folder))
    assert resolve_data_dir("mnist") == folder


def test_env_var_pointing_at_another_dataset_is_refused(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "mnist")
    monkeypatch.setenv(datasets.ENV_VAR, str(folder))
    with pytest.raises(DataError, match=re.escape(f"NEUROEMU_DATA={folder}")):
        resolve_data_dir("fashion-mnist")


def test_data_dir_argument_beats_env_var(tmp_path, monkeypatch):
    make_folder(tmp_path / "a" / "mnist")
    make_folder(tmp_path / "b" / "mnist")
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "a"))
    assert resolve_data_dir("mnist", tmp_path / "b") == tmp_path / "b" / "mnist"


def test_nothing_found_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(DataError) as info:
        resolve_data_dir("mnist")
    message = str(info.value)
    assert "\n" not in message
    assert "../shared/datasets/mnist" in message and str(tmp_path / "shared" / "datasets" / "mnist") in message
    assert "--data DIR" in message and "NEUROEMU_DATA" in message
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(DataError, match=re.escape(f"NEUROEMU_DATA={tmp_path / 'empty'}")):
        resolve_data_dir("mnist")


def test_default_is_shared_datasets_relative_to_cwd(tmp_path, monkeypatch):
    make_folder(tmp_path / "shared" / "datasets" / "mnist")
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    monkeypatch.setattr(datasets, "_REPO_ROOT", tmp_path / "elsewhere" / "repo")
    assert resolve_data_dir("mnist") == Path("../shared/datasets/mnist")


# --- split, one_hot -------------------------------------------------------------------

def numbered(n: int, split: str = "train") -> Dataset:
    """A dataset whose single pixel column holds each image's index."""
    return Dataset(np.arange(n, dtype=np.float64)[:, None], np.arange(n) % 10, "mnist", split, Path("."))


def test_split_without_seed_is_file_order():
    fit, val = train_validation_split(numbered(100), n_validation=30)
    assert fit.images[:, 0].tolist() == list(range(70)) and val.images[:, 0].tolist() == list(range(70, 100))
    assert (fit.split, val.split) == ("train", "validation")
    np.testing.assert_array_equal(val.labels, np.arange(70, 100) % 10)


def test_seeded_split_is_disjoint_reproducible_and_shuffled():
    fit, val = train_validation_split(numbered(100), n_validation=30, seed=1)
    ids_fit, ids_val = set(fit.images[:, 0]), set(val.images[:, 0])
    assert len(ids_fit) == 70 and len(ids_val) == 30 and not ids_fit & ids_val
    assert ids_fit | ids_val == set(range(100))
    np.testing.assert_array_equal(fit.labels, fit.images[:, 0].astype(int) % 10)  # rows stay paired
    again = train_validation_split(numbered(100), n_validation=30, seed=1)[1]
    np.testing.assert_array_equal(again.images, val.images)
    assert ids_val != set(range(70, 100))
    assert set(train_validation_split(numbered(100), 30, seed=2)[1].images[:, 0]) != ids_val


def test_split_refuses_test_set_and_bad_sizes():
    with pytest.raises(DataError, match="refusing to split the test set"):
        train_validation_split(numbered(100, split="test"))
    with pytest.raises(DataError, match=r"n_validation must lie in 1\.\.99 \(got 100\)"):
        train_validation_split(numbered(100), n_validation=100)


def test_one_hot():
    encoded = one_hot(np.array([3, 0, 9]))
    assert encoded.dtype == np.float64 and encoded.shape == (3, 10)
    assert encoded.sum(axis=1).tolist() == [1, 1, 1] and encoded.argmax(axis=1).tolist() == [3, 0, 9]
    assert one_hot([1], n_classes=3).tolist() == [[0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="0..9"):
        one_hot([10])
    with pytest.raises(ValueError, match="integer"):
        one_hot([0.5])


# --- the real data (one load per split, shared by the tests below) --------------------

@pytest.fixture(scope="module")
def mnist():
    if not (REAL_DATA / "mnist").is_dir():
        pytest.skip(f"real MNIST not found at {REAL_DATA / 'mnist'} (needs ../shared/datasets)")
    return load("mnist", data_dir=REAL_DATA), load("mnist", data_dir=REAL_DATA, split="test")


def test_real_mnist(mnist):
    train, test = mnist
    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    assert train.labels.shape == (60000,) and test.labels.dtype == np.int64
    for ds in mnist:
        assert ds.images.dtype == np.float64
        assert ds.images.min() == 0.0 and ds.images.max() == 1.0
        assert set(np.unique(ds.labels)) == set(range(10))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9] and test.labels[:3].tolist() == [7, 2, 1]
    assert train.path.resolve() == (REAL_DATA / "mnist").resolve()


def test_real_mnist_split(mnist):
    train = mnist[0]
    fit, val = train_validation_split(train)
    assert (len(fit), len(val)) == (50000, 10000)
    assert np.shares_memory(fit.images, train.images)  # file order: plain views, no copy
    np.testing.assert_array_equal(val.images, train.images[50000:])
    np.testing.assert_array_equal(fit.labels, train.labels[:50000])
    with pytest.raises(DataError, match="refusing to split the test set"):
        train_validation_split(mnist[1])


def test_real_fashion_mnist_test_split():
    if not (REAL_DATA / "fashion-mnist").is_dir():
        pytest.skip(f"real Fashion-MNIST not found at {REAL_DATA / 'fashion-mnist'} (needs ../shared/datasets)")
    test = load("fashion_mnist", data_dir=REAL_DATA, split="test")
    assert test.name == "fashion-mnist" and test.images.shape == (10000, 784)
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert np.bincount(test.labels).tolist() == [1000] * 10
