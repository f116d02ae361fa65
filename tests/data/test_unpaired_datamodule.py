"""UnpairedImageDataModule on small generated image folders: batches and bad-input messages."""

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.errors import BadImageError, DatasetNotFoundError
from datamodules.unpaired import UnpairedImageDataModule


def write_image(path: Path, width: int = 40, height: int = 40, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(len(path.name)).integers(0, 256, (height, width, channels))
    Image.fromarray(pixels.astype(np.uint8).squeeze(), mode=mode).save(path)


def make_dataset(root: Path, counts: dict[str, int] | None = None) -> Path:
    counts = counts or {"trainA": 3, "trainB": 6, "testA": 2, "testB": 4}
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            write_image(root / folder / f"{folder}_{index}.png")
    return root


def datamodule(root: Path, **overrides) -> UnpairedImageDataModule:
    settings = dict(root=str(root), load_size=36, crop_size=32, batch_size=2, num_workers=0, val_size=1)
    return UnpairedImageDataModule(**(settings | overrides))


def test_training_batches_are_unpaired_dicts_in_unit_range(tmp_path: Path) -> None:
    data = datamodule(make_dataset(tmp_path))
    data.setup("fit")
    assert len(data.train_set) == 5  # max(|A|, |B|), one image of each domain held out for validation
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"A", "B"}
    for images in batch.values():
        assert images.shape == (2, 3, 32, 32) and images.dtype == torch.float32
        assert images.min() >= 0.0 and images.max() <= 1.0


def test_b_is_drawn_at_random(tmp_path: Path) -> None:
    data = datamodule(make_dataset(tmp_path, {"trainA": 2, "trainB": 7, "testA": 1, "testB": 1}))
    data.setup("fit")
    torch.manual_seed(0)
    partners = {tuple(data.train_set[0]["B"].flatten()[:8].tolist()) for _ in range(20)}
    assert len(partners) > 1


def test_grayscale_and_rgba_files_become_the_configured_channels(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    write_image(root / "trainA" / "gray.png", mode="L")
    write_image(root / "trainB" / "alpha.png", mode="RGBA")
    for channels in (1, 3):
        data = datamodule(root, channels=channels, batch_size=6)
        data.setup("fit")
        batch = next(iter(data.train_dataloader()))
        assert batch["A"].shape[1] == batch["B"].shape[1] == channels


def test_evaluation_resizes_to_crop_and_test_loaders_cover_each_domain_once(tmp_path: Path) -> None:
    data = datamodule(make_dataset(tmp_path), eval_batch_size=3)
    data.setup("test")
    loader_a, loader_b = data.test_dataloader()
    names_a = [name for batch in loader_a for name in batch["name"]]
    batches_b = list(loader_b)
    assert names_a == ["testA_0", "testA_1"]
    assert sum(len(batch["name"]) for batch in batches_b) == 4
    assert batches_b[0]["B"].shape == (3, 3, 32, 32)


def test_image_smaller_than_crop_names_file_and_sizes(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1})
    for index in range(2):  # whichever is held out for validation, the training one is too small
        write_image(root / "trainA" / f"trainA_{index}.png", width=20, height=16)
    data = datamodule(root, load_size=None)
    data.setup("fit")
    expected = re.escape(str(data.train_set.paths_a[0])) + r" is 20x16.*32x32 crop"
    with pytest.raises(BadImageError, match=expected):
        data.train_set[0]


@pytest.mark.parametrize("problem", ["missing", "empty"])
def test_missing_or_empty_domain_folder_is_named(tmp_path: Path, problem: str) -> None:
    root = make_dataset(tmp_path, {"trainA": 2, "testA": 1, "testB": 1})
    if problem == "empty":
        (root / "trainB").mkdir()
    data = datamodule(root)
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(root / "trainB"))):
        data.setup("fit")


def test_non_image_files_are_skipped_with_a_count(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    (root / "trainA" / "notes.txt").write_text("not an image")
    (root / "trainA" / "labels.csv").write_text("a,b")
    data = datamodule(root)
    with pytest.warns(UserWarning, match=r"Skipped 2 non-image file\(s\) in .*trainA"):
        data.setup("fit")
    assert len(data.train_set.paths_a) + len(data.val_set.paths_a) == 3


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    root = make_dataset(tmp_path)
    (root / "trainA" / "trainA_0.png").write_bytes(b"not a png")
    with pytest.raises(BadImageError, match=r"Cannot read image .*trainA_0\.png"):
        datamodule(root).setup("fit")  # at setup, from the file's header, not mid-epoch


def test_crop_larger_than_load_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"load_size \(30\) must be >= crop_size \(32\)"):
        datamodule(tmp_path, load_size=30)


def test_named_dataset_that_cannot_be_downloaded_says_what_to_do(tmp_path: Path) -> None:
    # Port 9 (discard) on localhost refuses at once: the same path as being offline.
    data = UnpairedImageDataModule(
        name="horse2zebra", data_root=str(tmp_path), url_template="http://127.0.0.1:9/{name}.zip"
    )
    with pytest.raises(DatasetNotFoundError, match=r"Could not download .*'horse2zebra'.*by hand"):
        data.prepare_data()


def test_named_dataset_is_downloaded_and_unzipped_when_absent(tmp_path: Path) -> None:
    source = make_dataset(tmp_path / "source" / "apple2orange")
    archive = tmp_path / "apple2orange.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in source.rglob("*.png"):
            zipped.write(file, file.relative_to(source.parent))
    data_root = tmp_path / "data"
    data = UnpairedImageDataModule(
        name="apple2orange",
        data_root=str(data_root),
        url_template=(tmp_path / "{name}.zip").as_uri().replace("%7B", "{").replace("%7D", "}"),
        num_workers=0,
        load_size=36,
        crop_size=32,
        val_size=1,
    )
    data.prepare_data()
    data.setup("fit")
    assert len(data.train_set) == 5
    assert data.root == data_root / "apple2orange"


def test_absent_unknown_dataset_lists_the_known_names(tmp_path: Path) -> None:
    data = UnpairedImageDataModule(name="cats2dogs", data_root=str(tmp_path))
    data.prepare_data()
    with pytest.raises(DatasetNotFoundError, match=r"cats2dogs does not exist.*horse2zebra"):
        data.setup("fit")


def test_validation_is_a_seeded_fixed_count_held_out_of_each_train_domain(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"trainA": 6, "trainB": 8, "testA": 2, "testB": 2})
    splits = []
    for seed in (0, 0, 1):
        data = datamodule(root, val_size=2, seed=seed)
        data.setup("fit")
        val, train = data.val_set, data.train_set
        for domain in ("a", "b"):
            held_out, kept = getattr(val, f"paths_{domain}"), getattr(train, f"paths_{domain}")
            assert len(held_out) == 2 and not set(held_out) & set(kept)
            assert all(path.parent.name.startswith("train") for path in held_out)
        splits.append((val.paths_a, val.paths_b))
    assert splits[0] == splits[1] and splits[0] != splits[2]


def test_val_size_that_leaves_no_training_image_names_the_setting(tmp_path: Path) -> None:
    data = datamodule(make_dataset(tmp_path), val_size=3)
    with pytest.raises(ValueError, match=r"data.val_size=3 would hold out all 3 images of .*trainA"):
        data.setup("fit")
