"""Run by tests/diffusion/test_ddp.py: two batches and one validation batch of DDPM, then of flow
matching, on 2 CPU processes with the strategy of `trainer=ddp`.

Lightning relaunches this script once per rank; each rank saves each model's weights and metrics
as `<family>_rank<r>.pt`. Both fits share one process group.
Usage: python tests/diffusion/ddp_run.py <output folder>
"""

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from tests.helpers.ddp import ROOT, SaveEachRank, black_and_white_images, two_rank_trainer

FAMILIES = ("ddpm", "flow_matching")
TINY_UNET = [
    "data.image_size=8",
    "model.network.base_channels=8",
    "model.network.channel_multipliers=[1,2]",
    "model.network.attention_resolutions=[4]",
    "model.network.norm_groups=4",
    "model.warmup_steps=0",
]


def fit(family: str, out_dir: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={family}", "trainer=ddp", *TINY_UNET])
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    data = DataLoader(black_and_white_images(16, size=8), batch_size=4)
    trainer = two_rank_trainer(
        out_dir,
        [SaveEachRank(out_dir, prefix=f"{family}_")],
        strategy=instantiate(cfg.trainer.strategy),
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, data, data)


if __name__ == "__main__":
    for family in FAMILIES:
        fit(family, Path(sys.argv[1]))
