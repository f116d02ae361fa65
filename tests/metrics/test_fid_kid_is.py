"""FID/KID/IS on fixed features against independent computations; precision/recall; mode coverage."""

import numpy as np
import pytest
import scipy.linalg
import torch

from lightning_modules.metrics.fid_kid_is import (
    TooFewSamplesError,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from lightning_modules.metrics.mode_coverage import mode_coverage
from lightning_modules.metrics.precision_recall import density_coverage, knn_radii, precision_recall


def correlated_features(n: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) @ mixing + 0.5


def scipy_fid(real: np.ndarray, fake: np.ndarray) -> float:
    mu_r, mu_f = real.mean(0), fake.mean(0)
    sigma_r, sigma_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_r @ sigma_f).real
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(sigma_r + sigma_f - 2 * root))


def test_fid_matches_numpy_scipy() -> None:
    real, fake = correlated_features(600, 16, seed=0), correlated_features(500, 16, seed=1)
    expected = scipy_fid(real.numpy(), fake.numpy())
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-5)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift() -> None:
    real = correlated_features(800, 8, seed=2)
    assert abs(frechet_distance(real, real)) < 1e-6
    shifted = [frechet_distance(real, real + shift) for shift in (0.1, 0.5, 2.0)]
    assert shifted == sorted(shifted) and shifted[0] > 1e-3
    assert shifted[-1] == pytest.approx(8 * 2.0**2, rel=1e-6)  # a pure shift adds ||shift||^2


def polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out independently."""
    dim, m = x.shape[1], len(x)
    k_xx, k_yy, k_xy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(off_diagonal - 2 * k_xy.mean())


def test_kid_with_one_full_subset_matches_the_formula() -> None:
    draws = correlated_features(400, 6, seed=3)
    real, same_distribution = draws[:200], draws[200:]
    fake = correlated_features(200, 6, seed=4) * 1.3
    mean, std = kernel_inception_distance(real, fake, subset_size=200, subsets=1)
    assert mean == pytest.approx(polynomial_mmd(real.numpy(), fake.numpy()), rel=1e-6)
    assert std == 0.0
    assert abs(kernel_inception_distance(real, same_distribution, subset_size=200, subsets=1)[0]) < 0.1 * mean


def test_inception_score_bounds() -> None:
    confident_and_balanced = torch.eye(10).repeat(50, 1) * 50  # every class, each sample certain
    assert inception_score(confident_and_balanced, splits=1)[0] == pytest.approx(10.0, rel=1e-4)
    one_class = torch.zeros(500, 10)
    one_class[:, 3] = 50
    assert inception_score(one_class, splits=5)[0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("call", "needed"),
    [
        (lambda f: frechet_distance(f[:1], f), "FID needs at least 2"),
        (lambda f: kernel_inception_distance(f, f[:50], subset_size=100), "KID needs at least 100"),
        (lambda f: inception_score(f[:3], splits=10), "Inception Score needs at least 10"),
    ],
)
def test_too_few_samples_is_a_clear_error_not_nan(call, needed: str) -> None:
    with pytest.raises(TooFewSamplesError, match=needed):
        call(correlated_features(200, 4, seed=5))


def test_precision_recall_of_identical_sets_is_one() -> None:
    features = correlated_features(300, 5, seed=6)
    radii = knn_radii(features, k=3, chunk_size=64)
    assert precision_recall(features, features, radii, radii, chunk_size=64) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero() -> None:
    real = correlated_features(300, 5, seed=7)
    fake = correlated_features(200, 5, seed=8) + 1e4
    result = precision_recall(real, fake, knn_radii(real), knn_radii(fake), chunk_size=64)
    assert result == (0.0, 0.0)


def test_precision_recall_separates_collapse_from_spread() -> None:
    """Samples from one corner of the real data are precise but recall little; a random subset recalls most."""
    real = correlated_features(1000, 4, seed=9)
    corner = real[real[:, 0] < real[:, 0].quantile(0.1)]
    spread = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[: len(corner)]]
    corner_precision, corner_recall = precision_recall(real, corner, knn_radii(real), knn_radii(corner))
    spread_precision, spread_recall = precision_recall(real, spread, knn_radii(real), knn_radii(spread))
    assert corner_precision == spread_precision == 1.0  # both are real points
    assert corner_recall < 0.5 < 0.9 < spread_recall


@pytest.mark.parametrize(("real_count", "fake_count", "shift"), [(300, 300, 0.3), (250, 180, 1.0)])
def test_precision_recall_matches_torch_fidelity(real_count: int, fake_count: int, shift: float) -> None:
    """Our chunked implementation (which can reuse cached real radii) against torch-fidelity's `prc`."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    real = correlated_features(real_count, 6, seed=10).float()
    fake = (correlated_features(fake_count, 6, seed=11) * 1.2 + shift).float()
    ours = precision_recall(real, fake, knn_radii(real, 3), knn_radii(fake, 3), chunk_size=64)
    library = prc_features_to_metric(fake, real, prc_neighborhood=3, prc_batch_size=100, verbose=False)
    assert 0.05 < ours[0] < 0.95 and 0.05 < ours[1] < 0.95  # neither trivially 0 nor 1
    assert ours == pytest.approx((library["precision"], library["recall"]), abs=1e-6)


def brute_force_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, Eq. (3) and (4), one pair of points at a time."""

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(((a - b) ** 2).sum()))

    radii = [sorted(distance(r, other) for other in real)[k] for r in real]  # [0] is the point itself
    inside = [[distance(f, r) < radius for r, radius in zip(real, radii, strict=True)] for f in fake]
    density = sum(sum(row) for row in inside) / (k * len(fake))
    coverage = sum(any(row[j] for row in inside) for j in range(len(real))) / len(real)
    return density, coverage


@pytest.mark.parametrize("shift", [0.0, 0.7, 100.0])
def test_density_and_coverage_match_a_brute_force_computation(shift: float) -> None:
    real = correlated_features(40, 3, seed=12)
    fake = correlated_features(30, 3, seed=13) * 0.5 + shift
    expected = brute_force_density_coverage(real.numpy(), fake.numpy(), k=5)
    result = density_coverage(real, fake, knn_radii(real, 5), k=5, chunk_size=7)
    assert result == pytest.approx(expected, abs=1e-12)
    if shift == 100.0:
        assert result == (0.0, 0.0)
    else:
        assert result[0] > 0 and result[1] > 0


def test_knn_radius_is_the_kth_neighbour_distance() -> None:
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(points, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k=4, n=4"):
        knn_radii(points, k=4)


def test_mode_coverage_counts_classes_and_kl() -> None:
    uniform = mode_coverage(torch.arange(1000) % 10, 10)
    assert uniform["classes_covered"] == 10 and uniform["kl_from_uniform_nats"] == pytest.approx(0.0, abs=1e-12)
    collapsed = mode_coverage(torch.full((500,), 7), 10)
    assert collapsed["classes_covered"] == 1
    assert collapsed["kl_from_uniform_nats"] == pytest.approx(np.log(10))
    # a few classifier mistakes (0.5% of samples each) are not modes
    mostly_seven = torch.cat([torch.full((980,), 7), torch.arange(20) % 4])
    assert mode_coverage(mostly_seven, 10)["classes_covered"] == 1
