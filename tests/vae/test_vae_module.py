"""The VAE and autoencoder modules on tiny networks and random data (no dataset, seconds)."""

import functools

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.autoencoder import Autoencoder
from lightning_modules.networks.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from lightning_modules.objectives.likelihoods import (
    BernoulliLikelihood,
    DiscretizedLogisticLikelihood,
    GaussianLikelihood,
)
from lightning_modules.training.guards import NonFiniteLossError
from lightning_modules.vae import VAE
from tests.helpers.modules import ADAM, tiny_vae


def images(n=6, size=8, channels=1):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0))


def test_loss_parts_are_nats_per_image_and_beta_changes_only_the_objective():
    torch.manual_seed(0)
    vae = tiny_vae()
    x = (images() > 0.5).float()
    parts = vae.loss(x, beta=1.0, generator=torch.Generator().manual_seed(1))
    weighted = vae.loss(x, beta=4.0, generator=torch.Generator().manual_seed(1))
    assert set(parts) == {"loss", "nelbo_nats", "reconstruction_nats", "kl_nats"}
    torch.testing.assert_close(parts["nelbo_nats"], parts["reconstruction_nats"] + parts["kl_nats"])
    torch.testing.assert_close(parts["loss"], parts["nelbo_nats"])
    torch.testing.assert_close(weighted["nelbo_nats"], parts["nelbo_nats"])
    torch.testing.assert_close(weighted["loss"], weighted["reconstruction_nats"] + 4 * weighted["kl_nats"])
    # An untrained Bernoulli decoder with logits near 0 costs about ln 2 nats per pixel.
    assert 0.5 * 64 < parts["reconstruction_nats"].item() < 1.5 * 64


def test_iwae_nll_with_one_sample_matches_the_negative_elbo_on_average():
    torch.manual_seed(0)
    vae = tiny_vae(iwae_samples=1, iwae_chunk_size=1)
    x = (images(200) > 0.5).float()
    iwae_1 = torch.stack([vae.importance_weighted_nll(x) for _ in range(50)]).mean()
    with torch.no_grad():
        nelbo = torch.stack([vae.loss(x)["nelbo_nats"] for _ in range(50)]).mean()
    assert iwae_1.item() == pytest.approx(nelbo.item(), abs=0.3)
    vae.hparams.iwae_samples, vae.hparams.iwae_chunk_size = 64, 10
    assert vae.importance_weighted_nll(x).mean() < nelbo


@pytest.mark.parametrize("num_classes", [None, 3])
def test_sample_reconstruct_and_interpolate_give_images_in_unit_interval(num_classes):
    vae = tiny_vae(num_classes=num_classes, binarize=True)
    generator = torch.Generator().manual_seed(0)
    samples = vae.sample(5, generator=generator)
    again = vae.sample(5, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    torch.testing.assert_close(samples, again)
    x = images(4)
    labels = torch.tensor([0, 1, 2, 0]) if num_classes else None
    assert vae.reconstruct(x, labels).shape == (4, 1, 8, 8)
    assert vae.interpolate(x[:2], x[2:], steps=5).shape == (10, 1, 8, 8)


def test_conditional_samples_depend_on_the_label():
    torch.manual_seed(0)
    vae = tiny_vae(num_classes=3)
    first = vae.sample(2, torch.Generator().manual_seed(0), labels=torch.tensor([0, 0]))
    second = vae.sample(2, torch.Generator().manual_seed(0), labels=torch.tensor([2, 2]))
    assert not torch.allclose(first, second)
    assert vae.num_classes == 3


def test_bad_settings_fail_at_construction():
    with pytest.raises(ValueError, match="beta must be non-negative, got -0.5"):
        tiny_vae(beta=-0.5)
    with pytest.raises(ValueError, match="iwae_samples must be positive, got 0"):
        tiny_vae(iwae_samples=0)
    with pytest.raises(ValueError, match="binarize=true .* Bernoulli"):
        tiny_vae(likelihood=GaussianLikelihood(), binarize=True)
    with pytest.raises(ValueError, match="decoder.params_per_channel=1 but DiscretizedLogistic"):
        VAE(
            MLPEncoder(4, image_size=8),
            MLPDecoder(4, image_size=8),
            DiscretizedLogisticLikelihood(),
            ADAM,
        )
    with pytest.raises(ValueError, match="encoder.latent_dim=4 but decoder.latent_dim=5"):
        VAE(MLPEncoder(4, image_size=8), MLPDecoder(5, image_size=8), BernoulliLikelihood(), ADAM)
    with pytest.raises(ValueError, match="model.optimizer"):
        VAE(
            MLPEncoder(4),
            MLPDecoder(4),
            BernoulliLikelihood(),
            functools.partial(torch.optim.Adam, lr=-1),
        )


def fit(module, x, max_steps=3, **trainer_kwargs):
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=4)
    trainer = L.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        **trainer_kwargs,
    )
    trainer.fit(module, loader, loader)
    return trainer


def test_bernoulli_on_data_outside_unit_interval_stops_at_the_first_step(tmp_path):
    with pytest.raises(ValueError, match=r"Bernoulli likelihood needs data in \[0, 1\]"):
        fit(tiny_vae(), images() * 2 - 1, default_root_dir=tmp_path, num_sanity_val_steps=0)


def test_nan_loss_stops_training_with_a_message(tmp_path):
    vae = tiny_vae(likelihood=GaussianLikelihood())
    with torch.no_grad():
        vae.decoder.head.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="VAE loss is"):
        fit(vae, images(), default_root_dir=tmp_path, num_sanity_val_steps=0)


@pytest.mark.parametrize("module_class", [VAE, Autoencoder])
def test_a_few_steps_log_named_parts_with_units(tmp_path, module_class):
    module = tiny_vae(module_class=module_class, binarize=True)
    trainer = fit(module, images(16), max_steps=4, default_root_dir=tmp_path, limit_val_batches=2)
    logged = trainer.callback_metrics
    expected_val = {"val/reconstruction_nats"} | (
        {"val/nelbo_nats", "val/kl_nats", "val/nelbo_bits_per_dim"} if module_class is VAE else set()
    )
    assert expected_val <= set(logged)
    assert "train/reconstruction_nats" in logged
    test_metrics = trainer.test(module, DataLoader(TensorDataset(images(8), torch.zeros(8).long()), 4))[0]
    if module_class is VAE:
        assert {"test/iwae_nll_nats", "test/bits_per_dim", "test/nelbo_nats"} <= set(test_metrics)
        assert test_metrics["test/iwae_nll_nats"] <= test_metrics["test/nelbo_nats"] + 1.0
    else:
        assert set(test_metrics) == {"test/reconstruction_nats"}


def test_autoencoder_samples_from_its_fitted_code_distribution():
    autoencoder = tiny_vae(module_class=Autoencoder, code_momentum=1.0)
    code = torch.randn(64, 4) * 3 + 5
    autoencoder.update_code_statistics(code)
    torch.testing.assert_close(autoencoder.code_mean, code.mean(0))
    assert autoencoder.sample(3).shape == (3, 1, 8, 8)
    assert autoencoder.anomaly_score(images(3)).shape == (3,)
    with pytest.raises(ValueError, match="code_momentum"):
        tiny_vae(module_class=Autoencoder, code_momentum=0.0)


def test_conv_vae_with_discretized_logistic_on_cifar_shaped_data():
    likelihood = DiscretizedLogisticLikelihood()
    encoder = ConvEncoder(latent_dim=4, channels=3, image_size=32, conv_channels=(8, 8, 8), hidden_dim=16)
    decoder = ConvDecoder(
        latent_dim=4,
        channels=3,
        image_size=32,
        conv_channels=(8, 8, 8),
        hidden_dim=16,
        params_per_channel=2,
    )
    vae = VAE(encoder, decoder, likelihood, ADAM, iwae_samples=3, iwae_chunk_size=2)
    x = torch.randint(0, 256, (2, 3, 32, 32)).float() / 255
    parts = vae.loss(x)
    # Untrained, each pixel gets some probability mass of at most one: the bound is positive nats.
    assert parts["reconstruction_nats"] > 0
    assert vae.importance_weighted_nll(x).shape == (2,)
    assert vae.sample(2).shape == (2, 3, 32, 32)


def test_bound_is_computed_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    vae = tiny_vae(likelihood=DiscretizedLogisticLikelihood())
    x = torch.randint(0, 256, (4, 1, 8, 8)).float() / 255
    full = vae.loss(x, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = vae.loss(x, generator=torch.Generator().manual_seed(1))
        mean, log_variance = vae.encode(x)
        params = vae.decode(mean)
    # Only the networks' matmuls run in bf16; the KL and the likelihood sum in float32.
    assert mean.dtype == log_variance.dtype == params.dtype == torch.float32
    assert mixed["nelbo_nats"].dtype == mixed["kl_nats"].dtype == torch.float32
    torch.testing.assert_close(mixed["nelbo_nats"], full["nelbo_nats"], rtol=0.02, atol=0)


# --- applications: anomaly scores, imputation, the 2-D latent map ---


def test_vae_anomaly_score_is_the_per_image_negative_elbo():
    torch.manual_seed(0)
    vae = tiny_vae()
    x = (images(8) > 0.5).float()
    scores = vae.anomaly_score(x, generator=torch.Generator().manual_seed(5))
    parts = vae.loss(x, generator=torch.Generator().manual_seed(5))
    assert scores.shape == (8,)
    torch.testing.assert_close(scores.mean(), parts["nelbo_nats"])
    # The default generator is fixed, so scores are reproducible.
    torch.testing.assert_close(vae.anomaly_score(x), vae.anomaly_score(x))


def test_reconstruction_of_an_image_does_not_depend_on_its_batch():
    vae = tiny_vae(binarize=True)
    x = images(8)
    torch.testing.assert_close(vae.reconstruct(x[2:5]), vae.reconstruct(x)[2:5], rtol=0, atol=1e-6)


@pytest.mark.parametrize("module_class", [VAE, Autoencoder])
def test_anomaly_score_of_an_image_does_not_depend_on_its_batch(module_class):
    torch.manual_seed(0)
    module = tiny_vae(module_class=module_class, binarize=True)
    x = images(8)
    together = module.anomaly_score(x)
    in_two_batches = torch.cat([module.anomaly_score(x[:3]), module.anomaly_score(x[3:])])
    order = torch.tensor([5, 0, 7, 2, 6, 1, 4, 3])
    reordered = torch.cat([module.anomaly_score(x[order[:3]]), module.anomaly_score(x[order[3:]])])
    torch.testing.assert_close(in_two_batches, together, rtol=0, atol=1e-5)
    torch.testing.assert_close(reordered, together[order], rtol=0, atol=1e-5)


def test_vae_anomaly_score_by_default_matches_the_test_steps_noise():
    torch.manual_seed(0)
    vae = tiny_vae(binarize=True)
    x = images(8)
    noise = vae.evaluation_noise(x)
    expected = vae.evaluation_metrics(vae.prepare_images(x, noise), None, "test", noise)["test/nelbo_nats"]
    torch.testing.assert_close(vae.anomaly_score(x).mean(), expected)


def test_autoencoder_anomaly_score_binarizes_like_evaluation():
    torch.manual_seed(0)
    autoencoder = tiny_vae(module_class=Autoencoder, binarize=True)
    x = images(8)
    binary = autoencoder.prepare_images(x, torch.Generator().manual_seed(3))
    expected = autoencoder.reconstruction_nll(binary)
    torch.testing.assert_close(autoencoder.anomaly_score(x, generator=torch.Generator().manual_seed(3)), expected)


@pytest.mark.parametrize("module_class", [VAE, Autoencoder])
def test_anomaly_score_is_higher_for_images_unlike_the_training_data(tmp_path, module_class):
    top = torch.zeros(64, 1, 8, 8)
    top[:, :, :4] = 1  # training data: the top half lit
    bottom = top.flip(2)  # never seen: the bottom half lit
    module = tiny_vae(module_class=module_class)
    fit(module, top, max_steps=150, default_root_dir=tmp_path, limit_val_batches=0)
    assert module.anomaly_score(bottom[:8]).min() > module.anomaly_score(top[:8]).max()


def test_impute_keeps_observed_pixels_and_iterates_encode_decode():
    torch.manual_seed(0)
    vae = tiny_vae()
    x = images(4)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 4:, :] = True  # the bottom half is missing
    mean_image = torch.full((1, 1, 8, 8), 0.3)
    start = vae.impute(x, mask, steps=0, initial=mean_image)
    torch.testing.assert_close(start, torch.where(mask, mean_image, x))  # steps=0 is mean-fill
    three = vae.impute(x, mask, steps=3, initial=mean_image)
    four = vae.impute(x, mask, steps=4, initial=mean_image)
    torch.testing.assert_close(three[~mask.expand_as(x)], x[~mask.expand_as(x)], rtol=0, atol=0)
    with torch.no_grad():
        posterior_mean, _ = vae.encode(three)
        step = torch.sigmoid(vae.decode(posterior_mean))
    torch.testing.assert_close(four, torch.where(mask, step, x))
    assert not torch.equal(three, start)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        vae.impute(x, mask.float())


def test_latent_grid_decodes_a_regular_grid_with_z2_growing_up():
    encoder = MLPEncoder(latent_dim=2, image_size=8, hidden_dims=(16,))
    decoder = MLPDecoder(latent_dim=2, image_size=8, hidden_dims=(16,))
    vae = VAE(encoder, decoder, BernoulliLikelihood(), ADAM)
    grid = vae.latent_grid(steps=5, extent=2.0)
    assert grid.shape == (25, 1, 8, 8)
    with torch.no_grad():
        corners = torch.sigmoid(vae.decode(torch.tensor([[-2.0, 2.0], [2.0, 2.0], [-2.0, -2.0], [0.0, 0.0]])))
    torch.testing.assert_close(grid[[0, 4, 20, 12]], corners)
    with pytest.raises(ValueError, match="latent_grid needs a 2-D latent"):
        tiny_vae().latent_grid()
