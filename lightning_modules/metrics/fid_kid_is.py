"""FID, KID and Inception Score of feature vectors computed elsewhere (and cached), through torchmetrics.

torchmetrics' metrics run their own feature network on images; given `PrecomputedFeatures` as that
network they take feature vectors instead, so one extractor pass (or a cached reference set) feeds
all three.
"""

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


class TooFewSamplesError(ValueError):
    """A metric was asked of fewer samples than it is defined for."""


class PrecomputedFeatures(nn.Module):
    """The identity, posing as torchmetrics' feature network: inputs already are (N, d) features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def require_samples(metric: str, needed: int, real: int, fake: int, setting: str) -> None:
    if min(real, fake) < needed:
        raise TooFewSamplesError(
            f"{metric} needs at least {needed} real and {needed} generated samples; got {real} real and "
            f"{fake} generated. Raise the number of samples or lower {setting}."
        )


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID (Heusel et al. 2017): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), float64 statistics."""
    require_samples("FID", 2, len(real), len(fake), "nothing: FID needs two samples per set")
    fid = FrechetInceptionDistance(PrecomputedFeatures(real.shape[1]))
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())


def kernel_inception_distance(
    real: Tensor, fake: Tensor, subset_size: int = 1000, subsets: int = 100, seed: int = 0
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel, mean and std over subsets."""
    require_samples("KID", subset_size, len(real), len(fake), f"kid_subset_size (now {subset_size})")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save all extracted features")
        kid = KernelInceptionDistance(PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=subset_size)
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # its subsets come from the global generator
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """IS (Salimans et al. 2016): exp E[KL(p(y|x) || p(y))], mean and std over `splits` parts."""
    require_samples("Inception Score", splits, len(logits), len(logits), f"is_splits (now {splits})")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Metric `InceptionScore` will save all extracted features")
        score = InceptionScore(PrecomputedFeatures(logits.shape[1]), splits=splits)
    score.update(logits.double())
    with torch.random.fork_rng(devices=[]):  # its splits come from a global-generator permutation
        torch.manual_seed(seed)
        mean, std = score.compute()
    return float(mean), float(std)
