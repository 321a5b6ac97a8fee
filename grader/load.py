"""Load a submitted notebook and check that it can be graded at all.

Anything that is not a usable notebook (not JSON, not a notebook, a wrong nbformat, no
code) raises ``SubmissionError`` with a message for the result: the submission scores 0
and a batch goes on with the next one.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 100 * 2**20


class SubmissionError(ValueError):
    """The submission is not a notebook the grader can run; the message says why."""


@dataclass
class Submission:
    """A notebook ready to execute."""

    path: Path
    notebook: nbformat.NotebookNode
    sha256: str


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_notebook(raw: bytes, where: str) -> nbformat.NotebookNode:
    """Parse notebook bytes, raising SubmissionError with a plain explanation."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise SubmissionError(f"{where}: not a text file (is it a .ipynb notebook?)") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"{where}: not valid JSON at line {error.lineno}, column {error.colno} "
            "(the file may be truncated or edited by hand)") from None
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


def load_submission(path: str | Path) -> Submission:
    """Read and validate one submission."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise SubmissionError(f"{path}: {size / 2**20:.0f} MiB is too large for a notebook")
        raw = path.read_bytes()
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if not raw.strip():
        raise SubmissionError(f"{path}: the file is empty")
    notebook = parse_notebook(raw, str(path))
    if not any(cell.get("cell_type") == "code" and cell.get("source", "").strip()
               for cell in notebook.cells):
        raise SubmissionError(f"{path}: the notebook has no code to run")
    return Submission(path=path, notebook=notebook, sha256=hashlib.sha256(raw).hexdigest())


def find_notebooks(paths: list[str | Path]) -> dict[Path, str]:
    """Notebooks named, or found (recursively, sorted, no checkpoints) in the folders named.

    Returns each notebook's path with its label: the path relative to the folder it was
    found in (``alice/HW4.ipynb``), or the file name for a notebook named directly.
    """
    found: dict[Path, str] = {}
    for entry in map(Path, paths):
        if entry.is_dir():
            for path in sorted(entry.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in path.parts:
                    found.setdefault(path, path.relative_to(entry).as_posix())
        else:
            found.setdefault(entry, entry.name)
    return found
