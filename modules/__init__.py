"""Models, losses, protocols, attacks and evaluation for robust fine-tuning."""

from __future__ import annotations

from typing import Any

__all__ = ["RobustFineTuneModule"]


def __getattr__(name: str) -> Any:
    # Lazy, so that light users (the report, the backbone table) do not import torch and Lightning.
    if name == "RobustFineTuneModule":
        from modules.robust_finetune import RobustFineTuneModule

        return RobustFineTuneModule
    raise AttributeError(f"module 'modules' has no attribute {name!r}")
