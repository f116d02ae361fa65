"""Datamodules: seeded MNIST splits, missing or failed datasets, image folders with odd or broken files."""

import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.errors import BadImageError, DatasetNotFoundError
from datamodules.image_folder import ImageFolderDataModule
from datamodules.torchvision_datamodule import TorchvisionDataModule
from tests.helpers.config import DATA_ROOT, requires_mnist


@requires_mnist
def test_mnist_split_is_seeded_and_in_unit_range():
    first, second = (TorchvisionDataModule("mnist", str(DATA_ROOT), seed=3) for _ in range(2))
    for datamodule in (first, second):
        datamodule.setup()
    assert (len(first.train_set), len(first.val_set), len(first.test_set)) == (54000, 6000, 10000)
    assert first.val_set.indices == second.val_set.indices
    images, labels = next(iter(first.train_dataloader()))
    assert images.shape == (128, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1 and labels.dtype == torch.int64


@requires_mnist
def test_mnist_padded_to_32_keeps_the_digit_pixels_and_its_own_cache_key():
    padded = TorchvisionDataModule("mnist", str(DATA_ROOT), image_size=32, pad=True)
    padded.setup()
    native = TorchvisionDataModule("mnist", str(DATA_ROOT))
    native.setup()
    image, _ = padded.test_set[0]
    assert image.shape == (1, 32, 32) and image[:, 2:30, 2:30].equal(native.test_set[0][0])
    border = image.clone()
    border[:, 2:30, 2:30] = 0
    assert border.abs().sum() == 0
    assert padded.cache_key == "mnist_1x32x32_padded" and padded.cache_identity()["pad"] is True
    with pytest.raises(ValueError, match="data.pad=true needs data.image_size >= mnist's 28, got 16"):
        TorchvisionDataModule("mnist", str(DATA_ROOT), image_size=16, pad=True)


def test_missing_dataset_names_the_path_within_seconds(tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match=f"mnist not found under {tmp_path}/MNIST/raw.*DATA_ROOT"):
        TorchvisionDataModule("mnist", str(tmp_path), download=False).prepare_data()
    assert time.monotonic() - start < 10


def test_a_failed_download_leaves_no_folders_behind(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        TorchvisionDataModule("mnist", root=str(tmp_path / "nowhere" / "data")).prepare_data()
    assert not (tmp_path / "nowhere").exists()


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown dataset 'mnsit'. Available: mnist, fashion_mnist, cifar10"):
        TorchvisionDataModule("mnsit")


def write_image(path, mode="RGB", size=(20, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = np.random.default_rng(0).integers(0, 255, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)


def image_folder(root, **settings):
    datamodule = ImageFolderDataModule(str(root), image_size=16, channels=3, batch_size=4, num_workers=0, **settings)
    datamodule.setup()
    return datamodule


def test_image_folder_mixes_grayscale_and_rgba_into_rgb_and_finds_classes(tmp_path):
    for index in range(10):
        write_image(tmp_path / "cats" / f"{index}.png", mode=["L", "RGB", "RGBA"][index % 3])
        write_image(tmp_path / "dogs" / f"{index}.jpg")
    datamodule = image_folder(tmp_path, val_fraction=0.2, test_fraction=0.2, num_classes=2)
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (4, 3, 16, 16)
    assert set(labels.tolist()) <= {0, 1}


def test_non_image_files_are_skipped_with_a_counted_warning(tmp_path):
    for index in range(5):
        write_image(tmp_path / f"{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels.csv").write_text("a,b")
    with pytest.warns(UserWarning, match="Skipped 2 non-image file"):
        image_folder(tmp_path, val_fraction=0.2, test_fraction=0.2)


@pytest.mark.parametrize("content", [b"definitely not a png", b""])
def test_a_corrupt_or_empty_image_fails_at_setup_naming_the_file(tmp_path, content):
    for index in range(5):
        write_image(tmp_path / f"{index}.png")
    (tmp_path / "3.png").write_bytes(content)
    with pytest.raises(BadImageError, match=f"^Cannot read image {tmp_path / '3.png'}"):
        image_folder(tmp_path, val_fraction=0.2, test_fraction=0.2)


def test_a_truncated_image_read_by_a_loader_worker_is_named_first(tmp_path):
    for index in range(8):
        write_image(tmp_path / f"{index}.png", size=(64, 64))
    whole = (tmp_path / "5.png").read_bytes()
    (tmp_path / "5.png").write_bytes(whole[: len(whole) // 2])  # the header passes the setup check
    datamodule = ImageFolderDataModule(str(tmp_path), image_size=16, batch_size=2, num_workers=1)
    datamodule.setup()
    with pytest.raises(BadImageError) as error:  # whichever split the file fell into
        for loader in (datamodule.train_dataloader(), datamodule.val_dataloader(), datamodule.test_dataloader()):
            list(loader)
    assert str(error.value).startswith(f"Cannot read image {tmp_path / '5.png'}")


def test_missing_or_empty_folder_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path / 'nowhere'} does not exist"):
        image_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with warnings.catch_warnings(), pytest.raises(DatasetNotFoundError, match="No images found in .*empty"):
        image_folder(tmp_path / "empty")


@requires_mnist
def test_excluded_classes_leave_train_and_val_but_stay_in_test():
    full = TorchvisionDataModule("mnist", str(DATA_ROOT), seed=3)
    without = TorchvisionDataModule("mnist", str(DATA_ROOT), seed=3, exclude_classes=[2, 7])
    for datamodule in (full, without):
        datamodule.setup()
    for split in ("train_set", "val_set"):
        kept = getattr(without, split)
        labels = kept.dataset.labels[kept.indices]
        assert not torch.isin(labels, torch.tensor([2, 7])).any()
        # Only the excluded classes went: every other image of the same seeded split is still there.
        original = getattr(full, split)
        others = [i for i in original.indices if original.dataset.labels[i] not in (2, 7)]
        assert kept.indices == others
    assert set(without.test_set.labels.tolist()) == set(range(10))


@requires_mnist
def test_train_size_keeps_a_seeded_random_subset_of_the_train_split():
    first, second, other_seed = (
        TorchvisionDataModule("mnist", str(DATA_ROOT), seed=seed, train_size=600) for seed in (3, 3, 4)
    )
    for datamodule in (first, second, other_seed):
        datamodule.setup()
    assert len(first.train_set) == 600 and first.train_set.indices == second.train_set.indices
    assert first.train_set.indices != other_seed.train_set.indices
    assert not set(first.train_set.indices) & set(first.val_set.indices)
    # A random subset, not the first 600 files: it holds every digit.
    assert set(first.train_set.dataset.labels[first.train_set.indices].tolist()) == set(range(10))
    with pytest.raises(ValueError, match="train_size=60000 but the train split has 54000 images"):
        TorchvisionDataModule("mnist", str(DATA_ROOT), train_size=60000).setup()


def test_bad_exclude_classes_and_train_size_name_the_setting():
    with pytest.raises(ValueError, match=r"exclude_classes must lie in \[0, 9\] for mnist, got \[10\]"):
        TorchvisionDataModule("mnist", exclude_classes=[10])
    with pytest.raises(ValueError, match="leaves no class"):
        TorchvisionDataModule("mnist", exclude_classes=list(range(10)))
    with pytest.raises(ValueError, match="train_size must be positive"):
        TorchvisionDataModule("mnist", train_size=0)
