"""Small generated image folders in the CycleGAN layout (trainA/, trainB/, testA/, testB/)."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int = 40, height: int = 40, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(len(path.name)).integers(0, 256, (height, width, channels))
    Image.fromarray(pixels.astype(np.uint8).squeeze(), mode=mode).save(path)


def make_dataset(root: Path, counts: dict[str, int] | None = None) -> Path:
    """`counts` images per folder (default 3/6 train, 2/4 test) of random 40x40 RGB pixels under `root`."""
    counts = counts or {"trainA": 3, "trainB": 6, "testA": 2, "testB": 4}
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            write_image(root / folder / f"{folder}_{index}.png")
    return root
