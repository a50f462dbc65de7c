"""The DDP-sharded figure equals the single-process one (2 CPU processes, gloo)."""

import os
import socket

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
