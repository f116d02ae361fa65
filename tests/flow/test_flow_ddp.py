"""Lightning DDP with 2 CPU processes (gloo): ActNorm ends identical on both ranks."""

import functools

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.flow import NormalizingFlow
from lightning_modules.networks.flow_layers import ActNorm
from lightning_modules.networks.flows import Glow


class SaveActNormPerRank(Callback):
    """Each rank saves its ActNorm parameters after the first optimizer step."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer, module) -> None:
        norms = [m for m in module.flow.modules() if isinstance(m, ActNorm)]
        state = {
            f"{i}.{name}": getattr(m, name).detach().cpu()
            for i, m in enumerate(norms)
            for name in ("bias", "log_scale", "initialized")
        }
        torch.save(state, f"{self.out_dir}/rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_processes_keep_actnorm_identical(tmp_path):
    torch.manual_seed(0)
    # Two very different halves: DDP's sampler gives each rank one, so rank-local init would differ.
    images = torch.cat([torch.randint(0, 64, (8, 1, 8, 8)), torch.randint(192, 256, (8, 1, 8, 8))])
    data = DataLoader(TensorDataset(images.float() / 255, torch.zeros(16, dtype=torch.long)), 8)
    module = NormalizingFlow(
        Glow(1, 8, num_levels=2, num_steps=1, hidden_channels=8),
        functools.partial(torch.optim.Adam, lr=1e-3),
        sample_temperatures=(),
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(process_group_backend="gloo", start_method="spawn"),
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[SaveActNormPerRank(str(tmp_path))],
    )
    trainer.fit(module, data)
    first, second = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert first.keys() == second.keys() and len(first) == 6  # 2 ActNorms
    assert first["0.initialized"] == 1
    for key in first:
        assert torch.equal(first[key], second[key]), key
