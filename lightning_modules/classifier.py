"""Image classifier training, used to build the feature extractor for FID/IS where Inception is unavailable."""

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_modules.atomic_files import torch_save_atomically
from lightning_modules.networks.classifier import SmallClassifier


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


def train_feature_classifier(datamodule: L.LightningDataModule, path: Path, max_epochs: int = 1) -> SmallClassifier:
    """Train a `SmallClassifier` on the datamodule's train split and save it with its test accuracy."""
    settings = {
        "channels": datamodule.channels,
        "num_classes": datamodule.num_classes,
        "image_size": datamodule.image_size,
    }
    network = SmallClassifier(**settings)
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=str(path.parent),
    )
    module = ImageClassifier(network)
    trainer.fit(module, datamodule)
    accuracy = trainer.test(module, datamodule, verbose=False)[0]["test/accuracy"]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save_atomically(  # a killed run leaves no broken cache
        {"state_dict": network.state_dict(), "settings": settings, "test_accuracy": accuracy}, path
    )
    return network.eval()


def load_feature_classifier(path: Path) -> tuple[SmallClassifier, float]:
    """The saved classifier in eval mode, and its test accuracy."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    network = SmallClassifier(**saved["settings"])
    network.load_state_dict(saved["state_dict"])
    return network.eval().requires_grad_(False), saved["test_accuracy"]
