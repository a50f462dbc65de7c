"""Evaluation: the measurements (a registry), the loop over a dataset's batches (dealt out to the ranks), figures;
`measure`, the same for a model and data of one's own."""

from modules.evaluation.loop import evaluate, gather, per_example
from modules.evaluation.measure import Measured, measure
from modules.evaluation.measurements import MEASUREMENTS, EvaluationSettings, Measurement, build_measurements

__all__ = [
    "MEASUREMENTS",
    "Measurement",
    "EvaluationSettings",
    "build_measurements",
    "evaluate",
    "gather",
    "per_example",
    "measure",
    "Measured",
]
