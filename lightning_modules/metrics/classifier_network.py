"""A small CNN classifier whose penultimate layer serves as FID features where Inception is unavailable."""

from torch import Tensor, nn


class SmallClassifier(nn.Module):
    """Two conv-pool blocks and a feature layer before a linear head; inputs in [0, 1]."""

    def __init__(
        self,
        channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        width: int = 32,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        settings = dict(
            channels=channels,
            num_classes=num_classes,
            image_size=image_size,
            width=width,
            feature_dim=feature_dim,
        )
        for name, value in settings.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (image_size // 4) ** 2, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def features(self, images: Tensor) -> Tensor:
        return self.trunk(images * 2 - 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))
