"""ActNorm's data-dependent init across 2 CPU processes (gloo): the layer alone under
torch.distributed, and the flow module under Lightning DDP, must agree across ranks."""

import functools
import os

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.flow import NormalizingFlow
from lightning_modules.networks.flow_layers import ActNorm
from lightning_modules.networks.flows import Glow


def _initialise_on_rank(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        # Each rank sees a very different batch, as DDP's sharded sampler would give it.
        x = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(rank)) * (1 + 4 * rank)
        norm = ActNorm(3)
        norm(x)
        torch.save({"state": norm.state_dict(), "x": x}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_actnorm_init_is_identical_across_two_gloo_ranks(tmp_path):
    mp.spawn(_initialise_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for key in ("bias", "log_scale", "initialized"):
        assert torch.equal(first["state"][key], second["state"][key]), key
    # ...and equal to the statistics of both batches together, not rank 0's alone.
    both = torch.cat([first["x"], second["x"]])
    expected = ActNorm(3)
    expected(both)
    torch.testing.assert_close(first["state"]["bias"], expected.bias.detach())
    torch.testing.assert_close(first["state"]["log_scale"], expected.log_scale.detach())


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
    # DDP's sampler deals images out alternately (rank 0: 0, 2, 4, ...), so rank 0 gets only dark
    # images and rank 1 only bright ones: rank-local initialization would differ.
    dark, bright = torch.randint(0, 64, (8, 1, 8, 8)), torch.randint(192, 256, (8, 1, 8, 8))
    images = torch.stack([dark, bright], dim=1).flatten(0, 1)
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
