"""``hw4grade release --edition torch``: the PyTorch students' bundle, its public checks, and
a student's install grading PyTorch notebooks through their replay.

The bundle is built once per module by the command (it grades the TensorFlow and the
PyTorch solution notebooks, recording both public checks); the student wheel is then put
on the path of a Python that cannot see this checkout, as on a student's machine.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.cli import main
from grader.frameworks.editions import EDITIONS, recorded_editions
from grader.frameworks.torch import oracle as torch_oracle
from grader.frameworks.torch.framework import TorchFramework
from grader.oracles import public as public_oracle
from grader.oracles.public import PUBLIC_SEED, PublicChecks, RecordingOracle, ReplayOracle
from grader.oracles.weights import draw_weights
from grader.release import bundle as release
from grader.result import SubmissionResult
from tests.release.test_release import bundle_texts, find_leaks, run_as_student

ROOT = Path(__file__).resolve().parents[2]
EDITION = EDITIONS["torch"]
SOLUTION = ROOT / EDITION.solution
TEMPLATE = ROOT / EDITION.template
# the unit items of a PyTorch notebook in quick mode (no leaky_relu in this edition)
TORCH_UNIT_ITEMS = {"runs_clean", "sample_noise", "discriminator", "generator", "gan_loss",
                    "get_solvers", "lsgan_loss", "dc_discriminator", "dc_generator"}
MODELS = {"discriminator", "generator", "dc_discriminator", "dc_generator"}


def fake_rubric():
    from types import SimpleNamespace

    return SimpleNamespace(text_sha256="f" * 64, items=[SimpleNamespace(id="gan_loss")])


# --------------------------------------------------------------------------- no kernel


def test_the_torch_bundle_records_the_default_editions_checks_too():
    assert [edition.framework for edition in recorded_editions("torch")] == ["tf2", "torch"]
    assert [edition.framework for edition in recorded_editions("tf2")] == ["tf2"]
    stems = {edition.public_checks for edition in EDITIONS.values()}
    assert stems == {public_oracle.CHECKS_STEM, torch_oracle.PUBLIC_CHECKS}
    assert release.expected_methods(EDITION) == [
        "loss", "model_weights", "model_output", "parameter_count"]
    assert "activation" in release.expected_methods(EDITIONS["tf2"])


@pytest.mark.parametrize("item, kwargs", [("discriminator", {}),
                                          ("dc_generator", {"noise_dim": 4})])
def test_torch_variable_specs_redraw_the_torch_references_weights(item, kwargs):
    pytest.importorskip("torch")
    reference = torch_oracle.TorchReferenceOracle()
    rng = np.random.default_rng(11)
    before = copy.deepcopy(rng)
    weights = reference.model_weights(item, kwargs, rng)
    specs = reference.variable_specs(item, kwargs)
    assert json.loads(json.dumps(specs)) == specs  # stored as it is in the JSON index
    assert any(name == "moving_variance" for _, name in specs) == (item == "dc_generator")
    redrawn = draw_weights(specs, before)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(redrawn, weights))
    assert before.bit_generator.state == rng.bit_generator.state


def test_torch_layer_specs_list_every_layer_with_its_output_shape():
    """The recording asks for the layer list with every parameter count."""
    pytest.importorskip("torch")
    layers = torch_oracle.TorchReferenceOracle().layer_specs("dc_generator", {"noise_dim": 4})
    assert layers[0] == ("Linear", [(1024, 4), (1024,)], (-1, 1024))
    assert layers[-2][0] == "Tanh" and layers[-1] == ("Flatten", [], (-1, 784))
    assert sum(kind.startswith("BatchNorm") for kind, _, _ in layers) == 3


def test_torch_framework_scores_against_its_replay_in_a_students_install(tmp_path,
                                                                          monkeypatch):
    """Without the PyTorch reference, the PyTorch public checks answer; a recording of the
    PyTorch reference is used as it is; the batch's (Keras) oracle never is."""
    pytest.importorskip("torch")
    recorder = RecordingOracle(torch_oracle.TorchReferenceOracle(), PUBLIC_SEED, "quick",
                               fake_rubric())
    real = np.array([[1.0], [-2.0]])
    answer = recorder.loss("gan_loss", real, real[:1])
    recorder.checks.save(tmp_path, torch_oracle.PUBLIC_CHECKS)
    framework = TorchFramework()
    assert framework.oracle(recorder) is recorder
    keras_recording = RecordingOracle(
        type("Keras", (), {"reference_module": "reference.hw4"})(), 1, "quick", fake_rubric())
    assert framework.oracle(keras_recording) is not keras_recording

    monkeypatch.setattr(public_oracle, "DATA_DIR", tmp_path)
    monkeypatch.setattr(torch_oracle, "reference_available", lambda: False)
    for cached in (torch_oracle.shared_reference_oracle, torch_oracle.shared_public_oracle):
        cached.cache_clear()
    try:
        replay = framework.oracle(keras_recording)
        assert isinstance(replay, ReplayOracle) and replay.seed == PUBLIC_SEED
        assert replay.loss("gan_loss", real, real[:1]) == answer
        monkeypatch.setattr(public_oracle, "DATA_DIR", tmp_path / "none")
        torch_oracle.shared_public_oracle.cache_clear()
        assert framework.oracle(keras_recording) is None  # neither reference nor checks
    finally:
        for cached in (torch_oracle.shared_reference_oracle, torch_oracle.shared_public_oracle):
            cached.cache_clear()


def test_the_torch_template_is_what_make_template_makes_of_its_solution():
    release.check_template(SOLUTION, TEMPLATE)  # raises when stale
    template = nbformat.read(TEMPLATE, as_version=4)
    assert template.metadata["hw4grade"] == {"framework": "torch", "role": "template"}


# --------------------------------------------------------------------------- the bundle


@pytest.fixture(scope="module")
def torch_bundle(tmp_path_factory, mnist_dir) -> Path:
    """The PyTorch students' bundle, built by the command (grades both solutions)."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("release-torch") / "bundle"
    assert main(["release", "--out", str(out), "--edition", "torch",
                 "--mnist", str(mnist_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def torch_student_site(torch_bundle, tmp_path_factory) -> Path:
    """The PyTorch bundle's student wheel installed, on its own, into a folder."""
    site = tmp_path_factory.mktemp("student-site-torch")
    wheel = next((torch_bundle / release.WHEEL_DIR).glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(site), str(wheel)], check=True)
    return site


def test_the_torch_bundle_holds_what_its_students_get(torch_bundle):
    files = sorted(p.relative_to(torch_bundle).as_posix()
                   for p in torch_bundle.rglob("*") if p.is_file())
    wheel = f"{release.WHEEL_DIR}/hw4grade-0.1.0+student-py3-none-any.whl"
    assert files == sorted([".github/workflows/classroom.yml", "HW4_torch.ipynb", "README.md",
                            wheel])
    assert (torch_bundle / "HW4_torch.ipynb").read_text() == TEMPLATE.read_text()
    readme = (torch_bundle / "README.md").read_text()
    for text in ("hw4grade check HW4_torch.ipynb", f'pip install "{wheel}[torch,sample]"',
                 "| 0 |", "| 1 |", "| 2 |", "| 3 |", "hidden inputs", str(PUBLIC_SEED),
                 "data/MNIST/MNIST/raw", "PyTorch"):
        assert text in readme, text
    workflow = (torch_bundle / release.WORKFLOW_PATH).read_text()
    assert f'python -m pip install "{wheel}[torch,sample]"' in workflow
    assert 'whl/cpu "torch==2.14.*" "torchvision==0.29.*"' in workflow
    assert 'hw4grade check "HW4_torch.ipynb" --mode quick --format classroom' in workflow
    assert "keras" not in workflow.lower()


def test_the_torch_wheel_carries_both_public_checks(torch_bundle, tmp_path):
    with zipfile.ZipFile(next((torch_bundle / release.WHEEL_DIR).glob("*.whl"))) as wheel:
        names = set(wheel.namelist())
        for stem in (public_oracle.CHECKS_STEM, torch_oracle.PUBLIC_CHECKS):
            for ext in ("json", "npz"):
                (tmp_path / f"{stem}.{ext}").write_bytes(wheel.read(f"grader/data/{stem}.{ext}"))
    assert "grader/frameworks/editions.py" not in names  # instructor only
    assert not any(name.startswith("reference/") for name in names)
    keras = PublicChecks.load(tmp_path)
    torch_checks = PublicChecks.load(tmp_path, torch_oracle.PUBLIC_CHECKS)
    assert keras.seed == torch_checks.seed == PUBLIC_SEED
    assert "activation" in {entry["method"] for entry in keras.answers.values()}
    by_method: dict[str, set] = {}
    for entry in torch_checks.answers.values():
        by_method.setdefault(entry["method"], set()).add(entry["item"])
    assert by_method == {"loss": {"gan_loss", "lsgan_loss"}, "model_weights": MODELS,
                         "model_output": MODELS, "parameter_count": MODELS,
                         "layer_specs": MODELS}
    specs = [entry["specs"] for entry in torch_checks.answers.values()
             if entry["method"] == "model_weights" and entry["item"] == "discriminator"]
    assert specs and [shape for shape, _ in specs[0]][0] == [256, 784]  # PyTorch's (out, in)


def torch_solution_lines() -> set[str]:
    """Distinctive lines inside the PyTorch solution's code regions that neither the given
    code nor the grader's own sources (which build the specified layers themselves, e.g.
    ``nn.LeakyReLU(0.01),``) also contain."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    inside_lines, outside_lines = set(), set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped in ("# BEGIN SOLUTION", "# END SOLUTION"):
                inside = stripped == "# BEGIN SOLUTION"
            elif len(stripped) >= 16:
                (inside_lines if inside else outside_lines).add(stripped)
    grader_text = "\n".join(path.read_text(encoding="utf-8")
                            for path in (ROOT / "grader").rglob("*.py"))
    return {line for line in inside_lines - outside_lines if line not in grader_text}


def test_nothing_of_the_torch_solution_reaches_students(torch_bundle):
    needles = torch_solution_lines()
    assert len(needles) > 10
    texts = bundle_texts(torch_bundle)
    assert any(name.endswith("!grader/data/public_checks_torch.json") for name in texts)
    assert find_leaks(texts, needles) == []


# --------------------------------------------------------------------------- student install


def check_as_student(site: Path, notebook: nbformat.NotebookNode, cwd: Path,
                     mnist_dir: Path) -> tuple[subprocess.CompletedProcess, SubmissionResult]:
    """``hw4grade check`` of ``notebook`` in the student install, as JSON."""
    nbformat.write(notebook, cwd / "HW4_torch.ipynb")
    ran = run_as_student(site, ["-m", "grader", "check", "HW4_torch.ipynb", "--format", "json"],
                         cwd, {"HW4_MNIST_DIR": str(mnist_dir)})
    return ran, SubmissionResult.from_dict(json.loads(ran.stdout))


def test_a_students_install_grades_the_torch_solution_to_full_marks(torch_student_site,
                                                                    tmp_path, mnist_dir):
    ran, result = check_as_student(torch_student_site, nbformat.read(SOLUTION, as_version=4),
                                   tmp_path, mnist_dir)
    assert result.profile.startswith("torch"), result.profile
    graded = {item.id: item for item in result.items if item.max_points > 0
              and item.status not in ("manual", "skipped")}
    assert set(graded) == TORCH_UNIT_ITEMS, {i.id: (i.status, i.message) for i in result.items}
    assert all(item.status == "passed" and item.points == item.max_points
               for item in graded.values()), {i: (g.status, g.message) for i, g in graded.items()}
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert result.seed == PUBLIC_SEED
    assert any("hidden inputs" in warning for warning in result.warnings)


def test_a_torch_mistake_loses_its_item_through_the_replay(torch_student_site, tmp_path,
                                                           mnist_dir):
    """``nn.ReLU(0.01)`` is a plain ReLU: the course's checks pass it, the replay does not."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    cells = [cell for cell in notebook.cells if "def discriminator(" in cell.source]
    assert len(cells) == 1 and cells[0].source.count("nn.LeakyReLU(0.01)") == 2
    cells[0].source = cells[0].source.replace("nn.LeakyReLU(0.01)", "nn.ReLU(0.01)", 1)
    ran, result = check_as_student(torch_student_site, notebook, tmp_path, mnist_dir)
    assert ran.returncode == 1, ran.stderr[-3000:]
    items = {item.id: item for item in result.items}
    wrong = items["discriminator"]
    assert wrong.status == "failed" and wrong.points < wrong.max_points, wrong
    assert wrong.details["parameters"] == wrong.details["expected_parameters"]  # count is right
    assert all(items[name].status == "passed"
               for name in TORCH_UNIT_ITEMS - {"discriminator"}), \
        {name: items[name].message for name in TORCH_UNIT_ITEMS if items[name].status != "passed"}
