"""Real-data CycleGAN runs on MNIST <-> USPS (marked slow): learning happens, digits survive."""

import os
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchvision import datasets

from datamodules.torchvision_datamodule import TorchvisionDataModule
from lightning_modules.metrics.feature_extractors import classifier_feature_extractor
from tests.helpers.config import DATA_ROOT, ROOT, compose_config

MNIST2USPS = DATA_ROOT / "mnist2usps"
TRAINING_STEPS = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (MNIST2USPS / "trainA").is_dir(), reason=f"no mnist2usps under {DATA_ROOT}"),
]


def experiment_config(output_dir: Path, *overrides: str):
    return compose_config(output_dir, ["experiment=cyclegan_mnist_usps", *overrides])


def mean_cycle_l1(module, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        _, parts = module.generator_losses({domain: batch[domain] * 2 - 1 for domain in "AB"})
    return float((parts["cycle_A_l1"] + parts["cycle_B_l1"]) / 2)


def digit_accuracy(classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of the 28x28 MNIST classifier on 32x32 images resized to its input size."""
    resized = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        return float((classifier(resized).argmax(dim=1) == labels).float().mean())


def mnist_test_labels(names: list[str]) -> torch.Tensor:
    # testA files are named mnist_test_<index into the MNIST test split>.png
    targets = datasets.MNIST(str(DATA_ROOT), train=False, download=False).targets
    return targets[[int(name.rsplit("_", 1)[1]) for name in names]]


def test_short_cpu_run_lowers_cycle_loss_and_keeps_digit_identity(tmp_path: Path) -> None:
    L.seed_everything(0)
    cfg = experiment_config(tmp_path, "model.feature_extractor=null")
    data, module = instantiate(cfg.data), instantiate(cfg.model)
    data.setup("fit")
    fixed = next(iter(data.val_dataloader()))
    cycle_before = mean_cycle_l1(module, fixed)

    started = time.perf_counter()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=2 * TRAINING_STEPS,  # global_step counts both optimizers' steps
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, data)
    cycle_after = mean_cycle_l1(module, fixed)

    cache = Path(os.environ.get("GENLAB_CACHE_DIR", tmp_path / "cache")) / "feature_classifiers"
    mnist = TorchvisionDataModule("mnist", root=str(DATA_ROOT), image_size=28, download=False)
    classifier = classifier_feature_extractor(mnist, str(cache)).logits
    data.setup("test")
    test_a = data.test_sets[0]
    real = torch.stack([test_a[i]["A"] for i in range(len(test_a))])
    labels = mnist_test_labels([path.stem for path in test_a.paths])
    accuracy_real = digit_accuracy(classifier, real, labels)
    accuracy_translated = digit_accuracy(classifier, module.translate(real, "A"), labels)
    print(
        f"\n{TRAINING_STEPS} steps in {time.perf_counter() - started:.0f}s: cycle L1 {cycle_before:.3f} -> "
        f"{cycle_after:.3f}; MNIST classifier accuracy on testA {accuracy_real:.3f}, "
        f"on testA translated to USPS {accuracy_translated:.3f} (chance 0.1)"
    )
    assert cycle_after < 0.4 * cycle_before
    assert accuracy_translated > 0.7


def test_ddp_with_two_cpu_processes(tmp_path: Path) -> None:
    command = [
        sys.executable, "train.py", "experiment=cyclegan_mnist_usps", "trainer=ddp", "trainer.devices=2",
        "trainer.accelerator=cpu", "trainer.max_epochs=1", "++trainer.limit_train_batches=3",
        "++trainer.limit_val_batches=1", "++trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0",
        "model.generator_ab.base_channels=8", "model.discriminator_a.base_channels=8", "model.feature_extractor=null",
        "data.eval_batch_size=20", "logger=csv", "callbacks.progress_bar=null", f"paths.log_dir={tmp_path}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DATA_ROOT": str(DATA_ROOT)}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.rglob("last.ckpt")), "no checkpoint written"
    # Each rank translated one test batch of 20 per direction; rank 0 indexed all 40.
    pages = list(tmp_path.rglob("translations/index.html"))
    assert pages and "A_to_B (40 images)" in pages[0].read_text()
