"""MNIST, FashionMNIST and CIFAR-10 through torchvision, held in memory as uint8 tensors."""

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset, random_split
from torchvision import datasets

from datamodules.base import SplitDataModule
from datamodules.errors import DatasetNotFoundError
from datamodules.identity import split_identity

# name -> (torchvision class, folder under root, channels, native size, classes)
DATASETS = {
    "mnist": (datasets.MNIST, "MNIST/raw", 1, 28, 10),
    "fashion_mnist": (datasets.FashionMNIST, "FashionMNIST/raw", 1, 28, 10),
    "cifar10": (datasets.CIFAR10, "cifar-10-batches-py", 3, 32, 10),
}


class InMemoryImages(Dataset):
    """uint8 images (N, C, H, W) and labels, served as float images in [0, 1]."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float().div_(255), self.labels[index]


class TorchvisionDataModule(SplitDataModule):
    """A torchvision dataset with a seeded validation split held out from its train split."""

    def __init__(
        self,
        name: str = "mnist",
        root: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        num_classes: int | None = None,
        download: bool = True,
        exclude_classes: list[int] | tuple[int, ...] | None = None,
        train_size: int | None = None,
        pad: bool = False,
    ) -> None:
        """`exclude_classes` leaves those classes out of train and validation (the test split keeps
        every class, so a model trained without them can be scored on them: anomaly detection).
        `train_size` keeps a seeded random subset of that many training images (few-label runs).
        `pad` reaches `image_size` by zero-padding around the native image instead of resizing it
        (MNIST 28 -> 32 for networks that need a power of two, as LeNet-5 padded it)."""
        super().__init__()
        if name not in DATASETS:
            raise ValueError(f"Unknown dataset '{name}'. Available: {', '.join(DATASETS)}")
        _, _, native_channels, native_size, classes = DATASETS[name]
        if channels not in (None, native_channels):
            raise ValueError(f"{name} has {native_channels} channel(s); data.channels={channels} does not match")
        if num_classes not in (None, classes):
            raise ValueError(f"{name} has {classes} classes; data.num_classes={num_classes} does not match")
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        exclude_classes = sorted(int(c) for c in exclude_classes or ())
        if any(not 0 <= c < classes for c in exclude_classes):
            raise ValueError(f"exclude_classes must lie in [0, {classes - 1}] for {name}, got {exclude_classes}")
        if len(exclude_classes) >= classes:
            raise ValueError(f"exclude_classes={exclude_classes} leaves no class of {name} to train on")
        if train_size is not None and train_size <= 0:
            raise ValueError(f"train_size must be positive (or null for the whole split), got {train_size}")
        self.exclude_classes, self.train_size = exclude_classes, train_size
        self.name, self.root, self.download = name, root, download
        self.batch_size, self.num_workers, self.val_fraction, self.seed = (
            batch_size,
            num_workers,
            val_fraction,
            seed,
        )
        self.image_size = image_size or native_size
        if pad and self.image_size < native_size:
            raise ValueError(f"data.pad=true needs data.image_size >= {name}'s {native_size}, got {self.image_size}")
        self.pad = pad and self.image_size != native_size
        self.channels, self.num_classes = native_channels, classes
        padded = "_padded" if self.pad else ""
        self.cache_key = f"{name}_{native_channels}x{self.image_size}x{self.image_size}{padded}"

    def prepare_data(self) -> None:
        for train in (True, False):
            self.load_split(train, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        full = self.load_split(True, download=False)
        generator = torch.Generator().manual_seed(self.seed)
        train_set, val_set = random_split(full, [1 - self.val_fraction, self.val_fraction], generator)
        # The split is drawn before classes are dropped, so val stays disjoint from train and the
        # same images whatever is excluded.
        self.train_set, self.val_set = self.without_excluded(train_set), self.without_excluded(val_set)
        if self.train_size is not None:
            if self.train_size > len(self.train_set):
                raise ValueError(f"train_size={self.train_size} but the train split has {len(self.train_set)} images")
            # random_split's indices are already a seeded permutation: its first n are a random subset.
            self.train_set = Subset(full, self.train_set.indices[: self.train_size])
        self.test_set = self.load_split(False, download=False)

    def cache_identity(self) -> dict[str, object]:
        """Everything that decides the images of each split, for keying caches of features and classifiers."""
        self.setup()
        return {
            "dataset": self.name,
            "root": str(Path(self.root).resolve()),
            "channels": self.channels,
            "image_size": self.image_size,
            **({"pad": True} if self.pad else {}),  # absent when false: existing caches keep their keys
            "exclude_classes": self.exclude_classes,
            "train_size": self.train_size,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "splits": {
                "train": split_identity(self.train_set.indices),
                "val": split_identity(self.val_set.indices),
                "test": split_identity(range(len(self.test_set))),
            },
        }

    def classifier_reference(self) -> "TorchvisionDataModule":
        """The split the dataset's feature classifier is trained on, the same for every run: every
        class of the official train split less a 10% validation hold-out drawn with seed 0, whatever
        this run's `exclude_classes`, `train_size`, `val_fraction` and `seed`.

        So one classifier judges every run on the dataset (FIDs of runs on different subsets
        compare, and a run without some digit is scored by a judge that knows that digit), and it
        never trains on the official test split that final scores use.
        """
        return TorchvisionDataModule(
            self.name,
            self.root,
            self.batch_size,
            self.num_workers,
            image_size=self.image_size,
            download=self.download,
        )

    def without_excluded(self, subset: Subset) -> Subset:
        if not self.exclude_classes:
            return subset
        indices = torch.as_tensor(subset.indices)
        keep = ~torch.isin(subset.dataset.labels[indices], torch.tensor(self.exclude_classes))
        return Subset(subset.dataset, indices[keep].tolist())

    def load_split(self, train: bool, download: bool) -> InMemoryImages:
        dataset_class, folder, *_ = DATASETS[self.name]
        first_new_folder = first_missing(Path(self.root) / folder)
        try:
            dataset = dataset_class(self.root, train=train, download=download)
        except Exception as error:  # torchvision raises RuntimeError, URLError or OSError here
            remove_empty_folders(first_new_folder)  # a failed download leaves no empty DATA_ROOT/MNIST/raw behind
            raise DatasetNotFoundError(
                f"{self.name} not found under {os.path.join(self.root, folder)} and it could not be "
                f"downloaded ({type(error).__name__}: {' '.join(str(error).split())}). Connect to the internet "
                f"and rerun, or set DATA_ROOT (or data.root=...) to a folder that holds {folder}/."
            ) from error
        return InMemoryImages(self.resize(as_nchw(dataset.data)), torch.as_tensor(dataset.targets))

    def resize(self, images: Tensor) -> Tensor:
        if images.shape[-1] == self.image_size:
            return images
        if self.pad:
            before = (self.image_size - images.shape[-1]) // 2
            after = self.image_size - images.shape[-1] - before
            return F.pad(images, [before, after, before, after])
        chunks = [resize_uint8(chunk, self.image_size) for chunk in images.split(4096)]
        return torch.cat(chunks)


def first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (what creating it would make), or None."""
    missing = None
    for candidate in [path, *path.parents]:
        if candidate.exists():
            break
        missing = candidate
    return missing


def remove_empty_folders(top: Path | None) -> None:
    """Remove `top` and the folders below it, bottom-up, as long as they hold no files."""
    if top is None or not top.is_dir():
        return
    for folder in [*sorted(top.rglob("*"), key=lambda path: len(path.parts), reverse=True), top]:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def as_nchw(data: Tensor | np.ndarray) -> Tensor:
    """torchvision keeps MNIST as (N, H, W) tensors and CIFAR-10 as (N, H, W, C) arrays."""
    images = torch.as_tensor(data)
    return images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()


def resize_uint8(images: Tensor, size: int) -> Tensor:
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)
