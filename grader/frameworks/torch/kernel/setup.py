"""The kernel's set-up for a PyTorch notebook, run right after the prelude.

Sent as source text into a private module (``sys.modules[MODULES["torch/setup"]]``) before
any student code (CONFIG: ``modules``, the dotted names of the student's own modules, which
the probe imports; ``gpu``, whether the grade gave this kernel a GPU). It installs, each by
one small function:

* :func:`seed_torch`: PyTorch's seeds (the prelude's seed);
* :func:`budget_optimizer_steps`: the training budget: a global pre-hook on every
  ``torch.optim`` optimizer step calls the prelude's ``count_step``, so a training loop stops
  in its own next step once the cell passed the budget;
* :func:`serve_mnist_offline`: ``torchvision.datasets.MNIST(root, train, download=True, ...)``
  serves the grader's MNIST file: no download, nothing written, the root ignored
  (subclasses such as FashionMNIST are left as they are);
* unless the kernel runs on a GPU (:func:`on_gpu`: CONFIG's ``gpu`` and
  ``torch.cuda.is_available()``; on a GPU the notebook's CUDA calls run on it unchanged, and
  :data:`DEVICE` tells the grader's training loop to train there too): :func:`without_triton`
  (Triton,
  which crashes a process that loaded TensorFlow first, is never loaded),
  :func:`cuda_calls_on_cpu` (``.cuda()`` of tensors and modules returns them as they are),
  :func:`cuda_tensor_types_on_cpu` (``torch.cuda.FloatTensor`` and its kin are the CPU
  classes, ``.type("torch.cuda.FloatTensor")`` a CPU type),
  :func:`cuda_devices_on_cpu` (``device='cuda'`` in the tensor factories and ``.to('cuda')``
  or ``.to(torch.device('cuda'))`` of tensors and modules mean the CPU);
* old-API shims for cells written for old PyTorch: :func:`iterator_next` (a data loader
  iterator's ``.next()``), :func:`zero_dim_index` (``.data[0]`` of a 0-d tensor is the
  tensor), :func:`deprecated_aliases` (``init.xavier_uniform`` and kin without the
  underscore; ``Variable`` is still PyTorch's own), :func:`colab_stub` (``from
  google.colab import drive; drive.mount(...)`` does nothing).
"""

import sys
import types

CONFIG: dict = {}  # replaced by the grader: modules (the student's module names), gpu
DEVICE = "cpu"  # where the grader's training loop puts the networks: "cuda" on a GPU
MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel

# The legacy tensor classes ``torch.cuda`` names (and their CPU twins in ``torch``).
LEGACY_TENSORS = ("FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor",
                  "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "BoolTensor")
# The tensor factories whose ``device=`` argument a notebook may set to CUDA.
FACTORIES = ("rand", "randn", "randint", "zeros", "ones", "empty", "full", "tensor", "arange",
             "linspace", "eye", "as_tensor", "rand_like", "randn_like", "zeros_like",
             "ones_like", "empty_like", "full_like", "randint_like", "normal", "randperm")


def _prelude():
    return sys.modules[MODULES["prelude"]]


def seed_torch(seed: int) -> None:
    """Seed PyTorch's generators (the CPU's, and CUDA's when there is one)."""
    import torch

    torch.manual_seed(seed)


def budget_optimizer_steps() -> None:
    """Count every ``torch.optim`` optimizer step against the prelude's training budget."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    count_step = _prelude().count_step

    def before_step(optimizer, args, kwargs):
        count_step()

    register_optimizer_step_pre_hook(before_step)


def serve_mnist_offline() -> None:
    """``torchvision.datasets.MNIST`` reads the grader's file: ``download`` does nothing, the
    files count as present, and the images and labels are the grader's (uint8 [N, 28, 28],
    int64 labels), the training or the test split as ``train`` says."""
    import numpy as np
    import torch
    from torchvision.datasets import MNIST

    load = _prelude().load_mnist_offline
    originals = {name: getattr(MNIST, name)
                 for name in ("download", "_check_exists", "_check_legacy_exist", "_load_data")}

    def served(name, replacement):
        def method(self, *args, **kwargs):
            if type(self) is not MNIST:  # FashionMNIST, EMNIST ... are other data sets
                return originals[name](self, *args, **kwargs)
            return replacement(self)

        method.__wrapped__ = originals[name]
        method.__name__ = name
        return method

    def load_data(self):
        (x_train, y_train), (x_test, y_test) = load()
        images, labels = (x_train, y_train) if self.train else (x_test, y_test)
        return (torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
                torch.from_numpy(np.asarray(labels, dtype=np.int64)))

    MNIST.download = served("download", lambda self: None)
    MNIST._check_exists = served("_check_exists", lambda self: True)
    MNIST._check_legacy_exist = served("_check_legacy_exist", lambda self: False)
    MNIST._load_data = served("_load_data", load_data)


def _is_cuda(device) -> bool:
    import torch

    if isinstance(device, str):
        return device.strip().startswith("cuda")
    return isinstance(device, torch.device) and device.type == "cuda"


def _cpu(device):
    return "cpu" if _is_cuda(device) else device


def cuda_calls_on_cpu() -> None:
    """``tensor.cuda()`` and ``module.cuda()`` return the tensor or module unchanged."""
    import torch

    def tensor_cuda(self, *args, **kwargs):
        return self

    def module_cuda(self, *args, **kwargs):
        return self

    torch.Tensor.cuda = tensor_cuda
    torch.nn.Module.cuda = module_cuda


def cuda_tensor_types_on_cpu() -> None:
    """``torch.cuda.FloatTensor`` (and kin) are the CPU classes, so ``dtype =
    torch.cuda.FloatTensor`` with ``.type(dtype)`` works; a type named by text
    (``"torch.cuda.FloatTensor"``) means the CPU type too."""
    import torch

    for name in LEGACY_TENSORS:
        if hasattr(torch, name):
            setattr(torch.cuda, name, getattr(torch, name))
    original = torch.Tensor.type

    def tensor_type(self, dtype=None, non_blocking=False, **kwargs):
        if isinstance(dtype, str) and dtype.startswith("torch.cuda."):
            dtype = "torch." + dtype[len("torch.cuda."):]
        if dtype is None:
            return original(self)
        return original(self, dtype, non_blocking, **kwargs)

    tensor_type.__wrapped__ = original
    torch.Tensor.type = tensor_type


def _on_cpu_factory(factory):
    def factory_on_cpu(*args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        return factory(*args, **kwargs)

    factory_on_cpu.__wrapped__ = factory
    factory_on_cpu.__name__ = getattr(factory, "__name__", "factory")
    return factory_on_cpu


def cuda_devices_on_cpu() -> None:
    """``device='cuda'`` in the tensor factories, and ``.to('cuda')`` (or a CUDA
    ``torch.device``, positional or by keyword) of tensors and modules, mean the CPU."""
    import torch

    for name in FACTORIES:
        if hasattr(torch, name):
            setattr(torch, name, _on_cpu_factory(getattr(torch, name)))

    def on_cpu(original):
        def to(self, *args, **kwargs):
            args = tuple(_cpu(arg) for arg in args)
            if "device" in kwargs:
                kwargs["device"] = _cpu(kwargs["device"])
            return original(self, *args, **kwargs)

        to.__wrapped__ = original
        return to

    torch.Tensor.to = on_cpu(torch.Tensor.to)
    torch.nn.Module.to = on_cpu(torch.nn.Module.to)


def iterator_next() -> None:
    """A data loader's iterator has the Python 2 ``.next()`` again
    (``loader.__iter__().next()``)."""
    from torch.utils.data import dataloader

    base = dataloader._BaseDataLoaderIter
    if not hasattr(base, "next"):
        base.next = base.__next__


def zero_dim_index() -> None:
    """``loss.data[0]`` of a 0-d tensor (PyTorch 0.3's way of reading a loss) is the tensor
    itself; every other index is PyTorch's own."""
    import torch

    original = torch.Tensor.__getitem__

    def getitem(self, index):
        if type(index) is int and index in (0, -1) and self.dim() == 0:
            return self
        return original(self, index)

    getitem.__wrapped__ = original
    torch.Tensor.__getitem__ = getitem


def deprecated_aliases() -> None:
    """The ``torch.nn.init`` functions without the trailing underscore
    (``init.xavier_uniform``), where a PyTorch has dropped them. (``torch.autograd.Variable``
    needs nothing: today's PyTorch still has it, returning a plain tensor and ignoring
    ``volatile=``.)"""
    from torch.nn import init

    for name in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                 "uniform", "normal", "constant"):
        if not hasattr(init, name) and hasattr(init, name + "_"):
            setattr(init, name, getattr(init, name + "_"))


def colab_stub() -> None:
    """``from google.colab import drive`` works and ``drive.mount(...)`` does nothing, so the
    Colab set-up cell of the 2020-2024 notebooks runs outside Colab."""
    try:
        import google.colab  # noqa: F401 - on Colab itself, keep the real one
        return
    except Exception:
        pass
    colab = types.ModuleType("google.colab")
    drive = types.ModuleType("google.colab.drive")
    drive.mount = lambda *args, **kwargs: None
    drive.flush_and_unmount = lambda *args, **kwargs: None
    colab.drive = drive
    sys.modules["google.colab"] = colab
    sys.modules["google.colab.drive"] = drive
    google = sys.modules.get("google")
    if google is None:
        google = types.ModuleType("google")
        google.__path__ = []
        sys.modules["google"] = google
    google.colab = colab


def without_triton() -> None:
    """Triton never loads in a kernel without a GPU (it compiles GPU kernels only): loaded
    after TensorFlow, which a notebook may import too, it crashes the process."""
    sys.modules.setdefault("triton", None)


def on_gpu(gpu_given: bool, cuda_available: bool) -> bool:
    """True when the notebook's CUDA calls run on a real GPU: the grade gave the kernel one
    and PyTorch sees it."""
    return bool(gpu_given) and bool(cuda_available)


def setup() -> None:
    """Install everything described in the module docstring."""
    global DEVICE
    import torch

    prelude = _prelude()
    seed_torch(prelude.CONFIG.get("seed", 0))
    try:
        budget_optimizer_steps()
    except Exception as error:  # a PyTorch without the global hook: keep going without it
        print(f"[hw4grade] training budget unavailable: {error}", file=sys.__stderr__)
    if prelude.CONFIG.get("mnist_npz"):
        serve_mnist_offline()
    gpu_given = CONFIG.get("gpu", False)
    if gpu_given:  # a CUDA build that finds no device here stops (the prelude says why)
        prelude.require_gpu("PyTorch", torch.cuda.is_available)
    if on_gpu(gpu_given, torch.cuda.is_available()):
        DEVICE = "cuda"
    else:
        without_triton()
        cuda_calls_on_cpu()
        cuda_tensor_types_on_cpu()
        cuda_devices_on_cpu()
    iterator_next()
    zero_dim_index()
    deprecated_aliases()
    colab_stub()
