"""Training noise that survives a resume: a module-owned generator, seeded per rank, checkpointed."""

from typing import Any

import torch


class CheckpointedNoise:
    """Mixin for LightningModules that draw training noise from `self.noise_generator`.

    The generator is seeded with `hparams.seed + global_rank` (each DDP rank draws its own noise)
    and saved in checkpoints, so a resumed run draws exactly the noise an uninterrupted run would.
    """

    noise_generator: torch.Generator

    def setup(self, stage: str) -> None:
        self.noise_generator.manual_seed(self.hparams.seed + self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["noise_generator_state"] = self.noise_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "noise_generator_state" in checkpoint:
            self.noise_generator.set_state(checkpoint["noise_generator_state"])
        if self.global_rank > 0:  # the checkpoint holds rank 0's state; other ranks need their own
            self.noise_generator.manual_seed(self.hparams.seed + self.global_rank + 7919 * checkpoint["global_step"])
