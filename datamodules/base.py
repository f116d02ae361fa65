"""Loader construction shared by the datamodules."""

from typing import Any

import lightning as L
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class ResumableOrder(DistributedSampler):
    """One device's shuffled order for (seed, epoch), which a resumed run can start partway through."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
        self.skip = 0  # indices of the current epoch already trained on

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        super().set_epoch(epoch)

    def __iter__(self):
        indices = list(super().__iter__())[self.skip :]
        self.skip = 0  # only the resumed epoch starts late
        return iter(indices)


class ResumableLoader(DataLoader):
    """A train loader whose position Lightning stores in checkpoints, so a run resumed mid-epoch
    (after SIGTERM or Ctrl-C) trains on the same batches as an uninterrupted one.

    Lightning saves `state_dict()` and calls `load_state_dict()` before iterating. The position comes
    from the trainer's own batch count: the loader itself runs ahead by the batches it prefetches.
    """

    trainer: Trainer | None = None

    def state_dict(self) -> dict[str, Any]:
        if self.trainer is None or not isinstance(self.sampler, ResumableOrder):
            return {}
        fit_loop = self.trainer.fit_loop
        batches_done = fit_loop.epoch_loop.batch_progress.current.completed
        epoch = fit_loop.epoch_progress.current.processed
        if batches_done >= self.trainer.num_training_batches:  # a finished epoch: the next one starts afresh
            return {"epoch": epoch + 1, "batches_done": 0}
        return {"epoch": epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and isinstance(self.sampler, ResumableOrder):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.skip = state["batches_done"] * self.batch_size


def train_loader(dataset: Dataset, trainer: Trainer | None, batch_size: int, num_workers: int, seed: int) -> DataLoader:
    """A shuffled loader whose order depends only on (seed, epoch), so resumed runs see the same batches.

    On one device a `ResumableOrder` gives exactly that (Lightning calls its `set_epoch`), also
    mid-epoch; under DDP Lightning inserts its own seeded DistributedSampler instead, and a run
    resumed mid-epoch starts that epoch's order over.
    """
    distributed = trainer is not None and trainer.world_size > 1
    sampler = None if distributed else ResumableOrder(dataset, seed=seed)
    loader = ResumableLoader(
        dataset,
        batch_size=batch_size,
        shuffle=distributed,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=True,
    )
    loader.trainer = trainer
    return loader


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
