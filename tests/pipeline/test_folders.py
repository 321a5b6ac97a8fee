"""Submissions that are folders or zip archives: choosing the notebook and the student's
package, refusing what cannot be graded, batch discovery, and one real grading."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.exceptions import SubmissionError
from grader.pipeline import folders
from grader.pipeline.folders import SubmissionKind
from grader.pipeline.load import find_notebooks, load_submission, named_folder

DRIVER = "Generative_Adversarial_Networks.ipynb"
GAN_FUNCTIONS = ("sample_noise", "discriminator", "generator", "discriminator_loss",
                 "generator_loss", "get_optimizer")


def notebook(*sources: str) -> str:
    """The JSON of a notebook with one code cell per source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nbformat.writes(nb)


def gan_module_source() -> str:
    """A module of the graded functions, written with PyTorch (its framework is read from
    it: the driver notebook only imports it)."""
    return ("import torch\nfrom torch import nn\n\n"
            + "".join(f"def {name}(*args, seed=None):\n    return nn.Sequential()\n\n"
                      for name in GAN_FUNCTIONS))


def driver_source(package: str = "cs231n", module: str = "gan_pytorch") -> str:
    dotted = f"{package}.{module}" if package else module
    return notebook("import torch\nimport numpy as np",
                    f"from {dotted} import sample_noise\nfrom {dotted} import "
                    "discriminator_loss, generator_loss",
                    "print(sample_noise(3, 4))")


def other_notebooks(folder: Path) -> None:
    """The assignment's other notebooks, a checkpoint of the driver and a data set."""
    (folder / "RNN_Captioning.ipynb").write_text(
        notebook("from cs231n.rnn_layers import rnn_forward\nrnn_forward(1)"))
    (folder / "NetworkVisualization.ipynb").write_text(notebook("import torch\nmodel = 1"))
    (folder / ".ipynb_checkpoints").mkdir(exist_ok=True)
    (folder / ".ipynb_checkpoints" / "Generative_Adversarial_Networks-checkpoint.ipynb") \
        .write_text(driver_source())
    (folder / "collectSubmission.sh").write_text("zip -r a3.zip .\n")
    (folder / "cs231n" / "datasets").mkdir(parents=True, exist_ok=True)
    (folder / "cs231n" / "datasets" / "coco.h5").write_bytes(b"\0" * 4096)


def assignment(folder: Path, package: str = "cs231n", module: str = "gan_pytorch") -> Path:
    """A 2020-2024 style assignment folder: the driver, ``package/module.py``, the other
    notebooks and modules of the assignment."""
    (folder / package).mkdir(parents=True, exist_ok=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / f"{module}.py").write_text(gan_module_source())
    (folder / package / "rnn_layers.py").write_text("def rnn_forward(x):\n    return x\n")
    (folder / package / "classifiers").mkdir(exist_ok=True)
    (folder / package / "classifiers" / "rnn.py").write_text("")
    (folder / DRIVER).write_text(driver_source(package, module))
    if package == "cs231n":
        other_notebooks(folder)
    return folder


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


# -- choosing ----------------------------------------------------------------------------------


def test_a_folder_is_graded_from_its_driver_and_package(tmp_path):
    root = assignment(tmp_path / "a3")
    submission = load_submission(root)
    assert submission.kind == SubmissionKind.FOLDER
    assert submission.path == root / DRIVER and submission.notebook_name == DRIVER
    assert submission.modules == ["cs231n/__init__.py", "cs231n/classifiers/rnn.py",
                                  "cs231n/gan_pytorch.py", "cs231n/rnn_layers.py"]
    assert submission.gan_module == "cs231n.gan_pytorch"
    assert submission.note == (f"graded {DRIVER} with cs231n/gan_pytorch.py (the folder's 2 "
                               "other notebook(s) were not graded)")
    assert submission.graded_files() == [DRIVER, "cs231n/gan_pytorch.py"]


@pytest.mark.parametrize("package,module,dotted", [
    ("cs682", "gan_pytorch", "cs682.gan_pytorch"),
    ("comp411", "gan_pytorch", "comp411.gan_pytorch"),
    ("", "gan", "gan"),
])
def test_renamed_packages_and_a_module_beside_the_notebook(tmp_path, package, module, dotted):
    root = tmp_path / "sub"
    root.mkdir()
    if package:
        assignment(root, package, module)
    else:
        (root / "gan.py").write_text(gan_module_source())
        (root / "a6_helper.py").write_text("HELP = 1\n")
        (root / "gan.ipynb").write_text(notebook("from gan import sample_noise\n"
                                                 "import a6_helper"))
        (root / "pytorch_autograd_and_nn.ipynb").write_text(notebook("import torch"))
    submission = load_submission(root)
    assert submission.gan_module == dotted
    assert dotted.replace(".", "/") + ".py" in submission.modules
    if not package:
        assert submission.modules == ["a6_helper.py", "gan.py"]


def test_a_zip_is_graded_like_its_folder_and_its_extraction_is_removed(tmp_path):
    root = assignment(tmp_path / "a3")
    folder_sha = load_submission(root).sha256
    for prefix in ("", "assignment3/"):
        archive = zip_folder(root, tmp_path / f"a3{len(prefix)}.zip", prefix)
        submission = load_submission(archive)
        assert submission.kind == SubmissionKind.ZIP
        assert submission.notebook_name == prefix + DRIVER
        assert submission.gan_module == "cs231n.gan_pytorch"
        extraction = submission.temporary
        assert (submission.path.parent / "cs231n" / "gan_pytorch.py").is_file()
        assert not (submission.path.parent / "cs231n" / "datasets" / "coco.h5").exists()
        if not prefix:  # the same files at the same places: the same digest as the folder
            assert submission.sha256 == folder_sha
        submission.discard()
        assert not extraction.exists()


def test_a_zip_holding_only_a_zip_is_opened_once_more(tmp_path):
    inner = zip_folder(assignment(tmp_path / "a3"), tmp_path / "a3.zip")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, "submission/a3.zip")
    submission = load_submission(outer)
    assert submission.gan_module == "cs231n.gan_pytorch"
    submission.discard()
    deepest = tmp_path / "deepest.zip"
    with zipfile.ZipFile(deepest, "w") as archive:
        archive.write(outer, "outer.zip")
    with pytest.raises(SubmissionError, match="nested more than 2 deep"):
        load_submission(deepest)


def test_a_profile_settles_between_the_editions_notebooks(tmp_path):
    root = assignment(tmp_path / "a3")
    (root / "cs231n" / "gan_tf.py").write_text(gan_module_source().replace("torch", "tensorflow"))
    (root / "Generative_Adversarial_Networks_TF.ipynb").write_text(
        notebook("import tensorflow as tf\nfrom cs231n.gan_tf import sample_noise"))
    with pytest.raises(SubmissionError) as refused:
        load_submission(root)
    assert "2 notebooks could each be the GAN homework" in str(refused.value)
    assert f"{DRIVER}, Generative_Adversarial_Networks_TF.ipynb" in str(refused.value)
    assert load_submission(root, profile="torch").gan_module == "cs231n.gan_pytorch"
    assert load_submission(root, profile="tf2").gan_module == "cs231n.gan_tf"


def test_a_folder_with_one_notebook_defining_the_functions_needs_no_package(tmp_path):
    (tmp_path / "GANs-PyTorch.ipynb").write_text(notebook(
        "import torch", "def sample_noise(b, d):\n    pass\n\ndef discriminator():\n    pass"))
    (tmp_path / "notes.ipynb").write_text(notebook("x = 1"))
    submission = load_submission(tmp_path)
    assert submission.notebook_name == "GANs-PyTorch.ipynb" and submission.modules == []
    assert submission.gan_module is None


# -- refusals ----------------------------------------------------------------------------------


def refused(path: Path, match: str, **arguments) -> str:
    with pytest.raises(SubmissionError, match=match) as error:
        load_submission(path, **arguments)
    return str(error.value)


def test_a_missing_gan_module_is_no_student_code(tmp_path):
    root = assignment(tmp_path / "a3")
    (root / "cs231n" / "gan_pytorch.py").unlink()
    message = refused(root, "student's code is missing")
    assert "imports cs231n.gan_pytorch" in message and "cs231n/gan_pytorch.py" in message


def test_folders_without_the_homework_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no notebook")
    other = tmp_path / "other"
    other.mkdir()
    (other / "RNN_Captioning.ipynb").write_text(notebook("x = 1"))
    (other / "Transformer_Captioning.ipynb").write_text(notebook("y = 2"))
    message = refused(other, "none of its notebooks")
    assert "RNN_Captioning.ipynb, Transformer_Captioning.ipynb" in message


def test_files_outside_the_folder_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "gan_pytorch.py").write_text(gan_module_source())
    (outside / DRIVER).write_text(driver_source())
    linked_module = assignment(tmp_path / "linked_module")
    (linked_module / "cs231n" / "gan_pytorch.py").unlink()
    (linked_module / "cs231n" / "gan_pytorch.py").symlink_to(outside / "gan_pytorch.py")
    refused(linked_module, "a symbolic link to .*outside the submitted folder")
    linked_notebook = assignment(tmp_path / "linked_notebook")
    (linked_notebook / DRIVER).unlink()
    (linked_notebook / DRIVER).symlink_to(outside / DRIVER)
    refused(linked_notebook, "a symbolic link to .*outside")
    linked_package = assignment(tmp_path / "linked_package", "cs682")
    shutil.rmtree(linked_package / "cs682")
    (linked_package / "cs682").symlink_to(outside)
    refused(linked_package, "outside the submitted folder")
    fifo = assignment(tmp_path / "fifo")
    (fifo / "cs231n" / "rnn_layers.py").unlink()
    os.mkfifo(fifo / "cs231n" / "rnn_layers.py")
    refused(fifo, "rnn_layers.py: a FIFO")
    device = assignment(tmp_path / "device", "cs682")
    (device / "cs682" / "rnn_layers.py").unlink()
    (device / "cs682" / "rnn_layers.py").symlink_to("/dev/zero")
    refused(device, "rnn_layers.py: a symbolic link to /dev/zero")
    inside = assignment(tmp_path / "inside")  # a link that stays inside is followed
    (inside / "cs231n" / "copy.py").symlink_to(inside / "cs231n" / "rnn_layers.py")
    assert "cs231n/copy.py" in load_submission(inside).modules


def test_oversized_packages_are_refused(tmp_path, monkeypatch):
    root = assignment(tmp_path / "a3")
    monkeypatch.setattr(folders, "MAX_MODULE_BYTES", 100)
    refused(root, "Python files hold more than")
    monkeypatch.setattr(folders, "MAX_MODULE_FILES", 2)
    refused(root, "more than 2 Python files")


def evil_zip(path: Path, members: dict[str, bytes], good: bool = True) -> Path:
    """A zip of a good assignment plus ``members``, written with the names as given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if good:
            archive.writestr(DRIVER, driver_source())
            archive.writestr("cs231n/__init__.py", "")
            archive.writestr("cs231n/gan_pytorch.py", gan_module_source())
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("name,match", [
    ("../escape.py", "climbs out of the archive's folder"),
    ("cs231n/../../escape.ipynb", "climbs out"),
    ("/etc/escape.py", "absolute name"),
    ("C:/escape.py", "absolute name"),
    ("..\\escape.py", "climbs out"),
    ("/".join(["d"] * 40) + "/x.py", "nested more than 32 folders deep"),
])
def test_zip_members_escaping_the_folder_are_refused(tmp_path, name, match):
    archive = evil_zip(tmp_path / "evil.zip", {name: b"x = 1\n"})
    refused(archive, match)
    assert not (tmp_path / "escape.py").exists() and not Path("/etc/escape.py").exists()


def test_zip_symlinks_bombs_and_oversized_archives_are_refused(tmp_path, monkeypatch):
    link = tmp_path / "link.zip"
    evil_zip(link, {})
    with zipfile.ZipFile(link, "a") as archive:
        info = zipfile.ZipInfo("cs231n/evil.py")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    refused(link, "is a symbolic link")
    bomb = evil_zip(tmp_path / "bomb.zip", {"cs231n/bomb.py": b"\0" * (64 * 2**20)})
    refused(bomb, "compression bomb")
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for number in range(folders.MAX_ZIP_MEMBERS + 1):
            archive.writestr(f"f{number}", b"")
    refused(many, "too many")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    refused(tmp_path / "broken.zip", "not a readable zip archive")
    twice = evil_zip(tmp_path / "twice.zip", {})
    with pytest.warns(UserWarning), zipfile.ZipFile(twice, "a") as archive:
        archive.writestr(DRIVER, driver_source())
    refused(twice, "in the archive twice")
    big = evil_zip(tmp_path / "big.zip", {"cs231n/data.py": os.urandom(4096)})
    monkeypatch.setattr(folders, "MAX_EXTRACTED_BYTES", 2048)  # counted as it is written
    refused(big, "more than 0 MiB to extract")
    monkeypatch.setattr(folders, "MAX_ZIP_BYTES", 1024)
    refused(big, "too large an archive")


def test_refusals_name_the_archive_not_its_extraction(tmp_path):
    archive = evil_zip(tmp_path / "two.zip", {"Generative_Adversarial_Networks_PyTorch.ipynb":
                                              driver_source().encode()})
    message = refused(archive, "could each be the GAN homework")
    assert message.startswith(str(archive)) and "hw4grade-zip-" not in message


# -- batch discovery ---------------------------------------------------------------------------


def loose(folder: Path, name: str = "HW4.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(notebook("def sample_noise(b, d):\n    pass",
                                        "def discriminator():\n    pass"))


def test_a_class_folder_finds_notebooks_folders_and_zips(tmp_path):
    top = tmp_path / "class"
    loose(top, "alice.ipynb")
    loose(top / "bob")
    loose(top / "carol")
    loose(top / "carol", "HW4_v2.ipynb")  # two GAN notebooks: each its own submission
    (top / "carol" / "data.zip").write_bytes(zip_folder(
        assignment(tmp_path / "unused"), tmp_path / "x.zip").read_bytes())
    assignment(top / "dave")  # an assignment folder
    assignment(top / "frank" / "repo" / "assignment3")  # graded as frank/
    (top / "frank" / "repo" / "assignment1").mkdir(parents=True)
    (top / "frank" / "repo" / "assignment1" / "knn.ipynb").write_text(notebook("k = 1"))
    assignment(top / "section" / "gina" / "a3")  # section/ holds two students
    assignment(top / "section" / "hank" / "a3", "cs682")
    zip_folder(assignment(tmp_path / "erin"), top / "erin.zip")
    with zipfile.ZipFile(top / "mnist.zip", "w") as archive:  # data, not a submission
        archive.writestr("train.csv", "1,2\n")
    (top / "ivan").mkdir()
    (top / "ivan" / "HW4.ipynb").write_text(notebook("x = 1"))
    (top / "ivan" / "scratch.ipynb").write_text(notebook("y = 2"))  # no GAN notebook at all
    found = find_notebooks([top])
    assert list(found.values()) == [
        "alice.ipynb", "bob/HW4.ipynb", "carol/HW4.ipynb", "carol/HW4_v2.ipynb",
        "carol/data.zip", "dave", "erin.zip", "frank", "ivan/HW4.ipynb", "ivan/scratch.ipynb",
        "section/gina", "section/hank"]
    for path, label in found.items():
        assert named_folder(path, label) == top
    assert load_submission(top / "frank").notebook_name == f"repo/assignment3/{DRIVER}"
    # a folder named directly that is an assignment folder is one submission
    assert find_notebooks([top / "dave"]) == {top / "dave": "dave"}


def test_a_loose_notebook_class_folder_keeps_its_labels(tmp_path):
    """The regrade corpus (every fixture notebook and example) is found as before: one
    submission per notebook, labelled by its path."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.regrade_corpus import write_corpus

    write_corpus(tmp_path / "submissions")
    before = {path: path.relative_to(tmp_path / "submissions").as_posix()
              for path in sorted((tmp_path / "submissions").rglob("*.ipynb"))
              if ".ipynb_checkpoints" not in path.parts}
    assert len(before) > 50
    assert find_notebooks([tmp_path / "submissions"]) == before


# -- the result and its store ------------------------------------------------------------------


def test_a_refused_folder_scores_zero_named_by_its_label(tmp_path):
    from grader.pipeline.grade_one import Options, grade_notebook
    from grader.rubric import load_rubric

    root = assignment(tmp_path / "class" / "dave")
    (root / "cs231n" / "gan_pytorch.py").unlink()
    result = grade_notebook(root, Options(rubric=load_rubric()), oracle=None, label="dave")
    assert result.error.startswith("dave: ") and result.score == 0
    assert "student's code is missing" in result.error


def test_old_results_without_graded_files_still_read(tmp_path):
    from grader.pipeline.grade_one import Options, failed_result
    from grader.result import SubmissionResult, clean_result
    from grader.rubric import load_rubric

    result = failed_result("dave", Options(rubric=load_rubric()), None, "x")
    data = result.to_dict()
    del data["graded_files"]
    assert SubmissionResult.from_dict(json.loads(json.dumps(data))).graded_files == []
    result.graded_files = [DRIVER, "cs231n/gan_pytorch.py"]
    again = SubmissionResult.from_dict(json.loads(result.to_json()))
    assert clean_result(again).graded_files == result.graded_files


def test_a_cluster_task_gets_what_the_grading_uses_and_records_the_same_digest(tmp_path):
    from grader.pipeline.backends.dask_cluster import packed_submission

    root = assignment(tmp_path / "class" / "dave")
    (root / "gan-checks.npz").write_bytes(b"checks")
    packed = tmp_path / "packed.zip"
    packed.write_bytes(packed_submission(root, tmp_path / "class"))
    with zipfile.ZipFile(packed) as archive:
        assert sorted(archive.namelist()) == sorted(
            [DRIVER, "collectSubmission.sh", "gan-checks.npz",
             *load_submission(root).modules])
    again, original = load_submission(packed), load_submission(root)
    assert (again.sha256, again.modules, again.gan_module, again.notebook_name) == \
        (original.sha256, original.modules, original.gan_module, original.notebook_name)
    again.discard()


def test_check_refuses_a_zip_with_exit_2_and_the_reason(tmp_path, mnist_dir):
    import subprocess
    import sys

    archive = evil_zip(tmp_path / "evil.zip", {"../escape.py": b"x = 1"})
    run = subprocess.run([sys.executable, "-m", "grader", "check", str(archive), "--format",
                          "json", "--no-sandbox", "--mnist", str(mnist_dir)],
                         capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2, run.stderr
    assert "climbs out of the archive's folder" in json.loads(run.stdout)["error"]


# -- one real grading --------------------------------------------------------------------------


def test_a_folder_is_graded_end_to_end_with_its_package(tmp_path, mnist_dir):
    """The solution with two of its functions moved into a package it imports, beside a
    notebook that fails if it is run: the package reaches the kernel, the other notebook is
    not graded, and the result says what was."""
    from grader.pipeline.grade_one import Options, grade_notebook, prepare_mnist
    from grader.rubric import load_rubric
    from tests.fixtures.submissions import SOLUTION_PATH, find_cell

    root = tmp_path / "class" / "alice"
    (root / "hwpkg").mkdir(parents=True)
    nb = nbformat.read(SOLUTION_PATH, as_version=4)
    moved = [find_cell(nb, "leaky-relu"), find_cell(nb, "sample-noise")]
    (root / "hwpkg" / "__init__.py").write_text("")
    (root / "hwpkg" / "gan_tf.py").write_text(
        "import tensorflow as tf\n\n" + "\n\n".join(cell.source for cell in moved) + "\n")
    for cell in moved:
        cell.source = "from hwpkg.gan_tf import leaky_relu, sample_noise"
    nbformat.write(nb, root / "HW4_solution.ipynb")
    (root / "RNN_Captioning.ipynb").write_text(
        notebook("raise SystemExit('the assignment\\'s other notebook was run')"))
    options = Options(rubric=load_rubric(), seed=5, cell_timeout=60, memory_limit=3 * 2**30,
                      threads=1, probe_timeout=60)
    options.mnist_npz = prepare_mnist(str(mnist_dir), tmp_path / "cache")
    result = grade_notebook(root, options, oracle=_oracle(), label="alice")
    assert result.error is None, result.error
    assert result.graded_files == ["HW4_solution.ipynb", "hwpkg/gan_tf.py"]
    assert "graded HW4_solution.ipynb with hwpkg/gan_tf.py (the folder's 1 other " \
           "notebook(s) were not graded)" in result.warnings
    verdicts = {item.id: item.status for item in result.items}
    assert verdicts["sample_noise"] == verdicts["leaky_relu"] == "passed"
    assert verdicts["runs_clean"] == "passed"
    assert result.autograded_full_marks(), [(i.id, i.message) for i in result.items
                                            if i.points < i.max_points]


def _oracle():
    from grader.oracles.choose import load_oracle

    return load_oracle()
