"""The flow LightningModule: exact bits/dim, ActNorm init timing, warm-up, clipping, guards."""

import functools
import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.flow import NormalizingFlow
from lightning_modules.networks.flow_layers import ActNorm
from lightning_modules.networks.flows import Glow
from lightning_modules.training.guards import NonFiniteLossError
from tests.helpers.flows import UniformFlow
from tests.helpers.trainer import quiet_trainer


def images_8bit(n: int = 32, shape=(1, 8, 8), seed: int = 0, levels=(0, 256)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(*levels, (n, *shape), generator=generator).float() / 255


def loader(images: torch.Tensor, batch_size: int = 16) -> DataLoader:
    return DataLoader(TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), batch_size)


def small_glow() -> Glow:
    return Glow(1, 8, num_levels=2, num_steps=2, hidden_channels=8)


def make_module(flow=None, **kwargs) -> NormalizingFlow:
    optimizer = kwargs.pop("optimizer", functools.partial(torch.optim.Adam, lr=1e-3))
    kwargs.setdefault("sample_temperatures", ())
    return NormalizingFlow(flow or small_glow(), optimizer, **kwargs)


def make_trainer(tmp_path, **kwargs) -> L.Trainer:
    return quiet_trainer(default_root_dir=tmp_path, **kwargs)


def test_uniform_density_scores_exactly_8_bits_per_dim_through_the_module(tmp_path):
    module = make_module(UniformFlow((3, 4, 4)))
    (metrics,) = make_trainer(tmp_path).test(module, loader(images_8bit(40, (3, 4, 4))))
    assert metrics["test/bits_per_dim"] == pytest.approx(8.0, abs=1e-5)


def test_untrained_glow_scores_between_0_and_a_few_dozen_bits(tmp_path):
    module = make_module()
    (metrics,) = make_trainer(tmp_path).test(module, loader(images_8bit()))
    assert 0 < metrics["test/bits_per_dim"] < 30


class RecordActNorm(Callback):
    """Records whether every ActNorm is initialised at key moments of the fit."""

    def __init__(self) -> None:
        self.initialised_at: dict[str, bool] = {}

    def _record(self, name: str, module) -> None:
        flags = [m.initialized.item() for m in module.modules() if isinstance(m, ActNorm)]
        self.initialised_at.setdefault(name, all(flags))

    def on_train_start(self, trainer, module) -> None:  # after the sanity check
        self._record("after_sanity_check", module)

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self._record("first_optimizer_step", module)
        if not hasattr(self, "first_batch_bias"):
            self.first_batch_bias = module.flow.stages[0][1].bias.detach().clone()


def test_actnorm_initialises_on_first_training_batch_not_the_sanity_check(tmp_path):
    module, record = make_module(), RecordActNorm()
    # Dark training images, bright validation images: the init must come from the former.
    train_images = images_8bit(16, seed=1, levels=(0, 64))
    val_images = images_8bit(16, seed=2, levels=(192, 256))
    trainer = make_trainer(tmp_path, max_steps=1, num_sanity_val_steps=1, limit_val_batches=1, callbacks=[record])
    trainer.fit(module, loader(train_images), loader(val_images))
    assert record.initialised_at == {"after_sanity_check": False, "first_optimizer_step": True}
    # The first ActNorm (after preprocessing and a squeeze) centres the training batch.
    squeezed = torch.nn.functional.pixel_unshuffle(train_images - 0.5, 2)
    expected = -squeezed.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
    assert expected.min() > 0.3, "the check below must be able to tell the batches apart"
    torch.testing.assert_close(record.first_batch_bias, expected, atol=5e-3, rtol=0)


def test_learning_rate_warms_up_linearly(tmp_path):
    module = make_module(warmup_steps=10, optimizer=functools.partial(torch.optim.Adam, lr=1e-2))
    trainer = make_trainer(tmp_path, max_steps=3)
    trainer.fit(module, loader(images_8bit(64)))
    # After 3 optimizer steps the scheduler has stepped 3 times: lr = 1e-2 * 4 / 10.
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(4e-3)


def update_norm(tmp_path, gradient_clip_val: float | None) -> float:
    """Norm of the parameter change made by one SGD step with lr = 1."""
    module = make_module(
        warmup_steps=0,
        gradient_clip_val=gradient_clip_val,
        optimizer=functools.partial(torch.optim.SGD, lr=1.0),
    )
    for norm in module.modules():  # keep the data-dependent init out of the measured update
        if isinstance(norm, ActNorm):
            norm.initialized.fill_(1)
    before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
    make_trainer(tmp_path, max_steps=1).fit(module, loader(images_8bit(16)))
    after = torch.cat([p.detach().flatten() for p in module.parameters()])
    return (after - before).norm().item()


def test_module_gradient_clipping_bounds_the_update(tmp_path):
    assert update_norm(tmp_path, None) > 0.1, "unclipped, the step must be large for this test"
    assert 0 < update_norm(tmp_path, 1e-3) <= 1e-3 * 1.01


class PoisonActNorm(Callback):
    """Makes the log-determinant NaN from a given step on."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                module.flow.stages[0][1].log_scale.fill_(float("nan"))


def test_nan_log_determinant_stops_training_naming_the_step_and_keeps_last_checkpoint(tmp_path):
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
    trainer = make_trainer(tmp_path, max_steps=5, enable_checkpointing=True, callbacks=[checkpoints, PoisonActNorm(2)])
    with pytest.raises(NonFiniteLossError, match="log-determinant is .* at step 2"):
        # temperatures arrive from Hydra as a ListConfig, which weights_only loading rejects
        temperatures = OmegaConf.create([0.5, 1.0])
        trainer.fit(make_module(sample_temperatures=temperatures), loader(images_8bit(64)))
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_data_not_on_the_8_bit_grid_fails_on_the_first_batch(tmp_path):
    blurred = images_8bit(16) * 0.999 + 0.0001
    with pytest.raises(ValueError, match="not on the 8-bit grid"):
        make_trainer(tmp_path, max_steps=1).fit(make_module(), loader(blurred))


def test_data_shape_must_match_the_flow(tmp_path):
    with pytest.raises(ValueError, match=r"built for images of shape \(1, 8, 8\)"):
        make_trainer(tmp_path, max_steps=1).fit(make_module(), loader(images_8bit(16, (3, 8, 8))))


def test_sample_in_unit_range_reproducible_and_does_not_initialise_actnorm():
    module = make_module()
    first = module.sample(4, torch.Generator().manual_seed(0), temperature=0.7)
    second = module.sample(4, torch.Generator().manual_seed(0), temperature=0.7)
    assert first.shape == (4, 1, 8, 8) and torch.equal(first, second)
    assert first.min() >= 0 and first.max() <= 1
    assert module.needs_actnorm_init()
    assert module.num_classes is None


def test_bad_module_arguments_are_rejected():
    with pytest.raises(ValueError, match="num_bits must be in"):
        make_module(num_bits=0)
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        make_module(warmup_steps=-1)


def test_validation_logs_sample_grids_at_each_temperature(tmp_path):
    module = make_module(sample_temperatures=(0.5, 1.0), num_grid_samples=4)
    trainer = make_trainer(tmp_path, max_steps=1, limit_val_batches=1)
    trainer.fit(module, loader(images_8bit(16)), loader(images_8bit(16, seed=3)))
    names = sorted(path.name for path in (tmp_path / "images").glob("*.png"))
    assert [name.split("_step")[0] for name in names] == [
        "samples_temperature_0.5",
        "samples_temperature_1",
    ]


def test_nll_in_nats_agrees_with_bits_per_dim(tmp_path):
    module = make_module()
    (metrics,) = make_trainer(tmp_path).test(module, loader(images_8bit()))
    dims_ln2 = module.num_dims * math.log(2)
    assert metrics["test/nll_nats"] == pytest.approx(metrics["test/bits_per_dim"] * dims_ln2)


class OverflowingFlow(UniformFlow):
    """Samples that overflowed in the inverse: NaN in the first image."""

    def sample(self, n: int, temperature: float = 1.0, generator=None) -> torch.Tensor:
        images = super().sample(n, temperature, generator)
        images[0, 0, 0, 0] = float("nan")
        return images


def test_nan_samples_are_replaced_with_a_warning_so_fid_never_sees_them():
    module = make_module(OverflowingFlow((1, 4, 4)))
    with pytest.warns(UserWarning, match="1 of 3 flow samples at temperature 0.7 had NaN"):
        images = module.sample(3, temperature=0.7)
    assert torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 1


def test_anomaly_score_is_per_image_bits_per_dim_like_evaluation(tmp_path):
    module = make_module(seed=3)
    x = images_8bit(16)
    make_trainer(tmp_path, max_steps=2).fit(module, loader(x))  # initialises ActNorm, moves weights
    scores = module.anomaly_score(x)
    assert scores.shape == (16,)
    tested = make_trainer(tmp_path).test(module, loader(x, batch_size=16), verbose=False)[0]
    # evaluate() uses the noise of seed + batch_idx; batch 0 is the anomaly score's default.
    torch.testing.assert_close(scores.mean().item(), tested["test/bits_per_dim"], rtol=1e-5, atol=1e-5)


def test_anomaly_score_never_initialises_actnorm():
    module = make_module()
    module.anomaly_score(images_8bit(4))
    assert module.needs_actnorm_init()


def test_anomaly_score_is_higher_for_images_unlike_the_training_data(tmp_path):
    dark = images_8bit(64, levels=(0, 40))
    bright = images_8bit(8, levels=(200, 256), seed=1)
    module = make_module(warmup_steps=0)
    make_trainer(tmp_path, max_steps=60).fit(module, loader(dark))
    assert module.anomaly_score(bright).min() > module.anomaly_score(dark[:8]).max()
