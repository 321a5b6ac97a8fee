"""The README's commands, run as a new user runs them.

The repository (what ``git ls-files`` lists) is copied into a fresh folder whose name has a
space and non-ASCII characters, and every command of the README's ``bash`` blocks is run
there as written, from the copy's root, with relative paths; commands that are not run
here are listed in ``NOT_RUN`` with the reason. The copy's ``.venv`` holds links to the
virtualenv running this test and a ``scripts/setup`` stamp for the copy's
``pyproject.toml``, so ``scripts/setup`` finds it installed (the install itself runs in CI,
where ``.ci/run`` starts with ``scripts/demo`` on a clean clone); ``PYTHONPATH`` makes the
copy's code the code that runs, as an editable install of the copy would.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.rubric import load_rubric

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = load_rubric()
UNITS = ("leaky_relu", "sample_noise", "discriminator", "generator", "gan_loss", "get_solvers",
         "lsgan_loss", "dc_discriminator", "dc_generator", "optimal_d_gan", "optimal_d_lsgan",
         "vae_kl")
EXPECTED_LOSSES = {  # the examples' README description: where each one loses points
    "alice": set(),
    "bob": {"gan_loss", "generator", "sample_noise"},
    "carol": set(UNITS),
    "dave": {"lsgan_loss", "runs_clean"},
}
FULL_MODE = "hw4grade grade submissions/ --out out/ --mode full --seed 7"
NOT_RUN = {
    "scripts/test": "it runs this test suite",
    FULL_MODE: "trains every GAN (minutes per notebook): run by the slow test below",
    'pip install "wheels/hw4grade-0.1.0+student-py3-none-any.whl[tf]"':
        "runs in a student's release bundle: tests/release/test_release.py installs that wheel",
    "hw4grade check HW4.ipynb": "runs in a student's release bundle: tests/release/test_release.py",
    "hw4grade grade submissions/ --out out/ --cluster tcp://scheduler.example.edu:8786":
        "needs a running scheduler: tests/pipeline/backends/test_cluster.py starts one with "
        "dask's own CLI",
    "hw4grade grade submissions/ --out out/ --mode full --cluster slurm --jobs 10 "
    "--partition cpu --job-cores 8 --job-memory 32GiB --walltime 02:00:00":
        "needs a Slurm cluster: tests/pipeline/backends/test_cluster.py grades through sbatch "
        "where it works",
    "hw4grade grade submissions/ --out out/ --mode full --device gpu --cluster slurm --jobs 4 "
    "--partition gpu --job-cores 8 --gpus-per-job 2":
        "needs a Slurm cluster with GPUs; its job script is checked by the dry run below",
}
COLLECT = "hw4grade collect roster.csv --deadline 2026-03-01T23:59:00-05:00 --out collected/"
CLASS_COMMANDS = (COLLECT, "hw4grade grade collected/ --out class/", "hw4grade report class/",
                  'hw4grade gradebook class/ --canvas canvas-export.csv --assignment '
                  '"HW4 (123456)"')
NOT_RUN[COLLECT + " --from-clones clones/"] = (
    "reads clones made beforehand: tests/collect/test_collect.py "
    "(test_hooks_and_submodules_never_run) collects from a clone with --from-clones")
CLUSTER_LOCAL = "hw4grade grade submissions/ --out out/ --cluster local --workers 4"
SLURM_DRY_RUN = "hw4grade grade submissions/ --out out/ --cluster slurm --gpus-per-job 2 --dry-run"
TF_NOISE = re.compile(r"^(I0000|W0000|E0000|WARNING: All log messages)|cuInit|cuda drivers",
                      re.MULTILINE)


def readme_commands() -> list[str]:
    """Every command line of the README's ``bash`` blocks, without its trailing comment."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in re.sub(r"\\\n\s*", "", block).splitlines():  # continued lines joined
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("copying the repository needs git and a checkout")
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode()
    return [name for name in listing.split("\0") if name and (ROOT / name).is_file()]


def _link_venv(copy: Path) -> None:
    """``copy/.venv``: links to this test's virtualenv, set up for the copy's pyproject."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the README's commands need the virtualenv scripts/setup makes")
    venv = copy / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if entry.name != "hw4grade-setup.sha256":
            (venv / entry.name).symlink_to(entry)
    digest = hashlib.sha256((copy / "pyproject.toml").read_bytes()).hexdigest()
    (venv / "hw4grade-setup.sha256").write_text(digest + "\n")


class Shell:
    """Runs README commands with bash from the copy's root, in the user's environment with
    the copy's virtualenv activated."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("PYTEST", "COV_"))}
        self.env.update(PATH=f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
                        PYTHONPATH=str(root), VIRTUAL_ENV=str(root / ".venv"))

    def run(self, command: str, timeout: float = 900) -> subprocess.CompletedProcess:
        ran = subprocess.run(["bash", "-c", command], cwd=self.root, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        print(f"$ {command}\n{ran.stdout}{ran.stderr}")  # shown when a test fails
        return ran


@pytest.fixture(scope="module")
def shell(tmp_path_factory) -> Shell:
    copy = tmp_path_factory.mktemp("readme") / "a new user's hw4grade — ünï"
    for name in _tracked_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    _link_venv(copy)
    return Shell(copy)


@pytest.fixture(scope="module")
def demo(shell, tmp_path_factory) -> subprocess.CompletedProcess:
    """``scripts/demo`` as a new user runs it: no HW4_MNIST_DIR, an empty Keras cache."""
    assert "scripts/demo" in readme_commands()
    saved = dict(shell.env)
    shell.env.pop("HW4_MNIST_DIR", None)
    shell.env["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras-home"))
    try:
        return shell.run("scripts/demo")
    finally:
        shell.env.clear()
        shell.env.update(saved)


def _verdicts(stdout: str) -> dict[str, str]:
    """``name -> total`` from the summary lines a ``grade`` or ``gradebook`` run prints."""
    return dict(re.findall(r"^(\S+) {2,}(.+)$", stdout, re.MULTILINE))


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as stream:
        return {row["submission"]: row for row in csv.DictReader(stream)}


def _check_totals_agree(out: Path, printed: dict[str, str]) -> dict[str, dict]:
    """Terminal, results/*.json, gradebook.csv and the feedback pages give one total each."""
    book = _gradebook(out)
    results = {}
    for path in sorted((out / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name, row = path.stem, book[data["submission"]]
        assert (row["score"], row["max_score"], row["pending_max"]) == (
            f"{data['score']:g}", f"{data['max_score']:g}", f"{data['pending_max']:g}"), name
        total = printed[name].split("; not graded")[0]
        assert total.startswith(f"{data['score']:g} / {data['max_score']:g}"), name
        for page in ("md", "html"):
            text = (out / "feedback" / f"{name}.{page}").read_text(encoding="utf-8")
            assert f"Total: {total}" in text.replace("**", ""), (name, page)
        results[name] = data
    assert set(results) == set(printed)
    return results


def _lost(data: dict) -> set[str]:
    return {item["id"] for item in data["items"]
            if item["status"] not in ("manual", "hand_graded", "skipped")
            and item["points"] < item["max_points"]}


def test_every_readme_command_is_run_or_accounted_for():
    run_here = {"scripts/demo", "hw4grade grade submissions/ --out out/ --workers 2",
                "cp out/manual-template.csv derivations.csv",
                "hw4grade gradebook out/ --manual derivations.csv",
                "hw4grade theory --plot figures/", "hw4grade rubric", CLUSTER_LOCAL,
                SLURM_DRY_RUN, *CLASS_COMMANDS}
    assert set(readme_commands()) == run_here | set(NOT_RUN)


def test_demo_gives_the_examples_their_grades(shell, demo):
    assert demo.returncode == 0
    out = shell.root / "out" / "examples"
    printed = _verdicts(demo.stdout)
    results = _check_totals_agree(out, printed)
    quick_max = sum(item.points for item in RUBRIC.items
                    if not item.manual and not item.id.endswith("_convergence"))
    for name, lost in EXPECTED_LOSSES.items():
        assert _lost(results[name]) == lost, name
    alice = results["alice"]
    assert alice["score"] == alice["max_score"] == quick_max == 90
    assert printed["alice"] == "90 / 90 autograded; 30 more points pending (graded by hand)"
    # quick mode: the convergence items are 0 of 0 everywhere, erin's error result included
    assert results["erin"]["max_score"] == quick_max and "not valid JSON" in printed["erin"]
    erin = _gradebook(out)["erin.ipynb"]
    assert erin["status"] == "error" and "not valid JSON" in erin["error"]
    for data in results.values():
        for item in data["items"]:
            if item["id"].endswith("_convergence"):
                assert (item["status"], item["max_points"]) == ("skipped", 0)
    page = (out / "feedback" / "alice.md").read_text(encoding="utf-8")
    assert "Cells that failed" not in page  # the budget's cut-offs are not failures
    assert "Training cells stopped by the grader's step budget" in page
    assert (out / "manual-template.csv").is_file()


def test_demo_prints_no_tensorflow_or_pip_noise(shell, demo):
    assert not TF_NOISE.search(demo.stderr + demo.stdout)
    assert "pip" not in demo.stderr.lower()
    assert (shell.root / "out" / "examples" / "hw4grade.log").is_file()
    assert "hw4grade: grading 5 notebook(s)" in demo.stderr
    assert "MNIST from " in demo.stderr  # the source is always said


def test_instructor_commands_grade_merge_and_keep_merges(shell, demo):
    submissions = shell.root / "submissions"
    submissions.mkdir()
    for name in ("alice", "dave"):
        shutil.copy2(shell.root / "examples" / "submissions" / f"{name}.ipynb", submissions)
    graded = shell.run("hw4grade grade submissions/ --out out/ --workers 2")
    assert graded.returncode == 0
    out = shell.root / "out"
    assert _lost(_check_totals_agree(out, _verdicts(graded.stdout))["dave"]) == \
        EXPECTED_LOSSES["dave"]

    assert shell.run("cp out/manual-template.csv derivations.csv").returncode == 0
    template = (shell.root / "derivations.csv").read_text(encoding="utf-8")
    assert template.splitlines() == ["submission,problem1_derivation,problem2_derivation",
                                     "alice.ipynb,,", "dave.ipynb,,"]
    (shell.root / "derivations.csv").write_text(  # the instructor's marks
        "submission,problem1_derivation,problem2_derivation\nalice.ipynb,15,12.5\n"
        "dave.ipynb,10,\n", encoding="utf-8")
    merged = shell.run("hw4grade gradebook out/ --manual derivations.csv")
    assert merged.returncode == 0
    printed = _verdicts(merged.stdout)
    results = _check_totals_agree(out, printed)
    assert printed["alice"] == "117.5 / 120 (90 / 90 autograded + 27.5 / 30 graded by hand)"
    assert (results["dave"]["score"], results["dave"]["pending_max"]) == (85, 15)

    # a second file adds dave's other derivation: alice's earlier merge is kept
    (shell.root / "more.csv").write_text("submission,problem2_derivation\ndave,9\n")
    assert shell.run("hw4grade gradebook out/ --manual more.csv").returncode == 0
    book = _gradebook(out)
    assert (book["alice.ipynb"]["score"], book["alice.ipynb"]["status"]) == ("117.5", "graded")
    assert (book["dave.ipynb"]["problem1_derivation"], book["dave.ipynb"]["problem2_derivation"],
            book["dave.ipynb"]["status"]) == ("10", "9", "graded")
    # an unknown student or item: a clear message, nothing merged
    (shell.root / "bad.csv").write_text("submission,problem9\nzed,3\n")
    bad = shell.run("hw4grade gradebook out/ --manual bad.csv")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "bad.csv: row 1, column 'problem9': is not a hand-graded item id" in bad.stderr
    assert "bad.csv: row 2, column 'submission': unknown submission 'zed'" in bad.stderr
    assert _gradebook(out)["dave.ipynb"]["problem2_derivation"] == "9"


def test_cluster_commands(shell, demo):
    submissions = shell.root / "cluster-submissions"
    submissions.mkdir()
    shutil.copy2(shell.root / "examples" / "submissions" / "dave.ipynb", submissions)
    command = CLUSTER_LOCAL.replace("submissions/", "cluster-submissions/") \
        .replace("out/", "cluster-out/")
    graded = shell.run(command)  # in folders of its own: the other tests use out/
    assert graded.returncode == 0, graded.stderr[-2000:]
    results = _check_totals_agree(shell.root / "cluster-out", _verdicts(graded.stdout))
    assert _lost(results["dave"]) == EXPECTED_LOSSES["dave"]
    dry = shell.run(SLURM_DRY_RUN)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "#SBATCH --gres=gpu:2" in dry.stdout and "Traceback" not in dry.stderr


def test_theory_and_rubric_commands(shell):
    theory = shell.run("hw4grade theory --plot figures/")
    assert theory.returncode == 0 and (shell.root / "figures" / "optimal_d.png").is_file()
    rubric = shell.run("hw4grade rubric")
    assert rubric.returncode == 0 and "valid" in rubric.stdout


def test_class_round_commands(shell, tmp_path):
    """collect from real repositories, grade, the class page, Canvas's import file."""
    from tests.fixtures.git_repos import Repo, when

    alice = Repo(tmp_path / "repos" / "alice")
    alice.write("HW4.ipynb", (ROOT / "examples" / "submissions" / "alice.ipynb").read_bytes())
    good = alice.commit("done", when(days=-1))
    alice.write("HW4.ipynb", "broken after the deadline").commit("late", when(hours=1))
    (shell.root / "roster.csv").write_text(
        f"student,repository,sis_login_id\nalice,{alice.path},A1\n"
        f"bob,{tmp_path / 'repos' / 'bob'},b2\n", encoding="utf-8")
    (shell.root / "canvas-export.csv").write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,HW4 (123456)\n"
        "    Points Possible,,,,,120\nAlice,1,S1,a1,001,\nZed,2,S2,z9,001,\n")
    collect, grade, report, canvas = (shell.run(command) for command in CLASS_COMMANDS)
    assert collect.returncode == 0 and "1 collected, 1 repository unreachable" in collect.stdout
    assert grade.returncode == 0, grade.stderr[-2000:]
    printed = _verdicts(grade.stdout)
    assert printed["alice__HW4"].startswith("90 / 90 autograded")
    book = _gradebook(shell.root / "class")
    assert book["alice/HW4.ipynb"]["commit"] == good and book["bob"]["score"] == "0"
    assert report.returncode == 0 and (shell.root / "class" / "index.html").is_file()
    assert canvas.returncode == 0, canvas.stderr
    rows = (shell.root / "class" / "canvas-import.csv").read_text().splitlines()
    assert rows == ["Student,ID,SIS User ID,SIS Login ID,Section,HW4 (123456)",
                    "    Points Possible,,,,,120", "Alice,1,S1,a1,001,",  # pending: blank
                    "Zed,2,S2,z9,001,"]
    assert "in Canvas, no result (cell left blank): Zed (z9)" in canvas.stdout
    assert "a result, no Canvas student (not in the import): bob" in canvas.stdout


@pytest.mark.slow
def test_full_mode_command(shell, demo):
    submissions = shell.root / "submissions"
    submissions.mkdir(exist_ok=True)
    for stale in submissions.glob("*.ipynb"):
        stale.unlink()
    shutil.copy2(shell.root / "examples" / "submissions" / "alice.ipynb", submissions)
    shutil.rmtree(shell.root / "out", ignore_errors=True)
    graded = shell.run(FULL_MODE, timeout=3600)
    assert graded.returncode == 0
    data = _check_totals_agree(shell.root / "out", _verdicts(graded.stdout))["alice"]
    assert data["max_score"] == 105 and _lost(data) <= {"gan_convergence", "lsgan_convergence",
                                                         "dcgan_convergence"}
