"""Stop a run cleanly when training diverges."""

import torch


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; raised before any checkpoint can store the broken weights."""


def check_finite(name: str, value: torch.Tensor, step: int) -> None:
    """Raise `NonFiniteLossError` naming the loss, its value and the step if `value` is not finite."""
    if not torch.isfinite(value).all():
        raise NonFiniteLossError(
            f"Training stopped: {name} is {value.detach().float().cpu().tolist()} at step {step}. "
            "The last checkpoint written before this step is intact. Try a lower learning rate, "
            "gradient clipping, or precision=32."
        )
