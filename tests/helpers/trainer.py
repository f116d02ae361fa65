"""A Lightning Trainer for unit tests: CPU, no logger, checkpoints, progress bar or sanity check."""

import lightning as L


def quiet_trainer(**kwargs) -> L.Trainer:
    """A `L.Trainer` with test defaults; `kwargs` add to or override them."""
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**(defaults | kwargs))
