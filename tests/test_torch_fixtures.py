"""Cheap checks that the PyTorch fixture corpus (tests/fixtures/torch_submissions.py) is
honest, without a kernel.

Each variant is written to disk in its layout and read back; its driver notebook's cells
compile; and the graded functions it holds are executed here, in-process with real
torch, and judged against ``reference/hw4_torch.py`` the way the grader's probes judge them
(the reference's weights copied in by layer order, unequal loss batches, a distribution
test for the noise): the items judged wrong must be exactly the variant's ``loses``
(``runs_clean`` aside, which needs a kernel).
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable

import nbformat
import numpy as np
import pytest

from tests.fixtures import torch_submissions as ts
from tests.fixtures.torch_submissions import TORCH_VARIANTS, Generation, Layout, TorchVariant

torch = pytest.importorskip("torch")

from grader.frameworks.torch.weights import torch_layers  # noqa: E402
from reference import hw4_torch as ref  # noqa: E402

BATCH = 128  # the DC networks are probed at the course's batch size
TOL = {"rtol": 1e-4, "atol": 1e-4}
PRELUDE = """\
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.nn import init
from torch.utils.data import sampler
NOISE_DIM = 96
batch_size = 128
dtype = torch.FloatTensor
"""
NAMES = [variant.name for variant in TORCH_VARIANTS]


def _decuda(code: str) -> str:
    """The code with its GPU placements removed (what a CPU grader must arrange somehow)."""
    return (code.replace(".cuda()", "").replace("device='cuda'", "device='cpu'")
            .replace("torch.cuda.FloatTensor", "torch.FloatTensor"))


def student_source(variant: TorchVariant) -> str:
    """What defines the graded functions: the module file, or the notebook's function cells
    after the given helpers."""
    if variant.layout != Layout.NOTEBOOK:
        return ts.module_source(variant)
    cells = {cell.id: cell.source for cell in ts.build_driver(variant).cells}
    parts = [cells[part.replace("_", "-")] for part in ts.PART_ORDER]
    return PRELUDE + ts.given_helpers() + "\n\n\n" + "\n\n\n".join(parts)


def student_namespace(variant: TorchVariant) -> dict:
    source = _decuda(student_source(variant)) if variant.cuda else student_source(variant)
    namespace: dict = {"__name__": f"student_{variant.name}"}
    exec(compile(source, variant.name, "exec"), namespace)
    return namespace


# --------------------------------------------------------------------------- judges


def transplant(source, target) -> bool:
    """Copy ``source``'s values into ``target`` layer by layer (by order, not key); False
    when their layers do not line up."""
    src, dst = torch_layers(source.state_dict()), torch_layers(target.state_dict())
    if [(list(p), [v.shape for v in p.values()]) for _, p in src] != \
            [(list(p), [v.shape for v in p.values()]) for _, p in dst]:
        return False
    state = {(f"{prefix}." if prefix else "") + name: torch.from_numpy(value.copy())
             for (_, values), (prefix, _) in zip(src, dst) for name, value in values.items()}
    result = target.load_state_dict(state, strict=False)
    return not result.unexpected_keys


def _model_right(student, reference, x) -> bool:
    if not transplant(reference, student):
        return False
    with torch.no_grad():
        got, want = student(x), reference(x)
    return tuple(got.shape) == tuple(want.shape) and np.allclose(got, want, **TOL)


def _image_input(generation: str, seed: int = 0):
    images = torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return images.view(BATCH, 784) if generation == Generation.UMICH else images


def _noise(seed: int = 1):
    return torch.rand(BATCH, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def judge_sample_noise(ns: dict, generation: str) -> bool:
    first, second = ns["sample_noise"](1000, 7), ns["sample_noise"](1000, 7)
    big = ns["sample_noise"](20000, 1).numpy().ravel()
    from scipy import stats

    return (torch.is_tensor(first) and first.dtype == torch.float32
            and tuple(first.shape) == (1000, 7) and bool(first.min() >= -1)
            and bool(first.max() <= 1) and not torch.equal(first, second)
            and stats.kstest(big, stats.uniform(-1, 2).cdf).pvalue > 1e-4)


def judge_network(function: str, reference: Callable, args: tuple, x) -> Callable:
    def judge(ns: dict, generation: str) -> bool:
        call_args = args
        if function == "build_dc_classifier" and generation == Generation.MODULE:
            call_args = (BATCH,)
        torch.manual_seed(0)
        return _model_right(ns[function](*call_args), reference(*args), x(generation))
    return judge


def _loss_cases(generation: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(4)
    shape = (lambda n: (n,)) if generation == Generation.UMICH else (lambda n: (n, 1))
    return [(rng.normal(size=shape(7)), rng.normal(size=shape(3))),
            (rng.normal(size=shape(5)) * 20, rng.normal(size=shape(9)) * 20),
            (rng.uniform(-100, 100, size=shape(6)), rng.uniform(-100, 100, size=shape(4)))]


def _scalar(value) -> float | None:
    array = np.asarray(value.detach() if torch.is_tensor(value) else value, dtype=np.float64)
    return float(array.ravel()[0]) if array.size == 1 else None


def judge_losses(d_name: str, g_name: str, d_ref: Callable, g_ref: Callable) -> Callable:
    def judge(ns: dict, generation: str) -> bool:
        for real, fake in _loss_cases(generation):
            r, f = torch.tensor(real, dtype=torch.float32), torch.tensor(fake, dtype=torch.float32)
            got = (_scalar(ns[d_name](r, f)), _scalar(ns[g_name](f)))
            r64, f64 = torch.tensor(real), torch.tensor(fake)
            want = (float(d_ref(r64, f64)), float(g_ref(f64)))
            if None in got or not np.allclose(got, want, **TOL):
                return False
        return True
    return judge


def judge_get_optimizer(ns: dict, generation: str) -> bool:
    optimizer = ns["get_optimizer"](ref.discriminator())
    group = optimizer.param_groups[0]
    return (isinstance(optimizer, torch.optim.Adam) and np.isclose(group["lr"], 1e-3)
            and np.allclose(group["betas"], (0.5, 0.999)))


JUDGES: dict[str, Callable[[dict, str], bool]] = {
    "sample_noise": judge_sample_noise,
    "discriminator": judge_network("discriminator", ref.discriminator, (), _image_input),
    "generator": judge_network("generator", ref.generator, (4,), lambda g: _noise()),
    "gan_loss": judge_losses("discriminator_loss", "generator_loss", ref.discriminator_loss,
                             ref.generator_loss),
    "get_solvers": judge_get_optimizer,
    "lsgan_loss": judge_losses("ls_discriminator_loss", "ls_generator_loss",
                               ref.ls_discriminator_loss, ref.ls_generator_loss),
    "dc_discriminator": judge_network("build_dc_classifier", ref.build_dc_classifier, (),
                                      _image_input),
    "dc_generator": judge_network("build_dc_generator", ref.build_dc_generator, (4,),
                                  lambda g: _noise()),
}


def judged_wrong(variant: TorchVariant) -> set[str]:
    ns = student_namespace(variant)
    wrong = set()
    for item, judge in JUDGES.items():
        try:
            right = judge(ns, variant.generation)
        except Exception:
            right = False
        if not right:
            wrong.add(item)
    return wrong


# --------------------------------------------------------------------------- tests


def test_the_judges_pass_the_reference_itself():
    namespace = vars(ref)
    for item, judge in JUDGES.items():
        assert judge(namespace, Generation.MODULE), item


@pytest.mark.parametrize("name", NAMES)
def test_functions_lose_exactly_what_the_variant_claims(name):
    variant = ts.torch_variant_by_name(name)
    assert judged_wrong(variant) == variant.loses - {"runs_clean"}


@pytest.mark.parametrize("name", NAMES)
def test_variant_is_written_in_its_layout_and_its_cells_compile(tmp_path, name):
    variant = ts.torch_variant_by_name(name)
    path = ts.write_torch_variant(variant, tmp_path)
    if variant.layout == Layout.NOTEBOOK:
        assert path.suffix == ".ipynb"
        notebook_text = path.read_text()
    elif variant.layout == Layout.FOLDER:
        assert path.is_dir()
        notebooks = list(path.glob("*.ipynb"))
        assert len(notebooks) == 1
        notebook_text = notebooks[0].read_text()
        module = path / ("gan.py" if variant.generation == Generation.UMICH
                         else f"{variant.package}/gan_pytorch.py")
        compile(module.read_text(), str(module), "exec")
    else:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            assert all(n.startswith(f"{variant.name}/") for n in names)
            driver = [n for n in names if n.endswith(".ipynb")]
            assert len(driver) == 1 and f"{variant.name}/{variant.package}/gan_pytorch.py" in names
            notebook_text = archive.read(driver[0]).decode()
    notebook = nbformat.reads(notebook_text, as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    json.loads(notebook_text)
    sources = [cell.source for cell in notebook.cells]
    assert any("download=True" in s and "MNIST" in s for s in sources)
    assert any("run_a_gan(" in s for s in sources if not s.startswith("def run_a_gan"))
    for cell in notebook.cells:
        python = "\n".join(line for line in cell.source.splitlines()
                           if not line.lstrip().startswith(("%", "!")))
        compile(python, f"{variant.name}:{cell.id}", "exec")


def test_the_corpus_covers_the_generations_layouts_and_hazards():
    assert {v.generation for v in TORCH_VARIANTS} == set(Generation.ALL)
    assert {v.layout for v in TORCH_VARIANTS} == {Layout.NOTEBOOK, Layout.FOLDER, Layout.ZIP}
    assert {v.package for v in TORCH_VARIANTS if v.generation == Generation.MODULE} \
        >= {"cs231n", "comp411", "cs682"}
    assert len(set(NAMES)) == len(NAMES)
    lost = {item for v in TORCH_VARIANTS if v.kind == ts.MISTAKE for item in v.loses}
    assert lost >= {"sample_noise", "discriminator", "generator", "gan_loss", "get_solvers",
                    "lsgan_loss", "dc_discriminator", "dc_generator"}
    assert sum(v.cuda for v in TORCH_VARIANTS) >= 2


def test_the_cuda_variants_really_need_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the hard-coded CUDA runs")
    variant = ts.torch_variant_by_name("cuda_inside_functions")
    namespace: dict = {"__name__": "student"}
    exec(compile(ts.module_source(variant), variant.name, "exec"), namespace)
    with pytest.raises((RuntimeError, AssertionError)):
        namespace["sample_noise"](2, 3)
    dtype_cell = next(c.source for c in ts.build_driver(ts.torch_variant_by_name(
        "cuda_dtype_line")).cells if c.id == "dtype")
    assert "dtype = torch.cuda.FloatTensor" in dtype_cell
    with pytest.raises((RuntimeError, AssertionError, TypeError)):
        torch.zeros(2).type(torch.cuda.FloatTensor)


def test_the_old_api_cells_fail_on_todays_torch_for_the_librarys_age_only():
    sources = {c.id: c.source for c in ts.build_driver(ts.torch_variant_by_name(
        "t2017_correct")).cells}
    assert "Variable(" in sources["run-a-gan"] and ".data[0]" in sources["run-a-gan"]
    assert "loader_train.__iter__().next()" in sources["data"]
    loader = torch.utils.data.DataLoader(torch.zeros(4, 2), batch_size=2)
    with pytest.raises(AttributeError):
        loader.__iter__().next()
    with pytest.raises(IndexError):
        torch.tensor(1.5).data[0]


def test_the_edited_noise_test_passes_wrong_noise():
    variant = ts.torch_variant_by_name("edited_noise_test")
    namespace = student_namespace(variant)
    check = next(c.source for c in ts.build_driver(variant).cells if c.id == "sample-noise-check")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(check, "check", "exec"), namespace)
    assert "All tests passed!" in out.getvalue()
    assert not judge_sample_noise(namespace, variant.generation)


@pytest.mark.parametrize(("name", "function", "args", "x"), [
    ("dc_generator_image_shaped", "build_dc_generator", (4,), _noise),
    ("generator_image_shaped", "generator", (4,), _noise),
])
def test_image_shaped_outputs_hold_the_right_values(name, function, args, x):
    """Only the shape is wrong: flattened, the values are the reference's (so the
    shape_deduction rule, 1 point, is all these lose)."""
    namespace = student_namespace(ts.torch_variant_by_name(name))
    student, reference = namespace[function](*args), getattr(ref, function)(*args)
    assert transplant(reference, student)
    with torch.no_grad():
        got, want = student(x()), reference(x())
    assert tuple(got.shape) == (BATCH, 1, 28, 28)
    np.testing.assert_allclose(got.reshape(BATCH, 784), want, **TOL)


def test_the_batch_tied_networks_break_only_at_other_batch_sizes():
    namespace = student_namespace(ts.torch_variant_by_name("batch_tied_unflatten_literal"))
    model = namespace["build_dc_classifier"](7)
    assert tuple(model(torch.zeros(BATCH, 784)).shape) == (BATCH, 1)
    with pytest.raises(RuntimeError):
        model(torch.zeros(5, 784))


def test_the_concatenated_and_one_label_losses_are_right_for_equal_batches():
    """They lose gan_loss / lsgan_loss only through the unequal batches (the TF rule)."""
    for name in ("gan_loss_concatenated", "gan_loss_one_label_tensor",
                 "gan_loss_wrong_batch_divisor"):
        namespace = student_namespace(ts.torch_variant_by_name(name))
        real, fake = torch.randn(6, 1) * 5, torch.randn(6, 1) * 5
        np.testing.assert_allclose(float(namespace["discriminator_loss"](real, fake)),
                                   float(ref.discriminator_loss(real, fake)), rtol=1e-5)
    for name in ("lsgan_one_mean", "lsgan_wrong_batch_divisor"):
        namespace = student_namespace(ts.torch_variant_by_name(name))
        real, fake = torch.randn(6, 1), torch.randn(6, 1)
        np.testing.assert_allclose(float(namespace["ls_discriminator_loss"](real, fake)),
                                   float(ref.ls_discriminator_loss(real, fake)), rtol=1e-5)


def test_checks_file_has_the_courses_keys():
    arrays = ts.checks_arrays()
    assert {"logits_real", "logits_fake", "d_loss_true", "g_loss_true", "d_loss_lsgan_true",
            "g_loss_lsgan_true"} <= set(arrays)
    real, fake = torch.tensor(arrays["logits_real"]), torch.tensor(arrays["logits_fake"])
    np.testing.assert_allclose(float(ref.discriminator_loss(real, fake)), arrays["d_loss_true"])
    np.testing.assert_allclose(float(ref.ls_generator_loss(fake)), arrays["g_loss_lsgan_true"])
