"""`GenerativeMetrics`: FID and Inception Score of a module's samples against real images, every validation and test."""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from lightning_modules.metrics.feature_extractors import FeatureExtractor, blacken_nonfinite

log = logging.getLogger(__name__)


def real_images(batch: object) -> Tensor | None:
    """The images of an (images, labels) batch or a bare image batch; None for other layouts."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, list | tuple) and isinstance(batch[0], Tensor):
        return batch[0]
    return None


class GenerativeMetrics(Callback):
    """FID and Inception Score of `module.sample` against real validation (and test) images.

    The real reference is the first `num_samples` images of the stage's loader, read once per run
    (whatever `trainer.limit_val_batches` is); the generated images come from the same seeded noise
    every time, so epochs compare fairly. Everything runs on a forked, seeded global RNG: the
    numbers repeat on the same samples, and training draws the same noise with metrics on or off.
    """

    def __init__(
        self,
        feature_extractor: FeatureExtractor,
        num_samples: int = 2000,
        batch_size: int = 250,
        seed: int = 1234,
    ) -> None:
        if num_samples < 2:
            raise ValueError(f"metrics.num_samples must be >= 2 (FID needs two samples), got {num_samples}")
        self.extractor, self.num_samples, self.batch_size, self.seed = (
            feature_extractor,
            num_samples,
            batch_size,
            seed,
        )
        self.fid: dict[str, FrechetInceptionDistance] = {}
        self.inception_score: dict[str, InceptionScore] = {}
        self.real_complete: dict[str, bool] = {}

    def metrics_for(self, stage: str, device: torch.device) -> tuple[FrechetInceptionDistance, InceptionScore]:
        if stage not in self.fid:
            self.fid[stage] = FrechetInceptionDistance(self.extractor.features, reset_real_features=False).to(device)
            self.inception_score[stage] = InceptionScore(self.extractor.logits, splits=min(10, self.num_samples)).to(
                device
            )
            self.real_complete[stage] = False
        return self.fid[stage], self.inception_score[stage]

    def per_rank(self, trainer: L.Trainer) -> int:
        return max(2, self.num_samples // trainer.world_size)

    def collect_real(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """The stage's first `per_rank` real images on this rank (each rank's loader holds its own share)."""
        fid, _ = self.metrics_for(stage, pl_module.device)
        wanted = self.per_rank(trainer)
        for loader in stage_loaders(trainer, stage):
            for batch in loader:
                images = real_images(batch)
                missing = wanted - int(fid.real_features_num_samples)
                if images is None or missing <= 0:
                    break
                fid.update(images[:missing].to(pl_module.device), real=True)
        found = int(fid.real_features_num_samples)
        if found < wanted:
            rank_zero_warn(
                f"metrics.num_samples={self.num_samples} asks for {wanted} real {stage} images per process, "
                f"but the {stage} set has only {found}: FID compares {found} real with {wanted} generated "
                "images. Lower metrics.num_samples to the real count for a like-for-like comparison."
            )
        self.real_complete[stage] = True

    def compute(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.sanity_checking:
            return
        seed = self.seed + trainer.global_rank
        self.metrics_for(stage, pl_module.device)
        if not self.real_complete[stage]:
            with seeded_global_rng(seed, pl_module.device):
                self.collect_real(trainer, pl_module, stage)
        # Seeded afresh, so the first call (which also read the real images) scores like the others.
        with seeded_global_rng(seed, pl_module.device):
            self.score_samples(trainer, pl_module, stage)

    def score_samples(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        fid, inception_score = self.metrics_for(stage, pl_module.device)
        generator = torch.Generator().manual_seed(self.seed + trainer.global_rank)
        remaining, nonfinite = self.per_rank(trainer), 0
        while remaining > 0:
            images, count = blacken_nonfinite(pl_module.sample(min(self.batch_size, remaining), generator=generator))
            nonfinite += count
            fid.update(images, real=False)
            inception_score.update(images)
            remaining -= len(images)
        pl_module.log(f"{stage}/nonfinite_samples", float(nonfinite), reduce_fx="sum", sync_dist=True)
        pl_module.log(f"{stage}/fid", fid.compute())
        pl_module.log(f"{stage}/inception_score", inception_score.compute()[0])
        fid.reset()
        inception_score.reset()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.compute(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.compute(trainer, pl_module, "test")


def stage_loaders(trainer: L.Trainer, stage: str) -> list[Iterable]:
    """The loaders the trainer runs for `stage` ("val" or "test"), read in full (no batch limits)."""
    loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
    if loaders is None:
        return []
    return list(loaders) if isinstance(loaders, list | tuple) else [loaders]


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block on a fixed global RNG state and restore the caller's afterwards.

    torchmetrics' Inception Score permutes its samples with the global generator, and building a
    DataLoader iterator draws a seed from it; without this the metric's value would vary from call
    to call and switching metrics on or off would shift the noise training draws next.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
