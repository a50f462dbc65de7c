"""A run resumed in place from another working directory keeps its best-checkpoint record."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from modules.callbacks import RunCheckpoint


def test_the_best_record_follows_the_run_folder_under_another_name(tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "q" / "version_0" / "checkpoints"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    saved = {
        "monitor": "val/score",
        "best_model_score": torch.tensor(1.5),
        "best_model_path": "runs/q/version_0/checkpoints/best.ckpt",
        "current_score": torch.tensor(1.2),
        "dirpath": "runs/q/version_0/checkpoints",
        "best_k_models": {"runs/q/version_0/checkpoints/best.ckpt": torch.tensor(1.5)},
        "kth_best_model_path": "runs/q/version_0/checkpoints/best.ckpt",
        "kth_value": torch.tensor(1.5),
        "last_model_path": "runs/q/version_0/checkpoints/last.ckpt",
    }
    checkpointer = RunCheckpoint(monitor="val/score", mode="max", filename="best", save_last=True)
    checkpointer.dirpath = str(folder)  # absolute: the resumed session was started elsewhere
    trainer = SimpleNamespace(ckpt_path=str(folder / "last.ckpt"))
    checkpointer.on_load_checkpoint(trainer, None, {})
    checkpointer.load_state_dict(saved)
    assert checkpointer.best_model_score == 1.5  # Lightning alone would drop it and crown the next epoch
    assert checkpointer.best_model_path == str(folder / "best.ckpt")
    assert checkpointer.best_k_models == {str(folder / "best.ckpt"): torch.tensor(1.5)}
    assert checkpointer.last_model_path == str(folder / "last.ckpt")
