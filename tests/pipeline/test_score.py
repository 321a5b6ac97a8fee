"""Pure scoring and probing helpers, without a kernel: fast checks of the grading rules."""

from __future__ import annotations

import numpy as np
import pytest

from grader.kernel import loader, wire
from grader.pipeline import score
from grader.pipeline.execute import kernel_environment, prelude_source
from grader.pipeline.probe import match_variables
from grader.pipeline.prober import Observation
from grader.result import CellResult as CellRun
from grader.rubric import load_rubric

RUBRIC = load_rubric()


def _array(value) -> dict:
    return {"kind": "array", "array": np.asarray(value)}


def _pair(d, g) -> dict:
    return {"kind": "sequence", "items": [_array(np.float32(d)), _array(np.float32(g))]}


class FakeOracle:
    """Expected values from simple formulas, standing in for the reference."""

    def activation(self, item, x, alpha):
        return np.where(x > 0, x, (0.01 if alpha is None else alpha) * x)

    def loss(self, item, real, fake):
        return float(np.mean(real)), float(np.mean(fake))


def test_runs_clean_ignores_budget_cut_offs_and_names_failed_cells():
    item = RUBRIC.item("runs_clean")
    ok = [CellRun(0, "ok"), CellRun(3, "budget", error_name="TrainingBudgetReached")]
    assert score.score_runs_clean(ok, item).points == item.points
    bad = ok + [CellRun(7, "error", error_name="NameError", error_message="name 'x' is not")]
    result = score.score_runs_clean(bad, item)
    assert result.points == 0 and "cell 8: NameError" in result.message


def test_leaky_relu_partial_credit_and_side_named():
    item = RUBRIC.item("leaky_relu")
    x = np.array([-2.0, 0.0, 3.0], np.float32)
    calls = [{"x": x, "alpha": None}, {"x": x, "alpha": 0.2}]
    right = [_array([-0.02, 0.0, 3.0]), _array([-0.4, 0.0, 3.0])]
    full = score.score_leaky_relu(Observation("leaky_relu", calls, right), FakeOracle(), item)
    assert full.points == item.points
    fixed_alpha = [_array([-0.02, 0.0, 3.0]), _array([-0.02, 0.0, 3.0])]
    half = score.score_leaky_relu(Observation("leaky_relu", calls, fixed_alpha), FakeOracle(),
                                  item)
    assert half.points == pytest.approx(item.points / 2)
    assert "alpha passed in" in half.message and "negative inputs" in half.message


def test_not_implemented_and_undefined_functions():
    item = RUBRIC.item("leaky_relu")
    calls = [{"x": np.zeros(2), "alpha": None}]
    none = score.score_leaky_relu(Observation("leaky_relu", calls, [{"kind": "none"}]), None,
                                  item)
    assert none.points == 0 and "not implemented" in none.message
    missing = {"kind": "error", "error": "LookupError: leaky_relu is not defined in the notebook"}
    result = score.score_leaky_relu(Observation("leaky_relu", calls, [missing]), None, item)
    assert "not defined" in result.message and "LookupError" not in result.message


def _noise_observation(arrays, shapes) -> Observation:
    return Observation("sample_noise", [{"shape": s} for s in shapes],
                       [_array(a) for a in arrays])


@pytest.mark.parametrize(("make", "expected_parts"), [
    (lambda rng, shape: rng.uniform(-1, 1, shape).astype(np.float32), 4),
    (lambda rng, shape: rng.uniform(-0.5, 0.5, shape).astype(np.float32), 3),
    (lambda rng, shape: rng.uniform(0, 1, shape).astype(np.float32), 3),
    (lambda rng, shape: np.clip(rng.normal(size=shape), -1, 1).astype(np.float32), 3),
    (lambda rng, shape: rng.normal(size=shape).astype(np.float32), 2),
    (lambda rng, shape: rng.uniform(-1, 1, shape), 3),  # float64
])
def test_sample_noise_parts(make, expected_parts):
    rng = np.random.default_rng(0)
    shapes = [(30, 5), (30, 5), (2000, 96)]
    observation = _noise_observation([make(rng, s) for s in shapes], shapes)
    result = score.score_sample_noise(observation, RUBRIC.item("sample_noise"))
    assert result.details["parts_right"] == expected_parts


def test_sample_noise_must_be_fresh():
    rng = np.random.default_rng(1)
    fixed = rng.uniform(-1, 1, (30, 5)).astype(np.float32)
    big = rng.uniform(-1, 1, (2000, 96)).astype(np.float32)
    observation = _noise_observation([fixed, fixed, big], [(30, 5), (30, 5), (2000, 96)])
    result = score.score_sample_noise(observation, RUBRIC.item("sample_noise"))
    assert result.details["parts_right"] == 3 and "new noise" in result.message


def test_loss_scoring_splits_d_and_g_and_flags_non_finite():
    item = RUBRIC.item("gan_loss")
    real, fake = np.array([[1.0], [3.0]]), np.array([[2.0]])
    calls = [{"real": real, "fake": fake}] * 3
    good = Observation("gan_loss", calls, [_pair(2.0, 2.0)] * 3)
    assert score.score_loss(good, FakeOracle(), item).points == item.points
    d_only = Observation("gan_loss", calls, [_pair(2.0, 5.0)] * 3)
    assert score.score_loss(d_only, FakeOracle(), item).points == pytest.approx(item.points / 2)
    unstable = Observation("gan_loss", calls, [_pair(2.0, 2.0)] * 2 + [_pair(np.inf, 2.0)])
    result = score.score_loss(unstable, FakeOracle(), item)
    assert "D_loss is wrong with extreme scores (about +-100) (inf)" in result.message
    assert "matches none of the common mistakes" in result.message  # FakeOracle's formula
    assert "own batch" not in result.message  # no hint that does not apply
    assert result.points == pytest.approx(item.points * 5 / 6, abs=0.01)


def test_loss_must_be_a_pair_of_scalars():
    item = RUBRIC.item("lsgan_loss")
    calls = [{"real": np.zeros((2, 1)), "fake": np.zeros((3, 1))}]
    vector = {"kind": "sequence", "items": [_array(np.zeros(2)), _array(np.zeros(3))]}
    result = score.score_loss(Observation("lsgan_loss", calls, [vector]), FakeOracle(), item)
    assert result.points == 0 and "scalar" in result.message


def _optimizer(kind="Adam", lr=1e-3, beta=0.5, ident=1) -> dict:
    return {"type": kind, "mro": [kind, "Optimizer"], "id": ident, "learning_rate": lr,
            "beta_1": beta}


@pytest.mark.parametrize(("first", "defaults", "parts"), [
    ([_optimizer(lr=3e-4, beta=0.2), _optimizer(lr=3e-4, beta=0.2, ident=2)],
     [_optimizer(), _optimizer(ident=2)], 3),
    ([_optimizer(), _optimizer(ident=2)], [_optimizer(), _optimizer(ident=2)], 1),
    ([_optimizer("SGD", 3e-4, 0.2), _optimizer("SGD", 3e-4, 0.2, 2)],
     [_optimizer("SGD"), _optimizer("SGD", ident=2)], 2),
    ([_optimizer(lr=3e-4, beta=0.2), _optimizer(lr=3e-4, beta=0.2)],
     [_optimizer(), _optimizer()], 2),  # the same object twice
])
def test_get_solvers_parts(first, defaults, parts):
    observation = Observation("get_solvers", [{"learning_rate": 3e-4, "beta1": 0.2}, {}],
                              [{"kind": "optimizers", "items": first},
                               {"kind": "optimizers", "items": defaults}])
    result = score.score_get_solvers(observation, RUBRIC.item("get_solvers"))
    assert result.details["parts_right"] == parts


def test_match_variables_by_shape_in_order():
    reference = [(784, 256), (256,), (256, 256), (256,), (256, 1), (1,)]
    assert match_variables(reference, reference) == [0, 1, 2, 3, 4, 5]
    shuffled = [(256,), (784, 256), (256,), (256, 256), (1,), (256, 1)]
    assert match_variables(reference, shuffled) == [1, 0, 3, 2, 5, 4]
    assert match_variables(reference, reference + [(7,)]) is None
    assert match_variables(reference, reference[:-1]) is None


def test_kernel_environment_drops_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    monkeypatch.setenv("HW4_MNIST_DIR", "/data")
    env = kernel_environment(tmp_path, device="cpu", threads=3)
    assert "GITHUB_TOKEN" not in env and "HW4_MNIST_DIR" not in env
    assert env["HOME"] == str(tmp_path) and env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["TF_NUM_INTRAOP_THREADS"] == "3"
    assert kernel_environment(tmp_path, device="gpu", gpu_index=2)["CUDA_VISIBLE_DEVICES"] == "2"


def test_prelude_carries_its_configuration():
    config = {"seed": 5, "training_steps": 7}
    source = prelude_source(config)
    body = loader.read_source("prelude", {**config, "watched": list(wire.WATCHED)})
    assert "CONFIG: dict = {'seed': 5, 'training_steps': 7, 'watched': [" in body
    assert repr(body) in source and repr(loader.MODULES["prelude"]) in source
    compile(source, "prelude", "exec")


def test_to_value_conversions():
    assert score.to_value({"kind": "none"}) is None
    assert isinstance(score.to_value({"kind": "error", "error": "X: y"}), score.Failure)
    assert isinstance(score.to_value({"kind": "other", "type": "Foo"}), score.Failure)
    values = score.to_value({"kind": "sequence", "items": [_array(1.0), {"kind": "none"}]})
    assert values[0] == 1.0 and values[1] is None


@pytest.mark.parametrize("draw", [
    lambda rng: rng.uniform(-1, 1, 192_000),
    lambda rng: rng.uniform(-1, 1, 300),
    lambda rng: rng.uniform(-1, 0.995, 192_000),
    lambda rng: rng.uniform(-0.5, 0.5, 192_000),
    lambda rng: np.clip(rng.normal(size=5_000) * 0.6, -1, 1),
])
def test_ks_p_value_agrees_with_scipy(draw):
    from scipy import stats

    values = draw(np.random.default_rng(3))
    expected = stats.kstest(values, "uniform", args=(-1, 2)).pvalue
    assert score.ks_uniform_p_value(values, -1.0, 1.0) == pytest.approx(expected, abs=0.01)


class ModelOracle:
    """A reference 'generator' whose output with the copied weights is ``expected``."""

    def __init__(self, expected: np.ndarray):
        self.expected = expected

    def parameter_count(self, item, kwargs):
        return 10

    def model_output(self, item, kwargs, weights, x):
        return self.expected


def _model_observation(first: np.ndarray, second: np.ndarray, batch: int) -> Observation:
    x = np.zeros((batch, 5), np.float32)
    variable = {"shape": [2, 5], "name": "dense/kernel", "trainable": True}
    built = {"kind": "model", "variables": [variable], "output": _array(first)}
    return Observation("generator", calls=[{"kwargs": {"noise_dim": 5}, "x": x},
                                           {"kwargs": {"noise_dim": 5}, "x": x, "weights": []}],
                       outputs=[built, _array(second)], info={"mapping": [0]})


def test_right_values_in_another_shape_cost_only_the_shape_deduction():
    item = RUBRIC.item("generator")
    rng = np.random.default_rng(0)
    expected = rng.uniform(-1, 1, (3, 784)).astype(np.float32)
    images = expected.reshape(3, 28, 28, 1)
    oracle = ModelOracle(expected)
    result = score.score_model(_model_observation(images, images, 3), oracle, item)
    assert result.points == item.points - item.shape_deduction
    assert result.status == "failed"
    assert "[N, 28, 28, 1] where [N, 784]" in result.message
    assert "values match the reference" in result.message
    assert result.details["output_shape"] == [3, 28, 28, 1]
    # wrong values in the wrong shape: the deduction on top of the lost comparison
    wrong = score.score_model(_model_observation(images, images * 0.5, 3), oracle, item)
    assert wrong.points == pytest.approx(0.6 * item.points - item.shape_deduction)
    assert "compared with the reference after flattening" in wrong.message
    assert "outputs differ" in wrong.message
    # the right shape: no deduction; another number of values per sample: no flattening
    assert score.score_model(_model_observation(expected, expected, 3), oracle,
                             item).points == item.points
    cropped = score.score_model(_model_observation(expected[:, :700], expected[:, :700], 3),
                                oracle, item)
    assert cropped.points == pytest.approx(0.3 * item.points) and "output_shape" not in \
        cropped.details


def test_only_a_reshape_of_the_same_batch_is_flattened():
    flat, found = score.as_expected_shape(np.zeros((4, 28, 28, 1)), (4, 784))
    assert flat.shape == (4, 784) and found == (4, 28, 28, 1)
    assert score.as_expected_shape(np.zeros((4, 784)), (4, 784))[1] is None
    assert score.as_expected_shape(np.zeros((2, 1568)), (4, 784))[1] is None  # batch merged
    assert score.as_expected_shape(np.zeros(4), (4, 1))[1] == (4,)
    assert score.as_expected_shape(None, (4, 1)) == (None, None)


def test_runs_clean_ignores_errors_outside_the_homework_parts_but_says_so():
    item = load_rubric().item("runs_clean")
    cells = [CellRun(index=3, status="ok"), CellRun(index=9, status="error",
                                                    error_name="NotImplementedError")]
    assert score.score_runs_clean(cells, item).points == 0
    outside = score.score_runs_clean(cells, item, {9: "WGAN-GP"})
    assert outside.points == item.points and "cell(s) of the WGAN-GP part" in outside.message
    cells.append(CellRun(index=5, status="error", error_name="NameError"))
    inside = score.score_runs_clean(cells, item, {9: "WGAN-GP"})
    assert inside.points == 0 and "cell 6: NameError" in inside.message
