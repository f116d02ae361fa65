"""Argument checks shared by the networks and modules: one error message for a bad size."""


def check_positive(**values: float) -> None:
    """Raise ValueError naming the first argument that is not > 0, e.g. `check_positive(latent_dim=0)`."""
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
