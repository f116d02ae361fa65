"""CycleGAN module on tiny networks and generated images: step order, outputs, schedule, guards."""

import csv
import functools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch import nn

from datamodules.unpaired import UnpairedImageDataModule
from genlab.checkpoints import module_from_checkpoint
from genlab.run import train
from lightning_modules.cyclegan import CycleGAN
from lightning_modules.metrics.feature_extractors import FeatureExtractor
from lightning_modules.networks.cyclegan import PatchDiscriminator, ResNetGenerator
from lightning_modules.training.guards import NonFiniteLossError
from tests.helpers.config import compose_config

CONF = Path(__file__).resolve().parents[2] / "conf"
adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def tiny_module(channels: int = 3, **settings) -> CycleGAN:
    return CycleGAN(
        generator_ab=ResNetGenerator(channels, channels, base_channels=4, n_residual_blocks=1),
        generator_ba=ResNetGenerator(channels, channels, base_channels=4, n_residual_blocks=1),
        discriminator_a=PatchDiscriminator(channels, base_channels=4, n_layers=2),
        discriminator_b=PatchDiscriminator(channels, base_channels=4, n_layers=2),
        optimizer_g=adam,
        optimizer_d=adam,
        **settings,
    )


def make_domains(root: Path, counts: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{folder}_{index}.png")
    return root


@pytest.fixture
def data(tmp_path: Path) -> UnpairedImageDataModule:
    root = make_domains(tmp_path / "data", {"trainA": 4, "trainB": 6, "testA": 4, "testB": 5})
    return UnpairedImageDataModule(root=str(root), load_size=32, crop_size=32, batch_size=2, num_workers=0, val_size=1)


def trainer(tmp_path: Path, **settings) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
    )
    return L.Trainer(**(defaults | settings))


class RecordingCycleGAN(CycleGAN):
    """Records, at each optimizer step, which players are trainable and hold gradients."""

    def optimize(self, loss, name, optimizer) -> None:
        super().optimize(loss, name, optimizer)
        self.events.append(
            {
                "name": name,
                "d_trainable": any(p.requires_grad for p in self.discriminators.parameters()),
                "d_has_grad": any(p.grad is not None for p in self.discriminators.parameters()),
            }
        )


def test_generator_step_comes_first_with_discriminators_frozen(tmp_path, data) -> None:
    module = tiny_module()
    module.__class__ = RecordingCycleGAN
    module.events = []
    trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(module, data)
    assert [event["name"] for event in module.events] == ["generator loss", "discriminator loss"]
    generator_event, discriminator_event = module.events
    assert not generator_event["d_trainable"] and not generator_event["d_has_grad"]
    assert discriminator_event["d_trainable"] and discriminator_event["d_has_grad"]


def test_discriminator_objective_is_halved_exactly_once() -> None:
    # least_squares_discriminator_loss already carries the paper's 0.5; other losses get it here.
    assert tiny_module(loss="least_squares").discriminator_scale == 1.0
    assert tiny_module(loss="non_saturating").discriminator_scale == 0.5


def test_fit_then_test_writes_every_translation_an_index_page_and_fid(tmp_path, data) -> None:
    # A feature network with a fixed 16x16 input, like the 28x28 MNIST classifier: images are resized.
    features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2))
    features.num_features = 2
    module = tiny_module(feature_extractor=FeatureExtractor("tiny", features, features, image_size=16))
    run = trainer(tmp_path, max_epochs=1)
    run.fit(module, data)
    assert torch.isfinite(run.callback_metrics["val/cycle_l1"])
    results = run.test(module, data, verbose=False)
    folder = tmp_path / "translations"
    assert len(list((folder / "A_to_B").glob("*_fake.png"))) == 4
    assert len(list((folder / "B_to_A").glob("*_fake.png"))) == 5
    page = (folder / "index.html").read_text()
    assert all(f"testA_{i}_fake.png" in page for i in range(4))
    assert all(f"testB_{i}_fake.png" in page for i in range(5))
    for direction in ("A_to_B", "B_to_A"):
        value = [r[f"test/fid_{direction}"] for r in results if f"test/fid_{direction}" in r]
        assert value and np.isfinite(value[0]) and value[0] >= 0


def test_learning_rate_is_constant_then_decays_linearly_per_epoch(tmp_path, data) -> None:
    seen = []

    class LearningRates(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            seen.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])

    module = tiny_module(n_epochs=1, n_epochs_decay=2)
    run = trainer(
        tmp_path,
        max_epochs=3,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=CSVLogger(tmp_path),
        callbacks=[LearningRates(), LearningRateMonitor()],
    )
    run.fit(module, data)
    expected = [2e-4, 2e-4 * 2 / 3, 2e-4 * 1 / 3]
    assert [lrs[0] for lrs in seen] == pytest.approx(expected)
    assert [lrs[1] for lrs in seen] == pytest.approx(expected)
    assert run.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # Lightning's LearningRateMonitor logs the rate each epoch ran at (generators: lr-Adam).
    with (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").open() as file:
        logged = [float(row["lr-Adam"]) for row in csv.DictReader(file) if row.get("lr-Adam")]
    assert logged == pytest.approx(expected)


def test_nan_loss_stops_training_with_a_named_error(tmp_path, data) -> None:
    module = tiny_module()
    with torch.no_grad():
        next(module.generators["A"].parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="generator loss"):
        trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(module, data)


def test_identity_loss_is_skipped_with_a_warning_when_channels_differ() -> None:
    module = tiny_module()
    real = {"A": torch.zeros(1, 1, 8, 8), "B": torch.zeros(1, 3, 8, 8)}
    with pytest.warns(UserWarning, match="Identity loss skipped: domain A has 1 channel"):
        assert not module.identity_applies(real)
    assert module.identity_applies({"A": torch.zeros(1, 3, 8, 8), "B": torch.zeros(1, 3, 8, 8)})
    assert not tiny_module(lambda_identity=0.0).identity_applies(real)


def test_translate_and_sample_give_unit_range_images() -> None:
    module = tiny_module()
    images = torch.rand(3, 3, 32, 32)
    assert module.translate(images, "B").shape == (3, 3, 32, 32)
    sample = module.sample(2, images=images)
    assert sample.shape == (2, 3, 32, 32) and sample.min() >= 0 and sample.max() <= 1
    with pytest.raises(ValueError, match="source must be 'A' or 'B'"):
        module.translate(images, "C")
    with pytest.raises(RuntimeError, match="pass images="):
        module.sample(2)


def test_paper_defaults_live_in_the_cyclegan_experiment() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=cyclegan", "model.feature_extractor=null"])
    model, data = cfg.model, cfg.data
    assert model.generator_ab.n_residual_blocks == 9 and model.generator_ab.base_channels == 64
    assert model.discriminator_a.n_layers == 3
    assert model.loss == "least_squares" and model.lambda_cycle == 10 and model.lambda_identity == 0.5
    assert model.pool_size == 50 and (model.n_epochs, model.n_epochs_decay) == (100, 100)
    assert cfg.trainer.max_epochs == model.n_epochs + model.n_epochs_decay
    for optimizer in (model.optimizer_g, model.optimizer_d):
        assert optimizer.lr == 2e-4 and list(optimizer.betas) == [0.5, 0.999]
    assert (data.batch_size, data.load_size, data.crop_size, data.flip) == (1, 286, 256, True)
    module = instantiate(model)
    assert module.generators["A"] is not module.generators["B"]
    parameters = sum(p.numel() for p in module.generators["B"].parameters())
    assert round(parameters / 1e6, 3) == 11.378  # the reference's ResNet-9 generator


def test_cyclegan_experiment_runs_on_generated_images_and_rebuilds_from_its_checkpoint(tmp_path) -> None:
    # horse2zebra is not available offline; the experiment's wiring is checked on stand-in folders.
    root = make_domains(tmp_path / "data", {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2})
    overrides = [
        "experiment=cyclegan",
        f"data.root={root}",
        "data.val_size=1",
        "data.load_size=36",
        "data.crop_size=32",
        "data.num_workers=0",
        "model.generator_ab.base_channels=8",
        "model.generator_ab.n_residual_blocks=1",
        "model.discriminator_a.base_channels=8",
        "model.feature_extractor=null",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
    ]
    metrics = train(compose_config(tmp_path / "run", overrides))
    assert {"train/g_loss", "train/d_A_loss", "val/cycle_l1"} <= set(metrics)
    assert (tmp_path / "run" / "translations" / "index.html").is_file()
    assert list((tmp_path / "run" / "images").glob("translations_step*.png")), "no translation grid"
    # Test-time settings come from the checkpoint's own config, never re-typed.
    module, cfg = module_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert cfg.model.generator_ab.base_channels == 8 and cfg.data.crop_size == 32
    image = torch.rand(1, 3, 32, 32)
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(module.state_dict()["generators.A.model.1.weight"], saved["generators.A.model.1.weight"])
    assert module.translate(image, "A").shape == image.shape


def test_trains_under_bf16_mixed_precision(tmp_path, data) -> None:
    run = trainer(tmp_path, limit_train_batches=2, limit_val_batches=1, precision="bf16-mixed")
    run.fit(tiny_module(), data)
    assert torch.isfinite(run.callback_metrics["train/g_loss"])
    assert torch.isfinite(run.callback_metrics["val/cycle_l1"])
