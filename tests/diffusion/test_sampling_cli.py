"""`make sample CKPT=... ARGS='sampler=ddim steps=50 guidance=2.0'`: sampler settings reach the model, checked."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from genlab.evaluation.evaluate_checkpoint import configure_sampling, write_samples
from genlab.evaluation.measure import EvaluationSettingError
from genlab.run import train
from tests.helpers.config import CONF, compose_config, requires_mnist

TINY = ["model.network.base_channels=8", "model.network.norm_groups=4", "model.sample_steps=2"]


@pytest.fixture(scope="module")
def ddpm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("ddpm")
    settings = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "test=false"]
    train(compose_config(output, ["experiment=ddpm", *TINY, *settings, "callbacks.sample_grid.num_samples=4"]))
    return output / "checkpoints" / "last.ckpt"


def sample_config(checkpoint: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="evaluate", overrides=[f"ckpt_path={checkpoint}", "mode=sample", *overrides])


@requires_mnist
def test_make_sample_takes_the_sampler_its_steps_and_eta(ddpm_checkpoint):
    grid = write_samples(sample_config(ddpm_checkpoint, "grid_samples=4", "sampler=ddim", "steps=3", "eta=1.0"))
    assert grid.is_file()


@requires_mnist
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sampler=heun", "Unknown sampler 'heun'. Available: ddpm, ddim"),
        ("steps=0", "steps must be a whole number >= 1"),
        ("guidance=2.0", "unconditional"),
    ],
)
def test_bad_sampler_settings_fail_before_sampling(ddpm_checkpoint, override, message):
    with pytest.raises(EvaluationSettingError, match=message):
        write_samples(sample_config(ddpm_checkpoint, override))


def test_sampler_settings_on_another_family_are_refused():
    class GANLike:
        pass

    with pytest.raises(EvaluationSettingError, match="sampler settings apply to diffusion and flow-matching"):
        configure_sampling(GANLike(), DictConfig({"sampler": "ddim"}))
    configure_sampling(GANLike(), DictConfig({"sampler": None}))  # nothing chosen: nothing to refuse
