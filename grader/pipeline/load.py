"""Load a submitted notebook and check that it can be graded at all.

Anything that is not a usable notebook (not JSON, not a notebook, a wrong nbformat, no
code) raises ``SubmissionError`` with a message for the result: the submission scores 0
and a batch goes on with the next one. So does anything that is not a regular file inside
the folder named on the command line (a symlink leading out of it, a device, a FIFO, a
socket: refused from ``lstat``/``stat`` without being opened), a file over the size limit
and JSON nested deeper than any notebook is.

A submission is a notebook, a folder (a student's assignment folder: the driver notebook
and the package it imports) or a ``.zip`` of one; ``grader.pipeline.folders`` chooses what
to grade in the last two, and the same rules hold for every file it reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import nbformat

from grader.exceptions import SubmissionError
from grader.frameworks.detect import AUTO
from grader.pipeline import folders
from grader.pipeline.folders import SubmissionKind
from grader.untrusted import clean_path, path_digest

MAX_NOTEBOOK_BYTES = folders.MAX_NOTEBOOK_BYTES
MAX_JSON_DEPTH = 64  # a notebook's JSON is about 6 deep; rich outputs add a few levels


@dataclass
class Submission:
    """A notebook ready to execute, and the student's code that goes with it.

    For a folder or a zip, ``path`` is the chosen (driver) notebook on disk (inside the
    folder, or inside the archive's private extraction, removed by :meth:`discard`),
    ``modules`` the ``.py`` files of the student's packages it imports, relative to the
    notebook's folder (``cs231n/__init__.py``, ``cs231n/gan_pytorch.py``), which the kernel
    finds at the same places in its working folder, and ``gan_module`` the dotted name of
    the one that defines the graded functions (``cs231n.gan_pytorch``; None when the
    notebook defines them itself). ``sha256`` is the notebook's bytes' digest for a notebook,
    and a digest of the graded files' names and bytes for a folder or a zip.
    """

    path: Path
    notebook: nbformat.NotebookNode
    sha256: str
    kind: str = SubmissionKind.NOTEBOOK
    modules: list[str] = field(default_factory=list)
    gan_module: str | None = None
    note: str = ""  # what was chosen, for the result's warnings ("graded X with Y")
    notebook_name: str = ""  # the notebook's path inside the submission ('/'-separated)
    temporary: Path | None = None  # an archive's extraction

    def graded_files(self) -> list[str]:
        """The notebook graded and the student's GAN module file (when it has one), as
        paths inside the submission: what a result records."""
        notebook = self.notebook_name or self.path.name
        if self.gan_module is None:
            return [notebook]
        module = self.gan_module.replace(".", "/") + ".py"
        if module not in self.modules:
            module = self.gan_module.replace(".", "/") + "/__init__.py"
        return [notebook, (Path(notebook).parent / module).as_posix()]

    def module_source(self, limit: int = 4 * 2**20) -> str:
        """The text of the student's GAN module (at most ``limit`` bytes; "" without one)."""
        if self.gan_module is None:
            return ""
        for name in (self.gan_module.replace(".", "/") + ".py",
                     self.gan_module.replace(".", "/") + "/__init__.py"):
            if name in self.modules:
                with open(_open_regular(self.path.parent / name), "rb") as stream:
                    return stream.read(limit).decode("utf-8", "replace")
        return ""

    def discard(self) -> None:
        """Remove an archive's extraction (nothing for a notebook or a folder)."""
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None


def _open_regular(path: Path, follow_symlinks: bool = True) -> int:
    """A read-only descriptor of ``path`` if it is a regular file (OSError otherwise).

    A FIFO or device is never opened for reading: the descriptor is opened non-blocking
    and checked with ``fstat`` before anything is read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    descriptor = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(0, "not a regular file", str(path))
    return descriptor


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file's bytes (OSError for anything else)."""
    digest = hashlib.sha256()
    with open(_open_regular(path), "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_exchanged(path: str | Path) -> BinaryIO:
    """A file a kernel wrote into a folder it shares with the grader, opened for reading:
    only a regular file, never through a symlink (which the kernel could point anywhere)."""
    return open(_open_regular(Path(path), follow_symlinks=False), "rb")


def read_exchanged(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a file a kernel wrote (see :func:`open_exchanged`); ValueError when it
    holds more than ``limit`` bytes, of which no more than that are read."""
    with open_exchanged(path) as stream:
        data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise ValueError(f"{path}: more than {limit} bytes")
    return data


def check_file(path: Path, folder: Path | None = None) -> None:
    """Raise SubmissionError unless ``path`` is a regular file inside ``folder`` (when given),
    without opening it."""
    try:
        link = path.lstat()
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if stat.S_ISLNK(link.st_mode) and folder is not None:
        target, inside = os.path.realpath(path), os.path.realpath(folder)
        if os.path.commonpath([target, inside]) != inside:
            raise SubmissionError(f"{path}: a symbolic link to {target}, outside {folder}; "
                                  "submit the notebook itself")
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise SubmissionError(f"{path}: {kind}, not a notebook file")


def json_depth(data) -> int:
    """How deeply lists and dicts nest in parsed JSON (iteratively: no recursion limit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children
                         if isinstance(child, (dict, list)))
    return deepest


def parse_notebook(raw: bytes, where: str) -> nbformat.NotebookNode:
    """Parse notebook bytes, raising SubmissionError with a plain explanation."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise SubmissionError(f"{where}: the JSON is nested too deeply to be a notebook") \
            from None
    except UnicodeDecodeError:
        raise SubmissionError(f"{where}: not a text file (is it a .ipynb notebook?)") from None
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"{where}: not valid JSON at line {error.lineno}, column {error.colno} "
            "(the file may be truncated or edited by hand)") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise SubmissionError(f"{where}: the JSON is nested more than {MAX_JSON_DEPTH} levels "
                              "deep, which no notebook is")
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise SubmissionError(f"{where}: JSON, but not a Jupyter notebook (no 'cells')")
    major = data.get("nbformat")
    if major != 4:
        raise SubmissionError(
            f"{where}: notebook format {major!r} is not supported; save it from a current "
            "Jupyter (format 4)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            notebook = nbformat.reads(json.dumps(data), as_version=4)  # joins line lists
            _, repaired = nbformat.validator.normalize(notebook, strip_invalid_metadata=True)
            notebook = nbformat.from_dict(repaired)
            nbformat.validate(notebook)
        except nbformat.ValidationError as error:
            first_line = str(error).strip().splitlines()[0]
            raise SubmissionError(f"{where}: not a valid notebook ({first_line})") from None
    return notebook


def read_submission(path: str | Path, folder: str | Path | None = None) -> bytes:
    """A submission's bytes, read only when it is a regular file (inside ``folder``, when
    given) of at most ``MAX_NOTEBOOK_BYTES``; SubmissionError otherwise."""
    path = Path(path)
    check_file(path, Path(folder) if folder is not None else None)
    try:
        with open(_open_regular(path), "rb") as stream:
            raw = stream.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"{path}: more than {MAX_NOTEBOOK_BYTES / 2**20:.0f} MiB, too "
                              "large for a notebook")
    return raw


def is_archive(path: Path) -> bool:
    """True for a path named like a zip archive (``.zip``, any case)."""
    return path.suffix.lower() == ".zip"


def load_submission(path: str | Path, folder: str | Path | None = None,
                    profile: str = AUTO) -> Submission:
    """Read and validate one submission (inside ``folder``, when given): a notebook, a
    folder or a zip archive. ``profile`` (a ``--profile``) settles, in a folder, between
    notebooks of different frameworks."""
    path = Path(path)
    if is_archive(path):
        return load_archive(path, folder, profile)
    if path.is_dir():
        if folder is not None and path.is_symlink() and not folders.inside(path, Path(folder)):
            raise SubmissionError(f"{path}: a symbolic link to {os.path.realpath(path)}, "
                                  f"outside {folder}; submit the folder itself")
        return load_folder(path, profile)
    return load_notebook(path, folder)


def load_folder(root: Path, profile: str = AUTO, shown: str | None = None,
                kind: str = SubmissionKind.FOLDER) -> Submission:
    """The submission of a folder: its driver notebook, with the student's packages."""
    driver = folders.choose_driver(root, profile, shown)
    submission = load_notebook(driver.notebook, root)
    base = driver.notebook.parent
    digest = hashlib.sha256()
    for name, path in [(folders.relative(driver.notebook, root), driver.notebook),
                       *((folders.relative(base / module, root), base / module)
                         for module in driver.modules)]:
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update((file_sha256(path) if path != driver.notebook else submission.sha256)
                      .encode() + b"\n")
    submission.sha256 = digest.hexdigest()
    submission.kind, submission.modules = kind, driver.modules
    submission.gan_module, submission.note = driver.gan_module, driver.note
    submission.notebook_name = folders.relative(driver.notebook, root)
    return submission


def load_archive(path: Path, folder: str | Path | None = None,
                 profile: str = AUTO) -> Submission:
    """The submission of a zip archive, extracted (within limits) into a private folder."""
    check_file(path, Path(folder) if folder is not None else None)
    temporary = Path(tempfile.mkdtemp(prefix="hw4grade-zip-"))
    try:
        top = folders.extract_zip(path, temporary, str(path))
        submission = load_folder(top, profile, str(path), SubmissionKind.ZIP)
    except SubmissionError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise SubmissionError(str(error).replace(str(temporary), str(path))) from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    submission.temporary = temporary
    return submission


def submission_sha256(path: Path, folder: Path | None = None,
                      profile: str = AUTO) -> str | None:
    """The ``sha256`` a grading of ``path`` records, when it can be loaded (so a rerun
    knows an unchanged submission); None otherwise."""
    if not path.is_dir() and not is_archive(path):
        try:
            return file_sha256(path)
        except OSError:
            return None
    try:
        submission = load_submission(path, folder, profile)
    except (SubmissionError, OSError):
        return None
    submission.discard()
    return submission.sha256


def load_notebook(path: str | Path, folder: str | Path | None = None) -> Submission:
    """Read and validate one notebook: a regular file (inside ``folder``, when given)."""
    path = Path(path)
    raw = read_submission(path, folder)
    if not raw.strip():
        raise SubmissionError(f"{path}: the file is empty")
    notebook = parse_notebook(raw, str(path))
    if not any(cell.get("cell_type") == "code" and cell.get("source", "").strip()
               for cell in notebook.cells):
        raise SubmissionError(f"{path}: the notebook has no code to run")
    return Submission(path=path, notebook=notebook, sha256=hashlib.sha256(raw).hexdigest())


def find_notebooks(paths: list[str | Path]) -> dict[Path, str]:
    """The submissions named, or found in the folders named: notebooks, assignment folders
    and zip archives (see :func:`submissions_in`), sorted.

    Returns each submission's path (as the file system spells it, for opening) with its
    label, the name every report shows: the path relative to the folder it was found in
    (``alice/HW4.ipynb``, ``bob``, ``carol.zip``), or the name of a file or assignment folder
    named directly, made safe by ``submission_label``.
    """
    found: dict[Path, str] = {}
    for entry in map(Path, paths):
        if entry.is_dir() and not holds_gan_module(entry):
            for path in submissions_in(entry):
                found.setdefault(path, path.relative_to(entry).as_posix())
        else:
            found.setdefault(entry, entry.name)
    labels: dict[Path, str] = {}
    taken: set[str] = set()
    for path, relative in found.items():
        labels[path] = submission_label(relative, taken)
        taken.add(labels[path])
    return labels


def _skipped(path: Path, top: Path) -> bool:
    return any(part in folders.SKIPPED_FOLDERS for part in path.relative_to(top).parts)


def submissions_in(top: Path) -> list[Path]:
    """The submissions in a class folder, sorted: every notebook (recursively, no
    checkpoints) as before, except that a student's assignment folder is one submission
    (see :func:`assignment_folders`) and a zip archive holding a notebook is one too.

    An assignment folder is graded as its highest folder below ``top`` that holds no other
    assignment folder (``alice/`` for ``alice/repo/assignment3/``); the notebooks and
    archives in it are part of it, not submissions of their own.
    """
    notebooks = [path for path in sorted(top.rglob("*.ipynb")) if not _skipped(path, top)]
    archives = [path for path in sorted(top.rglob("*.[zZ][iI][pP]"))
                if not _skipped(path, top) and path.is_file() and archive_holds_notebook(path)]
    homes = assignment_folders(top, notebooks)
    chosen: set[Path] = set()
    for home in homes:
        folder = home
        while folder.parent != top and \
                sum(folder.parent in (other, *other.parents) for other in homes) == 1:
            folder = folder.parent
        chosen.add(folder)
    inside = [path for path in (*notebooks, *archives)
              if not any(folder in path.parents for folder in chosen)]
    return sorted([*inside, *chosen])


def assignment_folders(top: Path, notebooks: list[Path]) -> list[Path]:
    """The folders below ``top`` that hold a student's assignment: a notebook beside a GAN
    module (``gan.py``, or a package's ``gan_pytorch.py``/``gan_tf.py``), or several
    notebooks of which exactly one is the GAN homework."""
    by_folder: dict[Path, list[Path]] = {}
    for path in notebooks:
        by_folder.setdefault(path.parent, []).append(path)
    homes = []
    for folder, held in by_folder.items():
        if folder == top:
            continue
        if holds_gan_module(folder) or len(held) > 1 and _one_gan_notebook(held):
            homes.append(folder)
    return homes


def _one_gan_notebook(paths: list[Path]) -> bool:
    """True when exactly one of ``paths`` is the GAN homework (reading stops at two)."""
    count = 0
    for path in paths:
        count += _is_gan_notebook(path)
        if count > 1:
            return False
    return count == 1


def holds_gan_module(folder: Path) -> bool:
    """True when ``folder`` holds a GAN module of the editions: ``gan.py`` (or a package
    module) directly in it, or a package module in a package directly inside it
    (``cs231n/gan_pytorch.py``); read by name only. A ``gan.py`` one level down is a
    student's UMich folder inside a class folder, not a package of this one."""
    names = [f"{stem}.py" for stem in folders.GAN_MODULE_STEMS]
    packaged = [name for name in names if name != f"{folders.UMICH_MODULE_STEM}.py"]
    try:
        children = [entry for entry in folder.iterdir()
                    if entry.is_dir() and not entry.is_symlink()
                    and entry.name not in folders.SKIPPED_FOLDERS]
    except OSError:
        return False
    return any(os.path.lexists(folder / name) for name in names) \
        or any(os.path.lexists(child / name) for child in children for name in packaged)


def _is_gan_notebook(path: Path) -> bool:
    """True when a notebook found in a batch is the GAN homework (False when unreadable)."""
    try:
        candidate = folders.examine(path, path.parent)
    except SubmissionError:
        return False
    return candidate is not None and candidate.is_driver()


def archive_holds_notebook(path: Path) -> bool:
    """True for a zip archive with a notebook in it, and for a damaged one (its grading
    says what is wrong); False for a readable archive of data."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.lower().endswith((".ipynb", ".zip")) for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return True


def submission_label(relative: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The name reports show for a submission found at ``relative`` (``/``-separated).

    ``clean_path`` of it: unchanged when it is already a safe name, otherwise cleaned
    (a folder name that is not UTF-8 is shown with ``\\xNN`` escapes) and marked with a
    digest of the original, so it is the same on every run. A label already ``taken`` by
    another path of the batch gets the digest as well, so two submissions never share one.
    The number of ``/``-separated parts is the original's (``named_folder`` relies on it).
    """
    label = clean_path(relative)
    return label + path_digest(relative) if label in taken else label


def named_folder(path: Path, label: str) -> Path:
    """The folder named on the command line that ``path`` was found in (from its label,
    which is the path relative to that folder)."""
    depth = len(Path(label).parts)
    return Path(*path.parts[:-depth]) if 0 < depth < len(path.parts) else path.parent

