"""The convolutional VAEs on 8-bit Fashion-MNIST run one batch on CPU (test_experiments.py covers
every conf/experiment/*.yaml; these are the documented `model=` switches)."""

import pytest

from lightning_modules.run import train
from tests.conftest import DATA_ROOT

requires_fashion_mnist = pytest.mark.skipif(
    not (DATA_ROOT / "FashionMNIST" / "raw").is_dir(), reason=f"FashionMNIST not found under {DATA_ROOT}"
)


@requires_fashion_mnist
@pytest.mark.parametrize("model", ["conv_vae", "conv_vae_logistic"])
def test_convolutional_models_run_on_fashion_mnist(make_config, model):
    cfg = make_config(
        "experiment=vae",
        f"model={model}",
        "data=fashion_mnist",
        "metrics=none",
        "trainer.fast_dev_run=true",
        "model.iwae_samples=2",
    )
    metrics = train(cfg)
    assert "test/bits_per_dim" in metrics
    assert metrics["test/iwae_nll_nats"] == metrics["test/iwae_nll_nats"]  # not NaN
