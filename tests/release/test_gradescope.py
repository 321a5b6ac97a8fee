"""``hw4grade gradescope-package``: the autograder zip, and its scripts run on a fake
``/autograder`` tree (``AUTOGRADER_ROOT``) with this checkout's venv standing in for what
``setup.sh`` installs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import psutil
import pytest

from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "reference" / "HW4_solution.ipynb"
WHEEL = "hw4grade-0.1.0+instructor-py3-none-any.whl"
TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility"}


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """The zip the command writes."""
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    assert main(["gradescope-package", "--out", str(out)]) == 0
    return out


@pytest.fixture
def autograder(package, tmp_path) -> Path:
    """A fake /autograder: the zip unpacked into source/ (modes kept), an empty submission/."""
    return unpacked(package, tmp_path / "autograder")


def run_script(root: Path, name: str, path: str, extra: dict[str, str] | None = None):
    env = {"PATH": path, "AUTOGRADER_ROOT": str(root), "HOME": str(root),
           "TF_CPP_MIN_LOG_LEVEL": "3", **(extra or {})}
    return subprocess.run(["bash", str(root / "source" / name)], env=env, capture_output=True,
                          text=True, timeout=900)


def grade_submission(root: Path, mnist_dir: Path) -> dict:
    """Run run_autograder with the venv's hw4grade on PATH; return results.json."""
    done = run_script(root, "run_autograder", f"{Path(sys.executable).parent}:/usr/bin:/bin",
                      {"HW4_MNIST_DIR": str(mnist_dir)})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    check_results_format(results)
    return results


def check_results_format(results: dict) -> None:
    """The parts of Gradescope's results.json format the grader fills in."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["output"], str)
    assert isinstance(results.get("execution_time", 0), int)
    for test in results["tests"]:
        assert TEST_KEYS <= set(test), test
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert 0 <= test["score"] <= test["max_score"]


def test_zip_holds_the_scripts_and_an_instructor_wheel(package, tmp_path):
    with zipfile.ZipFile(package) as archive:
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
        archive.extract(WHEEL, tmp_path)
    assert set(modes) == {"setup.sh", "run_autograder", WHEEL}
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    with zipfile.ZipFile(tmp_path / WHEEL) as wheel:
        names = set(wheel.namelist())
    assert {"reference/hw4.py", "grader/oracles/reference.py", "grader/commands/theory.py",
            "grader/rubric.yaml"} <= names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(site), str(tmp_path / WHEEL)], check=True)
    probe = "import grader.oracles.reference as o; print(o.reference_available(), o.__file__)"
    done = subprocess.run([sys.executable, "-S", "-c", probe], cwd=tmp_path, text=True,
                          capture_output=True,
                          env={"PYTHONPATH": f"{site}:{sysconfig.get_paths()['purelib']}"})
    expected = ["True", str(site / "grader" / "oracles" / "reference.py")]
    assert done.stdout.split() == expected, done.stderr


def test_setup_sh_installs_the_bundled_wheel(autograder):
    """setup.sh with stand-ins for apt-get, useradd and python3 that log what they are
    asked (the venv's python names fake reference and grader folders when asked where the
    packages are)."""
    shims, log = autograder / "shims", autograder / "calls.log"
    shims.mkdir()
    reference = autograder / "venv" / "site" / "reference"
    installed = autograder / "venv" / "site" / "grader"
    logger = f'echo "$(basename "$0") $*" >> {log}\n'
    for tool in ("apt-get", "useradd", "venv-hw4grade"):
        (shims / tool).write_text("#!/bin/sh\n" + logger)
    (shims / "venv-python").write_text(
        "#!/bin/sh\n" + logger + f'if [ "$1" = -I ]; then echo {reference}; echo {installed}; fi\n')
    (shims / "python3").write_text(
        "#!/bin/sh\n" + logger
        + 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"\n'
        + f'  for tool in python hw4grade; do cp {shims}/venv-$tool "$3/bin/$tool"; done\n'
        + f'  mkdir -p {reference} {installed}/oracles\n'
        + f'  echo "SECRET = 1" > {reference}/__init__.py\n'
        + f'  echo "ANSWER = 1" > {installed}/oracles/numerics.py\nfi\n')
    for shim in shims.iterdir():
        shim.chmod(0o755)
    done = run_script(autograder, "setup.sh", f"{shims}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    wheel = autograder / "source" / WHEEL
    assert wheel.is_file()
    assert f"python3 -m venv {autograder}/venv" in calls
    assert f"python -m pip install --quiet {wheel}[tf,sample]" in calls
    assert "hw4grade mnist" in calls  # no MNIST bundled: fetched into the Keras cache
    if os.geteuid() == 0:
        assert any(call.startswith("apt-get install") and "bubblewrap" in call.split()
                   for call in calls)
        # the fallback's account, and what it must not read locked for root alone
        assert any(call.startswith("useradd --system") and call.endswith(" hw4grade-kernel")
                   for call in calls)
        for locked in (reference, reference / "__init__.py", installed,
                       installed / "oracles" / "numerics.py", autograder / "source", wheel,
                       autograder / "results"):
            assert stat.S_IMODE(locked.stat().st_mode) & 0o077 == 0, locked


def test_run_autograder_grades_the_solution(autograder, mnist_dir):
    shutil.copy(SOLUTION, autograder / "submission" / "HW4.ipynb")
    (autograder / "submission" / "notes.txt").write_text("not a notebook")
    results = grade_submission(autograder, mnist_dir)
    tests = results["tests"]
    assert {test["name"] for test in tests} >= {"runs_clean", "leaky_relu", "dc_generator",
                                                "vae_kl"}
    assert all(test["status"] == "passed" for test in tests if test["max_score"] > 0)
    assert results["score"] == sum(test["max_score"] for test in tests) > 0
    assert results["execution_time"] > 0
    assert "graded by hand" in results["output"]


def test_run_autograder_gives_zero_for_a_corrupt_notebook(autograder, mnist_dir):
    (autograder / "submission" / "HW4.ipynb").write_text('{"cells": [{"cell_type": "code",')
    results = grade_submission(autograder, mnist_dir)
    assert results["score"] == 0 and results["tests"]
    assert all(test["score"] == 0 and test["status"] == "failed" for test in results["tests"])
    assert "could not be graded" in results["output"]


def test_run_autograder_without_a_notebook_says_so(autograder, mnist_dir):
    (autograder / "submission" / "answers.py").write_text("print(1)\n")
    results = grade_submission(autograder, mnist_dir)
    assert results["score"] == 0 and results["tests"] == []
    assert "No .ipynb file" in results["output"]


def test_run_autograder_reports_a_crashing_grader(autograder, tmp_path):
    (autograder / "submission" / "HW4.ipynb").write_text("{}")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "hw4grade").write_text("#!/bin/sh\necho 'Traceback ...' >&2\nexit 1\n")
    (fake / "hw4grade").chmod(0o755)
    done = run_script(autograder, "run_autograder", f"{fake}:/usr/bin:/bin")
    assert done.returncode == 0
    results = json.loads((autograder / "results" / "results.json").read_text())
    assert results["score"] == 0 and "autograder itself failed" in results["output"]


@pytest.mark.parametrize(("no_sandbox", "expected"), [("0", False), ("1", True)])
def test_run_autograder_grades_in_the_sandbox_unless_told(autograder, tmp_path, no_sandbox,
                                                          expected):
    """run_autograder passes --no-sandbox only when HW4GRADE_NO_SANDBOX=1."""
    (autograder / "submission" / "HW4.ipynb").write_text("{}")
    fake, log = tmp_path / "bin", tmp_path / "args.log"
    fake.mkdir()
    (fake / "hw4grade").write_text(f'#!/bin/sh\necho "$*" > {log}\necho {{}}\n')
    (fake / "hw4grade").chmod(0o755)
    done = run_script(autograder, "run_autograder", f"{fake}:/usr/bin:/bin",
                      {"HW4GRADE_NO_SANDBOX": no_sandbox})
    assert done.returncode == 0, done.stderr
    assert ("--no-sandbox" in log.read_text().split()) is expected


def test_run_autograder_runs_as_the_kernel_user_without_bubblewrap(autograder, mnist_dir,
                                                                   kernel_user, user_python,
                                                                   tmp_path):
    """Root, with no bwrap on PATH: run_autograder grades the notebook as the account that
    setup.sh creates (its one cell runs clean only as that uid), and locks the results."""
    import pwd

    account = pwd.getpwnam(kernel_user)
    tools = tmp_path / "no-bwrap"  # every system tool but bwrap
    tools.mkdir()
    for folder in ("/usr/bin", "/bin"):
        for entry in os.scandir(folder):
            if entry.name != "bwrap" and not (tools / entry.name).exists():
                (tools / entry.name).symlink_to(entry.path)
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None,
                           "source": f"import os\nassert os.getuid() == {account.pw_uid}"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (autograder / "submission" / "HW4.ipynb").write_text(json.dumps(notebook))
    done = run_script(autograder, "run_autograder", f"{Path(sys.executable).parent}:{tools}",
                      {"HW4_MNIST_DIR": str(mnist_dir), "HW4GRADE_KERNEL_USER": kernel_user,
                       "HW4GRADE_KERNEL_PYTHON": user_python,
                       "PYTHONPATH": str(ROOT)})  # this checkout's grader
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"runs as the unprivileged user {kernel_user}" in done.stderr
    assert "without a sandbox" not in done.stderr
    results = json.loads((autograder / "results" / "results.json").read_text())
    check_results_format(results)
    runs_clean = next(test for test in results["tests"] if test["name"] == "runs_clean")
    assert runs_clean["status"] == "passed", runs_clean
    assert stat.S_IMODE((autograder / "results").stat().st_mode) == 0o700
    assert not [proc for proc in psutil.process_iter(["uids"])
                if proc.info["uids"] and account.pw_uid in proc.info["uids"]]


@pytest.fixture(scope="module")
def torch_package(tmp_path_factory) -> Path:
    """The PyTorch edition's zip."""
    out = tmp_path_factory.mktemp("gradescope-torch") / "autograder.zip"
    assert main(["gradescope-package", "--out", str(out), "--edition", "torch"]) == 0
    return out


def unpacked(package: Path, root: Path) -> Path:
    """``package`` unpacked as Gradescope does, with an empty submission/."""
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    (root / "submission").mkdir()
    return root


def test_the_torch_package_installs_the_torch_extra(torch_package, package):
    scripts = {}
    for name, zipped in (("torch", torch_package), ("tf2", package)):
        with zipfile.ZipFile(zipped) as archive:
            scripts[name] = {script: archive.read(script).decode()
                             for script in ("setup.sh", "run_autograder")}
            assert set(archive.namelist()) == {"setup.sh", "run_autograder", WHEEL}
    assert '"$WHEEL[torch,sample]"' in scripts["torch"]["setup.sh"]
    assert '"$WHEEL[tf,sample]"' in scripts["tf2"]["setup.sh"]
    assert "HW4_torch.ipynb" in scripts["torch"]["run_autograder"]
    # one grader for both: the scripts differ only where the edition does
    assert scripts["torch"]["run_autograder"].replace("HW4_torch.ipynb", "HW4.ipynb") \
        == scripts["tf2"]["run_autograder"]


def test_run_autograder_grades_a_pytorch_folder_upload(torch_package, tmp_path, mnist_dir):
    """A driver notebook with its cs231n/gan_pytorch.py, as a module-era student uploads it:
    the folder is graded, the module from the student's file, to full marks."""
    from tests.fixtures.torch_submissions import folder_files, torch_variant_by_name

    root = unpacked(torch_package, tmp_path / "autograder")
    for relative, data in folder_files(torch_variant_by_name("t2020_module_folder")).items():
        (root / "submission" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / relative).write_bytes(data)
    results = grade_submission(root, mnist_dir)
    scored = {test["name"]: test for test in results["tests"] if test["max_score"] > 0}
    assert {"sample_noise", "get_solvers", "dc_generator"} <= set(scored)
    assert "leaky_relu" not in scored  # the PyTorch edition has none to write
    assert all(test["status"] == "passed" for test in scored.values()), scored
    assert results["score"] == sum(test["max_score"] for test in scored.values())
    assert "cs231n/gan_pytorch.py" in results["output"]
