#!/usr/bin/env bash
# The sweep inside one SLURM allocation: a Ray head on the first node and a Ray worker on each other
# node (each started with srun), then `python -m app sweep --address` on the head node. When the
# allocation ends, submit the same command again: the sweep continues where it stopped.
#
#   sbatch --nodes=8 --gpus-per-node=8 --cpus-per-task=96 --time=2-00:00:00 \
#       configs/sweep/slurm.sh configs/sweep/paper.yaml /shared/sweeps/paper [more app sweep options]
#
# Every node must see the project (installed as the README says, at the same path) and the sweep's
# folder (a shared filesystem). Settings, from the environment:
#   PYTHON              the Python that has the project (default: python)
#   RAY_PORT            the head's port (default: 6379)
#   RAY_HEAD_OPTIONS    more `ray start` options for the head (e.g. --temp-dir=/scratch/ray)
#   RAY_WORKER_OPTIONS  more `ray start` options for the workers
#SBATCH --job-name=robust-sweep
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --output=%x-%j.out
set -euo pipefail

usage="usage: sbatch [options] configs/sweep/slurm.sh SWEEP.yaml OUT [app sweep options]"
sweep_file=${1:?$usage}
out=${2:?$usage}
shift 2
python=${PYTHON:-python}
port=${RAY_PORT:-6379}
: "${SLURM_JOB_NODELIST:?not inside a SLURM allocation (submit this script with sbatch)}"

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head=${nodes[0]}
head_ip=$(srun --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}')
address="$head_ip:$port"
cpus=()
if [[ -n "${SLURM_CPUS_PER_TASK:-}" ]]; then
    cpus=(--num-cpus "$SLURM_CPUS_PER_TASK")
fi

# Each srun step ends when this script does: `ray start --block` then stops its node.
trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT

echo "Ray head on $head ($address); ${#nodes[@]} nodes"
# shellcheck disable=SC2086  # the options are words on purpose
srun --nodes=1 --ntasks=1 -w "$head" "$python" -m ray.scripts.scripts start --head --block \
    --node-ip-address="$head_ip" --port="$port" --include-dashboard=false "${cpus[@]}" ${RAY_HEAD_OPTIONS:-} &
until (exec 3<>"/dev/tcp/$head_ip/$port") 2>/dev/null; do
    sleep 1
done
for node in "${nodes[@]:1}"; do
    # shellcheck disable=SC2086
    srun --nodes=1 --ntasks=1 -w "$node" "$python" -m ray.scripts.scripts start --block \
        --address="$address" "${cpus[@]}" ${RAY_WORKER_OPTIONS:-} &
done

"$python" -m app sweep --config "$sweep_file" --out "$out" --address "$address" \
    --wait-for-nodes "${#nodes[@]}" "$@"
