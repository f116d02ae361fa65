"""Dotted paths of genlab's flat layout (before issue 15) mapped to where those classes live now.

A checkpoint stores its run's resolved config, whose `_target_` values name the module of each class
it built: `lightning_modules.gan.GAN`, `lightning_modules.losses.adversarial_loss`, ... Those modules
moved into layered packages; `current_path` rewrites an old path to today's, and `with_current_paths`
applies it to a whole stored config where a checkpoint is read (evaluation and resume), so a run
trained before the move still evaluates and resumes. No module is kept at its old path.
"""

from typing import Any

# Whole modules that moved: old module -> new module.
MOVED_MODULES = {
    "lightning_modules.atomic_files": "genlab.atomic_files",
    "lightning_modules.best_metric": "lightning_modules.callbacks.best_metric",
    "lightning_modules.caches": "lightning_modules.metrics.caches",
    "lightning_modules.callbacks": "lightning_modules.callbacks.image_grids",
    "lightning_modules.checkpoints": "genlab.checkpoints",
    "lightning_modules.classifier": "lightning_modules.metrics.feature_classifier",
    "lightning_modules.compare": "genlab.compare",
    "lightning_modules.config_tree": "genlab.config_tree",
    "lightning_modules.ema": "lightning_modules.training.ema",
    "lightning_modules.evaluate_checkpoint": "genlab.evaluation.evaluate_checkpoint",
    "lightning_modules.evaluation": "genlab.evaluation.measure",
    "lightning_modules.feature_metrics": "lightning_modules.metrics.fid_kid_is",
    "lightning_modules.gradient_norms": "lightning_modules.callbacks.gradient_norm_monitor",
    "lightning_modules.guards": "lightning_modules.training.guards",
    "lightning_modules.image_pool": "lightning_modules.training.image_pool",
    "lightning_modules.interruption": "lightning_modules.callbacks.interruption",
    "lightning_modules.known_warnings": "genlab.known_warnings",
    "lightning_modules.likelihoods": "lightning_modules.objectives.likelihoods",
    "lightning_modules.loggers": "genlab.loggers",
    "lightning_modules.mode_coverage": "lightning_modules.metrics.mode_coverage",
    "lightning_modules.networks.classifier": "lightning_modules.metrics.classifier_network",
    "lightning_modules.noise": "lightning_modules.training.noise",
    "lightning_modules.optimizers": "lightning_modules.training.optimizer_factory",
    "lightning_modules.precision_recall": "lightning_modules.metrics.precision_recall",
    "lightning_modules.progress": "lightning_modules.callbacks.progress_bars",
    "lightning_modules.reference_features": "lightning_modules.metrics.reference_features",
    "lightning_modules.resume": "genlab.resume",
    "lightning_modules.run": "genlab.run",
    "lightning_modules.run_folders": "genlab.run_folders",
    "lightning_modules.schedules": "lightning_modules.training.schedules",
    "lightning_modules.settings": "genlab.settings",
    "lightning_modules.sweeps": "genlab.sweeps",
    "lightning_modules.trainer_settings": "genlab.trainer_settings",
    "lightning_modules.vae_callbacks": "lightning_modules.callbacks.reconstruction_grids",
    "datamodules.sampling": "datamodules.base",
}

# Modules split in several: old module -> {name: new module}, and the new module of any other name.
ADVERSARIAL = "lightning_modules.objectives.adversarial"
ELBO = "lightning_modules.objectives.elbo"
SPLIT_MODULES: dict[str, tuple[dict[str, str], str]] = {
    "lightning_modules.losses": (
        {
            "bits_per_dim": "lightning_modules.objectives.bits_per_dim",
            "mean_bits_per_dim": "lightning_modules.objectives.bits_per_dim",
            "nats_to_bits_per_dim": "lightning_modules.objectives.bits_per_dim",
            "cycle_consistency_loss": "lightning_modules.objectives.cycle",
            "identity_loss": "lightning_modules.objectives.cycle",
            **{
                name: ELBO
                for name in (
                    "LOG_2PI",
                    "reparameterize",
                    "gaussian_kl_to_standard_normal",
                    "diagonal_gaussian_log_prob",
                    "standard_normal_log_prob",
                    "negative_elbo",
                    "beta_vae_objective",
                    "beta_warmup",
                    "importance_log_weights",
                    "importance_weighted_log_likelihood",
                )
            },
        },
        ADVERSARIAL,
    ),
    "lightning_modules.metrics": (
        {
            "GenerativeMetrics": "lightning_modules.callbacks.generative_metrics",
            "real_images": "lightning_modules.callbacks.generative_metrics",
            "stage_loaders": "lightning_modules.callbacks.generative_metrics",
            "seeded_global_rng": "lightning_modules.callbacks.generative_metrics",
            "auroc_of_scores": "lightning_modules.metrics.auroc",
        },
        "lightning_modules.metrics.feature_extractors",
    ),
}


def current_module(old_module: str, name: str = "") -> str | None:
    """The module that now holds `name` of `old_module`, or None when `old_module` did not move."""
    if old_module in SPLIT_MODULES:
        by_name, default = SPLIT_MODULES[old_module]
        return by_name.get(name, default)
    return MOVED_MODULES.get(old_module)


def current_modules() -> set[str]:
    """Every module an old path maps to."""
    split = {module for by_name, default in SPLIT_MODULES.values() for module in (*by_name.values(), default)}
    return set(MOVED_MODULES.values()) | split


def current_path(dotted: str) -> str:
    """`dotted` (a module, or a module and the name of something in it) at today's location.

    A path that is already current is returned as it is (`lightning_modules.callbacks` was a module
    and is now the package holding `lightning_modules.callbacks.image_grids`).
    """
    parts = dotted.split(".")
    for length in range(len(parts), 0, -1):
        module, rest = ".".join(parts[:length]), parts[length:]
        if rest and f"{module}.{rest[0]}" in CURRENT_MODULES:
            return dotted
        new = current_module(module, rest[0] if rest else "")
        if new is not None:
            return ".".join([new, *rest])
    return dotted


CURRENT_MODULES = current_modules()


def with_current_paths(node: Any) -> Any:
    """A copy of a stored config (plain dicts and lists) with every `_target_` at today's location."""
    if isinstance(node, dict):
        return {
            key: current_path(value) if key == "_target_" and isinstance(value, str) else with_current_paths(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [with_current_paths(value) for value in node]
    return node
