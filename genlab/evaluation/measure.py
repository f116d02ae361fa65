"""Evaluate any genlab checkpoint the same way: sample quality, mode coverage, likelihoods, translations.

Every family is scored through the shared interface (`sample`, or `translate` for CycleGAN) on one
feature extractor: FID, IS and KID through torchmetrics, improved precision/recall on the same
features, mode coverage from the dataset's classifier, and the module's own test NLL for VAEs and
flows. Real-image features are cached (see `reference_features`).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lightning_modules.flow import NormalizingFlow
from lightning_modules.metrics.feature_extractors import FeatureExtractor, blacken_nonfinite
from lightning_modules.metrics.fid_kid_is import (
    TooFewSamplesError,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from lightning_modules.metrics.mode_coverage import mode_coverage
from lightning_modules.metrics.precision_recall import density_coverage, knn_radii, precision_recall
from lightning_modules.metrics.reference_features import (
    ReferenceFeatures,
    extract_features,
    network_fingerprint,
)
from lightning_modules.vae import VAE

log = logging.getLogger(__name__)
DOMAINS = ("A", "B")


class EvaluationSettingError(ValueError):
    """The evaluation settings do not fit this checkpoint; the message says which to change."""


@dataclass
class EvaluationSettings:
    """What `evaluate.py` measures; the names match `conf/evaluate.yaml`."""

    num_samples: int = 10_000
    batch_size: int = 250
    reference_split: str = "train"
    reference_size: int | None = None  # None: every image of the split
    kid_subset_size: int = 1000
    kid_subsets: int = 100
    is_splits: int = 10
    nearest_neighbours: int = 3  # k of the precision/recall manifolds (the paper's choice)
    density_coverage_neighbours: int = 5  # k of density and coverage (Naeem et al. 2020 and StudioGAN)
    coverage_min_share: float = 0.25
    seed: int = 0
    likelihood_batches: int | float | None = None  # limit_test_batches of the NLL pass; None: all

    def __post_init__(self) -> None:
        whole_numbers = (
            "num_samples",
            "batch_size",
            "kid_subset_size",
            "kid_subsets",
            "is_splits",
            "nearest_neighbours",
        )
        for name in (*whole_numbers, "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or (name != "seed" and value < 1):
                hint = " (make evaluate N=10000 sets it)" if name == "num_samples" else ""
                raise EvaluationSettingError(f"evaluate.{name}={value} must be a positive whole number{hint}")

    def check_sample_count(self) -> None:
        """Fail before generating anything when `num_samples` is too few for a metric."""
        needs = {
            "FID": (2, "nothing: FID needs two samples"),
            "KID": (self.kid_subset_size, f"evaluate.kid_subset_size (now {self.kid_subset_size})"),
            "Inception Score": (self.is_splits, f"evaluate.is_splits (now {self.is_splits})"),
            "precision/recall": (
                self.nearest_neighbours + 1,
                f"evaluate.nearest_neighbours (now {self.nearest_neighbours})",
            ),
            "density/coverage": (
                self.density_coverage_neighbours + 1,
                f"evaluate.density_coverage_neighbours (now {self.density_coverage_neighbours})",
            ),
        }
        for metric, (needed, setting) in needs.items():
            if self.num_samples < needed:
                raise TooFewSamplesError(
                    f"{metric} needs at least {needed} samples but evaluate.num_samples={self.num_samples}; "
                    f"raise num_samples or lower {setting}."
                )


# --- generated and real features ---


def sample_batches(module: L.LightningModule, settings: EvaluationSettings, labels: Tensor | None) -> Iterator[Tensor]:
    """`settings.num_samples` images from `module.sample` in batches, seeded, with a progress bar."""
    generator = torch.Generator().manual_seed(settings.seed)
    with tqdm(total=settings.num_samples, desc="sampling", unit="img") as progress:
        for start in range(0, settings.num_samples, settings.batch_size):
            count = min(settings.batch_size, settings.num_samples - start)
            condition = {} if labels is None else {"labels": labels[start : start + count]}
            with torch.no_grad():
                images = module.sample(count, generator=generator, **condition)
            progress.update(count)
            yield images


def dataset_images(dataset: Dataset, batch_size: int, key: str | int = 0) -> Iterator[Tensor]:
    """The images of a dataset whose items are (image, label) tuples or {domain: image} dicts."""
    for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="real images", unit="batch"):
        yield batch[key]


def split_dataset(datamodule: L.LightningDataModule, split: str) -> Dataset:
    if split not in ("train", "val", "test"):
        raise EvaluationSettingError(f"evaluate.reference_split must be train, val or test, got {split!r}")
    datamodule.setup("fit" if split != "test" else "test")
    return getattr(datamodule, f"{split}_set")


def seeded_subset(dataset: Dataset, count: int | None, seed: int) -> Dataset:
    """`count` items (all when None) in a seeded random order, so the first n rows are a fair subset."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.Subset(dataset, order[:count].tolist())


def reference_identity(
    datamodule: L.LightningDataModule, split: str, settings: EvaluationSettings, extractor: FeatureExtractor
) -> dict[str, object]:
    """Everything the cached features of a reference split depend on (see `ReferenceFeatures`)."""
    return {
        "data": datamodule.cache_identity(),
        "split": split,
        "reference_size": settings.reference_size,
        "seed": settings.seed,  # orders the images, so it picks the subset precision/recall compares with
        "extractor": extractor.name,
        "extractor_weights": network_fingerprint(extractor.features),
    }


def real_features(
    dataset: Dataset,
    cache: ReferenceFeatures,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    device: torch.device,
    key: str | int = 0,
) -> Tensor:
    def extract() -> Tensor:
        subset = seeded_subset(dataset, settings.reference_size, settings.seed)
        batches = dataset_images(subset, settings.batch_size, key)
        return extract_features(batches, extractor.features_and_logits, device)[0]

    return cache.features(extract)


# --- metrics ---


def sample_quality(
    real: Tensor, fake: Tensor, fake_logits: Tensor, cache: ReferenceFeatures, settings: EvaluationSettings
) -> dict[str, float]:
    """FID, IS, KID, precision/recall and density/coverage of generated features against real ones.

    The k-NN measures compare sets of equal size: the first len(fake) reference rows, whose radii are cached.
    """
    k, k_dc, paired_real = settings.nearest_neighbours, settings.density_coverage_neighbours, real[: len(fake)]
    precision, recall = precision_recall(paired_real, fake, cache.radii(paired_real, k), knn_radii(fake, k))
    density, coverage = density_coverage(paired_real, fake, cache.radii(paired_real, k_dc), k_dc)
    kid_mean, kid_std = kernel_inception_distance(
        real, fake, settings.kid_subset_size, settings.kid_subsets, settings.seed
    )
    is_mean, is_std = inception_score(fake_logits, settings.is_splits, settings.seed)
    return {
        "fid": frechet_distance(real, fake),
        "inception_score": is_mean,
        "inception_score_std": is_std,
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def coverage_metrics(
    class_logits: Tensor, requested: Tensor | None, num_classes: int, settings: EvaluationSettings
) -> dict[str, object]:
    """Mode coverage; for conditional models also how often samples are classified as the class asked for."""
    predicted = class_logits.argmax(dim=1)
    results: dict[str, object] = {"mode_coverage": mode_coverage(predicted, num_classes, settings.coverage_min_share)}
    if requested is not None:
        results["class_agreement"] = float((predicted == requested).double().mean())
    return results


def likelihood_metrics(
    module: L.LightningModule, datamodule: L.LightningDataModule, settings: EvaluationSettings, root: str
) -> dict[str, float]:
    """The module's own test metrics (VAE: ELBO and IWAE NLL; flows: NLL) in nats and bits/dim."""
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_test_batches=settings.likelihood_batches,
        default_root_dir=root,
    )
    results = trainer.test(module, datamodule, verbose=False)[0]
    return {name.removeprefix("test/"): float(value) for name, value in results.items()}


def reports_likelihood(module: L.LightningModule) -> bool:
    return isinstance(module, VAE | NormalizingFlow)


# --- one family at a time ---


def generated_metrics(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    extractor: FeatureExtractor,
    coverage_extractor: FeatureExtractor | None,
    settings: EvaluationSettings,
    cache_dir: str,
) -> dict[str, object]:
    """Metrics of `module.sample` against the reference split (GANs, VAEs, autoencoders, flows)."""
    device = module.device
    size = "all" if settings.reference_size is None else settings.reference_size
    readable = f"{datamodule.cache_key}-{settings.reference_split}-{size}-seed{settings.seed}"
    computed_from = reference_identity(datamodule, settings.reference_split, settings, extractor)
    cache = ReferenceFeatures(cache_dir, readable, computed_from)
    real = real_features(split_dataset(datamodule, settings.reference_split), cache, extractor, settings, device)
    require_reference(len(real), settings)
    labels = requested_labels(module, settings)
    fake, fake_logits, class_logits, nonfinite = generated_features(
        module, labels, extractor, coverage_extractor, settings
    )
    results: dict[str, object] = sample_quality(real, fake, fake_logits, cache, settings)
    results["nonfinite_samples"] = nonfinite
    if class_logits is not None:
        results |= coverage_metrics(class_logits, labels, datamodule.num_classes, settings)
    return results


def generated_features(
    module: L.LightningModule,
    labels: Tensor | None,
    extractor: FeatureExtractor,
    coverage_extractor: FeatureExtractor | None,
    settings: EvaluationSettings,
) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """(features, logits, dataset-classifier logits or None, non-finite sample count) of generated images."""
    outputs: dict[str, list[Tensor]] = {"features": [], "logits": [], "class_logits": []}
    nonfinite = 0
    with torch.inference_mode():
        for samples in sample_batches(module, settings, labels):
            images, count = blacken_nonfinite(samples)
            nonfinite += count
            images = images.clamp(0, 1)
            features, logits = extractor.features_and_logits(images)
            outputs["features"].append(features.float().cpu())
            outputs["logits"].append(logits.float().cpu())
            if coverage_extractor is not None:
                class_logits = (
                    logits if coverage_extractor is extractor else coverage_extractor.features_and_logits(images)[1]
                )
                outputs["class_logits"].append(class_logits.float().cpu())
    class_logits = torch.cat(outputs["class_logits"]) if outputs["class_logits"] else None
    return torch.cat(outputs["features"]), torch.cat(outputs["logits"]), class_logits, nonfinite


def require_reference(count: int, settings: EvaluationSettings) -> None:
    needed = max(settings.num_samples, settings.kid_subset_size)
    if count < needed:
        raise TooFewSamplesError(
            f"the reference split '{settings.reference_split}' has {count} images, fewer than the "
            f"{needed} that num_samples={settings.num_samples} needs (precision/recall compares sets of "
            "equal size); lower evaluate.num_samples or choose a larger evaluate.reference_split."
        )


def requested_labels(module: L.LightningModule, settings: EvaluationSettings) -> Tensor | None:
    """Uniformly drawn classes for conditional models (seeded), None for unconditional ones."""
    num_classes = getattr(module, "num_classes", None)
    if num_classes is None:
        return None
    generator = torch.Generator().manual_seed(settings.seed + 1)
    return torch.randint(num_classes, (settings.num_samples,), generator=generator)


def translation_metrics(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    extractor: FeatureExtractor,
    settings: EvaluationSettings,
    cache_dir: str,
) -> dict[str, object]:
    """CycleGAN: each direction's translated test images against the target domain's test images."""
    datamodule.setup("test")
    test_sets = dict(zip(DOMAINS, datamodule.test_sets, strict=True))
    results: dict[str, object] = {}
    for source, target in (("A", "B"), ("B", "A")):
        every_image = replace(settings, reference_size=None)
        computed_from = reference_identity(datamodule, f"test{target}", every_image, extractor)
        cache = ReferenceFeatures(cache_dir, f"{datamodule.name}_{target}-test-all-seed{settings.seed}", computed_from)
        real = real_features(test_sets[target], cache, extractor, every_image, module.device, target)
        fake, fake_logits = translated_features(module, test_sets[source], source, extractor, settings)
        direction = direction_settings(settings, len(real), len(fake))
        results[f"{source}_to_{target}"] = sample_quality(real, fake, fake_logits, cache, direction) | {
            "num_translated": len(fake),
            "kid_subset_size": direction.kid_subset_size,
        }
    return results


def translated_features(
    module: L.LightningModule, dataset: Dataset, source: str, extractor: FeatureExtractor, settings: EvaluationSettings
) -> tuple[Tensor, Tensor]:
    count = min(settings.num_samples, len(dataset))
    subset = seeded_subset(dataset, count, settings.seed)
    translations = (module.translate(images, source) for images in dataset_images(subset, settings.batch_size, source))
    return extract_features(translations, extractor.features_and_logits, module.device)


def direction_settings(settings: EvaluationSettings, real_count: int, fake_count: int) -> EvaluationSettings:
    """Test sets of translation datasets are small (horse2zebra: 120 horses): KID subsets shrink to fit."""
    available = min(real_count, fake_count)
    needed = max(2, settings.is_splits, settings.nearest_neighbours + 1, settings.density_coverage_neighbours + 1)
    if available < needed:
        raise TooFewSamplesError(f"only {available} test images to translate; the metrics need more")
    return replace(settings, kid_subset_size=min(settings.kid_subset_size, available))
