"""The instructor's round for a PyTorch course: ``hw4grade collect`` of assignment
repositories that hold several notebooks and the student's package, then ``hw4grade grade``
of the collection, each student's folder graded as one folder submission."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import nbformat
import pytest

from grader.rubric import load_rubric
from tests.collect.test_grade_collected import hw4grade
from tests.fixtures.git_repos import DEADLINE, Repo, when
from tests.fixtures.torch_submissions import Layout, folder_files, torch_variant_by_name

pytest.importorskip("torch")

DRIVER = "Generative_Adversarial_Networks_PyTorch.ipynb"


def other_notebook() -> bytes:
    """Another part of the assignment: not the GAN homework."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import numpy as np\n"
                                                "def rnn_step_forward(x, h, Wx, Wh, b):\n"
                                                "    return np.tanh(x @ Wx + h @ Wh + b)\n")]
    return (nbformat.writes(notebook) + "\n").encode("utf-8")


def assignment(repo: Repo, files: dict[str, bytes], *others: str) -> Repo:
    """The student's assignment folder: the GAN's files and other notebooks beside them."""
    for relative, data in files.items():
        repo.write(f"assignment3/{relative}", data)
    for name in others:
        repo.write(f"assignment3/{name}", other_notebook())
    return repo


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory, mnist_dir) -> dict:
    """Three students collected and graded once: dana (the course's package, correct), erin
    (a renamed package, Adam's default betas), frank (two GAN notebooks: not chosen)."""
    base = tmp_path_factory.mktemp("pytorch-round")
    correct = torch_variant_by_name("t2020_module_folder")
    renamed = replace(torch_variant_by_name("adam_default_betas"), layout=Layout.FOLDER,
                      package="comp411")
    dana = assignment(Repo(base / "repos" / "dana"), folder_files(correct),
                      "RNN_Captioning.ipynb", "Transformer_Captioning.ipynb")
    commits = {"dana": dana.commit("assignment 3", when(days=-1))}
    erin = assignment(Repo(base / "repos" / "erin"), folder_files(renamed),
                      "RNN_Captioning.ipynb")
    commits["erin"] = erin.commit("assignment 3", when(hours=-3))
    frank_files = folder_files(correct)
    frank_files["GAN_copy.ipynb"] = frank_files[DRIVER]
    frank = assignment(Repo(base / "repos" / "frank"), frank_files)
    frank.commit("two of them", when(hours=-2))
    (base / "roster.csv").write_text("student,repository\n" + "".join(
        f"{name},{base / 'repos' / name}\n" for name in ("dana", "erin", "frank")))
    collected = hw4grade("collect", "roster.csv", "--deadline", DEADLINE.isoformat(),
                         "--out", "submissions", cwd=base)
    graded = hw4grade("grade", "submissions", "--out", "out", "--seed", "3", "--mnist",
                      str(mnist_dir), cwd=base)
    with open(base / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    manifest = json.loads((base / "submissions" / "collect.json").read_text())
    return {"collected": collected, "graded": graded, "rows": rows, "commits": commits,
            "entries": manifest["students"],
            "base": base}


def test_collect_takes_the_gan_homework_and_its_package(round_trip):
    assert round_trip["collected"].returncode == 0, round_trip["collected"].stderr
    dana, erin = round_trip["entries"]["dana"], round_trip["entries"]["erin"]
    assert (dana["status"], dana["notebook"]) == ("collected", f"assignment3/{DRIVER}")
    assert "the GAN homework among the 3 notebooks" in dana["reason"], dana["reason"]
    assert "(it imports cs231n/gan_pytorch.py)" in dana["reason"]
    assert f"dana/{DRIVER}" in dana["files"] and "dana/cs231n/gan_pytorch.py" in dana["files"]
    assert "erin/comp411/gan_pytorch.py" in erin["files"]
    base = round_trip["base"] / "submissions"
    assert not (base / "dana" / "RNN_Captioning.ipynb").exists()  # only the homework


def test_a_repository_with_two_gan_notebooks_is_not_guessed(round_trip):
    frank = round_trip["entries"]["frank"]
    assert frank["status"] == "several_notebooks"
    assert "could each be the GAN homework" in frank["reason"], frank["reason"]
    assert "--notebook" in frank["reason"]
    row = round_trip["rows"]["frank"]
    assert row["score"] == "0" and "could each be the GAN homework" in row["error"]


def test_each_collected_folder_is_graded_with_its_package_and_provenance(round_trip):
    graded = round_trip["graded"]
    assert graded.returncode == 0, graded.stderr[-3000:]
    rows = round_trip["rows"]
    points = {item.id: item.points for item in load_rubric().items}
    dana, erin = rows["dana"], rows["erin"]
    assert dana["submission"] == "dana" and dana["profile"] == "torch-module", dana
    assert dana["error"] == "" and float(dana["score"]) == float(dana["max_score"]), dana
    lost = points["get_solvers"] - float(erin["get_solvers"])  # Adam's default betas
    assert lost > 0 and float(erin["score"]) == float(erin["max_score"]) - lost, erin
    for name in ("dana", "erin"):
        assert rows[name]["commit"] == round_trip["commits"][name]
        assert rows[name]["repository"].endswith(f"repos/{name}")
    stored = list((round_trip["base"] / "out" / "results").glob("erin*.json"))
    assert len(stored) == 1, stored
    result = json.loads(stored[0].read_text())
    assert "comp411/gan_pytorch.py" in result["graded_files"], result["graded_files"]


@pytest.mark.parametrize(("profile", "chosen"), [("torch", "GANs-PyTorch.ipynb"),
                                                 ("tf2", "GANs-TensorFlow.ipynb"),
                                                 ("auto", None)])
def test_profile_settles_between_a_repositorys_two_editions(make_repo, notebook_bytes,
                                                            tmp_path, profile, chosen):
    """A 2019-style assignment holds the TensorFlow and the PyTorch GAN notebooks."""
    from tests.fixtures.torch_submissions import build_driver

    repo = make_repo("gail")
    repo.write("GANs-TensorFlow.ipynb", notebook_bytes("alice"))
    torch_notebook = build_driver(torch_variant_by_name("t2019_correct"))
    repo.write("GANs-PyTorch.ipynb", nbformat.writes(torch_notebook) + "\n")
    repo.commit("both", when(days=-1))
    (tmp_path / "roster.csv").write_text(f"student,repository\ngail,{repo.path}\n")
    done = hw4grade("collect", "roster.csv", "--deadline", DEADLINE.isoformat(), "--out",
                    "submissions", "--profile", profile, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "submissions" / "collect.json").read_text())
    entry = manifest["students"]["gail"]
    if chosen:
        assert (entry["status"], entry["notebook"]) == ("collected", chosen), entry
    else:
        assert entry["status"] == "several_notebooks" and "--profile" in entry["reason"]


def test_notebooks_too_large_to_read_together_are_not_read(make_repo, notebook_bytes,
                                                           tmp_path):
    """Choosing among several notebooks reads at most twice one notebook's limit."""
    from grader.collect.collect import Settings, collect_class
    from grader.collect.git import Limits
    from grader.collect.roster import RosterRow

    repo = make_repo("hank")
    repo.write("HW4.ipynb", notebook_bytes("alice")).write("Other.ipynb", notebook_bytes("bob"))
    repo.write("Third.ipynb", notebook_bytes("dave")).commit("three", when(hours=-1))
    limit = max(len(notebook_bytes(name)) for name in ("alice", "bob", "dave")) + 1
    settings = Settings(deadline=DEADLINE, out=tmp_path / "out",
                        limits=Limits(notebook_bytes=limit))
    entry = collect_class([RosterRow("hank", str(repo.path))], settings).entries["hank"]
    assert entry.status.value == "several_notebooks"
    assert "too many, too large or oddly named to read" in entry.reason
