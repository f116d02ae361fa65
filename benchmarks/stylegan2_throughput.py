"""Images/second of a StyleGAN2 training step beside the DCGAN's, at the same resolution and batch.

Both models are built from their experiment configs (`stylegan2_mnist`, `dcgan`) with the
resolution overridden, and trained by Lightning on random images (so data loading is not timed)
for `--warmup` untimed and `--steps` timed batches. StyleGAN2's lazy R1 (every 16 steps) and path
length (every 4) fall inside the timed steps, so their cost is included as training pays it.
Prints wall and CPU (user + sys) images/second; on a shared machine trust the CPU figure.

    OMP_NUM_THREADS=1 python benchmarks/stylegan2_throughput.py --sizes 32 64 --batch-size 32 --steps 32
"""

import argparse
import logging
import os
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from step_timer import StepTimer, timing_trainer
from torch.utils.data import DataLoader, TensorDataset

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = {"dcgan": "dcgan", "stylegan2": "stylegan2_mnist"}


def build_module(model: str, image_size: int, channels: int) -> L.LightningModule:
    overrides = [f"experiment={EXPERIMENTS[model]}", f"data.image_size={image_size}", f"data.channels={channels}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return instantiate(cfg.model)


def images_per_second(model: str, image_size: int, args: argparse.Namespace) -> tuple[float, float]:
    torch.manual_seed(0)
    module = build_module(model, image_size, args.channels)
    batches = args.warmup + args.steps
    images = torch.rand(batches * args.batch_size, args.channels, image_size, image_size)
    labels = torch.zeros(len(images), dtype=torch.long)
    loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size)
    timer = StepTimer(args.warmup)
    trainer = timing_trainer(timer, accelerator="cpu")
    trainer.fit(module, loader)
    timed_images = args.steps * args.batch_size
    return timed_images / timer.wall_seconds, timed_images / timer.cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-run Trainer banners
    print(
        f"threads {torch.get_num_threads()}, batch {args.batch_size}, {args.steps} timed steps, load {os.getloadavg()}"
    )
    print("| model | size | images/s (wall) | images/s (CPU time) |\n|---|---|---|---|")
    for size in args.sizes:
        for model in EXPERIMENTS:
            wall, cpu = images_per_second(model, size, args)
            print(f"| {model} ({EXPERIMENTS[model]} config) | {size}x{size} | {wall:.1f} | {cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
