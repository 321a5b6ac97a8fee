"""The lines a convergence run is judged against, calibrated on reference runs.

``benchmarks/calibrate_convergence.py`` trains the reference with the grader's loop on many
seeds and writes ``grader/data/convergence_lines.json``: per device and model, for each
checkpoint, the FCD above which a run is clearly behind every reference seed (``stop``: the
run ends there, judged by the rubric's lines), the FCD below which a run is implausibly
better than every reference seed (``too_good``) and the correlation with its start above
which a generator has moved too little for the steps reported (``start_corr_ceiling``), and
the floors of the integrity checks.
The rubric's own pass and fail lines decide the credit; these lines only decide when a
verdict is settled early and what is implausible. A checkpoint without calibration gets no
early stop and no ``too_good`` check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grader import DATA_DIR
from grader.exceptions import RubricError

LINES_FILE = DATA_DIR / "convergence_lines.json"


@dataclass(frozen=True)
class CheckpointLines:
    """The calibrated FCD lines of one checkpoint (None: not calibrated)."""

    stop: float | None = None
    too_good: float | None = None
    # the correlation of the generator's smallest kernel with its start stays below this
    # after as many steps with the course's optimizer (it moves at least so far)
    start_corr_ceiling: float | None = None
    # |reported - recomputed| of the mean D and G losses stays within these
    loss_gap: tuple[float, float] | None = None


@dataclass(frozen=True)
class IntegrityLines:
    """The floors and tolerances of the plausibility checks, the same for every model."""

    # a sample this close to a training image is a copy (real MNIST test digits: 1.66 at least)
    copy_distance: float = 0.8
    copy_fraction: float = 0.05  # more than this share of copies flags the run
    # z of the correlation with the run's start: about N(0, 1) for an unrelated network, so
    # an honest run is above 5 but for one chance in a million
    descent_z_floor: float = 5.0


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
                           for name in ("stop", "too_good", "start_corr_ceiling")]
                gaps = [None if pair is None else (float(pair[0]), float(pair[1]))
                        for pair in table.get("loss_gap", [None] * len(steps))]
                checkpoints.setdefault(device, {})[model] = {
                    step: CheckpointLines(*values, gap)
                    for step, *values, gap in zip(steps, *columns, gaps, strict=True)}
        found = raw.get("integrity", {})
        defaults = IntegrityLines()
        integrity = IntegrityLines(
            copy_distance=float(found.get("copy_distance", defaults.copy_distance)),
            copy_fraction=float(found.get("copy_fraction", defaults.copy_fraction)),
            descent_z_floor=float(found.get("descent_z_floor", defaults.descent_z_floor)))
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
