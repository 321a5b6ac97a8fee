"""How each roster row ends (the closed set ``Status``) and ``SUBMISSIONS/collect.json``.

The manifest holds one entry per student: the repository, the commit and its committer
date, what was chosen and why, the files written and any flag raised (a commit dated in
the future, dates that go backwards, a symlink or submodule left out). ``hw4grade grade``
reads it to carry this provenance into every result, and to give every student whose
row did not end ``collected`` a result of 0 with the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from grader.report.store import atomic_write_text
from grader.result import Provenance

MANIFEST = "collect.json"
CACHE_DIR = ".collect-cache"  # the bare clones, kept so a rerun only fetches
FORMAT = 1


class Status(str, Enum):
    """How a roster row ends. Every row ends with exactly one."""

    COLLECTED = "collected"
    NO_COMMIT = "no_commit_before_deadline"
    UNREACHABLE = "unreachable"
    NO_NOTEBOOK = "no_notebook"
    SEVERAL_NOTEBOOKS = "several_notebooks"
    TOO_LARGE = "too_large"

    @property
    def words(self) -> str:
        """The status as a reader says it."""
        return WORDS[self]


WORDS = {
    Status.COLLECTED: "collected",
    Status.NO_COMMIT: "no commit at or before the deadline",
    Status.UNREACHABLE: "repository unreachable",
    Status.NO_NOTEBOOK: "no notebook found",
    Status.SEVERAL_NOTEBOOKS: "several candidate notebooks",
    Status.TOO_LARGE: "repository over the size or file-count limit",
}


@dataclass
class Entry:
    """What ``collect`` did for one student."""

    student: str
    repository: str
    status: Status
    reason: str = ""
    name: str = ""
    sis_login_id: str = ""
    section: str = ""
    branch: str | None = None
    commit: str | None = None
    commit_date: str | None = None  # the committer date, ISO 8601
    author_date: str | None = None
    notebook: str | None = None  # path in the repository
    notebook_sha256: str | None = None
    files: list[str] = field(default_factory=list)  # written, relative to SUBMISSIONS
    candidates: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The submission's label for ``grade``: the notebook's path under SUBMISSIONS, or the
        student's id when there is no notebook."""
        return self.files[0] if self.status is Status.COLLECTED and self.files else self.student

    def provenance(self) -> Provenance:
        """What a result records of this collection."""
        return Provenance(student=self.student, repository=self.repository,
                          status=self.status.value, reason=self.reason, commit=self.commit,
                          commit_date=self.commit_date, branch=self.branch,
                          notebook=self.notebook, sis_login_id=self.sis_login_id or None,
                          flags=list(self.flags))

    def to_dict(self) -> dict:
        """JSON-ready."""
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Entry:
        """Rebuild an entry written by ``to_dict``."""
        data = dict(data)
        data["status"] = Status(data["status"])
        return cls(**data)


@dataclass
class Manifest:
    """``collect.json``: the run's settings and an entry per student."""

    deadline: str
    branch: str | None
    source: str  # "clone" or the --from-clones folder
    entries: dict[str, Entry] = field(default_factory=dict)
    collected_at: str = ""
    grader_version: str = ""

    def to_json(self) -> str:
        """Indented JSON text."""
        data = {"format": FORMAT, "deadline": self.deadline, "branch": self.branch,
                "source": self.source, "collected_at": self.collected_at,
                "grader_version": self.grader_version,
                "students": {key: entry.to_dict() for key, entry in self.entries.items()}}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``folder/collect.json`` atomically."""
    return atomic_write_text(folder / MANIFEST, manifest.to_json())


def read_manifest(folder: Path) -> Manifest | None:
    """``folder/collect.json``, or None when there is none or it cannot be read."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        entries = {key: Entry.from_dict(value) for key, value in data["students"].items()}
        return Manifest(deadline=data["deadline"], branch=data.get("branch"),
                        source=data.get("source", ""), entries=entries,
                        collected_at=data.get("collected_at", ""),
                        grader_version=data.get("grader_version", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Handoff:
    """What ``hw4grade grade`` takes from a collected folder: the notebooks to grade (path ->
    label), each label's provenance, and a result to give every student not collected
    (label -> the reason, as the result's error)."""

    notebooks: dict[Path, str] = field(default_factory=dict)
    provenance: dict[str, Provenance] = field(default_factory=dict)
    uncollected: dict[str, str] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)  # notebooks under it no entry names


def not_collected_reason(entry: Entry) -> str:
    """The error of a student's result when nothing was collected."""
    return f"not collected from {entry.repository}: {entry.status.words}" + \
        (f" ({entry.reason})" if entry.reason else "")


def handoff(folder: Path, manifest: Manifest, found: dict[Path, str]) -> Handoff:
    """Split the notebooks ``find_notebooks`` found under ``folder`` by the manifest: those a
    collected entry names are graded with their provenance, any other is ignored, and every
    student not collected gets a result with the reason."""
    plan = Handoff()
    entries = list(manifest.entries.values())
    by_label = {entry.label: entry for entry in entries}
    for entry in entries:  # a student's folder holding a package is one folder submission
        if entry.status is Status.COLLECTED:
            by_label.setdefault(entry.student, entry)
    graded: dict[str, str] = {}  # student -> the label graded
    for path, label in found.items():
        entry = by_label.get(label)
        if entry is not None and entry.status is Status.COLLECTED \
                and entry.student not in graded:
            plan.notebooks[path] = label
            graded[entry.student] = label
        else:
            plan.ignored.append(path)
    for entry in entries:
        label = graded.get(entry.student, entry.label)
        plan.provenance[label] = entry.provenance()
        if entry.status is not Status.COLLECTED:
            plan.uncollected[label] = not_collected_reason(entry)
        elif entry.student not in graded:
            plan.uncollected[label] = f"collected, but {label} is no longer in {folder}"
    return plan
