"""GitHub Classroom: the workflow ``hw4grade release`` writes, checked without GitHub.

The workflow is parsed and held to Classroom's conventions; then its shell steps run here,
with this checkout's venv standing in for the install step, in a folder laid out like a
student's repository. What the grading step leaves in ``$GITHUB_OUTPUT`` is read the way
``classroom-resources/autograding-grading-reporter`` reads it: the environment variable
``<RUNNER>_RESULTS`` of each runner named in ``with.runners``, base64 of the JSON result.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.release import bundle as release

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "reference" / "HW4_solution.ipynb"
TEMPLATE = ROOT / "student_template" / "HW4_template.ipynb"
WHEEL_PATH = "wheels/hw4grade-0.1.0+student-py3-none-any.whl"
REPORTER = "classroom-resources/autograding-grading-reporter@v1"
STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$")
UNIT_AND_THEORY = ("leaky_relu", "sample_noise", "discriminator", "generator", "gan_loss",
                   "get_solvers", "lsgan_loss", "dc_discriminator", "dc_generator",
                   "optimal_d_gan", "optimal_d_lsgan", "vae_kl")


@pytest.fixture(scope="module")
def workflow() -> dict:
    """The workflow a release writes, parsed."""
    return yaml.safe_load(release.workflow_text(WHEEL_PATH))


def steps_by_id(workflow: dict) -> dict[str, dict]:
    return {step["id"]: step for step in workflow["jobs"]["run-autograding-tests"]["steps"]
            if "id" in step}


def test_workflow_follows_classroom_conventions(workflow):
    assert workflow["name"] == "Autograding Tests"
    assert workflow["on"] == ["push", "workflow_dispatch", "repository_dispatch"]
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    assert list(workflow["jobs"]) == ["run-autograding-tests"]
    job = workflow["jobs"]["run-autograding-tests"]
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    actions = [step.get("uses", "").split("@")[0] for step in steps]
    assert actions[0] == "actions/checkout" and "actions/setup-python" in actions
    python = steps[actions.index("actions/setup-python")]["with"]
    assert python["cache"] == "pip" and python["cache-dependency-path"] == WHEEL_PATH
    by_id = steps_by_id(workflow)
    assert f'pip install "{WHEEL_PATH}[tf]"' in by_id["install"]["run"]
    grading = by_id[release.CLASSROOM_RUNNER]
    assert "hw4grade check \"HW4.ipynb\" --mode quick --format classroom" in grading["run"]
    assert '"$GITHUB_OUTPUT"' in grading["run"]
    reporter = steps[-1]
    assert reporter["uses"] == REPORTER
    runners = [name.strip() for name in reporter["with"]["runners"].split(",")]
    assert runners == [release.CLASSROOM_RUNNER]
    assert reporter["env"] == {
        f"{release.CLASSROOM_RUNNER.upper()}_RESULTS":
            f"${{{{ steps.{release.CLASSROOM_RUNNER}.outputs.result }}}}"}
    order = [step.get("id") for step in steps]
    assert order.index("install") < order.index(release.CLASSROOM_RUNNER) < len(steps) - 1


def read_github_output(path: Path) -> dict[str, str]:
    """``name=value`` lines of a ``$GITHUB_OUTPUT`` file."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_workflow_locally(workflow: dict, repo: Path, mnist_dir: Path) -> dict:
    """Run the job's shell steps (not the install) in ``repo``; outputs and logs per step."""
    temp = repo.parent / "runner-temp"
    temp.mkdir()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(repo.parent),
           "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(temp),
           "GITHUB_STEP_SUMMARY": str(temp / "summary.md"), "HW4_MNIST_DIR": str(mnist_dir),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    ran = {}
    for number, step in enumerate(workflow["jobs"]["run-autograding-tests"]["steps"]):
        if "run" not in step or step.get("id") == "install":
            continue
        assert step.get("shell") == "bash"
        script = temp / f"step-{number}.sh"
        script.write_text(step["run"])
        output = temp / f"output-{number}"
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              cwd=repo, env={**env, "GITHUB_OUTPUT": str(output)},
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        ran[step["id"]] = {"outputs": read_github_output(output), "stderr": done.stderr}
    ran["temp"] = temp
    return ran


def reporter_payloads(workflow: dict, ran: dict) -> dict[str, dict]:
    """What the reporter decodes: for each runner, base64 JSON from ``<RUNNER>_RESULTS``."""
    reporter = workflow["jobs"]["run-autograding-tests"]["steps"][-1]
    env = {}
    for name, expression in reporter["env"].items():
        step_id, output = STEP_OUTPUT.match(expression).groups()
        env[name] = ran[step_id]["outputs"][output]
    payloads = {}
    for runner in reporter["with"]["runners"].split(","):
        encoded = env[f"{runner.strip().upper()}_RESULTS"]
        payloads[runner.strip()] = json.loads(base64.b64decode(encoded, validate=True))
    return payloads


def grade_in_workflow(workflow, notebook: Path, tmp_path: Path, mnist_dir: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "HW4.ipynb").write_bytes(notebook.read_bytes())
    ran = run_workflow_locally(workflow, repo, mnist_dir)
    payload = reporter_payloads(workflow, ran)[release.CLASSROOM_RUNNER]
    raw = (ran["temp"] / "hw4grade-result.txt").read_text()
    return payload, ran, raw


def points(payload: dict) -> tuple[float, float]:
    """(total, max) as the reporter sums them for GitHub Classroom."""
    return sum(test["score"] for test in payload["tests"]), payload["max_score"]


def is_base64_line(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    return "\n" not in text


def test_workflow_on_the_solution_reports_full_marks(workflow, tmp_path, mnist_dir):
    payload, ran, raw = grade_in_workflow(workflow, SOLUTION, tmp_path, mnist_dir)
    assert raw.endswith("\n") and is_base64_line(raw[:-1])  # stdout held the payload only
    assert payload["status"] == "pass" and payload["version"] == 1
    tests = {test["name"]: test for test in payload["tests"]}
    assert set(UNIT_AND_THEORY) | {"runs_clean"} <= set(tests)
    assert all(test["status"] == "pass" for test in tests.values())
    total, maximum = points(payload)
    assert total == maximum > 0
    assert "::error" not in ran[release.CLASSROOM_RUNNER]["stderr"]
    assert (ran["temp"] / "summary.md").read_text().strip()


def test_workflow_on_the_template_reports_zero_on_every_unit(workflow, tmp_path, mnist_dir):
    payload, ran, raw = grade_in_workflow(workflow, TEMPLATE, tmp_path, mnist_dir)
    assert payload["status"] == "fail"
    tests = {test["name"]: test for test in payload["tests"]}
    for name in UNIT_AND_THEORY:
        assert tests[name]["status"] != "pass" and tests[name]["score"] == 0, name
    total, maximum = points(payload)
    assert total < maximum
    # annotations for the failed items reach the runner (stderr), not the result
    payload_lines = [line for line in raw.splitlines() if not line.startswith("::")]
    assert len(payload_lines) == 1 and is_base64_line(payload_lines[0])
    annotations = [line for line in ran[release.CLASSROOM_RUNNER]["stderr"].splitlines()
                   if line.startswith("::error")]
    assert any("title=leaky_relu" in line for line in annotations)
