"""The README's main job: grading the bundled example submissions on the embedded MNIST sample."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from grader.cli import main
from grader.mnist import data as mnist

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "submissions"
UNITS = ("leaky_relu", "sample_noise", "discriminator", "generator", "gan_loss", "get_solvers",
         "lsgan_loss", "dc_discriminator", "dc_generator", "optimal_d_gan", "optimal_d_lsgan",
         "vae_kl")


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> dict[str, dict[str, str]]:
    """The examples graded with paths relative to the current folder, as the README's
    commands give them (the kernels run elsewhere), on the embedded MNIST sample."""
    base = tmp_path_factory.mktemp("examples")
    out = base / "graded out ü"
    patch = pytest.MonkeyPatch()
    patch.delenv(mnist.ENV_VAR, raising=False)
    patch.setenv("KERAS_HOME", str(base / "no-keras-cache"))
    patch.setattr(mnist, "download_with_keras", lambda: (_ for _ in ()).throw(OSError("offline")))
    patch.chdir(base)
    try:
        assert main(["grade", os.path.relpath(EXAMPLES, base), "--out", out.name, "--seed", "0",
                     "--timeout", "60"]) == 0
    finally:
        patch.undo()
    with open(out / "gradebook.csv", newline="") as stream:
        return {row["submission"]: row for row in csv.DictReader(stream)}


def _lost(row: dict[str, str]) -> set[str]:
    from grader.rubric import load_rubric

    rubric = load_rubric()
    return {item for item in UNITS + ("runs_clean",)
            if float(row[item] or 0) < rubric.item(item).points}


def test_every_example_is_in_the_gradebook(gradebook):
    assert set(gradebook) == {"alice.ipynb", "bob.ipynb", "carol.ipynb", "dave.ipynb",
                              "erin.ipynb"}


def test_correct_but_different_work_gets_full_marks(gradebook):
    assert _lost(gradebook["alice.ipynb"]) == set()


def test_bugs_lose_points_where_they_live(gradebook):
    assert _lost(gradebook["bob.ipynb"]) == {"gan_loss", "generator", "sample_noise"}
    assert _lost(gradebook["dave.ipynb"]) == {"lsgan_loss", "runs_clean"}


def test_blank_and_corrupt_notebooks(gradebook):
    assert _lost(gradebook["carol.ipynb"]) == set(UNITS)
    assert gradebook["erin.ipynb"]["status"] == "error"
    assert "not valid JSON" in gradebook["erin.ipynb"]["error"]
