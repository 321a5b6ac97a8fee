"""Shared test fixtures."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# This process loads TensorFlow and PyTorch: Triton, which PyTorch loads on its first
# optimizer, crashes a process that has TensorFlow loaded, and nothing here needs it (the
# grader does the same: grader.frameworks.torch.library.import_torch).
sys.modules.setdefault("triton", None)
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


@pytest.fixture(scope="session")
def kernel_user() -> str:
    """A dedicated unprivileged account for UserSandbox kernels (created, then removed, by
    this session when it is missing); skips where the tests do not run as root."""
    import pwd
    import shutil
    import subprocess

    name = "hw4grade-test"
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("the user sandbox needs root (and useradd) to create its account")
    try:
        pwd.getpwnam(name)
        created = False
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)
        created = True
    yield name
    if created:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture(scope="session")
def user_python() -> str:
    """A Python with ipykernel (and numpy, which the kernel prelude needs) that another user
    can run (the project's environment may sit in a folder only root reads): a venv of the
    system's Python in a world-readable folder."""
    import shutil
    import subprocess
    import tempfile

    # the system's Python, as the Gradescope setup.sh uses (a PATH's python3 may be a shim
    # into root's home)
    base = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    folder = Path(tempfile.mkdtemp(prefix="hw4grade-user-venv-"))
    os.chmod(folder, 0o755)
    try:
        subprocess.run([base, "-m", "venv", str(folder / "venv")], check=True,
                       capture_output=True, timeout=300)
        python = folder / "venv" / "bin" / "python"
        subprocess.run([str(python), "-m", "pip", "install", "-qq", "ipykernel", "numpy"],
                       check=True, capture_output=True, timeout=600)
        subprocess.run(["chmod", "-R", "go+rX", str(folder)], check=True)  # whatever umask
    except (OSError, subprocess.SubprocessError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("CI"):
            raise
        pytest.skip(f"could not build a venv with ipykernel for the user sandbox: {error}")
    yield str(python)
    shutil.rmtree(folder, ignore_errors=True)
