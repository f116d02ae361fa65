"""Image classifier training, used to build the feature extractor for FID/IS where Inception is unavailable."""

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.base import eval_loader, train_loader
from lightning_modules.callbacks.progress_bars import LabelledProgressBar
from lightning_modules.metrics.caches import save_atomically
from lightning_modules.metrics.classifier_network import SmallClassifier


class ImageClassifier(L.LightningModule):
    """Cross-entropy training of any classifier network; logs accuracy on val and test."""

    def __init__(self, network: nn.Module, learning_rate: float = 1e-3) -> None:
        super().__init__()
        self.network, self.learning_rate = network, learning_rate

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = F.cross_entropy(self.network(images), labels)
        self.log("train/cross_entropy", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/accuracy", self.accuracy(batch), prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("test/accuracy", self.accuracy(batch))

    def accuracy(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        images, labels = batch
        return (self.network(images).argmax(dim=1) == labels).float().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def train_feature_classifier(
    datamodule: L.LightningDataModule,
    path: Path,
    max_epochs: int = 1,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> SmallClassifier:
    """Train a `SmallClassifier` on the datamodule's train split and save it with its test accuracy.

    It uses its own batch size and seed, not the run's, so every run on the same data gets the same
    classifier (FIDs of runs with different `data.batch_size` stay comparable) and the global
    random stream of the run is left as it was.
    """
    settings = {
        "channels": datamodule.channels,
        "num_classes": datamodule.num_classes,
        "image_size": datamodule.image_size,
    }
    datamodule.setup("fit")
    workers = datamodule.num_workers
    batch_size = min(batch_size, len(datamodule.train_set))  # training drops the last partial batch
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(path.parent),
        # Its own labelled bar: the first run on a dataset spends minutes here, before "Epoch 0" starts.
        callbacks=[LabelledProgressBar(classifier_progress_label(path))],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = SmallClassifier(**settings)
        module = ImageClassifier(network, learning_rate)
        trainer.fit(
            module,
            train_dataloaders=train_loader(datamodule.train_set, None, batch_size, workers, seed),
            val_dataloaders=eval_loader(datamodule.val_set, batch_size, workers),
        )
        test_loader = eval_loader(datamodule.test_set, batch_size, workers)
        accuracy = trainer.test(module, dataloaders=test_loader, verbose=False)[0]["test/accuracy"]
    save_atomically({"state_dict": network.state_dict(), "settings": settings, "test_accuracy": accuracy}, path)
    return network.eval()


def classifier_progress_label(path: Path) -> str:
    return f"Training the FID/IS feature classifier (once per dataset, cached at {path})"


def load_feature_classifier(path: Path) -> tuple[SmallClassifier, float]:
    """The saved classifier in eval mode, and its test accuracy."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    network = SmallClassifier(**saved["settings"])
    network.load_state_dict(saved["state_dict"])
    return network.eval().requires_grad_(False), saved["test_accuracy"]
