"""The StyleGAN2 module's promises: start-up errors, regularizers under bf16-mixed, exact resume, grids."""

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from genlab.evaluation.evaluate_checkpoint import write_samples
from genlab.run import train
from lightning_modules.callbacks.image_grids import sample_grid
from lightning_modules.stylegan2 import check_precision
from tests.helpers.config import CONF, requires_mnist
from tests.helpers.gan import SHORT_LOOP
from tests.helpers.trainer import assert_same_state, resumed_and_uninterrupted

TINY = [
    "model.generator.latent_dim=16",
    "model.generator.w_dim=16",
    "model.generator.channel_base=128",
    "model.generator.channel_max=16",
]
SHORT = ["experiment=stylegan2_mnist", *TINY, *SHORT_LOOP, "data.batch_size=8"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.r1_interval=0", "r1_interval must be positive, got 0"),
        ("model.path_length_batch_shrink=0", "path_length_batch_shrink must be positive, got 0"),
        ("model.style_mixing_probability=2", r"style_mixing_probability must lie in \[0, 1\], got 2"),
        ("model.augment=colour", r"Unknown DiffAugment transform\(s\) \['colour'\]"),
        ("data.image_size=28", r"power of two >= 4 .* got 28"),
        ("model.generator.num_classes=5", "model.num_classes=10 but the generator has num_classes=5"),
    ],
)
def test_nonsense_settings_fail_at_start_up(make_config, override, message):
    with pytest.raises(InstantiationException, match=message):
        instantiate(make_config("experiment=stylegan2_mnist", *TINY, override).model)


def test_conditional_grid_has_one_row_per_class_and_truncation_is_checked(make_config):
    module = instantiate(make_config("experiment=stylegan2_mnist", *TINY, "model.num_classes=10").model)
    grid = sample_grid(module, num_samples=20, seed=0)
    assert grid.shape == (3, 2 + 10 * 34, 2 + 2 * 34)  # 10 rows of 2 samples of 32 px, 2 px padding
    images = module.sample(3, generator=torch.Generator().manual_seed(0), psi=0.5)
    assert images.shape == (3, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match=r"psi must lie in \[0, 1\]"):
        module.sample(1, psi=1.1)


def test_float16_without_a_loss_scaler_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="trainer.precision=16-true runs float16 without a loss scaler.*bf16-mixed"):
        check_precision("16-true")
    for precision in ("32-true", "bf16-mixed", "16-mixed"):
        check_precision(precision)


@requires_mnist
def test_r1_and_path_length_train_under_bf16_mixed(make_config):
    cfg = make_config(*SHORT, "trainer.max_epochs=1", "trainer.precision=bf16-mixed")
    cfg.model.r1_interval = cfg.model.path_length_interval = 2
    metrics = train(cfg)
    for name in ("train/g_loss", "train/d_loss", "train/r1_penalty", "train/path_length"):
        assert torch.isfinite(torch.tensor(metrics[name])), name
    assert metrics["train/r1_penalty"] > 0 and metrics["train/path_length"] > 0


@requires_mnist
def test_resume_gives_the_same_weights_counters_and_path_length_mean(tmp_path, make_config):
    # Intervals of 3 over 4-batch epochs: both regularizers fall due on either side of the resume.
    def every_third_generator_step(cfg):
        cfg.model.path_length_interval = 3

    overrides = (*SHORT, "trainer.deterministic=true", "model.r1_interval=3")
    expected, actual, unresumed = resumed_and_uninterrupted(
        make_config, tmp_path, *overrides, edit=every_third_generator_step
    )
    assert expected.keys() == actual.keys()
    assert_same_state(expected, actual)
    assert actual["discriminator_steps"] == 8 and actual["images_seen"] == 64
    assert actual["path_length_mean"] > 0 and actual["generator.mapping.w_mean"].abs().sum() > 0
    assert not torch.equal(unresumed["path_length_mean"], actual["path_length_mean"])
    check_make_sample_writes_the_style_grids(tmp_path / "resumed" / "checkpoints" / "last.ckpt")


def check_make_sample_writes_the_style_grids(checkpoint):
    """`make sample CKPT=... N=16`: the sample grid plus truncation, style-mixing and interpolation grids."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[f"ckpt_path={checkpoint}", "mode=sample", "grid_samples=16"])
    write_samples(cfg)
    sizes = {}
    for suffix in ("samples", "truncation", "style_mixing", "interpolation"):
        with Image.open(checkpoint.parent / f"last_{suffix}.png") as image:
            sizes[suffix] = image.size
    side = 2 + 4 * 34  # 4 images of 32 px and 2 px padding
    assert sizes == {
        "samples": (2 + 34, 2 + 10 * 34),  # conditional: one row per class, 16 // 10 samples each
        "truncation": (side, 2 + 4 * 34),  # rows psi = 1, 0.7, 0.5, 0
        "style_mixing": (side + 34, side + 34),  # plus the sources' row and column
        "interpolation": (side, side),
    }


def test_cifar_experiment_has_the_papers_settings_and_runs_its_networks(make_config):
    cfg = make_config("experiment=stylegan2")
    module = instantiate(cfg.model)
    assert module.num_classes == 10 and module.generator.num_ws == 8  # conditional, 32x32
    assert len(module.generator.mapping.layers) == 2 and module.generator.synthesis.constant.shape[1] == 512
    assert (cfg.model.r1_gamma, cfg.model.ema_kimg, cfg.data.batch_size) == (0.01, 500, 64)
    labels = torch.tensor([3, 7])
    images = module.sample(2, generator=torch.Generator().manual_seed(0), labels=labels)
    assert images.shape == (2, 3, 32, 32)
    assert module.discriminator(images * 2 - 1, labels).shape == (2,)
