"""The DDP-sharded figure equals the single-process one (2 CPU processes, gloo)."""

import datetime
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modules.evaluation import EvaluationSettings, evaluate

NAMES = ["clean", "linf", "common", "expected_linf"]


def settings() -> EvaluationSettings:
    return EvaluationSettings(
        attack="apgd", eps={"linf": 4 / 255, "l2": 0.3, "l1": 3.0}, steps=3, num_examples=22, grid_step=2 / 255
    )


def _strip(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("seconds", "_examples")}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from tests.measurements.conftest import make_data, make_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x, y = make_data(22)
    report = evaluate(
        make_model(),
        list(zip(x, y)),
        list(range(22)),
        NAMES,
        settings(),
        torch.device("cpu"),
        batch_size=4,
        rank=rank,
        world_size=world,
    )
    if rank == 0:
        torch.save(_strip(report), out)
    dist.destroy_process_group()


def test_two_gloo_processes_equal_one(tmp_path, model):
    from tests.measurements.conftest import make_data

    x, y = make_data(22)
    single = _strip(
        evaluate(model, list(zip(x, y)), list(range(22)), NAMES, settings(), torch.device("cpu"), batch_size=4)
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_worker, args=(2, port, out), nprocs=2, join=True)
    sharded = torch.load(out, weights_only=False)
    assert sharded["accuracy"] == single["accuracy"]
    assert sharded["per_corruption"] == single["per_corruption"]
    assert sharded["expected_robustness"] == single["expected_robustness"]
    assert sharded["num_images"] == 22


def _stopping_worker(rank: int, world: int, port: int, out: str) -> None:
    """Rank 1 is asked to stop after its first batch; rank 0 is never asked and finishes its batches."""
    from modules.evaluation.loop import Stopped
    from tests.measurements.conftest import make_data, make_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    x, y = make_data(22)
    try:
        evaluate(
            make_model(), list(zip(x, y)), list(range(22)), ["clean", "linf"], settings(), torch.device("cpu"),
            batch_size=4, rank=rank, world_size=world, should_stop=(lambda: True) if rank == 1 else None,
        )  # fmt: skip
        outcome = "finished"
    except Stopped as stopped:
        outcome = f"stopped: {stopped.examples['linf']}"
    with open(f"{out}.{rank}", "w") as handle:
        handle.write(outcome)
    dist.destroy_process_group()


def test_when_one_process_is_stopped_every_process_stops(tmp_path):
    """A rank done with its batches would wait in the gather for one that stopped: both stop instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "outcome")
    mp.spawn(_stopping_worker, args=(2, port, out), nprocs=2, join=True)
    # 22 images in batches of 4: rank 0 has batches 0, 2, 4 (12 images), rank 1 batches 1, 3, 5 (10)
    assert Path(f"{out}.0").read_text() == "stopped: {'kept': 0, 'measured': 12}"
    assert Path(f"{out}.1").read_text() == "stopped: {'kept': 0, 'measured': 4}"
