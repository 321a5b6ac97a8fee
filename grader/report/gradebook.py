"""The gradebook CSV: a row per submission, a column per rubric item.

Totals are the score rule's (``SubmissionResult.totals``); items graded by hand stay empty
until their scores are merged (see ``grader.report.manual``). Points are written as numbers;
every text cell is neutralised by ``grader.report.store.csv_text`` (no formula). The
``integrity`` column holds what the grader flagged for review (``integrity_cell``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from grader.report.common import one_line
from grader.report.store import atomic_write_text, csv_text
from grader.result import ItemResult, ItemStatus, SubmissionResult, clean_result
from grader.rubric import Rubric

INTEGRITY_COLUMN = "integrity"
INFO_COLUMNS = ("status", "error", INTEGRITY_COLUMN, "seed", "mode", "profile",
                "notebook_sha256")
FLAG_SEPARATOR = " | "
INTEGRITY_LIMIT = 8000  # characters of the integrity cell (10 flags per item at most)
# where a collected submission came from (hw4grade collect); empty otherwise
PROVENANCE_COLUMNS = ("student", "repository", "commit", "commit_date", "collect_flags")
TOTAL_COLUMNS = ("score", "max_score", "pending_max")


def _gradebook_cell(item: ItemResult | None, result: SubmissionResult) -> str | float:
    """An item's points as the gradebook shows them: empty when pending, skipped or not
    graded at all."""
    if item is None or item.pending or item.status == ItemStatus.SKIPPED:
        return ""
    if result.error is not None and not item.by_hand:
        return ""
    return item.points


def _gradebook_row(result: SubmissionResult, rubric: Rubric) -> list[str | float]:
    result = clean_result(result)
    by_id = {item.id: item for item in result.items}
    values = [_gradebook_cell(by_id.get(rubric_item.id), result) for rubric_item in rubric.items]
    error = one_line(result.error) if result.error is not None else ""
    pending = [by_id[it.id].pending for it in rubric.items if it.manual and it.id in by_id]
    status = "error" if result.error is not None else "pending" if any(pending) else "graded"
    return [
        result.submission,
        *result.totals(),
        *values,
        status,
        error,
        integrity_cell(result),
        result.seed,
        result.mode,
        result.profile,
        result.notebook_sha256 or "",
        *provenance_cells(result),
    ]


def integrity_cell(result: SubmissionResult) -> str:
    """The ``integrity`` cell: empty for a clean result, else every ``"<item id>: <flag>"``
    of ``SubmissionResult.integrity``, each on one line, joined by ``FLAG_SEPARATOR``."""
    return one_line(FLAG_SEPARATOR.join(one_line(flag, INTEGRITY_LIMIT)
                                        for flag in result.integrity), INTEGRITY_LIMIT)


def provenance_cells(result: SubmissionResult) -> list[str]:
    """The ``PROVENANCE_COLUMNS`` of a result (empty when it was not collected from git)."""
    source = result.provenance
    if source is None:
        return [""] * len(PROVENANCE_COLUMNS)
    return [source.student, source.repository, source.commit or "", source.commit_date or "",
            one_line("; ".join(source.flags), 1000)]


def gradebook_columns(rubric: Rubric) -> list[str]:
    """The gradebook's header: submission, the totals (``score`` out of ``max_score``, with
    ``pending_max`` points still to grade by hand), one column per rubric item, then info."""
    return ["submission", *TOTAL_COLUMNS, *(item.id for item in rubric.items), *INFO_COLUMNS,
            *PROVENANCE_COLUMNS]


def write_gradebook(results: Iterable[SubmissionResult], path: str | Path, rubric: Rubric) -> Path:
    """Write the gradebook CSV (a row per submission) atomically and return its path.

    Item columns hold the points of graded items; they are empty for items graded by
    hand that are still pending and for every item of a submission that could not be
    graded (its error is in the ``error`` column). ``status`` is ``graded``, ``pending``
    (hand-graded items missing) or ``error``; ``integrity`` is empty unless something was
    flagged for review (``integrity_cell``).
    """
    rows = [gradebook_columns(rubric), *(_gradebook_row(result, rubric) for result in results)]
    return atomic_write_text(Path(path), csv_text(rows))
