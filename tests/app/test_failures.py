"""Failures are recorded, not lost: a non-finite loss, a bad checkpoint."""

from __future__ import annotations

import re

import pytest
import torch
from app_runs import results, short_fit, the_run, weights

from app.__main__ import main


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err[-5:]
    assert not any("Traceback" in line for line in err)
    return err[-1]


def test_a_non_finite_loss_stops_the_run_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    # linear probing for one epoch, then the backbone trains with an absurd learning rate: NaN in epoch 1
    code = main(
        short_fit(tmp_path, "--model.protocol", "lp_ft", "--model.lp_epochs", "1", "--model.lr_backbone", "1e30")
    )
    assert code == 1
    error = one_line_error(capsys)
    assert re.fullmatch(
        r"error: non-finite training loss \((nan|inf|-inf)\) at epoch 1, step \d+: the run stopped; "
        r"last good checkpoint: .*version_0/checkpoints/last\.ckpt",
        error,
    ), error
    run = the_run(tmp_path)
    record = results(run)
    assert record["status"] == "failed" and "non-finite training loss" in record["error"]
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0  # nothing saved after the NaN
    assert all(torch.isfinite(value).all() for value in weights(last).values())


@pytest.fixture
def checkpoints(uninterrupted, tmp_path):
    """A truncated copy of a real checkpoint, a foreign file (a timm state dict) and a weights-only copy."""
    real = uninterrupted / "checkpoints" / "last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    foreign = tmp_path / "foreign.ckpt"
    torch.save(weights(real), foreign)
    checkpoint = torch.load(real, map_location="cpu", weights_only=True)
    weights_only = tmp_path / "weights_only.ckpt"
    torch.save(
        {key: checkpoint[key] for key in ("state_dict", "hyper_parameters", "epoch", "global_step")}, weights_only
    )
    return {"truncated": truncated, "foreign": foreign, "weights_only": weights_only}


@pytest.mark.parametrize(
    "subcommand, kind, message",
    [
        ("fit", "truncated", "cannot be read (truncated or not a PyTorch checkpoint): "),
        ("test", "truncated", "cannot be read (truncated or not a PyTorch checkpoint): "),
        ("fit", "foreign", "was not written by `python -m app fit`"),
        ("fit", "weights_only", "holds weights only, not the training state: it can be tested"),
    ],
)
def test_a_bad_checkpoint_is_one_line_before_any_work(checkpoints, tmp_path, capsys, subcommand, kind, message):
    args = short_fit(tmp_path / "runs", "--ckpt_path", str(checkpoints[kind]))
    args[0] = subcommand
    assert main(args) == 2
    error = one_line_error(capsys)
    assert f"checkpoint {checkpoints[kind]} " in error and message in error, error
    assert not (tmp_path / "runs").exists()
