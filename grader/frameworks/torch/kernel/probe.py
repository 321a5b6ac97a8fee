"""The probe's PyTorch parts, run in the kernel.

Sent as source text into a private module after the shared probe (``MODULES["probe"]``),
the weight listing (``MODULES["torch/layout"]``) and the training loop
(``MODULES["torch/train"]``); on loading it registers with the probe:

* how an input becomes a tensor (float32 ``torch.Tensor``) and how a tensor is read back
  (detached, on the CPU);
* how the graded names resolve: the student's function from the notebook's namespace, else
  from the student's modules (the set-up's ``CONFIG["modules"]``); ``gan_loss`` and
  ``lsgan_loss`` are ``(real, fake) -> (discriminator_loss(real, fake),
  generator_loss(fake))`` (with ``ls_`` names; the scores of shape (N, 1), or (N,) where
  that raises), ``dc_discriminator`` is
  ``build_dc_classifier`` (given the batch 128 when it takes an argument), ``dc_generator``
  is ``build_dc_generator``, ``get_solvers`` returns ``get_optimizer`` of each network it is
  given (two small networks of its own when none); the reference's parts resolve the same
  way, for attribution;
* how a network is built and run: an ``nn.Module`` in training mode (batch norm on the
  batch's statistics, as the course trains and samples), its weights listed as
  ``torch/layout`` says;
* how an optimizer is described (``lr``, ``betas`` as ``beta_1``/``beta_2``, ``eps``, and
  whether its parameters are exactly the given network's);
* which ``TrainingSession`` trains (``torch/train``).

Nothing here decides a grade.
"""

import importlib
import inspect
import sys

import numpy as np
import torch

MODULES: dict = {}  # replaced by the loader: kernel file -> its module name in the kernel
_probe = sys.modules[MODULES["probe"]]
_wire = sys.modules[MODULES["wire"]]
_layout = sys.modules[MODULES["torch/layout"]]
Action, Kind = _wire.Action, _wire.Kind
PROBE_BATCH = 128  # the course's batch, which DC networks are often tied to
NOISE_DIM = 96
LOSSES = {"gan_loss": ("discriminator_loss", "generator_loss"),
          "lsgan_loss": ("ls_discriminator_loss", "ls_generator_loss")}
_models: dict = {}
_owners: dict = {}  # id of an optimizer get_solvers returned -> the network it was given


def _student_modules() -> list:
    setup = sys.modules.get(MODULES["torch/setup"])
    return list(getattr(setup, "CONFIG", {}).get("modules", []))


def student_function(name: str):
    """The student's callable ``name``: the notebook's, else the first student module's that
    has it; None when there is none."""
    value = get_ipython().user_ns.get(name)  # noqa: F821 - defined in the kernel
    if callable(value):
        return value
    for module_name in _student_modules():
        module = importlib.import_module(module_name)
        value = getattr(module, name, None)
        if callable(value):
            return value
    return None


def _required(name: str, find=None):
    function = (find or student_function)(name)
    if function is None:
        raise LookupError(f"{name} is not defined in the notebook")
    return function


def _as_vector(scores):
    """(N, 1) scores as (N,); None for any other shape."""
    if isinstance(scores, torch.Tensor) and scores.dim() == 2 and scores.shape[1] == 1:
        return scores[:, 0]
    return None


def _loss_pair(names, find=None):
    discriminator_loss, generator_loss = (_required(name, find) for name in names)

    def losses(real, fake):
        """Both losses of (N, 1) scores, as the course's discriminators give them; where
        that raises, of the same scores as (N,), the shape the course's docstrings (and
        UMich's checks) name; the first error when both raise."""
        try:
            return discriminator_loss(real, fake), generator_loss(fake)
        except Exception as first:
            real_1d, fake_1d = _as_vector(real), _as_vector(fake)
            if real_1d is None or fake_1d is None:
                raise
            try:
                return discriminator_loss(real_1d, fake_1d), generator_loss(fake_1d)
            except Exception:
                raise first from None

    return losses


def _takes_an_argument(function) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)


def _classifier(builder):
    def build():
        return builder(PROBE_BATCH) if _takes_an_argument(builder) else builder()

    return build


def _with_noise(builder):
    def build(noise_dim=NOISE_DIM):
        return builder(noise_dim)

    return build


def _small_networks():
    torch.manual_seed(0)
    return (torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.LeakyReLU(0.01),
                                torch.nn.Linear(4, 1)),
            torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 7)))


def _solvers(get_optimizer):
    def solvers(*networks, **kwargs):
        """``get_optimizer`` of each network given (the training loop's D and G), or of two
        small networks of the probe's own (the ``get_solvers`` check)."""
        _owners.clear()
        made = []
        for network in networks or _small_networks():
            optimizer = get_optimizer(network)
            _owners[id(optimizer)] = network
            made.append(optimizer)
        return tuple(made)

    return solvers


def resolve_in(name: str, find):
    """The function the graded ``name`` means in the PyTorch edition (see the docstring),
    with ``find(function_name)`` giving a function of the code it is resolved in."""
    if name in LOSSES:
        return _loss_pair(LOSSES[name], find)
    if name == "get_solvers":
        return _solvers(_required("get_optimizer", find))
    if name == "dc_discriminator":
        return _classifier(_required("build_dc_classifier", find))
    if name == "dc_generator":
        return _with_noise(_required("build_dc_generator", find))
    if name == "generator":
        return _with_noise(_required("generator", find))
    return find(name)


def resolve(name: str):
    """The student's function the graded ``name`` means."""
    return resolve_in(name, student_function)


def resolve_reference(module, name: str):
    """The reference's function the graded ``name`` means (for attribution)."""
    found = resolve_in(name, lambda function: getattr(module, function, None))
    if found is None:
        raise LookupError(f"the reference has no {name}")
    return found


def as_tensor(array):
    """A float32 tensor of ``array`` (other dtypes kept)."""
    array = np.array(array)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    return torch.from_numpy(array)


def to_array(value):
    """A tensor as a numpy array (detached, on the CPU); anything else as it is."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    return value


def _number(value):
    try:
        return float(value)
    except Exception:
        return None


def describe_optimizer(optimizer) -> dict:
    """The optimizer's class, settings (its first parameter group's) and whether its
    parameters are exactly those of the network it was made for."""
    described = {"type": _probe.type_name(optimizer),
                 "mro": [str(cls.__name__)[:_wire.NAME_LIMIT]
                         for cls in type(optimizer).__mro__[:64]], "id": id(optimizer)}
    groups = getattr(optimizer, "param_groups", None)
    group = groups[0] if isinstance(groups, list) and groups and isinstance(groups[0], dict) \
        else {}
    betas = group.get("betas")
    betas = tuple(betas) if isinstance(betas, (tuple, list)) and len(betas) == 2 \
        else (None, None)
    described.update(learning_rate=_number(group.get("lr")), beta_1=_number(betas[0]),
                     beta_2=_number(betas[1]), epsilon=_number(group.get("eps")))
    owner = _owners.get(id(optimizer))
    if owner is not None and isinstance(groups, list):
        held = sorted(id(p) for g in groups for p in g.get("params", []))
        described["exact_parameters"] = held == sorted(id(p) for p in owner.parameters())
    return described


def _input_like(model, array):
    """``array`` as a tensor of the network's floating dtype and device."""
    tensor = as_tensor(array)
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return tensor.to(dtype=parameter.dtype, device=parameter.device)
    return tensor


def _build_model(spec: dict, inputs) -> dict:
    model = _probe.lookup(spec["function"])(**spec.get("kwargs", {}))
    if model is None:
        return {"kind": Kind.NONE}
    if not isinstance(model, torch.nn.Module):
        return {"kind": Kind.OTHER, "type": _probe.type_name(model)}
    model.train()
    with torch.no_grad():
        output = model(_input_like(model, inputs[spec["input"]]))
    _models[spec["slot"]] = model
    return {"kind": Kind.MODEL, "type": _probe.type_name(model),
            "variables": [{"shape": [int(d) for d in tensor.shape],
                           "name": str(path)[:_wire.NAME_LIMIT], "trainable": bool(trainable)}
                          for path, tensor, trainable, _ in _layout.listing(model)],
            "output": _probe.to_numpy(output)}


def _run_model(spec: dict, inputs) -> dict:
    model = _models[spec["slot"]]
    entries = _layout.listing(model)
    with torch.no_grad():
        for position, key in spec["assign"]:
            tensor = entries[position][1]
            tensor.copy_(torch.from_numpy(np.asarray(inputs[key])).to(tensor.dtype))
        model.train(bool(spec.get("training", True)))
        output = model(_input_like(model, inputs[spec["input"]]))
    return _probe.to_numpy(output)


_probe.register(actions={Action.BUILD_MODEL: _build_model, Action.RUN_MODEL: _run_model},
                resolve=resolve, describe_optimizer=describe_optimizer, as_tensor=as_tensor,
                to_array=to_array, resolve_reference=resolve_reference,
                training_session=sys.modules[MODULES["torch/train"]].TrainingSession)
