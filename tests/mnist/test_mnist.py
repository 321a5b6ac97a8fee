"""The MNIST loader on each of its sources."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from grader.mnist import data as mnist
from grader.mnist.data import MnistError, load_mnist, read_idx


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_idx(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (6, 28, 28)), "y_train": np.arange(6) % 10,
              "x_test": rng.integers(0, 256, (3, 28, 28)), "y_test": np.arange(3)}
    for key, stem in mnist.IDX_FILES.items():
        _write_idx(tmp_path / f"{stem}.gz", arrays[key])
    return tmp_path, arrays


@pytest.fixture(autouse=True)
def no_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def test_idx_folder_round_trip(tiny_idx):
    folder, arrays = tiny_idx
    data = load_mnist(folder, verbose=False)
    assert data.source == "IDX files"
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.x_train.dtype == np.uint8


def test_environment_variable_is_used(tiny_idx, monkeypatch, capsys):
    folder, _ = tiny_idx
    monkeypatch.setenv(mnist.ENV_VAR, str(folder))
    data = load_mnist()
    assert data.source == "IDX files" and len(data.x_train) == 6
    assert "MNIST from IDX files" in capsys.readouterr().err


def test_npz_file_and_folder(tmp_path):
    arrays = {key: np.zeros((2, 28, 28) if key.startswith("x") else (2,), np.uint8)
              for key in mnist.IDX_FILES}
    np.savez(tmp_path / "mnist.npz", **arrays)
    assert load_mnist(tmp_path / "mnist.npz", verbose=False).source == "mnist.npz"
    assert load_mnist(tmp_path, verbose=False).source == "mnist.npz"


def test_keras_cache_is_second(tmp_path, monkeypatch):
    cache = tmp_path / "keras-home" / "datasets"
    cache.mkdir(parents=True)
    arrays = {key: np.ones((1, 28, 28) if key.startswith("x") else (1,), np.uint8)
              for key in mnist.IDX_FILES}
    np.savez(cache / "mnist.npz", **arrays)
    monkeypatch.setattr(mnist, "download_with_keras", lambda: pytest.fail("must not download"))
    assert load_mnist(verbose=False).source == "Keras cache"


def test_download_then_embedded_sample(monkeypatch):
    fake = mnist.Mnist(*(np.zeros(1, np.uint8),) * 4, source="Keras download", location="x")
    monkeypatch.setattr(mnist, "download_with_keras", lambda: fake)
    assert load_mnist(verbose=False) is fake

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(mnist, "download_with_keras", offline)
    sample = load_mnist(verbose=False)
    assert sample.source == "embedded sample"
    assert sample.x_train.shape == (4000, 28, 28) and sample.x_test.shape == (1000, 28, 28)
    assert np.bincount(sample.y_test).tolist() == [100] * 10
    assert sample.x_train.max() > 200  # real images, not zeros


def test_no_download_goes_straight_to_the_sample(monkeypatch):
    monkeypatch.setattr(mnist, "download_with_keras", lambda: pytest.fail("must not download"))
    assert load_mnist(allow_download=False, verbose=False).source == "embedded sample"


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(MnistError, match="no such file"):
        load_mnist(tmp_path / "missing", verbose=False)
    with pytest.raises(MnistError, match="neither"):
        load_mnist(tmp_path, verbose=False)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as stream:
        stream.write(b"\x01\x02\x03\x04junk")
    with pytest.raises(MnistError, match="bad magic"):
        read_idx(bad)


def test_truncated_idx_is_rejected(tmp_path):
    path = tmp_path / "t.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 10) + b"\x00" * 4)
    with pytest.raises(MnistError, match="truncated"):
        read_idx(path)


def test_full_mnist_when_available(mnist_dir):
    data = load_mnist(mnist_dir, verbose=False)
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.y_train[:5].tolist() == [5, 0, 4, 1, 9]


def test_mnist_command(tiny_idx, capsys):
    from grader.cli import main

    folder, _ = tiny_idx
    assert main(["mnist", "--mnist", str(folder)]) == 0
    assert "6 training and 3 test images" in capsys.readouterr().out
    assert main(["mnist", "--mnist", str(folder / "nope")]) == 2
    assert "--mnist" in capsys.readouterr().err


def test_kernel_npz_converts_an_idx_folder_once(tiny_idx, tmp_path, monkeypatch, capsys):
    folder, arrays = tiny_idx
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = mnist.kernel_npz(str(folder), tmp_path / "scratch")
    assert first.parent == tmp_path / "cache" / "hw4grade"
    with np.load(first) as data:
        np.testing.assert_array_equal(data["x_test"], arrays["x_test"])

    def no_reading(path):
        raise AssertionError("the IDX files were read again")

    monkeypatch.setattr(mnist, "read_idx", no_reading)
    assert mnist.kernel_npz(str(folder), tmp_path / "scratch") == first
    assert "6 training and 3 test images" in capsys.readouterr().err


def test_kernel_npz_converts_again_when_a_file_changes(tiny_idx, tmp_path, monkeypatch):
    folder, arrays = tiny_idx
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = mnist.kernel_npz(str(folder), tmp_path / "scratch")
    changed = arrays["y_test"][::-1].copy()
    _write_idx(folder / f"{mnist.IDX_FILES['y_test']}.gz", changed)
    second = mnist.kernel_npz(str(folder), tmp_path / "scratch")
    assert second != first
    with np.load(second) as data:
        np.testing.assert_array_equal(data["y_test"], changed)


def test_kernel_npz_without_a_writable_cache(tiny_idx, tmp_path, monkeypatch):
    folder, _ = tiny_idx
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = mnist.kernel_npz(str(folder), tmp_path / "scratch")
    assert path == tmp_path / "scratch" / "mnist.npz" and path.is_file()
