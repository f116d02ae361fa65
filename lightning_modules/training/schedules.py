"""Learning-rate factors as pure functions of the epoch, for `torch.optim.lr_scheduler.LambdaLR`."""


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
