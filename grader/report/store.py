"""The output folder's files: where each report goes, and how it is written.

``OUT/results/<name>.json`` holds each result itself (``write_result_json``, read back by
``read_results``); ``OUT/feedback/`` holds the feedback pages. ``<name>`` is
``submission_name`` of the submission's path, never the path itself. Every file is written
atomically (``atomic_write_text``): a reader sees the old file or the new one, never a part.

Every writer is total: each renders ``grader.result.clean_result`` of what it is given, and
``atomic_write_text`` writes valid UTF-8 whatever text it gets. Every CSV goes through
``csv_text``, which neutralises the cells a spreadsheet would evaluate; ``csv_value`` undoes
that when the grader reads its own CSV back.
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
from pathlib import Path

from grader.result import SubmissionResult, clean_result, format_points
from grader.untrusted import clean_text

RESULTS_DIR = "results"
FEEDBACK_DIR = "feedback"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 120
MAX_RESULT_BYTES = 64 * 2**20  # a larger file in results/ is no result of this grader
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet evaluates such a cell
TEXT_MARK = "'"  # put before such a cell (and before one starting with the mark itself)
CELL_LIMIT = 2**16


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
    text = path if isinstance(path, str) else os.fsdecode(path)
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
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{stem[-(_MAX_STEM - 9):].lstrip('_.-') or 'submission'}~{digest}"


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part.

    The text is encoded as UTF-8 whatever it holds (a lone surrogate is written as its
    ``\\udcff`` escape; writers clean their text before, so this is the last guard). It goes
    to a temporary file of the same folder (created with the folder if need be), is synced,
    made readable by all (``0644``) and renamed over ``path``; on any failure the temporary
    file is removed and ``path`` is left as it was. Returns ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8", "backslashreplace"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return path


def csv_cell(value: str | float) -> str:
    """One CSV cell as the grader writes it.

    A number is written as it is (points as ``format_points`` shows them), so it stays a
    number in a spreadsheet. Text is made safe by ``clean_text`` and, when it starts with a
    character a spreadsheet would evaluate (``FORMULA_STARTS``, OWASP's CSV injection rule)
    or with ``TEXT_MARK`` itself, gets ``TEXT_MARK`` in front.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return format_points(value)
    text = clean_text(value, CELL_LIMIT, keep=frozenset("\n\t"))
    return TEXT_MARK + text if text.startswith((*FORMULA_STARTS, TEXT_MARK)) else text


def csv_value(cell: str) -> str:
    """A cell of a CSV the grader wrote, as it was before ``csv_cell``: one leading
    ``TEXT_MARK`` removed."""
    return cell[len(TEXT_MARK):] if cell.startswith(TEXT_MARK) else cell


def csv_text(rows: Iterable[Sequence[str | float]]) -> str:
    """``rows`` as CSV text, each cell by ``csv_cell``, ``\\n`` after every row (the
    gradebook's and the manual files'). Every grader's CSV is written by this function."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [csv_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def write_result_json(result: SubmissionResult, out_dir: str | Path) -> Path:
    """Write ``OUT/results/<name>.json`` atomically and return its path."""
    result = clean_result(result)  # the stored totals are the score rule's, the text safe
    path = Path(out_dir) / RESULTS_DIR / f"{submission_name(result.submission)}.json"
    return atomic_write_text(path, result.to_json() + "\n")


def read_results(out_dir: str | Path, problems: list[str] | None = None) -> list[SubmissionResult]:
    """Read every ``OUT/results/*.json`` back, in file-name order.

    A file that is not a valid result (unreadable, not JSON, a field of the wrong type,
    damaged or edited by hand: whatever it holds; or not named as ``write_result_json``
    names its result, such as a copy) is skipped, so that a resumed batch grades
    that submission again; its problem is appended to ``problems`` when a list is given,
    otherwise reported with a ``ResultFileWarning``.
    """
    results: list[SubmissionResult] = []
    for path in sorted((Path(out_dir) / RESULTS_DIR).glob("*.json")):
        try:
            results.append(_read_result(path))
        except Exception as error:  # noqa: BLE001 - any damage means: grade it again
            reason = clean_text(f"{type(error).__name__}: {error}", 300)
            message = f"{path}: skipped, not a readable result ({reason})"
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


def _read_result(path: Path) -> SubmissionResult:
    with open(path, "rb") as stream:
        raw = stream.read(MAX_RESULT_BYTES + 1)
    if len(raw) > MAX_RESULT_BYTES:
        raise ValueError(f"larger than {MAX_RESULT_BYTES // 2**20} MiB")
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise TypeError("the file holds no JSON object")
    result = SubmissionResult.from_dict(data)
    expected = submission_name(clean_result(result).submission)
    if path.stem != expected:  # a copy, or a file of another grader: the rows would repeat
        raise ValueError(f"it holds the result of another name; expected {expected}.json")
    return result
