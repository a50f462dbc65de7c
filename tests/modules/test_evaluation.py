"""The shared measurement loop: results keyed by dataset index, progress on long work."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from modules.evaluation import EvaluationSettings, build_measurements, per_example


def test_per_example_keys_results_by_dataset_index_and_reports_progress(tiny_model):
    images = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    dataset = TensorDataset(images, torch.arange(10) % 10)
    measurements = build_measurements(["clean"], tiny_model, EvaluationSettings(num_examples=10))
    lines: list[str] = []
    results, seconds = per_example(
        tiny_model,
        dataset,
        [1, 3, 5, 7, 9],
        measurements,
        torch.device("cpu"),
        batch_size=2,
        progress=lines.append,
        progress_every=0.0,
    )
    assert sorted(results["clean"]) == [1, 3, 5, 7, 9]
    assert seconds["clean"] >= 0
    assert lines[-1].startswith("robustness measurements: 5/5 images done (clean ")
    assert [line.split(":")[1].split("/")[0].strip() for line in lines] == ["2", "4", "5"]
