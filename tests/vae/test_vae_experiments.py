"""VAE runs on the real data, a few batches each: the documented `model=` switches on 8-bit
Fashion-MNIST, and exact resume (test_experiments.py runs every conf/experiment/*.yaml)."""

import pytest
import torch

from genlab.run import train
from tests.helpers.config import DATA_ROOT, requires_mnist
from tests.helpers.trainer import assert_same_state, resumed_and_uninterrupted

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


@requires_mnist
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, make_config):
    short = [
        "experiment=vae",
        "metrics=none",
        "trainer.accelerator=cpu",
        "trainer.deterministic=true",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "data.batch_size=16",
        "test=false",
    ]

    straight, resumed, first_half = resumed_and_uninterrupted(make_config, tmp_path, *short)
    assert_same_state(straight, resumed)
    assert not torch.equal(first_half["decoder.head.weight"], resumed["decoder.head.weight"])
