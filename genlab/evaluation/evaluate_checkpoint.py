"""`python evaluate.py ckpt_path=...`: rebuild a run from its checkpoint, measure it, write JSON and grids."""

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torchvision.utils import make_grid, save_image

from foundation.atomic_files import write_atomically
from genlab.checkpoints import LOGGER_VERSIONS_KEY, build_module, read_checkpoint
from genlab.evaluation.measure import (
    EvaluationSettingError,
    EvaluationSettings,
    generated_metrics,
    likelihood_metrics,
    metric_groups,
    translation_metrics,
)
from genlab.loggers import finish_loggers, git_commit
from lightning_modules.callbacks import image_grids
from lightning_modules.callbacks.image_grids import TRANSLATION_CAPTION, sample_grid, sample_grid_caption
from lightning_modules.interface import ConfigurableSampler, ExtraGrids, TemperatureSampler, Translator
from lightning_modules.metrics.feature_extractors import (
    FeatureExtractor,
    classifier_feature_extractor,
    inception_feature_extractor,
)

log = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """What one read of a checkpoint gives: the module on its device, the training config (with
    `checkpoint_overrides`), its datamodule, and the run ids of its loggers."""

    module: L.LightningModule
    config: DictConfig
    datamodule: L.LightningDataModule
    logger_versions: dict[str, str]


def load_run(cfg: DictConfig) -> LoadedRun:
    checkpoint = read_checkpoint(cfg.ckpt_path)
    module, train_cfg = build_module(checkpoint, cfg.ckpt_path, cfg.get("checkpoint_overrides"))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    configure_sampling(module, cfg)
    datamodule = instantiate(train_cfg.data)
    datamodule.prepare_data()  # a missing dataset fails here, naming its folder
    return LoadedRun(module.to(device), train_cfg, datamodule, checkpoint.get(LOGGER_VERSIONS_KEY, {}))


SAMPLING_KEYS = ("sampler", "steps", "guidance", "eta")


def configure_sampling(module: L.LightningModule, cfg: DictConfig) -> None:
    """`sampler=ddim steps=50 guidance=2.0 eta=0`: how a ConfigurableSampler (diffusion, flow matching)
    samples for the grid and FID, checked before anything is drawn; other families have nothing to choose."""
    chosen = {key: cfg.get(key) for key in SAMPLING_KEYS if cfg.get(key) is not None}
    if not chosen:
        return
    if not isinstance(module, ConfigurableSampler):
        settings = " ".join(f"{key}={value}" for key, value in chosen.items())
        raise EvaluationSettingError(
            f"{settings}: sampler settings apply to diffusion and flow-matching checkpoints, not to "
            f"{type(module).__name__}; drop them."
        )
    try:
        module.configure_sampling(**chosen)
    except ValueError as error:
        raise EvaluationSettingError(str(error)) from error


def feature_extractors(
    cfg: DictConfig, module: L.LightningModule, datamodule: L.LightningDataModule
) -> tuple[FeatureExtractor, FeatureExtractor | None]:
    """(extractor for FID/IS/KID and precision/recall, the dataset's classifier for mode coverage or None)."""
    if cfg.features not in ("classifier", "inception"):
        raise EvaluationSettingError(f"features must be 'classifier' or 'inception', got {cfg.features!r}")
    # Inception first: missing weights fail at once, before a classifier is trained.
    inception = inception_feature_extractor(cfg.inception_weights) if cfg.features == "inception" else None
    labelled = getattr(datamodule, "num_classes", None) is not None and not isinstance(module, Translator)
    classifier_cache = str(Path(cfg.cache_dir) / "feature_classifiers")
    classifier = classifier_feature_extractor(datamodule, classifier_cache) if labelled else None
    extractor = inception or classifier_features(cfg, module, classifier)
    for network in (extractor, classifier):
        if network is not None:
            network.features.to(module.device)
            network.logits.to(module.device)
    return extractor, classifier


def classifier_features(
    cfg: DictConfig, module: L.LightningModule, classifier: FeatureExtractor | None
) -> FeatureExtractor:
    """features=classifier: the dataset classifier, or for a translator the one its own config names."""
    if isinstance(module, Translator):
        if module.feature_extractor is None:
            raise EvaluationSettingError(
                f"{cfg.ckpt_path}: this translator was trained with model.feature_extractor=null, so there is no "
                "classifier for its domains; evaluate it with features=inception."
            )
        return module.feature_extractor
    if classifier is None:
        raise EvaluationSettingError(
            f"features=classifier needs a labelled dataset to train the classifier on, and {cfg.ckpt_path} was "
            "trained on data without classes; evaluate it with features=inception."
        )
    return classifier


def measure(cfg: DictConfig, settings: EvaluationSettings, run: LoadedRun) -> dict[str, Any]:
    """Every metric the checkpoint's capabilities allow (see `lightning_modules.interface`)."""
    module, train_cfg, datamodule = run.module, run.config, run.datamodule
    groups = metric_groups(module)
    extractor, classifier = feature_extractors(cfg, module, datamodule)
    metrics: dict[str, Any] = {}
    if "translations" in groups:
        metrics = translation_metrics(module, datamodule, extractor, settings, cfg.cache_dir)
    if "samples" in groups:
        metrics = generated_metrics(module, datamodule, extractor, classifier, settings, cfg.cache_dir)
    if "test_pass" in groups:
        metrics["test_likelihood"] = likelihood_metrics(module, datamodule, settings, str(output_path(cfg, "").parent))
    write_grid(module, datamodule, cfg.grid_samples, output_path(cfg, "_samples.png"), list(cfg.temperatures))
    return {
        "checkpoint": str(cfg.ckpt_path),
        "model": train_cfg.model._target_,
        "data": train_cfg.data.get("name"),
        "features": extractor.name,
        "settings": vars(settings),
        "metrics": metrics,
        "git_commit": git_commit(),
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Measure the checkpoint, write `<checkpoint stem>_evaluation.json` beside it and log when asked."""
    settings = EvaluationSettings(**OmegaConf.to_container(cfg.evaluate, resolve=True))
    settings.check_sample_count()
    check_outputs(cfg)
    started = time.perf_counter()
    run = load_run(cfg)
    report = measure(cfg, settings, run)
    report["seconds"] = round(time.perf_counter() - started, 2)
    path = output_path(cfg, "_evaluation.json")
    write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())  # a killed run leaves no half JSON
    Console().print(metrics_table(report["metrics"], title=f"{cfg.ckpt_path} ({report['seconds']} s)"))
    log.info("Evaluation written to %s", path)
    if cfg.log_to_run:
        images = {"evaluate/samples": (output_path(cfg, "_samples.png"), grid_caption(run.module, cfg))}
        shares = report["metrics"].get("mode_coverage", {}).get("class_histogram")
        if shares is not None:
            histogram = write_class_histogram(shares, settings.num_samples, output_path(cfg, "_class_histogram.png"))
            images["evaluate/class_histogram"] = (histogram, HISTOGRAM_CAPTION)
        log_to_run(run, report["metrics"], images)
    return report


def check_outputs(cfg: DictConfig) -> None:
    """Fail before measuring anything when the grid size is not a number or the results cannot be written."""
    count = cfg.grid_samples
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise EvaluationSettingError(f"grid_samples={count} must be a positive whole number (make sample N=64 sets it)")
    if not cfg.get("output_dir") and not Path(cfg.ckpt_path).parent.is_dir():
        return  # no checkpoint can be there: reading it fails next, naming it (and no folder is made)
    folder = output_path(cfg, "").parent
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise EvaluationSettingError(
            f"Cannot write the results to {folder} ({error.strerror}); write them elsewhere with "
            "output_dir=<folder> (make evaluate CKPT=... ARGS='output_dir=<folder>')"
        ) from error


def output_path(cfg: DictConfig, suffix: str) -> Path:
    """`<folder>/<checkpoint stem><suffix>`: outputs go next to the checkpoint unless `output_dir` is set."""
    checkpoint = Path(cfg.ckpt_path)
    folder = Path(cfg.output_dir) if cfg.get("output_dir") else checkpoint.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EvaluationSettingError(
            f"Cannot create {folder} ({error.strerror}); write the results elsewhere with output_dir=<folder>"
        ) from error
    return folder / f"{checkpoint.stem}{suffix}"


# --- sample grids ---


def write_samples(cfg: DictConfig) -> Path:
    """`make sample`: only the grid of `num_samples` images."""
    check_outputs(cfg)
    run = load_run(cfg)
    path = output_path(cfg, "_samples.png")
    write_grid(run.module, run.datamodule, cfg.grid_samples, path, list(cfg.temperatures))
    log.info("Samples written to %s", path)
    if isinstance(run.module, ExtraGrids):
        write_extra_grids(run.module, cfg)
    return path


def write_extra_grids(module: ExtraGrids, cfg: DictConfig) -> None:
    """The family's own pictures (StyleGAN2: truncation, style mixing, interpolation), one PNG each."""
    side = min(8, round(cfg.grid_samples**0.5))
    for name, grid in module.extra_grids(side).items():
        save_image(grid, output_path(cfg, f"_{name}.png"))
        log.info("Written: %s", output_path(cfg, f"_{name}.png"))


def write_grid(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    count: int,
    path: Path,
    temperatures: list[float],
) -> None:
    if count < 1:
        raise EvaluationSettingError(f"grid_samples (make sample N=) must be positive, got {count}")
    save_image(family_grid(module, datamodule, count, temperatures), path)


def family_grid(
    module: L.LightningModule, datamodule: L.LightningDataModule, count: int, temperatures: list[float]
) -> Tensor:
    """Conditional samplers: one row per class; temperature samplers: one row per temperature;
    translators: translation rows."""
    with torch.no_grad():
        if isinstance(module, Translator):
            return translation_grid(module, datamodule, count)
        if isinstance(module, TemperatureSampler):
            per_row = max(1, count // len(temperatures))
            generator = torch.Generator().manual_seed(0)
            rows = [module.sample(per_row, generator=generator, temperature=t) for t in temperatures]
            return make_grid(torch.cat(rows).cpu(), nrow=per_row)
        return sample_grid(module, count, seed=0).cpu()


def grid_caption(module: L.LightningModule, cfg: DictConfig) -> str:
    """What `family_grid` drew, row by row."""
    if isinstance(module, Translator):
        return TRANSLATION_CAPTION
    if isinstance(module, TemperatureSampler):
        return "one row per sampling temperature: " + ", ".join(f"{t:g}" for t in cfg.temperatures)
    return sample_grid_caption(module, seed=0)


def translation_grid(module: Translator, datamodule: L.LightningDataModule, count: int) -> Tensor:
    """Rows: real A, A->B, A->B->A, real B, B->A, B->A->B for the first test pairs."""
    datamodule.setup("fit")
    return image_grids.translation_grid(module, datamodule.val_set, max(1, count // 6))


# --- logging to the training run ---


def flat_scalars(metrics: dict[str, Any], prefix: str = "evaluate") -> dict[str, float]:
    """Nested metrics as `evaluate/a/b` scalars; lists (class histograms) stay in the JSON only."""
    flat: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            flat |= flat_scalars(value, f"{prefix}/{name}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}/{name}"] = float(value)
    return flat


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """The scalar metrics as a two-column table (class histograms stay in the JSON)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in flat_scalars(metrics).items():
        table.add_row(name.removeprefix("evaluate/"), f"{value:.4g}")
    return table


HISTOGRAM_CAPTION = "share of the samples the dataset classifier puts in each class; dashed: uniform"


def write_class_histogram(shares: list[float], num_samples: int, path: Path) -> Path:
    """A bar chart of the predicted-class shares (mode coverage) as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3))
    axes.bar(range(len(shares)), shares, color="tab:blue")
    axes.axhline(1 / len(shares), color="0.3", linestyle="--", linewidth=1)
    axes.set(xlabel="predicted class", ylabel="share of samples", title=f"classes of {num_samples} samples")
    axes.set_xticks(range(len(shares)))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def png_pixels(path: Path) -> np.ndarray:
    """A PNG's pixels as (H, W, 3) uint8, the form every logger gets (see `callbacks.grid_to_uint8`)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def log_to_run(run: LoadedRun, metrics: dict[str, Any], images: dict[str, tuple[Path, str]]) -> None:
    """Log the numbers and `images` (key -> (PNG, caption)) to the training run's own loggers.

    W&B resumes the same run id when it is known; images go to W&B only, as uint8 pixels.
    """
    from lightning.pytorch.loggers import WandbLogger

    loggers = []
    for name, logger_cfg in (run.config.get("logger") or {}).items():
        if logger_cfg is None:
            continue
        if name == "wandb" and "WandbLogger" in run.logger_versions:
            run_id = run.logger_versions["WandbLogger"]
            logger_cfg = OmegaConf.merge(logger_cfg, {"id": run_id, "resume": "allow"})
        loggers.append(instantiate(logger_cfg))
    try:
        for logger in loggers:
            logger.log_metrics(flat_scalars(metrics))
            if isinstance(logger, WandbLogger):
                for key, (path, caption) in images.items():
                    logger.log_image(key=key, images=[png_pixels(path)], caption=[caption])
            logger.save()
    finally:
        finish_loggers(loggers)
