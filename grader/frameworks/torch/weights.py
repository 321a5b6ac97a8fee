"""PyTorch weights in the Keras layout of the reference networks, and back (numpy only).

The four specified networks are the same functions in both frameworks; only the storage
of their weights differs:

* ``Linear.weight`` is ``(out, in)``, a Keras ``Dense`` kernel ``(in, out)``;
* ``Conv2d.weight`` is ``(out, in, kh, kw)``, a Keras ``Conv2D`` kernel ``(kh, kw, in, out)``;
  both compute a cross-correlation, so no kernel is flipped;
* ``ConvTranspose2d.weight`` is ``(in, out, kh, kw)``, a Keras ``Conv2DTranspose`` kernel
  ``(kh, kw, out, in)``: the same transpose ``(2, 3, 1, 0)``, again without a flip;
  ``kernel_size=4, stride=2, padding=1`` is Keras' ``padding="same"`` at stride 2;
* batch norm's ``weight, bias, running_mean, running_var`` are Keras' ``gamma, beta,
  moving_mean, moving_variance`` (``num_batches_tracked`` has no Keras counterpart);
* PyTorch images are channel-first, Keras' channel-last, so a flatten or an unflatten
  orders the features differently: the ``Dense`` after the DC discriminator's flatten has
  its input rows permuted, and the ``Dense`` and batch norm before the DC generator's
  unflatten have their output features permuted.

Layers are matched by the order of the layers that hold parameters, never by
``state_dict`` key, since a ``Flatten`` or ``Unflatten`` shifts the keys' numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from grader import items
from grader.exceptions import WeightLayoutError


class Kind:
    """The kinds of layer that hold parameters in the specified networks."""

    DENSE = "dense"
    CONV = "conv"
    CONV_TRANSPOSE = "conv_transpose"
    BATCH_NORM = "batch_norm"


# The torch parameters of each kind, in state_dict order, and their Keras counterparts.
TORCH_NAMES = {
    Kind.DENSE: ("weight", "bias"),
    Kind.CONV: ("weight", "bias"),
    Kind.CONV_TRANSPOSE: ("weight", "bias"),
    Kind.BATCH_NORM: ("weight", "bias", "running_mean", "running_var"),
}
WEIGHT_DIMS = {Kind.DENSE: 2, Kind.CONV: 4, Kind.CONV_TRANSPOSE: 4, Kind.BATCH_NORM: 1}
SKIPPED = ("num_batches_tracked",)


@dataclass(frozen=True)
class Layer:
    """A layer with parameters; ``flat_in`` / ``flat_out`` give the (C, H, W) of an image
    flattened into its input features / unflattened from its output features."""

    kind: str
    flat_in: tuple[int, int, int] | None = None
    flat_out: tuple[int, int, int] | None = None


DENSE = Layer(Kind.DENSE)
# The layers of each network item, in the catalogue's order of the network items, each
# with whether it takes noise (a check of that order: tests/frameworks/test_torch_weights).
NETWORK_LAYOUTS: tuple[tuple[bool, tuple[Layer, ...]], ...] = (
    (False, (DENSE, DENSE, DENSE)),  # the MLP discriminator
    (True, (DENSE, DENSE, DENSE)),  # the MLP generator
    (False, (Layer(Kind.CONV), Layer(Kind.CONV), Layer(Kind.DENSE, flat_in=(64, 4, 4)),
             DENSE)),  # the DC discriminator
    (True, (DENSE, Layer(Kind.BATCH_NORM), Layer(Kind.DENSE, flat_out=(128, 7, 7)),
            Layer(Kind.BATCH_NORM, flat_out=(128, 7, 7)), Layer(Kind.CONV_TRANSPOSE),
            Layer(Kind.BATCH_NORM), Layer(Kind.CONV_TRANSPOSE))),  # the DC generator
)
LAYOUTS: dict[str, tuple[Layer, ...]] = dict(zip(
    items.ids_with(items.NETWORK), (layers for _, layers in NETWORK_LAYOUTS), strict=True))


def channels_last_order(chw: Sequence[int]) -> np.ndarray:
    """For each Keras (channel-last) flat index, the PyTorch (channel-first) flat index of
    the same value of a (C, H, W) image: ``keras_vector = torch_vector[order]``."""
    channels, height, width = chw
    return np.arange(channels * height * width).reshape(channels, height, width) \
        .transpose(1, 2, 0).ravel()


def torch_layers(torch_state: Mapping[str, object]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The state's entries grouped by layer (the key up to its last dot), in order, as
    float arrays; ``num_batches_tracked`` is left out."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in torch_state.items():
        prefix, _, name = key.rpartition(".")
        if name not in SKIPPED:
            groups.setdefault(prefix, {})[name] = np.asarray(value)
    return list(groups.items())


def _check(model_name: str) -> tuple[Layer, ...]:
    if model_name not in LAYOUTS:
        raise WeightLayoutError(f"no weight layout for {model_name!r}; known: "
                                f"{', '.join(LAYOUTS)}")
    return LAYOUTS[model_name]


def _layer_to_keras(layer: Layer, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    weight, bias = params["weight"], params["bias"]
    if layer.kind == Kind.BATCH_NORM:
        values = [weight, bias, params["running_mean"], params["running_var"]]
        if layer.flat_out:
            order = channels_last_order(layer.flat_out)
            values = [value[order] for value in values]
        return values
    if layer.kind == Kind.DENSE:
        kernel = weight.T
        if layer.flat_in:
            kernel = kernel[channels_last_order(layer.flat_in), :]
        if layer.flat_out:
            order = channels_last_order(layer.flat_out)
            kernel, bias = kernel[:, order], bias[order]
        return [kernel, bias]
    return [weight.transpose(2, 3, 1, 0), bias]  # Conv2d and ConvTranspose2d alike


def torch_to_keras(model_name: str, torch_state: Mapping[str, object]) -> list[np.ndarray]:
    """The weights of a PyTorch network (its ``state_dict()``, values as numpy arrays or
    CPU tensors) as the Keras reference network ``model_name`` orders them
    (``model.get_weights()``); ``model_name`` is the id of a network item.

    Raises WeightLayoutError when the state's layers do not line up with the layout.
    """
    layout = _check(model_name)
    layers = torch_layers(torch_state)
    if len(layers) != len(layout):
        raise WeightLayoutError(f"{model_name}: {len(layers)} layers with parameters, "
                                f"the specification has {len(layout)}")
    weights: list[np.ndarray] = []
    for position, (layer, (prefix, params)) in enumerate(zip(layout, layers), start=1):
        names = TORCH_NAMES[layer.kind]
        weight = params.get("weight")
        if tuple(params) != names or weight is None or weight.ndim != WEIGHT_DIMS[layer.kind]:
            raise WeightLayoutError(
                f"{model_name}: layer {position} ({prefix or 'the model'}) holds "
                f"{', '.join(f'{k} {tuple(v.shape)}' for k, v in params.items())}; a "
                f"{layer.kind.replace('_', ' ')} layer is specified there")
        weights += _layer_to_keras(layer, params)
    return weights


def keras_to_torch(model_name: str, keras_weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The inverse of :func:`torch_to_keras`: Keras-ordered weights as the values of the
    PyTorch network's parameter-holding layers in order (``weight, bias`` per dense or
    convolution; ``weight, bias, running_mean, running_var`` per batch norm)."""
    layout = _check(model_name)
    expected = sum(len(TORCH_NAMES[layer.kind]) for layer in layout)
    if len(keras_weights) != expected:
        raise WeightLayoutError(f"{model_name}: {len(keras_weights)} Keras arrays, the "
                                f"specification has {expected}")
    values, position = [], 0
    for layer in layout:
        count = len(TORCH_NAMES[layer.kind])
        arrays = [np.asarray(a) for a in keras_weights[position:position + count]]
        position += count
        if layer.kind == Kind.BATCH_NORM:
            if layer.flat_out:
                inverse = np.argsort(channels_last_order(layer.flat_out))
                arrays = [array[inverse] for array in arrays]
            values += arrays
            continue
        kernel, bias = arrays
        if layer.kind == Kind.DENSE:
            if layer.flat_in:
                kernel = kernel[np.argsort(channels_last_order(layer.flat_in)), :]
            if layer.flat_out:
                inverse = np.argsort(channels_last_order(layer.flat_out))
                kernel, bias = kernel[:, inverse], bias[inverse]
            values += [kernel.T, bias]
        else:
            values += [kernel.transpose(3, 2, 0, 1), bias]
    return values


def network_item(architecture: str, role: str) -> str:
    """The item id of the network ``role`` of ``architecture`` (the convergence models' parts:
    ``mlp`` discriminator -> ``discriminator``, ``dc`` generator -> ``dc_generator``)."""
    from grader.convergence.networks import architecture_of

    for model in items.models():
        if architecture_of(model) == architecture:
            return items.convergence_item(model).parts[role]
    raise WeightLayoutError(f"no network {architecture!r} {role!r}")


def torch_values_to_keras(model_name: str, values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:func:`torch_to_keras` of the weights listed in order (the training loop's and the
    probe's listing: per layer ``weight, bias``, and ``running_mean, running_var`` after them
    for batch norm) instead of a ``state_dict``."""
    layout = _check(model_name)
    expected = sum(len(TORCH_NAMES[layer.kind]) for layer in layout)
    if len(values) != expected:
        raise WeightLayoutError(f"{model_name}: {len(values)} PyTorch arrays, the "
                                f"specification has {expected}")
    state, position = {}, 0
    for index, layer in enumerate(layout):
        for name in TORCH_NAMES[layer.kind]:
            state[f"{index}.{name}"] = values[position]
            position += 1
    return torch_to_keras(model_name, state)


def torch_layout(model_name: str, keras_layout: Sequence[tuple[Sequence[int], str]]
                 ) -> list[tuple[tuple[int, ...], str]]:
    """``(shape, name)`` of each weight of the PyTorch network, in its listing order, from the
    Keras network's layout (``grader.convergence.networks.layout``)."""
    zeros = [np.zeros(tuple(shape), dtype=np.float32) for shape, _ in keras_layout]
    names = [name for layer in _check(model_name) for name in TORCH_NAMES[layer.kind]]
    return [(tuple(int(d) for d in value.shape), name)
            for value, name in zip(keras_to_torch(model_name, zeros), names, strict=True)]
