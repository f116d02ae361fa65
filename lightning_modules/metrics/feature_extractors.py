"""Feature extractors for FID and Inception Score: Inception, or a classifier trained on the dataset.

Every feature module takes images in [0, 1] of shape (N, C, H, W) and returns (N, d); grayscale
images are repeated to three channels for Inception.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from datamodules.identity import identity_digest
from lightning_modules.metrics.caches import build_on_rank_zero, matching_record, summary, write_record
from lightning_modules.metrics.feature_classifier import load_feature_classifier, train_feature_classifier

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
    """A classifier trained once on `data`'s train split, cached under `cache_dir`.

    The cache is keyed on everything that decides the classifier: the data's settings and actual
    splits (`cache_identity`) and the training settings. Under DDP rank 0 trains it while the
    other ranks wait, then every rank loads the same file.
    """
    if getattr(data, "num_classes", None) is None:
        raise ValueError(f"metrics=classifier needs a labelled dataset; set data.num_classes for {data.cache_key}")
    data.prepare_data()
    training = {"network": "SmallClassifier", "max_epochs": max_epochs, "batch_size": batch_size, "seed": 0}
    computed_from = {"data": data.cache_identity(), "classifier": training}
    path = Path(cache_dir) / f"{data.cache_key}-{identity_digest(computed_from)}.pt"
    train_images = len(data.train_set)

    def train() -> None:
        log.info("Training the feature classifier for %s once; it is cached at %s", data.cache_key, path)
        train_feature_classifier(data, path, max_epochs, batch_size, seed=training["seed"])
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


def blacken_nonfinite(images: Tensor) -> tuple[Tensor, int]:
    """(images with NaN/inf pixels made finite, how many images had any).

    One NaN image would crash FID's matrix square root: it is counted and scored as black instead.
    """
    count = int((~torch.isfinite(images)).flatten(1).any(dim=1).sum())
    return torch.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0), count
