"""The oracles' declared interface and the direction of the imports between their modules."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from grader.oracles import choose, weights
from grader.oracles.interface import BuildingOracle, Oracle
from grader.oracles.public import RecordingOracle, ReplayOracle
from grader.oracles.reference import ReferenceOracle

GRADER = Path(__file__).resolve().parents[2] / "grader"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from a import b`` gives a and a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_interface_is_what_the_scoring_asks():
    asked = set()
    for name in ("probe.py", "score.py"):
        tree = ast.parse((GRADER / "pipeline" / name).read_text(encoding="utf-8"))
        asked |= {node.func.attr for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "oracle"}
    declared = {name for name, value in vars(Oracle).items()
                if not name.startswith("_") and callable(value)}
    assert asked == declared


def test_every_oracle_implements_it():
    for cls in (ReferenceOracle, ReplayOracle, RecordingOracle, choose.BackgroundOracle):
        assert issubclass(cls, Oracle), cls
    assert issubclass(ReferenceOracle, BuildingOracle)


def test_reference_and_public_import_neither_each_other_nor_the_choice():
    oracles = GRADER / "oracles"
    for name, others in (("reference", ("public", "choose")), ("public", ("reference", "choose")),
                         ("weights", ("reference", "public", "choose")),
                         ("interface", ("reference", "public", "choose"))):
        imported = imported_modules(oracles / f"{name}.py")
        assert not {f"grader.oracles.{other}" for other in others} & imported, name
    assert {"grader.oracles.reference", "grader.oracles.public"} <= imported_modules(
        oracles / "choose.py")


def test_no_oracle_depends_on_the_pipeline_or_the_commands():
    for path in (GRADER / "oracles").glob("*.py"):
        imported = imported_modules(path)
        assert not [m for m in imported if m.startswith(("grader.pipeline", "grader.commands"))]


def test_weights_are_drawn_by_shape_and_name():
    specs = [((3, 4), "seq/dense/kernel"), ((4,), "seq/dense/bias"),
             ((4,), "seq/batch_normalization/gamma"), ((4,), "moving_variance")]
    drawn = weights.draw_weights(specs, np.random.default_rng(0))
    assert [w.shape for w in drawn] == [(3, 4), (4,), (4,), (4,)]
    assert all(w.dtype == np.float32 for w in drawn)
    assert all(((w >= 0.5) & (w <= 1.5)).all() for w in drawn[2:])
    again = weights.draw_weights([(list(s), p) for s, p in specs], np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(drawn, again))
