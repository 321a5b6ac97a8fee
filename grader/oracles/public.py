"""Public checks: the reference oracle's answers, recorded once and replayed without it.

A student's install has no ``reference`` package, so it cannot compute expected values.
Instead, ``hw4grade release`` grades the solution notebook with a fixed public seed
through a ``RecordingOracle``, which notes every question the grader asks the reference
oracle and its answer. The answers are saved to ``public_checks.npz`` (arrays) and
``public_checks.json`` (an index), shipped in the student wheel's ``grader/data``. There a
``ReplayOracle`` answers the same questions from those files. Each reference oracle has
its own pair of files, named by a stem: ``public_checks`` for the Keras reference that the
batch's oracle replays; a framework scored against another reference names its own (e.g.
``public_checks_torch``). The grader draws every input from the seed alone, never from
what a notebook returns, so grading any notebook with the public seed asks only questions
the recording has seen; any other question is answered with ``PublicCheckMissing``.

A question is identified by a hash of the method name and its arguments (arrays by dtype,
shape and bytes; floats exactly; dicts by sorted keys; a random generator by its state).

``model_weights`` draws random weights from the generator it is given. The replay must
return the same arrays *and* leave the generator where the reference left it, since the
grader draws the next inputs from it. Storing the arrays would take about 40 MB, so the
recording keeps the shapes and names of the reference model's variables instead (its
oracle's ``variable_specs``), and the replay draws the weights again from them with
``grader.oracles.weights.draw_weights``, the function the reference oracle draws them with.
The recording checks, bit for bit, that this gives the reference's arrays and generator
state, and refuses to save otherwise.

Both oracles here answer the questions of ``grader.oracles.interface.Oracle``; this
module does not import the reference oracle (``grader.oracles.choose`` picks one).

The seed is outside the range the instructor's grading draws seeds from (``[0, 2**31)``),
so the recorded answers are never answers to the hidden checks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader import DATA_DIR
from grader.exceptions import PublicCheckMissing, RecordingError
from grader.oracles.interface import BuildingOracle
from grader.oracles.weights import draw_weights

PUBLIC_SEED = 2**31 + 2024
FORMAT_VERSION = 1
CHECKS_STEM = "public_checks"  # the batch's: public_checks.npz and public_checks.json
RECORDED_METHODS = ("activation", "loss", "model_weights", "model_output", "parameter_count")
PUBLIC_NOTE = ("public self-check: expected values come from the instructor's solution on fixed "
               "public inputs (seed {seed}); the instructor grades on hidden inputs drawn afresh")


# --------------------------------------------------------------------------- question keys


def _feed(digest: Any, value: Any) -> None:
    """Add a canonical, type-tagged encoding of ``value`` to ``digest``."""
    if value is None:
        digest.update(b"N;")
    elif isinstance(value, (bool, np.bool_)):
        digest.update(b"B1;" if value else b"B0;")
    elif isinstance(value, (int, np.integer)):
        digest.update(b"I%d;" % int(value))
    elif isinstance(value, (float, np.floating)):
        digest.update(b"F" + float(value).hex().encode() + b";")
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        digest.update(b"S%d:" % len(encoded) + encoded)
    elif isinstance(value, np.ndarray):
        header = f"A{value.dtype.str}{list(value.shape)}:".encode()
        digest.update(header + np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(b"L%d:" % len(value))
        for element in value:
            _feed(digest, element)
    elif isinstance(value, dict):
        digest.update(b"D%d:" % len(value))
        for key in sorted(value, key=str):
            _feed(digest, str(key))
            _feed(digest, value[key])
    elif isinstance(value, np.random.Generator):
        _feed(digest, generator_state(value))
    else:
        raise TypeError(f"cannot key an argument of type {type(value).__name__}")


def call_key(method: str, args: Iterable[Any]) -> str:
    """A stable hash of one oracle question: the method and its positional arguments."""
    digest = hashlib.sha256(b"hw4grade-public-checks/1;")
    _feed(digest, method)
    _feed(digest, list(args))
    return digest.hexdigest()[:40]


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The full state of ``rng`` (a JSON-ready copy)."""
    return copy.deepcopy(rng.bit_generator.state)


# --------------------------------------------------------------------------- answers on disk


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-ready form of an answer; arrays go to ``arrays`` and are referenced by name."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"array": name}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": float(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return {"list": [_encode(v, arrays) for v in value]}
    raise TypeError(f"cannot store an answer of type {type(value).__name__}")


def _decode(data: Any, arrays: Any) -> Any:
    """The answer ``_encode`` stored (arrays are fresh copies)."""
    kind, payload = next(iter(data.items()))
    if kind == "array":
        return np.array(arrays[payload])
    if kind == "str":
        return str(payload)
    if kind == "bool":
        return bool(payload)
    if kind == "int":
        return int(payload)
    if kind == "float":
        return float(payload)
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in payload)
    if kind == "list":
        return [_decode(v, arrays) for v in payload]
    raise ValueError(f"unknown stored answer kind {kind!r}")


@dataclass
class PublicChecks:
    """Recorded questions and answers, with the settings they were recorded under."""

    seed: int
    mode: str
    rubric_sha256: str
    item_ids: list[str]  # the rubric's items in order: the grader draws inputs in this order
    grader_version: str
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> entry
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def index(self) -> dict[str, Any]:
        """The JSON index: settings, then one entry per question."""
        return {"format": FORMAT_VERSION, "seed": self.seed, "mode": self.mode,
                "rubric_sha256": self.rubric_sha256, "item_ids": self.item_ids,
                "grader_version": self.grader_version, "answers": self.answers}

    def save(self, directory: Path, stem: str = CHECKS_STEM) -> tuple[Path, Path]:
        """Write ``<stem>.npz`` and ``<stem>.json`` (default: ``public_checks``) into
        ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        npz_path = directory / f"{stem}.npz"
        json_path = directory / f"{stem}.json"
        with open(npz_path, "wb") as stream:  # np.savez would append .npz to a str path
            np.savez_compressed(stream, **self.arrays)
        json_path.write_text(json.dumps(self.index(), indent=1, sort_keys=True) + "\n",
                             encoding="utf-8")
        return npz_path, json_path

    @classmethod
    def load(cls, directory: Path | None = None, stem: str = CHECKS_STEM) -> PublicChecks:
        """Read the two files ``save`` wrote (default: the installed ``grader/data``)."""
        directory = directory or DATA_DIR
        index = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
        if index.get("format") != FORMAT_VERSION:
            raise ValueError(f"public checks of format {index.get('format')!r}, "
                             f"this grader reads format {FORMAT_VERSION}")
        with np.load(directory / f"{stem}.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        return cls(seed=int(index["seed"]), mode=index["mode"],
                   rubric_sha256=index["rubric_sha256"], item_ids=list(index["item_ids"]),
                   grader_version=index["grader_version"], answers=index["answers"],
                   arrays=arrays)


def public_checks_available(directory: Path | None = None, stem: str = CHECKS_STEM) -> bool:
    """True when both public-check files of ``stem`` are present (a student's install)."""
    directory = directory or DATA_DIR
    return all((directory / f"{stem}.{ext}").is_file() for ext in ("npz", "json"))


# --------------------------------------------------------------------------- the two oracles


class RecordingOracle:
    """Wrap a reference oracle and record every question it answers (an ``Oracle``)."""

    def __init__(self, inner: BuildingOracle, seed: int, mode: str, rubric: Any) -> None:
        from grader import __version__

        self.inner = inner
        # whose answers it records (a framework scored against another reference than the
        # batch's uses this recording only when it is of its own reference)
        self.reference_module: str | None = getattr(inner, "reference_module", None)
        self.checks = PublicChecks(seed, mode, rubric.text_sha256,
                                   [item.id for item in rubric.items], __version__)

    def _ask(self, method: str, args: tuple, item: str) -> Any:
        """Ask the reference ``method(*args)`` and record the answer under the question's key
        (taken before the call, so that nothing the call does to its arguments matters)."""
        key = call_key(method, args)
        answer = getattr(self.inner, method)(*args)
        self.checks.answers[key] = {"method": method, "item": item,
                                    "answer": _encode(answer, self.checks.arrays)}
        return answer

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The reference activation, recorded."""
        return self._ask("activation", (item, x, alpha), item)

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """The reference (D_loss, G_loss), recorded."""
        return self._ask("loss", (item, real, fake), item)

    def build(self, item: str, kwargs: dict[str, Any]) -> Any:
        """A reference model (not recorded: a student's install cannot rebuild one)."""
        return self.inner.build(item, kwargs)

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """The reference's random weights; records the variables and checks the redraw."""
        key = call_key("model_weights", (item, kwargs, rng))
        before = copy.deepcopy(rng)
        weights = self.inner.model_weights(item, kwargs, rng)
        specs = self.inner.variable_specs(item, kwargs)
        redrawn = draw_weights(specs, before)
        same = len(redrawn) == len(weights) and all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(redrawn, weights))
        if not same or generator_state(before) != generator_state(rng):
            raise RecordingError(f"redrawing the weights of {item} from its variables does not "
                                 "reproduce the reference oracle's model_weights; it must draw "
                                 "them with grader.oracles.weights.draw_weights")
        self.checks.answers[key] = {"method": "model_weights", "item": item, "specs": specs}
        return weights

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The reference model's output, recorded (keyed by the weights and input)."""
        return self._ask("model_output", (item, kwargs, weights, x), item)

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """The reference model's parameter count, recorded (with its layer list, which a
        wrong model's feedback needs)."""
        self.layer_specs(item, kwargs)
        return self._ask("parameter_count", (item, kwargs), item)

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The reference model's layers, recorded."""
        return self._ask("layer_specs", (item, kwargs), item)


class ReplayOracle:
    """The ``Oracle`` questions, answered from recorded public checks."""

    def __init__(self, checks: PublicChecks) -> None:
        self.checks = checks

    @classmethod
    def load(cls, directory: Path | None = None, stem: str = CHECKS_STEM) -> ReplayOracle:
        """The replay of the public checks ``stem`` stored in ``directory``."""
        return cls(PublicChecks.load(directory, stem))

    @property
    def seed(self) -> int:
        """The public seed the checks were recorded with (grading must use it)."""
        return self.checks.seed

    def _entry(self, method: str, args: tuple, item: str) -> dict[str, Any]:
        entry = self.checks.answers.get(call_key(method, args))
        if entry is None:
            raise PublicCheckMissing(
                f"the public checks have no expected value for this {item} question: a "
                f"student's install can only check with the public seed {self.seed}, the "
                "shipped rubric and this grader version")
        return entry

    def _answer(self, method: str, args: tuple, item: str) -> Any:
        return _decode(self._entry(method, args, item)["answer"], self.checks.arrays)

    def activation(self, item: str, x: np.ndarray, alpha: float | None) -> np.ndarray:
        """The recorded reference activation ``item`` of ``x``."""
        return self._answer("activation", (item, x, alpha), item)

    def loss(self, item: str, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
        """The recorded reference (D_loss, G_loss)."""
        return self._answer("loss", (item, real, fake), item)

    def build(self, item: str, kwargs: dict[str, Any]) -> Any:
        """Not available: building a reference model needs the reference."""
        raise PublicCheckMissing(f"the reference {item} cannot be built in a student's install")

    def model_weights(self, item: str, kwargs: dict[str, Any],
                      rng: np.random.Generator) -> list[np.ndarray]:
        """The reference's random weights, drawn again from ``rng`` like the reference did."""
        entry = self._entry("model_weights", (item, kwargs, rng), item)
        return draw_weights(entry["specs"], rng)

    def model_output(self, item: str, kwargs: dict[str, Any], weights: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
        """The recorded reference model output for these weights and input."""
        return self._answer("model_output", (item, kwargs, weights, x), item)

    def parameter_count(self, item: str, kwargs: dict[str, Any]) -> int:
        """The recorded parameter count of the reference model."""
        return self._answer("parameter_count", (item, kwargs), item)

    def layer_specs(self, item: str, kwargs: dict[str, Any]) -> list[tuple]:
        """The recorded layer list of the reference model."""
        return self._answer("layer_specs", (item, kwargs), item)


def load_public_oracle(directory: Path | None = None,
                       stem: str = CHECKS_STEM) -> ReplayOracle | None:
    """The replay oracle when the public checks ``stem`` are installed, else None."""
    if not public_checks_available(directory, stem):
        return None
    return ReplayOracle.load(directory, stem)


# --------------------------------------------------------------------------- student's report


def student_notes(checks: PublicChecks, item_ids: list[str],
                  requested_seed: int | None) -> list[str]:
    """Warnings for a student's report: what the public checks are, and what was overridden."""
    notes = [PUBLIC_NOTE.format(seed=checks.seed)]
    if requested_seed is not None and requested_seed != checks.seed:
        notes.append(f"--seed {requested_seed} was ignored: the public checks only have "
                     f"expected values for seed {checks.seed}")
    if item_ids != checks.item_ids:
        notes.append("this rubric's items differ from those the public checks were recorded "
                     "with, so some checks may find no expected value")
    return notes
