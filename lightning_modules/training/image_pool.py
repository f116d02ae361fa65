"""History of generated images for the discriminator update (Shrivastava et al. 2017).

CycleGAN (Zhu et al. 2017, sec. 4) updates each discriminator on a buffer of the 50 most recent
fakes rather than only the newest ones, which damps oscillation between the two players.
"""

import torch
from torch import Tensor


class ImagePool:
    """Buffer of up to `size` past fakes; once full, each query image is swapped in with p=0.5.

    For every image in a query batch: while the pool is filling, the image is stored and returned
    as is; once full, with probability 0.5 a uniformly chosen stored image is returned and the new
    one takes its place, otherwise the new image is returned and the pool is unchanged.
    `size=0` disables the pool. The pool lives in one process: under DDP each rank keeps its own.
    """

    SWAP_PROBABILITY = 0.5

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.generator = generator
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """Return a batch of the same shape mixing `images` (detached) with stored past fakes."""
        images = images.detach()
        if self.size == 0:
            return images
        return torch.stack([self._exchange(image) for image in images])

    def _exchange(self, image: Tensor) -> Tensor:
        if len(self.images) < self.size:
            self.images.append(image.clone())
            return image
        if torch.rand((), generator=self.generator).item() < self.SWAP_PROBABILITY:
            slot = int(torch.randint(self.size, (), generator=self.generator).item())
            stored = self.images[slot]
            self.images[slot] = image.clone()
            return stored.to(image.device)
        return image
