"""The result model: one ``SubmissionResult`` per graded notebook.

Every report (JSON, gradebook CSV, feedback pages, Gradescope, GitHub Classroom, the
terminal) is a rendering of this object, so they can never disagree. Plain dataclasses,
JSON both ways.

The score rule, in one place (``SubmissionResult.total`` and ``score_text``):

* the *autograded* score is the sum of the autograded items' points (0 when the notebook
  could not be graded at all), out of the sum of their maxima. Items this run does not
  grade (the convergence items in ``--mode quick``) are ``skipped`` with a maximum of 0,
  so they are part of no maximum anywhere;
* hand-graded items are *pending* (status ``manual``) until ``hw4grade gradebook
  --manual`` merges their points (status ``hand_graded``);
* ``score`` is the autograded score plus the merged hand-graded points, out of
  ``max_score``, the maximum of everything graded so far; ``pending_max`` is what is still
  to be graded by hand. ``score_text`` says all of it in the words every report uses.

Integrity flags: an item's ``flags`` are what the grader saw that an instructor should
review (each a sentence, e.g. that a model's samples copy training digits). A flagged item
has earned 0; the code that grades it sees to that, the reports only show the flags
(``SubmissionResult.integrity``: the gradebook's ``integrity`` column, the feedback pages,
the class page, the end of ``hw4grade grade``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.untrusted import (
    KEPT_IN_MESSAGES,
    NAME_LIMIT,
    OUTPUT_LIMIT,
    clean_name,
    clean_path,
    clean_text,
)


class ItemStatus:
    """How a rubric item was graded (``ItemResult.status``), as written in the JSON."""

    PASSED = "passed"  # all its points
    FAILED = "failed"  # fewer than all its points
    ERROR = "error"  # the student's code raised, or the item could not be graded
    SKIPPED = "skipped"  # not graded by this run (worth 0, counted in no maximum)
    MANUAL = "manual"  # graded by hand, pending
    HAND_GRADED = "hand_graded"  # graded by hand, merged by ``hw4grade gradebook --manual``


class CellStatus:
    """What happened to one code cell (``CellResult.status``), as written in the JSON."""

    OK = "ok"
    ERROR = "error"  # the cell raised
    TIMEOUT = "timeout"  # it passed its time limit (or the notebook's)
    MEMORY = "memory"  # its kernel passed the memory limit
    DIED = "died"  # its kernel died (or passed the process or disk limit)
    BUDGET = "budget"  # the grader's training budget stopped it, as planned
    SKIPPED = "skipped"  # not run: the notebook's time limit had run out


STATUSES = (ItemStatus.PASSED, ItemStatus.FAILED, ItemStatus.ERROR, ItemStatus.SKIPPED,
            ItemStatus.MANUAL, ItemStatus.HAND_GRADED)
# pending, and merged by ``hw4grade gradebook``
HAND_STATUSES = (ItemStatus.MANUAL, ItemStatus.HAND_GRADED)
CELL_STATUSES = (CellStatus.OK, CellStatus.ERROR, CellStatus.TIMEOUT, CellStatus.MEMORY,
                 CellStatus.DIED, CellStatus.BUDGET, CellStatus.SKIPPED)
# A kernel's resource bounds (grader/pipeline/limits.py) and how each was held: by the
# kernel (a cgroup, a size-capped tmpfs) or only watched by the grader.
BOUNDS = ("memory", "tasks", "disk")
HELD_BY_KERNEL, WATCHED = "kernel", "watched"
CGROUP_KEY = "cgroup"  # the enforcement record's entry naming the cgroup version: v1, v2, none


class ConvergenceDetail:
    """Keys of a convergence item's ``details`` that the reports explain to the student."""

    CHECKPOINT = "checkpoint"  # int: the training step at which the verdict was settled
    STEPS_BUDGET = "steps_budget"  # int: the training steps the run had at most
    SAMPLED_BY = "sampled_by"  # one of SampledBy: who drew the judged samples


class SampledBy:
    """Who drew the samples a convergence item was judged on."""

    GRADER = "grader"  # the grader, from the trained weights, with the specified generator
    KERNEL = "kernel"  # the student's kernel: the generator is not the specified architecture
    ALL = (GRADER, KERNEL)


@dataclass
class ItemResult:
    """The grade of one rubric item."""

    id: str
    points: float
    max_points: float
    status: str  # one of STATUSES
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # integrity findings for the instructor to review, each a sentence of what was seen;
    # a flagged item has earned 0
    flags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown item status {self.status!r}")

    @property
    def by_hand(self) -> bool:
        """True for an item graded by hand (pending or merged), not by the grader."""
        return self.status in HAND_STATUSES

    @property
    def pending(self) -> bool:
        """True for a hand-graded item whose points have not been merged yet."""
        return self.status == ItemStatus.MANUAL


@dataclass
class CellResult:
    """What happened to one code cell of the submission."""

    index: int
    status: str  # one of CELL_STATUSES
    seconds: float = 0.0
    error_name: str | None = None
    error_message: str | None = None
    output_truncated: bool = False

    @property
    def failed(self) -> bool:
        """True when the cell counts against ``runs_clean`` (a budget cut-off does not)."""
        return self.status not in (CellStatus.OK, CellStatus.BUDGET)


@dataclass
class Provenance:
    """Where a collected submission came from (``hw4grade collect``): who, which repository,
    which commit and its committer date, and how the collection ended (``status``, one of
    ``grader.collect.manifest.Status``, with its reason and any flag raised on the way)."""

    student: str
    repository: str
    status: str
    reason: str = ""
    commit: str | None = None
    commit_date: str | None = None  # ISO 8601, the committer date
    branch: str | None = None
    notebook: str | None = None  # its path in the repository
    sis_login_id: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class SubmissionResult:
    """Everything known about one graded submission."""

    submission: str
    notebook_sha256: str | None
    grader_version: str
    rubric_sha256: str
    mode: str
    seed: int
    device: str
    profile: str = ""  # the framework's label, e.g. "tf2", "tf1-2017" (grader.frameworks)
    score: float = 0.0  # autograded + merged hand-graded points (see the module docstring)
    max_score: float = 0.0  # the maximum of everything graded so far
    pending_max: float = 0.0  # points still to be graded by hand
    items: list[ItemResult] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # set when the notebook could not be graded at all
    warnings: list[str] = field(default_factory=list)
    retry: bool = False  # the grader, not the submission, failed: regrade on the next run
    sandbox: str = ""  # where the kernel ran: "bubblewrap", "user" (--sandbox-user), "none"
    provenance: Provenance | None = None  # set when the submission was collected from git
    # how each of BOUNDS was held (HELD_BY_KERNEL or WATCHED) and the cgroup version
    # (CGROUP_KEY); empty in results made before it was recorded
    enforcement: dict[str, str] = field(default_factory=dict)
    # for a folder or zip submission, the notebook graded and the student's module files,
    # as paths inside it (notebook first); empty for a notebook and in older results
    graded_files: list[str] = field(default_factory=list)

    @property
    def integrity(self) -> list[str]:
        """Every item's integrity flags as ``"<item id>: <flag>"``, in item order; empty
        when nothing was flagged."""
        return [f"{item.id}: {flag}" for item in self.items for flag in item.flags]

    def item(self, item_id: str) -> ItemResult:
        """The result of item ``item_id``."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def autograded_score(self) -> float:
        """The autograded items' points; 0 when the notebook could not be graded at all."""
        if self.error is not None:
            return 0.0
        return round(sum(item.points for item in self.items if not item.by_hand), 4)

    def autograded_max(self) -> float:
        """The autograded items' maximum (skipped items count 0)."""
        return round(sum(item.max_points for item in self.items if not item.by_hand), 4)

    def hand_graded_score(self) -> float:
        """The merged hand-graded points."""
        return round(sum(item.points for item in self.items
                         if item.status == ItemStatus.HAND_GRADED), 4)

    def hand_graded_max(self) -> float:
        """The maximum of the merged hand-graded items."""
        return round(sum(item.max_points for item in self.items
                         if item.status == ItemStatus.HAND_GRADED), 4)

    def totals(self) -> tuple[float, float, float]:
        """``(score, max_score, pending_max)`` computed from the items by the score rule."""
        return (round(self.autograded_score() + self.hand_graded_score(), 4),
                round(self.autograded_max() + self.hand_graded_max(), 4),
                round(sum(item.max_points for item in self.items if item.pending), 4))

    def total(self) -> None:
        """Recompute ``score``, ``max_score`` and ``pending_max`` from the items."""
        self.score, self.max_score, self.pending_max = self.totals()

    def score_text(self) -> str:
        """The total in the words every report uses, e.g. ``85 / 90 autograded; 30 more
        points pending (graded by hand)`` or ``110 / 120 (85 / 90 autograded + 25 / 30
        graded by hand)``."""
        auto = f"{format_points(self.autograded_score())} / " \
               f"{format_points(self.autograded_max())} autograded"
        score, max_score, pending_max = self.totals()
        if self.hand_graded_max():
            text = (f"{format_points(score)} / {format_points(max_score)} ({auto} + "
                    f"{format_points(self.hand_graded_score())} / "
                    f"{format_points(self.hand_graded_max())} graded by hand)")
        else:
            text = auto
        if pending_max:
            text += f"; {format_points(pending_max)} more points pending (graded by hand)"
        return text

    def enforcement_text(self) -> str:
        """How the bounds were held, in one line (empty when not recorded), e.g.
        ``memory, tasks, disk held by the kernel (cgroup v1)``."""
        if not self.enforcement:
            return ""
        held = [bound for bound in BOUNDS if self.enforcement.get(bound) == HELD_BY_KERNEL]
        watched = [bound for bound in BOUNDS if bound not in held]
        parts = [f"{', '.join(names)} {how}" for names, how in
                 ((held, "held by the kernel"), (watched, "only watched")) if names]
        kind = self.enforcement.get(CGROUP_KEY, "none")
        return "; ".join(parts) + (" (no cgroup)" if kind == "none" else f" (cgroup {kind})")

    def autograded_full_marks(self) -> bool:
        """True when every autograded item has all its points."""
        return self.error is None and all(
            item.points >= item.max_points for item in self.items
            if item.status != ItemStatus.MANUAL
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The result as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        """Rebuild a result from ``to_dict`` output.

        Every field is checked for its JSON type (a number finite, a list a list, ...);
        anything else, a file damaged or edited by hand, raises TypeError or ValueError.
        """
        data = _checked(data, RESULT_FIELDS, "result")
        data["items"] = [ItemResult(**_checked(item, ITEM_FIELDS, "item"))
                         for item in data.get("items", [])]
        data["cells"] = [CellResult(**_checked(cell, CELL_FIELDS, "cell"))
                         for cell in data.get("cells", [])]
        if data.get("provenance") is not None:  # absent from results written before it
            data["provenance"] = Provenance(**_checked(data["provenance"], PROVENANCE_FIELDS,
                                                       "provenance"))
        result = cls(**data)
        result.total()  # the score rule is applied, never read from the file
        return result


def format_points(value: float) -> str:
    """Points as short text: 5.0 -> '5', 2.5 -> '2.5', at most 4 decimals."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# --------------------------------------------------------------------------- reading back

# The JSON type of each field, as ``from_dict`` checks it.
ITEM_FIELDS = {"id": "text", "points": "number", "max_points": "number", "status": "text",
               "message": "text", "details": "mapping", "flags": "texts"}
CELL_FIELDS = {"index": "integer", "status": "text", "seconds": "number",
               "error_name": "optional text", "error_message": "optional text",
               "output_truncated": "flag"}
RESULT_FIELDS = {"submission": "text", "notebook_sha256": "optional text",
                 "grader_version": "text", "rubric_sha256": "text", "mode": "text",
                 "seed": "integer", "device": "text", "profile": "text", "score": "number",
                 "max_score": "number", "pending_max": "number", "items": "list",
                 "cells": "list", "timing": "numbers", "error": "optional text",
                 "warnings": "texts", "retry": "flag", "sandbox": "text",
                 "provenance": "optional mapping", "enforcement": "labels",
                 "graded_files": "texts"}
PROVENANCE_FIELDS = {"student": "text", "repository": "text", "status": "text", "reason": "text",
                     "commit": "optional text", "commit_date": "optional text",
                     "branch": "optional text", "notebook": "optional text",
                     "sis_login_id": "optional text", "flags": "texts"}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _of_kind(value: object, kind: str) -> bool:
    checks = {
        "text": lambda: isinstance(value, str),
        "optional text": lambda: value is None or isinstance(value, str),
        "number": lambda: _is_number(value),
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "flag": lambda: isinstance(value, bool),
        "list": lambda: isinstance(value, list),
        "mapping": lambda: isinstance(value, dict),
        "optional mapping": lambda: value is None or isinstance(value, dict),
        "labels": lambda: isinstance(value, dict) and all(
            isinstance(key, str) and isinstance(label, str) for key, label in value.items()),
        "numbers": lambda: isinstance(value, dict) and all(
            isinstance(key, str) and _is_number(number) for key, number in value.items()),
        "texts": lambda: isinstance(value, list) and all(isinstance(v, str) for v in value),
    }
    return checks[kind]()


def _checked(data: object, kinds: dict[str, str], what: str) -> dict[str, Any]:
    """A copy of ``data`` once each of its fields is of its kind; TypeError otherwise."""
    if not isinstance(data, dict):
        raise TypeError(f"a {what} is not a JSON object")
    for name, value in data.items():
        if name not in kinds:
            raise TypeError(f"a {what} has an unknown field {clean_name(name)!r}")
        if not _of_kind(value, kinds[name]):
            raise TypeError(f"a {what}'s field {name!r} is not {kinds[name]}")
    return dict(data)


# --------------------------------------------------------------------------- any result, safe

LABEL_LIMIT = 4 * NAME_LIMIT  # reports cut only what the grader's entry did not bound
TEXT_LIMIT = 4 * OUTPUT_LIMIT
DETAIL_TEXT_LIMIT = 8 * 2**20  # an image's base64 is kept whole
DETAIL_DEPTH = 32
CUT_NOTE_ROOM = 64  # what clean_text adds to a text it cuts
NUMBER_LIMIT = 1e12  # points and seconds; nothing graded comes near it
DETAIL_VALUES = 100_000  # values kept in one item's details
FLAG_LIMIT = 300  # characters of one integrity flag
FLAG_COUNT = 10  # integrity flags kept per item; the last one kept says how many more there were


def _number(value: object) -> float:
    """A float for any value: 0.0 unless it is a number within ``NUMBER_LIMIT`` (so that
    every sum of them is finite too)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except Exception:
        return 0.0
    return number if math.isfinite(number) and abs(number) <= NUMBER_LIMIT else 0.0


def _integer(value: object) -> int:
    if isinstance(value, int):
        return int(value)
    return int(_number(value))


def _bounded(value: object, limit: int, keep: frozenset[str] = KEPT_IN_MESSAGES) -> str:
    """``clean_text`` at ``limit``, but text that is already clean and no longer than a
    cut one stays as it is (so cleaning twice changes nothing)."""
    room = limit + CUT_NOTE_ROOM
    if isinstance(value, str) and len(value) <= room \
            and clean_text(value, room, keep=keep) == value:
        return value
    return clean_text(value, limit, keep=keep)


def _label(value: object) -> str:
    return _bounded(value, LABEL_LIMIT, frozenset())


def _text(value: object) -> str:
    return _bounded(value, TEXT_LIMIT)


def _optional(clean, value: object) -> str | None:
    return None if value is None else clean(value)


def _listed(value: object) -> list:
    return list(value) if isinstance(value, list | tuple) else []


def _clean_detail(value: object, budget: list[int], depth: int = 0) -> Any:
    """A detail as plain JSON data: text safe, numbers finite, nesting and size bounded
    (``budget`` holds how many more values may be kept)."""
    budget[0] -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= DETAIL_DEPTH or budget[0] < 0:
        return "\u2026"
    if isinstance(value, dict):
        return {_text(key): _clean_detail(item, budget, depth + 1)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_detail(item, budget, depth + 1) for item in value]
    return _bounded(value, DETAIL_TEXT_LIMIT)


def _flags(value: object) -> list[str]:
    """An item's flags as clean text: each like a message, at most ``FLAG_LIMIT``
    characters, at most ``FLAG_COUNT`` of them (the last saying how many were cut)."""
    flags = _listed(value)
    if len(flags) > FLAG_COUNT:
        cut = len(flags) - (FLAG_COUNT - 1)
        flags = [*flags[:FLAG_COUNT - 1], f"\u2026 and {cut} more flag(s)"]
    return [_bounded(flag, FLAG_LIMIT) for flag in flags]


def _clean_item(item: ItemResult) -> ItemResult:
    status = item.status if isinstance(item.status, str) and item.status in STATUSES \
        else ItemStatus.ERROR
    details = _clean_detail(item.details, [DETAIL_VALUES])
    return ItemResult(id=_label(item.id), points=_number(item.points),
                      max_points=_number(item.max_points), status=status,
                      message=_text(item.message),
                      details=details if isinstance(details, dict) else {},
                      flags=_flags(item.flags))


def _clean_cell(cell: CellResult) -> CellResult:
    return CellResult(index=_integer(cell.index), status=_label(cell.status),
                      seconds=_number(cell.seconds),
                      error_name=_optional(_label, cell.error_name),
                      error_message=_optional(_text, cell.error_message),
                      output_truncated=cell.output_truncated is True)


def _clean_provenance(provenance: object) -> Provenance | None:
    if not isinstance(provenance, Provenance):
        return None
    flags = provenance.flags if isinstance(provenance.flags, list | tuple) else []
    return Provenance(
        student=_label(provenance.student), repository=_label(provenance.repository),
        status=_label(provenance.status), reason=_text(provenance.reason),
        commit=_optional(_label, provenance.commit),
        commit_date=_optional(_label, provenance.commit_date),
        branch=_optional(_label, provenance.branch),
        notebook=_optional(_label, provenance.notebook),
        sis_login_id=_optional(_label, provenance.sis_login_id),
        flags=[_text(flag) for flag in flags])


def clean_result(result: SubmissionResult) -> SubmissionResult:
    """A copy of ``result`` that every report can show, whatever the result holds.

    Text is made safe by ``grader.untrusted`` (valid Unicode, controls escaped, bounded;
    the submission's name by ``clean_path``, so it stays distinct and stable), numbers are
    finite (0 for one that is not), anything of the wrong type is dropped or replaced
    by its default, and the totals follow the score rule. Text that entered the grader
    already clean comes back unchanged. Every report writer renders through it, so no
    result can make a writer raise or write what is not valid UTF-8.
    """
    timing = result.timing if isinstance(result.timing, dict) else {}
    warnings = result.warnings if isinstance(result.warnings, list | tuple) else []
    enforcement = result.enforcement if isinstance(result.enforcement, dict) else {}
    clean = SubmissionResult(
        submission=clean_path(result.submission),
        notebook_sha256=_optional(_label, result.notebook_sha256),
        grader_version=_label(result.grader_version),
        rubric_sha256=_label(result.rubric_sha256),
        mode=_label(result.mode),
        seed=_integer(result.seed),
        device=_label(result.device),
        profile=_label(result.profile),
        items=[_clean_item(item) for item in _listed(result.items)
               if isinstance(item, ItemResult)],
        cells=[_clean_cell(cell) for cell in _listed(result.cells)
               if isinstance(cell, CellResult)],
        timing={_label(key): _number(seconds) for key, seconds in timing.items()},
        error=_optional(_text, result.error),
        warnings=[_text(warning) for warning in warnings],
        retry=result.retry is True,
        sandbox=_label(result.sandbox),
        provenance=_clean_provenance(result.provenance),
        enforcement={_label(bound): _label(how) for bound, how in enforcement.items()},
        graded_files=[_label(name) for name in _listed(result.graded_files)],
    )
    clean.total()
    return clean
