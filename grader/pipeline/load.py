"""Load a submitted notebook and check that it can be graded at all.

Anything that is not a usable notebook (not JSON, not a notebook, a wrong nbformat, no
code) raises ``SubmissionError`` with a message for the result: the submission scores 0
and a batch goes on with the next one. So does anything that is not a regular file inside
the folder named on the command line (a symlink leading out of it, a device, a FIFO, a
socket: refused from ``lstat``/``stat`` without being opened), a file over the size limit
and JSON nested deeper than any notebook is.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nbformat

from grader.exceptions import SubmissionError
from grader.untrusted import clean_path, path_digest

MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_JSON_DEPTH = 64  # a notebook's JSON is about 6 deep; rich outputs add a few levels


@dataclass
class Submission:
    """A notebook ready to execute."""

    path: Path
    notebook: nbformat.NotebookNode
    sha256: str


def _open_regular(path: Path, follow_symlinks: bool = True) -> int:
    """A read-only descriptor of ``path`` if it is a regular file (OSError otherwise).

    A FIFO or device is never opened for reading: the descriptor is opened non-blocking
    and checked with ``fstat`` before anything is read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    descriptor = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(0, "not a regular file", str(path))
    return descriptor


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file's bytes (OSError for anything else)."""
    digest = hashlib.sha256()
    with open(_open_regular(path), "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_exchanged(path: str | Path) -> BinaryIO:
    """A file a kernel wrote into a folder it shares with the grader, opened for reading:
    only a regular file, never through a symlink (which the kernel could point anywhere)."""
    return open(_open_regular(Path(path), follow_symlinks=False), "rb")


def read_exchanged(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a file a kernel wrote (see :func:`open_exchanged`); ValueError when it
    holds more than ``limit`` bytes, of which no more than that are read."""
    with open_exchanged(path) as stream:
        data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ValueError(f"{path}: more than {limit} bytes")
    return data


def check_file(path: Path, folder: Path | None = None) -> None:
    """Raise SubmissionError unless ``path`` is a regular file inside ``folder`` (when given),
    without opening it."""
    try:
        link = path.lstat()
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if stat.S_ISLNK(link.st_mode) and folder is not None:
        target, inside = os.path.realpath(path), os.path.realpath(folder)
        if os.path.commonpath([target, inside]) != inside:
            raise SubmissionError(f"{path}: a symbolic link to {target}, outside {folder}; "
                                  "submit the notebook itself")
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise SubmissionError(f"{path}: {kind}, not a notebook file")


def json_depth(data) -> int:
    """How deeply lists and dicts nest in parsed JSON (iteratively: no recursion limit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return deepest


def parse_notebook(raw: bytes, where: str) -> nbformat.NotebookNode:
    """Parse notebook bytes, raising SubmissionError with a plain explanation."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise SubmissionError(f"{where}: the JSON is nested too deeply to be a notebook") \
            from None
    except UnicodeDecodeError:
        raise SubmissionError(f"{where}: not a text file (is it a .ipynb notebook?)") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"{where}: not valid JSON at line {error.lineno}, column {error.colno} "
            "(the file may be truncated or edited by hand)") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise SubmissionError(f"{where}: the JSON is nested more than {MAX_JSON_DEPTH} levels "
                              "deep, which no notebook is")
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise SubmissionError(f"{where}: JSON, but not a Jupyter notebook (no 'cells')")
    major = data.get("nbformat")
    if major != 4:
        raise SubmissionError(
            f"{where}: notebook format {major!r} is not supported; save it from a current "
            "Jupyter (format 4)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            notebook = nbformat.reads(json.dumps(data), as_version=4)  # joins line lists
            _, repaired = nbformat.validator.normalize(notebook, strip_invalid_metadata=True)
            notebook = nbformat.from_dict(repaired)
            nbformat.validate(notebook)
        except nbformat.ValidationError as error:
            first_line = str(error).strip().splitlines()[0]
            raise SubmissionError(f"{where}: not a valid notebook ({first_line})") from None
    return notebook


def read_submission(path: str | Path, folder: str | Path | None = None) -> bytes:
    """A submission's bytes, read only when it is a regular file (inside ``folder``, when
    given) of at most ``MAX_NOTEBOOK_BYTES``; SubmissionError otherwise."""
    path = Path(path)
    check_file(path, Path(folder) if folder is not None else None)
    try:
        with open(_open_regular(path), "rb") as stream:
            raw = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"{path}: more than {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB, too "
                              "large for a notebook")
    return raw


def load_submission(path: str | Path, folder: str | Path | None = None) -> Submission:
    """Read and validate one submission: a regular file (inside ``folder``, when given)."""
    path = Path(path)
    raw = read_submission(path, folder)
    if not raw.strip():
        raise SubmissionError(f"{path}: the file is empty")
    notebook = parse_notebook(raw, str(path))
    if not any(cell.get("cell_type") == "code" and cell.get("source", "").strip()
               for cell in notebook.cells):
        raise SubmissionError(f"{path}: the notebook has no code to run")
    return Submission(path=path, notebook=notebook, sha256=hashlib.sha256(raw).hexdigest())


def find_notebooks(paths: list[str | Path]) -> dict[Path, str]:
    """Notebooks named, or found (recursively, sorted, no checkpoints) in the folders named.

    Returns each notebook's path (as the file system spells it, for opening) with its
    label, the name every report shows: the path relative to the folder it was found in
    (``alice/HW4.ipynb``), or the file name for a notebook named directly, made safe by
    ``submission_label``.
    """
    found: dict[Path, str] = {}
    for entry in map(Path, paths):
        if entry.is_dir():
            for path in sorted(entry.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in path.parts:
                    found.setdefault(path, path.relative_to(entry).as_posix())
        else:
            found.setdefault(entry, entry.name)
    labels: dict[Path, str] = {}
    taken: set[str] = set()
    for path, relative in found.items():
        labels[path] = submission_label(relative, taken)
        taken.add(labels[path])
    return labels


def submission_label(relative: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The name reports show for a submission found at ``relative`` (``/``-separated).

    ``clean_path`` of it: unchanged when it is already a safe name, otherwise cleaned
    (a folder name that is not UTF-8 is shown with ``\\xNN`` escapes) and marked with a
    digest of the original, so it is the same on every run. A label already ``taken`` by
    another path of the batch gets the digest as well, so two submissions never share one.
    The number of ``/``-separated parts is the original's (``named_folder`` relies on it).
    """
    label = clean_path(relative)
    return label + path_digest(relative) if label in taken else label


def named_folder(path: Path, label: str) -> Path:
    """The folder named on the command line that ``path`` was found in (from its label,
    which is the path relative to that folder)."""
    depth = len(Path(label).parts)
    return Path(*path.parts[:-depth]) if 0 < depth < len(path.parts) else path.parent

