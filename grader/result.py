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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("passed", "failed", "error", "skipped", "manual", "hand_graded")
HAND_STATUSES = ("manual", "hand_graded")  # pending, and merged by ``hw4grade gradebook``
# A kernel's resource bounds (grader/pipeline/limits.py) and how each was held: by the
# kernel (a cgroup, a size-capped tmpfs) or only watched by the grader.
BOUNDS = ("memory", "tasks", "disk")
HELD_BY_KERNEL, WATCHED = "kernel", "watched"
CGROUP_KEY = "cgroup"  # the enforcement record's entry naming the cgroup version: v1, v2, none


@dataclass
class ItemResult:
    """The grade of one rubric item."""

    id: str
    points: float
    max_points: float
    status: str  # one of STATUSES
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

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
        return self.status == "manual"


@dataclass
class CellResult:
    """What happened to one code cell of the submission."""

    index: int
    status: str  # ok | error | timeout | memory | died | budget | skipped
    seconds: float = 0.0
    error_name: str | None = None
    error_message: str | None = None
    output_truncated: bool = False

    @property
    def failed(self) -> bool:
        """True when the cell counts against ``runs_clean`` (a budget cut-off does not)."""
        return self.status not in ("ok", "budget")


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
    profile: str = "tf2"
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
        return round(sum(item.points for item in self.items if item.status == "hand_graded"), 4)

    def hand_graded_max(self) -> float:
        """The maximum of the merged hand-graded items."""
        return round(sum(item.max_points for item in self.items
                         if item.status == "hand_graded"), 4)

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
            item.points >= item.max_points for item in self.items if item.status != "manual"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The result as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        """Rebuild a result from ``to_dict`` output."""
        data = dict(data)
        data["items"] = [ItemResult(**item) for item in data.get("items", [])]
        data["cells"] = [CellResult(**cell) for cell in data.get("cells", [])]
        if data.get("provenance") is not None:  # absent from results written before it
            data["provenance"] = Provenance(**data["provenance"])
        result = cls(**data)
        result.total()  # the score rule is applied, never read from the file
        return result


def format_points(value: float) -> str:
    """Points as short text: 5.0 -> '5', 2.5 -> '2.5', at most 4 decimals."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
