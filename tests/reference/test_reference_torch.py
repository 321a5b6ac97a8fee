"""The PyTorch reference solution against closed forms and the course's parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference import hw4_torch as ref  # noqa: E402  (needs torch)


def _bce(logits: np.ndarray, label: float) -> np.ndarray:
    """Binary cross-entropy from logits in float64, independent of torch."""
    logits = np.asarray(logits, dtype=np.float64)
    return np.log1p(np.exp(-np.abs(logits))) + np.maximum(logits, 0) - logits * label


@pytest.mark.parametrize(("build", "args", "params"), [
    (ref.discriminator, (), 267_009),
    (ref.generator, (4,), 1_858_320),
    (ref.build_dc_classifier, (), 1_102_721),
    (ref.build_dc_generator, (4,), 6_580_801),
])
def test_parameter_counts_are_the_courses(build, args, params):
    assert ref.count_params(build(*args)) == params


@pytest.mark.parametrize("batch", [1, 5, 128, 200])
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "image"])
def test_discriminators_take_any_batch_flat_or_as_images(batch, flat):
    x = torch.rand(batch, 784) if flat else torch.rand(batch, 1, 28, 28)
    for build in (ref.discriminator, ref.build_dc_classifier):
        assert tuple(build()(x).shape) == (batch, 1)


@pytest.mark.parametrize("batch", [2, 128, 200])
def test_generators_give_flat_images_in_range_for_any_batch(batch):
    z = ref.sample_noise(batch, ref.NOISE_DIM) * 50
    for build in (ref.generator, ref.build_dc_generator):
        images = build()(z)
        assert tuple(images.shape) == (batch, 784)
        assert images.min() >= -1 and images.max() <= 1


def test_sample_noise_is_fresh_uniform_float32_and_seedable():
    first, second = ref.sample_noise(5000, 3), ref.sample_noise(5000, 3)
    assert first.dtype == torch.float32 and tuple(first.shape) == (5000, 3)
    assert first.min() >= -1 and first.max() <= 1
    assert first.min() < -0.99 and first.max() > 0.99
    assert not torch.equal(first, second)
    assert torch.equal(ref.sample_noise(4, 2, seed=7), ref.sample_noise(4, 2, seed=7))
    from scipy import stats

    assert stats.kstest(first.numpy().ravel(), stats.uniform(-1, 2).cdf).pvalue > 1e-4


def test_seeded_networks_are_reproducible():
    a, b = ref.discriminator(seed=3), ref.discriminator(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    g1, g2 = ref.generator(4, seed=3), ref.generator(4, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(g1.parameters(), g2.parameters()))


@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_gan_losses_match_closed_forms_with_unequal_batches(shape):
    rng = np.random.default_rng(0)
    real = rng.normal(size=shape) * 40
    fake = rng.normal(size=(3,) + shape[1:]) * 40
    d = ref.discriminator_loss(torch.tensor(real, dtype=torch.float32),
                               torch.tensor(fake, dtype=torch.float32))
    g = ref.generator_loss(torch.tensor(fake, dtype=torch.float32))
    np.testing.assert_allclose(float(d), _bce(real, 1).mean() + _bce(fake, 0).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(g), _bce(fake, 1).mean(), rtol=1e-5)
    assert d.ndim == 0 and g.ndim == 0


def test_bce_loss_stays_finite_for_huge_logits():
    logits = torch.tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0])
    loss = ref.bce_loss(logits, torch.ones_like(logits))
    np.testing.assert_allclose(float(loss), _bce(logits.numpy(), 1).mean(), rtol=1e-6)


def test_lsgan_losses_match_closed_forms_with_unequal_batches():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(6, 1)), rng.normal(size=(4, 1))
    d = ref.ls_discriminator_loss(torch.tensor(real), torch.tensor(fake))
    g = ref.ls_generator_loss(torch.tensor(fake))
    np.testing.assert_allclose(float(d), 0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake ** 2))
    np.testing.assert_allclose(float(g), 0.5 * np.mean((fake - 1) ** 2))


def test_optimizer_is_adam_with_the_courses_settings():
    model = ref.discriminator()
    optimizer = ref.get_optimizer(model)
    assert isinstance(optimizer, torch.optim.Adam)
    group = optimizer.param_groups[0]
    assert group["lr"] == 1e-3 and tuple(group["betas"]) == (0.5, 0.999)
    assert sum(p.numel() for p in group["params"]) == 267_009


def test_run_a_gan_takes_steps_and_returns_the_losses():
    torch.manual_seed(0)
    data = [(torch.rand(8, 1, 28, 28), torch.zeros(8)) for _ in range(3)]
    D, G = ref.discriminator(), ref.generator()
    before = [p.clone() for p in G.parameters()]
    history = ref.run_a_gan(D, G, ref.get_optimizer(D), ref.get_optimizer(G),
                            ref.discriminator_loss, ref.generator_loss, data,
                            show_every=0, batch_size=8, num_epochs=2, max_steps=4)
    assert len(history) == 4 and all(np.isfinite(history).ravel())
    assert not all(torch.equal(p, q) for p, q in zip(before, G.parameters()))
