"""No test image ever chooses a checkpoint: for every data config, validation and test are disjoint.

Validation picks checkpoints and sweep winners; a test image in it would make the test score the
images that chose the model. Each config in conf/data is checked on its real data when DATA_ROOT
has it, else on generated images in the same layout.
"""

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import Dataset, Subset

from datamodules.image_folder import ImageFiles
from datamodules.torchvision_datamodule import InMemoryImages
from datamodules.unpaired import SingleDomainDataset, UnpairedImageDataset
from tests.helpers.config import CONF, DATA_ROOT, compose_config


def write_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(folder.name))
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(folder / f"{index}.png")


def flat_folder(tmp_path: Path) -> list[str]:
    write_images(tmp_path / "images", 30)
    return [f"data.root={tmp_path / 'images'}", "data.num_workers=0"]


def cyclegan_folders(tmp_path: Path) -> list[str]:
    for folder in ("trainA", "trainB", "testA", "testB"):
        write_images(tmp_path / "domains" / folder, 6)
    return [f"data.root={tmp_path / 'domains'}", "data.val_size=2", "data.download=false", "data.num_workers=0"]


def needs(*paths: str) -> Callable[[Path], list[str]]:
    """Real data from DATA_ROOT; the test is skipped when it is not there (nothing is downloaded)."""

    def overrides(tmp_path: Path) -> list[str]:
        missing = [path for path in paths if not (DATA_ROOT / path).exists()]
        if missing:
            pytest.skip(f"{', '.join(missing)} not found under DATA_ROOT={DATA_ROOT}")
        return ["data.download=false"] if "CIFAR10-jpg" not in paths[0] else []

    return overrides


# One entry per file in conf/data: how to run it offline. Real data sets take seconds to list.
DATA_CONFIGS: dict[str, Callable[[Path], list[str]]] = {
    "mnist": needs("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte"),
    "fashion_mnist": needs("FashionMNIST/raw/train-images-idx3-ubyte", "FashionMNIST/raw/t10k-images-idx3-ubyte"),
    "cifar10": needs("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"),
    "cifar10_jpg": needs("CIFAR10-jpg/train", "CIFAR10-jpg/test"),
    "image_folder": flat_folder,
    "horse2zebra": cyclegan_folders,
    "mnist2usps": needs("mnist2usps/trainA", "mnist2usps/testA"),
}


def identities(dataset: Dataset | list[Dataset]) -> set[str]:
    """What each item of a split is: an image file's path, or the hash of an in-memory image's pixels."""
    if isinstance(dataset, list):
        return set().union(*(identities(part) for part in dataset))
    if isinstance(dataset, Subset):
        return {item_identity(dataset.dataset, index) for index in dataset.indices}
    if isinstance(dataset, UnpairedImageDataset):
        return {str(path.resolve()) for path in dataset.paths_a + dataset.paths_b}
    if isinstance(dataset, SingleDomainDataset):
        return {str(path.resolve()) for path in dataset.paths}
    return {item_identity(dataset, index) for index in range(len(dataset))}


def item_identity(dataset: Dataset, index: int) -> str:
    if isinstance(dataset, InMemoryImages):
        return hashlib.sha1(dataset.images[index].numpy().tobytes()).hexdigest()
    if isinstance(dataset, ImageFiles):
        return str(dataset.items[index][0].resolve())
    raise TypeError(f"Teach identities() about {type(dataset).__name__}")


def test_every_data_config_is_checked():
    assert sorted(DATA_CONFIGS) == sorted(path.stem for path in (CONF / "data").glob("*.yaml"))


SYNTHETIC = {"image_folder", "horse2zebra"}


@pytest.mark.parametrize(
    "name", [name if name in SYNTHETIC else pytest.param(name, marks=pytest.mark.slow) for name in sorted(DATA_CONFIGS)]
)
def test_validation_never_overlaps_test(tmp_path, name):
    overrides = DATA_CONFIGS[name](tmp_path)
    data = instantiate(compose_config(tmp_path, [f"data={name}", *overrides]).data)
    data.setup("fit")
    data.setup("test")
    validation = identities(data.val_set)
    test = identities(getattr(data, "test_sets", None) or data.test_set)
    assert validation and test
    overlap = validation & test
    assert not overlap, f"data={name}: {len(overlap)} test image(s) in validation, e.g. {sorted(overlap)[0]}"
