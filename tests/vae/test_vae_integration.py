"""A short CPU run of `experiment=vae` on the real MNIST in $DATA_ROOT: did the VAE learn?

An untrained VAE scores about 545 nats per binarized MNIST test image (every pixel near
probability 1/2: 784 ln 2 = 543 nats, plus a small KL). With batch 128 the IWAE-paper MLP reaches
about 190 nats of validation bound after one epoch and about 150 after two (docs/vae.md). The
threshold, 200 nats after two epochs, sits far below the untrained 545 and about 50 nats above what
two epochs reach, so a slow machine or another seed does not fail it; a model that did not learn
cannot pass it.
"""

import pytest

from genlab.run import train
from tests.helpers.config import requires_mnist

UNTRAINED_NELBO_NATS = 545.0
LEARNED_NELBO_THRESHOLD_NATS = 200.0


@pytest.mark.slow
@requires_mnist
def test_two_epochs_on_mnist_bring_the_test_bound_far_below_an_untrained_model(make_config, tmp_path):
    cfg = make_config(
        "experiment=vae",
        "metrics=none",  # FID needs a feature classifier trained first; not what this test checks
        "trainer.accelerator=cpu",
        "trainer.max_epochs=2",
        "trainer.limit_test_batches=10",  # 1280 test images
        "model.iwae_samples=100",
        "model.iwae_chunk_size=100",
    )
    metrics = train(cfg)
    assert metrics["test/nelbo_nats"] < LEARNED_NELBO_THRESHOLD_NATS < UNTRAINED_NELBO_NATS
    # The K=100 importance-weighted bound is tighter than the ELBO.
    assert metrics["test/iwae_nll_nats"] < metrics["test/nelbo_nats"]
    assert metrics["test/bits_per_dim"] < 1.0  # a coin flip costs 1 bit per binary pixel
    images = {path.name.split("_step")[0] for path in (tmp_path / "images").glob("*.png")}
    assert {"samples", "reconstructions", "interpolations"} <= images
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
