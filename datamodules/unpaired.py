"""Unpaired two-domain image folders in the CycleGAN layout <root>/{trainA,trainB,testA,testB}."""

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from datamodules.base import eval_loader, train_loader
from datamodules.errors import BadImageError, DatasetNotFoundError
from datamodules.identity import relative_names, split_identity
from datamodules.image_folder import IMAGE_EXTENSIONS, check_image_headers, load_image

# The datasets the CycleGAN authors publish, at the address their download script uses.
CYCLEGAN_DATASETS = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "cityscapes",
    "facades",
    "iphone2dslr_flower",
    "ae_photos",
    "grumpifycat",
)
CYCLEGAN_DATASET_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
DOMAINS = ("A", "B")
DOWNLOAD_TIMEOUT_S = 60


def list_domain_images(folder: Path) -> list[Path]:
    """Sorted image files of one domain folder; other files are skipped with a counted warning."""
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"Domain folder {folder} does not exist. A CycleGAN dataset needs "
            f"{folder.parent}/{{trainA,trainB,testA,testB}} with images in each."
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    skipped = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
    if skipped:
        warnings.warn(
            f"Skipped {len(skipped)} non-image file(s) in {folder} (e.g. {skipped[0]}); "
            f"only {', '.join(sorted(IMAGE_EXTENSIONS))} files are read.",
            stacklevel=2,
        )
    if not images:
        raise DatasetNotFoundError(
            f"Domain folder {folder} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "put the domain's images there or point data.root at another dataset."
        )
    check_image_headers(images)
    return images


class DomainImageTransform:
    """File path -> float tensor in [0, 1]: channels, resize to load_size, crop, optional flip.

    Training: resize to load_size x load_size (bicubic, as the reference) unless load_size is
    None, then a random crop_size crop and a random horizontal flip. Evaluation: resize straight
    to crop_size x crop_size (the reference sets load_size = crop_size at test time), or a center
    crop when load_size is None.
    """

    def __init__(self, channels: int, load_size: int | None, crop_size: int, flip: bool, train: bool) -> None:
        self.channels = channels
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.train = train

    def __call__(self, path: Path) -> Tensor:
        image = load_image(path, self.channels)
        if self.load_size is not None:
            size = self.load_size if self.train else self.crop_size
            image = TF.resize(image, [size, size], interpolation=InterpolationMode.BICUBIC)
        self._check_crop_fits(path, image)
        image = self._random_crop(image) if self.train else TF.center_crop(image, self.crop_size)
        if self.train and self.flip and torch.rand(()).item() < 0.5:
            image = TF.hflip(image)
        return TF.to_tensor(image)

    def _check_crop_fits(self, path: Path, image: Image.Image) -> None:
        width, height = image.size
        if width < self.crop_size or height < self.crop_size:
            raise BadImageError(
                f"Image {path} is {width}x{height} (width x height), smaller than the "
                f"{self.crop_size}x{self.crop_size} crop. Set data.load_size to resize images "
                "first, lower data.crop_size, or remove the file."
            )

    def _random_crop(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        top = int(torch.randint(height - self.crop_size + 1, ()).item())
        left = int(torch.randint(width - self.crop_size + 1, ()).item())
        return TF.crop(image, top, left, self.crop_size, self.crop_size)


class UnpairedImageDataset(Dataset):
    """Yields {"A": x_a, "B": x_b}: A walked in order, B drawn at random (unpaired)."""

    def __init__(self, paths_a: list[Path], paths_b: list[Path], transform: Callable[[Path], Tensor]) -> None:
        self.paths_a = paths_a
        self.paths_b = paths_b
        self.transform = transform

    def __len__(self) -> int:
        # An epoch sees every image of the larger domain once, as in the reference.
        return max(len(self.paths_a), len(self.paths_b))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path_a = self.paths_a[index % len(self.paths_a)]
        # Random B partners keep the model from ever seeing a fixed A/B pairing.
        path_b = self.paths_b[int(torch.randint(len(self.paths_b), ()).item())]
        return {"A": self.transform(path_a), "B": self.transform(path_b)}


class AlignedByIndexDataset(UnpairedImageDataset):
    """Deterministic A/B pairs (index modulo each domain's size), for validation grids."""

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path_a = self.paths_a[index % len(self.paths_a)]
        path_b = self.paths_b[index % len(self.paths_b)]
        return {"A": self.transform(path_a), "B": self.transform(path_b)}


class SingleDomainDataset(Dataset):
    """Every image of one domain exactly once: {<domain>: x, "name": file stem}."""

    def __init__(self, domain: str, paths: list[Path], transform: Callable[[Path], Tensor]) -> None:
        self.domain = domain
        self.paths = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        path = self.paths[index]
        return {self.domain: self.transform(path), "name": path.stem}


def download_cyclegan_dataset(name: str, data_root: Path, url_template: str) -> Path:
    """Download and unzip one of the official CycleGAN datasets into data_root/<name>."""
    if name not in CYCLEGAN_DATASETS:
        raise ValueError(f"Unknown CycleGAN dataset '{name}'. Available: {', '.join(CYCLEGAN_DATASETS)}")
    url = url_template.format(name=name)
    data_root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=data_root) as scratch:
            archive = Path(scratch) / f"{name}.zip"
            with (
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
                archive.open("wb") as file,
            ):
                shutil.copyfileobj(response, file)
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(data_root)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as error:
        raise DatasetNotFoundError(
            f"Could not download the CycleGAN dataset '{name}' from {url} ({error}). "
            f"Download and unzip it by hand so that {data_root / name}/trainA and trainB exist, "
            "or set data.root to a folder in the CycleGAN layout."
        ) from error
    return data_root / name


class UnpairedImageDataModule(L.LightningDataModule):
    """Two image domains A and B in the CycleGAN layout, for unpaired translation.

    Training batches are {"A": x_a, "B": x_b}, float in [0, 1], shape (N, C, H, W); an epoch
    has max(|A|, |B|) items. Validation holds out `val_size` seeded images of trainA and of trainB
    (paired by index for translation grids), so testA/testB never choose a checkpoint: they are
    seen only by the final test and `make evaluate`. Testing returns two loaders, testA then
    testB, each yielding {<domain>: x, "name": [...]}, so every test image is translated exactly
    once in its direction.
    """

    def __init__(
        self,
        name: str | None = "horse2zebra",
        root: str | None = None,
        data_root: str | None = None,
        channels: int = 3,
        load_size: int | None = 286,
        crop_size: int = 256,
        flip: bool = True,
        batch_size: int = 1,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        download: bool = True,
        url_template: str = CYCLEGAN_DATASET_URL,
        seed: int = 0,
        val_size: int = 50,
    ) -> None:
        super().__init__()
        # logger=False: the run logs its whole config once (run.log_run_config), not these beside it.
        self.save_hyperparameters(logger=False)
        _validate(channels, load_size, crop_size, batch_size)
        if val_size < 1:
            raise ValueError(f"data.val_size must be >= 1 (images held out of each train domain), got {val_size}")
        if root is None and name is None:
            raise ValueError("Give data.name (e.g. horse2zebra) or data.root (a CycleGAN folder)")
        # Like the rest of the project: $DATA_ROOT, else ./data, unless data_root is given.
        data_root = data_root or os.environ.get("DATA_ROOT", "data")
        self.root = Path(root) if root is not None else Path(data_root) / name
        self.name = name or self.root.name
        self.channels, self.image_size = channels, crop_size
        self.num_classes: int | None = None  # unlabelled domains
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_sets: list[Dataset] = []

    def prepare_data(self) -> None:
        """Download a named official dataset when its training folders are absent."""
        name, root = self.hparams.name, self.root
        if self.hparams.root is not None or (root / "trainA").is_dir():
            return
        if name in CYCLEGAN_DATASETS and self.hparams.download:
            download_cyclegan_dataset(name, root.parent, self.hparams.url_template)

    def setup(self, stage: str | None = None) -> None:
        folders = self._folders(("train", "test") if stage in (None, "fit", "validate") else ("test",))
        evaluation = self._transform(train=False)
        if "trainA" in folders:
            train, val = zip(*(self._hold_out(domain, folders[f"train{domain}"]) for domain in DOMAINS), strict=True)
            self.train_set = UnpairedImageDataset(*train, self._transform(train=True))
            self.val_set = AlignedByIndexDataset(*val, evaluation)
        self.test_sets = [SingleDomainDataset(domain, folders[f"test{domain}"], evaluation) for domain in DOMAINS]

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        train_set = self._ready(self.train_set)
        return train_loader(train_set, self.trainer, hp.batch_size, hp.num_workers, hp.seed)

    def val_dataloader(self) -> DataLoader:
        return eval_loader(self._ready(self.val_set), self._eval_batch_size, self.hparams.num_workers)

    def test_dataloader(self) -> list[DataLoader]:
        workers = self.hparams.num_workers
        return [eval_loader(self._ready(d), self._eval_batch_size, workers) for d in self.test_sets]

    def cache_identity(self) -> dict[str, object]:
        """Everything that decides the images of each split, for keying caches of real-image features."""
        if self.train_set is None:
            self.setup()
        hp = self.hparams
        splits = {"train": self.train_set, "val": self.val_set} | {f"test{d.domain}": d for d in self.test_sets}
        return {
            "dataset": self.name,
            "root": str(self.root.resolve()),
            "channels": hp.channels,
            "load_size": hp.load_size,
            "crop_size": hp.crop_size,
            "flip": hp.flip,
            "seed": hp.seed,
            "splits": {name: self._domain_files(dataset) for name, dataset in splits.items()},
        }

    def _domain_files(self, dataset: Dataset) -> dict[str, object]:
        """Size and hash of the file list of each domain a split holds."""
        lists = {name: getattr(dataset, name) for name in ("paths_a", "paths_b", "paths") if hasattr(dataset, name)}
        return {name: split_identity(relative_names(paths, self.root)) for name, paths in lists.items()}

    @property
    def _eval_batch_size(self) -> int:
        return self.hparams.eval_batch_size or self.hparams.batch_size

    def _folders(self, splits: tuple[str, ...]) -> dict[str, list[Path]]:
        if not self.root.is_dir():
            hint = f" Known downloadable names: {', '.join(CYCLEGAN_DATASETS)}." if self.hparams.root is None else ""
            raise DatasetNotFoundError(
                f"CycleGAN dataset folder {self.root} does not exist; it needs "
                f"trainA, trainB, testA, testB subfolders.{hint}"
            )
        return {
            f"{split}{domain}": list_domain_images(self.root / f"{split}{domain}")
            for split in splits
            for domain in DOMAINS
        }

    def _hold_out(self, domain: str, paths: list[Path]) -> tuple[list[Path], list[Path]]:
        """(train, validation) paths of one domain: `val_size` seeded images held out, the rest kept in order."""
        val_size = self.hparams.val_size
        if val_size >= len(paths):
            raise ValueError(
                f"data.val_size={val_size} would hold out all {len(paths)} images of {self.root / f'train{domain}'}; "
                "lower data.val_size."
            )
        # One seed per domain, so A's split does not depend on how many images B has.
        generator = torch.Generator().manual_seed(self.hparams.seed * 2 + DOMAINS.index(domain))
        held_out = set(torch.randperm(len(paths), generator=generator)[:val_size].tolist())
        train = [path for index, path in enumerate(paths) if index not in held_out]
        return train, [paths[index] for index in sorted(held_out)]

    def _transform(self, train: bool) -> DomainImageTransform:
        hp = self.hparams
        return DomainImageTransform(hp.channels, hp.load_size, hp.crop_size, hp.flip, train)

    @staticmethod
    def _ready(data: Dataset | None) -> Dataset:
        if data is None:
            raise RuntimeError("UnpairedImageDataModule.setup() must run before asking for loaders")
        return data


def _validate(channels: int, load_size: int | None, crop_size: int, batch_size: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if crop_size <= 0:
        raise ValueError(f"crop_size must be positive, got {crop_size}")
    if load_size is not None and load_size < crop_size:
        raise ValueError(f"load_size ({load_size}) must be >= crop_size ({crop_size}), or null")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
