"""Numerical checks of the closed forms behind HW4 Problems 1 (VAE) and 2 (GAN / LSGAN).

Every closed form the instructor's solution relies on is compared with a number that scipy
computes from the *definition* (an optimiser or an integral), never with another formula:

* optimal discriminators: ``minimize_scalar`` per density pair, and L-BFGS-B over a
  discretised ``D(x)`` for 1-D densities;
* generator objective at the optimal discriminator: ``quad`` of the objective against
  ``quad`` of the divergence written out from its definition;
* VAE: the Gaussian KL against ``quad`` and Monte Carlo, and ``log p(x) = ELBO + KL(q || p(z|x))``
  on a linear-Gaussian model where everything is exact.

Conventions for the LSGAN generator objective (Mao et al. 2017, section 3.2.2).  The
homework's generator loss only has the fake-data term; adding the real-data term
``1/2 E_pd[(D(x) - c)^2]`` does not depend on G, so the same G is optimal.  With that term,

    C(G) = 1/2 E_pd[(D*(x) - c)^2] + 1/2 E_pg[(D*(x) - c)^2],

and for ``b - c = 1`` and ``b - a = 2``

    2 C(G) = chi2_Pearson(pd + pg || 2 pg) = integral of (pd - pg)^2 / (pd + pg) dx,

where ``chi2_Pearson(P || Q) = integral of (Q - P)^2 / P`` (the first argument is the
denominator, as in the paper).  So ``C(G)`` is *half* that chi-square; the factor 1/2 comes
from the 1/2 in front of each expectation.  For the GAN,
``C(G) = -log 4 + 2 JSD(pd || pg)`` (Goodfellow et al. 2014).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, optimize, stats

from grader.oracles.numerics import (  # the numerical optima the grader also uses
    argmax_gan_pointwise,
    argmin_lsgan_pointwise,
    gan_pointwise_value,
    kl_to_standard_normal_quad,
    lsgan_pointwise_loss,
    normal_logpdf,
)

ArrayFn = Callable[..., np.ndarray]
Density = Callable[[np.ndarray], np.ndarray]
FrozenNormal = Any  # what scipy.stats.multivariate_normal(mean, cov) returns

LOG4 = math.log(4.0)

# (a, b) codings checked for the LSGAN optimum: the homework's, the 0-1 coding, two others.
LSGAN_CODINGS: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (0.0, 1.0), (0.0, 2.0), (1.5, -0.5))
# (a, b, c) with b - c = 1 and b - a = 2, for which 2 C(G) is the Pearson chi-square.
LSGAN_ABC_CHI2: tuple[tuple[float, float, float], ...] = (
    (-1.0, 1.0, 0.0),
    (0.0, 2.0, 1.0),
    (-1.5, 0.5, -0.5),
)

# density values combined pairwise for the pointwise checks (both zero is skipped)
POINTWISE_DENSITIES = (0.0, 1e-300, 1e-150, 1e-30, 1e-8, 1e-3, 0.1, 0.5, 1.0, 2.0, 10.0, 1e3, 1e8)

TOL_POINTWISE = 1e-6  # on D*, limited by Brent's ~1.5e-8 relative resolution
TOL_FUNCTIONAL = 1e-5  # on D*(x) from L-BFGS-B over a discretised D
TOL_INTEGRAL = 1e-7  # between two quad integrals
TOL_KL_QUAD = 1e-8  # relative (times 1 + |KL|)
TOL_IDENTITY = 1e-8  # log p(x) = ELBO + KL, all terms exact
MC_SIGMAS = 5.0  # Monte Carlo checks pass within this many standard errors
FUNCTIONAL_GRID = 401  # points of the x grid for the discretised D(x)
NEGLIGIBLE = 1e-3  # x with pd + pm below this fraction of its max is ignored in the comparison


# --------------------------------------------------------------------------- closed forms


def gan_optimal_d(p_data: np.ndarray, p_model: np.ndarray) -> np.ndarray:
    """Optimal GAN discriminator ``pd / (pd + pm)`` (elementwise)."""
    p_data, p_model = np.asarray(p_data, float), np.asarray(p_model, float)
    return p_data / (p_data + p_model)


def lsgan_optimal_d(
    p_data: np.ndarray, p_model: np.ndarray, a: float = -1.0, b: float = 1.0
) -> np.ndarray:
    """Optimal LSGAN discriminator ``(b pd + a pm) / (pd + pm)`` for the a-b-c coding."""
    p_data, p_model = np.asarray(p_data, float), np.asarray(p_model, float)
    return (b * p_data + a * p_model) / (p_data + p_model)


def gan_value_from_jsd(jsd: float) -> float:
    """GAN generator objective at the optimal D: ``-log 4 + 2 JSD``."""
    return -LOG4 + 2.0 * jsd


def lsgan_value_from_chi2(chi2: float) -> float:
    """LSGAN generator objective C(G) at the optimal D when b-c=1, b-a=2: half the chi-square."""
    return 0.5 * chi2


def gaussian_kl(mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(N(mu, diag(exp(log_var))) || N(0, I)), summed over the last axis."""
    mu, log_var = np.asarray(mu, float), np.asarray(log_var, float)
    return -0.5 * np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=-1)


@dataclass(frozen=True)
class ClosedForms:
    """The closed forms under test; tests swap in wrong ones to see the checks fail."""

    gan_d: ArrayFn
    lsgan_d: ArrayFn
    gan_value: Callable[[float], float]
    lsgan_value: Callable[[float], float]
    kl: ArrayFn


def default_closed_forms() -> ClosedForms:
    """The module's closed forms, looked up at call time (so monkeypatching them works)."""
    return ClosedForms(
        gan_d=gan_optimal_d,
        lsgan_d=lsgan_optimal_d,
        gan_value=gan_value_from_jsd,
        lsgan_value=lsgan_value_from_chi2,
        kl=gaussian_kl,
    )


# --------------------------------------------------------------------------- check results


@dataclass(frozen=True)
class CheckResult:
    """One row of the report: a closed form against its numerical counterpart."""

    check: str
    case: str
    closed_form: float
    numerical: float
    abs_error: float
    tolerance: float
    passed: bool


def make_result(
    check: str, case: str, closed_form: float, numerical: float, tolerance: float
) -> CheckResult:
    """Build a row; it passes when both values are finite and within ``tolerance``."""
    closed_form, numerical = float(closed_form), float(numerical)
    error = abs(closed_form - numerical)
    passed = bool(np.isfinite(error) and error <= tolerance)
    return CheckResult(check, case, closed_form, numerical, error, tolerance, passed)


def worst_of(
    check: str,
    case: str,
    closed: ArrayLike,
    numerical: ArrayLike,
    labels: Sequence[str],
    tolerance: float,
) -> CheckResult:
    """Summarise many comparisons by the worst one (NaN counts as worst)."""
    closed, numerical = np.asarray(closed, float), np.asarray(numerical, float)
    errors = np.abs(closed - numerical)
    worst = int(np.argmax(np.where(np.isfinite(errors), errors, np.inf)))
    label = f"{case}; worst at {labels[worst]}"
    return make_result(check, label, closed[worst], numerical[worst], tolerance)


# --------------------------------------------------------------------------- objectives


def density_pairs() -> list[tuple[float, float]]:
    """All pairs of ``POINTWISE_DENSITIES`` except (0, 0)."""
    return [(p, q) for p in POINTWISE_DENSITIES for q in POINTWISE_DENSITIES if p + q > 0]


def check_gan_pointwise(gan_d: ArrayFn) -> CheckResult:
    """Closed-form GAN D* against Brent's maximiser on every density pair."""
    pairs = density_pairs()
    numerical = [argmax_gan_pointwise(p, q) for p, q in pairs]
    closed = [float(gan_d(np.float64(p), np.float64(q))) for p, q in pairs]
    labels = [f"p_data={p:.3g}, p_model={q:.3g}" for p, q in pairs]
    case = f"{len(pairs)} density pairs"
    return worst_of("GAN D* pointwise", case, closed, numerical, labels, TOL_POINTWISE)


def check_lsgan_pointwise(lsgan_d: ArrayFn, a: float, b: float) -> CheckResult:
    """Closed-form LSGAN D* for coding (a, b) against Brent's minimiser on every pair."""
    pairs = density_pairs()
    numerical = [argmin_lsgan_pointwise(p, q, a, b) for p, q in pairs]
    closed = [float(lsgan_d(np.float64(p), np.float64(q), a=a, b=b)) for p, q in pairs]
    labels = [f"p_data={p:.3g}, p_model={q:.3g}" for p, q in pairs]
    case = f"a={a:g}, b={b:g}, {len(pairs)} density pairs"
    return worst_of("LSGAN D* pointwise", case, closed, numerical, labels, TOL_POINTWISE)


# --------------------------------------------------------------------------- 1-D densities


def normal_pdf(x: np.ndarray | float, mean: float, sd: float) -> np.ndarray | float:
    """Density of N(mean, sd^2), written out (cheap for scalar calls inside ``quad``)."""
    z = (x - mean) / sd
    return np.exp(-0.5 * z * z) / (sd * math.sqrt(2.0 * math.pi))


@dataclass(frozen=True)
class Mixture:
    """A 1-D Gaussian mixture, callable on scalars and arrays."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]

    def __call__(self, x: np.ndarray | float) -> np.ndarray | float:
        """Density at ``x``."""
        return sum(w * normal_pdf(x, m, s) for w, m, s in zip(self.weights, self.means, self.sds))


def gaussian(mean: float, sd: float) -> Mixture:
    """A single Gaussian as a one-component mixture."""
    return Mixture((1.0,), (mean,), (sd,))


@dataclass(frozen=True)
class Scenario:
    """A pair of 1-D densities and an interval that holds (numerically) all their mass."""

    name: str
    p_data: Mixture
    p_model: Mixture

    def interval(self, n_sd: float = 12.0) -> tuple[float, float]:
        """The smallest interval covering every component's mean +- ``n_sd`` sd."""
        components = [
            *zip(self.p_data.means, self.p_data.sds),
            *zip(self.p_model.means, self.p_model.sds),
        ]
        lo = min(m - n_sd * s for m, s in components)
        hi = max(m + n_sd * s for m, s in components)
        return lo, hi

    def breakpoints(self) -> list[float]:
        """Component means, handed to ``quad`` so narrow peaks are not missed."""
        return sorted({*self.p_data.means, *self.p_model.means})


def functional_scenarios() -> list[Scenario]:
    """Densities for the discretised-D check: two Gaussians, a mixture, near-disjoint."""
    return [
        Scenario("two Gaussians", gaussian(0.0, 1.0), gaussian(1.5, 0.7)),
        Scenario(
            "mixture vs Gaussian",
            Mixture((0.3, 0.7), (-2.0, 1.5), (0.5, 1.0)),
            gaussian(0.0, 1.5),
        ),
        Scenario("nearly disjoint", gaussian(-4.0, 0.5), gaussian(4.0, 0.5)),
    ]


def divergence_scenarios() -> list[Scenario]:
    """Densities for the generator-objective checks (equal, shifted, mixtures, far apart)."""
    return [
        Scenario("identical N(0,1)", gaussian(0.0, 1.0), gaussian(0.0, 1.0)),
        Scenario("shift 0.5", gaussian(0.0, 1.0), gaussian(0.5, 1.0)),
        Scenario("shift 2, sd 1 vs 2", gaussian(0.0, 1.0), gaussian(2.0, 2.0)),
        *functional_scenarios()[1:],
        Scenario("shift 10", gaussian(0.0, 1.0), gaussian(10.0, 1.0)),
    ]


# --------------------------------------------------------------------------- functional check


def discretise(scenario: Scenario, n: int = FUNCTIONAL_GRID) -> tuple[np.ndarray, ...]:
    """Grid ``x``, cell width ``dx`` and the two densities on the grid."""
    lo, hi = scenario.interval(n_sd=4.0)
    x = np.linspace(lo, hi, n)
    dx = x[1] - x[0]
    return x, np.full(n, dx), np.asarray(scenario.p_data(x)), np.asarray(scenario.p_model(x))


def minimise_gan_functional(p_data: np.ndarray, p_model: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Maximise ``sum w (pd log D + pm log(1 - D))`` over the vector D in (0, 1)."""

    def negative_value_and_grad(d: np.ndarray) -> tuple[float, np.ndarray]:
        value = np.sum(w * gan_pointwise_value(d, p_data, p_model))
        return -value, -w * (p_data / d - p_model / (1.0 - d))

    def hessian_diagonal(d: np.ndarray) -> np.ndarray:
        return w * (p_data / d**2 + p_model / (1.0 - d) ** 2)

    eps = 1e-12
    start = np.full(p_data.shape, 0.5)
    return minimise_separable(negative_value_and_grad, hessian_diagonal, start, (eps, 1.0 - eps))


def minimise_lsgan_functional(
    p_data: np.ndarray, p_model: np.ndarray, w: np.ndarray, a: float, b: float
) -> np.ndarray:
    """Minimise ``sum w (1/2 pd (D-b)^2 + 1/2 pm (D-a)^2)`` over the vector D."""

    def value_and_grad(d: np.ndarray) -> tuple[float, np.ndarray]:
        value = np.sum(w * lsgan_pointwise_loss(d, p_data, p_model, a, b))
        return value, w * (p_data * (d - b) + p_model * (d - a))

    def hessian_diagonal(d: np.ndarray) -> np.ndarray:
        return w * (p_data + p_model)

    return minimise_separable(value_and_grad, hessian_diagonal, np.zeros(p_data.shape))


def minimise_separable(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hessian_diagonal: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    bounds: tuple[float, float] | None = None,
    max_rounds: int = 20,
) -> np.ndarray:
    """L-BFGS-B on a sum of one-variable terms, diagonally preconditioned.

    The density mass per grid cell spans many orders of magnitude, so plain L-BFGS-B stalls
    long before ``D`` is accurate.  Each round rescales the variables by the square root of
    the (analytic) diagonal Hessian at the current iterate, which makes the problem nearly
    isotropic, and restarts L-BFGS-B; rounds stop when the iterate no longer moves.
    """
    d = np.asarray(start, float)
    for _ in range(max_rounds):
        scale = np.sqrt(np.maximum(hessian_diagonal(d), 1e-200))

        def scaled(v: np.ndarray, scale: np.ndarray = scale) -> tuple[float, np.ndarray]:
            value, grad = value_and_grad(v / scale)
            return value, grad / scale

        box = None if bounds is None else list(zip(bounds[0] * scale, bounds[1] * scale))
        result = optimize.minimize(
            scaled,
            d * scale,
            jac=True,
            method="L-BFGS-B",
            bounds=box,
            options={"maxiter": 1000, "ftol": 1e-16, "gtol": 1e-14, "maxcor": 30},
        )
        new = result.x / scale
        if bounds is not None:
            new = np.clip(new, *bounds)
        converged = np.max(np.abs(new - d)) < 1e-15
        d = new
        if converged:
            break
    return d


@dataclass(frozen=True)
class FunctionalSolution:
    """Numerical minimiser of the discretised objective next to the closed form."""

    x: np.ndarray
    numerical: np.ndarray
    closed: np.ndarray
    mask: np.ndarray  # where the densities are not negligible


def solve_functional(
    scenario: Scenario, optimal_d: ArrayFn, coding: tuple[float, float] | None = None
) -> FunctionalSolution:
    """Optimise the integrated GAN (``coding`` None) or LSGAN objective on a grid."""
    x, w, pd, pm = discretise(scenario)
    if coding is None:
        numerical = minimise_gan_functional(pd, pm, w)
        closed = optimal_d(pd, pm)
    else:
        a, b = coding
        numerical = minimise_lsgan_functional(pd, pm, w, a, b)
        closed = optimal_d(pd, pm, a=a, b=b)
    total = pd + pm
    return FunctionalSolution(
        x, numerical, np.asarray(closed, float), total > NEGLIGIBLE * total.max()
    )


def check_functional(
    scenario: Scenario, optimal_d: ArrayFn, coding: tuple[float, float] | None = None
) -> CheckResult:
    """Closed-form D*(x) against the L-BFGS-B minimiser of the discretised objective."""
    sol = solve_functional(scenario, optimal_d, coding)
    labels = [f"x={v:.3g}" for v in sol.x[sol.mask]]
    name = "GAN D*(x) functional" if coding is None else "LSGAN D*(x) functional"
    case = scenario.name if coding is None else f"{scenario.name}, a={coding[0]:g}, b={coding[1]:g}"
    return worst_of(
        name, case, sol.closed[sol.mask], sol.numerical[sol.mask], labels, TOL_FUNCTIONAL
    )


# --------------------------------------------------------------------------- divergences


def integrate_1d(f: Callable[[float], float], scenario: Scenario) -> float:
    """``quad`` of ``f`` over the scenario's interval, with its means as break points."""
    lo, hi = scenario.interval()
    with warnings.catch_warnings():  # a wrong closed form may give an awkward integrand
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(
            f, lo, hi, points=scenario.breakpoints(), limit=500, epsabs=1e-13, epsrel=1e-12
        )
    return float(value)


def kl_divergence(p: Density, q: Density, scenario: Scenario) -> float:
    """KL(p || q) = integral of p log(p / q), with 0 log 0 = 0."""

    def integrand(x: float) -> float:
        px, qx = float(p(x)), float(q(x))
        return 0.0 if px == 0.0 else px * math.log(px / qx)

    return integrate_1d(integrand, scenario)


def js_divergence(scenario: Scenario) -> float:
    """JSD(pd || pm) = 1/2 KL(pd || m) + 1/2 KL(pm || m) with m = (pd + pm) / 2."""

    def mid(x: float) -> float:
        return 0.5 * (scenario.p_data(x) + scenario.p_model(x))

    return 0.5 * (
        kl_divergence(scenario.p_data, mid, scenario)
        + kl_divergence(scenario.p_model, mid, scenario)
    )


def pearson_chi2_of_sum_from_twice_model(scenario: Scenario) -> float:
    """chi2_Pearson(pd + pm || 2 pm) = integral of (2 pm - (pd + pm))^2 / (pd + pm)."""

    def integrand(x: float) -> float:
        pd, pm = float(scenario.p_data(x)), float(scenario.p_model(x))
        total = pd + pm
        return 0.0 if total == 0.0 else (2.0 * pm - total) ** 2 / total

    return integrate_1d(integrand, scenario)


def gan_value_at_optimum(scenario: Scenario, gan_d: ArrayFn) -> float:
    """``quad`` of ``pd log D* + pm log(1 - D*)`` with D* from ``gan_d``."""

    def integrand(x: float) -> float:
        pd, pm = float(scenario.p_data(x)), float(scenario.p_model(x))
        if pd + pm == 0.0:
            return 0.0
        # D* may round to exactly 0 or 1 where one density is < 1e-16 of the other; keep
        # log finite there (the neglected term is below 1e-13 of the integrand).
        d = min(max(float(gan_d(pd, pm)), 1e-300), 1.0 - 2.0**-53)
        return float(gan_pointwise_value(d, pd, pm))

    return integrate_1d(integrand, scenario)


def lsgan_value_at_optimum(
    scenario: Scenario, lsgan_d: ArrayFn, a: float, b: float, c: float
) -> float:
    """``quad`` of ``1/2 pd (D* - c)^2 + 1/2 pm (D* - c)^2`` with D* from ``lsgan_d``."""

    def integrand(x: float) -> float:
        pd, pm = float(scenario.p_data(x)), float(scenario.p_model(x))
        if pd + pm == 0.0:
            return 0.0
        d = float(lsgan_d(pd, pm, a=a, b=b))
        return 0.5 * (pd + pm) * (d - c) ** 2

    return integrate_1d(integrand, scenario)


def check_gan_value(scenario: Scenario, forms: ClosedForms) -> CheckResult:
    """C(G) by quad against ``gan_value(JSD)`` with JSD by quad."""
    closed = forms.gan_value(js_divergence(scenario))
    numerical = gan_value_at_optimum(scenario, forms.gan_d)
    return make_result("GAN C(G) = -log4 + 2 JSD", scenario.name, closed, numerical, TOL_INTEGRAL)


def check_lsgan_value(
    scenario: Scenario, forms: ClosedForms, abc: tuple[float, float, float]
) -> CheckResult:
    """C(G) by quad against ``lsgan_value(chi2)`` with the chi-square by quad."""
    a, b, c = abc
    closed = forms.lsgan_value(pearson_chi2_of_sum_from_twice_model(scenario))
    numerical = lsgan_value_at_optimum(scenario, forms.lsgan_d, a, b, c)
    case = f"{scenario.name}, a={a:g}, b={b:g}, c={c:g}"
    return make_result("LSGAN C(G) = chi2 / 2", case, closed, numerical, TOL_INTEGRAL)


def divergence_curves(
    shifts: np.ndarray, forms: ClosedForms | None = None
) -> dict[str, np.ndarray]:
    """C(G) and its divergence expression for N(0,1) vs N(shift,1), for plotting."""
    forms = forms or default_closed_forms()
    scenarios = [
        Scenario(f"shift {s:g}", gaussian(0.0, 1.0), gaussian(float(s), 1.0)) for s in shifts
    ]
    return {
        "shift": np.asarray(shifts, float),
        "gan_value": np.array([gan_value_at_optimum(s, forms.gan_d) for s in scenarios]),
        "gan_closed": np.array([forms.gan_value(js_divergence(s)) for s in scenarios]),
        "lsgan_value": np.array(
            [lsgan_value_at_optimum(s, forms.lsgan_d, -1.0, 1.0, 0.0) for s in scenarios]
        ),
        "lsgan_closed": np.array(
            [forms.lsgan_value(pearson_chi2_of_sum_from_twice_model(s)) for s in scenarios]
        ),
    }


# --------------------------------------------------------------------------- VAE: Gaussian KL

# (mu, log_var) for one example each; k = 1, zero KL, large |mu|, extreme variances
KL_CASES: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = (
    ("k=1", (0.5,), (-0.3,)),
    ("k=3, standard normal (KL 0)", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ("k=4, mixed", (1.0, -2.0, 0.3, 0.0), (0.7, -1.2, 0.0, 2.0)),
    ("k=3, extreme log_var", (0.1, -0.5, 8.0), (-12.0, 6.0, 0.0)),
)
MC_SAMPLES = 200_000


def kl_to_standard_normal_mc(
    mu: Sequence[float], log_var: Sequence[float], rng: np.random.Generator, n: int = MC_SAMPLES
) -> tuple[float, float]:
    """Monte Carlo estimate of the same KL and its standard error."""
    mu, sd = np.asarray(mu, float), np.exp(0.5 * np.asarray(log_var, float))
    z = mu + sd * rng.standard_normal((n, mu.size))
    log_ratio = np.sum(normal_logpdf(z, mu, sd) - normal_logpdf(z, 0.0, 1.0), axis=1)
    return float(log_ratio.mean()), float(log_ratio.std(ddof=1) / math.sqrt(n))


def check_kl_quad(
    kl: ArrayFn, name: str, mu: Sequence[float], log_var: Sequence[float]
) -> CheckResult:
    """Closed-form Gaussian KL against ``quad``."""
    closed = float(kl(np.array([mu]), np.array([log_var]))[0])
    numerical = kl_to_standard_normal_quad(mu, log_var)
    tol = TOL_KL_QUAD * (1.0 + abs(numerical))
    return make_result("VAE KL vs quad", name, closed, numerical, tol)


def check_kl_mc(
    kl: ArrayFn, name: str, mu: Sequence[float], log_var: Sequence[float], seed: int
) -> CheckResult:
    """Closed-form Gaussian KL against a seeded Monte Carlo estimate (within 5 s.e.)."""
    closed = float(kl(np.array([mu]), np.array([log_var]))[0])
    estimate, stderr = kl_to_standard_normal_mc(mu, log_var, np.random.default_rng(seed))
    tol = MC_SIGMAS * stderr + 1e-12
    return make_result("VAE KL vs Monte Carlo", name, closed, estimate, tol)


# --------------------------------------------------------------------------- VAE: ELBO identity


@dataclass(frozen=True)
class LinearGaussian:
    """z ~ N(0, I), x | z ~ N(W z + b, s^2 I): marginal and posterior are Gaussian."""

    weight: np.ndarray  # [dim_x, dim_z]
    bias: np.ndarray  # [dim_x]
    noise_sd: float

    def marginal(self) -> FrozenNormal:
        """p(x) = N(b, W W^T + s^2 I)."""
        cov = self.weight @ self.weight.T + self.noise_sd**2 * np.eye(self.bias.size)
        return stats.multivariate_normal(self.bias, cov)

    def posterior(self, x: np.ndarray) -> FrozenNormal:
        """p(z | x) = N(S W^T (x - b) / s^2, S) with S = (I + W^T W / s^2)^-1."""
        s2 = self.noise_sd**2
        cov = np.linalg.inv(np.eye(self.weight.shape[1]) + self.weight.T @ self.weight / s2)
        return stats.multivariate_normal(cov @ self.weight.T @ (x - self.bias) / s2, cov)

    def log_likelihood(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """log p(x | z) for one z [dim_z] or a batch [n, dim_z]."""
        mean = np.atleast_2d(z) @ self.weight.T + self.bias
        return np.sum(normal_logpdf(x, mean, self.noise_sd), axis=-1)

    def expected_log_likelihood(self, x: np.ndarray, mu: np.ndarray, var: np.ndarray) -> float:
        """E_q[log p(x | z)] for q = N(mu, diag var), exactly."""
        residual = x - self.weight @ mu - self.bias
        spread = np.sum(var * np.sum(self.weight**2, axis=0))
        s2 = self.noise_sd**2
        return float(
            -0.5 * x.size * math.log(2 * math.pi * s2) - (residual @ residual + spread) / (2 * s2)
        )


def gaussian_kl_full(
    mean0: np.ndarray, cov0: np.ndarray, mean1: np.ndarray, cov1: np.ndarray
) -> float:
    """KL(N(mean0, cov0) || N(mean1, cov1)) for full covariances."""
    k = mean0.size
    inv1 = np.linalg.inv(cov1)
    diff = mean1 - mean0
    _, logdet0 = np.linalg.slogdet(cov0)
    _, logdet1 = np.linalg.slogdet(cov1)
    return float(0.5 * (np.trace(inv1 @ cov0) + diff @ inv1 @ diff - k + logdet1 - logdet0))


@dataclass(frozen=True)
class ElboProblem:
    """A linear-Gaussian model, one observation x and an arbitrary diagonal q(z | x)."""

    model: LinearGaussian
    x: np.ndarray
    q_mu: np.ndarray
    q_log_var: np.ndarray


def make_elbo_problem(seed: int, dim_x: int = 4, dim_z: int = 2) -> ElboProblem:
    """Draw a random model, observation and q from a seeded generator."""
    rng = np.random.default_rng(seed)
    model = LinearGaussian(rng.normal(size=(dim_x, dim_z)), rng.normal(size=dim_x), 0.7)
    x = model.marginal().rvs(random_state=rng)
    return ElboProblem(model, np.asarray(x), rng.normal(size=dim_z), rng.normal(size=dim_z))


def elbo(problem: ElboProblem, kl: ArrayFn) -> float:
    """ELBO = E_q[log p(x | z)] - KL(q || p(z)), the prior KL from the closed form ``kl``."""
    var = np.exp(problem.q_log_var)
    reconstruction = problem.model.expected_log_likelihood(problem.x, problem.q_mu, var)
    prior_kl = float(kl(problem.q_mu[None, :], problem.q_log_var[None, :])[0])
    return reconstruction - prior_kl


def check_bayes_rule(problem: ElboProblem, rng: np.random.Generator) -> CheckResult:
    """log p(z) + log p(x|z) - log p(z|x) equals log p(x) at random z (fixture sanity)."""
    model, x = problem.model, problem.x
    z = rng.normal(size=(5, problem.q_mu.size))
    prior = stats.multivariate_normal(np.zeros(z.shape[1]), np.eye(z.shape[1]))
    combos = prior.logpdf(z) + model.log_likelihood(x, z) - model.posterior(x).logpdf(z)
    log_px = model.marginal().logpdf(x)
    labels = [f"z={np.round(v, 3).tolist()}" for v in z]
    closed = np.full(len(z), log_px)
    return worst_of(
        "linear-Gaussian Bayes rule", "5 random z", closed, combos, labels, TOL_IDENTITY
    )


def check_elbo_identity(problem: ElboProblem, kl: ArrayFn) -> CheckResult:
    """ELBO + KL(q || p(z|x)) against the exact log p(x)."""
    posterior = problem.model.posterior(problem.x)
    q_cov = np.diag(np.exp(problem.q_log_var))
    gap = gaussian_kl_full(problem.q_mu, q_cov, posterior.mean, posterior.cov)
    closed = elbo(problem, kl) + gap
    numerical = float(problem.model.marginal().logpdf(problem.x))
    return make_result(
        "log p(x) = ELBO + KL(q||p(z|x))",
        "linear-Gaussian, random q",
        closed,
        numerical,
        TOL_IDENTITY,
    )


def check_elbo_mc(problem: ElboProblem, kl: ArrayFn, seed: int) -> CheckResult:
    """Closed-form ELBO against E_q[log p(x,z) - log q(z)] by seeded Monte Carlo."""
    rng = np.random.default_rng(seed)
    sd = np.exp(0.5 * problem.q_log_var)
    z = problem.q_mu + sd * rng.standard_normal((MC_SAMPLES // 4, sd.size))
    dim_z = sd.size
    log_joint = stats.multivariate_normal(np.zeros(dim_z), np.eye(dim_z)).logpdf(
        z
    ) + problem.model.log_likelihood(problem.x, z)
    log_q = np.sum(normal_logpdf(z, problem.q_mu, sd), axis=1)
    samples = log_joint - log_q
    stderr = samples.std(ddof=1) / math.sqrt(samples.size)
    return make_result(
        "ELBO vs Monte Carlo",
        "linear-Gaussian, random q",
        elbo(problem, kl),
        samples.mean(),
        MC_SIGMAS * stderr,
    )


# --------------------------------------------------------------------------- all checks


def run_all_checks(forms: ClosedForms | None = None, seed: int = 0) -> list[CheckResult]:
    """Every check of the closed forms, in report order."""
    forms = forms or default_closed_forms()
    results = [check_gan_pointwise(forms.gan_d)]
    results += [check_lsgan_pointwise(forms.lsgan_d, a, b) for a, b in LSGAN_CODINGS]
    for scenario in functional_scenarios():
        results.append(check_functional(scenario, forms.gan_d))
        results += [check_functional(scenario, forms.lsgan_d, ab) for ab in LSGAN_CODINGS[:2]]
    for scenario in divergence_scenarios():
        results.append(check_gan_value(scenario, forms))
        results += [check_lsgan_value(scenario, forms, abc) for abc in LSGAN_ABC_CHI2]
    for i, (name, mu, log_var) in enumerate(KL_CASES):
        results.append(check_kl_quad(forms.kl, name, mu, log_var))
        results.append(check_kl_mc(forms.kl, name, mu, log_var, seed + i))
    problem = make_elbo_problem(seed)
    results.append(check_bayes_rule(problem, np.random.default_rng(seed)))
    results.append(check_elbo_identity(problem, forms.kl))
    results.append(check_elbo_mc(problem, forms.kl, seed))
    return results
