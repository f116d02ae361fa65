"""Caches of real features and feature classifiers are keyed on everything that changes their content."""

import json
import logging
import os
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

import lightning_modules.metrics.feature_extractors as metrics
from datamodules.identity import identity_digest
from datamodules.image_folder import ImageFolderDataModule
from datamodules.torchvision_datamodule import InMemoryImages, TorchvisionDataModule
from datamodules.unpaired import UnpairedImageDataModule
from genlab.evaluation.measure import EvaluationSettings, generated_metrics
from lightning_modules.metrics.caches import build_on_rank_zero, cached_tensor, record_path
from lightning_modules.metrics.feature_extractors import shared_extractor
from lightning_modules.metrics.reference_features import network_fingerprint
from tests.data.test_unpaired_datamodule import make_dataset


def digest(datamodule) -> str:
    return identity_digest(datamodule.cache_identity())


@pytest.fixture
def small_mnist(monkeypatch):
    """TorchvisionDataModule("mnist") over 1,000 synthetic digits: the split logic without the files."""

    def load_split(self, train: bool, download: bool) -> InMemoryImages:
        count = 1000 if train else 200
        labels = torch.arange(count) % 10
        noise = torch.randint(0, 100, (count, 1, 28, 28), generator=torch.Generator().manual_seed(int(train)))
        return InMemoryImages((noise + 15 * labels[:, None, None, None]).to(torch.uint8), labels)

    monkeypatch.setattr(TorchvisionDataModule, "load_split", load_split)
    return lambda **settings: TorchvisionDataModule("mnist", "data", download=False, **settings)


def test_mnist_splits_that_differ_get_different_keys(small_mnist) -> None:
    default = digest(small_mnist())
    variants = {
        "exclude_classes": small_mnist(exclude_classes=[2]),
        "train_size": small_mnist(train_size=600),
        "val_fraction": small_mnist(val_fraction=0.5),
        "seed": small_mnist(seed=7),
        "image_size": small_mnist(image_size=32),
    }
    keys = {name: digest(datamodule) for name, datamodule in variants.items()}
    assert default not in keys.values(), keys
    assert len(set(keys.values())) == len(keys), keys
    assert digest(small_mnist()) == default  # the same config finds its cache again


class PooledPixels(torch.nn.Module):
    """A fixed feature network: 4x4 average-pooled pixels as features, their first 10 as logits."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)
        return features, features[:, :10]


class FixedImages(L.LightningModule):
    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images, self.num_classes = images, None

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.images[:n]


def test_evaluation_never_scores_against_features_cached_for_other_data(small_mnist, tmp_path: Path) -> None:
    """The bug: a run with exclude_classes=[2] filled the cache that every later MNIST FID read."""
    extractor = shared_extractor("pooled", PooledPixels(), 16, 10)
    settings = EvaluationSettings(num_samples=200, kid_subset_size=50, kid_subsets=2, is_splits=2)
    test_data = small_mnist()
    test_data.setup()
    generator = FixedImages(test_data.test_set.images.float() / 255)

    def fid(cache: Path, **data) -> float:
        return generated_metrics(generator, small_mnist(**data), extractor, None, settings, str(cache))["fid"]

    shared = tmp_path / "shared"
    fid(shared, exclude_classes=[2])
    assert fid(shared) == fid(tmp_path / "fresh")
    assert len(list((shared / "reference_features").iterdir())) == 2


def write_images(folder: Path, count: int, seed: int, size: int = 8) -> None:
    """`count` grayscale images per class in two class folders; class 1 is brighter."""
    rng = np.random.default_rng(seed)
    for label in (0, 1):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 128, (size, size)) + 127 * label
            Image.fromarray(pixels.astype(np.uint8), mode="L").save(folder / f"class{label}" / f"{index}.png")


def image_folder(root: Path, **settings) -> ImageFolderDataModule:
    defaults = dict(image_size=8, channels=1, batch_size=4, num_workers=0, num_classes=2)
    return ImageFolderDataModule(str(root), val_fraction=0.25, test_fraction=0.25, **(defaults | settings))


def test_two_folders_named_images_get_different_keys(tmp_path: Path) -> None:
    write_images(tmp_path / "a" / "images", 6, seed=0)
    write_images(tmp_path / "b" / "images", 6, seed=1)
    first, second = image_folder(tmp_path / "a" / "images"), image_folder(tmp_path / "b" / "images")
    assert first.cache_key == second.cache_key  # the readable part of the name is the same...
    assert digest(first) != digest(second)  # ...the hash is not
    assert digest(image_folder(tmp_path / "a" / "images", seed=3)) != digest(first)


def test_cyclegan_folders_and_crop_sizes_get_different_keys(tmp_path: Path) -> None:
    horses, apples = make_dataset(tmp_path / "horse2zebra"), make_dataset(tmp_path / "apple2orange")

    def unpaired(root: Path, crop_size: int) -> UnpairedImageDataModule:
        return UnpairedImageDataModule(
            name="horse2zebra", root=str(root), load_size=36, crop_size=crop_size, val_size=1
        )

    keys = [digest(unpaired(horses, 32)), digest(unpaired(apples, 32)), digest(unpaired(horses, 16))]
    assert len(set(keys)) == 3
    assert digest(unpaired(horses, 32)) == keys[0]


# --- the record beside each cached file ---


def test_cached_tensor_is_reused_only_while_its_record_matches(tmp_path: Path, caplog) -> None:
    path, identity = tmp_path / "features.pt", {"data": {"dataset": "mnist", "exclude_classes": []}}
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.arange(6.0).reshape(3, 2)

    def tamper(change) -> None:
        record = json.loads(record_path(path).read_text())
        change(record)
        record_path(path).write_text(json.dumps(record))

    cached_tensor(path, compute, identity, "real features")
    assert json.loads(record_path(path).read_text()) == {"computed_from": identity, "rows": 3}
    with caplog.at_level(logging.INFO, logger="lightning_modules.metrics.caches"):
        cached_tensor(path, compute, identity, "real features")
    assert len(calls) == 1
    assert "Using cached real features (3 rows)" in caplog.text and "exclude_classes" in caplog.text

    cached_tensor(path, compute, {"data": {"dataset": "mnist", "exclude_classes": [2]}}, "real features")
    assert len(calls) == 2  # asked for other data at the same path
    tamper(lambda record: record["computed_from"]["data"].update(exclude_classes=[2]))
    cached_tensor(path, compute, identity, "real features")
    assert len(calls) == 3
    tamper(lambda record: record.update(rows=4))
    cached_tensor(path, compute, identity, "real features")
    assert len(calls) == 4
    record_path(path).write_text("{not json")
    cached_tensor(path, compute, identity, "real features")
    assert len(calls) == 5
    record_path(path).unlink()
    cached_tensor(path, compute, identity, "real features")
    assert len(calls) == 6


# --- the feature classifier ---


@pytest.fixture
def count_trainings(monkeypatch) -> list[Path]:
    trained: list[Path] = []
    original = metrics.train_feature_classifier

    def counted(data, path, *args, **kwargs):
        trained.append(path)
        return original(data, path, *args, **kwargs)

    monkeypatch.setattr(metrics, "train_feature_classifier", counted)
    return trained


@pytest.mark.slow
def test_feature_classifier_is_trained_once_per_data_and_settings(tmp_path: Path, count_trainings) -> None:
    write_images(tmp_path / "images", 8, seed=0)
    cache = str(tmp_path / "cache")
    first = metrics.classifier_feature_extractor(image_folder(tmp_path / "images"), cache, batch_size=4)
    again = metrics.classifier_feature_extractor(image_folder(tmp_path / "images"), cache, batch_size=4)
    assert len(count_trainings) == 1 and again.name == first.name
    metrics.classifier_feature_extractor(image_folder(tmp_path / "images", seed=5), cache, batch_size=4)
    metrics.classifier_feature_extractor(image_folder(tmp_path / "images"), cache, max_epochs=2, batch_size=4)
    assert len(set(count_trainings)) == 3
    record = json.loads(record_path(count_trainings[0]).read_text())
    assert record["rows"] == 8 and record["computed_from"]["classifier"]["batch_size"] == 4


def _classifier_on_rank(rank: int, root: str, cache: str, with_process_group: bool) -> None:
    torch.set_num_threads(1)
    os.environ["RANK"] = str(rank)  # what torchrun or SLURM set before any process group exists
    if with_process_group:
        dist.init_process_group("gloo", init_method=f"file://{cache}.init", rank=rank, world_size=2)
    original = metrics.train_feature_classifier

    def counted(data, path, *args, **kwargs):
        with open(f"{cache}.trained_by", "a") as file:
            file.write(f"{rank}\n")
        return original(data, path, *args, **kwargs)

    metrics.train_feature_classifier = counted
    extractor = metrics.classifier_feature_extractor(image_folder(Path(root)), cache, batch_size=4)
    Path(f"{cache}.rank{rank}").write_text(network_fingerprint(extractor.features))
    if with_process_group:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("with_process_group", [True, False], ids=["gloo-barrier", "environment-rank"])
def test_under_ddp_rank_zero_trains_the_classifier_and_both_ranks_load_it(tmp_path: Path, with_process_group) -> None:
    write_images(tmp_path / "images", 8, seed=0)
    cache = str(tmp_path / "cache")
    mp.spawn(_classifier_on_rank, args=(str(tmp_path / "images"), cache, with_process_group), nprocs=2, join=True)
    assert Path(f"{cache}.trained_by").read_text().split() == ["0"]
    assert Path(f"{cache}.rank0").read_text() == Path(f"{cache}.rank1").read_text()


def test_a_waiting_rank_reads_what_rank_zero_built(tmp_path: Path, monkeypatch) -> None:
    """Rank 1 never builds; it polls until the file is there (here: already built)."""
    monkeypatch.setenv("RANK", "1")
    path = tmp_path / "classifier.pt"
    path.write_text("built by rank 0")
    built: list[int] = []
    build_on_rank_zero(path, path.is_file, lambda: built.append(1), poll_seconds=0.01)
    assert built == []
    monkeypatch.setenv("RANK", "0")
    build_on_rank_zero(tmp_path / "missing.pt", lambda: bool(built), lambda: built.append(1))
    assert built == [1]
