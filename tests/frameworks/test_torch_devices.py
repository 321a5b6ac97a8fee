"""The PyTorch edition's GPU path, tested as far as a machine without a GPU can: what each
``--device`` gives the torch kernel set-up, the CUDA-to-CPU shims installed or not (in a real
kernel), the warning's wording, the grader's training loop on the kernel's device, and the
refusal of ``--device gpu`` where there is no GPU, and the grade that stops where the kernel
cannot use the GPU it was given. The tests that need a GPU skip without one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.exceptions import KernelNotPrepared
from grader.frameworks.torch.framework import TorchFramework, cuda_warning, on_gpu, setup_config
from grader.frameworks.torch.library import cuda_build
from grader.kernel import loader
from grader.pipeline.devices import Device
from grader.pipeline.execute import Bounds, KernelSession, kernel_environment
from grader.pipeline.sandbox import Layout, bubblewrap_problem, choose_sandbox

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TORCH_NOTEBOOK = ROOT / "reference" / "HW4_solution_torch.ipynb"
TF_NOTEBOOK = ROOT / "examples" / "submissions" / "alice.ipynb"
CUDA_CODE = "dtype = torch.cuda.FloatTensor\nx = torch.zeros(3).cuda()\n"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")


def test_the_kernel_keeps_real_cuda_only_on_a_gpu_grade():
    assert [on_gpu(device, built) for device in (Device.CPU, Device.GPU)
            for built in (True, False)] == [False, False, True, False]
    assert setup_config(["cs231n.gan_pytorch"], gpu=True) == {
        "modules": ["cs231n.gan_pytorch"], "gpu": True}
    assert setup_config([], gpu=False) == {"modules": [], "gpu": False}


def test_the_kernel_side_falls_back_to_the_cpu_where_pytorch_sees_no_gpu():
    from reference.reference_runs import kernel_module

    setup = kernel_module("torch/setup", before=("prelude",))
    sys.modules.pop(loader.module_name("torch/setup"))  # this process as it was
    assert [setup.on_gpu(given, available) for given in (True, False)
            for available in (True, False)] == [True, False, False, False]
    assert setup.DEVICE == "cpu"  # until its setup() finds a GPU to keep


def test_the_warning_names_where_the_cuda_calls_ran(tmp_path):
    gpu = cuda_warning([".cuda()"], gpu=True)
    cpu = cuda_warning([".cuda()"], gpu=False)
    assert gpu.startswith("graded on the GPU") and "CPU" not in gpu
    assert cpu.startswith("graded on the CPU") and "--device gpu" in cpu
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\n" + CUDA_CODE)])
    for device in (Device.CPU, Device.GPU):
        (tmp_path / device).mkdir()
        setup = TorchFramework().prepare(notebook, tmp_path / device, device=device)
        on = device == Device.GPU and cuda_build()
        assert cuda_warning([".cuda()", "torch.cuda.FloatTensor"], on) in setup.warnings
        assert any("CPU-only build" in text for text in setup.warnings) == (
            device == Device.GPU and not cuda_build())
        # the device the kernel trains on, by which the pipeline judges convergence: a
        # CPU-only build on a GPU grade trains, and is judged, as on the CPU
        assert setup.device == (Device.GPU if on else Device.CPU)


KERNEL_REPORT = """\
import json, sys, torch
setup = sys.modules[{module!r}]
moved = torch.zeros(2).cuda().device.type  # raises without a GPU unless shimmed
print(json.dumps({{"config": setup.CONFIG, "device": setup.DEVICE, "moved": moved,
                  "shimmed": "cuda_calls_on_cpu" in torch.Tensor.cuda.__qualname__,
                  "float_tensor": torch.cuda.FloatTensor is torch.FloatTensor}}))
"""


def kernel_report(tmp_path: Path, device: str) -> dict:
    """What the torch set-up of a real kernel of a ``device`` grade installed."""
    root = tmp_path / device
    files, work, home = root / "files", root / "work", root / "home"
    for folder in (files, work, home):
        folder.mkdir(parents=True)
    code = KERNEL_REPORT.format(module=loader.module_name("torch/setup"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    setup = TorchFramework().prepare(notebook, files, device=device)
    sandbox = choose_sandbox(bubblewrap_problem() is None, device, 0)
    with KernelSession(notebook, work, Bounds(cell_timeout=120),
                       kernel_environment(home, device, threads=1, gpu_index=0),
                       {"seed": 0, "mnist_npz": "", "gpu": setup.device == Device.GPU},
                       setup_code=setup.setup_code,
                       sandbox=sandbox, layout=Layout(root=root, files=files, workdir=work,
                                                      home=home)) as session:
        execution = session.run_notebook()
    assert [cell.status for cell in execution.cells] == ["ok"], execution.cells
    return json.loads(notebook.cells[0].outputs[0]["text"])


@pytest.mark.parametrize("device", [Device.CPU, Device.GPU])
def test_the_shims_are_installed_unless_the_kernel_has_a_gpu(tmp_path, device):
    """A CPU grade always gets the shims; a GPU grade keeps real CUDA. Where the kernel's
    PyTorch finds no GPU on a GPU grade (this machine), its set-up stops before the notebook
    runs: trained on the CPU, it would be judged by a GPU's budgets and lines."""
    asked = device == Device.GPU and cuda_build()
    if asked and not torch.cuda.is_available():
        with pytest.raises(KernelNotPrepared, match="the grade gave this kernel a GPU and "
                                                    "PyTorch finds none in it"):
            kernel_report(tmp_path, device)
        return
    report = kernel_report(tmp_path, device)
    assert report["config"] == {"modules": [], "gpu": asked}
    assert report["device"] == ("cuda" if asked else "cpu")
    assert report["shimmed"] == report["float_tensor"] == (not asked)
    assert report["moved"] == ("cuda" if asked else "cpu")


def test_the_training_loop_trains_on_the_device_the_set_up_chose(tmp_path):
    """Without a GPU, the set-up's choice is followed to a device every machine has: the
    networks and their optimizers' parameters are put there before the optimizers exist."""
    from reference.reference_runs import kernel_module, torch_reference_parts

    train = kernel_module("torch/train", before=("torch/layout",))
    assert train.training_device() == "cpu"  # no set-up in this process: the CPU
    setup = kernel_module("torch/setup", before=("prelude",))
    setup.DEVICE = "meta"  # a device of shapes only, that every PyTorch has
    try:
        session = train.TrainingSession(torch_reference_parts("gan"), seed=0)
    finally:  # this process as it was: no set-up module
        sys.modules.pop(loader.module_name("torch/setup"), None)
    assert session.device.type == "meta"
    for network, solver in ((session.D, session.D_solver), (session.G, session.G_solver)):
        assert {p.device.type for p in network.parameters()} == {"meta"}
        assert {p.device.type for group in solver.param_groups
                for p in group["params"]} == {"meta"}


@needs_gpu
def test_the_training_loop_trains_on_the_gpu(tmp_path):
    import numpy as np

    from reference.reference_runs import kernel_module, torch_reference_parts

    train = kernel_module("torch/train", before=("torch/layout",))
    session = train.TrainingSession(torch_reference_parts("gan"), seed=0, device="cuda")
    images = np.random.default_rng(0).uniform(-1, 1, (256, 784)).astype(np.float32)
    chunk = session.run(images, np.arange(256).reshape(2, 128))
    assert chunk["steps"] == 2 and next(session.G.parameters()).is_cuda
    samples = session.sample(np.zeros((4, 96), dtype=np.float32))
    assert samples.shape == (4, 784)


def test_device_gpu_without_a_gpu_is_refused_as_for_tensorflow(tmp_path):
    """A machine without a GPU (an ``nvidia-smi`` that lists none): the PyTorch notebook
    is refused exactly as the TensorFlow one, with exit 2 and one line."""
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    shutil.copy(TORCH_NOTEBOOK, tmp_path / "torch.ipynb")
    shutil.copy(TF_NOTEBOOK, tmp_path / "alice.ipynb")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    errors = []
    for notebook in ("torch.ipynb", "alice.ipynb"):
        done = subprocess.run([sys.executable, "-m", "grader.cli", "check", notebook,
                               "--device", "gpu"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        errors.append(done.stderr)
    assert errors[0] == errors[1] == (
        "hw4grade: --device gpu: no GPU is visible (nvidia-smi finds none)\n")


def test_a_gpu_the_kernel_cannot_use_stops_the_grade_with_the_machines_fault(tmp_path):
    """A machine whose ``nvidia-smi`` lists a GPU that the kernel's library cannot use (no
    driver, no device files in the sandbox; here, no GPU at all): the PyTorch and the
    TensorFlow notebook each end as not graded, the machine's fault, to be graded again,
    never with points judged by a GPU's budgets on the CPU."""
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Stand-in GPU (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    shutil.copy(TORCH_NOTEBOOK, tmp_path / "torch.ipynb")
    shutil.copy(TF_NOTEBOOK, tmp_path / "alice.ipynb")
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for notebook, library in (("torch.ipynb", "PyTorch"), ("alice.ipynb", "TensorFlow")):
        done = subprocess.run([sys.executable, "-m", "grader.cli", "check", notebook,
                               "--device", "gpu", "--format", "json"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr[-2000:]
        result = json.loads(done.stdout)
        why = f"the grade gave this kernel a GPU and {library} finds none in it"
        assert why in result["error"] and "--device cpu" in result["error"], result["error"]
        assert result["error"].endswith("(the grading machine's fault, not the submission's)")
        assert result["retry"] and result["score"] == 0, result
        assert "Traceback" not in done.stderr and why in done.stderr
