"""GAN losses as small pure functions, each naming its paper, and the WGAN-GP gradient penalty.

Adversarial losses take discriminator logits (any shape, e.g. PatchGAN maps) and return scalars.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# --- GAN: adversarial losses ---


def non_saturating_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014), written with softplus."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[log D(G(z))], the non-saturating generator loss (Goodfellow et al. 2014, section 3)."""
    return F.softplus(-fake_logits).mean()


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], the original minimax generator objective (Goodfellow et al. 2014)."""
    return -F.softplus(fake_logits).mean()


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Lim & Ye 2017)."""
    return -fake_logits.mean()


def least_squares_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] (LSGAN, Mao et al. 2017, a=0, b=c=1)."""
    return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """E[(D(G(z)) - 1)^2] (LSGAN as used by CycleGAN, Zhu et al. 2017)."""
    return ((fake_logits - 1) ** 2).mean()


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)], the critic loss of WGAN (Arjovsky et al. 2017)."""
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Arjovsky et al. 2017)."""
    return -fake_logits.mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, mixing: Tensor) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = mixing * real + (1 - mixing) * fake (WGAN-GP, Gulrajani et al. 2017).

    `mixing` holds one uniform draw per sample, shape (B, 1, 1, 1); passing it in keeps this pure.
    """
    interpolated = (mixing * real + (1 - mixing) * fake).requires_grad_(True)
    scores = critic(interpolated)
    (gradients,) = torch.autograd.grad(scores.sum(), interpolated, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


ADVERSARIAL_LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "non_saturating": (non_saturating_discriminator_loss, non_saturating_generator_loss),
    "minimax": (non_saturating_discriminator_loss, minimax_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "least_squares": (least_squares_discriminator_loss, least_squares_generator_loss),
    "wasserstein": (wasserstein_discriminator_loss, wasserstein_generator_loss),
}


# Losses whose discriminator outputs logits of a probability: D(x) = sigmoid(logit).
PROBABILITY_LOSSES = frozenset({"non_saturating", "minimax"})


def mean_discriminator_output(logits: Tensor, loss: str) -> Tensor:
    """The discriminator's mean output: a probability D(x) for `PROBABILITY_LOSSES`, else the raw score.

    Under the non-saturating and minimax losses D(x) = D(G(z)) = 1/2 at the game's equilibrium
    (Goodfellow et al. 2014, prop. 1); hinge, least-squares and Wasserstein scores have no such scale.
    """
    logits = logits.detach().float()
    return torch.sigmoid(logits).mean() if loss in PROBABILITY_LOSSES else logits.mean()


def adversarial_loss(
    name: str,
) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Return the (discriminator loss, generator loss) pair registered under `name`."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"Unknown loss '{name}'. Available: {', '.join(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[name]
