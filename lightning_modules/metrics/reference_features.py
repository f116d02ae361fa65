"""Feature vectors of real images, computed once per (data, split, feature network) and cached.

A cold evaluation extracts features of every reference image; a warm one reads them from
`<cache_dir>/reference_features/<key>/`. The key hashes the data's settings and actual splits, the
split, the number of images and a fingerprint of the feature network's weights, so other data, a
retrained classifier or other Inception weights never reuse stale features.
"""

import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from datamodules.identity import identity_digest
from lightning_modules.metrics.caches import cached_tensor
from lightning_modules.metrics.precision_recall import knn_radii


def network_fingerprint(network: nn.Module) -> str:
    """A short hash of a network's weights and buffers."""
    digest = hashlib.sha1()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def reference_key(readable: str, computed_from: dict) -> str:
    """A file-system-safe folder name: a readable prefix and a hash of everything the features depend on,
    e.g. `mnist_1x28x28-train-all-seed0-3f2a9c0d1e4b5a6f`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{readable}-{identity_digest(computed_from)}")


class ReferenceFeatures:
    """Cached real-image features and, per (n, k), the k-NN radii of their first n rows.

    `computed_from` names everything the features depend on: the datamodule's `cache_identity()`
    (settings and actual splits), the split, how many images in which seeded order, and the
    feature network with a fingerprint of its weights. It keys the folder and is written beside
    each file, which is recomputed whenever the two disagree.
    """

    def __init__(self, cache_dir: str | Path, readable: str, computed_from: dict) -> None:
        self.computed_from = computed_from
        self.folder = Path(cache_dir) / "reference_features" / reference_key(readable, computed_from)

    def features(self, extract: Callable[[], Tensor]) -> Tensor:
        return cached_tensor(self.folder / "features.pt", extract, self.computed_from, "real features")

    def radii(self, features: Tensor, k: int) -> Tensor:
        """Radii of the first `len(features)` reference rows (precision/recall compares sets of equal size)."""
        path = self.folder / f"knn_radii_n{len(features)}_k{k}.pt"
        computed_from = self.computed_from | {"radii_of_first_rows": len(features), "nearest_neighbours": k}
        return cached_tensor(path, lambda: knn_radii(features, k), computed_from, f"k={k} real radii")


def extract_features(
    batches: Iterable[Tensor], network: Callable[[Tensor], tuple[Tensor, Tensor]], device: torch.device
) -> tuple[Tensor, Tensor]:
    """(features, logits) of every image batch, on the CPU."""
    features, logits = [], []
    with torch.inference_mode():
        for images in batches:
            batch_features, batch_logits = network(images.to(device))
            features.append(batch_features.float().cpu())
            logits.append(batch_logits.float().cpu())
    return torch.cat(features), torch.cat(logits)
