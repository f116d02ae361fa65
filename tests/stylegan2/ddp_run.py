"""Run by tests/stylegan2/test_ddp.py: one StyleGAN2 batch with R1 and path length due, on 2 CPU processes.

Lightning relaunches this script once per rank; each rank saves its weights after the step.
Usage: python tests/stylegan2/ddp_run.py <output folder>
"""

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from tests.helpers.ddp import ROOT, SaveEachRank, black_and_white_images, two_rank_trainer

TINY = [
    "experiment=stylegan2_mnist",
    "data.image_size=8",
    "model.generator.latent_dim=8",
    "model.generator.w_dim=8",
    "model.generator.channel_base=64",
    "model.generator.channel_max=8",
    "model.r1_interval=1",
    "model.path_length_interval=1",
]


def main(out_dir: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=TINY)
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    data = DataLoader(black_and_white_images(8, size=8), batch_size=4)
    trainer = two_rank_trainer(out_dir, [SaveEachRank(out_dir)], limit_train_batches=1)
    trainer.fit(module, data)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
