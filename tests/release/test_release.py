"""``hw4grade release``: the public checks, the student wheel, and that nothing of the solution
leaks into what students get.

The bundle is built once per module (one grading of the solution notebook, to record the
public checks); the student wheel is then installed into a folder of its own and run in a
Python that cannot see this checkout, as on a student's machine.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from grader.cli import main
from grader.commands.check import grade_self_check
from grader.oracles import choose
from grader.oracles import public as public_oracle
from grader.oracles.public import (
    PUBLIC_SEED,
    PublicCheckMissing,
    PublicChecks,
    RecordingError,
    RecordingOracle,
    ReplayOracle,
    call_key,
)
from grader.oracles.reference import ReferenceOracle
from grader.oracles.weights import draw_weights, variable_specs
from grader.release import bundle as release
from grader.result import SubmissionResult

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "reference" / "HW4_solution.ipynb"
TEMPLATE = ROOT / "student_template" / "HW4_template.ipynb"
GRADED_IN_QUICK_MODE = {"runs_clean", "leaky_relu", "sample_noise", "discriminator", "generator",
                        "gan_loss", "get_solvers", "lsgan_loss", "dc_discriminator",
                        "dc_generator", "optimal_d_gan", "optimal_d_lsgan", "vae_kl"}


# --------------------------------------------------------------------------- fakes


class FakeReference:
    """A numpy stand-in for ``ReferenceOracle``: same methods, no TensorFlow."""

    variables = [((3, 4), "seq/dense/kernel"), ((4,), "seq/dense/bias"),
                 ((4,), "seq/batch_normalization/gamma"),
                 ((4,), "seq/batch_normalization/moving_variance")]

    def activation(self, item, x, alpha):
        return np.where(x > 0, x, (0.01 if alpha is None else alpha) * x).astype(np.float64)

    def loss(self, item, real, fake):
        return float(real.mean()), float(fake.mean())

    reference_module = "reference.fake"

    def build(self, item, kwargs):
        return SimpleNamespace(weights=[SimpleNamespace(shape=s, path=p)
                                        for s, p in self.variables])

    def variable_specs(self, item, kwargs):
        return variable_specs(self.build(item, kwargs))

    def model_weights(self, item, kwargs, rng):
        return draw_weights(self.variable_specs(item, kwargs), rng)

    def model_output(self, item, kwargs, weights, x):
        return x @ weights[0]

    def parameter_count(self, item, kwargs):
        return 24 + kwargs.get("noise_dim", 0)

    def layer_specs(self, item, kwargs):
        return [("Dense", [(3, 4), (4,)], (-1, 4)),
                ("BatchNormalization", [(4,), (4,)], (-1, 4))]


def fake_rubric(ids=("leaky_relu", "gan_loss")):
    return SimpleNamespace(text_sha256="f" * 64, items=[SimpleNamespace(id=i) for i in ids])


def record_some(rng: np.random.Generator) -> tuple[RecordingOracle, dict]:
    """Ask a recording oracle one question of each kind; return it and the answers."""
    recorder = RecordingOracle(FakeReference(), PUBLIC_SEED, "quick", fake_rubric())
    x = rng.normal(size=(5, 3)).astype(np.float32)
    weights = recorder.model_weights("generator", {"noise_dim": 3}, rng)
    state_after = copy.deepcopy(rng.bit_generator.state)
    answers = {
        "leaky": recorder.activation("leaky_relu", x, None),
        "leaky_alpha": recorder.activation("leaky_relu", x, 0.2),
        "loss": recorder.loss("gan_loss", x, x[:2]),
        "weights": weights,
        "state_after": state_after,
        "output": recorder.model_output("generator", {"noise_dim": 3}, weights, x),
        "count": recorder.parameter_count("generator", {"noise_dim": 3}),
        "layers": recorder.layer_specs("generator", {"noise_dim": 3}),
        "x": x,
    }
    return recorder, answers


# --------------------------------------------------------------------------- keys and replay


def test_call_key_is_stable_and_tells_arguments_apart():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    key = call_key("leaky_relu", (x, 0.1))
    assert key == call_key("leaky_relu", (x.copy(), 0.1))
    y = x.copy()
    y[1, 2] = np.nextafter(y[1, 2], np.float32(9))
    variants = [
        ("leaky_relu", (x.astype(np.float64), 0.1)),   # dtype
        ("leaky_relu", (x.reshape(3, 2), 0.1)),        # shape
        ("leaky_relu", (y, 0.1)),                      # one value, by one ulp
        ("leaky_relu", (x, float(np.nextafter(0.1, 1)))),
        ("leaky_relu", (x, None)),
        ("model_output", (x, 0.1)),                    # method
        ("parameter_count", ("generator", {"noise_dim": 3})),
        ("parameter_count", ("generator", {"noise_dim": 3.0})),  # int and float differ
        ("parameter_count", ("generator", {"noise_dim": 4})),
    ]
    keys = {call_key(method, args) for method, args in variants}
    assert key not in keys and len(keys) == len(variants)
    first, second = np.random.default_rng(1), np.random.default_rng(1)
    assert call_key("w", (first,)) == call_key("w", (second,))
    second.normal()
    assert call_key("w", (first,)) != call_key("w", (second,))
    with pytest.raises(TypeError):
        call_key("w", (object(),))


def test_replay_gives_the_recorded_answers_and_refuses_other_questions(tmp_path):
    recorder, answers = record_some(np.random.default_rng(5))
    recorder.checks.save(tmp_path)
    replay = ReplayOracle.load(tmp_path)
    assert replay.seed == PUBLIC_SEED
    x = answers["x"]
    np.testing.assert_array_equal(replay.activation("leaky_relu", x.copy(), None), answers["leaky"])
    np.testing.assert_array_equal(replay.activation("leaky_relu", x, 0.2), answers["leaky_alpha"])
    assert replay.loss("gan_loss", x, x[:2]) == answers["loss"]
    rng = np.random.default_rng(5)
    rng.normal(size=(5, 3))  # the draw of x, as in the recording
    weights = replay.model_weights("generator", {"noise_dim": 3}, rng)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype
               for a, b in zip(weights, answers["weights"]))
    assert rng.bit_generator.state == answers["state_after"]  # left where the reference left it
    np.testing.assert_array_equal(
        replay.model_output("generator", {"noise_dim": 3}, weights, x), answers["output"])
    assert replay.parameter_count("generator", {"noise_dim": 3}) == answers["count"] == 27
    assert replay.layer_specs("generator", {"noise_dim": 3}) == answers["layers"]  # str too
    assert answers["layers"][0] == ("Dense", [(3, 4), (4,)], (-1, 4))
    with pytest.raises(PublicCheckMissing, match=f"public seed {PUBLIC_SEED}"):
        replay.activation("leaky_relu", x + 1, None)
    with pytest.raises(PublicCheckMissing):
        replay.model_weights("generator", {"noise_dim": 3}, np.random.default_rng(6))
    with pytest.raises(PublicCheckMissing):
        replay.build("generator", {})


def test_recording_refuses_weights_it_cannot_draw_again():
    class Drifted(FakeReference):
        def model_weights(self, item, kwargs, rng):
            return [w * 2 for w in super().model_weights(item, kwargs, rng)]

    recorder = RecordingOracle(Drifted(), PUBLIC_SEED, "quick", fake_rubric())
    with pytest.raises(RecordingError, match="redraw"):
        recorder.model_weights("generator", {"noise_dim": 3}, np.random.default_rng(0))


@pytest.mark.parametrize("item, kwargs", [("discriminator", {}),
                                          ("dc_generator", {"noise_dim": 5})])
def test_redrawn_weights_equal_the_reference_oracles(tf, item, kwargs):
    reference = ReferenceOracle()
    rng = np.random.default_rng(3)
    before = copy.deepcopy(rng)
    weights = reference.model_weights(item, kwargs, rng)
    specs = variable_specs(reference.build(item, kwargs))
    assert any(path.endswith("gamma") for _, path in specs) == (item == "dc_generator")
    redrawn = draw_weights(specs, before)
    assert len(redrawn) == len(weights)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(redrawn, weights))
    assert before.bit_generator.state == rng.bit_generator.state


# --------------------------------------------------------------------------- student mode


def _fake_grade(calls: list):
    def grade(notebook, options, oracle):
        calls.append((options.seed, oracle))
        return SubmissionResult(str(notebook), None, "0", "r", "quick", options.seed, "cpu")
    return grade


def test_self_check_in_a_students_install_uses_the_public_seed(tmp_path, monkeypatch):
    import grader.oracles.reference

    recorder, _ = record_some(np.random.default_rng(0))
    recorder.checks.save(tmp_path)
    monkeypatch.setattr(public_oracle, "DATA_DIR", tmp_path)
    monkeypatch.setattr(grader.oracles.reference, "reference_available", lambda: False)
    assert isinstance(choose.load_oracle(), ReplayOracle)
    calls: list = []
    options = SimpleNamespace(seed=17, rubric=fake_rubric())
    result = grade_self_check("nb.ipynb", options, 17, _fake_grade(calls))
    assert calls[0][0] == PUBLIC_SEED and isinstance(calls[0][1], ReplayOracle)
    assert result.seed == PUBLIC_SEED
    note, ignored = result.warnings
    assert str(PUBLIC_SEED) in note and "hidden inputs" in note and "public" in note
    assert len(note) <= 200  # reports shorten longer warnings
    assert "--seed 17 was ignored" in ignored
    options = SimpleNamespace(seed=17, rubric=fake_rubric(("gan_loss", "leaky_relu")))
    result = grade_self_check("nb.ipynb", options, None, _fake_grade(calls))
    assert len(result.warnings) == 2 and "items differ" in result.warnings[1]


def test_self_check_with_the_reference_is_the_instructors_grading(tmp_path, monkeypatch):
    import grader.oracles.reference

    recorder, _ = record_some(np.random.default_rng(0))
    recorder.checks.save(tmp_path)
    monkeypatch.setattr(public_oracle, "DATA_DIR", tmp_path)
    monkeypatch.setattr(grader.oracles.reference, "reference_available", lambda: True)
    calls: list = []
    options = SimpleNamespace(seed=17, rubric=fake_rubric())
    result = grade_self_check("nb.ipynb", options, 17, _fake_grade(calls))
    assert calls[0][0] == 17 and isinstance(calls[0][1], choose.BackgroundOracle)
    assert result.warnings == []
    monkeypatch.setattr(grader.oracles.reference, "reference_available", lambda: False)
    monkeypatch.setattr(public_oracle, "DATA_DIR", tmp_path / "none")
    assert choose.load_oracle() is None  # neither reference nor public checks


# --------------------------------------------------------------------------- wheels


def test_wheels_are_reproducible_and_their_record_is_right(tmp_path):
    project = release.read_project(ROOT)
    files = {"pkg/__init__.py": b"X = 1\n", "pkg/data/a.json": b"{}"}
    first = release.build_wheel(files, project, "1.0+test", tmp_path / "a")
    second = release.build_wheel(files, project, "1.0+test", tmp_path / "b")
    assert first.name == "hw4grade-1.0+test-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        record = wheel.read("hw4grade-1.0+test.dist-info/RECORD").decode().splitlines()
        assert names[-1].endswith("RECORD") and len(record) == len(names)
        for line in record[:-1]:
            name, digest, size = line.rsplit(",", 2)
            data = wheel.read(name)
            assert int(size) == len(data) and digest == release._record_hash(data)
        metadata = wheel.read("hw4grade-1.0+test.dist-info/METADATA").decode()
        entry_points = wheel.read("hw4grade-1.0+test.dist-info/entry_points.txt").decode()
    assert 'Requires-Dist: tensorflow==2.21.*; extra == "tf"' in metadata
    assert "Provides-Extra: dev" not in metadata
    assert "hw4grade = grader.cli:main" in entry_points


def test_modules_importing_the_reference_are_found():
    assert release.imports_reference("import reference.hw4\n")
    assert release.imports_reference("import os\nfrom reference import theory\n")
    assert not release.imports_reference("def f():\n    from reference import hw4\n")
    assert not release.imports_reference("from grader import reference_tools\n")
    files, left_out = release.student_files(ROOT, {"public_checks.json": b"{}"}, b"rubric")
    assert "grader/commands/theory.py" in left_out and "grader/commands/theory.py" not in files
    assert "grader/release/bundle.py" not in files and "grader/commands/release.py" not in files
    assert "grader/release/template.py" in files  # hw4grade template works in a student install
    assert not any(name.startswith(("grader/release/templates/", "reference/")) for name in files)
    assert files["grader/rubric.yaml"] == b"rubric"
    assert {"grader/oracles/reference.py", "grader/oracles/public.py",
            "grader/oracles/numerics.py", "grader/data/public_checks.json",
            "grader/data/evaluator_weights.npz"} <= set(files)


def test_templates_need_every_value():
    with pytest.raises(release.ReleaseError, match="@WHEEL_PATH@"):
        release.render("classroom.yml", {"NOTEBOOK": "HW4.ipynb"})


def test_release_refuses_a_stale_template_or_a_used_folder(tmp_path, capsys):
    stale = tmp_path / "stale.ipynb"
    stale.write_text(TEMPLATE.read_text().replace("TODO", "TO DO"))
    assert main(["release", "--out", str(tmp_path / "a"), "--template", str(stale)]) == 2
    assert "run hw4grade template" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    assert main(["release", "--out", str(used)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (used / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- the bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, mnist_dir) -> Path:
    """The students' bundle, built by the command (grades the solution once)."""
    out = tmp_path_factory.mktemp("release") / "bundle"
    assert main(["release", "--out", str(out), "--mnist", str(mnist_dir)]) == 0
    return out


@pytest.fixture(scope="module")
def student_site(bundle, tmp_path_factory) -> Path:
    """The student wheel installed, on its own, into a folder."""
    site = tmp_path_factory.mktemp("student-site")
    wheel = next((bundle / release.WHEEL_DIR).glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-compile", "--target", str(site), str(wheel)], check=True)
    return site


def run_as_student(site: Path, args: list[str], cwd: Path,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Python with only the student install and the venv's libraries on its path.

    ``-S`` skips site initialisation, so the ``.pth`` file of this checkout's editable
    install is never read; the libraries come in through PYTHONPATH instead.
    """
    libraries = sysconfig.get_paths()["purelib"]
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{site}:{libraries}",
                   "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(cwd), **(env or {})}
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=900)


def test_release_writes_what_students_get(bundle):
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    wheel = f"{release.WHEEL_DIR}/hw4grade-0.1.0+student-py3-none-any.whl"
    assert files == sorted([".github/workflows/classroom.yml", "HW4.ipynb", "README.md", wheel])
    assert (bundle / "HW4.ipynb").read_text() == TEMPLATE.read_text()
    readme = (bundle / "README.md").read_text()
    for text in ("hw4grade check HW4.ipynb", f'pip install "{wheel}[tf]"', "| 0 |", "| 1 |",
                 "| 2 |", "hidden inputs", str(PUBLIC_SEED)):
        assert text in readme
    assert f'cache-dependency-path: "{wheel}"' in (bundle / release.WORKFLOW_PATH).read_text()


def test_public_checks_are_for_the_public_seed_only(bundle, tmp_path):
    with zipfile.ZipFile(next((bundle / release.WHEEL_DIR).glob("*.whl"))) as wheel:
        for name in ("public_checks.json", "public_checks.npz"):
            (tmp_path / name).write_bytes(wheel.read(f"grader/data/{name}"))
    checks = PublicChecks.load(tmp_path)
    assert checks.seed == PUBLIC_SEED >= 2**31  # hidden seeds are drawn below 2**31
    assert checks.mode == "quick"
    by_method: dict[str, set] = {}
    for entry in checks.answers.values():
        by_method.setdefault(entry["method"], set()).add(entry["item"])
    models = {"discriminator", "generator", "dc_discriminator", "dc_generator"}
    assert by_method == {"activation": {"leaky_relu"}, "loss": {"gan_loss", "lsgan_loss"},
                         "model_weights": models, "model_output": models,
                         "parameter_count": models, "layer_specs": models}


# --------------------------------------------------------------------------- leaks


def solution_code_lines() -> set[str]:
    """Distinctive lines inside the code solution regions (module and notebook) that the
    given code does not also contain."""
    sources = [(ROOT / "reference" / "hw4.py").read_text()]
    notebook = nbformat.read(SOLUTION, as_version=4)
    sources += [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    inside_lines, outside_lines = set(), set()
    for source in sources:
        inside = False
        for line in source.splitlines():
            stripped = line.strip()
            if stripped in ("# BEGIN SOLUTION", "# END SOLUTION"):
                inside = stripped == "# BEGIN SOLUTION"
            elif len(stripped) >= 16:
                (inside_lines if inside else outside_lines).add(stripped)
    return inside_lines - outside_lines


def solution_prose_lines() -> set[str]:
    """Distinctive lines of the solution notebook's markdown answers."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    template_text = TEMPLATE.read_text()
    regions = re.compile(r"<!-- BEGIN SOLUTION -->(.*?)<!-- END SOLUTION -->", re.DOTALL)
    lines = set()
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for region in regions.findall(cell.source):
                lines |= {line.strip() for line in region.splitlines() if len(line.strip()) >= 30}
    return {line for line in lines if json.dumps(line)[1:-1] not in template_text}


def bundle_texts(root: Path) -> dict[str, str]:
    """Every file of a bundle as text, the members of zip files (wheels, npz) included."""
    texts = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        texts[name] = path.read_bytes().decode("utf-8", "replace")
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    texts[f"{name}!{member}"] = archive.read(member).decode("utf-8", "replace")
    return texts


def find_leaks(texts: dict[str, str], needles: set[str]) -> list[tuple[str, str]]:
    """(file, needle) for each needle found as is or as it is written inside JSON."""
    leaks = []
    for needle in sorted(needles):
        forms = {needle, json.dumps(needle)[1:-1]}
        leaks += [(name, needle) for name, text in texts.items()
                  if any(form in text for form in forms)]
    return leaks


def test_the_leak_scan_finds_a_planted_leak(tmp_path):
    code, prose = sorted(solution_code_lines()), sorted(solution_prose_lines())
    assert len(code) > 20 and len(prose) > 5
    (tmp_path / "notes.txt").write_text("nothing to see")
    assert find_leaks(bundle_texts(tmp_path), set(code) | set(prose)) == []
    planted = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = 1\n{code[3]}")])
    nbformat.write(planted, tmp_path / "planted.ipynb")
    with zipfile.ZipFile(tmp_path / "w.whl", "w") as archive:
        archive.writestr("grader/answers.md", f"see\n{prose[2]}\n")
    found = find_leaks(bundle_texts(tmp_path), set(code) | set(prose))
    assert ("planted.ipynb", code[3]) in found and ("w.whl!grader/answers.md", prose[2]) in found


def test_nothing_of_the_solution_reaches_students(bundle):
    texts = bundle_texts(bundle)
    assert any(name.endswith(".whl!grader/oracles/public.py") for name in texts)  # zip was read
    paths = [name.split("!")[-1] for name in texts]
    assert not [p for p in paths if p.startswith("reference/") or "HW4_solution" in p]
    assert find_leaks(texts, solution_code_lines() | solution_prose_lines()) == []


# --------------------------------------------------------------------------- student install


def test_student_install_has_no_reference_and_replays(student_site, tmp_path):
    probe = ("import importlib.util, json, grader, grader.oracles.choose\n"
             "oracle = grader.oracles.choose.load_oracle()\n"
             "print(json.dumps({'reference': importlib.util.find_spec('reference') is None,\n"
             "  'grader': grader.__file__, 'oracle': type(oracle).__name__,\n"
             "  'seed': oracle.seed}))\n")
    ran = run_as_student(student_site, ["-c", probe], tmp_path)
    assert ran.returncode == 0, ran.stderr
    facts = json.loads(ran.stdout)
    assert facts == {"reference": True, "grader": str(student_site / "grader" / "__init__.py"),
                     "oracle": "ReplayOracle", "seed": PUBLIC_SEED}
    ran = run_as_student(student_site, ["-m", "grader", "release"], tmp_path)
    assert ran.returncode == 2 and "not available in this install" in ran.stderr
    ran = run_as_student(student_site, ["-m", "grader", "--help"], tmp_path)
    assert ran.returncode == 0 and "check" in ran.stdout


def test_student_check_of_the_solution_has_full_marks(student_site, tmp_path, mnist_dir):
    (tmp_path / "HW4.ipynb").write_bytes(SOLUTION.read_bytes())
    ran = run_as_student(student_site, ["-m", "grader", "check", "HW4.ipynb", "--format",
                                        "json", "--seed", "5"], tmp_path,
                         {"HW4_MNIST_DIR": str(mnist_dir)})
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    result = SubmissionResult.from_dict(json.loads(ran.stdout))
    graded = [item for item in result.items if item.status not in ("manual", "skipped")]
    assert {item.id for item in graded} == GRADED_IN_QUICK_MODE
    assert all(item.status == "passed" and item.points == item.max_points for item in graded)
    assert result.seed == PUBLIC_SEED and result.score == sum(i.max_points for i in graded) > 0
    assert any("hidden inputs" in w for w in result.warnings)
    assert any("--seed 5 was ignored" in w for w in result.warnings)


# --------------------------------------------------------------------------- grader out of reach


def base_dependencies(project: str = "hw4grade") -> list[importlib.metadata.Distribution]:
    """The installed distributions ``project`` needs without extras (no TensorFlow),
    followed through their own requirements."""
    from packaging.requirements import Requirement

    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [requirement for requirement in importlib.metadata.requires(project) or []]
    while todo:
        requirement = Requirement(todo.pop())
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in found or (requirement.marker and
                            not requirement.marker.evaluate({"extra": ""})):
            continue
        found[key] = importlib.metadata.distribution(requirement.name)
        todo += found[key].requires or []
    return list(found.values())


@pytest.fixture(scope="module")
def student_venv(bundle, tmp_path_factory) -> Path:
    """A fresh venv with the student wheel installed by pip and the grader's dependencies
    (their files hard-linked from this environment where the file system allows, copied
    where not; TensorFlow left out, so the kernel runs numpy code only)."""
    venv = tmp_path_factory.mktemp("student-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    for distribution in base_dependencies():
        for name in distribution.files or []:
            source = Path(str(distribution.locate_file(name)))
            if name.parts[0] == ".." or not source.is_file():
                continue  # scripts and data outside site-packages
            target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
    wheel = next((bundle / release.WHEEL_DIR).glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "--quiet", "--no-deps", "--no-compile", str(wheel)], check=True)
    return venv


def test_a_kernel_of_a_wheel_install_cannot_reach_the_grader(student_venv, tmp_path,
                                                             mnist_dir):
    """The student wheel in a venv of its own: ``check`` runs the kernel with that venv's
    packages, the grader's among them, yet the kernel can neither import nor read it, so
    theory answers calling the grader's oracle get 0 while a formula still passes."""
    from grader.pipeline.sandbox import bubblewrap_problem
    from tests.fixtures.grader_reach import (
        HONEST_GAN_OPTIMUM_CELL,
        ORACLE_CELL,
        REACH_CELL,
        THEORY_ITEMS,
    )

    if bubblewrap_problem() is not None:
        pytest.skip(f"bubblewrap cannot run here: {bubblewrap_problem()}")
    python = student_venv / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import grader; print(grader.__file__)"],
                           capture_output=True, text=True, check=True, env={}, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(student_venv))  # the wheel, not this checkout
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(cell)
        for cell in (REACH_CELL, ORACLE_CELL, HONEST_GAN_OPTIMUM_CELL)])
    nbformat.write(notebook, tmp_path / "HW4.ipynb")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HW4_MNIST_DIR": str(mnist_dir),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([str(python), "-m", "grader", "check", "HW4.ipynb", "--format",
                          "json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 1, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["sandbox"] == "bubblewrap"
    items = {item["id"]: item for item in result["items"]}
    assert items["runs_clean"]["status"] == "passed", \
        [cell for cell in result["cells"] if cell["error_message"]]  # REACH_CELL reached nothing
    assert items["optimal_d_gan"]["points"] == items["optimal_d_gan"]["max_points"] > 0
    for name in set(THEORY_ITEMS) - {"optimal_d_gan"}:
        assert items[name]["points"] == 0, items[name]
        assert "not available to graded notebooks" in items[name]["message"], items[name]
