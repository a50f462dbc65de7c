"""Robust fine-tuning, in wings: the model (`model/`), attacks (`attacks/`), evaluation
(`evaluation/`) and Lightning hooks (`callbacks/`), on shared plumbing (`registry`, `vocabulary`)
that the data package uses too."""

from __future__ import annotations

from typing import Any

__all__ = ["RobustFineTuneModule"]


def __getattr__(name: str) -> Any:
    # Lazy, so that light users (the report, the backbone table, the data package) import neither torch nor Lightning.
    if name == "RobustFineTuneModule":
        from modules.model.robust_finetune import RobustFineTuneModule

        return RobustFineTuneModule
    raise AttributeError(f"module 'modules' has no attribute {name!r}")
