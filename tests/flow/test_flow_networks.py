"""Whole flows: invertibility, total log-det against brute force, shapes, sampling, bad input."""

import pytest
import torch

from lightning_modules.networks.flows import Glow, RealNVP
from lightning_modules.objectives.bits_per_dim import bits_per_dim
from tests.helpers.flows import brute_force_logdet, perturb_parameters

MODELS = {
    "realnvp": lambda: RealNVP(1, 4, num_scales=2, hidden_channels=8),
    "realnvp_no_logit_no_actnorm": lambda: RealNVP(
        2, 4, num_scales=2, hidden_channels=8, logit_alpha=None, actnorm=False
    ),
    "glow_affine": lambda: Glow(1, 4, num_levels=2, num_steps=2, hidden_channels=8),
    "glow_additive": lambda: Glow(1, 4, 2, 2, 8, coupling="additive"),
    "glow_logit_standard_normal_split": lambda: Glow(2, 4, 2, 2, 8, learned_prior=False, logit_alpha=0.05),
}


def make_model(name: str, dtype: torch.dtype):
    """A small flow with ActNorm initialised on data, perturbed weights, and an input in (0, 1)."""
    torch.manual_seed(0)
    model = MODELS[name]().to(dtype)
    x = torch.rand(3, *model.image_shape, dtype=dtype) * 0.98 + 0.01
    model.train()
    model(x)
    perturb_parameters(model, std=0.05)
    return model.eval(), x


def flat_latents(model, x):
    return torch.cat([z.flatten(1) for z in model(x)[0]], dim=1)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-8), (torch.float32, 1e-4)])
def test_model_inverse_undoes_forward(name, dtype, tolerance):
    model, x = make_model(name, dtype)
    zs, logdet = model(x)
    assert [tuple(z.shape[1:]) for z in zs] == model.latent_shapes
    assert sum(z[0].numel() for z in zs) == model.num_dims
    assert logdet.shape == (3,)
    assert (model.inverse(zs) - x).abs().max() < tolerance


@pytest.mark.parametrize("name", MODELS)
def test_model_logdet_matches_brute_force_jacobian(name):
    model, x = make_model(name, torch.float64)
    _, logdet = model(x)
    torch.testing.assert_close(logdet, brute_force_logdet(lambda v: flat_latents(model, v), x))


def test_mnist_shapes_and_dimension_count():
    glow = Glow(1, 28, num_levels=2, num_steps=1, hidden_channels=8)
    assert glow.latent_shapes == [(2, 14, 14), (8, 7, 7)]
    realnvp = RealNVP(1, 28, num_scales=3, hidden_channels=8)
    assert realnvp.latent_shapes == [(2, 14, 14), (4, 7, 7), (4, 7, 7)]
    assert glow.num_dims == realnvp.num_dims == 28 * 28 * 1


@pytest.mark.parametrize("name", MODELS)
def test_untrained_models_score_positive_bits_per_dim_on_8_bit_data(name):
    model, _ = make_model(name, torch.float32)
    x = (torch.randint(0, 256, (8, *model.image_shape)) + torch.rand(8, *model.image_shape)) / 256
    bits = bits_per_dim(model.log_prob(x), model.num_dims)
    assert torch.isfinite(bits).all() and (bits > 0).all()


def test_sample_is_reproducible_in_range_and_sharpens_with_temperature():
    model, _ = make_model("glow_affine", torch.float32)
    first = model.sample(4, temperature=0.7, generator=torch.Generator().manual_seed(1))
    second = model.sample(4, temperature=0.7, generator=torch.Generator().manual_seed(1))
    assert first.shape == (4, 1, 4, 4)
    assert torch.equal(first, second)
    assert first.min() >= 0 and first.max() <= 1
    cold = model.sample(4, temperature=0.0)
    assert torch.allclose(cold, cold[:1].expand_as(cold)), "T=0 gives the mode, for every sample"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Glow(1, 28, num_levels=3), "divisible by 8; got 28x28"),
        (lambda: RealNVP(1, 28, num_scales=4), "divisible by 8; got 28x28"),
        (lambda: Glow(3, (32, 30), num_levels=2), "divisible by 4; got 32x30"),
        (lambda: Glow(1, 28, coupling="affin"), "Unknown coupling 'affin'"),
        (lambda: Glow(1, 28, num_steps=0), "must be at least 1"),
        (lambda: RealNVP(0, 28), "must be positive"),
        (lambda: RealNVP(1, 28, logit_alpha=0.5), r"alpha must lie in \(0, 0.5\)"),
        (lambda: Glow(1, 28, logit_alpha=0.0), r"alpha must lie in \(0, 0.5\)"),
    ],
)
def test_bad_configurations_fail_at_construction_with_a_clear_message(build, message):
    with pytest.raises(ValueError, match=message):
        build()
