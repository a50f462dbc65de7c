"""`python -m app bench`: the figures a user reads, and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.__main__ import main

TINY = [
    "--backbone",
    "test_resnet",
    "--image-size",
    "32",
    "--batch-size",
    "8",
    "--repeats",
    "1",
    "--loader-images",
    "100",
    "--workers",
    "0",
    "--measure-images",
    "4",
    "--aa-steps",
    "3",
    "--square-queries",
    "10",
]


def test_json_has_the_ratios_and_rates_a_user_compares(capsys, tmp_path):
    assert main(["bench", *TINY, "--json", "--reference"]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed)
    assert 0.3 < result["attack_floor_ratio"] < 3  # APGD-10 costs about 10 forward+input-gradient passes
    assert 0 < result["mfu"] <= 1
    assert result["train_images_per_s"] > 0 and result["loader_images_per_s"] > 0
    steps = result["steps"]
    assert steps["seconds"]["trades"] > steps["seconds"]["clean"]  # the attack is most of a robust step
    assert steps["flops"]["attack"] > 9 * steps["flops"]["gradient"]  # 11 gradients, counted
    costs = result["measurements"]["seconds_per_image"]
    assert set(costs) == {"clean", "linf", "l2", "l1", "common"} and all(v >= 0 for v in costs.values())
    for norm in ("Linf", "L2"):  # against pyautoattack on the same model and images
        reference = result["measurements"]["reference"][norm]
        assert reference["ours_seconds"] > 0 and reference["reference_seconds"] > 0
        assert reference["ours_accuracy"] <= reference["reference_accuracy"] + 1 / 4
    # the sweep prices its backbone from this file
    (tmp_path / "bench.json").write_text(printed)
    quickstart = str(Path(__file__).parents[2] / "configs" / "sweep" / "quickstart.yaml")
    dry = [
        "sweep",
        "--config",
        quickstart,
        "--out",
        str(tmp_path / "out"),
        "--dry-run",
        "--bench",
        str(tmp_path / "bench.json"),
    ]
    assert main(dry) == 0
    assert f"priced from bench ({result['device']}, 32, 32px): test_resnet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attack", "fgsm2"], "error: unknown attack algorithm 'fgsm2'; valid choices: none, apgd"),
        (["--backbone", "resnet5O"], "error: unknown backbone 'resnet5O'"),
        (["--device", "tpu"], "error: --device 'tpu': expected cpu or cuda[:N]"),
        (["--batch-size", "100000000", "--image-size", "224"], "error: a batch of 100000000 does not fit on cpu"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, extra, message):
    assert main(["bench", *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and len(err.splitlines()) == 1, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_clear_line(capsys):
    assert main(["bench", *TINY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device 'cuda': no CUDA device is visible") and "use --device cpu" in err
