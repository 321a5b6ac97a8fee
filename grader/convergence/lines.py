"""The lines a convergence run is judged against, calibrated on reference runs.

``benchmarks/calibrate_convergence.py`` trains the reference with the grader's loop on many
seeds and writes ``grader/data/convergence_lines.json``: per device and model, for each
checkpoint, the FCD above which a run is clearly behind every reference seed (``stop``: the
run ends there, judged by the rubric's lines) and the FCD below which a run is implausibly
better than every reference seed (``too_good``), and the floors of the integrity checks.
The rubric's own pass and fail lines decide the credit; these lines only decide when a
verdict is settled early and what is implausible. A checkpoint without calibration gets no
early stop and no ``too_good`` check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader import DATA_DIR
from grader.exceptions import RubricError

LINES_FILE = DATA_DIR / "convergence_lines.json"


@dataclass(frozen=True)
class CheckpointLines:
    """The calibrated FCD lines of one checkpoint (None: not calibrated)."""

    stop: float | None = None
    too_good: float | None = None
    descent_ceiling: float | None = None  # the generator's z stays below this after as many steps


@dataclass(frozen=True)
class IntegrityLines:
    """The floors and tolerances of the plausibility checks, the same for every model."""

    # a sample this close to a training image is a copy (MNIST test images: 2.2 at least)
    copy_distance: float = 1.0
    copy_fraction: float = 0.05  # more than this share of copies flags the run
    # z of the correlation with the run's start: about N(0, 1) for an unrelated network, so
    # an honest run is above 5 but for one chance in a million
    descent_z_floor: float = 5.0
    # |reported - recomputed| of the mean D and G losses at a checkpoint, by model
    loss_tolerance: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class CalibratedLines:
    """Everything the calibration decided: ``checkpoints[device][model][step]``."""

    checkpoints: dict[str, dict[str, dict[int, CheckpointLines]]]
    integrity: IntegrityLines
    samples: int  # the sample count the FCD lines were calibrated at

    def at(self, device: str, model: str, step: int) -> CheckpointLines:
        """The lines of one checkpoint (empty when that checkpoint was not calibrated)."""
        return self.checkpoints.get(device, {}).get(model, {}).get(step, CheckpointLines())


def parse_lines(raw: dict, source: str) -> CalibratedLines:
    """Lines from the calibration's JSON object; RubricError naming what is wrong."""
    try:
        checkpoints: dict[str, dict[str, dict[int, CheckpointLines]]] = {}
        for device, models in raw["devices"].items():
            for model, table in models.items():
                steps = [int(step) for step in table["checkpoints"]]
                columns = [[None if value is None else float(value)
                            for value in table.get(name, [None] * len(steps))]
                           for name in ("stop", "too_good", "descent_ceiling")]
                checkpoints.setdefault(device, {})[model] = {
                    step: CheckpointLines(*values)
                    for step, *values in zip(steps, *columns, strict=True)}
        found = raw.get("integrity", {})
        tolerance = {model: (float(pair[0]), float(pair[1]))
                     for model, pair in found.get("loss_tolerance", {}).items()}
        defaults = IntegrityLines()
        integrity = IntegrityLines(
            copy_distance=float(found.get("copy_distance", defaults.copy_distance)),
            copy_fraction=float(found.get("copy_fraction", defaults.copy_fraction)),
            descent_z_floor=float(found.get("descent_z_floor", defaults.descent_z_floor)),
            loss_tolerance=tolerance)
        return CalibratedLines(checkpoints, integrity, int(raw["samples"]))
    except (KeyError, TypeError, ValueError) as error:
        raise RubricError(f"{source}: not a table of calibrated convergence lines "
                          f"({type(error).__name__}: {error})") from None


def load_lines(path: Path = LINES_FILE) -> CalibratedLines:
    """The calibrated lines shipped with the grader."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RubricError(f"{path}: the calibrated convergence lines cannot be read "
                          f"({error})") from None
    return parse_lines(raw, str(path))
