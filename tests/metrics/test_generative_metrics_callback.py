"""FID/IS during training: repeatable, a fixed-size real reference, and no effect on training noise."""

import functools

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.callbacks.generative_metrics import GenerativeMetrics
from lightning_modules.flow import NormalizingFlow
from lightning_modules.metrics.feature_extractors import FeatureExtractor
from lightning_modules.networks.flows import Glow
from tests.helpers.trainer import quiet_trainer


class PooledPixels(nn.Module):
    """Four features per image (2x2 average pooling): cheap, and enough for a finite FID and an IS."""

    num_features = 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.double(), 2).flatten(1)


def pooled_metrics(num_samples: int) -> GenerativeMetrics:
    return GenerativeMetrics(FeatureExtractor("pooled", PooledPixels(), PooledPixels()), num_samples, batch_size=16)


def real_loader(n: int, batch_size: int = 10) -> DataLoader:
    images = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return DataLoader(TensorDataset(images, torch.zeros(n, dtype=torch.long)), batch_size=batch_size)


class RandomImages(L.LightningModule):
    """A stand-in generative model: `sample` draws uniform images from the generator it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, 1, 8, 8, generator=generator)

    def validation_step(self, batch, batch_idx) -> None:
        pass


def test_inception_score_repeats_on_the_same_samples():
    trainer = quiet_trainer(limit_val_batches=1, callbacks=[pooled_metrics(40)])
    scores = []
    for _ in range(3):
        trainer.validate(RandomImages(), real_loader(60), verbose=False)
        scores.append(float(trainer.callback_metrics["val/inception_score"]))
    assert scores[0] == scores[1] == scores[2]


def test_fid_reference_holds_num_samples_real_images_whatever_limit_val_batches():
    metrics = pooled_metrics(40)
    quiet_trainer(limit_val_batches=1, callbacks=[metrics]).validate(RandomImages(), real_loader(100), verbose=False)
    assert int(metrics.fid["val"].real_features_num_samples) == 40


def test_fewer_real_images_than_requested_warns_naming_the_setting():
    metrics = pooled_metrics(40)
    trainer = quiet_trainer(callbacks=[metrics])
    with pytest.warns(UserWarning, match="metrics.num_samples=40 .* only 30"):
        trainer.validate(RandomImages(), real_loader(30), verbose=False)
    assert int(metrics.fid["val"].real_features_num_samples) == 30


class RecordTrainingRng(L.Callback):
    """The global RNG state at each training batch: the source of a flow's dequantization noise."""

    def __init__(self) -> None:
        self.states: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.states.append(torch.get_rng_state())


def flow_training_rng_states(with_metrics: bool) -> list[torch.Tensor]:
    L.seed_everything(0)
    flow = Glow(1, 8, num_levels=1, num_steps=1, hidden_channels=4)
    module = NormalizingFlow(flow, functools.partial(torch.optim.Adam, lr=1e-3), sample_temperatures=())
    images = torch.randint(0, 256, (32, 1, 8, 8), generator=torch.Generator().manual_seed(0)).float() / 255
    loader = DataLoader(TensorDataset(images, torch.zeros(32, dtype=torch.long)), batch_size=8)
    record = RecordTrainingRng()
    callbacks = [record, pooled_metrics(16)] if with_metrics else [record]
    trainer = quiet_trainer(max_steps=4, val_check_interval=2, limit_val_batches=1, callbacks=callbacks)
    trainer.fit(module, loader, loader)
    return record.states


def test_flow_draws_the_same_training_noise_with_metrics_on_and_off():
    with_metrics, without = flow_training_rng_states(True), flow_training_rng_states(False)
    assert len(with_metrics) == len(without) == 4
    for step, (a, b) in enumerate(zip(with_metrics, without, strict=True)):
        assert torch.equal(a, b), f"training step {step} draws different noise with metrics on"
