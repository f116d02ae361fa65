"""StyleGAN2's regularizers as pure functions: R1, path length, style mixing, lazy-regularization Adam settings.

R1 (Mescheder et al. 2018): gamma/2 E[||grad_x D(x)||^2] on real images. Path length (Karras et al.
2020, section 3.2, eq. 4): E[(||J_w^T y||_2 - a)^2], y ~ N(0, I) / sqrt(H W), a the running mean
of the lengths. Lazy regularization (section 3.1): each is applied every k steps, multiplied by k,
and Adam's learning rate and betas are rescaled by c = k / (k + 1). Randomness (noise, cutoffs) is
passed in or drawn from a passed generator, so these stay pure and resumable.
"""

import torch
from torch import Tensor


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """E_x[||grad_x D(x)||_2^2] over the batch; `real` must require grad and `real_logits` come from it.

    Unweighted: the module multiplies by gamma / 2 (and by the lazy interval). Compute it in float32:
    a squared gradient norm overflows half precision.
    """
    (gradients,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return gradients.square().flatten(1).sum(dim=1).mean()


def path_length_noise(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """y ~ N(0, I) / sqrt(H W), shaped like `images`: the random image-space direction of eq. 4."""
    height, width = images.shape[-2:]
    noise = torch.randn(images.shape, generator=generator) / (height * width) ** 0.5
    return noise.to(device=images.device, dtype=images.dtype)


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
    """||J_w^T y||_2 per sample, with J the Jacobian of `images` w.r.t. `ws` (B, num_ws, w_dim).

    The gradient w.r.t. each layer's w is squared and summed over w_dim, averaged over layers, as the
    official implementation does; it keeps the graph, so the penalty can be backpropagated.
    """
    (gradients,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return gradients.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: Tensor, mean: Tensor, decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """(E[(length - a)^2], the updated mean a): a <- a + decay (mean(lengths) - a), detached.

    The penalty is taken against the already-updated mean, as the official code does.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"path-length mean decay must lie in (0, 1], got {decay}")
    new_mean = mean.lerp(lengths.detach().mean().to(mean.dtype), decay)
    return (lengths - new_mean).square().mean(), new_mean


def style_mixing_cutoff(num_ws: int, probability: float, generator: torch.Generator | None = None) -> int:
    """The first layer that takes the second w: uniform in [1, num_ws) with `probability`, else num_ws (no mixing)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"style mixing probability must lie in [0, 1], got {probability}")
    cutoff = int(torch.randint(1, num_ws, (), generator=generator)) if num_ws > 1 else num_ws
    mix = float(torch.rand((), generator=generator)) < probability
    return cutoff if mix else num_ws


def mix_styles(ws: Tensor, other_ws: Tensor, cutoff: int) -> Tensor:
    """Layers [0, cutoff) from `ws`, layers [cutoff, num_ws) from `other_ws`; both (B, num_ws, w_dim)."""
    if ws.shape != other_ws.shape:
        raise ValueError(f"ws and other_ws must have one shape, got {tuple(ws.shape)} and {tuple(other_ws.shape)}")
    return torch.cat([ws[:, :cutoff], other_ws[:, cutoff:]], dim=1)


def lazy_regularization_adam(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam's (lr, betas) for a loss regularized every `interval` steps: lr c and beta^c, c = k / (k + 1).

    Each regularization is its own optimizer step, so k main steps come with one extra step.
    interval 0 means never regularizing: the settings are returned unchanged.
    """
    if interval < 0:
        raise ValueError(f"regularization interval must be >= 0, got {interval}")
    if interval == 0:
        return lr, (betas[0], betas[1])
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)
