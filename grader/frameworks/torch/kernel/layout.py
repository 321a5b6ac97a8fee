"""The weight listing of a PyTorch network: the one convention the probe and the reference
oracle share (run in the kernel as ``MODULES["torch/layout"]``; imported by the grader's
``grader.frameworks.torch.oracle`` as a plain module: it needs nothing but the network).

A network's weights are listed module by module in ``model.modules()`` order (depth first,
each shared module once), and within a module its own parameters in their order, then its
batch norm statistics ``running_mean`` and ``running_var``; ``num_batches_tracked`` is never
listed. So layers are matched by the order of the layers that hold parameters, never by
``state_dict`` key (a ``Flatten`` or ``Unflatten`` shifts the keys' numbers), and a
``Linear`` weight keeps PyTorch's ``(out, in)`` shape. The statistics count among the
network's weights, as Keras counts its moving mean and variance (so the DC generator lists
6,595,521 values while the course's ``count_params``, parameters only, prints 6,580,801).
"""

STATISTICS = ("running_mean", "running_var")


def listing(model) -> list:
    """``(path, tensor, trainable, module)`` for each weight of ``model``, in the order above
    (``path``: the module's name in the network, a dot, the weight's name)."""
    entries, seen = [], set()
    for module_name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        buffers = dict(module.named_buffers(recurse=False))
        own += [(name, buffers[name]) for name in STATISTICS if buffers.get(name) is not None]
        for name, tensor in own:
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            path = f"{module_name}.{name}" if module_name else name
            entries.append((path, tensor, name not in STATISTICS and tensor.requires_grad,
                            module))
    return entries
