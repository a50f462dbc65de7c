"""Checkpoints carry the random generator states; a resumed run draws the same numbers."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace

import numpy as np
import torch

from modules.callbacks import RandomState


def draws() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_states_saved_in_a_checkpoint_are_restored_on_resume():
    trainer = SimpleNamespace(world_size=1, global_rank=0, state=SimpleNamespace(fn="fit"))
    checkpoint: dict = {}
    RandomState().on_save_checkpoint(trainer, None, checkpoint)
    expected = draws()
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # as Lightning's CLI reads a checkpoint
    draws()  # the generators move on (a new process would start elsewhere)
    RandomState().on_load_checkpoint(trainer, None, loaded)
    assert draws() == expected


def test_states_are_not_restored_into_another_number_of_processes(recwarn):
    trainer = SimpleNamespace(world_size=1, global_rank=0, state=SimpleNamespace(fn="fit"))
    checkpoint: dict = {}
    RandomState().on_save_checkpoint(trainer, None, checkpoint)
    checkpoint["rng_states"] *= 2  # written by 2 processes
    before = torch.get_rng_state()
    RandomState().on_load_checkpoint(trainer, None, checkpoint)
    assert torch.equal(torch.get_rng_state(), before)
    assert any("random states of 2 process(es), this run has 1" in str(w.message) for w in recwarn)
