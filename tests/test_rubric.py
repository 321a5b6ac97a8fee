"""rubric.yaml is validated on load, with errors that say where the problem is."""

from __future__ import annotations

import copy

import pytest
import yaml

from grader.items import ITEM_IDS
from grader.rubric import RubricError, load_rubric, parse_rubric, parse_size


@pytest.fixture(scope="module")
def raw() -> dict:
    from grader.rubric import default_rubric_path

    return yaml.safe_load(default_rubric_path().read_text())


def test_shipped_rubric_is_valid_and_complete():
    rubric = load_rubric()
    assert [item.id for item in rubric.items] == list(ITEM_IDS)
    assert {item.id for item in rubric.items if item.manual} == {
        "problem1_derivation", "problem2_derivation"}
    assert rubric.max_score == sum(item.points for item in rubric.items) > 0
    assert rubric.bounds.memory_limit >= 2**30
    assert rubric.budgets["cpu"]["dcgan"] > 0
    networks = ("discriminator", "generator", "dc_discriminator", "dc_generator")
    assert all(0 < rubric.item(i).shape_deduction < rubric.item(i).points for i in networks)
    assert all(item.shape_deduction == 0 for item in rubric.items if item.id not in networks)


def _broken(raw: dict, change) -> dict:
    data = copy.deepcopy(raw)
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["items"][1].update(id="leaky_relu2"), r"items\[1\] \('leaky_relu2'\): unknown"),
    (lambda d: d["items"][2].update(points=-1), r"items\[2\] \('sample_noise'\)\.points: must be"),
    (lambda d: d["items"][3].pop("points"),
     r"items\[3\] \('discriminator'\): missing field 'points'"),
    (lambda d: d["items"][0].update(points="five"), r"points: expected a number"),
    (lambda d: d["items"][0].pop("kind"), r"missing field 'kind'"),
    (lambda d: d["items"][0].update(kind="manual"), r"graded auto, not manual"),
    (lambda d: d["items"].append(dict(d["items"][0])), r"appears twice"),
    (lambda d: d["items"].pop(), r"missing item\(s\) problem2_derivation"),
    (lambda d: d["items"][0].update(weight=2), r"unknown field\(s\) weight"),
    (lambda d: d["items"][1].update(shape_deduction=1),
     r"items\[1\] \('leaky_relu'\)\.shape_deduction: only the network items"),
    (lambda d: d["items"][3].update(shape_deduction=11), r"11 is more than the item's 10 points"),
    (lambda d: d["items"][3].update(shape_deduction=-1), r"shape_deduction: must be at least 0"),
    (lambda d: d.pop("bounds"), r"missing field 'bounds'"),
    (lambda d: d["bounds"].update(memory_limit="lots"), r"memory_limit: expected a size"),
    (lambda d: d["bounds"]["training_steps"].pop("full"), r"training_steps: missing field 'full'"),
    (lambda d: d["bounds"].update(cell_timeout=0), r"cell_timeout: must be greater than 0"),
    (lambda d: d["convergence"]["budgets"]["gpu"].pop("lsgan"), r"gpu: missing field 'lsgan'"),
    (lambda d: d["convergence"]["checkpoints"]["cpu"].update(gan=[700, 500]),
     r"checkpoints\.cpu\.gan: expected a rising list of step counts"),
    (lambda d: d["convergence"]["checkpoints"]["cpu"].update(dcgan=[100, 150]),
     r"checkpoints\.cpu\.dcgan: every checkpoint must come before the budget of 150"),
    (lambda d: d["convergence"]["checkpoints"]["cpu"].update(gan=[0]), r"rising list"),
    (lambda d: d["convergence"].update(samples=10), r"convergence\.samples: must be at least"),
])
def test_invalid_rubrics_name_the_problem(raw, change, message):
    with pytest.raises(RubricError, match=message):
        parse_rubric(_broken(raw, change), source="r.yaml")


def test_unreadable_and_non_yaml_files(tmp_path):
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("items: [unclosed")
    with pytest.raises(RubricError, match="not valid YAML"):
        load_rubric(bad)
    bad.write_text("- just a list")
    with pytest.raises(RubricError, match="must be a mapping"):
        load_rubric(bad)


def test_points_changed_by_an_instructor_are_used(raw, tmp_path):
    data = _broken(raw, lambda d: d["items"][1].update(points=12.5))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_rubric(path).item("leaky_relu").points == 12.5


@pytest.mark.parametrize(("text", "size"), [("4GiB", 4 * 2**30), ("512MB", 512 * 10**6),
                                            ("1.5KiB", 1536), (1024, 1024), ("2g", 2 * 10**9)])
def test_sizes(text, size):
    assert parse_size(text, "x") == size


def test_rubric_command(capsys, tmp_path):
    from grader.cli import main

    assert main(["rubric"]) == 0
    assert "valid, 18 items" in capsys.readouterr().out
    bad = tmp_path / "r.yaml"
    bad.write_text("items: []\nbounds: {}\n")
    assert main(["rubric", str(bad)]) == 2
