"""Classifier-free guidance (Ho & Salimans 2021): mix conditional and unconditional predictions."""

from collections.abc import Callable

from torch import Tensor

# network(x, time, labels) -> output; labels None means the unconditional ("no label") prediction.
ConditionalNetwork = Callable[[Tensor, Tensor, Tensor | None], Tensor]


def guided_prediction(unconditional: Tensor, conditional: Tensor, scale: float) -> Tensor:
    """unconditional + w (conditional - unconditional): w = 0 unconditional, w = 1 conditional, w > 1 guided."""
    return unconditional + scale * (conditional - unconditional)


def classifier_free_guidance(
    network: ConditionalNetwork, labels: Tensor | None, scale: float
) -> Callable[[Tensor, Tensor], Tensor]:
    """A (x, time) -> output callable that guides `network` towards `labels` with strength `scale`.

    Outputs of any parameterization (epsilon, x_0, v, velocity) combine the same way: each is
    affine in the others at fixed x_t, so guiding one guides them all. Scale 1 runs one pass.
    """

    def guided(x: Tensor, time: Tensor) -> Tensor:
        conditional = network(x, time, labels)
        if scale == 1 or labels is None:
            return conditional
        return guided_prediction(network(x, time, None), conditional, scale)

    return guided
