"""Loader construction shared by the datamodules."""

from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def train_loader(dataset: Dataset, trainer: Trainer | None, batch_size: int, num_workers: int, seed: int) -> DataLoader:
    """A shuffled loader whose order depends only on (seed, epoch), so resumed runs see the same batches.

    On one device a single-replica DistributedSampler gives exactly that (Lightning calls its
    `set_epoch`); under DDP Lightning inserts its own seeded DistributedSampler instead.
    """
    distributed = trainer is not None and trainer.world_size > 1
    sampler = None if distributed else DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=distributed,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=True,
    )


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0)
