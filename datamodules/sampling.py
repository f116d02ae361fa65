"""Loader construction shared by the datamodules."""

import lightning as L
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


class SplitDataModule(L.LightningDataModule):
    """Loaders over `train_set`, `val_set` and `test_set`, which subclasses build in `setup`."""

    batch_size: int
    num_workers: int
    seed: int

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.train_set, self.trainer, self.batch_size, self.num_workers, self.seed)

    def val_dataloader(self) -> DataLoader:
        return eval_loader(self.val_set, self.batch_size, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return eval_loader(self.test_set, self.batch_size, self.num_workers)
