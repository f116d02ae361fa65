"""Classes a short `stylegan2_mnist` run covers as it trains: the diagnostic for its mode collapse.

Trains the experiment (with any Hydra overrides; `--experiment dcgan` for a reference) on the real
MNIST for `--seconds` and, every `--every` batches, prints for the EMA generator's samples of fixed
noise: the classes covered (each given at least a quarter of its uniform share, as `make evaluate`
counts them), the largest class's share, the share classified with confidence > 0.9 (class counts
of unsure classifications say little: look at the samples too), the per-pixel standard deviation
across samples on [-1, 1] (real padded MNIST: 0.29), D's mean outputs on the last batch, and for a
conditional model (`model.num_classes=10`, labels 0-9 in turn) the share classified as the label
asked for. The judge is the cached MNIST classifier at the experiment's image size that
`metrics=classifier` uses (trained once, about a minute, on first use).

    OMP_NUM_THREADS=1 python benchmarks/stylegan2_coverage.py --seconds 200 --every 50 --grid end.png model.r1_gamma=1
"""

import argparse
import logging
import time
from pathlib import Path

import lightning as L
import torch
import torchvision
from hydra.utils import instantiate
from step_timer import training_only_trainer

from genlab.run import compose_config
from lightning_modules.metrics.feature_extractors import FeatureExtractor, classifier_feature_extractor
from lightning_modules.metrics.mode_coverage import mode_coverage


@torch.no_grad()
def coverage(images: torch.Tensor, judge: FeatureExtractor, labels: torch.Tensor | None) -> dict[str, float]:
    """The judge's view of `images` in [0, 1]: classes covered, largest class share, confident share,
    spread, and (for a conditional model's `labels`) the share classified as the label asked for."""
    confidence, predicted = judge.logits(images).softmax(dim=1).max(dim=1)
    on_label = (predicted == labels).float().mean().item() if labels is not None else float("nan")
    covered = mode_coverage(predicted, num_classes=10)
    return {
        "classes": covered["classes_covered"],
        "largest_share": max(covered["class_histogram"]),
        "confident": (confidence > 0.9).float().mean().item(),
        "pixel_std": (images * 2 - 1).std(dim=0).mean().item(),
        "on_label": on_label,
    }


class CoverageReport(L.Callback):
    """Prints one line of `coverage` and D's outputs every `every` batches and at the end; `grid`
    receives the first 64 samples of the last report."""

    def __init__(self, judge: FeatureExtractor, every: int, num_samples: int, grid: str | None = None) -> None:
        self.judge, self.every, self.num_samples, self.grid = judge, every, num_samples, grid
        self.start, self.batches = time.monotonic(), 0
        self.last_samples: torch.Tensor | None = None

    def report(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        labels = torch.arange(self.num_samples) % module.num_classes if module.num_classes else None
        self.last_samples = module.sample(self.num_samples, generator=torch.Generator().manual_seed(0), labels=labels)
        scores = coverage(self.last_samples, self.judge, labels)
        metrics = trainer.callback_metrics
        d_real, d_fake = (float(metrics.get(f"train/{name}", float("nan"))) for name in ("d_real", "d_fake"))
        print(
            f"{self.batches:>7} {time.monotonic() - self.start:>7.0f} {scores['classes']:>7} "
            f"{scores['largest_share']:>7.2f} {scores['confident']:>9.2f} {scores['pixel_std']:>9.3f} "
            f"{d_real:>6.2f} {d_fake:>8.2f} {scores['on_label']:>8.2f}",
            flush=True,
        )

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        print("batches seconds classes largest confident pixel_std   D(x)  D(G(z)) on_label")
        self.start = time.monotonic()
        self.report(trainer, module)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.report(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.batches % self.every:
            self.report(trainer, module)
        if self.grid:
            torchvision.utils.save_image(self.last_samples[:64], self.grid, nrow=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=200)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--grid", help="write the last 64 samples here (a PNG)")
    parser.add_argument("--experiment", default="stylegan2_mnist", help="another GAN experiment to compare with")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the experiment")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    cfg = compose_config([f"experiment={args.experiment}", *args.overrides], Path("outputs/coverage"))
    L.seed_everything(cfg.seed, verbose=False)
    data = instantiate(cfg.data)
    judge = classifier_feature_extractor(data, str(Path(cfg.paths.cache_dir) / "feature_classifiers"))
    module = instantiate(cfg.model)
    trainer = training_only_trainer(
        max_time={"seconds": args.seconds},
        max_epochs=-1,
        accelerator="cpu",
        callbacks=[CoverageReport(judge, args.every, args.samples, args.grid)],
    )
    trainer.fit(module, datamodule=data)


if __name__ == "__main__":
    main()
