"""Run a network in evaluation mode for a moment and give it back in the mode it was in."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluation_mode(network: nn.Module) -> Iterator[nn.Module]:
    """`network.eval()` inside the block; its previous training/eval mode is restored on exit.

    Sampling and scoring use it so they never update batch-norm statistics or initialise ActNorm,
    and training resumes in training mode even when the block raised.
    """
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)
