"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019).

Each set of feature vectors spans a manifold: the union of balls around its points, each with the
radius of that point's k-th nearest neighbour in the set. Precision is the share of generated
points inside the real manifold (are samples realistic?); recall is the share of real points inside
the generated manifold (is the data's variety covered?).
"""

import torch
from torch import Tensor


def knn_radii(features: Tensor, k: int = 3, chunk_size: int = 2048) -> Tensor:
    """Distance from each row of `features` to its k-th nearest other row."""
    if not 0 < k < len(features):
        raise ValueError(f"k-nearest-neighbour radii need 0 < k < number of vectors; got k={k}, n={len(features)}")
    features = features.float()  # float32 distances: 5x faster than float64, and ties do not matter here
    # k + 1 nearest: the nearest row is the point itself, at distance 0. topk is ~10x faster than kthvalue.
    nearest = [
        torch.cdist(chunk, features).topk(k + 1, dim=1, largest=False).values for chunk in features.split(chunk_size)
    ]
    return torch.cat(nearest)[:, k]


def precision_recall(
    real: Tensor,
    fake: Tensor,
    real_radii: Tensor,
    fake_radii: Tensor,
    chunk_size: int = 2048,
) -> tuple[float, float]:
    """(precision, recall) from both sets' features and k-NN radii, in one pass over the cross distances."""
    real, fake, real_radii, fake_radii = real.float(), fake.float(), real_radii.float(), fake_radii.float()
    fake_inside_real: list[Tensor] = []
    real_inside_fake = torch.zeros(len(real), dtype=torch.bool)
    for fake_chunk, fake_chunk_radii in zip(fake.split(chunk_size), fake_radii.split(chunk_size), strict=True):
        distances = torch.cdist(fake_chunk, real)  # (chunk of fakes, all reals)
        fake_inside_real.append((distances <= real_radii[None, :]).any(dim=1))
        real_inside_fake |= (distances <= fake_chunk_radii[:, None]).any(dim=0)
    precision = torch.cat(fake_inside_real).double().mean().item()
    return precision, real_inside_fake.double().mean().item()


def density_coverage(
    real: Tensor, fake: Tensor, real_radii: Tensor, k: int, chunk_size: int = 2048
) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020, as StudioGAN and their `prdc` code compute them.

    Both use only the real k-NN balls (the paper's k=5), which outliers among the generated
    points cannot inflate. Density: how many real balls contain each generated point, over k,
    averaged (about 1 when generated points are spread like real ones, above 1 when they crowd
    dense regions). Coverage: the share of real points whose ball holds at least one generated
    point. Balls are open (distance < radius), as in their code.
    """
    real, fake, real_radii = real.float(), fake.float(), real_radii.float()
    balls_containing: list[Tensor] = []
    real_covered = torch.zeros(len(real), dtype=torch.bool)
    for fake_chunk in fake.split(chunk_size):
        inside = torch.cdist(fake_chunk, real) < real_radii[None, :]  # (chunk of fakes, all reals)
        balls_containing.append(inside.sum(dim=1))
        real_covered |= inside.any(dim=0)
    density = torch.cat(balls_containing).double().mean().item() / k
    return density, real_covered.double().mean().item()
