"""Running `python -m app` as a user does, in a subprocess: to the end, killed, signalled,
resumed, on two processes; and reading what a run leaves (results.json, weights, TensorBoard)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("clean_acc", "Linf_acc", "L2_acc", "L1_acc", "common_acc")


def short_fit(save_dir: Path, *overrides: str) -> list[str]:
    """The quickstart cut to 3 short epochs on 16x16 digits (TRADES, the five measurements)."""
    return [
        "fit",
        "--config",
        "configs/quickstart.yaml",
        "--trainer.max_epochs",
        "3",
        "--trainer.limit_train_batches",
        "10",
        "--trainer.log_every_n_steps",
        "3",
        "--trainer.enable_progress_bar",
        "false",
        "--data.init_args.image_size",
        "16",
        "--robustness.subset_size",
        "16",
        "--robustness.steps",
        "3",
        "--robustness.test_steps",
        "2",
        "--trainer.logger.init_args.save_dir",
        str(save_dir),
        *overrides,
    ]


def image_folder(root: Path, classes: int, per_split: int, size: int) -> Path:
    """`root/{train,val,test}/<class>/*.png`: the `image-folder` layout, each class its own mean colour."""
    import numpy as np
    from PIL import Image

    generator = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for label in range(classes):
            folder = root / split / f"kind{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_split):
                pixels = np.clip(generator.normal(250 * label / classes, 30, (size, size, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{n}.png")
    return root


def environment(**extra: str) -> dict[str, str]:
    """One thread per process: the same arithmetic in every run (and no oversubscribed CPU)."""
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | extra


@dataclass
class Finished:
    returncode: int
    stderr: str
    seconds: float
    stdout: str = ""


def run_app(args: list[str], timeout: float = 300, **env: str) -> Finished:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Finished(done.returncode, done.stderr, time.perf_counter() - started, done.stdout)


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file was written in; None while it is absent or half-written."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:
        return None


def run_until(
    args: list[str],
    ready: Callable[[], bool],
    send: signal.Signals,
    after: float = 0.0,
    timeout: float = 300,
    **env: str,
) -> Finished:
    """Start the app, wait until `ready()` holds, wait `after` seconds more, send `send`, and wait for
    the process to end."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=environment(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not ready():
            assert process.poll() is None, f"the run ended before it was ready: {process.stderr.read()[-2000:]}"
            assert time.perf_counter() - started < timeout, "not ready in time"
            time.sleep(0.02)
        time.sleep(after)
        process.send_signal(send)
        _, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return Finished(process.returncode, stderr, time.perf_counter() - started)


def run_until_checkpoint(
    args: list[str],
    checkpoint: Path,
    send: signal.Signals,
    after: float = 0.0,
    until: Callable[[], bool] = lambda: True,
    timeout: float = 300,
    **env: str,
) -> Finished:
    """`run_until` `checkpoint` exists (the end of the first epoch) and `until()` holds."""
    return run_until(args, lambda: checkpoint_epoch(checkpoint) is not None and until(), send, after, timeout, **env)


def the_run(save_dir: Path, name: str = "quickstart") -> Path:
    """The one run folder under `save_dir/name` (asserting there is exactly one)."""
    runs = sorted((save_dir / name).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar of a run folder as TensorBoard shows it (events an interrupted
    session wrote past the resumed step are purged, as TensorBoard does)."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def tiny_sweep(path: Path, protocols: dict[str, dict], search: dict) -> Path:
    """A sweep file at `path`: digits on timm's test ResNet, TRADES and classic AT, each protocol
    (`{name: {epochs, space, set}}`) on the quickstart config, 4 batches of 16x16 images an epoch and
    cheap measurements; `search` as a sweep file's (at least its spaces)."""
    quickstart = str(ROOT / "configs" / "quickstart.yaml")
    spec = {
        "protocols": {
            name: {
                "configs": [quickstart],
                "space": protocol["space"],
                "set": {"model.protocol": "full", "trainer.max_epochs": protocol["epochs"]} | protocol.get("set", {}),
            }
            for name, protocol in protocols.items()
        },
        "datasets": ["digits"],
        "backbones": ["test_resnet"],
        "losses": ["trades", "classic_at"],
        "set": {
            "data.init_args.image_size": 16,
            "trainer.limit_train_batches": 4,
            "trainer.limit_val_batches": 2,
            "robustness.subset_size": 16,
            "robustness.steps": 2,
            "robustness.test_steps": 2,
            "test_checkpoint": "last",
        },
        "resources": {"cpu": 1},
        "search": search,
    }
    path.write_text(yaml.safe_dump(spec))
    return path
