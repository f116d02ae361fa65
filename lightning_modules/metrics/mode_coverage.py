"""Mode coverage of a generator, judged by a classifier of the dataset's classes."""

import math

import torch
from torch import Tensor


def mode_coverage(predicted_classes: Tensor, num_classes: int, min_share: float = 0.25) -> dict[str, object]:
    """Classes covered and KL(predicted-class histogram || uniform), in nats.

    A class counts as covered when it receives at least `min_share` of its uniform share 1/C of the
    samples: a strict "at least one sample" would count the classifier's rare mistakes as modes.
    """
    if len(predicted_classes) == 0:
        raise ValueError("mode coverage needs at least one classified sample")
    counts = torch.bincount(predicted_classes.flatten().long().cpu(), minlength=num_classes).double()
    if len(counts) > num_classes:
        raise ValueError(f"predicted classes go up to {len(counts) - 1}, but num_classes={num_classes}")
    shares = counts / counts.sum()
    present = shares[shares > 0]
    return {
        "classes_covered": int((shares >= min_share / num_classes).sum()),
        "num_classes": num_classes,
        "kl_from_uniform_nats": float((present * (present * num_classes).log()).sum()),
        "max_kl_nats": math.log(num_classes),  # all samples in one class
        "class_histogram": shares.tolist(),
    }
