"""Grade the students' answer functions for the theory problems against scipy.

The notebook has three answer cells: ``optimal_d_gan(p_data, p_model)``,
``optimal_d_lsgan(p_data, p_model, a=-1.0, b=1.0)`` and ``vae_kl(mu, log_var)``.
Grading one of them takes three separate steps, so that the middle one can happen in a
Jupyter kernel while the other two stay pure functions in the grader:

1. ``draw_inputs(item_id, rng)`` draws the test inputs (``Case`` objects) from a seeded
   generator, edge cases included;
2. the caller runs the student's function on each ``case.kwargs`` and collects what it
   returned (or a string describing the exception it raised);
3. ``judge(item_id, cases, outputs)`` scores those outputs.

The reference values are computed inside ``judge`` from the inputs alone, by numerical
optimisation (``minimize_scalar``) of the discriminator objective and by numerical
integration (``quad``) of the KL divergence; no closed form or stored answer is involved.
``grade_function`` runs the three steps in-process (for tests and local checks).

This is a different kind of oracle from ``grader.oracles.interface.Oracle``, the one the
implementation items ask: it needs neither the reference nor a recording, so every install
(an instructor's or a student's) judges these items in the same way, with the module-level
functions here keyed by item id. The pipeline calls ``draw_inputs`` (``probe``) and
``judge`` (``score``) directly; nothing chooses between installs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader import items
from grader.oracles.numerics import (
    argmax_gan_pointwise,
    argmin_lsgan_pointwise,
    kl_to_standard_normal_quad,
)
from grader.result import ItemStatus

ITEM_IDS = items.ids_with(items.THEORY)
# The quantities the theory items compute (``ItemSpec.form`` in the item catalogue).
GAN_OPTIMUM, LSGAN_OPTIMUM, GAUSSIAN_KL = "gan_optimum", "lsgan_optimum", "gaussian_kl"

# An element is right when |returned - reference| <= ATOL + RTOL * |reference|.  The numerical
# optimum is accurate to ~2e-8 and float32 answers to ~1e-7, while every wrong formula we know
# of is off by far more than 1e-6.
D_ATOL = 1e-6
D_RTOL = 1e-6
KL_ATOL = 1e-6
KL_RTOL = 1e-5
# share of a case's credit for an output of the right shape with wrong values
SHAPE_CREDIT = 0.25
DEFAULT_A, DEFAULT_B = -1.0, 1.0


@dataclass
class Case:
    """Keyword arguments for one call of the student's function, and what they test."""

    kwargs: dict[str, Any]
    description: str


@dataclass
class Judgement:
    """The grade of one item: a score in [0, 1], a status and a message for the student."""

    score_fraction: float
    status: str  # ItemStatus.PASSED, FAILED or ERROR
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Returned:
    """An output that is no array of numbers, as the grader described it (``"returned text
    (a str) where an array was expected"``)."""

    text: str


@dataclass
class _Verdict:
    """Outcome of one case (internal)."""

    status: str  # passed | wrong_values | wrong_shape | not_numeric | not_implemented | error
    score: float
    message: str
    details: dict[str, Any]


# --------------------------------------------------------------------------- drawing inputs


def draw_inputs(item_id: str, rng: np.random.Generator) -> list[Case]:
    """The cases for ``item_id``, drawn from ``rng`` (same seed, same cases)."""
    if _form(item_id) == GAN_OPTIMUM:
        return [Case({"p_data": pd, "p_model": pm}, desc) for desc, pd, pm in _density_sets(rng)]
    if _form(item_id) == LSGAN_OPTIMUM:
        return _lsgan_cases(rng)
    return _kl_cases(rng)


def _density_sets(rng: np.random.Generator, n: int = 6) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Named pairs of density arrays, from ordinary values to extreme ratios and underflow."""

    def moderate(size: int | tuple[int, ...] = n) -> np.ndarray:
        return rng.uniform(0.05, 5.0, size)

    def powers(lo: float, hi: float, size: int = n) -> np.ndarray:
        return 10.0 ** rng.uniform(lo, hi, size)

    equal = moderate()
    base = moderate()
    vanishing = np.append(powers(-300, -200, n - 1), 0.0)
    return [
        ("moderate densities", moderate(), moderate()),
        ("equal densities", equal, equal.copy()),
        ("p_data 1e6 to 1e12 times p_model", base, base * powers(-12, -6)),
        ("p_model 1e6 to 1e12 times p_data", base * powers(-12, -6), base.copy()),
        ("p_model -> 0 (down to 1e-300, and exactly 0)", moderate(), vanishing),
        ("p_data -> 0 (down to 1e-300, and exactly 0)", vanishing.copy(), moderate()),
        ("both densities tiny (1e-290 to 1e-200)", powers(-290, -200), powers(-290, -200)),
        ("large densities (1e4 to 1e10)", powers(4, 10), powers(4, 10)),
        ("2-D arrays of densities", moderate((3, 4)), moderate((3, 4))),
    ]


def _lsgan_cases(rng: np.random.Generator) -> list[Case]:
    """Density sets paired with codings: default, homework, 0-1, reversed and random."""
    sets = _density_sets(rng)
    a_random = round(float(rng.uniform(-3.0, 0.0)), 2)
    b_random = round(a_random + float(rng.uniform(0.5, 4.0)), 2)
    # one coding per density set; where one density vanishes D* tends to a or b, so those
    # sets get codings with a != 0 and b != 1, which tell the GAN formula apart
    codings: list[tuple[float, float] | None] = [
        None,
        (-1.0, 1.0),
        (0.0, 1.0),
        (0.0, 1.0),
        (0.5, 2.5),
        (-1.0, 1.0),
        (1.0, 0.0),
        (a_random, b_random),
        (-2.0, 3.0),
    ]
    cases = []
    for (desc, pd, pm), coding in zip(sets, codings):
        kwargs: dict[str, Any] = {"p_data": pd, "p_model": pm}
        if coding is None:
            desc += ", default a and b"
        else:
            kwargs.update(a=coding[0], b=coding[1])
            desc += f", a = {coding[0]:g}, b = {coding[1]:g}"
        cases.append(Case(kwargs, desc))
    return cases


def _kl_cases(rng: np.random.Generator) -> list[Case]:
    """(mu, log_var) batches: several k, N = 1, N = k, extreme variances, zero KL."""

    def batch(
        n: int, k: int, mu_scale: float = 1.0, lv: tuple[float, float] = (-2.0, 2.0)
    ) -> dict[str, np.ndarray]:
        return {"mu": rng.normal(0.0, mu_scale, (n, k)), "log_var": rng.uniform(*lv, (n, k))}

    return [
        Case(batch(5, 1), "k = 1"),
        Case(batch(6, 8), "k = 8"),
        Case(batch(3, 64), "k = 64"),
        Case(batch(1, 4), "a single example (N = 1)"),
        Case(batch(5, 5), "square input (N = k = 5)"),
        Case(batch(4, 3, lv=(-20.0, -8.0)), "very negative log_var (-20 to -8)"),
        Case(batch(4, 3, lv=(5.0, 12.0)), "very positive log_var (5 to 12)"),
        Case(batch(4, 6, mu_scale=15.0), "large |mu|"),
        Case({"mu": np.zeros((2, 3)), "log_var": np.zeros((2, 3))}, "standard normal (KL = 0)"),
    ]


# --------------------------------------------------------------------------- references


def reference_output(item_id: str, kwargs: dict[str, Any]) -> np.ndarray:
    """The numerically computed answer for one case (optimiser or integral, never a formula)."""
    if _form(item_id) == GAUSSIAN_KL:
        mu, log_var = np.asarray(kwargs["mu"], float), np.asarray(kwargs["log_var"], float)
        return np.array([kl_to_standard_normal_quad(m, lv) for m, lv in zip(mu, log_var)])
    p_data, p_model = np.broadcast_arrays(
        np.asarray(kwargs["p_data"], float), np.asarray(kwargs["p_model"], float)
    )
    if _form(item_id) == GAN_OPTIMUM:
        optimum = np.vectorize(argmax_gan_pointwise, otypes=[float])
        return optimum(p_data, p_model)
    a, b = _coding(kwargs)
    optimum = np.vectorize(lambda p, q: argmin_lsgan_pointwise(p, q, a, b), otypes=[float])
    return optimum(p_data, p_model)


def _coding(kwargs: dict[str, Any]) -> tuple[float, float]:
    """(a, b) of an LSGAN case; the defaults of the function signature when absent."""
    return float(kwargs.get("a", DEFAULT_A)), float(kwargs.get("b", DEFAULT_B))


def _tolerances(item_id: str) -> tuple[float, float]:
    """(atol, rtol) for ``item_id``."""
    return (KL_ATOL, KL_RTOL) if _form(item_id) == GAUSSIAN_KL else (D_ATOL, D_RTOL)


# --------------------------------------------------------------------------- judging


def judge(item_id: str, cases: list[Case], outputs: list[object]) -> Judgement:
    """Score the student's ``outputs`` (one per case, in order) for ``item_id``.

    An output may be anything the function returned (array, list, float, None, NaNs, wrong
    shape), a string describing an exception it raised, or ``Returned``: a description of
    a value that is no array of numbers.
    """
    _check_item(item_id)
    if len(outputs) != len(cases):
        raise ValueError(f"{len(outputs)} outputs for {len(cases)} cases")
    verdicts = [_judge_case(item_id, case, out) for case, out in zip(cases, outputs)]
    return _summarise(item_id, verdicts)


def _judge_case(item_id: str, case: Case, output: object) -> _Verdict:
    """Compare one output with the numerical reference."""
    info: dict[str, Any] = {"description": case.description}
    if output is None:
        return _Verdict("not_implemented", 0.0, "not implemented yet (returned None)", info)
    if isinstance(output, (str, BaseException)):
        message = f"raised {output} for {case.description}"
        return _Verdict("error", 0.0, message, info)
    if isinstance(output, Returned):
        return _Verdict("not_numeric", 0.0, f"for {case.description} you {output.text}", info)
    try:
        got = np.asarray(output, dtype=float)
    except (TypeError, ValueError):
        message = f"returned a {type(output).__name__}, not an array of numbers"
        return _Verdict("not_numeric", 0.0, f"for {case.description} you {message}", info)
    expected = reference_output(item_id, case.kwargs)
    info.update(expected_shape=list(expected.shape), returned_shape=list(got.shape))
    if got.shape != expected.shape:
        message = f"for {case.description} you return shape {got.shape}, expected {expected.shape}"
        return _Verdict("wrong_shape", 0.0, message, info)
    wrong = ~_close(got, expected, *_tolerances(item_id))
    info["n_wrong_elements"] = int(wrong.sum())
    if not wrong.any():
        return _Verdict("passed", 1.0, "", info)
    errors = np.where(np.isfinite(got), np.abs(got - expected), np.inf)
    worst = np.unravel_index(int(np.argmax(np.where(wrong, errors, -1.0))), got.shape)
    message = _describe_mismatch(item_id, case, worst, float(got[worst]), float(expected[worst]))
    info.update(returned=_json_number(got[worst]), expected=_json_number(expected[worst]))
    return _Verdict("wrong_values", SHAPE_CREDIT, message, info)


def _close(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Elementwise tolerance test; NaN and infinities are never close."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(got) & (np.abs(got - expected) <= atol + rtol * np.abs(expected))


def _describe_mismatch(
    item_id: str, case: Case, index: tuple[int, ...], got: float, expected: float
) -> str:
    """A sentence naming the inputs where the answer is wrong, the answer and the reference."""
    kw = case.kwargs
    if _form(item_id) == GAUSSIAN_KL:
        row = index[0]
        return (
            f"for mu = {_vector(kw['mu'][row])}, log_var = {_vector(kw['log_var'][row])} "
            f"(row {row} of case '{case.description}') you return {got:.6g}, "
            f"numerical integration of the KL gives {expected:.6g}"
        )
    p_data, p_model = (float(v[index]) for v in np.broadcast_arrays(kw["p_data"], kw["p_model"]))
    where = f"at p_data = {p_data:.6g}, p_model = {p_model:.6g}"
    if _form(item_id) == GAN_OPTIMUM:
        optimum = "the maximiser of p_data log D + p_model log(1 - D) is"
    else:
        a, b = _coding(kw)
        where += f", a = {a:g}, b = {b:g}"
        optimum = "the minimiser of the LSGAN loss is"
    return f"{where} you return {got:.6g}, {optimum} {expected:.6g} ({case.description})"


def _summarise(item_id: str, verdicts: list[_Verdict]) -> Judgement:
    """Combine case verdicts: mean score, overall status and the first failure's message."""
    score = float(np.mean([v.score for v in verdicts]))
    failing = [v for v in verdicts if v.status != "passed"]
    atol, rtol = _tolerances(item_id)
    details = {
        "item_id": item_id,
        "n_cases": len(verdicts),
        "n_passed": len(verdicts) - len(failing),
        "tolerance": {"atol": atol, "rtol": rtol},
        "cases": [
            {"status": v.status, "score": v.score, "message": v.message, **v.details}
            for v in verdicts
        ],
    }
    if not failing:
        reference = "KL integral" if _form(item_id) == GAUSSIAN_KL else "optimum"
        message = f"all {len(verdicts)} cases match scipy's numerical {reference}"
        return Judgement(1.0, ItemStatus.PASSED, message, details)
    status = ItemStatus.ERROR if any(v.status == "error" for v in failing) \
        else ItemStatus.FAILED
    if all(v.status == "not_implemented" for v in verdicts):
        return Judgement(0.0, ItemStatus.FAILED, "not implemented yet (returned None)", details)
    message = f"{failing[0].message} [{len(failing)} of {len(verdicts)} cases fail]"
    return Judgement(score, status, message, details)


# --------------------------------------------------------------------------- in-process use


def call_student(fn: Callable[..., object], case: Case) -> object:
    """Call ``fn`` on a copy of the case's inputs; an exception becomes a description string."""
    kwargs = copy.deepcopy(case.kwargs)
    try:
        with np.errstate(all="ignore"):
            return fn(**kwargs)
    except Exception as error:  # any failure of the student's code is graded, not raised
        return f"{type(error).__name__}: {error}"


def grade_function(item_id: str, fn: Callable[..., object], rng: np.random.Generator) -> Judgement:
    """Draw inputs, call ``fn`` in this process and judge the outputs."""
    cases = draw_inputs(item_id, rng)
    return judge(item_id, cases, [call_student(fn, case) for case in cases])


# --------------------------------------------------------------------------- helpers


def _check_item(item_id: str) -> None:
    """Reject unknown item ids (a grader bug, not a student error)."""
    if item_id not in ITEM_IDS:
        raise ValueError(f"unknown theory item {item_id!r}; expected one of {ITEM_IDS}")


def _form(item_id: str) -> str:
    """What the theory item ``item_id`` computes (unknown ids rejected)."""
    _check_item(item_id)
    return items.spec(item_id).form or ""


def _vector(values: np.ndarray) -> str:
    """Short text for a row of numbers (long rows are elided in the middle)."""
    values = np.asarray(values, float).ravel()
    shown = [f"{v:.4g}" for v in values]
    if len(shown) > 6:
        shown = [*shown[:3], "...", *shown[-2:]]
    return "[" + ", ".join(shown) + "]"


def _json_number(value: float) -> float | str:
    """A float for JSON, or its text ('nan', 'inf') when not finite."""
    value = float(value)
    return value if math.isfinite(value) else str(value)
