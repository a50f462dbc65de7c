"""Random number generator states in checkpoints, so that a resumed run is the same run."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn


def collect_states() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and (when initialised) CUDA generator states, as
    tensors and plain numbers (a checkpoint must load with `torch.load(weights_only=True)`)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RandomState(Callback):
    """Saves every rank's generator states in each checkpoint (`rng_states`, one entry per rank)
    and restores this rank's when a run resumes.

    The train order and augmentation do not draw from these generators (`datamodules.sampling`);
    what does (dropout, random attack starts, anything in user code) then continues exactly where
    the checkpoint left it. Checkpoints are written on every rank at once, so the states are
    gathered there.
    """

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        states = collect_states()
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            every: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(every, states)
            checkpoint["rng_states"] = every
        else:
            checkpoint["rng_states"] = [states]

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if not states or trainer.state.fn != TrainerFn.FITTING:
            return
        if len(states) != trainer.world_size:
            rank_zero_warn(
                f"the checkpoint holds the random states of {len(states)} process(es), this run has "
                f"{trainer.world_size}: they are not restored, so the resumed run draws other random numbers"
            )
            return
        restore_states(states[trainer.global_rank])
