"""Feature vectors of real images, computed once per (dataset, split, transform, feature network) and cached.

A cold evaluation extracts features of every reference image; a warm one reads them from
`<cache_dir>/reference_features/<key>/`. The key names the dataset and its image transform, the
split, the number of images and a fingerprint of the feature network's weights, so a retrained
classifier or other Inception weights never reuse stale features.
"""

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from lightning_modules.atomic_files import torch_save_atomically
from lightning_modules.precision_recall import knn_radii

log = logging.getLogger(__name__)


def network_fingerprint(network: nn.Module) -> str:
    """A short hash of a network's weights and buffers."""
    digest = hashlib.sha1()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def reference_key(dataset: str, split: str, count: int | None, seed: int, extractor_name: str, fingerprint: str) -> str:
    """A file-system-safe cache key, e.g. `mnist_1x28x28-train-all-seed0-classifier-mnist_1x28x28-3f2a...`.

    The seed orders the reference images, and so picks the subset precision/recall compares with.
    """
    raw = f"{dataset}-{split}-{'all' if count is None else count}-seed{seed}-{extractor_name}-{fingerprint}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)


def cached_tensor(path: Path, compute: Callable[[], Tensor]) -> Tensor:
    """`compute()` saved at `path`, or what an earlier call saved there; an unreadable file is recomputed."""
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError) as error:
            log.warning("Recomputing the unreadable cache file %s (%s)", path, error)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save_atomically(value, path)  # a killed run leaves no broken cache
    return value


class ReferenceFeatures:
    """Cached real-image features and, per (n, k), the k-NN radii of their first n rows."""

    def __init__(self, cache_dir: str | Path, key: str) -> None:
        self.folder = Path(cache_dir) / "reference_features" / key

    def features(self, extract: Callable[[], Tensor]) -> Tensor:
        return cached_tensor(self.folder / "features.pt", extract)

    def radii(self, features: Tensor, k: int) -> Tensor:
        """Radii of the first `len(features)` reference rows (precision/recall compares sets of equal size)."""
        path = self.folder / f"knn_radii_n{len(features)}_k{k}.pt"
        return cached_tensor(path, lambda: knn_radii(features, k))


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
