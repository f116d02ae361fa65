"""The AUROC of unbounded scores, such as anomaly scores in nats (anomaly detection)."""

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc


def auroc_of_scores(scores: Tensor, positives: Tensor) -> Tensor:
    """AUROC of unbounded scores (higher = positive), such as anomaly scores in nats.

    torchmetrics' binary AUROC reads predictions outside [0, 1] as logits and applies a sigmoid,
    which saturates at scores like 100 nats and silently returns 0.5. AUROC depends only on the
    order of the scores, so they are min-max scaled to [0, 1] in float64 first (order and ties kept).
    """
    scores = scores.double()
    spread = (scores.max() - scores.min()).clamp_min(torch.finfo(torch.float64).tiny)
    return binary_auroc((scores - scores.min()) / spread, positives.long())
