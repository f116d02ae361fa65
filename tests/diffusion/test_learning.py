"""Integration: short CPU runs of DDPM and flow matching on the real MNIST learn, judged by the
cached MNIST classifier's features (FID) and by the test likelihood in bits/dim."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchmetrics.image.fid import FrechetInceptionDistance

from genlab.checkpoints import module_from_checkpoint
from genlab.run import train
from tests.helpers.config import compose_config, requires_mnist
from tests.helpers.trainer import quiet_trainer

pytestmark = [pytest.mark.slow, requires_mnist]
# 150 batches of 64 with a width-8 U-Net at a high learning rate and a short EMA: the smallest
# run whose samples are clearly digit-like strokes. Samplers and likelihoods take 5 steps.
RUN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=150",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
    "data.batch_size=64",
    "callbacks.sample_grid=null",
    "callbacks.model_checkpoint.monitor=null",
    "model.network.base_channels=8",
    "model.network.norm_groups=4",
    "model.network.dropout=0",
    "model.optimizer.lr=2e-3",
    "model.warmup_steps=10",
    "model.ema_decay=0.99",
    "model.sample_steps=5",
]
FAMILY = {
    "ddpm": ["model.bound_steps=5"],
    "flow_matching": ["model.sampler=euler", "model.likelihood_steps=5"],
}
NUM_SAMPLES = 250


def classifier_fid(module, mnist_judge) -> float:
    extractor, real = mnist_judge
    fid = FrechetInceptionDistance(extractor.features)
    fid.update(real, real=True)
    fid.update(module.sample(NUM_SAMPLES, generator=torch.Generator().manual_seed(0)), real=False)
    return fid.compute().item()


def untrained_bits_per_dim(module, cfg: DictConfig, root: Path) -> float:
    datamodule = instantiate(cfg.data)
    trainer = quiet_trainer(default_root_dir=root, limit_test_batches=1)
    return trainer.test(module, datamodule, verbose=False)[0]["test/bits_per_dim"]


def learn(experiment: str, seed: int, output: Path, mnist_judge) -> dict[str, float]:
    """Classifier-FID and test bits/dim before and after a short run of `experiment`."""
    cfg = compose_config(output, [f"experiment={experiment}", f"seed={seed}", *RUN, *FAMILY[experiment]])
    untrained = instantiate(cfg.model)
    results = {
        "fid_before": classifier_fid(untrained, mnist_judge),
        "bits_before": untrained_bits_per_dim(untrained, cfg, output),
    }
    metrics = train(cfg)
    module, _ = module_from_checkpoint(output / "checkpoints" / "last.ckpt")
    results |= {"fid_after": classifier_fid(module, mnist_judge), "bits_after": metrics["test/bits_per_dim"]}
    print(f"{experiment} seed {seed}: {results}")
    return results


# Measured (docs/diffusion.md; 46-50 CPU seconds a run): DDPM classifier-FID 2086 -> 507 and 625
# (seeds 0, 1), test bound 14.2 -> 2.58 and 2.68 bits/dim; flow matching FID 1148 -> 313, 268, 294,
# ODE likelihood 8.99 -> 3.05, 2.94, 2.55 bits/dim (seeds 0, 1, 2). The thresholds leave about a
# factor of two on the FID and 0.5 bits/dim or more on the likelihood.
THRESHOLDS = {"ddpm": {"fid_ratio": 0.5, "bits": 3.5}, "flow_matching": {"fid_ratio": 0.5, "bits": 4.0}}


@pytest.mark.parametrize("experiment", ["ddpm", "flow_matching"])
def test_short_mnist_run_learns_digits_and_their_likelihood(experiment, tmp_path, mnist_judge):
    results = learn(experiment, 0, tmp_path, mnist_judge)
    assert results["fid_after"] < THRESHOLDS[experiment]["fid_ratio"] * results["fid_before"]
    assert results["bits_after"] < THRESHOLDS[experiment]["bits"] < results["bits_before"]
    assert list((tmp_path / "images").glob("denoising_process_*.png")), "no denoising-process grid was logged"
