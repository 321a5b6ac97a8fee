"""Load and validate ``rubric.yaml``: the graded items, their points, bounds and budgets.

A rubric error names the file and the place in it (``items[3].points``), so an
instructor who edits the file sees what to fix instead of a traceback.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader import items
from grader.exceptions import RubricError
from grader.pipeline.devices import DEVICES

KINDS = ("auto", "manual")


class Mode:
    """How far a grade trains (``--mode``): ``QUICK`` cuts the notebook's own training after
    a few steps and skips the convergence items; ``FULL`` trains to the rubric's budget."""

    QUICK = "quick"
    FULL = "full"


MODES = (Mode.QUICK, Mode.FULL)

_SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KB": 10**3, "MB": 10**6,
               "GB": 10**9, "KI": 2**10, "MI": 2**20, "GI": 2**30,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


_TYPE_NAMES = {list: "a list", dict: "a mapping", str: "a string", int: "a number",
               float: "a number"}


@dataclass(frozen=True)
class Item:
    """One graded item of the rubric."""

    id: str
    points: float
    kind: str
    checks: str
    tolerance: dict[str, float] = field(default_factory=dict)
    # network items: points off when the output holds the right values in another shape
    shape_deduction: float = 0.0

    @property
    def manual(self) -> bool:
        """True for items graded by hand (the derivations)."""
        return self.kind == "manual"


@dataclass(frozen=True)
class Bounds:
    """Limits on executing one notebook."""

    cell_timeout: float
    notebook_timeout: float
    memory_limit: int
    output_limit: int
    training_steps: dict[str, int]


@dataclass(frozen=True)
class Convergence:
    """How the grader trains each GAN: step budgets and FCD lines per device and model."""

    budgets: dict[str, dict[str, int]]
    thresholds: dict[str, dict[str, tuple[float, float]]]  # (full credit at/below, none at/above)
    attribution_runs: int = 3
    # retrainings at a new seed of a model whose parts all passed their items, on a shortfall
    reseed_runs: int = 1
    max_seconds: float = 600.0
    min_class_entropy: float = 0.2  # below this (nats) credit is capped at half: mode collapse
    # steps before the budget at which a run is judged and may stop, per device and model
    checkpoints: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    samples: int = 2000  # samples the grader draws and judges at each checkpoint

    def schedule(self, device: str, model: str) -> list[int]:
        """The steps at which ``model`` is judged on ``device``, ending with its budget."""
        budget = self.budgets[device][model]
        return [*self.checkpoints.get(device, {}).get(model, ()), budget]


@dataclass(frozen=True)
class Rubric:
    """The validated rubric: items in file order, bounds and convergence settings."""

    items: tuple[Item, ...]
    bounds: Bounds
    convergence: Convergence
    source: str
    text_sha256: str

    @property
    def budgets(self) -> dict[str, dict[str, int]]:
        """Training steps per device and model."""
        return self.convergence.budgets

    @property
    def max_score(self) -> float:
        """Total points of every item, manual ones included."""
        return sum(item.points for item in self.items)

    def item(self, item_id: str) -> Item:
        """Return the item with id ``item_id``."""
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


def parse_size(value: Any, where: str) -> int:
    """Parse a byte size such as ``4GiB``, ``512MB`` or ``1048576`` into bytes."""
    if isinstance(value, bool):
        raise RubricError(f"{where}: expected a size such as 4GiB, got {value!r}")
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]?I?B?)\s*", str(value).upper())
        if not match:
            raise RubricError(f"{where}: expected a size such as 4GiB or 512MB, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise RubricError(f"{where}: a size must be positive, got {value!r}")
    return size


def default_rubric_path() -> Path:
    """The rubric shipped with the grader: the project's ``rubric.yaml`` or the installed copy."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "rubric.yaml", package_dir / "rubric.yaml"):
        if candidate.is_file():
            return candidate
    raise RubricError("no rubric.yaml found next to the grader; pass --rubric FILE")


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric file (default: the shipped one)."""
    path = Path(path) if path is not None else default_rubric_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RubricError(f"{path}: cannot read the rubric ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RubricError(f"{path}: not valid YAML ({error})") from None
    return parse_rubric(data, source=str(path), text=text)


def parse_rubric(data: Any, source: str = "rubric", text: str = "") -> Rubric:
    """Validate rubric data already read from YAML; raise RubricError naming the bad field."""

    if not isinstance(data, dict):
        raise RubricError(f"{source}: the rubric must be a mapping with 'items', 'bounds', ...")
    parsed = _parse_items(_require(data, "items", source, list), source)
    bounds = _parse_bounds(_require(data, "bounds", source, dict), source)
    convergence = _parse_convergence(_require(data, "convergence", source, dict), source)
    digest = hashlib.sha256((text or repr(data)).encode()).hexdigest()
    return Rubric(items=parsed, bounds=bounds, convergence=convergence, source=source,
                  text_sha256=digest)


def _require(mapping: dict, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in mapping:
        raise RubricError(f"{where}: missing field '{key}'")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise RubricError(f"{where}.{key}: expected {names}, got {value!r}")
    return value


def _number(value: Any, where: str, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RubricError(f"{where}: expected a number, got {value!r}")
    if value < minimum or strict and value == minimum:
        relation = "greater than" if strict else "at least"
        raise RubricError(f"{where}: must be {relation} {minimum}, got {value!r}")
    return float(value)


def _parse_items(raw_items: list, source: str) -> tuple[Item, ...]:
    parsed: list[Item] = []
    for index, raw in enumerate(raw_items):
        where = f"{source}: items[{index}]"
        if not isinstance(raw, dict):
            raise RubricError(f"{where}: expected a mapping with id, points, kind, checks")
        item_id = _require(raw, "id", where, str)
        where = f"{where} ('{item_id}')"
        if item_id not in items.ITEM_IDS:
            raise RubricError(f"{where}: unknown item id; known ids are "
                              f"{', '.join(items.ITEM_IDS)}")
        if any(item.id == item_id for item in parsed):
            raise RubricError(f"{where}: item id appears twice")
        if "points" not in raw:
            raise RubricError(f"{where}: missing field 'points'")
        points = _number(raw["points"], f"{where}.points")
        kind = _require(raw, "kind", where, str)
        if kind not in KINDS:
            raise RubricError(f"{where}.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
        by_hand = items.spec(item_id).check == items.MANUAL
        if (kind == "manual") != by_hand:
            expected = "manual" if by_hand else "auto"
            raise RubricError(f"{where}.kind: this item is graded {expected}, not {kind}")
        checks = _require(raw, "checks", where, str)
        tolerance = {
            name: _number(value, f"{where}.tolerance.{name}")
            for name, value in (raw.get("tolerance") or {}).items()
        }
        unknown = set(raw) - {"id", "points", "kind", "checks", "tolerance", "shape_deduction"}
        if unknown:
            raise RubricError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        shape_deduction = _shape_deduction(raw, item_id, points, where)
        parsed.append(Item(item_id, points, kind, checks, tolerance, shape_deduction))
    missing = [item_id for item_id in items.ITEM_IDS
               if all(item.id != item_id for item in parsed)]
    if missing:
        raise RubricError(
            f"{source}: items: missing item(s) {', '.join(missing)} (set points: 0 to disable one)"
        )
    return tuple(parsed)


def _shape_deduction(raw: dict, item_id: str, points: float, where: str) -> float:
    """The item's ``shape_deduction``: network items only, between 0 and its points."""
    if "shape_deduction" not in raw:
        return 0.0
    networks = items.ids_with(items.NETWORK)
    if item_id not in networks:
        raise RubricError(f"{where}.shape_deduction: only the network items "
                          f"({', '.join(networks)}) have an output shape to deduct for")
    value = _number(raw["shape_deduction"], f"{where}.shape_deduction")
    if value > points:
        raise RubricError(f"{where}.shape_deduction: {value:g} is more than the item's "
                          f"{points:g} points")
    return value


def _parse_bounds(raw: dict, source: str) -> Bounds:
    where = f"{source}: bounds"
    steps = _require(raw, "training_steps", where, dict)
    training_steps = {}
    for mode in MODES:
        if mode not in steps:
            raise RubricError(f"{where}.training_steps: missing field '{mode}'")
        training_steps[mode] = int(_number(steps[mode], f"{where}.training_steps.{mode}",
                                           minimum=0, strict=True))
    return Bounds(
        cell_timeout=_number(_require(raw, "cell_timeout", where, (int, float)),
                             f"{where}.cell_timeout", strict=True),
        notebook_timeout=_number(_require(raw, "notebook_timeout", where, (int, float)),
                                 f"{where}.notebook_timeout", strict=True),
        memory_limit=parse_size(_require(raw, "memory_limit", where, (int, str)),
                                f"{where}.memory_limit"),
        output_limit=parse_size(_require(raw, "output_limit", where, (int, str)),
                                f"{where}.output_limit"),
        training_steps=training_steps,
    )


def _per_device_model(raw: dict, where: str, parse) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for device in DEVICES:
        per_model = _require(raw, device, where, dict)
        table[device] = {model: parse(_require(per_model, model, f"{where}.{device}",
                                               (int, float, list)), f"{where}.{device}.{model}")
                         for model in items.models()}
    return table


def _steps(value: Any, where: str) -> int:
    return int(_number(value, where, strict=True))


def _fcd_lines(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise RubricError(f"{where}: expected [pass FCD, fail FCD], got {value!r}")
    low, high = (_number(v, where) for v in value)
    if not low < high:
        raise RubricError(f"{where}: the pass FCD must be below the fail FCD, got {value!r}")
    return low, high


def _parse_convergence(raw: dict, source: str) -> Convergence:
    where = f"{source}: convergence"
    budgets = _per_device_model(_require(raw, "budgets", where, dict), f"{where}.budgets",
                                _steps)
    thresholds = _per_device_model(_require(raw, "thresholds", where, dict),
                                   f"{where}.thresholds", _fcd_lines)
    runs = int(_number(raw.get("attribution_runs", 3), f"{where}.attribution_runs"))
    reseeds = int(_number(raw.get("reseed_runs", Convergence.reseed_runs),
                          f"{where}.reseed_runs"))
    seconds = _number(raw.get("max_seconds", 600), f"{where}.max_seconds", strict=True)
    entropy = _number(raw.get("min_class_entropy", 0.2), f"{where}.min_class_entropy")
    checkpoints = {}
    if "checkpoints" in raw:
        checkpoints = _per_device_model(_require(raw, "checkpoints", where, dict),
                                        f"{where}.checkpoints", _step_list)
        for device, models in checkpoints.items():
            for model, steps in models.items():
                if steps and steps[-1] >= budgets[device][model]:
                    raise RubricError(f"{where}.checkpoints.{device}.{model}: every checkpoint "
                                      f"must come before the budget of "
                                      f"{budgets[device][model]} steps, got {list(steps)}")
    samples = int(_number(raw.get("samples", 2000), f"{where}.samples", minimum=100))
    return Convergence(budgets, thresholds, attribution_runs=runs, reseed_runs=reseeds,
                       max_seconds=seconds, min_class_entropy=entropy,
                       checkpoints=checkpoints, samples=samples)


def _step_list(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value) \
            or sorted(set(value)) != value:
        raise RubricError(f"{where}: expected a rising list of step counts, got {value!r}")
    return tuple(value)
