"""Warnings and notices known to be harmless in genlab runs, silenced where runs start.

`train` and `evaluate` call `silence_known_warnings()` first, so a user's terminal shows only
what they can act on. Each entry says why it is harmless; anything else still shows.
"""

import logging
import warnings

# (message regex, category, why it is harmless)
HARMLESS_WARNINGS = (
    (
        r".*isinstance\(treespec, LeafSpec\).*",
        Warning,
        "Lightning's own pytree helper uses an API recent PyTorch deprecates; nothing in genlab calls it.",
    ),
    (
        r"Metric `InceptionScore` will save all extracted features",
        UserWarning,
        "IS keeps the logits of metrics.num_samples images (2,000 by default): a few MB, bounded by that setting.",
    ),
)
# Lightning logs this advertisement on every Trainer; it is not about the run.
HARMLESS_NOTICES = ("💡 Tip: For seamless cloud logging",)


class DropNotices(logging.Filter):
    """Drops log records whose message starts with one of `prefixes`."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def silence_known_warnings() -> None:
    """Ignore `HARMLESS_WARNINGS` and drop `HARMLESS_NOTICES` from Lightning's rank-zero log."""
    for message, category, _why in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    rank_zero_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(existing, DropNotices) for existing in rank_zero_log.filters):
        rank_zero_log.addFilter(DropNotices(HARMLESS_NOTICES))
