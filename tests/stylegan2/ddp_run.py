"""Run by tests/stylegan2/test_ddp.py: one StyleGAN2 batch with R1 and path length due, on 2 CPU processes.

Lightning relaunches this script once per rank; each rank saves its weights after the step.
Usage: python tests/stylegan2/ddp_run.py <output folder>
"""

import sys
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset

CONF = Path(__file__).resolve().parents[2] / "conf"
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


class SaveWeightsPerRank(Callback):
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        state = {name: value.detach().cpu() for name, value in module.state_dict().items()}
        torch.save(state, self.out_dir / f"rank{trainer.global_rank}.pt")


def main(out_dir: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=TINY)
    torch.manual_seed(0)
    module = instantiate(cfg.model)
    # Two very different halves: the sampler gives each rank one, so unsynchronised gradients would differ.
    images = torch.cat([torch.zeros(4, 1, 8, 8), torch.ones(4, 1, 8, 8)])
    data = DataLoader(TensorDataset(images, torch.zeros(8, dtype=torch.long)), batch_size=4)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(process_group_backend="gloo", find_unused_parameters=True),
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
        callbacks=[SaveWeightsPerRank(out_dir)],
    )
    trainer.fit(module, data)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
