"""R1, path length, style mixing and lazy-regularization settings against brute-force definitions."""

import pytest
import torch

from lightning_modules.networks.stylegan2 import StyleGAN2Discriminator
from lightning_modules.objectives.stylegan2_regularizers import (
    lazy_regularization_adam,
    mix_styles,
    path_length_noise,
    path_length_penalty,
    path_lengths,
    r1_penalty,
    style_mixing_cutoff,
)


def test_r1_equals_the_mean_squared_gradient_norm_taken_one_image_at_a_time():
    torch.manual_seed(0)
    # Group size 1: the minibatch-stddev feature does not mix images, so per-image gradients are defined.
    discriminator = StyleGAN2Discriminator(1, 8, channel_base=64, channel_max=8, minibatch_group_size=1)
    real = torch.randn(4, 1, 8, 8, requires_grad=True)
    penalty = r1_penalty(discriminator(real), real)
    brute_force = []
    for image in real.detach():
        image = image[None].requires_grad_(True)
        (gradient,) = torch.autograd.grad(discriminator(image).sum(), image)
        brute_force.append(gradient.square().sum())
    torch.testing.assert_close(penalty, torch.stack(brute_force).mean())
    penalty.backward()  # the graph is kept: the penalty trains the discriminator
    assert discriminator.from_rgb.weight.grad.abs().sum() > 0


def test_path_lengths_of_a_linear_generator_are_the_norms_of_its_transposed_jacobian():
    torch.manual_seed(0)
    num_ws, w_dim, pixels = 3, 5, 16
    matrix = torch.randn(pixels, num_ws * w_dim)
    ws = torch.randn(2, num_ws, w_dim, requires_grad=True)
    images = (ws.flatten(1) @ matrix.T).reshape(2, 1, 4, 4)
    noise = path_length_noise(images, torch.Generator().manual_seed(0))
    assert noise.std().item() == pytest.approx(1 / 4, rel=0.5)  # N(0, 1) / sqrt(H W)
    lengths = path_lengths(images, ws, noise)
    jacobian_t_y = (noise.flatten(1) @ matrix).reshape(2, num_ws, w_dim)  # J^T y per image
    torch.testing.assert_close(lengths, jacobian_t_y.square().sum(dim=2).mean(dim=1).sqrt())


def test_path_length_mean_is_an_exponential_average_and_the_penalty_its_squared_deviation():
    lengths = torch.tensor([1.0, 2.0, 3.0])
    penalty, mean = path_length_penalty(lengths, torch.tensor(0.0), decay=0.01)
    assert mean.item() == pytest.approx(0.02)
    assert penalty.item() == pytest.approx(((lengths - 0.02) ** 2).mean().item())
    for _ in range(2000):
        penalty, mean = path_length_penalty(lengths, mean, decay=0.01)
    assert mean.item() == pytest.approx(2.0, rel=1e-4)
    assert penalty.item() == pytest.approx(2 / 3, rel=1e-3)  # the lengths' variance once the mean is reached
    with pytest.raises(ValueError, match="decay must lie in"):
        path_length_penalty(lengths, mean, decay=0.0)


def test_style_mixing_takes_the_coarse_layers_from_one_w_and_the_fine_from_the_other():
    first, second = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    mixed = mix_styles(first, second, cutoff=2)
    assert mixed[:, :2].eq(0).all() and mixed[:, 2:].eq(1).all()
    generator = torch.Generator().manual_seed(0)
    assert {style_mixing_cutoff(6, 0.0, generator) for _ in range(50)} == {6}
    assert {style_mixing_cutoff(6, 1.0, generator) for _ in range(200)} == {1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match=r"probability must lie in \[0, 1\], got 1.5"):
        style_mixing_cutoff(6, 1.5)


def test_lazy_regularization_rescales_adam_as_the_paper_does():
    lr, betas = lazy_regularization_adam(0.0025, (0.0, 0.99), interval=16)
    assert lr == pytest.approx(0.0025 * 16 / 17)
    assert betas == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert lazy_regularization_adam(0.1, (0.5, 0.9), interval=0) == (0.1, (0.5, 0.9))
