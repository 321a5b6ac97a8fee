"""What several reports show alike: which items and cells, under which labels.

Totals follow the one score rule of ``grader.result`` (``SubmissionResult.total`` and
``score_text``): every report prints the same numbers in the same words. Items graded by
hand are pending (status ``manual``) until merged (status ``hand_graded``); they count
towards no autograded total.

Everything that comes from a submission (messages, error text, warnings, even its path)
is treated as hostile: escaped in HTML and Markdown, stripped of control characters in
the terminal (``one_line``), and never used as a file name without being sanitised.
"""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import dataclass, replace

from grader.result import (
    CellResult,
    CellStatus,
    ConvergenceDetail,
    ItemResult,
    ItemStatus,
    SampledBy,
    SubmissionResult,
    format_points,
)

PENDING = "pending (graded by hand)"
FLAGGED = "flagged for review"
FLAG_TITLE = "Flagged for review"
FLAG_NOTE = ("The grader records what it saw while checking this item; a flagged item earns "
             "no points, and your instructor reviews every flag.")
SAMPLED_BY_WORDS = {
    SampledBy.GRADER: "Samples drawn by the grader from your trained weights.",
    SampledBy.KERNEL: "Samples drawn in your kernel: your generator is not the specified "
                      "architecture.",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUDGET_TITLE = "Training cells stopped by the grader's step budget"
BUDGET_NOTE = ("The grader stops the notebook's own training after a fixed number of steps "
               "so that grading stays short. This is expected, not an error, and costs no "
               "points: cell(s) {cells}.")


# --------------------------------------------------------------------------- text


def one_line(text: str | None, limit: int = 200) -> str:
    """``text`` on one line, control characters removed, cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(char)[0] == "C" else char for char in (text or "")
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


# --------------------------------------------------------------------------- items


def graded_items(result: SubmissionResult) -> list[ItemResult]:
    """The autograded items (every item not graded by hand)."""
    return [item for item in result.items if not item.by_hand]


def shown_items(result: SubmissionResult) -> list[ItemResult]:
    """The items as pages show them: when the notebook could not be graded, every
    autograded item is an error worth 0, whatever partial points it may carry (the items
    graded by hand and those this run skips, worth 0 of 0, are shown as they are)."""
    if result.error is None:
        return list(result.items)
    return [
        item if item.by_hand or item.status == ItemStatus.SKIPPED
        else replace(item, points=0.0, status=ItemStatus.ERROR, message="")
        for item in result.items
    ]


def full_marks(item: ItemResult) -> bool:
    """True when the item has all its points."""
    return item.points >= item.max_points


def status_label(item: ItemResult) -> str:
    """An item's status in words: ``PENDING``, ``graded by hand`` or the status itself,
    followed by ``, flagged for review`` when the item has integrity flags."""
    if item.pending:
        label = PENDING
    else:
        label = "graded by hand" if item.status == ItemStatus.HAND_GRADED else item.status
    return f"{label}, {FLAGGED}" if item.flags else label


def flag_lines(item: ItemResult) -> list[str]:
    """``Flagged for review: <flag>`` for each of the item's integrity flags."""
    return [f"{FLAG_TITLE}: {flag}" for flag in item.flags]


def _whole(value: object) -> int | None:
    """A detail that is a whole number of steps (not a flag, not negative), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def convergence_notes(item: ItemResult) -> list[str]:
    """How a convergence item was judged, from its details: the training step at which the
    verdict was settled (of the run's budget, when known) and who drew the samples."""
    details = item.details if isinstance(item.details, dict) else {}
    notes = []
    checkpoint = _whole(details.get(ConvergenceDetail.CHECKPOINT))
    if checkpoint is not None:
        budget = _whole(details.get(ConvergenceDetail.STEPS_BUDGET))
        of = f" of {budget}" if budget is not None else ""
        notes.append(f"Judged at training step {checkpoint}{of}.")
    sampled_by = details.get(ConvergenceDetail.SAMPLED_BY)
    if isinstance(sampled_by, str) and sampled_by in SAMPLED_BY_WORDS:
        notes.append(SAMPLED_BY_WORDS[sampled_by])
    return notes


def item_text(item: ItemResult) -> str:
    """An item's message followed by its flags and how it was judged, as one text (the
    output of a Gradescope test, the message of a Classroom test)."""
    return "\n".join(part for part in (item.message, *flag_lines(item),
                                        *convergence_notes(item)) if part)


def points_label(item: ItemResult, pending: str = "\u2013") -> str:
    """``points / max``, with ``pending`` in place of the points of a pending item."""
    points = pending if item.pending else format_points(item.points)
    return f"{points} / {format_points(item.max_points)}"


def item_images(item: ItemResult) -> list[tuple[str, str | None]]:
    """``(caption, base64 PNG)`` pairs from ``item.details['images']``.

    The data is decoded and re-encoded, so only base64 characters reach a page; data
    that is not a PNG gives ``None`` in place of the image.
    """
    images = item.details.get("images") if isinstance(item.details, dict) else None
    if not isinstance(images, dict):
        return []
    pairs: list[tuple[str, str | None]] = []
    for caption, data in images.items():
        try:
            raw = base64.b64decode(str(data), validate=True)
        except ValueError:
            raw = b""
        clean = base64.b64encode(raw).decode("ascii") if raw.startswith(PNG_SIGNATURE) else None
        pairs.append((str(caption), clean))
    return pairs


def detail_items(result: SubmissionResult) -> list[ItemResult]:
    """Items that get their own section: graded but not at full marks, flagged, or with
    images or notes on how they were judged."""
    if result.error is not None:
        return []  # the error says it all
    return [
        item
        for item in graded_items(result)
        if not full_marks(item) or item.status in (ItemStatus.FAILED, ItemStatus.ERROR)
        or item_images(item) or item.flags or convergence_notes(item)
    ]


# --------------------------------------------------------------------------- cells


def cell_number(cell: CellResult) -> int:
    """A cell as the pages and ``runs_clean`` number it: counted from 1, every cell of the
    notebook included."""
    return cell.index + 1


def failed_cells(result: SubmissionResult) -> list[CellResult]:
    """Cells that failed; cells skipped after a failure and cells stopped by the training
    budget are shown apart."""
    return [cell for cell in result.cells
            if cell.status not in (CellStatus.OK, CellStatus.SKIPPED, CellStatus.BUDGET)]


def budget_cells(result: SubmissionResult) -> list[CellResult]:
    """Cells the grader's training budget stopped, as planned (not the student's error)."""
    return [cell for cell in result.cells if cell.status == CellStatus.BUDGET]


def budget_note(cells: list[CellResult]) -> str:
    """``BUDGET_NOTE`` naming these cells (the pages' explanation of a budget stop)."""
    return BUDGET_NOTE.format(cells=", ".join(str(cell_number(cell)) for cell in cells))


def skipped_cells(result: SubmissionResult) -> int:
    """How many cells were not run (skipped after a failure)."""
    return sum(cell.status == CellStatus.SKIPPED for cell in result.cells)


# --------------------------------------------------------------------------- summaries


def summary_lines(result: SubmissionResult, with_error: bool = True) -> list[str]:
    """The parts of the text report that follow the items: cells, warnings, error."""
    lines = []
    for cell in failed_cells(result):
        detail = " ".join(filter(None, [cell.error_name, cell.error_message]))
        lines.append(f"cell {cell_number(cell)}: {one_line(cell.status)} {one_line(detail, 100)}")
    if budget_cells(result):
        cells = ", ".join(str(cell_number(cell)) for cell in budget_cells(result))
        lines.append(f"cell(s) {cells}: training stopped by the grader's step budget "
                     "(expected, no points lost)")
    if skipped_cells(result):
        lines.append(f"{skipped_cells(result)} later cell(s) were not run")
    lines += [f"warning: {one_line(warning)}" for warning in result.warnings]
    if with_error and result.error is not None:
        lines.append(f"ERROR (not graded): {one_line(result.error, 300)}")
    return lines


def footer_fields(result: SubmissionResult) -> list[tuple[str, str]]:
    """``(name, value)`` pairs saying how the result was made: grader, mode, seed, device,
    profile, the start of the rubric's and notebook's SHA-256, and how the kernel's resource
    bounds were held (when recorded)."""
    bounds = [("bounds", result.enforcement_text())] if result.enforcement else []
    return [
        ("grader", result.grader_version),
        ("mode", result.mode),
        ("seed", str(result.seed)),
        ("device", result.device),
        ("profile", result.profile),
        ("rubric", result.rubric_sha256[:12]),
        ("notebook", (result.notebook_sha256 or "unreadable")[:12]),
        *provenance_fields(result),
        *bounds,
    ]


def provenance_fields(result: SubmissionResult) -> list[tuple[str, str]]:
    """``(name, value)`` pairs saying what was collected (``hw4grade collect``): the
    repository, the commit and its committer date; none for a submission not collected."""
    source = result.provenance
    if source is None:
        return []
    fields = [("repository", source.repository)]
    if source.commit:
        fields += [("commit", source.commit[:12]), ("committed", source.commit_date or "")]
    return fields


def collection_flags(result: SubmissionResult) -> list[str]:
    """What ``hw4grade collect`` flagged about the submission (dates, links, submodules)."""
    return list(result.provenance.flags) if result.provenance else []


def execution_seconds(result: SubmissionResult) -> int:
    """``timing['total']`` when recorded, else the sum of the timings (or of the cells)."""
    if "total" in result.timing:
        seconds = result.timing["total"]
    else:
        seconds = sum(result.timing.values()) or sum(cell.seconds for cell in result.cells)
    return int(round(seconds))


# --------------------------------------------------------------------------- pages


@dataclass
class ItemView:
    """An item as the feedback pages show it (plain text: the page's engine escapes it)."""

    id: str
    points: str
    status: str
    label: str
    message: str
    images: list[tuple[str, str | None]]
    flags: list[str]  # integrity flags, each shown as FLAG_TITLE: flag
    notes: list[str]  # how a convergence item was judged (convergence_notes)


@dataclass
class CellView:
    """A failed cell as the feedback pages show it."""

    number: int
    status: str
    error_name: str
    error_message: str


@dataclass
class FeedbackPage:
    """Everything a feedback page shows, in the order it shows it (see ``feedback_page``)."""

    submission: str
    error: str | None
    total: str
    items: list[ItemView]
    details: list[ItemView]
    failed: list[CellView]
    budget_title: str
    budget_note: str
    flag_title: str
    flag_note: str
    skipped: int
    warnings: list[str]
    footer: list[tuple[str, str]]


def _item_view(item: ItemResult) -> ItemView:
    return ItemView(item.id, points_label(item), item.status, status_label(item),
                    item.message if item.message.strip() else "", item_images(item),
                    list(item.flags), convergence_notes(item))


def feedback_page(result: SubmissionResult) -> FeedbackPage:
    """What the student's feedback pages (HTML and Markdown) show of ``result``: the
    total, the items, details of those below full marks or flagged for review (with how
    a convergence item was judged), failed and cut-off cells,
    warnings (with what ``hw4grade collect`` flagged) and how the result was made."""
    budget = budget_cells(result)
    return FeedbackPage(
        submission=result.submission, error=result.error, total=result.score_text(),
        items=[_item_view(item) for item in shown_items(result)],
        details=[_item_view(item) for item in detail_items(result)],
        failed=[CellView(cell_number(cell), cell.status, cell.error_name or "",
                         cell.error_message or "") for cell in failed_cells(result)],
        budget_title=BUDGET_TITLE, budget_note=budget_note(budget) if budget else "",
        flag_title=FLAG_TITLE, flag_note=FLAG_NOTE, skipped=skipped_cells(result),
        warnings=[*result.warnings,
                  *(f"collection: {flag}" for flag in collection_flags(result))],
        footer=footer_fields(result))
