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


def test_measure_leaves_a_training_models_modes_and_batchnorm_statistics_as_they_were(tiny_model):
    from modules.evaluation import measure

    tiny_model.train()
    before = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    data = list(zip(torch.rand(6, 3, 16, 16, generator=generator), torch.randint(0, 10, (6,), generator=generator)))
    result = measure(tiny_model, data, ("clean", "linf"), "cpu", attack="apgd", steps=2, batch_size=4)
    assert set(result.accuracy) == {"clean_acc", "Linf_acc"} and len(result.outcomes["linf"]) == 6
    assert all(module.training for module in tiny_model.modules())
    assert all(torch.equal(before[key], value) for key, value in tiny_model.state_dict().items())
