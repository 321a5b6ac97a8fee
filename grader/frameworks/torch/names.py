"""The PyTorch edition's names for the catalogue's functions (``get_optimizer`` for
``get_solvers`` ...), for the wording of results and for the reference oracle."""

from __future__ import annotations

from grader import items
from grader.items import ItemSpec


def loss_names(spec: ItemSpec) -> tuple[str, str]:
    """The discriminator and generator loss functions of a loss item."""
    return {"gan": ("discriminator_loss", "generator_loss"),
            "lsgan": ("ls_discriminator_loss", "ls_generator_loss")}[spec.form]


def torch_function(spec: ItemSpec) -> str:
    """The PyTorch edition's name for the function of a catalogue item."""
    if spec.check == items.LOSS:
        return " and ".join(loss_names(spec))
    if spec.check == items.SOLVERS:
        return "get_optimizer"
    if spec.check == items.NETWORK and spec.id.startswith("dc_"):
        return "build_dc_generator" if spec.takes_noise else "build_dc_classifier"
    return spec.function or spec.id
