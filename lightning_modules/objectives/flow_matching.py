"""Conditional flow matching (Lipman et al. 2023) on the straight path of rectified flow (Liu et al. 2023).

Time runs from t = 0 (noise) to t = 1 (data): x_t = t x_1 + (1 - (1 - sigma_min) t) x_0 with
x_0 ~ N(0, I) and x_1 an image in [-1, 1]; the network regresses the path's velocity
u_t = x_1 - (1 - sigma_min) x_0. sigma_min = 0 is rectified flow. Sampling and the ODE likelihood
are in samplers/.
"""

from torch import Tensor

from lightning_modules.objectives.diffusion import denoising_loss


def check_sigma_min(sigma_min: float) -> float:
    if not 0.0 <= sigma_min < 1.0:
        raise ValueError(f"sigma_min must be in [0, 1), got {sigma_min}")
    return sigma_min


def broadcast_time(time: Tensor, like: Tensor) -> Tensor:
    """(B,) times shaped (B, 1, ..., 1) against `like`, in its dtype."""
    return time.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def flow_matching_path(data: Tensor, noise: Tensor, time: Tensor, sigma_min: float = 0.0) -> Tensor:
    """x_t = t x_1 + (1 - (1 - sigma_min) t) x_0 (Lipman et al. 2023, eq. 22 with mu_t = t x_1)."""
    t = broadcast_time(time, data)
    return t * data + (1 - (1 - check_sigma_min(sigma_min)) * t) * noise


def flow_matching_velocity(data: Tensor, noise: Tensor, sigma_min: float = 0.0) -> Tensor:
    """u_t = x_1 - (1 - sigma_min) x_0, the conditional target velocity (Lipman et al. 2023, eq. 23)."""
    return data - (1 - check_sigma_min(sigma_min)) * noise


def flow_matching_loss(predicted_velocity: Tensor, target_velocity: Tensor) -> Tensor:
    """Mean over images of the mean squared velocity error per pixel, in float32."""
    return denoising_loss(predicted_velocity, target_velocity, predicted_velocity.new_ones(len(predicted_velocity)))
