"""The result model: one ``SubmissionResult`` per graded notebook.

Every report (JSON, gradebook CSV, feedback pages, Gradescope, GitHub Classroom) is a
rendering of this object, so they can never disagree. Plain dataclasses, JSON both ways.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("passed", "failed", "error", "skipped", "manual")


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
    score: float = 0.0
    max_score: float = 0.0
    items: list[ItemResult] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # set when the notebook could not be graded at all
    warnings: list[str] = field(default_factory=list)
    retry: bool = False  # the grader, not the submission, failed: regrade on the next run
    sandbox: str = ""  # where the kernel ran: "bubblewrap", or "none" (--no-sandbox)

    def item(self, item_id: str) -> ItemResult:
        """The result of item ``item_id``."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def total(self) -> None:
        """Recompute ``score`` and ``max_score`` from the items (pending manual items give 0)."""
        self.score = round(sum(item.points for item in self.items), 4)
        self.max_score = round(sum(item.max_points for item in self.items), 4)

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
        return cls(**data)
