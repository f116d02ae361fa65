"""Shared helpers for the flow tests: brute-force Jacobians and weight perturbation."""

import math

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
        jacobian = torch.autograd.functional.jacobian(lambda v: function(v.unsqueeze(0)).flatten(), sample)
        values.append(torch.linalg.slogdet(jacobian.reshape(sample.numel(), -1))[1])
    return torch.stack(values)


class UniformFlow(nn.Module):
    """A flow whose density is exactly uniform on [0, 1)^D: z = Phi^{-1}(u), z ~ N(0, I).

    Follows the flow-network contract (forward -> (zs, logdet), image_shape, num_dims), so the
    LightningModule can be run on it: its bits/dim on 8-bit data must be exactly 8.
    """

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.num_dims = image_shape[0] * image_shape[1] * image_shape[2]
        self.unused = nn.Parameter(torch.zeros(1))  # so an optimizer can be built

    def forward(self, u: Tensor) -> tuple[list[Tensor], Tensor]:
        z = torch.special.ndtri(u)
        # d Phi^{-1}(u)/du = 1 / phi(z), so log|det| = -sum log phi(z)
        log_normal = -0.5 * (z * z + math.log(2 * math.pi))
        return [z], -log_normal.flatten(1).sum(1) + 0 * self.unused

    def sample(self, n: int, temperature: float = 1.0, generator=None) -> Tensor:
        return torch.rand((n, *self.image_shape), generator=generator)
