"""Scores of generated MNIST digits by the learning tests' judge (the `mnist_judge` fixture)."""

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance

from lightning_modules.interface import ImageSampler
from lightning_modules.metrics.feature_extractors import FeatureExtractor
from lightning_modules.metrics.mode_coverage import mode_coverage


def judge_digits(
    fake: Tensor, mnist_judge: tuple[FeatureExtractor, Tensor], labels: Tensor | None = None
) -> dict[str, float]:
    """Classifier-feature FID against the judge's real images, the share classified with confidence
    > 0.9, the classes covered (each given at least a quarter of its uniform share) and, with
    `labels`, the share classified as the label each sample was drawn for."""
    extractor, real = mnist_judge
    fid = FrechetInceptionDistance(extractor.features)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    with torch.no_grad():
        probabilities = extractor.logits(fake).softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    scores = {
        "fid": fid.compute().item(),
        "confident": (confidence > 0.9).float().mean().item(),
        "classes_covered": mode_coverage(predicted, num_classes=10)["classes_covered"],
    }
    if labels is not None:
        scores["label_accuracy"] = (predicted == labels).float().mean().item()
    return scores


def judge_samples(module: ImageSampler, mnist_judge: tuple[FeatureExtractor, Tensor]) -> dict[str, float]:
    """`judge_digits` of 1000 samples from seed 0 (labels 0-9 in turn for a conditional model), with
    any padding around the judge's 28x28 digits cropped off (stylegan2_mnist draws them at 32x32)."""
    labels = torch.arange(1000) % 10 if module.num_classes else None
    fake = module.sample(1000, generator=torch.Generator().manual_seed(0), labels=labels)
    pad = (fake.shape[-1] - mnist_judge[1].shape[-1]) // 2
    if pad:
        fake = fake[..., pad:-pad, pad:-pad]
    return judge_digits(fake, mnist_judge, labels)
