"""Shared test fixtures."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory) -> Path:
    """The grader's user cache (converted MNIST) lives in a folder of this test session."""
    folder = tmp_path_factory.mktemp("user-cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The full MNIST folder from HW4_MNIST_DIR; tests that need it skip without it."""
    value = os.environ.get("HW4_MNIST_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("HW4_MNIST_DIR is not set to a folder of the MNIST IDX files")
    return Path(value)


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once and quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import tensorflow

    return tensorflow
