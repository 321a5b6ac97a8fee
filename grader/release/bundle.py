"""``hw4grade release`` and ``hw4grade gradescope-package``: what students and Gradescope get.

``hw4grade release --out DIR [--edition NAME]`` writes the students' bundle of an edition
(``grader.frameworks.editions``: ``tf2``, the default, or ``torch``):

* ``HW4.ipynb`` (``HW4_torch.ipynb``), the student template (checked to be up to date with
  the solution);
* ``README.md``, how to install and run the checker and what its results mean;
* ``.github/workflows/classroom.yml``, GitHub Classroom's autograding workflow;
* ``wheels/hw4grade-<version>+student-py3-none-any.whl``, the grader without the
  ``reference`` package, carrying public checks recorded by grading the solution notebook
  with the public seed (see ``grader.oracles.public``); the PyTorch edition's carries the
  TensorFlow edition's public checks too.

``hw4grade gradescope-package --out autograder.zip`` writes Gradescope's autograder:
``setup.sh``, ``run_autograder`` and an instructor wheel that includes ``reference``.

The wheels are written here, by ``build_wheel``, as plain zip files laid out by the wheel
specification (PEP 427): nothing is needed beyond the standard library, no build backend
and no network, and the same sources give the same bytes.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader import items
from grader.exceptions import FrameworkNotInstalled, ReleaseError
from grader.frameworks.editions import DEFAULT_EDITION, EDITIONS, Edition
from grader.pipeline.devices import Device
from grader.result import ItemStatus
from grader.rubric import Mode

if TYPE_CHECKING:
    from grader.oracles.interface import BuildingOracle
    from grader.oracles.public import PublicChecks
    from grader.pipeline.grade_one import Options

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_DIR = Path(__file__).resolve().parent / "templates"
STUDENT_NOTEBOOK = EDITIONS[DEFAULT_EDITION].notebook  # also Gradescope's submission's name
WHEEL_DIR = "wheels"
WORKFLOW_PATH = ".github/workflows/classroom.yml"
CLASSROOM_RUNNER = "hw4grade"  # the grading step's id, and the reporter's runner name
CLASSROOM_PYTHON = "3.11"
# grader files only an instructor uses; modules importing ``reference`` are left out too
# Left out of the student wheel, by path inside the package (a file, or a folder and all in it).
INSTRUCTOR_ONLY = frozenset({"release/bundle.py", "release/templates", "commands/release.py",
                             "frameworks/editions.py"})
PUBLIC_CHECKS_PREFIX = "grader/data/public_checks"  # every edition's, in the package's data
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same files give the same zip
PLACEHOLDER = re.compile(r"@[A-Z_]+@")
COMMAND_NAMES = ("release", "gradescope-package")


# --------------------------------------------------------------------------- templates


def render(template_name: str, values: dict[str, str]) -> str:
    """The template ``grader/bundle/<template_name>`` with each ``@KEY@`` replaced."""
    text = (BUNDLE_DIR / template_name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(PLACEHOLDER.findall(text)))
    if left:
        raise ReleaseError(f"{template_name}: no value for {', '.join(left)}")
    return text


def workflow_text(wheel_path: str, notebook: str = STUDENT_NOTEBOOK,
                  edition: Edition = EDITIONS[DEFAULT_EDITION]) -> str:
    """GitHub Classroom's workflow for a bundle whose grader wheel is at ``wheel_path``."""
    return render(edition.workflow, {
        "WHEEL_PATH": wheel_path, "NOTEBOOK": notebook, "PYTHON_VERSION": CLASSROOM_PYTHON,
        "RUNNER": CLASSROOM_RUNNER, "RUNNER_ENV": CLASSROOM_RUNNER.upper(),
        "EXTRAS": ",".join(edition.extras), "LIBRARY": library_requirements(edition)})


def library_requirements(edition: Edition, root: Path = PROJECT_ROOT) -> str:
    """The requirements of the edition's library extra, quoted for a shell
    (``"torch==2.14.*" "torchvision==0.29.*"``), as ``pyproject.toml`` pins them."""
    return " ".join(f'"{requirement}"'
                    for requirement in read_project(root).extras[edition.extras[0]])


# --------------------------------------------------------------------------- wheels


@dataclass(frozen=True)
class Project:
    """The parts of ``pyproject.toml`` a wheel's metadata needs."""

    name: str
    version: str
    summary: str
    requires_python: str
    dependencies: list[str]
    extras: dict[str, list[str]]
    scripts: dict[str, str]


def read_project(root: Path = PROJECT_ROOT) -> Project:
    """Read the project's metadata from ``root/pyproject.toml`` (the ``dev`` extra dropped)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise ReleaseError("building bundles needs Python 3.11 or newer (tomllib)") from None
    with open(root / "pyproject.toml", "rb") as stream:
        project = tomllib.load(stream)["project"]
    extras = {name: list(deps) for name, deps in project.get("optional-dependencies", {}).items()
              if name != "dev"}
    return Project(name=project["name"], version=project["version"],
                   summary=project.get("description", ""),
                   requires_python=project.get("requires-python", ""),
                   dependencies=list(project.get("dependencies", [])), extras=extras,
                   scripts=dict(project.get("scripts", {})))


def imports_reference(source: str) -> bool:
    """True when a module imports the ``reference`` package at its top level."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "reference" or name.startswith("reference.") for name in names):
            return True
    return False


def package_files(package_dir: Path, skip: Iterable[str] = ()) -> dict[str, bytes]:
    """Files of a package for a wheel, by archive path; no caches, hidden or skipped entries.

    ``skip`` names entries by their path inside ``package_dir`` (files, or folders with all
    they hold).
    """
    skip = set(skip)
    files = {}
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        inside = {"/".join(relative.parts[:depth]) for depth in range(1, len(relative.parts) + 1)}
        if (not path.is_file() or inside & skip or path.suffix == ".pyc"
                or any(part == "__pycache__" or part.startswith(".") for part in relative.parts)):
            continue
        files[f"{package_dir.name}/{relative.as_posix()}"] = path.read_bytes()
    return files


def student_files(root: Path, public_checks: dict[str, bytes],
                  rubric: bytes) -> tuple[dict[str, bytes], list[str]]:
    """The student wheel's files, and the grader modules left out because they need the
    reference. ``public_checks`` maps file names to bytes for ``grader/data``."""
    grader_dir = root / "grader"
    files = package_files(grader_dir, INSTRUCTOR_ONLY)
    left_out = sorted(name for name, data in files.items()
                      if name.endswith(".py") and imports_reference(data.decode("utf-8")))
    for name in left_out:
        del files[name]
    files = {name: data for name, data in files.items()
             if not name.startswith(PUBLIC_CHECKS_PREFIX)}
    files.update({f"grader/data/{name}": data for name, data in public_checks.items()})
    files["grader/rubric.yaml"] = rubric
    return files, left_out


def instructor_files(root: Path) -> dict[str, bytes]:
    """The instructor wheel's files: the whole grader, the rubric and ``reference``'s modules."""
    files = {name: data for name, data in package_files(root / "grader").items()
             if not name.startswith(PUBLIC_CHECKS_PREFIX)}
    files["grader/rubric.yaml"] = (root / "rubric.yaml").read_bytes()
    files.update({name: data for name, data in package_files(root / "reference").items()
                  if name.endswith(".py")})
    return files


def metadata_text(project: Project, version: str) -> str:
    """Core metadata (``METADATA``) of the wheel."""
    lines = ["Metadata-Version: 2.1", f"Name: {project.name}", f"Version: {version}",
             f"Summary: {project.summary}"]
    if project.requires_python:
        lines.append(f"Requires-Python: {project.requires_python}")
    lines += [f"Requires-Dist: {dep}" for dep in project.dependencies]
    for extra, deps in project.extras.items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {dep}; extra == "{extra}"' for dep in deps]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_wheel(files: dict[str, bytes], project: Project, version: str, out_dir: Path) -> Path:
    """Write a pure-Python wheel of ``files`` (archive path -> bytes); return its path."""
    dist_info = f"{project.name}-{version}.dist-info"
    entry_points = "[console_scripts]\n" + "".join(
        f"{name} = {target}\n" for name, target in project.scripts.items())
    meta = {
        f"{dist_info}/METADATA": metadata_text(project, version).encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: hw4grade release\n"
                               b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
        f"{dist_info}/entry_points.txt": entry_points.encode(),
    }
    contents = {**dict(sorted(files.items())), **meta}
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in contents.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{project.name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            _zip_entry(archive, name, data)
        _zip_entry(archive, f"{dist_info}/RECORD", record.getvalue().encode())
    return path


# --------------------------------------------------------------------------- public checks


def grading_options(rubric_path: Path, mnist: str | None, cache_dir: Path,
                    seed: int) -> Options:
    """Quick-mode, CPU grading options with ``seed`` and this rubric (MNIST resolved); the
    framework is read from each notebook (``record_public_checks`` sets the edition's)."""
    from grader.pipeline.grade_one import Options, default_threads, prepare_mnist
    from grader.pipeline.sandbox import bubblewrap_problem
    from grader.rubric import load_rubric

    # the solution notebook is the instructor's own: sandboxed where bubblewrap runs
    return Options(rubric=load_rubric(rubric_path), mode=Mode.QUICK, seed=seed, device=Device.CPU,
                   threads=default_threads(1), mnist_npz=prepare_mnist(mnist, cache_dir),
                   sandbox=bubblewrap_problem() is None)


def expected_methods(edition: Edition) -> list[str]:
    """The oracle's methods that grading the edition's solution must ask (the activation is
    asked only by the activation items, which the PyTorch edition does not have)."""
    from grader.frameworks import REGISTRY
    from grader.oracles.public import RECORDED_METHODS

    excluded = REGISTRY[edition.framework]().excluded_items()
    activations = [item for item in items.ids_with(items.ACTIVATION) if item not in excluded]
    return [method for method in RECORDED_METHODS if method != "activation" or activations]


def reference_oracle(edition: Edition) -> BuildingOracle:
    """The edition's reference oracle; ``ReleaseError`` when this install cannot load it (no
    reference package, or not its library: the message says which extra to install)."""
    from grader.oracles.reference import reference_available

    if not reference_available():
        raise ReleaseError("the reference package is not installed: bundles are built from "
                           "the instructor's checkout")
    try:
        return edition.reference_oracle()
    except FrameworkNotInstalled as error:  # its message names the extra
        raise ReleaseError(f"the {edition.framework} edition's reference cannot be loaded: "
                           f"{error}") from None
    except ImportError as error:
        raise ReleaseError(f"the {edition.framework} edition's reference cannot be loaded "
                           f"({error}): install the {edition.extras[0]} extra") from None


def record_public_checks(solution: Path, options: Options,
                         edition: Edition = EDITIONS[DEFAULT_EDITION],
                         reference: BuildingOracle | None = None) -> PublicChecks:
    """Grade the solution through a ``RecordingOracle`` wrapping the edition's reference
    oracle (``reference``, loaded here when not given), as the edition's framework; its
    recording, if all items pass."""
    from dataclasses import replace

    from grader.oracles.public import RecordingOracle
    from grader.pipeline.grade_one import grade_notebook

    if reference is None:
        reference = reference_oracle(edition)
    oracle = RecordingOracle(reference, options.seed, options.mode, options.rubric)
    result = grade_notebook(solution, replace(options, profile=edition.framework), oracle)
    short = [f"{item.id} ({item.status}: {item.message})" for item in result.items
             if item.status not in (ItemStatus.MANUAL, ItemStatus.SKIPPED)
             and item.points < item.max_points]
    if result.error or short:
        raise ReleaseError(f"the solution {solution} does not get full marks, so its answers "
                           "cannot be published: " + (result.error or "; ".join(short)))
    methods = {entry["method"] for entry in oracle.checks.answers.values()}
    missing = [method for method in expected_methods(edition) if method not in methods]
    if missing:
        raise ReleaseError(f"the grading never asked the oracle for {', '.join(missing)}")
    return oracle.checks


def check_template(solution: Path, template: Path) -> None:
    """Refuse a template that is not what ``hw4grade template`` makes of the solution."""
    import nbformat

    from grader.release.template import make_template

    expected = nbformat.writes(make_template(nbformat.read(solution, as_version=4))) + "\n"
    if template.read_text(encoding="utf-8") != expected:
        raise ReleaseError(f"{template} is not the template of {solution}: run hw4grade template")


# --------------------------------------------------------------------------- the bundles


@dataclass
class Bundle:
    """What ``write_release`` wrote."""

    root: Path
    wheel: Path
    files: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def write_release(out: Path, template: Path, checks_dir: Path, rubric: bytes, seed: int,
                  root: Path = PROJECT_ROOT,
                  edition: Edition = EDITIONS[DEFAULT_EDITION]) -> Bundle:
    """Write the students' bundle of ``edition`` into ``out`` from its template, saved public
    checks (every file of ``checks_dir``) and the rubric they were recorded with."""
    project = read_project(root)
    public = {path.name: path.read_bytes() for path in sorted(checks_dir.iterdir())}
    files, left_out = student_files(root, public, rubric)
    wheel = build_wheel(files, project, f"{project.version}+student", out / WHEEL_DIR)
    wheel_path = f"{WHEEL_DIR}/{wheel.name}"
    written = {
        edition.notebook: template.read_text(encoding="utf-8"),
        "README.md": render(edition.readme, {
            "NOTEBOOK": edition.notebook, "WHEEL_PATH": wheel_path, "WHEEL_DIR": WHEEL_DIR,
            "PUBLIC_SEED": str(seed), "EXTRAS": ",".join(edition.extras)}),
        WORKFLOW_PATH: workflow_text(wheel_path, edition.notebook, edition),
    }
    bundle = Bundle(out, wheel, left_out=left_out)
    for name, text in written.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        bundle.files.append(path)
    bundle.files.append(wheel)
    return bundle


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse to write into a folder that has files, unless ``force``."""
    if out.exists() and any(out.iterdir()) and not force:
        raise ReleaseError(f"{out} is not empty; use --force to replace the bundle in it")


def remove_previous(out: Path) -> None:
    """Remove what an earlier ``release`` of any edition wrote into ``out`` (and nothing
    else)."""
    notebooks = [edition.notebook for edition in EDITIONS.values()]
    for name in (*notebooks, "README.md", WORKFLOW_PATH):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / WHEEL_DIR, ignore_errors=True)


def write_gradescope_zip(out: Path, mode: str, mnist_npz: Path | None = None,
                         root: Path = PROJECT_ROOT,
                         edition: Edition = EDITIONS[DEFAULT_EDITION]) -> Path:
    """Write Gradescope's autograder zip for ``edition``: setup.sh (installing the edition's
    extras), run_autograder, the instructor wheel (every edition's reference)."""
    if not (root / "reference" / "hw4.py").is_file():
        raise ReleaseError(f"{root / 'reference'}: no reference solution to package")
    project = read_project(root)
    with tempfile.TemporaryDirectory(prefix="hw4grade-wheel-") as scratch:
        wheel = build_wheel(instructor_files(root), project, f"{project.version}+instructor",
                            Path(scratch))
        scripts = {
            "setup.sh": render("gradescope_setup.sh", {
                "WHEEL": wheel.name, "EXTRAS": ",".join(edition.gradescope_extras)}),
            "run_autograder": render("gradescope_run_autograder", {
                "MODE": mode, "NOTEBOOK": edition.notebook}),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as archive:
            for name, text in scripts.items():
                _zip_entry(archive, name, text.encode(), mode=0o755)
            _zip_entry(archive, wheel.name, wheel.read_bytes())
            if mnist_npz is not None:
                _zip_entry(archive, "mnist.npz", mnist_npz.read_bytes())
    return out


# --------------------------------------------------------------------------- commands
