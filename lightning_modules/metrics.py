"""FID and Inception Score through torchmetrics, with Inception or a dataset classifier as features;
the AUROC of unbounded scores (anomaly detection).

Every feature module takes images in [0, 1] of shape (N, C, H, W) and returns (N, d); grayscale
images are repeated to three channels for Inception.
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torchmetrics.functional.classification import binary_auroc
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from datamodules.identity import identity_digest
from lightning_modules.caches import build_on_rank_zero, matching_record, summary, write_record
from lightning_modules.classifier import load_feature_classifier, train_feature_classifier

log = logging.getLogger(__name__)


class InceptionUnavailableError(RuntimeError):
    """Inception weights were asked for but cannot be had."""


@dataclass
class FeatureExtractor:
    """`features` feed FID; `logits` (class scores) feed the Inception Score.

    `image_size`: the square size the network takes, when it needs one (Inception resizes itself).
    """

    name: str
    features: nn.Module
    logits: nn.Module
    image_size: int | None = None

    def network_input(self, images: Tensor) -> Tensor:
        """Images in [0, 1] as float, resized when the network takes a fixed size."""
        images = images.float()
        if self.image_size is None or images.shape[-1] == self.image_size:
            return images
        size = (self.image_size, self.image_size)
        return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Both outputs for images in [0, 1], from one network pass."""
        images = self.network_input(images)
        return self.features(images), self.logits(images)


class SharedForward(nn.Module):
    """Runs a network once per image batch for several outputs.

    torchmetrics' FID and IS each call their own feature module on the same generated batch; the
    last batch's outputs are kept so the network does not run twice on it.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.last_input: Tensor | None = None
        self.last_outputs: tuple[Tensor, ...] = ()

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        if images is not self.last_input:
            self.last_input, self.last_outputs = images, self.network(images)
        return self.last_outputs


class SharedOutput(nn.Module):
    """Output `index` of a `SharedForward`, with the `num_features` torchmetrics asks for."""

    def __init__(self, shared: SharedForward, index: int, num_features: int) -> None:
        super().__init__()
        self.shared, self.index, self.num_features = shared, index, num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.shared(images)[self.index]


class ClassifierFeaturesAndLogits(nn.Module):
    """(penultimate features, class logits) of a `SmallClassifier`."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.classifier.features(images.float())
        return features, self.classifier.head(features)


class InceptionFeaturesAndLogits(nn.Module):
    """(2048 pool features, 1008 unbiased logits) of torch-fidelity's Inception-v3, for images in [0, 1].

    torch-fidelity resizes like the original TensorFlow code (no antialiasing), so numbers match
    published ones.
    """

    def __init__(self, weights_path: str | None) -> None:
        super().__init__()
        self.network = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=weights_path
        )

    def train(self, mode: bool = True) -> "InceptionFeaturesAndLogits":
        return super().train(False)  # batch norm and dropout stay in inference mode

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return self.network((images.float() * 255).round().clamp(0, 255).to(torch.uint8))


def shared_extractor(
    name: str, network: nn.Module, feature_dim: int, num_classes: int, image_size: int | None = None
) -> FeatureExtractor:
    shared = SharedForward(network)
    return FeatureExtractor(
        name, SharedOutput(shared, 0, feature_dim), SharedOutput(shared, 1, num_classes), image_size
    )


def inception_feature_extractor(weights_path: str | None = None) -> FeatureExtractor:
    """Inception-v3 as in torch-fidelity; weights from `weights_path` or torch-fidelity's download."""
    if weights_path is not None and not Path(weights_path).is_file():
        raise InceptionUnavailableError(inception_help(f"no file at {weights_path}"))
    try:
        return shared_extractor("inception", InceptionFeaturesAndLogits(weights_path), 2048, 1008)
    except Exception as error:  # the download raises URLError/HTTPError/OSError when offline
        raise InceptionUnavailableError(inception_help(f"{type(error).__name__}: {error}")) from error


def inception_help(reason: str) -> str:
    return (
        f"Inception weights for FID/IS could not be loaded ({reason}). Either download torch-fidelity's "
        "weights-inception-2015-12-05-6726825d.pth and set metrics.feature_extractor.weights_path=<file>, "
        "or use metrics=classifier (features of a classifier trained on the dataset; numbers are not "
        "comparable with published ones)."
    )


def classifier_feature_extractor(
    data: L.LightningDataModule, cache_dir: str, max_epochs: int = 1, batch_size: int = 128
) -> FeatureExtractor:
    """A classifier trained once on the train split of `data.classifier_reference()`, cached under `cache_dir`.

    For torchvision datasets that reference is one fixed split of the dataset, so runs that train
    on different subsets (`exclude_classes`, `train_size`, another split seed) share one classifier.
    The cache is keyed on everything that decides the classifier: the reference's settings and
    actual splits (`cache_identity`) and the training settings. Under DDP rank 0 trains it while
    the other ranks wait, then every rank loads the same file.
    """
    if getattr(data, "num_classes", None) is None:
        raise ValueError(f"metrics=classifier needs a labelled dataset; set data.num_classes for {data.cache_key}")
    reference = data.classifier_reference()
    reference.prepare_data()
    training = {"network": "SmallClassifier", "max_epochs": max_epochs, "batch_size": batch_size, "seed": 0}
    computed_from = {"data": reference.cache_identity(), "classifier": training}
    path = Path(cache_dir) / f"{reference.cache_key}-{identity_digest(computed_from)}.pt"
    train_images = len(reference.train_set)

    def train() -> None:
        log.info("Training the feature classifier for %s once; it is cached at %s", reference.cache_key, path)
        train_feature_classifier(reference, path, max_epochs, batch_size, seed=training["seed"])
        write_record(path, computed_from, train_images)

    build_on_rank_zero(path, lambda: matching_record(path, computed_from, train_images) is not None, train)
    network, accuracy = load_feature_classifier(path)
    log.info(
        "Using the feature classifier cached at %s (test accuracy %.4f), computed from %s",
        path,
        accuracy,
        summary(computed_from),
    )
    return shared_extractor(
        f"classifier:{path.stem}",
        ClassifierFeaturesAndLogits(network),
        network.feature_dim,
        data.num_classes,
        data.image_size,
    )


def real_images(batch: object) -> Tensor | None:
    """The images of an (images, labels) batch or a bare image batch; None for other layouts."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, list | tuple) and isinstance(batch[0], Tensor):
        return batch[0]
    return None


def blacken_nonfinite(images: Tensor) -> tuple[Tensor, int]:
    """(images with NaN/inf pixels made finite, how many images had any).

    One NaN image would crash FID's matrix square root: it is counted and scored as black instead.
    """
    count = int((~torch.isfinite(images)).flatten(1).any(dim=1).sum())
    return torch.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0), count


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


# --- anomaly detection ---


def auroc_of_scores(scores: Tensor, positives: Tensor) -> Tensor:
    """AUROC of unbounded scores (higher = positive), such as anomaly scores in nats.

    torchmetrics' binary AUROC reads predictions outside [0, 1] as logits and applies a sigmoid,
    which saturates at scores like 100 nats and silently returns 0.5. AUROC depends only on the
    order of the scores, so they are min-max scaled to [0, 1] in float64 first (order and ties kept).
    """
    scores = scores.double()
    spread = (scores.max() - scores.min()).clamp_min(torch.finfo(torch.float64).tiny)
    return binary_auroc((scores - scores.min()) / spread, positives.long())
