"""Turn raw observations into points: pure functions, run in the grader's own process.

Each ``score_*`` function takes what ``probe`` brought back (and, where needed, the
reference oracle's expected values) and returns an ``ItemResult`` whose message says what
was expected and what was found, without giving away the hidden inputs' values. The
outcomes were checked as they entered (``response``); ``response.to_value`` and
``as_array`` make them numeric arrays or a ``Failure`` naming what came back instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader import items
from grader.pipeline import diagnose
from grader.pipeline.prober import Observation
from grader.pipeline.response import Failure, as_array, to_value
from grader.result import CellResult, CellStatus, ItemResult, ItemStatus
from grader.rubric import Item

NOISE_P_VALUE = 1e-4  # a uniform sampler fails the KS test this rarely
MODEL_TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}
LOSS_TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}
LOSS_CASES = ("moderate scores", "widely spread scores", "extreme scores (about +-100)")


def _scaled(item: Item, fraction: float, message: str, details: dict | None = None,
            error: bool = False) -> ItemResult:
    fraction = float(min(max(fraction, 0.0), 1.0))
    status = ItemStatus.PASSED if fraction >= 1.0 \
        else (ItemStatus.ERROR if error else ItemStatus.FAILED)
    return ItemResult(item.id, round(item.points * fraction, 2), item.points, status,
                      message if fraction < 1.0 else "all checks passed", details or {})


def _tolerance(item: Item, default: dict[str, float]) -> tuple[float, float]:
    return item.tolerance.get("rtol", default["rtol"]), item.tolerance.get("atol", default["atol"])


def _unusable(item: Item, values: list[Any], name: str) -> ItemResult | None:
    """A result for outputs that cannot be judged at all (not implemented, raised)."""
    if all(value is None for value in values):
        return _scaled(item, 0, f"{name} is not implemented yet (it returned None)")
    failures = [value for value in values if isinstance(value, Failure)]
    if len(failures) == len(values):
        if failures[0].text.startswith("LookupError"):
            return _scaled(item, 0, failures[0].text.split(": ", 1)[1]
                           + " (keep the function's given name and run its cell)")
        if not failures[0].raised:
            return _scaled(item, 0, f"{name} {failures[0].text}")
        return _scaled(item, 0, f"{name} raised an error: {failures[0].text}", error=True)
    return None


# -- runs_clean ---------------------------------------------------------------------------------


def score_runs_clean(cells: list[CellResult], item: Item,
                     ungraded: dict[int, str] | None = None) -> ItemResult:
    """Full points when every cell ran without error (training cut-offs are not errors).

    ``ungraded`` maps the cells of parts outside the homework (a TF1 notebook's WGAN-GP or
    extra-credit part) to that part's name: their errors are reported, never counted.
    """
    ungraded = ungraded or {}
    failed = [cell for cell in cells if cell.failed and cell.index not in ungraded]
    outside = [cell for cell in cells if cell.failed and cell.index in ungraded]
    budget = [cell.index + 1 for cell in cells if cell.status == CellStatus.BUDGET]
    details = {"failed_cells": [cell.index + 1 for cell in failed], "budget_cut_cells": budget}
    note = ""
    if outside:
        details["ungraded_failed_cells"] = [cell.index + 1 for cell in outside]
        parts = sorted({ungraded[cell.index] for cell in outside})
        note = (f"{len(outside)} cell(s) of the {' and '.join(parts)} part, which is not "
                f"graded, raised errors (cells {', '.join(str(c.index + 1) for c in outside)});"
                " they cost nothing")
    if not failed:
        result = _scaled(item, 1, "", details)
        result.message = f"all checks passed; {note}" if note else result.message
        return result
    lines = [f"cell {cell.index + 1}: {cell.error_name or cell.status}"
             + (f" ({cell.error_message})" if cell.error_message else "") for cell in failed[:5]]
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return _scaled(item, 0, f"{len(failed)} cell(s) did not run cleanly: "
                   + "; ".join(lines) + more + (f". {note}" if note else ""), details)


# -- leaky_relu ---------------------------------------------------------------------------------


def score_leaky_relu(observation: Observation, oracle, item: Item) -> ItemResult:
    """Each case (shape, alpha) counts the same; messages tell negative inputs from positive."""
    values = [to_value(out) for out in observation.outputs]
    unusable = _unusable(item, values, items.spec(item.id).function)
    if unusable:
        return unusable
    rtol, atol = _tolerance(item, {"rtol": 1e-5, "atol": 1e-6})
    problems, right = [], 0
    for call, value in zip(observation.calls, values):
        which = "the default alpha" if call["alpha"] is None else "an alpha passed in"
        if isinstance(value, Failure):
            problems.append(f"with {which} it raised {value.text}")
            continue
        got = as_array(value)
        if isinstance(got, Failure):
            problems.append(f"with {which} it {got.text}" if not got.raised
                            else f"with {which} it raised {got.text}")
            continue
        got = got.astype(np.float64)
        expected = oracle.activation(item.id, call["x"], call["alpha"])
        if got.shape != expected.shape:
            problems.append(f"for an input of shape {call['x'].shape} it returned shape "
                            f"{got.shape}")
            continue
        close = np.isclose(got, expected, rtol=rtol, atol=atol)
        if close.all():
            right += 1
            continue
        negative = call["x"] < 0
        side = "negative inputs" if not close[negative].all() else "non-negative inputs"
        problems.append(f"with {which} the values for {side} are wrong")
    name = items.spec(item.id).function
    return _scaled(item, right / len(values), f"{name}: " + "; ".join(problems),
                   {"cases_right": right, "cases": len(values)})


# -- sample_noise -------------------------------------------------------------------------------


def score_sample_noise(observation: Observation, item: Item) -> ItemResult:
    """Four equal parts: shape and dtype, range, fresh values per call, uniform distribution."""
    values = [to_value(out) for out in observation.outputs]
    unusable = _unusable(item, values, items.spec(item.id).function)
    if unusable:
        return unusable
    arrays = [as_array(value) for value in values]
    bad = next((array for array in arrays if isinstance(array, Failure)), None)
    if bad is not None:
        return _scaled(item, 0, f"sample_noise failed on some calls: {bad.text}",
                       error=bad.raised)
    problems, parts = [], 0
    shapes_ok = all(a.shape == tuple(c["shape"]) for a, c in zip(arrays, observation.calls))
    dtype_ok = all(a.dtype == np.float32 for a in arrays)
    if shapes_ok and dtype_ok:
        parts += 1
    elif not shapes_ok:
        found = next(a.shape for a, c in zip(arrays, observation.calls)
                     if a.shape != tuple(c["shape"]))
        problems.append(f"the shape must be [batch_size, dim]; one call returned {found}")
    else:
        problems.append(f"the dtype must be float32, found {arrays[0].dtype}")
    flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
    finite = np.isfinite(flat).all()
    if finite and flat.min() >= -1 and flat.max() <= 1:
        parts += 1
    else:
        problems.append("values must lie in [-1, 1]" + ("" if finite else " (found NaN or Inf)"))
    if arrays[0].shape == arrays[1].shape and not np.allclose(arrays[0], arrays[1]):
        parts += 1
    else:
        problems.append("two calls with the same arguments returned the same values: "
                        "draw new noise on every call")
    big = arrays[2].astype(np.float64).ravel()
    p_value = ks_uniform_p_value(big[np.isfinite(big)], -1.0, 1.0) \
        if np.isfinite(big).any() else 0.0
    if p_value > NOISE_P_VALUE:
        parts += 1
    else:
        low, high = (float(big.min()), float(big.max())) if finite else (np.nan, np.nan)
        problems.append(f"the values are not uniform on [-1, 1] (a distribution test fails; "
                        f"the values found span [{low:.2f}, {high:.2f}])")
    return _scaled(item, parts / 4, "sample_noise: " + "; ".join(problems),
                   {"ks_p_value": p_value, "parts_right": parts})


def ks_uniform_p_value(values: np.ndarray, low: float, high: float) -> float:
    """Kolmogorov-Smirnov p-value of ``values`` against the uniform law on [low, high].

    Uses the asymptotic Kolmogorov distribution (with Stephens' small-sample correction),
    accurate for the thousands of values the noise check draws; numpy only, so a check
    does not pay for importing scipy.stats.
    """
    n = len(values)
    if n == 0:
        return 0.0
    cdf = np.clip((np.sort(values) - low) / (high - low), 0.0, 1.0)
    ranks = np.arange(1, n + 1)
    distance = max(float(np.max(ranks / n - cdf)), float(np.max(cdf - (ranks - 1) / n)))
    root_n = np.sqrt(n)
    lam = (root_n + 0.12 + 0.11 / root_n) * distance
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101)
    return float(np.clip(2 * np.sum((-1.0) ** (k - 1) * np.exp(-2 * k**2 * lam**2)), 0.0, 1.0))


# -- gan_loss and lsgan_loss --------------------------------------------------------------------


def _pair(value: Any) -> tuple[float, float] | str:
    """(D, G) as floats from a returned pair, or a description of what is wrong."""
    if isinstance(value, Failure):
        return f"raised {value.text}"
    if value is None:
        return "returned None"
    if not isinstance(value, list) or len(value) != 2:
        return "must return a pair (D_loss, G_loss)"
    losses = []
    for part in value:
        array = as_array(part)
        if isinstance(array, Failure) or part is None:
            return "must return two scalar losses" + (f" (one {array.text})" if isinstance(
                array, Failure) and not array.raised and part is not None else "")
        if array.size != 1:
            return f"each loss must be a scalar, found shape {array.shape} (take the mean)"
        losses.append(float(array.astype(np.float64).ravel()[0]))
    return losses[0], losses[1]


def score_loss(observation: Observation, oracle, item: Item) -> ItemResult:
    """D and G losses are worth half each; each case (moderate, wide, extreme) a third of that."""
    spec = items.spec(item.id)
    name = spec.function
    values = [to_value(out) for out in observation.outputs]
    unusable = _unusable(item, values, name)
    if unusable:
        return unusable
    rtol, atol = _tolerance(item, LOSS_TOLERANCE)
    right = {"D_loss": 0, "G_loss": 0}
    problems, wrong, answered = [], {"D_loss": [], "G_loss": []}, {"D_loss": [], "G_loss": []}
    for case, call, value in zip(LOSS_CASES, observation.calls, values):
        pair = _pair(value)
        if isinstance(pair, str):
            problems.append(f"with {case}: {pair}")
            continue
        expected = oracle.loss(name, call["real"], call["fake"])
        for label, got, want in zip(("D_loss", "G_loss"), pair, expected):
            answered[label].append((call, got))
            if np.isclose(got, want, rtol=rtol, atol=atol):
                right[label] += 1
            else:
                wrong[label].append(case if np.isfinite(got) else f"{case} ({got})")
    problems += [f"{label} is wrong with {', '.join(cases)}" for label, cases in wrong.items()
                 if cases]
    if any(wrong.values()):  # which common mistake it is, judged on every case answered
        problems.append(diagnose.explain_losses(
            spec.form, {label: tuple(zip(*answered[label])) for label in wrong if wrong[label]}))
    fraction = (right["D_loss"] + right["G_loss"]) / (2 * len(values))
    return _scaled(item, fraction, f"{name}: " + "; ".join(dict.fromkeys(problems)) + ".",
                   {"right": right, "cases": len(values)})


# -- get_solvers --------------------------------------------------------------------------------


def score_get_solvers(observation: Observation, item: Item) -> ItemResult:
    """Thirds: two distinct Adam optimizers; the learning rate passed in; the beta1 passed in."""
    problems, parts = [], 0.0
    described = []
    for outcome in observation.outputs:
        if outcome.get("kind") == "none":
            return _scaled(item, 0, "get_solvers is not implemented yet (it returned None)")
        if outcome.get("kind") == "error":
            return _scaled(item, 0, f"get_solvers raised {outcome['error']}", error=True)
        if outcome.get("kind") != "optimizers" or len(outcome["items"]) != 2:
            return _scaled(item, 0, "get_solvers must return two optimizers (D_solver, G_solver)")
        described.append(outcome["items"])
    first = described[0]
    is_adam = [bool({"Adam", "AdamOptimizer"} & set(o["mro"])) for o in first]
    if first[0]["id"] != first[1]["id"] and all(is_adam):
        parts += 1
    else:
        problems.append("it must return two separate Adam optimizers, found "
                        + " and ".join(o["type"] for o in first))
    settings = (("learning_rate", "learning_rate", 1e-3), ("beta_1", "beta1", 0.5))
    for key, setting, default in settings:
        wanted = observation.calls[0][setting]
        got = [o.get(key) for o in first]
        got_default = [o.get(key) for o in described[1]]
        ok = all(g is not None and np.isclose(g, wanted, rtol=1e-5) for g in got)
        ok_default = all(g is not None and np.isclose(g, default, rtol=1e-5) for g in got_default)
        if ok and ok_default:
            parts += 1
        elif not ok:
            problems.append(f"the {setting} passed in is not used")
        else:
            problems.append(f"the default {setting} must be {default}")
    return _scaled(item, parts / 3, "get_solvers: " + "; ".join(problems), {"parts_right": parts})


# -- the four networks --------------------------------------------------------------------------


def score_model(observation: Observation, oracle, item: Item) -> ItemResult:
    """Shape (30%), parameter count (30%) and function with the reference weights (40%)."""
    name = items.spec(item.id).function
    built = observation.outputs[0]
    if built.get("kind") == "none":
        return _scaled(item, 0, f"{name} is not implemented yet (it returned None)")
    if built.get("kind") == "error":
        return _scaled(item, 0, f"building or calling {name}() raised {built['error']}", error=True)
    if built.get("kind") != "model":
        return _scaled(item, 0, f"{name}() must return a Keras model, found a "
                                f"{built.get('type', 'value')}")
    kwargs, x = observation.calls[0]["kwargs"], observation.calls[0]["x"]
    width = items.spec(item.id).output_width
    expected_shape = (len(x), width)
    problems, fraction, values_match = [], 0.0, False
    output, found_shape = as_expected_shape(to_value(built["output"]), expected_shape)
    if isinstance(output, Failure) or output is None:
        problems.append("calling the model on a batch did not return a tensor"
                        + (f" (it {output.text})" if isinstance(output, Failure)
                           and not output.raised else ""))
    elif np.asarray(output).shape != expected_shape:
        problems.append(f"for a batch of shape {x.shape} the output has shape "
                        f"{np.asarray(output).shape}, expected {expected_shape}")
    elif width == 784 and not (np.abs(np.asarray(output)) <= 1.0 + 1e-6).all():
        problems.append("generated images must lie in [-1, 1] (a tanh on the output)")
    else:
        fraction += 0.3
    count = sum(int(np.prod(v["shape"])) for v in built["variables"])
    trainable = sum(int(np.prod(v["shape"])) for v in built["variables"] if v["trainable"])
    expected_count = oracle.parameter_count(item.id, kwargs)
    if count == expected_count:
        fraction += 0.3
    else:
        at = f" at noise_dim {kwargs['noise_dim']}" if kwargs else ""
        problems.append(f"the model has {count:,} parameters{at}; the architecture described "
                        f"has {expected_count:,}")
    mapping = observation.info.get("mapping")
    if count != expected_count or mapping is None:
        where = _first_layer_difference(oracle, item.id, kwargs, built["variables"])
        if where:
            problems.append(where)
    if mapping is None:
        problems.append("its variables do not line up with the layers described, so its "
                        "behaviour could not be compared with the reference")
    elif len(observation.outputs) > 1:
        ran = to_value(observation.outputs[1])
        ran, _ = as_expected_shape(ran, expected_shape)
        call = observation.calls[1]
        expected = oracle.model_output(item.id, kwargs, call["weights"], call["x"])
        rtol, atol = _tolerance(item, MODEL_TOLERANCE)
        if isinstance(ran, Failure) or ran is None:
            problems.append("running the model with the reference weights failed"
                            + (f": {ran.text}" if isinstance(ran, Failure) else ""))
        elif ran.shape == expected.shape and np.allclose(ran, expected, rtol=rtol, atol=atol):
            fraction += 0.4
            values_match = True
        else:
            problems.append("with the reference weights copied into your model its outputs "
                            f"differ from the reference network's: {items.spec(item.id).hint}")
    result = _scaled(item, fraction, f"{name}: " + "; ".join(problems),
                     {"parameters": count, "expected_parameters": expected_count,
                      "trainable_parameters": trainable})
    if found_shape is not None:
        return deduct_for_shape(result, item, found_shape, expected_shape, values_match)
    return result


def as_expected_shape(value: Any, expected_shape: tuple[int, ...]) -> tuple[Any, tuple | None]:
    """A network's output in ``expected_shape`` when it holds the same values per sample in
    another shape (``[N, 28, 28, 1]`` or ``[N, 784, 1]`` for ``[N, 784]``), with the shape it
    had; anything else unchanged, with None."""
    if isinstance(value, Failure) or value is None:
        return value, None
    array = as_array(value)
    if isinstance(array, Failure):
        return array, None
    if array.shape == tuple(expected_shape) or array.ndim == 0 \
            or array.shape[0] != expected_shape[0] or array.size != int(np.prod(expected_shape)):
        return array, None
    return array.reshape(expected_shape), array.shape


def deduct_for_shape(result: ItemResult, item: Item, found: tuple[int, ...],
                     expected: tuple[int, ...], values_match: bool) -> ItemResult:
    """Take the rubric's ``shape_deduction`` off a network whose output had the right values
    per sample in another shape (compared after flattening), and say both things."""
    def shown(shape: tuple[int, ...]) -> str:
        return "[" + ", ".join(["N", *map(str, shape[1:])]) + "]"

    name = items.spec(item.id).function
    shape = (f"{name}: its output has shape {shown(found)} where {shown(expected)} is "
             f"specified (reshape it before returning)")
    values = ("; its values match the reference network's" if values_match else
              "; its values were compared with the reference after flattening")
    rest = "" if result.status == ItemStatus.PASSED else "; " + result.message.split(": ", 1)[-1]
    points = round(max(0.0, result.points - item.shape_deduction), 2)
    status = ItemStatus.PASSED if points >= item.points else ItemStatus.FAILED
    details = {**result.details, "output_shape": list(found),
               "shape_deduction": item.shape_deduction,
               "values_match": bool(values_match and result.status == ItemStatus.PASSED)}
    return ItemResult(item.id, points, item.points, status,
                      "all checks passed" if status == ItemStatus.PASSED else shape + values + rest,
                      details)


def _first_layer_difference(oracle, item_id: str, kwargs: dict,
                            variables: list[dict]) -> str | None:
    """``diagnose.first_layer_difference`` against the oracle's layer list (None when the
    oracle cannot describe the layers, e.g. public checks recorded without them)."""
    try:
        spec = oracle.layer_specs(item_id, kwargs)
    except Exception:  # an oracle without layer descriptions: the count says enough
        return None
    return diagnose.first_layer_difference(spec, [v["shape"] for v in variables])


# -- derivation answers -------------------------------------------------------------------------


def score_theory(observation: Observation, item: Item) -> ItemResult:
    """Delegate to the scipy oracle's judgement of the derivation answers."""
    from grader.oracles import theory as theory_oracle

    cases = [call["case"] for call in observation.calls]
    outputs = []
    for outcome in observation.outputs:
        value = to_value(outcome)
        if isinstance(value, Failure):
            value = value.text if value.raised else theory_oracle.Returned(value.text)
        outputs.append(value)
    judgement = theory_oracle.judge(item.id, cases, outputs)
    result = _scaled(item, judgement.score_fraction, judgement.message, judgement.details,
                     error=judgement.status == ItemStatus.ERROR)
    return result


def manual(item: Item) -> ItemResult:
    """A hand-graded item: pending until the instructor merges a score."""
    return ItemResult(item.id, 0.0, item.points, ItemStatus.MANUAL, "pending: graded by hand")


def skipped(item: Item, reason: str) -> ItemResult:
    """An item this run does not grade; it counts neither for nor against the student."""
    return ItemResult(item.id, 0.0, 0.0, ItemStatus.SKIPPED, reason)


GRADER_FAULT = "grader_fault"  # in details: the grader, not the notebook, failed this item


def crashed(item: Item, reason: str) -> ItemResult:
    """An item whose probing failed in a way the student's code did not cause."""
    return ItemResult(item.id, 0.0, item.points, ItemStatus.ERROR, reason,
                      {GRADER_FAULT: True})


def grader_faulted(graded: list[ItemResult]) -> bool:
    """True when the grader itself failed on some item (the result is then worth retrying)."""
    return any(item.details.get(GRADER_FAULT) for item in graded)
