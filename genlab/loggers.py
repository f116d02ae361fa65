"""Loggers that never prompt or hang: W&B goes offline by itself without credentials or network."""

from __future__ import annotations

import logging
import netrc
import os
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:  # Lightning is imported where a logger is built: `make sweep` checks W&B in a second
    from lightning.pytorch.loggers import Logger, WandbLogger

log = logging.getLogger(__name__)
DEFAULT_WANDB_HOST = "https://api.wandb.ai"
# Seconds an online start may take before the run goes offline (wandb's own default is 90, and a
# server that accepts connections but never answers held runs for about 110 s). WANDB_INIT_TIMEOUT wins.
WANDB_INIT_TIMEOUT = 20.0


def wandb_credentials_present(host: str) -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(urlparse(host).hostname or host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def host_reachable(host: str, timeout: float = 3.0) -> bool:
    parsed = urlparse(host)
    try:
        socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def wandb_mode() -> tuple[str, str]:
    """(mode, reason): WANDB_MODE when set, else online only with credentials and a reachable server."""
    if os.environ.get("WANDB_MODE"):
        # Lightning's WandbLogger(offline=True) writes wandb's old name for offline, "dryrun".
        mode = "offline" if os.environ["WANDB_MODE"] == "dryrun" else os.environ["WANDB_MODE"]
        return mode, f"WANDB_MODE={os.environ['WANDB_MODE']} is set"
    host = os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)
    if not wandb_credentials_present(host):
        return "offline", "no W&B credentials (run `wandb login` to log online)"
    if not host_reachable(host):
        return "offline", f"{host} is not reachable"
    return "online", "credentials found and server reachable"


def run_tags(tags: Sequence[str], sweep_id: str | None, commit: str | None) -> list[str]:
    """The config's tags (model, dataset) plus the git commit and the sweep, for filtering in dashboards."""
    extra = [f"commit:{commit[:8]}" if commit else "commit:unknown"]
    if sweep_id:
        extra.append(f"sweep:{sweep_id}")
    return [tag[:64] for tag in [*tags, *extra]]  # W&B rejects tags longer than 64 characters


def run_group(group: str | None, sweep_id: str | None) -> str | None:
    """Runs of one sweep form one group named by the sweep (a local sweep's start time, which also names
    its folder, or the W&B sweep id); others group by model."""
    return sweep_id or group


def wandb_logger(
    save_dir: str,
    tags: Sequence[str] = (),
    group: str | None = None,
    sweep_id: str | None = None,
    name: str | None = None,
    log_model: bool | str | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A `WandbLogger` in the mode `wandb_mode` picks; kwargs go to `wandb.init` (id, resume, project...).

    The run is named after its output folder (`save_dir`) unless `name` is given, so the dashboard, the
    disk and `make compare` call it the same. `log_model=None` uploads checkpoints only in a sweep.
    """
    from lightning.pytorch.loggers import WandbLogger

    mode, reason = wandb_mode()
    os.environ["WANDB_MODE"] = mode  # child DDP processes and wandb itself read the same decision
    log.info("W&B logging %s: %s", mode, reason)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    log_model = bool(sweep_id) if log_model is None else log_model
    # wandb's end-of-run footer repeats the `wandb sync` hint that finish_loggers prints (also when
    # WANDB_SILENT is set) and the metrics the progress bar showed: quiet keeps the hint once.
    kwargs.setdefault("settings", {"quiet": True})
    init_arguments = dict(
        save_dir=save_dir,
        name=name or Path(save_dir).resolve().name,
        log_model=log_model,
        tags=run_tags(tags, sweep_id, git_commit()),
        group=run_group(group, sweep_id),
        **kwargs,
    )
    if mode != "online":
        # mode= keeps the run offline: `offline` alone is not enough in a process whose wandb already started
        # online once (a sweep), and WandbLogger refuses log_model with offline=True. An offline run stores its
        # checkpoint artifacts for `wandb sync`.
        return WandbLogger(offline=mode == "offline" and not log_model, mode=mode, **init_arguments)
    return online_or_offline_logger(init_arguments)


def online_or_offline_logger(init_arguments: dict[str, Any]) -> WandbLogger:
    """Start the W&B run now, so a server that refuses the key or never answers sends the run
    offline with one line saying why, instead of failing or stalling it at its first log."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    if not os.environ.get("WANDB_INIT_TIMEOUT"):  # the variable, when set, is wandb's own setting
        init_arguments = {
            **init_arguments,
            "settings": {**init_arguments.get("settings", {}), "init_timeout": WANDB_INIT_TIMEOUT},
        }
    logger = WandbLogger(**init_arguments)
    try:
        logger.experiment  # noqa: B018 - starts the run (rank zero only)
        return logger
    except wandb.errors.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    os.environ["WANDB_MODE"] = "offline"
    log.warning("W&B could not start online (%s); logging offline instead, upload later with wandb sync", reason)
    return WandbLogger(offline=not init_arguments["log_model"], mode="offline", **init_arguments)


def finish_loggers(loggers: list[Logger], exit_code: int = 0) -> None:
    """Close W&B runs (so multirun jobs never merge), failed ones as failed, and say how to upload offline ones."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            import wandb

            run_dir = Path(logger.experiment.dir).parent
            offline = logger.experiment.settings.mode in ("offline", "dryrun")
            wandb.finish(exit_code=exit_code)
            if offline:
                print(f"W&B run saved offline. Upload it later with:  wandb sync {run_dir}")


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()
