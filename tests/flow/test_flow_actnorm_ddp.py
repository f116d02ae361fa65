"""ActNorm's data-dependent init under torch.distributed: 2 CPU processes (gloo) must agree."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_modules.networks.flow_layers import ActNorm


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
