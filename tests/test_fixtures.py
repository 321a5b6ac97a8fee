"""Cheap checks that the test-submission corpus (tests/fixtures/submissions.py) is honest.

No notebook is executed. Each variant is built, its edits are checked to land in the
intended cells, its files are checked to be valid (or invalid) as claimed, and the graded
function it rewrites is run against ``reference.hw4`` on a few inputs: a variant that
claims to lose an item must really differ there, a correct one must agree.
"""

from __future__ import annotations

import ast
import difflib
import json
import math
from collections.abc import Callable

import nbformat
import numpy as np
import pytest
from scipy import stats

from reference import hw4
from tests.fixtures import submissions as subs
from tests.fixtures.submissions import FUNCTION_CELLS, UNIT_ITEMS, VARIANTS, Variant

SOLUTION = subs.load_solution()
NOTEBOOK_VARIANTS = [v for v in VARIANTS if not v.is_raw]
FUNCTION_VARIANTS = [v for v in VARIANTS if v.function is not None]
# Cells that must fail to compile in each variant (every other cell of every variant compiles).
SYNTAX_ERRORS = {
    "syntax_error_data_cell": {"data"},
    "syntax_error_leaky_relu_cell": {"leaky-relu"},
    "syntax_error_extra_cell": {"extra-syntax-error"},
}


# Why a mistake fails (the first word of each problem), where that is the point of it.
FAILS_BECAUSE: dict[str, set[str]] = {
    "sample_noise_unit_interval": {"range", "uniform"},
    "sample_noise_half_width": {"range", "uniform"},
    "sample_noise_normal": {"range", "uniform"},
    "sample_noise_constant": {"fresh"},
    "sample_noise_float64": {"dtype"},
    "sample_noise_clipped_normal": {"uniform"},  # only the distribution test catches it
    "discriminator_sigmoid_output": {"outputs"},
    "discriminator_relu": {"outputs"},
    "discriminator_default_leaky_slope": {"outputs"},
    "discriminator_extra_layer": {"count"},
    "generator_no_tanh": {"outputs"},
    "generator_extra_layer": {"count"},
    "generator_ignores_noise_dim": {"call"},
    "dc_discriminator_same_padding": {"count"},
    "dc_discriminator_default_leaky_slope": {"outputs"},
    "dc_generator_batchnorm_before_relu": {"outputs"},
    "dc_generator_no_tanh": {"outputs"},
    "dc_generator_valid_padding": {"shape"},  # same parameter count as the reference
    "dc_generator_left_blank": {"build"},
    "count_params_patch_wrong_discriminator": {"count"},
    "discriminator_without_input_layer": set(),  # right: only the public check cell raises
}


def names(variants: list[Variant]) -> list[str]:
    return [variant.name for variant in variants]


def build(name: str) -> nbformat.NotebookNode:
    return subs.render(subs.variant_by_name(name), SOLUTION)


def changed_cells(before: nbformat.NotebookNode, after: nbformat.NotebookNode) -> set[str]:
    """Ids of cells added, removed, edited, or out of their relative order (minimal set)."""
    old = {cell.id: cell for cell in before.cells}
    new = {cell.id: cell for cell in after.cells}
    changed = set(old) ^ set(new)
    changed |= {cell_id for cell_id in set(old) & set(new)
                if (old[cell_id].source, old[cell_id].cell_type)
                != (new[cell_id].source, new[cell_id].cell_type)}
    order_old = [cell.id for cell in before.cells if cell.id in new]
    order_new = [cell.id for cell in after.cells if cell.id in old]
    matcher = difflib.SequenceMatcher(a=order_old, b=order_new, autojunk=False)
    in_order = {cell_id for block in matcher.get_matching_blocks()
                for cell_id in order_old[block.a:block.a + block.size]}
    return changed | (set(order_old) - in_order)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def uncompilable(nb: nbformat.NotebookNode) -> set[str]:
    bad = set()
    for cell in code_cells(nb):
        try:
            compile(cell.source, cell.id, "exec")
        except SyntaxError:
            bad.add(cell.id)
    return bad


def used_before_defined(nb: nbformat.NotebookNode) -> set[tuple[str, str]]:
    """(function, cell id) pairs where a cell uses a graded function no earlier cell defines."""
    defined: set[str] = set()
    problems = set()
    for cell in code_cells(nb):
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        used = {node.id for node in ast.walk(tree)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        here = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        problems |= {(name, cell.id) for name in (used & set(FUNCTION_CELLS)) - defined - here}
        defined |= here
    return problems


def strict_read(data: bytes) -> nbformat.NotebookNode:
    """Read a submission the way a strict grader must: nbformat 4, valid, with cells."""
    content = json.loads(data.decode("utf-8"))
    if not isinstance(content, dict) or content.get("nbformat") != 4:
        raise ValueError(f"not an nbformat 4 notebook: {str(content)[:60]}")
    nb = nbformat.reads(data.decode("utf-8"), as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    if not nb.cells:
        raise ValueError("the notebook has no cells")
    return nb


def namespace(tf) -> dict:
    """What the notebook's setup cell provides."""
    return {"tf": tf, "np": np, "keras": tf.keras, "layers": tf.keras.layers, "math": math,
            "NOISE_DIM": hw4.NOISE_DIM, "NUM_EPOCHS": 1}


def run_cells(tf, nb: nbformat.NotebookNode, cell_ids: list[str], extra: str = "") -> str | None:
    """Exec the given cells (then ``extra``) in one namespace; return where it failed, if it did."""
    scope = namespace(tf)
    for cell_id in cell_ids:
        try:
            exec(compile(subs.find_cell(nb, cell_id).source, cell_id, "exec"), scope)
        except Exception as error:
            return f"{cell_id}: {type(error).__name__}"
    if extra:
        try:
            exec(extra, scope)
        except Exception as error:
            return f"extra: {type(error).__name__}"
    return None


def load_function(tf, nb: nbformat.NotebookNode, name: str) -> Callable:
    """Exec the cell defining ``name`` in the setup namespace and return the function."""
    cell = subs.find_cell(nb, FUNCTION_CELLS[name])
    scope = namespace(tf)
    exec(compile(cell.source, cell.id, "exec"), scope)
    return scope[name]


# --------------------------------------------------------------------------- behaviour checks
# Each returns a list of problems, empty when the function agrees with the reference.


def close(got, want, rtol: float, atol: float) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=atol)


def leaky_relu_problems(tf, fn: Callable) -> list[str]:
    rng = np.random.default_rng(1)
    problems = []
    for shape in [(7,), (3, 5), (2, 3, 4)]:
        x = tf.constant((rng.normal(size=shape) * 5).astype(np.float32))
        if not close(fn(x), hw4.leaky_relu(x), 1e-5, 1e-6):
            problems.append(f"default alpha, shape {shape}")
        for alpha in (0.01, 0.2, 0.5, 1.5):
            if not close(fn(x, alpha=alpha), hw4.leaky_relu(x, alpha=alpha), 1e-5, 1e-6):
                problems.append(f"alpha {alpha}, shape {shape}")
    return problems


def noise_problems(tf, fn: Callable) -> list[str]:
    tf.random.set_seed(7)
    np.random.seed(7)
    first, second = fn(4000, 5), fn(4000, 5)
    problems = []
    if tf.as_dtype(first.dtype) != tf.float32:
        problems.append(f"dtype: {first.dtype}")
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != (4000, 5):
        return [*problems, f"shape: {first.shape}"]
    if first.min() < -1 or first.max() > 1 or first.min() > -0.99 or first.max() < 0.99:
        problems.append(f"range: [{first.min():.3f}, {first.max():.3f}]")
    if np.array_equal(first, second):
        problems.append("fresh: the same values twice")
    if stats.kstest(first.ravel(), "uniform", args=(-1, 2)).pvalue < 1e-3:
        problems.append("uniform: fails a Kolmogorov-Smirnov test")
    return problems


def weight_count(model) -> int:
    return sum(math.prod(tuple(variable.shape)) for variable in model.weights)


def model_problems(tf, candidate, reference, input_dim: int) -> list[str]:
    """Shape, count and outputs with the reference weights copied in (matched by shape)."""
    x = np.random.default_rng(2).uniform(-1, 1, (6, input_dim)).astype(np.float32)
    try:
        got = candidate(x, training=True)
    except Exception as error:
        return [f"call: {type(error).__name__}"]
    want = reference(x, training=True)
    problems = []
    if tuple(got.shape) != tuple(want.shape):
        problems.append(f"shape: {tuple(got.shape)}")
    if weight_count(candidate) != weight_count(reference):
        problems.append(f"count: {weight_count(candidate):,}")
    if problems:
        return problems
    unused = list(reference.weights)
    for variable in candidate.weights:
        match = next((i for i, ref in enumerate(unused)
                      if tuple(ref.shape) == tuple(variable.shape)), None)
        if match is None:
            return [f"weights: nothing of shape {tuple(variable.shape)} left"]
        variable.assign(np.asarray(unused.pop(match)))
    if not close(candidate(x, training=True), reference(x, training=True), 1e-4, 1e-4):
        problems.append("outputs: differ with the reference weights")
    return problems


def model_builder_problems(reference_builder: Callable, args: tuple, input_dim: int):
    def check(tf, fn: Callable) -> list[str]:
        try:
            candidate = fn(*args)
        except Exception as error:
            return [f"build: {type(error).__name__}"]
        if candidate is None:
            return ["build: None"]
        return model_problems(tf, candidate, reference_builder(*args), input_dim)

    return check


def logits(rng: np.random.Generator, n: int) -> np.ndarray:
    values = rng.normal(size=(n, 1)) * 4
    values[0], values[-1] = 100.0, -100.0
    return values.astype(np.float32)


def loss_problems(reference_loss: Callable, sizes=((5, 3), (2, 7)), moderate: bool = False):
    def check(tf, fn: Callable) -> list[str]:
        rng = np.random.default_rng(3)
        problems = []
        for n_real, n_fake in sizes:
            real, fake = logits(rng, n_real), logits(rng, n_fake)
            if moderate:
                real, fake = np.clip(real, -8, 8), np.clip(fake, -8, 8)
            want = [float(v) for v in reference_loss(tf.constant(real), tf.constant(fake))]
            try:
                got = [float(v) for v in fn(tf.constant(real), tf.constant(fake))]
            except Exception as error:
                problems.append(f"sizes {n_real}/{n_fake}: {type(error).__name__}")
                continue
            if not all(map(math.isfinite, got)):
                problems.append(f"sizes {n_real}/{n_fake}: not finite {got}")
            elif not close(got, want, 1e-4, 1e-4):
                problems.append(f"sizes {n_real}/{n_fake}: {got} != {want}")
        return problems

    return check


def solver_problems(tf, fn: Callable) -> list[str]:
    problems = []
    for kwargs, lr, beta1 in [({}, 1e-3, 0.5), ({"learning_rate": 2.5e-4, "beta1": 0.3}, 2.5e-4,
                                                 0.3)]:
        solvers = fn(**kwargs)
        if not isinstance(solvers, (tuple, list)) or len(solvers) != 2:
            return [f"not two optimizers: {solvers!r}"]
        if solvers[0] is solvers[1]:
            problems.append("the same optimizer twice")
        for solver in solvers:
            if not isinstance(solver, tf.keras.optimizers.Adam):
                problems.append(f"{kwargs}: {type(solver).__name__}, not Adam")
            elif not (math.isclose(float(solver.learning_rate), lr, rel_tol=1e-5)
                      and math.isclose(float(solver.beta_1), beta1, rel_tol=1e-5)):
                problems.append(f"{kwargs}: lr {float(solver.learning_rate)}, "
                                f"beta_1 {float(solver.beta_1)}")
    return problems


def densities(seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.01, 3.0, 40), rng.uniform(0.01, 3.0, 40)


def optimal_d_gan_problems(tf, fn: Callable) -> list[str]:
    p_data, p_model = densities()
    ok = close(fn(p_data, p_model), hw4.optimal_d_gan(p_data, p_model), 1e-4, 1e-6)
    return [] if ok else ["values differ"]


def optimal_d_lsgan_problems(tf, fn: Callable) -> list[str]:
    p_data, p_model = densities()
    problems = []
    if not close(fn(p_data, p_model), hw4.optimal_d_lsgan(p_data, p_model), 1e-4, 1e-6):
        problems.append("defaults")
    for a, b in [(0.0, 1.0), (-2.0, 3.0), (1.0, 0.0)]:
        want = hw4.optimal_d_lsgan(p_data, p_model, a=a, b=b)
        if not close(fn(p_data, p_model, a=a, b=b), want, 1e-4, 1e-6):
            problems.append(f"a={a}, b={b}")
    return problems


def vae_kl_problems(tf, fn: Callable) -> list[str]:
    rng = np.random.default_rng(5)
    mu, log_var = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    got = fn(mu, log_var)
    if got is None:
        return ["returns None"]
    return [] if close(got, hw4.vae_kl(mu, log_var), 1e-4, 1e-6) else ["values or shape differ"]


CHECKS: dict[str, Callable] = {
    "leaky_relu": leaky_relu_problems,
    "sample_noise": noise_problems,
    "discriminator": model_builder_problems(hw4.discriminator, (), 784),
    "generator": model_builder_problems(hw4.generator, (4,), 4),
    "gan_loss": loss_problems(hw4.gan_loss),
    "get_solvers": solver_problems,
    "lsgan_loss": loss_problems(hw4.lsgan_loss),
    "dc_discriminator": model_builder_problems(hw4.dc_discriminator, (), 784),
    "dc_generator": model_builder_problems(hw4.dc_generator, (4,), 4),
    "optimal_d_gan": optimal_d_gan_problems,
    "optimal_d_lsgan": optimal_d_lsgan_problems,
    "vae_kl": vae_kl_problems,
}


def problems_of(tf, name: str, function: str | None = None) -> list[str]:
    variant = subs.variant_by_name(name)
    function = function or variant.function
    try:
        fn = load_function(tf, subs.render(variant, SOLUTION), function)
    except SyntaxError as error:
        return [f"syntax: {error.msg}"]
    try:
        return CHECKS[function](tf, fn)
    except Exception as error:  # a wrong function may fail in any way
        return [f"raises: {type(error).__name__}: {error}"]


# --------------------------------------------------------------------------- the corpus


def test_names_are_unique_and_usable_as_file_names():
    all_names = names(VARIANTS)
    assert len(all_names) == len(set(all_names))
    assert all(name.isidentifier() for name in all_names)


def test_tables_name_real_variants():
    all_names = set(names(VARIANTS))
    assert set(FAILS_BECAUSE) <= {v.name for v in FUNCTION_VARIANTS}
    assert set(SYNTAX_ERRORS) <= all_names


def test_every_kind_is_represented():
    assert {variant.kind for variant in VARIANTS} == set(subs.KINDS)
    assert len([v for v in VARIANTS if v.kind == subs.CORRECT]) >= 10


def test_every_graded_function_has_a_correct_and_a_wrong_variant():
    for function in FUNCTION_CELLS:
        mine = [v for v in FUNCTION_VARIANTS if v.function == function]
        assert any(function in v.loses for v in mine), f"no mistake in {function}"
        if function != "optimal_d_gan":  # one formula, little room for different-but-right
            assert any(v.kind == subs.CORRECT for v in mine), f"no correct variant of {function}"


def test_loses_and_full_are_consistent():
    for variant in VARIANTS:
        assert variant.loses <= set(UNIT_ITEMS), variant.name
        assert variant.full == (not variant.loses), variant.name
        if variant.kind == subs.CORRECT:
            assert variant.full, variant.name
        if variant.invalid:
            assert variant.loses == set(UNIT_ITEMS), variant.name
        if variant.kind == subs.TEMPLATE:
            assert variant.loses == set(UNIT_ITEMS) - {"runs_clean"}, variant.name
        if variant.function and variant.kind in (subs.CORRECT, subs.MISTAKE):
            # a rewrite of one function loses at most that function and runs_clean
            assert variant.loses <= {variant.function, "runs_clean"}, variant.name


def test_patches_are_named_as_the_kernel_prelude_records_them():
    recorded = {"numpy.allclose", "numpy.save", "keras.Model.count_params",
                "keras.layers.Layer.count_params"}
    for variant in VARIANTS:
        assert variant.patched <= recorded, variant.name
    assert any(v.patched and not v.loses for v in VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS, ids=names(VARIANTS))
def test_variant_builds_and_leaves_the_solution_alone(variant):
    before = nbformat.writes(SOLUTION)
    submission = subs.render(variant, SOLUTION)
    assert nbformat.writes(SOLUTION) == before, "the builder changed the solution it was given"
    if variant.is_raw:
        assert isinstance(submission, bytes)
    else:
        assert isinstance(submission, nbformat.NotebookNode)
        nbformat.validate(submission)  # even the empty notebook is well-formed nbformat


@pytest.mark.parametrize("variant", NOTEBOOK_VARIANTS, ids=names(NOTEBOOK_VARIANTS))
def test_edits_land_exactly_in_the_intended_cells(variant):
    submission = subs.render(variant, SOLUTION)
    if variant.name == "empty_notebook":
        assert submission.cells == []
        return
    assert variant.cells, f"{variant.name} does not say which cells it changes"
    assert changed_cells(SOLUTION, submission) == set(variant.cells)


@pytest.mark.parametrize("variant", VARIANTS, ids=names(VARIANTS))
def test_only_invalid_variants_fail_a_strict_reader(variant, tmp_path):
    path = subs.write_variant(variant, subs.SOLUTION_PATH, tmp_path)
    assert path == tmp_path / f"{variant.name}.ipynb"
    data = path.read_bytes()
    if variant.invalid:
        with pytest.raises((ValueError, UnicodeDecodeError, nbformat.ValidationError)):
            strict_read(data)
    else:
        assert strict_read(data) == subs.render(variant, SOLUTION)


def test_raw_variants_are_what_they_claim():
    assert build("nbformat_v3")  # bytes
    v3 = json.loads(build("nbformat_v3"))
    assert v3["nbformat"] == 3 and "worksheets" in v3
    assert json.loads(build("nbformat_unknown_major"))["nbformat"] == 5
    truncated = build("truncated_file")
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)
    assert nbformat.writes(SOLUTION).encode().startswith(truncated)


@pytest.mark.parametrize("variant", NOTEBOOK_VARIANTS, ids=names(NOTEBOOK_VARIANTS))
def test_cells_compile_except_the_intended_syntax_errors(variant):
    assert uncompilable(subs.render(variant, SOLUTION)) == SYNTAX_ERRORS.get(variant.name, set())


@pytest.mark.parametrize("variant", NOTEBOOK_VARIANTS, ids=names(NOTEBOOK_VARIANTS))
def test_a_cell_that_cannot_run_costs_runs_clean(variant):
    """A syntax error or a use before definition is an error, so runs_clean must be lost."""
    submission = subs.render(variant, SOLUTION)
    broken = uncompilable(submission) or used_before_defined(submission)
    if broken:
        assert "runs_clean" in variant.loses, broken
    elif variant.kind in (subs.CORRECT, subs.MISTAKE) and "runs_clean" not in variant.loses:
        assert not broken


def test_reordered_variants_use_nothing_before_it_is_defined():
    assert not used_before_defined(SOLUTION)
    for name in ("dc_generator_cell_early", "dcgan_section_before_lsgan", "theory_cells_at_end"):
        assert not used_before_defined(build(name)), name
    assert used_before_defined(build("dc_generator_cell_at_end")) == {
        ("dc_generator", "dc-generator-check"), ("dc_generator", "train-dcgan")}


# --------------------------------------------------------------------------- helpers


def test_replace_in_cell_fails_loudly():
    nb = subs.load_solution()
    with pytest.raises(AssertionError, match="not found"):
        subs.replace_in_cell(nb, "leaky-relu", "tf.nn.leaky_relu", "x")
    with pytest.raises(AssertionError, match="occurs 1 times, expected 2"):
        subs.replace_in_cell(nb, "leaky-relu", "tf.where(", "x", count=2)
    with pytest.raises(AssertionError, match="no cell with id"):
        subs.replace_in_cell(nb, "no-such-cell", "a", "b")
    with pytest.raises(AssertionError, match="itself"):
        subs.replace_in_cell(nb, "leaky-relu", "alpha", "alpha")
    assert nbformat.writes(nb) == nbformat.writes(SOLUTION)


def test_cell_helpers():
    nb = subs.load_solution()
    subs.insert_cell_after(nb, "setup", "x = 1", "new-cell")
    assert [cell.id for cell in nb.cells[1:3]] == ["setup", "new-cell"]
    with pytest.raises(AssertionError, match="already exists"):
        subs.insert_cell_after(nb, "setup", "x = 2", "new-cell")
    subs.move_cell(nb, "new-cell")
    assert nb.cells[-1].id == "new-cell"
    subs.move_cell(nb, "new-cell", after="intro")
    assert nb.cells[1].id == "new-cell"
    subs.set_cell(nb, "new-cell", "x = 3")
    assert subs.find_cell(nb, "new-cell").source == "x = 3"
    subs.delete_cell(nb, "new-cell")
    subs.blank_cell(nb, "vae-kl")
    assert "pass" in subs.find_cell(nb, "vae-kl").source
    assert changed_cells(SOLUTION, nb) == {"vae-kl"}
    nbformat.validate(nb)


# --------------------------------------------------------------------------- behaviour


def test_the_checks_accept_the_reference(tf):
    for function, check in CHECKS.items():
        assert check(tf, load_function(tf, SOLUTION, function)) == [], function


@pytest.mark.parametrize("variant", FUNCTION_VARIANTS, ids=names(FUNCTION_VARIANTS))
def test_rewritten_function_behaves_as_claimed(tf, variant):
    problems = problems_of(tf, variant.name)
    if variant.function in variant.loses:
        assert problems, f"{variant.name} claims to lose {variant.function} but agrees with it"
    else:
        assert problems == [], f"{variant.name} claims to be right: {problems}"
    if variant.name in FAILS_BECAUSE:
        assert {problem.split(":")[0] for problem in problems} == FAILS_BECAUSE[variant.name], \
            problems


def test_subtle_mistakes_pass_the_easy_inputs(tf):
    """These are only caught by the hidden probes' harder inputs, as their descriptions say."""
    fixed_alpha = load_function(tf, build("leaky_relu_fixed_alpha"), "leaky_relu")
    x = tf.constant([-3.0, -0.5, 2.0])
    assert close(fixed_alpha(x), hw4.leaky_relu(x), 1e-6, 1e-7)
    assert not close(fixed_alpha(x, alpha=0.2), hw4.leaky_relu(x, alpha=0.2), 1e-6, 1e-7)

    equal_sizes = loss_problems(hw4.gan_loss, sizes=((4, 4), (6, 6)))
    assert equal_sizes(tf, load_function(tf, build("gan_loss_concatenated_batch"), "gan_loss")) \
        == []
    moderate = loss_problems(hw4.gan_loss, moderate=True)
    sigmoid_log = load_function(tf, build("gan_loss_sigmoid_log"), "gan_loss")
    assert moderate(tf, sigmoid_log) == []
    assert all("not finite" in p for p in CHECKS["gan_loss"](tf, sigmoid_log))

    p_data, p_model = densities()
    ignores = load_function(tf, build("optimal_d_lsgan_ignores_targets"), "optimal_d_lsgan")
    assert close(ignores(p_data, p_model), hw4.optimal_d_lsgan(p_data, p_model), 1e-9, 0)
    assert optimal_d_lsgan_problems(tf, ignores) != []

    hard_coded = load_function(tf, build("get_solvers_hard_coded"), "get_solvers")
    assert [p for p in solver_problems(tf, hard_coded) if p.startswith("{}")] == []


def test_collateral_runs_clean_losses_are_real(tf):
    """Mistakes that also cost runs_clean make a public cell raise; the solution's do not."""
    assert run_cells(tf, build("discriminator_without_input_layer"),
                     ["helpers", "discriminator", "discriminator-check"], "") is None
    cases = [
        ("generator_ignores_noise_dim", ["helpers", "generator", "generator-check"], "",
         "generator-check: ValueError"),
        ("dc_generator_valid_padding", ["dc-discriminator", "dc-generator"],
         "dc_discriminator()(dc_generator()(tf.zeros([2, NOISE_DIM])))", "extra: ValueError"),
    ]
    for name, cell_ids, extra, failure in cases:
        assert run_cells(tf, SOLUTION, cell_ids, extra) is None, name
        assert run_cells(tf, build(name), cell_ids, extra) == failure, name


def test_cheats_keep_correct_work_correct(tf):
    # The patched variants define the very same functions as the solution except where stated.
    for name in ("count_params_patch_only", "allclose_patch", "check_cell_expects_wrong_count",
                 "check_cells_deleted", "output_flood_cell"):
        submission = build(name)
        for function, cell_id in FUNCTION_CELLS.items():
            assert subs.find_cell(submission, cell_id).source == \
                subs.find_cell(SOLUTION, cell_id).source, (name, function)


def test_blank_template_implements_nothing(tf):
    template = build("blank_template")
    arguments = {
        "leaky_relu": (tf.zeros([2]),), "sample_noise": (2, 3), "discriminator": (),
        "generator": (4,), "gan_loss": (tf.zeros([2, 1]), tf.zeros([2, 1])), "get_solvers": (),
        "lsgan_loss": (tf.zeros([2, 1]), tf.zeros([2, 1])), "dc_discriminator": (),
        "dc_generator": (4,), "optimal_d_gan": (np.ones(2), np.ones(2)),
        "optimal_d_lsgan": (np.ones(2), np.ones(2)), "vae_kl": (np.ones((2, 2)), np.ones((2, 2))),
    }
    assert set(arguments) == set(FUNCTION_CELLS)
    for function, args in arguments.items():
        assert load_function(tf, template, function)(*args) is None, function
