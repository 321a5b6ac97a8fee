"""Submissions that are folders or zip archives: which notebook to grade, and with which code.

A student's assignment folder (or repository, or a ``.zip`` of one) holds the homework's
driver notebook, the package it imports (``cs231n/gan_pytorch.py``, a renamed package, or a
``gan.py`` beside the notebook), the assignment's other notebooks, data sets, checkpoints.
:func:`choose_driver` finds the one notebook that is the GAN homework and the package files
it imports; :func:`extract_zip` unpacks an archive into a private folder within limits.

Everything that cannot be graded raises ``SubmissionError`` naming what and where: two
notebooks that could each be the homework, a driver whose GAN module is missing, a file that
is not a regular file inside the submitted folder, a zip member that would land outside its
folder, an archive over a limit. Only files are read, never followed out of the folder.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import items
from grader.exceptions import SubmissionError
from grader.frameworks.detect import AUTO

# The names of the graded functions in every edition: the catalogue's notebook functions
# and the PyTorch edition's names for the parts of its items.
GRADED_NAMES = frozenset(
    {spec.function for spec in items.CATALOGUE if spec.function and spec.check != items.THEORY}
    | {"discriminator_loss", "generator_loss", "get_optimizer", "ls_discriminator_loss",
       "ls_generator_loss", "build_dc_classifier", "build_dc_generator"})
DRIVER_CALLS = frozenset({"run_a_gan"})
MIN_GRADED_NAMES = 2  # a module or notebook defining fewer is not the GAN homework
GAN_MODULE_STEMS = frozenset({"gan_pytorch", "gan_tf", "gan"})  # the editions' module names
UMICH_MODULE_STEM = "gan"  # UMich's gan.py, at the top of the assignment folder

MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_NOTEBOOKS = 100  # notebooks examined in one submission
MAX_WALKED = 100_000  # folder entries looked at while searching one submission
MAX_SOURCE_BYTES = 4 * 2**20  # a .py file read to see what it defines
MAX_MODULE_FILES = 1000  # .py files of the student's packages copied to the kernel
MAX_MODULE_BYTES = 20 * 2**20
MAX_ZIP_BYTES = 512 * 2**20
MAX_ZIP_MEMBERS = 20_000
MAX_EXTRACTED_BYTES = 512 * 2**20
MAX_RATIO = 200  # uncompressed / compressed size of a member over 1 MiB
RATIO_FLOOR = 2**20
MAX_PATH_PARTS = 32  # folders within folders in an archive
MAX_ZIP_NESTING = 2  # an archive whose only content is an archive: opened once more
SKIPPED_FOLDERS = frozenset({".ipynb_checkpoints", "__MACOSX", "__pycache__"})

_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.M)
_FROM = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+\(?([\w \t,\\\n]+)\)?", re.M)
_DEF = re.compile(r"^[ \t]*def[ \t]+(\w+)", re.M)
_CALL = re.compile(r"\b(\w+)[ \t]*\(")


class SubmissionKind:
    """What was submitted."""

    NOTEBOOK = "notebook"
    FOLDER = "folder"
    ZIP = "zip"


@dataclass
class CodeScan:
    """What a piece of source imports, defines and calls (read as text, never run)."""

    imports: list[str] = field(default_factory=list)  # dotted names, in order
    defines: set[str] = field(default_factory=set)
    calls: set[str] = field(default_factory=set)


@dataclass
class Driver:
    """The notebook chosen in a folder and the student's code it imports."""

    notebook: Path  # on disk
    root: Path  # the submitted folder (or the archive's extraction)
    modules: list[str]  # .py files, relative to the notebook's folder ('/'-separated)
    gan_module: str | None  # dotted, e.g. ``cs231n.gan_pytorch``
    note: str  # what was chosen, in one sentence


def scan_code(source: str) -> CodeScan:
    """The imports, function definitions and calls of ``source``: a regular expression
    reading, so a cell that does not parse (a template left unfilled) is read too."""
    scan = CodeScan()
    lines = "\n".join(line for line in source.splitlines()
                      if not line.lstrip().startswith(("%", "!")))
    for match in _IMPORT.finditer(lines):
        for part in match.group(1).split(","):
            name = part.split()[0] if part.split() else ""
            if name:
                scan.imports.append(name)
    for match in _FROM.finditer(lines):
        module = match.group(1)
        if module.startswith("."):
            continue
        scan.imports.append(module)
        for part in match.group(2).replace("\\", " ").replace("\n", " ").split(","):
            words = part.split()
            if words and words[0].isidentifier():
                scan.imports.append(f"{module}.{words[0]}")  # it may be a submodule
    scan.defines = set(_DEF.findall(lines))
    scan.calls = set(_CALL.findall(lines))
    return scan


def notebook_code(data: dict) -> str:
    """The code cells of a notebook's parsed JSON, joined (nothing when it has none)."""
    cells = data.get("cells") if isinstance(data, dict) else None
    sources = []
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return "\n".join(sources)


def inside(path: Path, root: Path) -> bool:
    """True when ``path``, its links followed, is ``root`` or lies within it."""
    target, folder = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([target, folder]) == folder


def checked_file(path: Path, root: Path, what: str) -> None:
    """Raise SubmissionError unless ``path`` is a regular file inside ``root``."""
    try:
        mode = path.lstat().st_mode
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if not inside(path, root):  # the file, or a folder on the way, links out
        kind = "a symbolic link to" if stat.S_ISLNK(mode) else "through a symbolic link, at"
        raise SubmissionError(f"{path}: {kind} {os.path.realpath(path)}, outside the "
                              f"submitted folder {root}; submit the {what} itself")
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a folder" if stat.S_ISDIR(mode) else "not a regular file")
        raise SubmissionError(f"{path}: {kind}, not a {what} file")


def read_limited(path: Path, root: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file inside ``root`` of at most ``limit`` bytes."""
    checked_file(path, root, what)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # swapped since it was checked
                raise SubmissionError(f"{path}: not a regular file")
            data = stream.read(limit + 1)
    except OSError as error:
        raise SubmissionError(f"{path}: cannot read ({error.strerror})") from None
    if len(data) > limit:
        raise SubmissionError(f"{path}: more than {limit / 2**20:.0f} MiB, too large for a "
                              f"{what}")
    return data


def walk(root: Path):
    """``(folder, file names)`` of ``root``'s tree, sorted, without following symbolic
    links to folders, without hidden folders, checkpoints and ``__MACOSX``; SubmissionError
    past ``MAX_WALKED`` entries."""
    seen = 0
    for folder, folders, files in os.walk(root, followlinks=False):
        seen += len(folders) + len(files)
        if seen > MAX_WALKED:
            raise SubmissionError(f"{root}: more than {MAX_WALKED} files and folders; submit "
                                  "the assignment's folder without its data sets")
        folders[:] = sorted(name for name in folders
                            if name not in SKIPPED_FOLDERS and not name.startswith("."))
        yield Path(folder), sorted(files)


def notebooks_in(root: Path) -> list[Path]:
    """The notebooks of a submitted folder (see :func:`walk`), sorted."""
    found = [folder / name for folder, files in walk(root) for name in files
             if name.endswith(".ipynb")]
    if len(found) > MAX_NOTEBOOKS:
        raise SubmissionError(f"{root}: more than {MAX_NOTEBOOKS} notebooks; submit the "
                              "assignment's folder only")
    return found


def module_file(base: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` under ``base`` (``a/b.py`` or ``a/b/__init__.py``),
    when it is there (whatever kind of file it is: the caller checks)."""
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for candidate in (base.joinpath(*parts[:-1], parts[-1] + ".py"),
                      base.joinpath(*parts, "__init__.py")):
        if os.path.lexists(candidate):
            return candidate
    return None


def graded_names_defined(path: Path, root: Path) -> set[str]:
    """The graded function names a module file defines."""
    source = read_limited(path, root, MAX_SOURCE_BYTES, "Python source")
    return scan_code(source.decode("utf-8", "replace")).defines & GRADED_NAMES


@dataclass
class Candidate:
    """A notebook of the folder and what the grader read of it."""

    path: Path
    scan: CodeScan
    gan_module: str | None  # the local module it imports that defines the graded functions
    missing_module: str | None  # a GAN module it imports that the folder does not hold
    code: str = ""  # its code cells, joined

    def is_driver(self) -> bool:
        """True when this notebook is the GAN homework."""
        if self.gan_module or self.missing_module:
            return True
        if len(self.scan.defines & GRADED_NAMES) >= MIN_GRADED_NAMES:
            return True
        called = self.scan.calls & (GRADED_NAMES | DRIVER_CALLS)
        return bool(called & DRIVER_CALLS) or len(called) >= MIN_GRADED_NAMES

    def framework(self) -> str | None:
        """The framework its code is written for, as ``--profile`` names it (None when it
        mixes frameworks)."""
        from grader.exceptions import MixedFrameworks
        from grader.frameworks import REGISTRY
        from grader.frameworks.detect import detect_code

        try:
            return detect_code(self.code, REGISTRY).name
        except MixedFrameworks:
            return None


def examine(path: Path, root: Path) -> Candidate | None:
    """What ``path`` imports and defines, and its GAN module; None when it is not a
    notebook's JSON (the chosen notebook is loaded again, and refused, by the loader)."""
    import json

    raw = read_limited(path, root, MAX_NOTEBOOK_BYTES, "notebook")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None
    code = notebook_code(data)
    scan = scan_code(code)
    gan_module = missing = None
    for dotted in dict.fromkeys(scan.imports):
        found = module_file(path.parent, dotted)
        if found is not None:
            if gan_module is None and len(graded_names_defined(found, root)) >= MIN_GRADED_NAMES:
                gan_module = dotted
        elif dotted.split(".")[-1] in GAN_MODULE_STEMS and missing is None:
            missing = dotted
    if gan_module is not None:  # its framework is read from the module's code as well
        source = read_limited(module_file(path.parent, gan_module), root, MAX_SOURCE_BYTES,
                              "Python source")
        code += "\n" + source.decode("utf-8", "replace")
    return Candidate(path, scan, gan_module, None if gan_module else missing, code)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, ``/``-separated."""
    return path.relative_to(root).as_posix()


def choose_driver(root: Path, profile: str = AUTO, shown: str | None = None) -> Driver:
    """The notebook of the folder ``root`` to grade and the student's code it imports.

    The driver is the notebook that is the GAN homework (it imports a local module that
    defines the graded functions, or defines or calls them itself); the assignment's other
    notebooks are ignored. A ``profile`` other than ``auto`` keeps only the notebooks of
    its framework. ``shown`` is how messages name ``root`` (an archive's name).
    """
    shown = shown or str(root)
    notebooks = notebooks_in(root)
    if not notebooks:
        raise SubmissionError(f"{shown}: no notebook (.ipynb) in the submitted folder")
    examined = [examine(path, root) for path in notebooks]
    candidates = [one for one in examined if one is not None and one.is_driver()]
    if not candidates and len(notebooks) == 1:  # the folder's only notebook is graded
        if examined[0] is None:  # not JSON: the loader says why
            return Driver(notebooks[0], root, [], None, f"graded {relative(notebooks[0], root)}")
        candidates = [examined[0]]
    family = profile if profile != AUTO else None
    if family and len(candidates) > 1:
        candidates = [one for one in candidates if one.framework() == family] or candidates
    names = ", ".join(relative(path, root) for path in notebooks)
    if not candidates:
        raise SubmissionError(
            f"{shown}: none of its notebooks ({names}) is the GAN homework: none imports a GAN "
            "module or defines or calls the graded functions (sample_noise, "
            "discriminator_loss, ...)")
    if len(candidates) > 1:
        listed = ", ".join(relative(one.path, root) for one in candidates)
        raise SubmissionError(
            f"{shown}: {len(candidates)} notebooks could each be the GAN homework ({listed}); "
            "the grader cannot choose between them: submit only the one to grade"
            + ("" if family else ", or name its framework with --profile"))
    chosen = candidates[0]
    if chosen.missing_module:
        expected = chosen.missing_module.replace(".", "/") + ".py"
        raise SubmissionError(
            f"{shown}: {relative(chosen.path, root)} imports {chosen.missing_module}, but "
            f"the submission has no {expected} beside it: the student's code is missing")
    modules = package_files(chosen.path.parent, root, chosen.scan.imports)
    note = f"graded {relative(chosen.path, root)}"
    if chosen.gan_module:
        note += " with " + chosen.gan_module.replace(".", "/") + ".py"
    others = len(notebooks) - 1
    if others:
        note += f" (the folder's {others} other notebook(s) were not graded)"
    return Driver(chosen.path, root, modules, chosen.gan_module, note)


def package_files(base: Path, root: Path, imports: list[str]) -> list[str]:
    """The ``.py`` files of the local packages and modules ``imports`` name (relative to
    ``base``, the notebook's folder): a whole package's Python files, keeping their
    folders, within ``MAX_MODULE_FILES`` and ``MAX_MODULE_BYTES``."""
    chosen: dict[str, None] = {}
    for top in dict.fromkeys(name.split(".")[0] for name in imports):
        if not top.isidentifier():
            continue
        single, package = base / f"{top}.py", base / top
        if os.path.lexists(single):
            checked_file(single, root, "Python source")
            chosen[relative(single, base)] = None
        elif package.is_dir() and not package.is_symlink() or \
                package.is_symlink() and package.is_dir() and inside(package, root):
            for folder, files in walk(package):
                for name in files:
                    if name.endswith(".py"):
                        path = folder / name
                        checked_file(path, root, "Python source")
                        chosen[relative(path, base)] = None
        elif package.is_symlink():
            raise SubmissionError(f"{package}: a symbolic link to {os.path.realpath(package)}, "
                                  f"outside the submitted folder {root}")
    if len(chosen) > MAX_MODULE_FILES:
        raise SubmissionError(f"{base}: its packages hold more than {MAX_MODULE_FILES} Python "
                              "files")
    total = sum((base / name).stat().st_size for name in chosen)
    if total > MAX_MODULE_BYTES:
        raise SubmissionError(f"{base}: its packages' Python files hold more than "
                              f"{MAX_MODULE_BYTES / 2**20:.0f} MiB")
    return sorted(chosen)


# -- archives ----------------------------------------------------------------------------------


def member_path(name: str, shown: str) -> PurePosixPath:
    """A zip member's name as a relative path; SubmissionError when it would leave the
    folder it is extracted to (absolute, a drive, ``..``) or nests too deeply."""
    if "\x00" in name:
        raise SubmissionError(f"{shown}: a member's name holds a NUL byte")
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise SubmissionError(f"{shown}: the member {name!r} has an absolute name; the "
                              "archive would write outside its folder")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise SubmissionError(f"{shown}: the member {name!r} climbs out of the archive's "
                              "folder ('..'); it is not extracted")
    if len(parts) > MAX_PATH_PARTS:
        raise SubmissionError(f"{shown}: the member {name!r} is nested more than "
                              f"{MAX_PATH_PARTS} folders deep")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def wanted(path: PurePosixPath, notebook_folders: set[PurePosixPath]) -> bool:
    """Whether a member is extracted: notebooks, Python files, and the other files of a
    folder that holds a notebook (what its kernel may read); in an archive without any
    notebook, archives too. Data sets elsewhere are left in the archive."""
    if any(part in SKIPPED_FOLDERS for part in path.parts):
        return False
    return path.suffix in (".ipynb", ".py") or path.parent in notebook_folders \
        or not notebook_folders and path.suffix == ".zip"


def extract_zip(path: Path, target: Path, shown: str | None = None, depth: int = 1) -> Path:
    """Extract the archive ``path`` into the private folder ``target``; return the folder
    to search (``target``, or an archive's only archive, extracted beneath it).

    Every member's name is checked before anything is written; symbolic links are refused;
    only what grading may need is extracted (see :func:`wanted`), each member within the
    compression-ratio bound and all of them within ``MAX_EXTRACTED_BYTES``, counted as they
    are written (the sizes an archive declares are not trusted).
    """
    shown = shown or str(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise SubmissionError(f"{shown}: cannot read ({error.strerror})") from None
    if size > MAX_ZIP_BYTES:
        raise SubmissionError(f"{shown}: more than {MAX_ZIP_BYTES / 2**20:.0f} MiB, too large "
                              "an archive")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise SubmissionError(f"{shown}: not a readable zip archive ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise SubmissionError(f"{shown}: more than {MAX_ZIP_MEMBERS} members, too many "
                                  "for an assignment")
        planned = []
        for info in members:
            where = member_path(info.filename, shown)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SubmissionError(f"{shown}: the member {info.filename!r} is a symbolic "
                                      "link; zip the files themselves")
            if not info.is_dir() and where != PurePosixPath("."):
                planned.append((info, where))
        folders = {where.parent for _, where in planned if where.suffix == ".ipynb"}
        written = 0
        for info, where in planned:
            if not wanted(where, folders):
                continue
            if info.file_size > RATIO_FLOOR and \
                    info.file_size > MAX_RATIO * max(1, info.compress_size):
                raise SubmissionError(f"{shown}: the member {info.filename!r} expands "
                                      f"{info.file_size // max(1, info.compress_size)} times; "
                                      "a compression bomb is not extracted")
            written = _extract_member(archive, info, target / where, written, shown)
    inner = [name for name in _files(target) if name.endswith(".zip")]
    if not any(name.endswith(".ipynb") for name in _files(target)) and len(inner) == 1:
        if depth >= MAX_ZIP_NESTING:
            raise SubmissionError(f"{shown}: archives nested more than {MAX_ZIP_NESTING} deep")
        nested = target / (inner[0] + ".contents")
        nested.mkdir(mode=0o700)
        return extract_zip(target / inner[0], nested, f"{shown}/{inner[0]}", depth + 1)
    return target


def _files(folder: Path) -> list[str]:
    return [relative(base / name, folder) for base, names in walk(folder) for name in names]


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path,
                    written: int, shown: str) -> int:
    """Write one member, counting its bytes against ``MAX_EXTRACTED_BYTES``; the total."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with archive.open(info) as source, open(os.open(destination, flags, 0o600), "wb") \
                as sink:
            while block := source.read(1 << 20):
                written += len(block)
                if written > MAX_EXTRACTED_BYTES:
                    raise SubmissionError(
                        f"{shown}: more than {MAX_EXTRACTED_BYTES / 2**20:.0f} MiB to "
                        "extract; submit the assignment without its data sets")
                sink.write(block)
    except FileExistsError:
        raise SubmissionError(f"{shown}: the member {info.filename!r} is in the archive "
                              "twice") from None
    except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError,
            ValueError) as error:
        raise SubmissionError(f"{shown}: the member {info.filename!r} cannot be extracted "
                              f"({error})") from None
    return written
