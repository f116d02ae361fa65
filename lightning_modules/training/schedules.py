"""Every schedule in genlab, as a small pure function of the step or epoch.

Learning-rate factors (for `torch.optim.lr_scheduler.LambdaLR`), the VAE's KL-weight warm-up and
the EMA decay warm-up. Modules call these; none keeps its own schedule formula.
"""


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """Multiplier of the base learning rate during 0-based `epoch`: 1 for `n_epochs`, then linear.

    CycleGAN (Zhu et al. 2017, sec. 7.1): "We keep the same learning rate for the first 100 epochs
    and linearly decay the rate to zero over the next 100 epochs." As in the reference code the
    factor falls by 1 / (n_epochs_decay + 1) per epoch from epoch `n_epochs` on, so the last
    training epoch runs at 1 / (n_epochs_decay + 1) and the factor is 0 once training is over.
    With LambdaLR stepped once per epoch, `epoch` is the number of completed epochs.
    """
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(f"n_epochs and n_epochs_decay must be >= 0, got {n_epochs} and {n_epochs_decay}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    epochs_into_decay = max(0, epoch + 1 - n_epochs)
    return max(0.0, 1.0 - epochs_into_decay / (n_epochs_decay + 1))


def linear_warmup_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the base learning rate at 0-based `step`: (step + 1) / warmup_steps, then 1.

    Glow (Kingma & Dhariwal 2018) warms the rate up linearly against early divergence; the first
    step already runs at lr / warmup_steps, never at zero.
    """
    if warmup_steps <= 0:
        raise ValueError(f"warmup_steps must be positive, got {warmup_steps}")
    return min(1.0, (step + 1) / warmup_steps)


def beta_warmup(step: int, beta: float, warmup_steps: int) -> float:
    """beta * min(1, step / warmup_steps), the linear KL warm-up of Bowman et al. 2016."""
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
    if warmup_steps == 0:
        return beta
    return beta * min(1.0, max(step, 0) / warmup_steps)


def ema_warmup_decay(decay: float, num_updates: int) -> float:
    """EMA decay after `num_updates` updates: min(decay, (1 + n) / (10 + n)).

    As in TensorFlow's ExponentialMovingAverage with num_updates: short runs' averages follow the
    network instead of staying near its initialisation.
    """
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))
