"""The decisions of ``collect``, as pure functions of what git listed: which commit, which
notebook, which files beside it.

**Which commit.** The last commit of the branch's first-parent chain whose *committer*
date is at or before the deadline. Commit dates are written by the student's machine, so
they prove nothing; what is checked is that they are plausible: a commit dated in the
future, one dated before its parent (dates that go backwards, as a rebased or back-dated
commit is), or a chosen commit authored after the deadline, is flagged in the result.
Only the hosting service's push log can say when a commit really arrived.

**Which notebook.** Every regular ``.ipynb`` file of the commit (outside
``.ipynb_checkpoints``), optionally narrowed by ``--notebook`` patterns. A symbolic link is
followed only while it stays inside the repository's tree; one leading out is never
followed, and says so. Exactly one candidate is collected; none or several end the row
with that status, each candidate named.

**Which files beside it.** The Python modules next to the notebook and in the packages
below it (two levels: ``cs231n/gan_pytorch.py``), as the PyTorch editions import them.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from grader.collect.git import Commit, TreeEntry

FUTURE_SLACK = 300  # seconds of clock difference forgiven before a date is "in the future"
MAX_FLAGS = 5
MAX_LINK_HOPS = 16
MODULE_DEPTH = 3  # path parts below the notebook's folder: x.py, pkg/x.py, pkg/sub/x.py
MAX_MODULES = 500


def iso(seconds: int) -> str:
    """UTC seconds as ISO 8601 text."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


@dataclass
class CommitChoice:
    """The commit chosen (None: no commit at or before the deadline) and the flags raised."""

    commit: Commit | None
    flags: list[str]
    late: int  # commits after the deadline, ignored


def pick_commit(chain: Sequence[Commit], deadline: int, now: int) -> CommitChoice:
    """The newest commit of ``chain`` (newest first) committed at or before ``deadline``,
    with flags for the dates from the tip down to that commit's parent."""
    chosen_index = next((index for index, commit in enumerate(chain)
                         if commit.committed <= deadline), None)
    last = len(chain) - 1 if chosen_index is None else min(chosen_index + 1, len(chain) - 1)
    flags = []
    for index, commit in enumerate(chain[: last + 1]):
        if commit.committed > now + FUTURE_SLACK:
            flags.append(f"commit {commit.sha[:12]} is dated in the future "
                         f"({iso(commit.committed)})")
        parent = chain[index + 1] if index + 1 < len(chain) else None
        if parent is not None and commit.committed < parent.committed:
            flags.append(f"commit {commit.sha[:12]} ({iso(commit.committed)}) is dated before "
                         f"its parent {parent.sha[:12]} ({iso(parent.committed)}): the dates "
                         "go backwards")
    chosen = None if chosen_index is None else chain[chosen_index]
    if chosen is not None and chosen.authored > deadline:
        flags.append(f"commit {chosen.sha[:12]} was authored after the deadline "
                     f"({iso(chosen.authored)}) but is dated before it as committed")
    if len(flags) > MAX_FLAGS:
        flags = [*flags[:MAX_FLAGS], f"and {len(flags) - MAX_FLAGS} more date flag(s)"]
    late = len(chain) if chosen_index is None else chosen_index
    return CommitChoice(chosen, flags, late)


def resolve_in_tree(path: str, by_path: dict[str, TreeEntry],
                    targets: dict[str, str]) -> TreeEntry | None:
    """The regular file ``path`` is or leads to inside the tree; None when a link on the
    way is absolute, leaves the repository, loops or ends nowhere."""
    for _ in range(MAX_LINK_HOPS):
        entry = by_path.get(path)
        if entry is None:
            return None
        if entry.regular:
            return entry
        if not entry.symlink or path not in targets:
            return None
        target = targets[path]
        if target.startswith("/"):
            return None
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if path == ".." or path.startswith("../"):
            return None
    return None


def hidden_or_checkpoint(path: str) -> bool:
    """True for a path inside a hidden folder, ``.ipynb_checkpoints`` or ``__pycache__``."""
    folders = path.split("/")[:-1]
    return any(part.startswith(".") or part == "__pycache__" for part in folders)


@dataclass
class NotebookChoice:
    """The notebook candidates (path -> the regular file it is) and the flags raised."""

    candidates: dict[str, TreeEntry]
    flags: list[str]


def notebook_candidates(entries: Sequence[TreeEntry], targets: dict[str, str],
                        patterns: Sequence[str] = ()) -> NotebookChoice:
    """Every notebook of the tree (matching one of ``patterns`` when given), a link that
    stays inside counted once with what it points at."""
    by_path = {entry.path: entry for entry in entries}
    found: dict[str, TreeEntry] = {}
    flags = []
    for entry in entries:
        if not entry.path.endswith(".ipynb") or hidden_or_checkpoint(entry.path):
            continue
        if patterns and not any(fnmatch.fnmatchcase(entry.path, pattern)
                                or fnmatch.fnmatchcase(posixpath.basename(entry.path), pattern)
                                for pattern in patterns):
            continue
        resolved = followed(entry, by_path, targets, flags)
        if resolved is None:
            continue
        found[entry.path] = resolved
    # a link to another candidate is that candidate: keep the file itself
    return NotebookChoice({path: entry for path, entry in found.items()
                           if entry.path == path or entry.path not in found}, flags)


def followed(entry: TreeEntry, by_path: dict[str, TreeEntry], targets: dict[str, str],
             flags: list[str]) -> TreeEntry | None:
    """The file ``entry`` stands for in the tree (itself, or what its link leads to inside
    the repository); None, with a flag for a link, when there is none."""
    resolved = resolve_in_tree(entry.path, by_path, targets)
    if resolved is None and entry.symlink:
        flags.append(f"{entry.path}: a symbolic link to {targets.get(entry.path, '?')!r}, "
                     "outside the repository or to no file: not followed")
    return resolved


def modules_beside(notebook: str, entries: Sequence[TreeEntry], targets: dict[str, str],
                   budget: int) -> tuple[dict[str, TreeEntry], list[str]]:
    """The Python files beside ``notebook`` and in the packages below it, by their path
    relative to its folder, within ``budget`` bytes; and the flags raised."""
    folder = posixpath.dirname(notebook)
    prefix = f"{folder}/" if folder else ""
    by_path = {entry.path: entry for entry in entries}
    chosen: dict[str, TreeEntry] = {}
    flags, used = [], 0
    for entry in entries:
        if not entry.path.endswith(".py") or not entry.path.startswith(prefix):
            continue
        relative = entry.path[len(prefix):]
        if len(relative.split("/")) > MODULE_DEPTH or hidden_or_checkpoint(relative):
            continue
        resolved = followed(entry, by_path, targets, flags)
        if resolved is None:
            continue
        if used + resolved.size > budget or len(chosen) >= MAX_MODULES:
            flags.append(f"{entry.path}: not copied, over the limit of {MAX_MODULES} modules "
                         f"or {budget / 2**20:.0f} MiB")
            continue
        chosen[relative] = resolved
        used += resolved.size
    return chosen, flags[:MAX_FLAGS]


def submodule_flags(entries: Sequence[TreeEntry]) -> list[str]:
    """One flag per submodule of the tree (never fetched)."""
    paths = [entry.path for entry in entries if entry.kind == "commit"]
    return [f"submodule {path}: not fetched" for path in paths[:MAX_FLAGS]]


def links_to_read(entries: Sequence[TreeEntry]) -> list[TreeEntry]:
    """The symbolic links whose targets matter (those named like a notebook or a module)."""
    return [entry for entry in entries
            if entry.symlink and entry.path.endswith((".ipynb", ".py"))][:1000]
