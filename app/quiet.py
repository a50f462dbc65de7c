"""Lightning's messages that a user of this app cannot act on, kept off the terminal: a cloud-logger
advertisement, a deprecation inside Lightning's own code, and a note on a hook the model overrides
on purpose (channels-last batches)."""

from __future__ import annotations

import logging
import warnings

UNACTIONABLE_WARNINGS = (
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # lightning/pytorch/utilities/_pytree.py
    r"You have overridden `on_after_batch_transfer` in `LightningModule` but have passed in a `LightningDataModule`",
)


class _NoAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


_FILTER = _NoAdvertisement()


def quiet_lightning() -> None:
    """Install the filters (the warnings ones inside the caller's `warnings.catch_warnings()`)."""
    for message in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
