"""Tests of the grader for the theory answer functions (grader/oracles/theory.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import special

from grader.oracles import theory as oracle
from reference import theory

SEED = 20240


def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def grade(item_id, fn):
    return oracle.grade_function(item_id, fn, rng())


# --------------------------------------------------------------------------- answers


def gan(p_data, p_model):
    return p_data / (p_data + p_model)


def gan_logit(p_data, p_model):
    with np.errstate(divide="ignore"):
        return special.expit(np.log(p_data) - np.log(p_model))


def gan_float32(p_data, p_model):
    return gan(p_data, p_model).astype(np.float32)


def gan_as_list(p_data, p_model):
    return gan(p_data, p_model).tolist()


def lsgan(p_data, p_model, a=-1.0, b=1.0):
    return (b * p_data + a * p_model) / (p_data + p_model)


def lsgan_interpolated(p_data, p_model, a=-1.0, b=1.0):
    return a + (b - a) * p_data / (p_data + p_model)


def lsgan_float32(p_data, p_model, a=-1.0, b=1.0):
    return np.float32(lsgan(p_data, p_model, a, b))


def kl(mu, log_var):
    return -0.5 * np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=1)


def kl_loop(mu, log_var):
    return [
        sum(0.5 * (np.exp(v) + m * m - 1.0 - v) for m, v in zip(row_m, row_v))
        for row_m, row_v in zip(mu, log_var)
    ]


def kl_float32(mu, log_var):
    return kl(mu.astype(np.float32), log_var.astype(np.float32))


CORRECT = [
    ("optimal_d_gan", gan),
    ("optimal_d_gan", gan_logit),
    ("optimal_d_gan", gan_float32),
    ("optimal_d_gan", gan_as_list),
    ("optimal_d_lsgan", lsgan),
    ("optimal_d_lsgan", lsgan_interpolated),
    ("optimal_d_lsgan", lsgan_float32),
    ("vae_kl", kl),
    ("vae_kl", kl_loop),
    ("vae_kl", kl_float32),
]

WRONG = {
    "gan swapped": ("optimal_d_gan", lambda p_data, p_model: gan(p_model, p_data)),
    "gan off by 1e-4": ("optimal_d_gan", lambda p_data, p_model: gan(p_data, p_model) + 1e-4),
    "lsgan swapped a and b": (
        "optimal_d_lsgan",
        lambda p_data, p_model, a=-1.0, b=1.0: lsgan(p_data, p_model, b, a),
    ),
    "gan formula for lsgan": (
        "optimal_d_lsgan",
        lambda p_data, p_model, a=-1.0, b=1.0: gan(p_data, p_model),
    ),
    "lsgan ignoring a and b": (
        "optimal_d_lsgan",
        lambda p_data, p_model, a=-1.0, b=1.0: lsgan(p_data, p_model),
    ),
    "kl without 1/2": ("vae_kl", lambda mu, log_var: 2.0 * kl(mu, log_var)),
    "kl wrong sign of log_var": ("vae_kl", lambda mu, log_var: kl(mu, -log_var)),
    "kl summed over N": (
        "vae_kl",
        lambda mu, log_var: -0.5 * np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=0),
    ),
}


# --------------------------------------------------------------------------- right answers


@pytest.mark.parametrize("item_id, fn", CORRECT, ids=lambda v: getattr(v, "__name__", v))
def test_correct_answers_score_full_marks(item_id, fn):
    judgement = grade(item_id, fn)
    assert (judgement.score_fraction, judgement.status) == (1.0, "passed"), judgement.message
    assert judgement.details["n_passed"] == judgement.details["n_cases"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_correct_answers_pass_for_other_seeds(seed):
    for item_id, fn in [("optimal_d_gan", gan), ("optimal_d_lsgan", lsgan)]:
        assert oracle.grade_function(item_id, fn, np.random.default_rng(seed)).status == "passed"


# --------------------------------------------------------------------------- wrong answers


@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_answers_lose_credit_and_name_the_failing_case(name):
    item_id, fn = WRONG[name]
    judgement = grade(item_id, fn)
    assert judgement.score_fraction < 1.0 and judgement.status == "failed"
    if item_id == "vae_kl":
        assert "mu = [" in judgement.message or "shape" in judgement.message
    else:
        assert "p_data = " in judgement.message and "you return" in judgement.message


def test_lsgan_message_gives_inputs_answer_and_minimiser():
    item_id, fn = WRONG["lsgan swapped a and b"]
    message = grade(item_id, fn).message
    assert "a = " in message and "b = " in message and "minimiser of the LSGAN loss is" in message


def test_gan_formula_for_lsgan_earns_only_the_0_1_coding_cases():
    item_id, fn = WRONG["gan formula for lsgan"]
    cases = grade(item_id, fn).details["cases"]
    passed = [c["description"] for c in cases if c["status"] == "passed"]
    assert passed and all("a = 0, b = 1" in d for d in passed)


def test_wrong_values_with_right_shape_get_partial_credit():
    item_id, fn = WRONG["kl without 1/2"]
    judgement = grade(item_id, fn)
    cases = judgement.details["cases"]
    # only the KL = 0 case is right; every other case keeps the shape credit
    assert [c["status"] for c in cases].count("passed") == 1
    expected = (1.0 + (len(cases) - 1) * oracle.SHAPE_CREDIT) / len(cases)
    assert judgement.score_fraction == pytest.approx(expected)


def test_sum_over_wrong_axis_reports_the_shape():
    item_id, fn = WRONG["kl summed over N"]
    judgement = grade(item_id, fn)
    assert "shape" in judgement.message and "expected (" in judgement.message
    assert judgement.score_fraction < 0.1


def test_none_means_not_implemented():
    judgement = grade("vae_kl", lambda mu, log_var: None)
    assert judgement.score_fraction == 0.0 and judgement.status == "failed"
    assert judgement.message == "not implemented yet (returned None)"


def test_raising_is_an_error_with_the_exception_named():
    def broken(p_data, p_model, a=-1.0, b=1.0):
        raise KeyError("p")

    judgement = grade("optimal_d_lsgan", broken)
    assert judgement.score_fraction == 0.0 and judgement.status == "error"
    assert "KeyError" in judgement.message


def test_signature_without_defaults_fails_the_default_case_only():
    judgement = grade("optimal_d_lsgan", lambda p_data, p_model, a, b: lsgan(p_data, p_model, a, b))
    statuses = [c["status"] for c in judgement.details["cases"]]
    assert statuses.count("error") == 1 and judgement.status == "error"


# --------------------------------------------------------------------------- judging raw outputs


def test_judge_handles_raw_outputs_from_a_kernel():
    cases = oracle.draw_inputs("optimal_d_gan", rng())
    good = [gan(**c.kwargs) for c in cases]
    outputs: list[object] = list(good)
    outputs[0] = np.full_like(good[0], np.nan)
    outputs[1] = "ZeroDivisionError: float division by zero"
    outputs[2] = good[2][:-1]
    outputs[3] = {"not": "an array"}
    judgement = oracle.judge("optimal_d_gan", cases, outputs)
    statuses = [c["status"] for c in judgement.details["cases"]][:4]
    assert statuses == ["wrong_values", "error", "wrong_shape", "not_numeric"]
    assert judgement.status == "error"
    assert "you return nan" in judgement.message
    json.dumps(judgement.details, allow_nan=False)  # the details must be valid JSON


def test_judge_needs_one_output_per_case_and_a_known_item():
    cases = oracle.draw_inputs("vae_kl", rng())
    with pytest.raises(ValueError, match="outputs"):
        oracle.judge("vae_kl", cases, [None])
    with pytest.raises(ValueError, match="unknown theory item"):
        oracle.draw_inputs("optimal_d_wgan", rng())


def test_reference_uses_no_closed_form(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the oracle must not use a closed form")

    for name in ("gan_optimal_d", "lsgan_optimal_d", "gaussian_kl"):
        monkeypatch.setattr(theory, name, forbidden)
    for item_id, fn in [("optimal_d_gan", gan), ("optimal_d_lsgan", lsgan), ("vae_kl", kl)]:
        assert grade(item_id, fn).status == "passed"


def test_student_cannot_change_the_inputs_the_judge_sees():
    def mutating(p_data, p_model):
        result = gan(p_data, p_model)
        p_data[...] = 1.0
        return result

    assert grade("optimal_d_gan", mutating).status == "passed"


# --------------------------------------------------------------------------- inputs


def test_same_seed_same_cases_and_judgement():
    for item_id in oracle.ITEM_IDS:
        first, second = oracle.draw_inputs(item_id, rng()), oracle.draw_inputs(item_id, rng())
        for a, b in zip(first, second, strict=True):
            assert a.description == b.description and a.kwargs.keys() == b.kwargs.keys()
            for key in a.kwargs:
                np.testing.assert_array_equal(a.kwargs[key], b.kwargs[key])
    item_id, fn = WRONG["lsgan swapped a and b"]
    assert grade(item_id, fn) == grade(item_id, fn)


def test_different_seeds_draw_different_inputs():
    first = oracle.draw_inputs("vae_kl", np.random.default_rng(1))
    second = oracle.draw_inputs("vae_kl", np.random.default_rng(2))
    assert not np.array_equal(first[0].kwargs["mu"], second[0].kwargs["mu"])


def test_inputs_include_the_edge_cases():
    gan_cases = oracle.draw_inputs("optimal_d_gan", rng())
    p_data = np.concatenate([c.kwargs["p_data"].ravel() for c in gan_cases])
    p_model = np.concatenate([c.kwargs["p_model"].ravel() for c in gan_cases])
    ratios = np.abs(np.log10(p_data[p_data * p_model > 0] / p_model[p_data * p_model > 0]))
    assert (p_model == 0).any() and (p_data == 0).any() and ratios.max() > 6
    assert p_data[p_data > 0].min() < 1e-200 and max(p_data.max(), p_model.max()) > 1e4
    assert any(c.kwargs["p_data"].ndim == 2 for c in gan_cases)

    codings = {
        (c.kwargs.get("a"), c.kwargs.get("b")) for c in oracle.draw_inputs("optimal_d_lsgan", rng())
    }
    assert {(None, None), (0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)} <= codings and len(codings) >= 6

    kl_cases = oracle.draw_inputs("vae_kl", rng())
    shapes = [c.kwargs["mu"].shape for c in kl_cases]
    log_var = np.concatenate([c.kwargs["log_var"].ravel() for c in kl_cases])
    assert any(k == 1 for _, k in shapes) and any(k >= 32 for _, k in shapes)
    assert any(n == k for n, k in shapes) and log_var.min() < -15 and log_var.max() > 10
