"""The up-front checks of the paths a sub-command is given.

Each function takes a path and the argument it came from (``--out``, ``NOTEBOOK`` ...),
returns the path made absolute, or raises :class:`UsageError` naming both and what is
wrong. A command calls them before it starts any work, so a bad path costs nothing.
Nothing here creates or changes a file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from grader.exceptions import RubricError, UsageError

if TYPE_CHECKING:
    from grader.result import SubmissionResult
    from grader.rubric import Rubric

READ = os.R_OK
ENTER = os.R_OK | os.X_OK  # list a folder and open what it holds
WRITE_IN = os.W_OK | os.X_OK


def wrong(argument: str, path: str | os.PathLike[str], problem: str) -> UsageError:
    """The error for ``argument`` given ``path``: ``--out /x: is a file, ...``."""
    return UsageError(f"{argument} {os.fspath(path)}: {problem}")


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def input_file(path: str | os.PathLike[str], argument: str) -> Path:
    """A file that must exist and be readable."""
    full = _absolute(path)
    if not full.exists():
        raise wrong(argument, path, "no such file")
    if full.is_dir():
        raise wrong(argument, path, "is a folder, expected a file")
    if not os.access(full, READ):
        raise wrong(argument, path, "cannot be read (permission denied)")
    return full


def input_folder(path: str | os.PathLike[str], argument: str) -> Path:
    """A folder that must exist and be readable."""
    full = _absolute(path)
    if not full.exists():
        raise wrong(argument, path, "no such folder")
    if not full.is_dir():
        raise wrong(argument, path, "is a file, expected a folder")
    if not os.access(full, ENTER):
        raise wrong(argument, path, "cannot be read (permission denied)")
    return full


def input_path(path: str | os.PathLike[str], argument: str) -> Path:
    """A file or a folder that must exist and be readable."""
    full = _absolute(path)
    if not full.exists():
        raise wrong(argument, path, "no such file or folder")
    if not os.access(full, ENTER if full.is_dir() else READ):
        raise wrong(argument, path, "cannot be read (permission denied)")
    return full


def _creatable(full: Path, argument: str, path: str | os.PathLike[str]) -> None:
    """Raise unless ``full`` (which does not exist) could be created with its parents."""
    ancestor = full.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise wrong(argument, path, f"cannot be created: {ancestor} is a file")
    if not os.access(ancestor, WRITE_IN):
        raise wrong(argument, path, f"cannot be created: no permission to write in {ancestor}")


def output_folder(path: str | os.PathLike[str], argument: str) -> Path:
    """A folder to write into: an existing writable folder, or one that can be created."""
    full = _absolute(path)
    if full.exists():
        if not full.is_dir():
            raise wrong(argument, path, "is a file, expected a folder")
        if not os.access(full, WRITE_IN):
            raise wrong(argument, path, "cannot be written (permission denied)")
    else:
        _creatable(full, argument, path)
    return full


def output_file(path: str | os.PathLike[str], argument: str) -> Path:
    """A file to write: an existing writable file, or one that can be created."""
    full = _absolute(path)
    if full.is_dir():
        raise wrong(argument, path, "is a folder, expected a file")
    if full.exists():
        if not os.access(full, os.W_OK):
            raise wrong(argument, path, "cannot be written (permission denied)")
    else:
        _creatable(full, argument, path)
    return full


def mnist_source(path: str | os.PathLike[str] | None, argument: str = "--mnist") -> Path | None:
    """A MNIST source (None stays None): a Keras ``mnist.npz``, or a folder holding the IDX
    files or an ``mnist.npz``. Only its shape is checked here; its digits when it is read.
    Without a path, ``$HW4_MNIST_DIR`` is checked when it is set (and None returned)."""
    if path is None:
        from grader.mnist.data import ENV_VAR

        if os.environ.get(ENV_VAR):
            mnist_source(os.environ[ENV_VAR], f"${ENV_VAR}")
        return None
    full = input_path(path, argument)
    if full.is_dir():
        from grader.mnist.data import holds_mnist

        if not holds_mnist(full):
            raise wrong(argument, path, "holds neither the MNIST IDX files nor mnist.npz")
        return full
    if not zipfile.is_zipfile(full):
        raise wrong(argument, path, "not a Keras mnist.npz (nor a folder of the IDX files)")
    return full


def rubric_file(path: str | os.PathLike[str] | None, argument: str = "--rubric") -> Rubric:
    """The rubric a command is given, loaded and validated (None: the shipped rubric)."""
    from grader.rubric import load_rubric

    if path is None:
        return load_rubric(None)
    full = input_file(path, argument)
    try:
        return load_rubric(full)
    except RubricError as error:
        raise UsageError(f"{argument} {error}") from None


def graded_folder(path: str | os.PathLike[str], command: str) -> list[SubmissionResult]:
    """The results an ``OUT`` folder of ``hw4grade grade`` holds (the unreadable ones said on
    stderr, for ``command``); UsageError when it holds none."""
    import sys

    from grader.report import store

    problems: list[str] = []
    results = store.read_results(_absolute(path), problems=problems)
    for problem in problems:
        print(f"hw4grade {command}: {problem}", file=sys.stderr)
    if not results:
        raise wrong("OUT", path, f"no results in {Path(path) / store.RESULTS_DIR} (run hw4grade "
                                 "grade with --out there first)")
    return results
