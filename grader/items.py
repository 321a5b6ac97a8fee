"""The item catalogue: every graded item of the homework, declared once.

An item's id, what it grades in the notebook and which check grades it are written here
and nowhere else; the rubric's validation (known ids, manual items, shape deductions), the
grading dispatch (``grader.pipeline.checks``), the convergence trainings, the oracles and
the tests' expectations all read this table. ``rubric.yaml`` gives each item its points.

Adding an item: add one ``ItemSpec`` here (with an existing check, or a new check in
``grader.pipeline.checks``) and give it points in ``rubric.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The checks, i.e. how an item is probed and scored. Each names one entry of
# ``grader.pipeline.checks.CHECKS`` (or one of the special cases below it).
RUNS_CLEAN = "runs_clean"  # from the execution record: did every cell run?
ACTIVATION = "activation"  # leaky ReLU on drawn tensors and slopes
NOISE = "noise"  # the noise sampler: shape, range, freshness, distribution
NETWORK = "network"  # a model builder: variables, then outputs with the reference's weights
LOSS = "loss"  # a (D loss, G loss) function on unequal batches and extreme scores
SOLVERS = "solvers"  # the optimizers' settings, drawn and default
THEORY = "theory"  # a derivation answered in code, against the closed forms
CONVERGENCE = "convergence"  # the grader trains a GAN from the notebook's parts (full mode)
MANUAL = "manual"  # graded by hand (the written derivations)
CHECKS = (RUNS_CLEAN, ACTIVATION, NOISE, NETWORK, LOSS, SOLVERS, THEORY, CONVERGENCE, MANUAL)

# The roles of a GAN's parts, for the convergence items (see ``ItemSpec.parts``).
LOSS_ROLE, DISCRIMINATOR_ROLE, GENERATOR_ROLE = "loss", "discriminator", "generator"
NOISE_ROLE, SOLVERS_ROLE = "sample_noise", "get_solvers"
ROLES = (LOSS_ROLE, DISCRIMINATOR_ROLE, GENERATOR_ROLE, NOISE_ROLE, SOLVERS_ROLE)


@dataclass(frozen=True)
class ItemSpec:
    """One graded item: its id, its check, and what of the notebook it grades."""

    id: str
    check: str
    function: str | None = None  # the notebook function graded (units and theory)
    takes_noise: bool = False  # networks built from a noise dimension (the generators)
    form: str | None = None  # losses: "gan" or "lsgan"; theory: the quantity it computes
    output_width: int | None = None  # networks: values per sample of the output
    hint: str = ""  # networks: what to check when the outputs differ from the reference's
    model: str | None = None  # convergence: the GAN the grader trains
    parts: dict[str, str] = field(default_factory=dict)  # convergence: role -> unit item

    def __post_init__(self) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"item {self.id}: unknown check {self.check!r}")

    @property
    def unit(self) -> bool:
        """True for items one run of the notebook decides (neither training nor by hand)."""
        return self.check not in (CONVERGENCE, MANUAL)


def _gan(item_id: str, model: str, loss: str, discriminator: str, generator: str) -> ItemSpec:
    parts = {"discriminator": discriminator, "generator": generator, "loss": loss,
             "sample_noise": "sample_noise", "get_solvers": "get_solvers"}
    return ItemSpec(item_id, CONVERGENCE, model=model, parts=parts)


def _network(item_id: str, takes_noise: bool, hint: str) -> ItemSpec:
    return ItemSpec(item_id, NETWORK, item_id, takes_noise=takes_noise,
                    output_width=784 if takes_noise else 1, hint=hint)


CATALOGUE: tuple[ItemSpec, ...] = (
    ItemSpec("runs_clean", RUNS_CLEAN),
    ItemSpec("leaky_relu", ACTIVATION, "leaky_relu"),
    ItemSpec("sample_noise", NOISE, "sample_noise"),
    _network("discriminator", False,
             "check the leaky ReLU slope (0.01) after each hidden layer and that the last "
             "layer outputs raw logits (no sigmoid)"),
    _network("generator", True,
             "check the ReLU activations of the hidden layers and the tanh on the output"),
    ItemSpec("gan_loss", LOSS, "gan_loss", form="gan"),
    ItemSpec("get_solvers", SOLVERS, "get_solvers"),
    ItemSpec("lsgan_loss", LOSS, "lsgan_loss", form="lsgan"),
    _network("dc_discriminator", False,
             "check the order of convolution, leaky ReLU (0.01) and max-pooling, and that "
             "the last layer outputs raw logits (no sigmoid)"),
    _network("dc_generator", True,
             "check that each batch normalisation comes after the ReLU of its layer, and "
             "the tanh on the output"),
    _gan("gan_convergence", "gan", "gan_loss", "discriminator", "generator"),
    _gan("lsgan_convergence", "lsgan", "lsgan_loss", "discriminator", "generator"),
    _gan("dcgan_convergence", "dcgan", "gan_loss", "dc_discriminator", "dc_generator"),
    ItemSpec("optimal_d_gan", THEORY, "optimal_d_gan", form="gan_optimum"),
    ItemSpec("optimal_d_lsgan", THEORY, "optimal_d_lsgan", form="lsgan_optimum"),
    ItemSpec("vae_kl", THEORY, "vae_kl", form="gaussian_kl"),
    ItemSpec("problem1_derivation", MANUAL),
    ItemSpec("problem2_derivation", MANUAL),
)
BY_ID: dict[str, ItemSpec] = {spec.id: spec for spec in CATALOGUE}
ITEM_IDS: tuple[str, ...] = tuple(BY_ID)


def spec(item_id: str) -> ItemSpec:
    """The catalogue entry of ``item_id`` (KeyError for an unknown id)."""
    return BY_ID[item_id]


def ids_with(*checks: str) -> tuple[str, ...]:
    """The ids of the items graded by any of ``checks``, in catalogue order."""
    return tuple(spec.id for spec in CATALOGUE if spec.check in checks)


def unit_ids() -> tuple[str, ...]:
    """The items one run of the notebook decides (everything but training and by hand)."""
    return tuple(spec.id for spec in CATALOGUE if spec.unit)


def models() -> tuple[str, ...]:
    """The GANs the convergence items train, in catalogue order."""
    return tuple(spec.model for spec in CATALOGUE if spec.model)


def convergence_item(model: str) -> ItemSpec:
    """The convergence item that trains ``model``."""
    return next(spec for spec in CATALOGUE if spec.model == model)
