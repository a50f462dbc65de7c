"""The Ray cluster a sweep runs on: its address checked, the connection, and how many runs its live
nodes hold at once (re-read as nodes join or leave)."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modules.registry import ConfigError

# A sweep file's resource names -> Ray's
RAY_NAMES = {"cpu": "CPU", "gpu": "GPU"}
HEAD = "node:__internal_head__"  # the resource only the head node has: the cells' controllers live there


def namespace(out: Path) -> str:
    """The sweep's Ray namespace: its controllers are named actors there, one per cell."""
    return "app-sweep-" + hashlib.sha1(str(out).encode()).hexdigest()[:12]


def check_address(address: str) -> None:
    """An address of a cluster must answer before Ray is asked to join it (Ray would wait)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({error}); start one with "
            "`ray start --head` and give its address (or `auto` on one of its nodes)"
        ) from None


def connect(address: str | None, namespace: str) -> None:
    """Embedded Ray on this machine by default (`local`: never a stale cluster's), else the cluster.
    `namespace`: the sweep's (its cells' controllers are named actors there)."""
    import ray

    env = {
        "RAY_CHDIR_TO_TRIAL_DIR": "0",  # trials keep the driver's working directory
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # our runs log everything; Tune's loggers would add runs
        "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # a failed trial ends without a report (results.json says why)
    }
    os.environ.update(env)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console output off (verbose=0): the driver reports
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    try:
        ray.init(
            address=address or "local",
            namespace=namespace,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
            ignore_reinit_error=True,
        )
    except ConnectionError as error:
        raise ConfigError(f"--address {address}: {str(error).strip().splitlines()[0]}") from None


def run_resources(sweep_resources: dict[str, float], cluster_gpus: float) -> dict[str, float]:
    """One CPU, and one GPU where the cluster has any (a run given no GPU would see them all)."""
    return {"cpu": 1.0, "gpu": 1.0 if cluster_gpus > 0 else 0.0} | sweep_resources


def slots(node: dict[str, float], resources: dict[str, float]) -> int:
    """How many runs of `resources` fit on a node of `node` total resources (Ray's names)."""
    needed = {RAY_NAMES[key]: value for key, value in resources.items() if value > 0}
    return min(math.floor(node.get(name, 0.0) / value + 1e-9) for name, value in needed.items())


def live_nodes() -> list[dict[str, Any]]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def capacity(resources: dict[str, float], nodes: Iterable[dict[str, Any]] | None = None) -> int:
    """Runs of `resources` the live nodes hold at once."""
    return sum(slots(node["Resources"], resources) for node in (live_nodes() if nodes is None else nodes))


def slots_in_use(resources: dict[str, float]) -> tuple[int, int]:
    """(busy, all) run slots of the live nodes; what is free is read from the cluster's available
    resources as a whole, so a slot split across nodes counts as free."""
    import ray

    total = capacity(resources)
    free = slots(ray.available_resources(), resources)
    return max(total - free, 0), total


def check_fits(resources: dict[str, float]) -> None:
    """A run larger than every node would wait for ever: one line instead, before anything starts."""
    nodes = live_nodes()
    if capacity(resources, nodes) == 0:
        sizes = "; ".join(
            ", ".join(f"{key} {node['Resources'].get(name, 0):g}" for key, name in RAY_NAMES.items()) for node in nodes
        )
        wanted = ", ".join(f"{key} {value:g}" for key, value in resources.items() if value > 0)
        raise ConfigError(
            f"resources: a run needs {wanted}, more than any node of the cluster has ({sizes or 'no live node'}); "
            "lower the sweep file's resources or add a larger node"
        )


def wait_for_nodes(count: int, seconds: float = 600.0) -> None:
    """Until the cluster has `count` live nodes (a SLURM allocation's workers join after its head)."""
    deadline, shown = time.monotonic() + seconds, -1
    while (alive := len(live_nodes())) < count:
        if time.monotonic() > deadline:
            raise ConfigError(f"--wait-for-nodes {count}: only {alive} nodes joined within {seconds / 60:.0f} minutes")
        if alive != shown:
            print(f"waiting for {count} nodes: {alive} joined", file=sys.stderr, flush=True)
            shown = alive
        time.sleep(1)
