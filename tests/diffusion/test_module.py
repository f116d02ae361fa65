"""The DDPM and flow-matching LightningModules on tiny random 8-bit images: interface, sampling
settings, guidance, likelihood scale, EMA, label dropout, the denoising-process grid."""

import functools
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks.denoising_process import denoising_process_grid
from lightning_modules.diffusion import DDPM, FlowMatching
from lightning_modules.networks.unet import UNet
from tests.helpers.trainer import assert_same_state, quiet_trainer

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def tiny_unet(num_classes: int | None = None) -> UNet:
    return UNet(1, 8, 8, (1, 2), 1, (), 0.0, num_classes, norm_groups=4)


def ddpm(num_classes: int | None = None, **settings) -> DDPM:
    return DDPM(tiny_unet(num_classes), ADAM, num_timesteps=20, sample_steps=4, bound_steps=3, **settings)


def flow_matching(num_classes: int | None = None, **settings) -> FlowMatching:
    return FlowMatching(tiny_unet(num_classes), ADAM, sample_steps=3, likelihood_steps=2, **settings)


def images_8bit(n: int = 16) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=generator).float() / 255
    return DataLoader(TensorDataset(images, torch.randint(0, 10, (n,), generator=generator)), batch_size=8)


@pytest.mark.parametrize("make", [ddpm, flow_matching])
def test_sample_is_seeded_and_in_unit_range(make):
    module = make()
    first = module.sample(3, torch.Generator().manual_seed(0))
    assert first.shape == (3, 1, 8, 8) and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, module.sample(3, torch.Generator().manual_seed(0)))


def test_untrained_flow_matching_scores_the_standard_normal_on_the_8_bit_scale(tmp_path):
    """The untrained U-Net outputs zero (its last layer starts at zero), so the ODE is the identity
    and log p is the standard normal at the dequantized point x in [-1, 1), plus D log 2 for
    u = (x + 1) / 2: for uniform pixels 7 + (log(2 pi) / 2 + E[x^2] / 2) / ln 2 = 8.566 bits/dim."""
    (metrics,) = quiet_trainer(default_root_dir=tmp_path).test(flow_matching(), images_8bit(), verbose=False)
    assert metrics["test/bits_per_dim"] == pytest.approx(
        7 + (0.5 * math.log(2 * math.pi) + 1 / 6) / math.log(2), abs=0.03
    )


def test_ddpm_bound_on_uniform_noise_is_above_its_8_bit_entropy(tmp_path):
    """Uniform 8-bit pixels have entropy 8 bits/dim; no model's bound can be lower."""
    (metrics,) = quiet_trainer(default_root_dir=tmp_path).test(ddpm(), images_8bit(), verbose=False)
    assert metrics["test/bits_per_dim"] > 8
    assert metrics["test/bits_per_dim"] == pytest.approx(metrics["test/nll_bound_nats"] / (64 * math.log(2)), rel=1e-4)


def test_sampler_is_chosen_at_sampling_time_and_checked():
    module = ddpm()
    assert module.configure_sampling(sampler="ddpm").steps is None and module.sampling_step_count() == 20
    assert module.configure_sampling(sampler="ddim", steps=7, eta=1.0).steps == 7
    with pytest.raises(ValueError, match="Unknown sampler 'heun'. Available: ddpm, ddim"):
        module.configure_sampling(sampler="heun")
    with pytest.raises(ValueError, match="ancestral ddpm sampler takes all T=20 steps"):
        module.configure_sampling(sampler="ddpm", steps=5)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        flow_matching().configure_sampling(steps=0)
    with pytest.raises(ValueError, match="exceeds the T=20 steps"):
        module.configure_sampling(steps=21)


def test_guidance_needs_a_conditional_model_at_start_up():
    with pytest.raises(ValueError, match="unconditional"):
        ddpm(guidance=2.0)
    with pytest.raises(ValueError, match="unconditional"):
        flow_matching().configure_sampling(guidance=3.0)
    conditional = flow_matching(num_classes=10, guidance=2.0)
    labels = torch.tensor([1, 2])
    assert conditional.sample(2, torch.Generator().manual_seed(0), labels).shape == (2, 1, 8, 8)


def test_bad_settings_fail_at_start_up():
    with pytest.raises(ValueError, match="Unknown noise schedule"):
        ddpm(schedule="sigmoid")
    with pytest.raises(ValueError, match="Unknown prediction type"):
        ddpm(prediction_type="score")
    with pytest.raises(ValueError, match="bound_steps must be in"):
        DDPM(tiny_unet(), ADAM, num_timesteps=20, bound_steps=20)
    with pytest.raises(ValueError, match="label_dropout"):
        flow_matching(label_dropout=1.0)


def test_label_dropout_replaces_labels_by_the_no_label_token():
    module = ddpm(num_classes=10, label_dropout=0.5)
    dropped = module.drop_labels(torch.zeros(1000, dtype=torch.long))
    assert set(dropped.unique().tolist()) == {0, 10}
    assert 0.4 < (dropped == 10).float().mean() < 0.6


def test_training_moves_the_network_and_its_ema_and_samples_use_the_ema(tmp_path):
    module = flow_matching(ema_decay=0.5)
    before = [p.clone() for p in module.network_ema.module.parameters()]
    quiet_trainer(default_root_dir=tmp_path, max_steps=2, limit_val_batches=0).fit(module, images_8bit())
    after = list(module.network_ema.module.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert module.evaluation_network() is module.network_ema.module


def test_validation_loss_does_not_depend_on_the_batching(tmp_path):
    module = ddpm()
    whole = quiet_trainer(default_root_dir=tmp_path).validate(module, images_8bit(), verbose=False)
    loader = DataLoader(images_8bit().dataset, batch_size=5)
    split = quiet_trainer(default_root_dir=tmp_path).validate(module, loader, verbose=False)
    assert whole[0]["val/loss"] == pytest.approx(split[0]["val/loss"], rel=1e-5)


@pytest.mark.parametrize("make", [ddpm, flow_matching])
def test_denoising_process_grid_has_a_row_per_sample_from_noise_to_image(make):
    module = make(num_classes=10)
    grid = denoising_process_grid(module, num_samples=3, num_columns=4, seed=0)
    padding = 2
    assert grid.shape == (3, 3 * (8 + padding) + padding, 4 * (8 + padding) + padding)


@pytest.mark.parametrize("make", [ddpm, flow_matching])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(make, tmp_path):
    """Weights, EMA and the checkpointed noise generator (times, noise, label dropout) all resume."""

    def fresh():
        torch.manual_seed(0)
        return make(num_classes=10, ema_decay=0.9)

    def fit(module, epochs, **kwargs):
        trainer = quiet_trainer(default_root_dir=tmp_path, max_epochs=epochs, limit_val_batches=0)
        trainer.fit(module, images_8bit(), **kwargs)
        return trainer

    uninterrupted = fresh()
    fit(uninterrupted, 2)
    fit(fresh(), 1).save_checkpoint(tmp_path / "half.ckpt")
    resumed = fresh()
    fit(resumed, 2, ckpt_path=tmp_path / "half.ckpt")
    actual = resumed.state_dict()
    assert_same_state(uninterrupted.state_dict(), actual)
    assert not torch.equal(fresh().network.stem.weight, actual["network.stem.weight"])


@pytest.mark.parametrize("make", [ddpm, flow_matching])
def test_trains_under_bf16_mixed_precision_with_a_float32_loss(make, tmp_path):
    module = make()
    losses = []
    module.on_train_batch_end = lambda outputs, batch, batch_idx: losses.append(outputs["loss"])
    quiet_trainer(default_root_dir=tmp_path, max_steps=2, limit_val_batches=0, precision="bf16-mixed").fit(
        module, images_8bit()
    )
    assert all(loss.dtype == torch.float32 and torch.isfinite(loss) for loss in losses) and len(losses) == 2
