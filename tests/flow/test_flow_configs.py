"""The flow configs compose and build for MNIST and CIFAR-10; bad sizes fail at start-up."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from lightning_modules.flow import NormalizingFlow

CONF = Path(__file__).resolve().parents[2] / "conf"


def compose_flow(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("model", ["realnvp", "glow"])
@pytest.mark.parametrize(("data", "shape"), [("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_experiment_builds_a_flow_for_the_data(model, data, shape):
    cfg = compose_flow(f"experiment={model}", f"data={data}")
    assert cfg.callbacks.model_checkpoint.monitor == "val/bits_per_dim"
    module = instantiate(cfg.model)
    assert isinstance(module, NormalizingFlow)
    assert tuple(module.flow.image_shape) == shape
    assert module.num_dims == shape[0] * shape[1] * shape[2]


def test_too_many_squeezes_for_mnist_fail_at_start_up_with_the_reason():
    cfg = compose_flow("experiment=glow", "model.flow.num_levels=3")
    with pytest.raises(InstantiationException, match="divisible by 8; got 28x28"):
        instantiate(cfg.model)


def test_logit_alpha_outside_the_interval_fails_at_start_up():
    cfg = compose_flow("experiment=realnvp", "model.flow.logit_alpha=0.5")
    with pytest.raises(InstantiationException, match=r"alpha must lie in \(0, 0.5\)"):
        instantiate(cfg.model)
