"""What decides the images of a datamodule's splits, as plain data that caches are keyed on.

Each datamodule's `cache_identity()` returns its resolved settings plus, per split, its size and a
hash of its indices or file list, so a cache computed on one split is never read for another.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path


def sequence_digest(items: Iterable[object]) -> str:
    """A short hash of a sequence of indices or file names, in order."""
    digest = hashlib.sha1()
    for item in items:
        digest.update(str(item).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def split_identity(items: Sequence[object]) -> dict[str, object]:
    """{"size": n, "sha1": hash of the items}: the split's content, whatever chose it."""
    return {"size": len(items), "sha1": sequence_digest(items)}


def relative_names(paths: Iterable[Path], root: Path) -> list[str]:
    """File names relative to the dataset root, so the hash names the files and not where the disk is."""
    return [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path in paths]


def identity_digest(identity: dict[str, object]) -> str:
    """A short hash of an identity dict (key order does not matter)."""
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
