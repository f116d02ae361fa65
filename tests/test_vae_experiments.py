"""Every VAE-family experiment config composes, trains one batch, validates and tests on CPU."""

import pytest

from lightning_modules.run import train
from tests.test_vae_integration import DATA_ROOT, FASHION_MNIST_MISSING, MNIST_MISSING, compose_run

EXPERIMENTS = ["vae", "beta_vae", "cvae", "autoencoder"]


@pytest.mark.skipif(MNIST_MISSING, reason="MNIST not found under $DATA_ROOT")
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_one_batch(tmp_path, experiment):
    overrides = ["+trainer.fast_dev_run=true"]
    if experiment != "autoencoder":
        overrides += ["model.iwae_samples=4"]
    metrics = train(compose_run(tmp_path, experiment, *overrides))
    expected = "test/reconstruction_nats" if experiment == "autoencoder" else "test/iwae_nll_nats"
    assert expected in metrics, f"{experiment} logged {sorted(metrics)} from {DATA_ROOT}"


@pytest.mark.skipif(FASHION_MNIST_MISSING, reason="FashionMNIST not found under $DATA_ROOT")
@pytest.mark.parametrize("model", ["conv_vae", "conv_vae_logistic"])
def test_convolutional_models_run_on_fashion_mnist(tmp_path, model):
    cfg = compose_run(
        tmp_path, "vae", f"model={model}", "data=fashion_mnist", "+trainer.fast_dev_run=true", "model.iwae_samples=2"
    )
    assert "test/bits_per_dim" in train(cfg)
