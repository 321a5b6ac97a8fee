"""The PyTorch reference networks are the Keras reference networks with converted weights.

Real TensorFlow and real torch: each Keras reference network of ``reference/hw4.py`` gets
weights, ``grader.frameworks.torch.weights`` converts them, the torch reference network of
``reference/hw4_torch.py`` gets the converted ones, and both run on the same images, with
batch norm in training mode (as the course trains and samples) and in inference mode.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.exceptions import WeightLayoutError
from grader.frameworks.torch import weights as conv
from grader.oracles.weights import draw_weights, variable_specs

torch = pytest.importorskip("torch")

from reference import hw4_torch  # noqa: E402  (needs torch)

NETWORKS = {  # item id: (Keras builder name, torch builder, builder args, input width)
    "discriminator": ("discriminator", hw4_torch.discriminator, (), 784),
    "generator": ("generator", hw4_torch.generator, (4,), 4),
    "dc_discriminator": ("dc_discriminator", hw4_torch.build_dc_classifier, (), 784),
    "dc_generator": ("dc_generator", hw4_torch.build_dc_generator, (4,), 4),
}
KERAS_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default; torch's is 1e-5
TIGHT = {"rtol": 1e-4, "atol": 1e-4}  # float32 noise through batch norm reaches 2e-5


def keras_net(tf, item: str):
    from reference import hw4

    name, _, args, _ = NETWORKS[item]
    return getattr(hw4, name)(*args)


def torch_net(item: str, bn_epsilon: float | None = KERAS_BN_EPSILON):
    _, build, args, _ = NETWORKS[item]
    model = build(*args)
    if bn_epsilon is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eps = bn_epsilon
    return model


def load_torch(model, values: list[np.ndarray]) -> None:
    """Put values into the model's state entries in order (num_batches_tracked aside)."""
    keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    assert len(keys) == len(values)
    state = {key: torch.from_numpy(np.ascontiguousarray(v)) for key, v in zip(keys, values)}
    result = model.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith("num_batches_tracked") for k in result.missing_keys)


def images(item: str, rng: np.random.Generator, n: int = 16) -> np.ndarray:
    width = NETWORKS[item][3]
    return rng.uniform(-1, 1, size=(n, width)).astype(np.float32)


def torch_input(item: str, x: np.ndarray):
    tensor = torch.from_numpy(x)
    return tensor.view(len(x), 1, 28, 28) if NETWORKS[item][3] == 784 else tensor


def outputs(tf, keras_model, torch_model, item: str, x: np.ndarray, training: bool):
    keras_out = keras_model(tf.constant(x), training=training).numpy()
    torch_model.train(training)
    with torch.no_grad():
        torch_out = torch_model(torch_input(item, x)).numpy()
    return keras_out, torch_out


@pytest.mark.parametrize("item", list(NETWORKS))
@pytest.mark.parametrize("training", [True, False], ids=["train-mode", "eval-mode"])
def test_keras_weights_into_torch_give_the_keras_outputs(tf, item, training):
    rng = np.random.default_rng(3)
    keras_model = keras_net(tf, item)
    drawn = draw_weights([tuple(s) for s in variable_specs(keras_model)], rng)
    keras_model.set_weights(drawn)
    torch_model = torch_net(item)
    load_torch(torch_model, conv.keras_to_torch(item, drawn))
    back = conv.torch_to_keras(item, torch_model.state_dict())  # before a training-mode
    assert [a.shape for a in back] == [a.shape for a in drawn]  # call moves the statistics
    for got, want in zip(back, drawn):
        np.testing.assert_array_equal(got, want)
    x = images(item, rng)
    keras_out, torch_out = outputs(tf, keras_model, torch_model, item, x, training)
    assert torch_out.shape == keras_out.shape
    np.testing.assert_allclose(torch_out, keras_out, **TIGHT)


@pytest.mark.parametrize("item", list(NETWORKS))
def test_torch_initialised_weights_into_keras_give_the_torch_outputs(tf, item):
    """The direction the brief names: torch's own init (plus random batch-norm statistics)
    converted with torch_to_keras, in both batch-norm modes."""
    torch.manual_seed(5)
    torch_model = torch_net(item)
    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    keras_model = keras_net(tf, item)
    keras_model.set_weights(conv.torch_to_keras(item, torch_model.state_dict()))
    x = images(item, np.random.default_rng(6))
    for training in (False, True):  # inference first: a training call moves the statistics
        keras_out, torch_out = outputs(tf, keras_model, torch_model, item, x, training)
        np.testing.assert_allclose(torch_out, keras_out, **TIGHT)


def test_default_batch_norm_epsilons_make_the_dc_generators_differ(tf):
    """torch's BatchNorm eps is 1e-5, Keras' 1e-3. With each framework's default the two DC
    generators are different functions: about 3e-3 apart in inference mode (statistics near
    1) and up to about 0.9 in training mode, where a feature that is nearly constant over
    the batch has a variance far below 1e-3. So a PyTorch oracle must use eps 1e-5 (with
    equal eps they agree to float error: the tests above)."""
    item = "dc_generator"
    rng = np.random.default_rng(8)
    keras_model = keras_net(tf, item)
    drawn = draw_weights([tuple(s) for s in variable_specs(keras_model)], rng)
    keras_model.set_weights(drawn)
    torch_model = torch_net(item, bn_epsilon=None)
    load_torch(torch_model, conv.keras_to_torch(item, drawn))
    x = images(item, rng, n=128)
    gaps = []
    for training in (False, True):
        keras_out, torch_out = outputs(tf, keras_model, torch_model, item, x, training)
        gaps.append(float(np.max(np.abs(keras_out - torch_out))))
    assert 1e-3 < gaps[0] < 1e-2, gaps
    assert gaps[1] > 0.1, gaps


def test_conv_transpose_k4_s2_p1_is_keras_same_padding(tf):
    """One layer on its own: torch ConvTranspose2d(kernel 4, stride 2, padding 1) equals
    Keras Conv2DTranspose(4, strides 2, padding "same") with the kernel transposed
    (2, 3, 1, 0) and not flipped, at 7 -> 14 and 14 -> 28."""
    from tensorflow import keras

    rng = np.random.default_rng(11)
    for size, c_in, c_out in ((7, 128, 64), (14, 64, 1)):
        layer = torch.nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
        x = rng.normal(size=(3, c_in, size, size)).astype(np.float32)
        with torch.no_grad():
            want = layer(torch.from_numpy(x)).numpy()
        keras_layer = keras.layers.Conv2DTranspose(c_out, 4, strides=2, padding="same")
        keras_layer.build((None, size, size, c_in))
        kernel = layer.weight.detach().numpy()
        keras_layer.set_weights([kernel.transpose(2, 3, 1, 0), layer.bias.detach().numpy()])
        got = keras_layer(tf.constant(x.transpose(0, 2, 3, 1))).numpy().transpose(0, 3, 1, 2)
        assert got.shape == want.shape == (3, c_out, 2 * size, 2 * size)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        flipped = kernel[:, :, ::-1, ::-1].transpose(2, 3, 1, 0)
        keras_layer.set_weights([np.ascontiguousarray(flipped), layer.bias.detach().numpy()])
        got = keras_layer(tf.constant(x.transpose(0, 2, 3, 1))).numpy().transpose(0, 3, 1, 2)
        assert not np.allclose(got, want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("item", ["generator", "dc_discriminator", "dc_generator"])
def test_the_transposes_and_permutations_are_needed(tf, item):
    """A conversion that only reshapes (a square 256x256 or 1024x1024 kernel matches by
    shape either way; a permuted dense kernel keeps its shape) gives other outputs, so the
    tests above can fail."""
    rng = np.random.default_rng(12)
    torch.manual_seed(12)
    torch_model = torch_net(item)
    right = conv.torch_to_keras(item, torch_model.state_dict())
    naive = [np.asarray(v).reshape(r.shape) for v, r in zip(
        [v for k, v in torch_model.state_dict().items() if "num_batches" not in k], right)]
    keras_model = keras_net(tf, item)
    keras_model.set_weights(naive)
    x = images(item, rng)
    keras_out, torch_out = outputs(tf, keras_model, torch_model, item, x, True)
    assert not np.allclose(keras_out, torch_out, rtol=1e-3, atol=1e-3)


def test_the_layouts_follow_the_catalogues_network_items():
    from grader import items

    assert list(conv.LAYOUTS) == list(items.ids_with(items.NETWORK)) == list(NETWORKS)
    for item, (takes_noise, layers) in zip(conv.LAYOUTS, conv.NETWORK_LAYOUTS):
        assert items.spec(item).takes_noise == takes_noise
        assert conv.LAYOUTS[item] == layers


def test_channel_order_permutation():
    order = conv.channels_last_order((2, 2, 3))
    chw = np.arange(12).reshape(2, 2, 3)  # torch flat index at [c, h, w]
    assert list(order) == list(chw.transpose(1, 2, 0).ravel())
    assert order[1] == 6  # Keras' second value is channel 1 at (0, 0): torch index 1 * 6


def test_a_state_that_does_not_line_up_is_refused():
    torch.manual_seed(0)
    state = hw4_torch.discriminator().state_dict()
    with pytest.raises(WeightLayoutError, match="4 layers|3 layers"):
        conv.torch_to_keras("dc_discriminator", state)
    state.pop("1.bias")
    with pytest.raises(WeightLayoutError, match="layer 1"):
        conv.torch_to_keras("discriminator", state)
    with pytest.raises(WeightLayoutError, match="no weight layout"):
        conv.torch_to_keras("leaky_relu", {})
    with pytest.raises(WeightLayoutError, match="Keras arrays"):
        conv.keras_to_torch("generator", [np.zeros(1)])
    conv_state = hw4_torch.build_dc_classifier().state_dict()
    swapped = dict(zip(conv_state, reversed(list(conv_state.values()))))
    with pytest.raises(WeightLayoutError, match="conv layer is specified"):
        conv.torch_to_keras("dc_discriminator", swapped)
