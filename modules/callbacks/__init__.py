"""Callbacks: epoch-end robustness, results.json, effective batch size, and what makes a run
survive (random states in checkpoints, a checkpoint on SIGTERM/SIGUSR1, a stop on a non-finite loss)."""

from modules.callbacks.batching import EffectiveBatchSize
from modules.callbacks.checkpoint import RunCheckpoint
from modules.callbacks.finite_loss import FiniteLoss, NonFiniteLossError
from modules.callbacks.interruption import Interruption
from modules.callbacks.random_state import RandomState
from modules.callbacks.results import ResultsWriter
from modules.callbacks.robustness import RobustnessCallback

__all__ = [
    "EffectiveBatchSize",
    "FiniteLoss",
    "Interruption",
    "NonFiniteLossError",
    "RandomState",
    "ResultsWriter",
    "RobustnessCallback",
    "RunCheckpoint",
]
