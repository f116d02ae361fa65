"""Shared helpers for the flow tests: brute-force Jacobians and weight perturbation."""

import torch
from torch import Tensor, nn


def perturb_parameters(module: nn.Module, std: float = 0.1, seed: int = 0) -> None:
    """Add noise to every parameter, so zero-initialised couplings are not the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(std * noise)


def brute_force_logdet(function, x: Tensor) -> Tensor:
    """log|det J| per sample, J the full Jacobian of the flattened output of one sample."""
    values = []
    for sample in x:
        jacobian = torch.autograd.functional.jacobian(
            lambda v: function(v.unsqueeze(0)).flatten(), sample
        )
        values.append(torch.linalg.slogdet(jacobian.reshape(sample.numel(), -1))[1])
    return torch.stack(values)
