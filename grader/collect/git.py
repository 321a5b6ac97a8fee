"""Every git command ``hw4grade collect`` runs, hardened for a hostile repository.

* No hook ever runs (``core.hooksPath=/dev/null``), and nothing is checked out: files are
  read from the commit's tree with ``ls-tree`` and ``cat-file``, so neither a filter, a
  symlink nor a submodule is ever materialised.
* No submodule is fetched (``--no-recurse-submodules``, ``submodule.recurse=false``).
* Nothing waits for a password: ``GIT_TERMINAL_PROMPT=0``, askpass programs that fail,
  ssh in batch mode. A repository that needs credentials the user's git does not already
  have fails at once with git's reason.
* Only the https, ssh and file transports are allowed (``ext::``, plain ``git://`` and
  ``http://`` are refused); a clone from a local path goes through the file transport
  (``--no-local``), never by copying or linking the folder's objects.
* Every command has a time limit, and a clone is stopped when it grows past its size limit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from grader.exceptions import GitError, RepositoryTooLarge
from grader.untrusted import clean_text

ALLOWED_PROTOCOLS = ("https", "ssh", "file")
HARDENING = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.askPass=false",
    "credential.interactive=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "protocol.allow=never",
    *(f"protocol.{name}.allow=always" for name in ALLOWED_PROTOCOLS),
    "protocol.ext.allow=never",
    "http.lowSpeedLimit=1000",
    "http.lowSpeedTime=60",
)
FAILING_ASKPASS = "false"
REASON_LIMIT = 300


@dataclass(frozen=True)
class Limits:
    """How much of a repository ``collect`` accepts."""

    repository_bytes: int = 2 * 2**30  # the clone's objects
    files: int = 20_000  # entries of the commit's tree
    notebook_bytes: int = 100 * 2**20  # as grader.pipeline.load.MAX_NOTEBOOK_BYTES
    copied_bytes: int = 50 * 2**20  # the modules copied beside the notebook
    seconds: float = 600.0  # one git command


@dataclass(frozen=True)
class Commit:
    """A commit of the branch's first-parent chain, with its dates (UTC seconds)."""

    sha: str
    committed: int
    authored: int


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a commit's tree (``git ls-tree -r -l``)."""

    mode: str  # 100644 / 100755 (file), 120000 (symlink), 160000 (submodule)
    kind: str  # blob / commit
    sha: str
    size: int  # -1 for a submodule
    path: str

    @property
    def regular(self) -> bool:
        """A regular file (not a symlink, not a submodule)."""
        return self.kind == "blob" and self.mode in ("100644", "100755")

    @property
    def symlink(self) -> bool:
        """A symbolic link (its blob is the target)."""
        return self.mode == "120000"


def environment() -> dict[str, str]:
    """The environment of every git command: no prompt of any kind, ssh in batch mode."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS=FAILING_ASKPASS,
               SSH_ASKPASS=FAILING_ASKPASS, SSH_ASKPASS_REQUIRE="never",
               GIT_SSH_COMMAND="ssh -o BatchMode=yes -o ConnectTimeout=30",
               GIT_PROTOCOL_FROM_USER="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def command(*args: str, git_dir: Path | None = None) -> list[str]:
    """``git`` with the hardening options, on ``git_dir`` when given, then ``args``."""
    line = ["git"]
    for setting in HARDENING:
        line += ["-c", setting]
    if git_dir is not None:
        line += ["--git-dir", str(git_dir)]
    return [*line, *args]


def one_line_reason(stderr: bytes, fallback: str) -> str:
    """git's one-line reason: the last ``fatal:``/``error:`` line (else the last line),
    after the line that explains it when git's own is only "Could not read from remote
    repository" (ssh's refusal, say)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()
             if line.strip()]
    index = next((number for number in reversed(range(len(lines)))
                  if lines[number].startswith(("fatal:", "error:"))), len(lines) - 1)
    if index < 0:
        return fallback
    chosen = lines[index]
    if "Could not read from remote repository" in chosen and index > 0:
        chosen = f"{lines[index - 1]} ({chosen})"
    return clean_text(chosen, REASON_LIMIT, keep=frozenset())


def run(*args: str, git_dir: Path | None = None, limits: Limits = Limits()) -> bytes:
    """Run one git command; its stdout, or GitError with git's one-line reason."""
    try:
        done = subprocess.run(command(*args, git_dir=git_dir), env=environment(),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=limits.seconds, check=False)
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took more than {limits.seconds:.0f} s") from None
    except OSError as error:
        raise GitError(f"cannot run git ({error.strerror})") from None
    if done.returncode != 0:
        raise GitError(one_line_reason(done.stderr, f"git {args[0]} failed"))
    return done.stdout


def folder_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (what a clone has written so far)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def size_text(size: int) -> str:
    """A byte count as short text: 512 bytes, 3 MiB, 2 GiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.3g} {unit}"
    return f"{size} bytes"


def watched(line: list[str], target: Path, limits: Limits) -> None:
    """Run a clone or fetch writing into ``target``; stop it past the time or size limit."""
    started = time.monotonic()
    too_large = RepositoryTooLarge(f"the repository is larger than "
                                   f"{size_text(limits.repository_bytes)}")
    with subprocess.Popen(line, env=environment(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            while True:
                try:
                    _, stderr = process.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() - started > limits.seconds:
                    raise GitError(f"git took more than {limits.seconds:.0f} s")
                if folder_bytes(target) > limits.repository_bytes:
                    raise too_large
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    if process.returncode != 0:
        raise GitError(one_line_reason(stderr, "git failed"))
    if folder_bytes(target) > limits.repository_bytes:  # it finished between two looks
        raise too_large


def clone_or_update(url: str, cache: Path, limits: Limits) -> None:
    """A bare copy of the repository at ``cache``: cloned the first time, fetched after.

    A clone goes to a temporary folder renamed into place when complete, so an interrupted
    run leaves no half clone behind.
    """
    if (cache / "HEAD").is_file():
        watched(command("fetch", "--quiet", "--no-tags", "--prune",
                        "--no-recurse-submodules", "origin", "+refs/heads/*:refs/heads/*",
                        git_dir=cache), cache, limits)
        return
    partial = cache.with_name(cache.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        watched(command("clone", "--bare", "--quiet", "--no-local", "--no-tags",
                        "--no-recurse-submodules", "--", url, str(partial)), partial, limits)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.replace(partial, cache)


def resolve_ref(git_dir: Path, branch: str | None, limits: Limits) -> str:
    """The commit the branch (default: the repository's HEAD) points at."""
    names = ["HEAD"] if branch is None else [f"refs/heads/{branch}",
                                             f"refs/remotes/origin/{branch}"]
    for name in names:
        try:
            return run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}",
                       git_dir=git_dir, limits=limits).decode().strip()
        except GitError:
            continue
    raise GitError(f"no branch {branch!r}" if branch else "the repository has no commit")


def first_parent_chain(git_dir: Path, tip: str, limits: Limits,
                       most: int = 100_000) -> list[Commit]:
    """The commits from ``tip`` back along first parents, newest first, with their dates."""
    text = run("log", "--first-parent", f"--max-count={most}", "--format=%H %ct %at", tip,
               "--", git_dir=git_dir, limits=limits).decode()
    chain = []
    for line in text.splitlines():
        sha, committed, authored = line.split()
        chain.append(Commit(sha, int(committed), int(authored)))
    return chain


def tree(git_dir: Path, commit: str, limits: Limits) -> list[TreeEntry]:
    """Every entry of the commit's tree (recursively), GitError past the file-count limit."""
    raw = run("ls-tree", "-r", "-l", "-z", "--full-tree", commit, git_dir=git_dir,
              limits=limits)
    entries = []
    for record in raw.split(b"\0"):
        if not record:
            continue
        if len(entries) >= limits.files:
            raise RepositoryTooLarge(f"the commit has more than {limits.files} files")
        info, _, path = record.partition(b"\t")
        mode, kind, sha, size = info.decode().split()
        entries.append(TreeEntry(mode, kind, sha, -1 if size == "-" else int(size),
                                 path.decode("utf-8", "surrogateescape")))
    return entries


def blob(git_dir: Path, sha: str, limits: Limits) -> bytes:
    """The bytes of one blob."""
    return run("cat-file", "blob", sha, git_dir=git_dir, limits=limits)


def git_dir_of(clone: Path) -> Path:
    """The git folder of a clone made beforehand: ``clone/.git`` or a bare ``clone``."""
    if (clone / ".git").is_dir():
        return clone / ".git"
    if (clone / "HEAD").is_file() and (clone / "objects").is_dir():
        return clone
    raise GitError(f"{clone.name}: not a git clone")
