"""Ray for the tests, on this machine only: the settings of a test's Ray (no auth token, a private
HOME, a short temp dir), a real multi-node cluster (`ray start` per node, every node on 127.0.0.1
with its own ports), and the end of every process a test started, found by id (never `ray stop`:
other work on the machine must survive)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# A lost node is noticed within about two seconds instead of Ray's default half-minute.
FAST_FAILURE_DETECTION = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def ray_settings(temp: str, home: Path) -> dict[str, str]:
    return {"RAY_AUTH_MODE": "disabled", "HOME": str(home), "RAY_TMPDIR": temp, "RAY_USAGE_STATS_ENABLED": "0"}


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, command line, environment) of every process we can read."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        found[int(proc.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), command, environ)
    return found


def descendants(roots: set[int], processes: dict[int, tuple[int, str, str]] | None = None) -> set[int]:
    processes = _processes() if processes is None else processes
    found, grew = set(roots), True
    while grew:
        grew = False
        for pid, (parent, _, _) in processes.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def ray_processes(temp: str, home: Path) -> set[int]:
    """Every process of a test's Ray: its temp dir on the command line or its HOME in the
    environment (Ray's workers rename themselves), and their children."""
    processes = _processes()
    marker = f"HOME={home}"
    roots = {
        pid for pid, (_, command, environ) in processes.items() if temp in command or marker in environ.split("\0")
    }
    return descendants(roots, processes) - {os.getpid()}


def kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def node_options(head: bool) -> list[str]:
    """`ray start` options that let several nodes share this machine: 127.0.0.1 and free ports."""
    ports = free_ports(24)
    options = [
        "--node-ip-address=127.0.0.1",
        f"--node-manager-port={ports[0]}",
        f"--object-manager-port={ports[1]}",
        f"--dashboard-agent-listen-port={ports[2]}",
        f"--dashboard-agent-grpc-port={ports[3]}",
        f"--runtime-env-agent-port={ports[4]}",
        f"--metrics-export-port={ports[5]}",
        f"--worker-port-list={','.join(map(str, ports[8:24]))}",
        "--disable-usage-stats",
    ]
    return [*options, "--include-dashboard=false", f"--ray-client-server-port={ports[6]}"] if head else options


@dataclass
class Node:
    raylet: int  # pid
    node_id: str  # Ray's (hex)


@dataclass
class LocalCluster:
    """A head and worker nodes, each a `ray start` on 127.0.0.1 with its own ports and one CPU."""

    temp: str
    home: Path
    env: dict[str, str]
    port: int = 0  # the head's (GCS) port
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_node(self, cpus: int = 1) -> Node:
        if not self.nodes:
            self.port = free_ports(1)[0]
            args = ["--head", f"--port={self.port}", f"--temp-dir={self.temp}", *node_options(head=True)]
        else:
            args = [f"--address={self.address}", *node_options(head=False)]
        args += [f"--num-cpus={cpus}", "--num-gpus=0"]
        started = subprocess.run([RAY, "start", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise RuntimeError(f"ray start failed: {started.stderr[-2000:]}")
        node = self.raylet_of(int(next(a for a in args if a.startswith("--node-manager-port=")).split("=")[1]))
        self.nodes.append(node)
        return node

    def raylet_of(self, node_manager_port: int) -> Node:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid, (_, command, _) in _processes().items():
                args = command.split("\0")
                if "raylet/raylet" in args[0] and f"--node_manager_port={node_manager_port}" in args:
                    return Node(pid, next(a for a in args if a.startswith("--node_id=")).removeprefix("--node_id="))
            time.sleep(0.2)
        raise RuntimeError(f"no raylet with node manager port {node_manager_port}")

    def runs_process(self, node: Node, pid: int) -> bool:
        """Whether process `pid` is alive and a worker of `node` (a child of its raylet)."""
        process = _processes().get(pid)
        return process is not None and process[0] == node.raylet

    def kill_node(self, node: Node) -> None:
        """SIGKILL the node's raylet (its workers follow it), as a machine lost."""
        os.kill(node.raylet, signal.SIGKILL)
        self.nodes.remove(node)

    def stop(self) -> None:
        kill(ray_processes(self.temp, self.home))
