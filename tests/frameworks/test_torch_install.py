"""An install without the torch extra, or with a broken one: PyTorch submissions get one clear
"install the torch extra" result, TensorFlow ones are graded as always, and nothing prints a
traceback.

Every test runs the real ``hw4grade`` in a Python that cannot import PyTorch:
``tests/fixtures/without_torch/sitecustomize.py`` hides ``torch`` and ``torchvision`` as a
machine without them does (``find_spec`` finds nothing), or breaks them as a broken wheel or
a torchvision that does not match its torch does (``find_spec`` still finds them, the import
raises ``operator torchvision::nms does not exist``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import items
from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = ROOT / "tests" / "fixtures" / "without_torch"
TORCH_NOTEBOOK = ROOT / "reference" / "HW4_solution_torch.ipynb"
TF_NOTEBOOK = ROOT / "examples" / "submissions" / "alice.ipynb"  # full marks (the README's demo)
HINT = "install the torch extra (pip install 'hw4grade[torch]')"
REFUSAL = f"PyTorch submission: {HINT} and grade it again"
MISSING = {"HW4_TEST_HIDDEN": "torch,torchvision"}
# what a Python sees, and the reason the hint gives, in each install
INSTALLS = {
    "missing": (MISSING, "ModuleNotFoundError: No module named 'torch'"),
    "broken torch": ({"HW4_TEST_BROKEN": "torch:ImportError"},
                     "ImportError: operator torchvision::nms does not exist"),
    "mismatched torchvision": ({"HW4_TEST_BROKEN": "torchvision:RuntimeError"},
                               "RuntimeError: operator torchvision::nms does not exist"),
}


def environment(blocked: dict[str, str], cache: Path) -> dict[str, str]:
    """This environment for a Python that sees the install ``blocked`` describes."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HW4_TEST_")}
    env.update(blocked, PYTHONPATH=f"{BLOCKER}{os.pathsep}{ROOT}", XDG_CACHE_HOME=str(cache))
    return env


def hw4grade(args: list[str], cwd: Path, blocked: dict[str, str],
             timeout: float = 600) -> subprocess.CompletedProcess:
    """``hw4grade ARGS`` as a real process in the install ``blocked`` describes."""
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd,
                          env=environment(blocked, cwd / "cache"), capture_output=True,
                          text=True, timeout=timeout)


def python(code: str, blocked: dict[str, str], cwd: Path) -> str:
    """What ``code`` prints in a Python of the install ``blocked`` describes."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=environment(blocked, cwd / "cache"), timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def torch_quick_maxima() -> tuple[float, float]:
    """A PyTorch submission's maximum in quick mode, and its points pending (graded by hand):
    no leaky_relu, no convergence, the derivations by hand."""
    rubric, theory = load_rubric(), items.ids_with(items.THEORY)
    autograded = sum(item.points for item in rubric.items
                     if not item.manual and item.id != "leaky_relu" and item.id not in theory
                     and items.spec(item.id).check != items.CONVERGENCE)
    return autograded, sum(item.points for item in rubric.items
                           if item.manual or item.id in theory)


@pytest.mark.parametrize("install", sorted(INSTALLS))
def test_installed_means_importable(install, tmp_path):
    """The blocker makes each install what it says (so the tests below can fail: in the
    broken installs, looking for the package finds it), and the grader names the reason."""
    blocked, reason = INSTALLS[install]
    found, problem = json.loads(python(
        "import importlib.util, json\n"
        "from grader.frameworks.torch.library import torch_problem\n"
        "found = [importlib.util.find_spec(name) is not None for name in "
        "('torch', 'torchvision')]\n"
        "print(json.dumps([found, torch_problem()]))\n", blocked, tmp_path))
    assert found == ([False, False] if install == "missing" else [True, True])
    assert problem == reason


@pytest.fixture(scope="module")
def batch(tmp_path_factory, mnist_dir) -> dict:
    """``hw4grade grade`` of a PyTorch and a TensorFlow notebook without PyTorch."""
    base = tmp_path_factory.mktemp("no-torch")
    (base / "class").mkdir()
    shutil.copy(TORCH_NOTEBOOK, base / "class" / "torch.ipynb")
    shutil.copy(TF_NOTEBOOK, base / "class" / "alice.ipynb")
    done = hw4grade(["grade", "class", "--out", "out", "--seed", "0", "--timeout", "120",
                     "--mnist", str(mnist_dir)], base, MISSING)
    with open(base / "out" / "gradebook.csv", newline="", encoding="utf-8") as stream:
        rows = {row["submission"]: row for row in csv.DictReader(stream)}
    return {"done": done, "out": base / "out", "rows": rows}


def test_a_batch_without_pytorch_ends_as_a_batch_does(batch):
    assert batch["done"].returncode == 0, batch["done"].stderr
    assert set(batch["rows"]) == {"torch.ipynb", "alice.ipynb"}


def test_the_pytorch_submission_gets_the_install_hint(batch):
    row = batch["rows"]["torch.ipynb"]
    assert row["status"] == "error" and row["error"].startswith(REFUSAL), row
    result = json.loads((batch["out"] / "results" / "torch.json").read_text(encoding="utf-8"))
    assert result["error"] == f"{REFUSAL}; this install of hw4grade cannot import PyTorch " \
                              "(ModuleNotFoundError: No module named 'torch')"
    assert not result["retry"]  # not a grader fault: the same install refuses it again
    # scored out of the PyTorch edition's maximum, as when it is graded: no leaky_relu, and
    # the derivations (answered in writing in that edition) pending, graded by hand
    assert row["profile"].startswith("torch"), row
    by_id = {item["id"]: item for item in result["items"]}
    assert (by_id["leaky_relu"]["max_points"], by_id["leaky_relu"]["status"]) == (0, "skipped")
    theory = items.ids_with(items.THEORY)
    assert theory and all(by_id[item_id]["status"] == "manual" for item_id in theory), by_id
    assert "grade it by hand" in by_id[theory[0]]["message"]
    assert (float(row["max_score"]), float(row["pending_max"])) == torch_quick_maxima(), row
    for page in ("torch.html", "torch.md"):
        assert "install the torch extra" in (batch["out"] / "feedback" / page).read_text()
    assert REFUSAL in batch["done"].stdout


def test_the_tensorflow_submission_gets_its_usual_points(batch):
    """alice gets every autograded point in a normal install (the demo in tests/test_readme.py)."""
    row = batch["rows"]["alice.ipynb"]
    assert (row["error"], row["profile"], row["score"], row["max_score"]) == ("", "tf2", "90",
                                                                              "90")
    rubric = load_rubric()
    for item in rubric.items:
        if row[item.id] != "":  # graded (hand-graded and skipped items are empty)
            assert float(row[item.id]) == item.points, item.id


def test_nothing_prints_a_traceback(batch):
    texts = {"stdout": batch["done"].stdout, "stderr": batch["done"].stderr}
    for path in batch["out"].rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".md", ".csv", ".log"):
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert [name for name, text in texts.items() if "Traceback" in text] == []


@pytest.mark.parametrize("install", [
    "missing", "broken torch",
    pytest.param("mismatched torchvision", marks=pytest.mark.slow)])  # told like broken torch
def test_check_says_it_in_one_line_and_exits_2(install, tmp_path, mnist_dir):
    """The README's exit code for a notebook that could not be graded at all; the hint on
    one line of the report, with why PyTorch cannot be imported."""
    blocked, reason = INSTALLS[install]
    shutil.copy(TORCH_NOTEBOOK, tmp_path / "torch.ipynb")
    done = hw4grade(["check", "torch.ipynb", "--mnist", str(mnist_dir)], tmp_path, blocked)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stdout.splitlines() if "install the torch extra" in line]
    assert lines == [f"  ERROR (not graded): {REFUSAL}; this install of hw4grade cannot import "
                     f"PyTorch ({reason})"]
    assert "Traceback" not in done.stdout + done.stderr
    assert "absl" not in done.stderr  # TensorFlow's start-up stays off the terminal


def test_check_profile_torch_and_a_students_install_refuse_alike(tmp_path, mnist_dir):
    """``--profile torch`` on a TensorFlow notebook, and a student's install (no reference
    package: no PyTorch reference to load either) give the same result."""
    shutil.copy(TF_NOTEBOOK, tmp_path / "alice.ipynb")
    shutil.copy(TORCH_NOTEBOOK, tmp_path / "torch.ipynb")
    student = {"HW4_TEST_HIDDEN": "torch,torchvision,reference"}
    for args, blocked in ((["alice.ipynb", "--profile", "torch"], MISSING),
                          (["torch.ipynb"], student)):
        done = hw4grade(["check", *args, "--mnist", str(mnist_dir)], tmp_path, blocked)
        assert done.returncode == 2, done.stderr
        assert f"ERROR (not graded): {REFUSAL}" in done.stdout
        assert "Traceback" not in done.stdout + done.stderr


def test_a_torch_release_without_pytorch_is_refused_before_any_grading(tmp_path):
    done = hw4grade(["release", "--edition", "torch", "--out", "bundle"], tmp_path, MISSING,
                    timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"hw4grade: the torch edition's reference cannot be loaded: {HINT}; this install of "
        "hw4grade cannot import PyTorch (ModuleNotFoundError: No module named 'torch')")
    assert "grading" not in done.stderr and "Traceback" not in done.stderr


def test_a_pytorch_install_without_tensorflow_grades_pytorch_notebooks(tmp_path, mnist_dir):
    """What a PyTorch course installs (the torch extra alone, as its Gradescope package
    does): no TensorFlow anywhere, and the PyTorch solution gets every autograded point."""
    shutil.copy(TORCH_NOTEBOOK, tmp_path / "torch.ipynb")
    no_tensorflow = {"HW4_TEST_HIDDEN": "tensorflow,keras,tf_keras"}
    done = hw4grade(["check", "torch.ipynb", "--mnist", str(mnist_dir), "--format", "json"],
                    tmp_path, no_tensorflow)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["profile"].startswith("torch") and not result["error"]
    assert result["score"] == result["max_score"] > 0
    # the same maximum as a refused PyTorch submission's (test_the_pytorch_submission_...)
    assert (result["max_score"], result["pending_max"]) == torch_quick_maxima()
    assert "Traceback" not in done.stderr
