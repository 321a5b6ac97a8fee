"""Tests of the instructor's numerical checks (reference/theory.py) and ``hw4grade theory``."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grader.commands import theory as theory_cli
from reference import theory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> list[theory.CheckResult]:
    return theory.run_all_checks()


@pytest.fixture
def forms() -> theory.ClosedForms:
    return theory.default_closed_forms()


# --------------------------------------------------------------------------- wrong answers


def lsgan_swapped(p_data, p_model, a=-1.0, b=1.0):
    return (a * p_data + b * p_model) / (p_data + p_model)


def lsgan_with_gan_formula(p_data, p_model, a=-1.0, b=1.0):
    return p_data / (p_data + p_model)


def gan_swapped(p_data, p_model):
    return p_model / (p_data + p_model)


def kl_without_half(mu, log_var):
    return -np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=-1)


def kl_wrong_log_var_sign(mu, log_var):
    return -0.5 * np.sum(1.0 - log_var - mu**2 - np.exp(log_var), axis=-1)


def scenario(name: str) -> theory.Scenario:
    return {s.name: s for s in theory.divergence_scenarios()}[name]


# --------------------------------------------------------------------------- right answers pass


def test_every_check_passes_with_the_right_closed_forms(results):
    failing = [(r.check, r.case, r.abs_error) for r in results if not r.passed]
    assert failing == []


def test_report_covers_every_kind_of_check(results):
    checks = {r.check for r in results}
    assert checks == {
        "GAN D* pointwise",
        "LSGAN D* pointwise",
        "GAN D*(x) functional",
        "LSGAN D*(x) functional",
        "GAN C(G) = -log4 + 2 JSD",
        "LSGAN C(G) = chi2 / 2",
        "VAE KL vs quad",
        "VAE KL vs Monte Carlo",
        "linear-Gaussian Bayes rule",
        "log p(x) = ELBO + KL(q||p(z|x))",
        "ELBO vs Monte Carlo",
    }
    pointwise_cases = " ".join(r.case for r in results if r.check == "LSGAN D* pointwise")
    assert "a=-1, b=1" in pointwise_cases and "a=0, b=1" in pointwise_cases


def test_numerical_values_are_not_trivially_equal_to_the_closed_form(results):
    # the pointwise optimum comes from Brent, so it differs from the formula in the last digits
    pointwise = [r for r in results if r.check.endswith("pointwise")]
    assert all(0.0 < r.abs_error < r.tolerance for r in pointwise)


# --------------------------------------------------------------------------- wrong answers fail


@pytest.mark.parametrize("a, b", theory.LSGAN_CODINGS)
def test_swapped_a_and_b_fails_pointwise_for_every_coding(a, b):
    assert not theory.check_lsgan_pointwise(lsgan_swapped, a, b).passed


def test_swapped_a_and_b_fails_the_functional_check():
    for s in theory.functional_scenarios():
        assert not theory.check_functional(s, lsgan_swapped, (-1.0, 1.0)).passed


def test_gan_formula_for_lsgan_fails_except_for_the_0_1_coding():
    assert not theory.check_lsgan_pointwise(lsgan_with_gan_formula, -1.0, 1.0).passed
    assert not theory.check_lsgan_pointwise(lsgan_with_gan_formula, 1.5, -0.5).passed
    # with a=0, b=1 the two optima coincide, which the check must recognise
    assert theory.check_lsgan_pointwise(lsgan_with_gan_formula, 0.0, 1.0).passed


def test_gan_formula_for_lsgan_fails_the_generator_objective(forms):
    wrong = replace(forms, lsgan_d=lsgan_with_gan_formula)
    assert not theory.check_lsgan_value(scenario("shift 0.5"), wrong, (-1.0, 1.0, 0.0)).passed


def test_swapped_gan_optimum_fails(forms):
    assert not theory.check_gan_pointwise(gan_swapped).passed
    assert not theory.check_functional(theory.functional_scenarios()[0], gan_swapped).passed
    wrong = replace(forms, gan_d=gan_swapped)
    assert not theory.check_gan_value(scenario("shift 0.5"), wrong).passed


def test_missing_factor_two_in_jsd_relation_fails(forms):
    wrong = replace(forms, gan_value=lambda jsd: -math.log(4.0) + jsd)
    assert not theory.check_gan_value(scenario("shift 2, sd 1 vs 2"), wrong).passed
    # both relations agree when the densities are equal (JSD = 0)
    assert theory.check_gan_value(scenario("identical N(0,1)"), wrong).passed


def test_missing_half_in_chi2_relation_fails(forms):
    wrong = replace(forms, lsgan_value=lambda chi2: chi2)
    for abc in theory.LSGAN_ABC_CHI2:
        assert not theory.check_lsgan_value(scenario("mixture vs Gaussian"), wrong, abc).passed


@pytest.mark.parametrize("wrong_kl", [kl_without_half, kl_wrong_log_var_sign])
def test_wrong_vae_kl_fails_quad_monte_carlo_and_elbo_identity(wrong_kl):
    name, mu, log_var = theory.KL_CASES[2]
    assert not theory.check_kl_quad(wrong_kl, name, mu, log_var).passed
    assert not theory.check_kl_mc(wrong_kl, name, mu, log_var, seed=0).passed
    problem = theory.make_elbo_problem(seed=0)
    assert not theory.check_elbo_identity(problem, wrong_kl).passed
    assert not theory.check_elbo_mc(problem, wrong_kl, seed=0).passed


def test_run_all_checks_reports_failures_of_injected_wrong_forms(forms):
    results = theory.run_all_checks(replace(forms, kl=kl_wrong_log_var_sign))
    failing = {r.check for r in results if not r.passed}
    assert "VAE KL vs quad" in failing and "log p(x) = ELBO + KL(q||p(z|x))" in failing
    assert "GAN D* pointwise" not in failing


# --------------------------------------------------------------------------- numerical pieces


def test_divergences_of_identical_and_disjoint_densities():
    same = scenario("identical N(0,1)")
    far = theory.Scenario("far apart", theory.gaussian(-30.0, 1.0), theory.gaussian(30.0, 1.0))
    assert theory.js_divergence(same) == pytest.approx(0.0, abs=1e-12)
    assert theory.js_divergence(far) == pytest.approx(math.log(2.0), rel=1e-9)
    # (pd - pm)^2 / (pd + pm) integrates to 2 when the supports do not overlap
    assert theory.pearson_chi2_of_sum_from_twice_model(far) == pytest.approx(2.0, rel=1e-9)


def test_kl_divergence_of_two_gaussians_matches_textbook_value():
    s = scenario("shift 2, sd 1 vs 2")
    # KL(N(0,1) || N(2,4)) = log 2 + (1 + 4) / 8 - 1/2
    expected = math.log(2.0) + 5.0 / 8.0 - 0.5
    assert theory.kl_divergence(s.p_data, s.p_model, s) == pytest.approx(expected, rel=1e-9)


def test_functional_minimiser_saturates_on_nearly_disjoint_supports():
    s = theory.functional_scenarios()[2]
    sol = theory.solve_functional(s, theory.gan_optimal_d)
    left, right = sol.mask & (sol.x < 0), sol.mask & (sol.x > 0)
    assert np.all(sol.numerical[left] > 1 - 1e-9) and np.all(sol.numerical[right] < 1e-9)


def test_make_result_fails_on_nan_and_worst_of_reports_nan_first():
    assert not theory.make_result("c", "x", float("nan"), 1.0, 1.0).passed
    row = theory.worst_of("c", "x", [1.0, np.nan, 3.0], [1.0, 2.0, 3.5], ["a", "b", "c"], 1.0)
    assert not row.passed and row.case.endswith("worst at b")


def test_monte_carlo_checks_are_reproducible():
    name, mu, log_var = theory.KL_CASES[0]
    first = theory.check_kl_mc(theory.gaussian_kl, name, mu, log_var, seed=3)
    assert theory.check_kl_mc(theory.gaussian_kl, name, mu, log_var, seed=3) == first


# --------------------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    theory_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_exits_zero_and_writes_every_row(tmp_path, results):
    out = tmp_path / "theory.json"
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "theory", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["passed"] is True and report["n_failed"] == 0
    assert len(report["rows"]) == len(results)
    assert set(report["rows"][0]) == {
        "check",
        "case",
        "closed_form",
        "numerical",
        "abs_error",
        "tolerance",
        "passed",
    }
    assert f"{len(results)} of {len(results)} checks passed" in proc.stdout


def test_cli_exits_non_zero_when_a_closed_form_is_wrong(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(theory, "lsgan_optimal_d", lsgan_swapped)
    out = tmp_path / "theory.json"
    assert theory_cli.run(parse(["--json", str(out)])) == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False
    failing = [row for row in report["rows"] if not row["passed"]]
    assert failing and all(row["check"].startswith("LSGAN D*") for row in failing)
    assert "FAIL" in capsys.readouterr().out


def test_cli_plot_writes_png_figures(tmp_path, capsys):
    assert theory_cli.run(parse(["--plot", str(tmp_path / "figs")])) == 0
    pngs = sorted(p.name for p in (tmp_path / "figs").glob("*.png"))
    assert pngs == ["divergences.png", "optimal_d.png"]
    assert all((tmp_path / "figs" / name).read_bytes()[:4] == b"\x89PNG" for name in pngs)


def test_json_rows_replace_non_finite_numbers():
    row = theory.make_result("c", "x", float("nan"), 1.0, 1.0)
    text = json.dumps(theory_cli.rows_as_json([row]), allow_nan=False)
    assert '"nan"' in text
