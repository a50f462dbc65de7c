"""configs/sweep/slurm.sh, the sweep inside a SLURM allocation, run as sbatch would run it on a
2-node allocation, with stand-ins for srun, scontrol and `hostname --ip-address` that start both
"nodes" on this machine (127.0.0.1, their own ports): the head and the worker start, the sweep runs
on both, and every Ray process ends with the script."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_runs import ROOT, environment, tiny_sweep
from ray_cluster import free_ports, node_options, ray_processes

pytest.importorskip("ray")

STAND_INS = {
    # srun [options] COMMAND...: runs COMMAND here, noting which node it was meant for
    "srun": """#!/usr/bin/env bash
node=?
while [[ $# -gt 0 && $1 == -* ]]; do
    case $1 in -w|--nodelist) node=$2; shift 2 ;; *) shift ;; esac
done
echo "$node: $*" >> "$SRUN_LOG"
exec "$@"
""",
    "scontrol": """#!/usr/bin/env bash
[[ $1 == show && $2 == hostnames ]] && printf 'gpu-node-1\\ngpu-node-2\\n'
""",
    "hostname": """#!/usr/bin/env bash
if [[ ${1:-} == --ip-address ]]; then echo 127.0.0.1; else exec /bin/hostname "$@"; fi
""",
}


def test_the_slurm_script_starts_a_head_and_a_worker_with_srun_and_sweeps_on_both(tmp_path, ray_env):
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    for name, text in STAND_INS.items():
        (stand_ins / name).write_text(text)
        (stand_ins / name).chmod(0o755)
    search = {"num_samples": 1, "time_budget_minutes": 10, "space": {"head": {"model.lr_head": ["choice", [0.003]]}}}
    spec = tiny_sweep(tmp_path / "sweep.yaml", {"ft1": {"epochs": 1, "space": "head"}}, search)
    out, log = tmp_path / "out", tmp_path / "srun.log"
    env = environment(
        **ray_env,
        PATH=f"{stand_ins}:{os.environ['PATH']}",
        SLURM_JOB_NODELIST="gpu-node-[1-2]",
        SLURM_CPUS_PER_TASK="1",
        SRUN_LOG=str(log),
        PYTHON=sys.executable,
        RAY_PORT=str(free_ports(1)[0]),
        RAY_HEAD_OPTIONS=shlex.join([f"--temp-dir={ray_env['RAY_TMPDIR']}", "--num-gpus=0", *node_options(head=True)]),
        RAY_WORKER_OPTIONS=shlex.join(["--num-gpus=0", *node_options(head=False)]),
    )
    done = subprocess.run(
        ["bash", str(ROOT / "configs" / "sweep" / "slurm.sh"), str(spec), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    started = log.read_text().splitlines()
    assert any(line.startswith("gpu-node-1: ") and "start --head --block" in line for line in started)
    assert any(line.startswith("gpu-node-2: ") and "start --block --address=127.0.0.1:" in line for line in started)
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [row["status"] for row in rows] == ["complete", "complete"]
    # the two cells side by side, one run per one-CPU node: both nodes trained
    nodes = {
        entry["node"]
        for results in out.rglob("results.json")
        for entry in json.loads(results.read_text()).get("nodes", [])
    }
    assert len(nodes) == 2
    deadline = time.monotonic() + 30  # the script's end stops both nodes
    while ray_processes(ray_env["RAY_TMPDIR"], Path(ray_env["HOME"])) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ray_processes(ray_env["RAY_TMPDIR"], Path(ray_env["HOME"]))
