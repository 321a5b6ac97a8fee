"""Collect one student, then the whole class: in parallel threads (git does the work),
resumable (the bare clones stay in ``SUBMISSIONS/.collect-cache`` and a student already
collected for the same deadline is kept), writing ``collect.json`` after every student.

Files are never checked out: the notebook and the modules beside it are read from the
chosen commit's tree and written as regular files under ``SUBMISSIONS/<student>/``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader import __version__
from grader.collect import choose, git
from grader.collect.manifest import (
    CACHE_DIR,
    Entry,
    Manifest,
    Status,
    read_manifest,
    write_manifest,
)
from grader.collect.roster import RosterRow
from grader.exceptions import GitError, RepositoryTooLarge, SubmissionError
from grader.frameworks import AUTO
from grader.untrusted import clean_name

STAGING_DIR = ".collect-staging"
SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._ ()+-]{0,150}")
LINK_TARGET_LIMIT = 4096
MAX_STAGED_NOTEBOOKS = 50  # notebooks read to find the GAN homework among several


@dataclass
class Settings:
    """What ``hw4grade collect`` was asked for."""

    deadline: datetime
    out: Path
    branch: str | None = None
    patterns: Sequence[str] = ()
    from_clones: Path | None = None
    limits: git.Limits = field(default_factory=git.Limits)
    jobs: int = 8
    profile: str = AUTO  # the edition, when a repository holds one GAN notebook of each

    @property
    def deadline_seconds(self) -> int:
        """The deadline as UTC seconds."""
        return int(self.deadline.timestamp())


def ended(row: RosterRow, status: Status, reason: str = "", **known) -> Entry:
    """The entry of a row that ends with ``status``."""
    return Entry(student=row.student, repository=clean_name(row.repository), status=status,
                 reason=reason, name=row.name, sis_login_id=row.sis_login_id,
                 section=row.section, **known)


def clone_folder(base: Path, row: RosterRow) -> Path | None:
    """The clone of ``row`` in a folder of clones made beforehand: its ``repository`` cell
    (relative to ``base``), else ``base/<student>``, else the one folder whose name ends
    with ``-<student>`` (as ``gh classroom clone`` names them)."""
    if row.repository:
        named = Path(row.repository)
        return named if named.is_absolute() else base / named
    if (base / row.student).is_dir():
        return base / row.student
    matches = [entry for entry in sorted(base.iterdir())
               if entry.is_dir() and entry.name.lower().endswith(f"-{row.student.lower()}")]
    return matches[0] if len(matches) == 1 else None


def safe_relative(path: str) -> bool:
    """True when every part of a path from the repository is a plain file or folder name."""
    return all(SAFE_PART.fullmatch(part) and not part.endswith((".", " "))
               for part in path.split("/"))


def read_link_targets(git_dir: Path, entries: Sequence[git.TreeEntry],
                      limits: git.Limits) -> dict[str, str]:
    """The targets of the symbolic links that matter (see ``choose.links_to_read``)."""
    return {entry.path: git.blob(git_dir, entry.sha, limits)[:LINK_TARGET_LIMIT]
            .decode("utf-8", "surrogateescape")
            for entry in choose.links_to_read(entries) if entry.size <= LINK_TARGET_LIMIT}


def write_files(out: Path, student: str, files: dict[str, bytes]) -> None:
    """Replace ``out/<student>/`` by exactly ``files`` (relative path -> bytes)."""
    staging = out / STAGING_DIR / student
    shutil.rmtree(staging, ignore_errors=True)
    for relative, data in files.items():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    final = out / student
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)


def gan_homework_among(git_dir: Path, entries: Sequence[git.TreeEntry],
                       targets: dict[str, str], candidates: dict[str, git.TreeEntry],
                       limits: git.Limits, profile: str) -> tuple[str | None, str]:
    """The notebook among ``candidates`` that is the GAN homework, by the rule that chooses
    the driver of a folder submission (``grader.pipeline.folders.choose_driver``, run on a
    private copy of the notebooks and the modules beside them), and what was chosen; None
    and the reason when the rule cannot choose."""
    from grader.pipeline.folders import choose_driver

    staged = {path: entry for path, entry in candidates.items()
              if safe_relative(path) and entry.size <= limits.notebook_bytes}
    if len(staged) != len(candidates) or len(staged) > MAX_STAGED_NOTEBOOKS \
            or sum(entry.size for entry in staged.values()) > 2 * limits.notebook_bytes:
        return None, "they are too many, too large or oddly named to read"
    with tempfile.TemporaryDirectory(prefix="hw4grade-collect-") as staging:
        root = Path(staging)
        for path, entry in staged.items():
            files = {path: entry}
            modules, _ = choose.modules_beside(path, entries, targets, limits.copied_bytes)
            folder = posixpath.dirname(path)
            files.update({posixpath.join(folder, relative): module
                          for relative, module in modules.items() if safe_relative(relative)})
            for relative, blob in files.items():
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(git.blob(git_dir, blob.sha, limits))
        try:
            driver = choose_driver(root, profile, shown="the commit")
        except SubmissionError as error:
            return None, str(error).removeprefix("the commit: ")
        how = (f"it imports {driver.gan_module.replace('.', '/')}.py" if driver.gan_module
               else "it defines or calls the graded functions")
        return driver.notebook.relative_to(root).as_posix(), how


def collect_one(row: RosterRow, settings: Settings) -> Entry:
    """Collect one student; always an entry, never an exception for what the repository
    does."""
    try:
        return _collect(row, settings)
    except RepositoryTooLarge as error:
        entry = ended(row, Status.TOO_LARGE, str(error))
    except GitError as error:
        entry = ended(row, Status.UNREACHABLE, str(error))
    shutil.rmtree(settings.out / row.student, ignore_errors=True)  # nothing stale is graded
    return entry


def _git_dir(row: RosterRow, settings: Settings) -> Path:
    if settings.from_clones is not None:
        folder = clone_folder(settings.from_clones, row)
        if folder is None or not folder.is_dir():
            raise GitError(f"no clone of {row.student} in {settings.from_clones}")
        return git.git_dir_of(folder)
    cache = settings.out / CACHE_DIR / f"{row.student}.git"
    git.clone_or_update(row.repository, cache, settings.limits)
    return cache


def _collect(row: RosterRow, settings: Settings) -> Entry:
    limits = settings.limits
    git_dir = _git_dir(row, settings)
    branch = settings.branch
    try:
        tip = git.resolve_ref(git_dir, branch, limits)
    except GitError as error:
        shutil.rmtree(settings.out / row.student, ignore_errors=True)
        return ended(row, Status.NO_COMMIT, str(error), branch=branch)
    chain = git.first_parent_chain(git_dir, tip, limits)
    choice = choose.pick_commit(chain, settings.deadline_seconds, int(time.time()))
    if choice.commit is None:
        shutil.rmtree(settings.out / row.student, ignore_errors=True)
        first = choose.iso(chain[-1].committed) if chain else "none"
        return ended(row, Status.NO_COMMIT, f"{choice.late} commit(s), all after the "
                     f"deadline (the earliest committed {first})", branch=branch,
                     flags=choice.flags)
    commit = choice.commit
    known = dict(branch=branch, commit=commit.sha, commit_date=choose.iso(commit.committed),
                 author_date=choose.iso(commit.authored))
    entries = git.tree(git_dir, commit.sha, limits)
    targets = read_link_targets(git_dir, entries, limits)
    notebooks = choose.notebook_candidates(entries, targets, settings.patterns)
    flags = [*choice.flags, *notebooks.flags, *choose.submodule_flags(entries)]
    if choice.late:
        flags.append(f"{choice.late} later commit(s) after the deadline ignored")
    flags = [clean_name(flag, 500) for flag in flags]
    candidates = sorted(clean_name(path) for path in notebooks.candidates)
    why = f"the only notebook of commit {commit.sha[:12]}, the last at or before the deadline"
    if not candidates:
        shutil.rmtree(settings.out / row.student, ignore_errors=True)
        return ended(row, Status.NO_NOTEBOOK, "no .ipynb file in commit "
                     f"{commit.sha[:12]}" + (f" matching {', '.join(settings.patterns)}"
                                             if settings.patterns else ""),
                     flags=flags, **known)
    if len(candidates) == 1:
        path, notebook = next(iter(notebooks.candidates.items()))
    else:  # an assignment's repository: its GAN homework, as a folder submission's driver
        chosen, note = gan_homework_among(git_dir, entries, targets, notebooks.candidates,
                                          limits, settings.profile)
        if chosen is None:
            shutil.rmtree(settings.out / row.student, ignore_errors=True)
            return ended(row, Status.SEVERAL_NOTEBOOKS, f"{len(candidates)} notebooks, and "
                         f"{clean_name(note, 500)} (or choose one with --notebook)",
                         candidates=candidates, flags=flags, **known)
        path, notebook = chosen, notebooks.candidates[chosen]
        why = (f"the GAN homework among the {len(candidates)} notebooks of commit "
               f"{commit.sha[:12]} ({clean_name(note, 500)}), the last at or before the "
               "deadline")
    if notebook.size > limits.notebook_bytes:
        raise RepositoryTooLarge(f"{clean_name(path)}: more than "
                                 f"{limits.notebook_bytes >> 20} MiB")
    modules, module_flags = choose.modules_beside(path, entries, targets, limits.copied_bytes)
    flags += [clean_name(flag, 500) for flag in module_flags]
    name = path.rsplit("/", 1)[-1]
    name = name if safe_relative(name) else "notebook.ipynb"
    files = {name: git.blob(git_dir, notebook.sha, limits)}
    for relative, entry in modules.items():
        if safe_relative(relative) and relative != name:
            files[relative] = git.blob(git_dir, entry.sha, limits)
        else:
            flags.append(f"{clean_name(relative)}: not copied (not a plain file name)")
    write_files(settings.out, row.student, files)
    return ended(row, Status.COLLECTED, why, notebook=clean_name(path),
                 notebook_sha256=hashlib.sha256(files[name]).hexdigest(),
                 files=[f"{row.student}/{relative}" for relative in files],
                 candidates=candidates, flags=flags, **known)


def still_collected(entry: Entry | None, row: RosterRow, manifest: Manifest | None,
                    settings: Settings) -> bool:
    """True when a previous run's entry stands: the same deadline, branch and repository,
    collected, and its notebook still on disk with the same bytes."""
    if entry is None or manifest is None or entry.status is not Status.COLLECTED:
        return False
    if (manifest.deadline, manifest.branch) != (settings.deadline.isoformat(), settings.branch):
        return False
    if entry.repository != clean_name(row.repository) or not entry.files:
        return False
    notebook = settings.out / entry.files[0]
    try:
        return hashlib.sha256(notebook.read_bytes()).hexdigest() == entry.notebook_sha256
    except OSError:
        return False


def collect_class(rows: Sequence[RosterRow], settings: Settings,
                  finished: Callable[[Entry, bool], None] = lambda entry, reused: None
                  ) -> Manifest:
    """Collect every row (``settings.jobs`` at a time), writing the manifest after each;
    ``finished`` is told of each entry as it ends (and whether it was kept from before)."""
    settings.out.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(settings.out)
    manifest = Manifest(deadline=settings.deadline.isoformat(), branch=settings.branch,
                        source=str(settings.from_clones) if settings.from_clones else "clone",
                        collected_at=datetime.now(timezone.utc).isoformat(),
                        grader_version=__version__)
    done: dict[str, Entry] = {}

    def record(entry: Entry, reused: bool) -> None:
        done[entry.student] = entry
        manifest.entries = {row.student: done[row.student] for row in rows
                            if row.student in done}
        write_manifest(settings.out, manifest)
        finished(entry, reused)

    todo = []
    for row in rows:
        old = previous.entries.get(row.student) if previous else None
        if still_collected(old, row, previous, settings):
            record(old, True)
        else:
            todo.append(row)
    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        futures = {pool.submit(collect_one, row, settings): row for row in todo}
        try:
            for future in as_completed(futures):
                record(future.result(), False)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    shutil.rmtree(settings.out / STAGING_DIR, ignore_errors=True)
    return manifest
