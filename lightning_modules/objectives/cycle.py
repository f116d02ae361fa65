"""CycleGAN's cycle-consistency and identity terms (Zhu et al. 2017) as pure functions."""

from torch import Tensor

# --- CycleGAN: cycle-consistency and identity terms (Zhu et al. 2017) ---


def cycle_consistency_loss(real: Tensor, reconstructed: Tensor) -> Tensor:
    """L1 cycle loss ||F(G(x)) - x||_1, mean over pixels and batch (Zhu et al. 2017, eq. 2).

    Unweighted: the module multiplies it by lambda (10 in the paper) for each direction.
    """
    return (reconstructed - real).abs().mean()


def identity_loss(real_target: Tensor, mapped_target: Tensor) -> Tensor:
    """L1 identity-mapping loss ||G(y) - y||_1 for y from G's target domain (Zhu et al. 2017, 5.2).

    Unweighted: the paper weighs it by 0.5 x the cycle weight (Taigman et al. 2017).
    """
    return (mapped_target - real_target).abs().mean()
