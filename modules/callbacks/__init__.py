"""Callbacks: epoch-end robustness, results.json, effective batch size."""

from modules.callbacks.batching import EffectiveBatchSize
from modules.callbacks.results import ResultsWriter
from modules.callbacks.robustness import RobustnessCallback

__all__ = ["EffectiveBatchSize", "ResultsWriter", "RobustnessCallback"]
