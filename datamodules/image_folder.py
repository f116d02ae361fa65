"""Any folder of images: flat, or one subfolder per class; optional train/ and test/ subfolders."""

import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, Subset, random_split
from torchvision.transforms import v2

from datamodules.base import SplitDataModule
from datamodules.errors import BadImageError, DatasetNotFoundError
from datamodules.identity import relative_names, split_identity

IMAGE_EXTENSIONS = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
}
PIL_MODES = {1: "L", 3: "RGB"}


def find_images(folder: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(path, class index) for every image below `folder`, and the class names.

    Classes are the first-level subfolders; a flat folder has one class. Files without an image
    extension are skipped with one warning that counts them.
    """
    if not folder.is_dir():
        raise DatasetNotFoundError(f"Image folder {folder} does not exist. Set data.root to a folder of images.")
    class_dirs = sorted(path for path in folder.iterdir() if path.is_dir())
    groups = [(d, i) for i, d in enumerate(class_dirs)] or [(folder, 0)]
    images, skipped = [], 0
    for group, label in groups:
        for path in sorted(p for p in group.rglob("*") if p.is_file()):
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                images.append((path, label))
            elif not path.name.startswith("."):
                skipped += 1
    if skipped:
        warnings.warn(f"Skipped {skipped} non-image file(s) in {folder}", stacklevel=2)
    if not images:
        raise DatasetNotFoundError(f"No images found in {folder} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    check_image_headers(path for path, _ in images)
    return images, [d.name for d in class_dirs] or [folder.name]


def check_image_headers(paths: Iterable[Path]) -> None:
    """Fail at setup, naming the file, on an empty or non-image file, rather than in a loader worker
    mid-epoch. Only headers are read (fast); a file damaged further in still fails when loaded."""
    for path in paths:
        try:
            with Image.open(path):
                pass
        except (UnidentifiedImageError, OSError) as error:
            raise BadImageError(f"Cannot read image {path}: {error}. Delete or replace this file.") from error


def load_image(path: Path, channels: int) -> Image.Image:
    """Open an image as `channels` channels (grayscale, palette and RGBA files are converted)."""
    try:
        with Image.open(path) as image:
            # Palette images may carry transparency; going through RGBA converts it cleanly, then
            # alpha is dropped and grayscale is replicated or kept.
            if image.mode == "P":
                image = image.convert("RGBA")
            return image.convert(PIL_MODES[channels])
    except (UnidentifiedImageError, OSError) as error:
        raise BadImageError(f"Cannot read image {path}: {error}. Delete or replace this file.") from error


class ImageFiles(Dataset):
    """Images resized (shorter side) and center-cropped to a square, as floats in [0, 1]."""

    def __init__(self, items: list[tuple[Path, int]], image_size: int, channels: int) -> None:
        if channels not in PIL_MODES:
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.items, self.channels = items, channels
        self.transform = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(image_size, antialias=True),
                v2.CenterCrop(image_size),
                v2.ToDtype(torch.float32, scale=True),
            ]
        )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.items[index]
        return self.transform(load_image(path, self.channels)), label


class ImageFolderDataModule(SplitDataModule):
    """Uses <root>/train and <root>/test when present, else splits <root> into train/val/test."""

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        channels: int = 3,
        batch_size: int = 128,
        num_workers: int = 2,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        num_classes: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root, self.image_size, self.channels = Path(root), image_size, channels
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.name = name or self.root.name
        self.num_classes = num_classes
        self.cache_key = f"{self.name}_{channels}x{image_size}x{image_size}"

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        generator = torch.Generator().manual_seed(self.seed)
        if (self.root / "train").is_dir():
            train_items, classes = find_images(self.root / "train")
            full, self.test_set = self.dataset(train_items), self.dataset(self.test_items())
            self.train_set, self.val_set = random_split(full, [1 - self.val_fraction, self.val_fraction], generator)
        else:
            items, classes = find_images(self.root)
            fractions = [
                1 - self.val_fraction - self.test_fraction,
                self.val_fraction,
                self.test_fraction,
            ]
            self.train_set, self.val_set, self.test_set = random_split(self.dataset(items), fractions, generator)
        if self.num_classes is not None and self.num_classes != len(classes):
            raise ValueError(f"{self.root} has {len(classes)} class folder(s); data.num_classes={self.num_classes}")

    def cache_identity(self) -> dict[str, object]:
        """Everything that decides the images of each split, for keying caches of features and classifiers."""
        self.setup()
        return {
            "dataset": self.name,
            "root": str(self.root.resolve()),
            "channels": self.channels,
            "image_size": self.image_size,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "seed": self.seed,
            "splits": {
                split: split_identity(self.split_files(getattr(self, f"{split}_set")))
                for split in ("train", "val", "test")
            },
        }

    def split_files(self, split: Dataset) -> list[str]:
        """'<file relative to root>:<class>' of every image of a split, in order."""
        items = [split.dataset.items[i] for i in split.indices] if isinstance(split, Subset) else split.items
        names = relative_names((path for path, _ in items), self.root)
        return [f"{name}:{label}" for name, (_, label) in zip(names, items, strict=True)]

    def test_items(self) -> list[tuple[Path, int]]:
        folder = self.root / "test"
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{self.root} has train/ but no test/ folder; add {folder}")
        return find_images(folder)[0]

    def dataset(self, items: list[tuple[Path, int]]) -> ImageFiles:
        return ImageFiles(items, self.image_size, self.channels)
