"""The output folder's files: where each report goes, and how it is written.

``OUT/results/<name>.json`` holds each result itself (``write_result_json``, read back by
``read_results``); ``OUT/feedback/`` holds the feedback pages. ``<name>`` is
``submission_name`` of the submission's path, never the path itself. Every file is written
atomically (``atomic_write_text``): a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from grader.result import SubmissionResult

RESULTS_DIR = "results"
FEEDBACK_DIR = "feedback"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120


class ResultFileWarning(UserWarning):
    """A file in ``results/`` could not be read back as a result and was skipped."""


def submission_name(path: str | os.PathLike[str]) -> str:
    """A safe, readable and stable file stem for a submission path.

    ``alice/HW4.ipynb`` becomes ``alice__HW4``: the folders joined by ``__``, the
    ``.ipynb`` suffix dropped. When that spelling could be shared by another path
    (characters replaced, ``__`` inside a name, absolute or Windows paths, another
    suffix, a very long path), ``~`` and 8 hex digits of the path's SHA-256 are
    appended; ``~`` never occurs otherwise, so two different paths never share a name.
    """
    text = os.fspath(path)
    parts = [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]
    is_notebook = bool(parts) and parts[-1].endswith(".ipynb") and parts[-1] != ".ipynb"
    if is_notebook:
        parts[-1] = parts[-1][: -len(".ipynb")]
    cleaned = [_UNSAFE.sub("_", part).strip("._-") or "_" for part in parts]
    stem = "__".join(cleaned) or "submission"
    lossless = (
        is_notebook
        and "\\" not in text
        and not text.startswith("/")
        and cleaned == parts  # nothing replaced or stripped
        and not any("__" in part for part in parts)  # so '__' only ever separates folders
        and len(stem) <= _MAX_STEM
    )
    if lossless:
        return stem
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem[-(_MAX_STEM - 9):].lstrip('_.-') or 'submission'}~{digest}"


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part.

    The text goes to a temporary file of the same folder (created with the folder if need
    be), is synced, made readable by all (``0644``) and renamed over ``path``; on any
    failure the temporary file is removed and ``path`` is left as it was. Returns ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return path


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """``rows`` as CSV text, ``\\n`` after every row (the gradebook's and the manual files')."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_result_json(result: SubmissionResult, out_dir: str | Path) -> Path:
    """Write ``OUT/results/<name>.json`` atomically and return its path."""
    path = Path(out_dir) / RESULTS_DIR / f"{submission_name(result.submission)}.json"
    result = replace(result)
    result.total()  # the stored totals are the score rule's, whatever the caller did
    return atomic_write_text(path, result.to_json() + "\n")


def read_results(out_dir: str | Path, problems: list[str] | None = None) -> list[SubmissionResult]:
    """Read every ``OUT/results/*.json`` back, in file-name order.

    A file that is not a valid result is skipped; its problem is appended to ``problems``
    when a list is given, otherwise reported with a ``ResultFileWarning``.
    """
    results: list[SubmissionResult] = []
    for path in sorted((Path(out_dir) / RESULTS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("the file holds no JSON object")
            results.append(SubmissionResult.from_dict(data))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as error:
            message = f"{path}: skipped, not a readable result ({error})"
            if problems is not None:
                problems.append(message)
            else:
                warnings.warn(message, ResultFileWarning, stacklevel=2)
    return results


def remove_result(out_dir: str | Path, submission: str) -> None:
    """Remove a submission's result file and feedback pages, where they exist."""
    name = submission_name(submission)
    for path in (Path(out_dir) / RESULTS_DIR / f"{name}.json",
                 Path(out_dir) / FEEDBACK_DIR / f"{name}.html",
                 Path(out_dir) / FEEDBACK_DIR / f"{name}.md"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
