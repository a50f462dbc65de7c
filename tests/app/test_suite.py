"""`python -m app bench --suite OUT`: its checks fail loudly, its figures feed the batch sizes and the
sweep's prices, and bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from app_runs import ROOT
from lightning import Callback

from app.__main__ import main
from app.bench.files import measured_batch, read_benches
from app.cli import run_cli
from modules.evaluation import measurements

H200 = ROOT / "benchmarks" / "results" / "suite-h200-2026-11-30.json"


def test_a_test_attack_that_sees_bf16_logits_fails_the_suite_by_name(tmp_path, monkeypatch, capsys):
    def rounding(device_type: str, precision: str):  # a regression: "32" no longer turns autocast off
        return lambda: torch.autocast(device_type=device_type, dtype=torch.bfloat16)

    monkeypatch.setattr(measurements, "autocast", rounding)
    assert main(["bench", "--suite", str(tmp_path / "s"), "--quick", "--device", "cpu", "--parts", "checks"]) == 1
    printed = capsys.readouterr().out
    assert printed.rstrip().splitlines()[-1].startswith("FAILED: test attacks in fp32 under bf16")
    result = json.loads((tmp_path / "s" / "suite.json").read_text())
    assert result["passed"] is False and result["failed"] == ["test attacks in fp32 under bf16"]
    check = next(c for c in result["checks"] if c["name"] == "test attacks in fp32 under bf16")
    assert check["status"] == "failed" and "torch.bfloat16" in check["detail"]
    assert "| test attacks in fp32 under bf16 | failed |" in (tmp_path / "s" / "suite.md").read_text()


def test_the_same_check_passes_on_the_code_as_it_is(tmp_path, capsys):
    assert main(["bench", "--suite", str(tmp_path / "s"), "--quick", "--device", "cpu", "--parts", "checks"]) == 0
    result = json.loads((tmp_path / "s" / "suite.json").read_text())
    statuses = {check["name"]: check["status"] for check in result["checks"]}
    assert statuses["test attacks in fp32 under bf16"] == "passed"
    if not torch.cuda.is_available():
        assert statuses["cuda tests"] == "skipped"
    assert capsys.readouterr().out.rstrip().endswith("s in all.")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (lambda tmp: ["--suite", str(tmp / "file")], "is a file: give a folder for suite.json and suite.md"),
        (lambda tmp: ["--suite", str(tmp / "s"), "--parts", "fit,gpu"], "--parts: unknown part 'gpu'; valid choices"),
    ],
)
def test_bad_suite_arguments_are_one_line(tmp_path, capsys, arguments, message):
    (tmp_path / "file").write_text("")
    assert main(["bench", *arguments(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_suite_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    assert main(["bench", "--suite", str(tmp_path / "s"), "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: --device 'cuda': no CUDA device is visible")
    assert not (tmp_path / "s").exists()


def test_the_committed_gpu_suite_prices_the_sweep_and_sizes_batches():
    benches = read_benches(H200)
    assert [bench["backbone"] for bench in benches] == ["convnext_tiny.fb_in1k", "vit_small_patch16_224.augreg_in1k"]
    convnext = benches[0]["max_batch"]
    assert measured_batch(benches, "convnext_tiny.fb_in1k", 224, "trades") == convnext
    assert measured_batch(benches, "convnext_tiny.fb_in1k", 224, "classic_at") == 2 * convnext
    assert measured_batch(benches, "convnext_tiny.fb_in1k", 64, "trades") is None  # measured at 224 only
    assert measured_batch(benches, "resnet50.a1_in1k", 224, "trades") is None


class BatchSize(Callback):
    def on_fit_start(self, trainer, pl_module) -> None:
        self.batch_size = trainer.datamodule.batch_size


@pytest.mark.parametrize("loss, expected", [("trades", 40), ("classic_at", 80)])
def test_a_null_batch_size_takes_the_benched_one(tmp_path, loss, expected):
    bench = json.loads(H200.read_text())
    bench["bench"] = [bench["bench"][0] | {"backbone": "test_resnet", "image_size": 16, "max_batch": 40}]
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(bench))
    seen = BatchSize()
    arguments = [
        *("fit", "--config", "configs/quickstart.yaml", "--model.loss", loss, "--data.image_size", "16"),
        *("--data.batch_size", "null", "--bench", str(path), "--trainer.fast_dev_run", "true"),
        *("--test_after_fit", "false", "--trainer.default_root_dir", str(tmp_path)),
    ]
    assert run_cli(arguments, callbacks=[seen]) == 0
    assert seen.batch_size == expected


def test_a_bench_file_that_is_neither_is_one_line(tmp_path):
    from modules.registry import ConfigError

    path = tmp_path / "other.json"
    path.write_text(json.dumps({"suite_version": 1, "bench": []}))
    with pytest.raises(ConfigError, match="a suite without bench figures"):
        read_benches(Path(path))
