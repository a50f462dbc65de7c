import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from modules.callbacks.results import ResultsWriter
from modules.callbacks.robustness import RobustnessCallback
from modules.evaluation import EvaluationSettings, evaluate
from modules.evaluation.measurements import area, eps_grid
from modules.registry import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_results_json_has_every_field(tmp_path, model):
    from tests.measurements.conftest import make_data

    x, y = make_data(22)
    callback = RobustnessCallback(
        test_measurements=["clean", "linf", "l2", "l1", "common"],
        test_attack="apgd",
        test_steps=2,
        l2_eps=0.3,
        l1_eps=3.0,
        expected_robustness=True,
        grid_step=2 / 255,
    )
    callback.report["test"] = evaluate(
        model,
        list(zip(x, y)),
        list(range(22)),
        callback.test_measurements,
        callback.settings("test", 22, EvaluationSettings().precision, "32"),
        torch.device("cpu"),
        8,
    )
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    trainer = SimpleNamespace(
        callbacks=[callback],
        callback_metrics={},
        ckpt_path=str(ckpt),
        max_epochs=1,
        loggers=[],
        precision="32-true",
        datamodule=SimpleNamespace(dataset_name="synthetic"),
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
        world_size=1,
    )
    module = SimpleNamespace(
        hparams=SimpleNamespace(
            backbone="tiny", loss="trades", protocol="full", loss_settings={"trades": {"beta": 1.0}}, attack={}
        )
    )
    writer = ResultsWriter()
    writer.setup(trainer, module, "test")
    writer.on_test_end(trainer, module)
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    for key in (
        "clean_acc",
        "Linf_acc",
        "L2_acc",
        "L1_acc",
        "common_acc",
        "per_corruption",
        "attacks",
        "num_test_images",
        "seconds",
        "expected_robustness",
        "status",
    ):
        assert key in data, key
    assert data["num_test_images"] == 22 and data["status"] == "complete"
    assert data["cost"]["test"]["measurement_device_seconds"].keys() == data["seconds"].keys()
    assert set(data["seconds"]) == {"clean", "linf", "l2", "l1", "common", "expected_linf"}
    assert len(data["per_corruption"]) == 11
    assert data["attacks"]["linf"]["eps"] == pytest.approx(4 / 255)
    assert {data["attacks"][name]["precision"] for name in data["attacks"]} == {"32"}
    assert sum(data["broken_by"]["linf"].values()) == round(22 * (1 - data["Linf_acc"]))  # every lost example, once
    assert 0 <= data["expected_robustness"]["area"] <= 1


def test_expected_robustness_area():
    grid = eps_grid(4 / 255, 1 / 255)
    assert len(grid) == 5 and grid[0] == 0 and grid[-1] == pytest.approx(4 / 255)
    assert area(grid, [1.0] * 5) == pytest.approx(1.0)
    assert area(grid, [1.0, 0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.125)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"test_measurements": ["clean", "linf3"]}, "unknown measurement 'linf3'; valid choices"),
        ({"l1_eps": -1.0}, "l1_eps must be a number >= 0"),
        ({"linf_eps": "4/255"}, "linf_eps must be a number"),
        ({"test_attack": "pgdx"}, "unknown attack algorithm 'pgdx'; valid choices: none, apgd, apgd-t, l1-apgd, pgd"),
        ({"test_attack": "l1-apgd"}, "attack 'l1-apgd' does not support norm 'Linf'; valid norms for 'l1-apgd': L1"),
        ({"test_attack": "pgd"}, "attack 'pgd' does not support norm 'L1'; valid norms for 'pgd': Linf, L2"),
        ({"attack_precision": "fp16"}, "unknown robustness attack_precision 'fp16'; valid choices: 32, bf16"),
        (
            {"corruption_assignment": "each"},
            "unknown robustness corruption_assignment 'each'; valid choices: blocks, all",
        ),
        ({"severity": 0}, "severity"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RobustnessCallback(**kwargs)


def test_test_without_checkpoint_fails_before_any_work(tmp_path):
    config = ROOT / "configs" / "quickstart.yaml"
    for extra, message in (
        ([], "test needs a checkpoint: --ckpt_path PATH"),
        (["--ckpt_path", str(tmp_path / "missing.ckpt")], "does not exist"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "app", "test", "--config", str(config), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 2 and message in run.stderr, run.stderr[-500:]
