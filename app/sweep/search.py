"""The hyper-parameter search of one cell on Ray Tune (the paper's: ASHA under a time budget,
minimising the validation robust loss), resumed from its own experiment folder when it exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.sweep.cells import Cell, fit_args
from app.sweep.runs import TRIALS, trial
from app.sweep.spec import Search, Sweep

EXPERIMENT = "tune"  # <cell>/tune/: Tune's own experiment state (trials' run folders are <cell>/trials/<id>/)


@dataclass
class Chosen:
    values: dict[str, Any]  # dotted option -> value
    trial: str
    metric: float
    device_seconds: float  # of all the cell's trials


class CellFailed(RuntimeError):
    """A cell that cannot complete: no trial of its search finished an epoch, or its final run failed."""


def tune_space(search: Search, space: str) -> dict[str, Any]:
    from ray import tune

    kinds = {"loguniform": tune.loguniform, "uniform": tune.uniform, "choice": lambda values: tune.choice(list(values))}
    return {option: kinds[kind](*args) for option, (kind, *args) in search.spaces.get(space, {}).items()}


def tune_config(search: Search, epochs: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    algorithm = None
    if search.algorithm == "tpe":
        from ray.tune.search.optuna import OptunaSearch

        algorithm = OptunaSearch()
    # ASHA counts our own epochs: a trial resumed after a restore reports where it really is
    scheduler = ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=search.grace_period, reduction_factor=search.reduction_factor
    )
    return tune.TuneConfig(
        metric=search.metric,
        mode=search.mode,
        scheduler=scheduler,
        search_alg=algorithm,
        num_samples=search.num_samples,
        time_budget_s=search.time_budget_minutes * 60,
        trial_dirname_creator=lambda t: t.trial_id,
        trial_name_creator=lambda t: t.trial_id,
    )


def search_cell(sweep: Sweep, cell: Cell, cell_dir: Path, resources: dict[str, float]) -> Chosen:
    """Run (or resume) the cell's search and return the best trial's values (scope: each trial's
    last report, as Tune's default)."""
    from ray import tune

    protocol = sweep.protocols[cell.protocol]
    trainable = tune.with_resources(trial, resources)
    experiment = cell_dir / EXPERIMENT
    if tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
    else:
        constants = {"args": fit_args(sweep, cell), "cell_dir": str(cell_dir), "metric": sweep.search.metric}
        tuner = tune.Tuner(
            trainable,
            param_space=tune_space(sweep.search, protocol.space) | constants,
            tune_config=tune_config(sweep.search, protocol.epochs),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(cell_dir), verbose=0),
        )
    grid = tuner.fit()
    seconds = sum(float(result.metrics.get("time_total_s", 0.0)) for result in grid if result.metrics)
    reported = [result for result in grid if result.metrics and sweep.search.metric in result.metrics]
    if not reported:
        errors = [str(result.error).strip().splitlines()[-1] for result in grid if result.error]
        raise CellFailed(
            f"no trial finished an epoch ({len(grid)} trials; first error: "
            f"{errors[0] if errors else 'none'}; their folders: {cell_dir / TRIALS})"
        )
    best = grid.get_best_result(
        metric=sweep.search.metric, mode=sweep.search.mode, scope="last", filter_nan_and_inf=True
    )
    values = {key: value for key, value in best.config.items() if key.startswith("model.")}
    devices = max(resources.get("gpu", 0.0), 1.0)
    return Chosen(values, best.metrics["trial_id"], float(best.metrics[sweep.search.metric]), seconds * devices)
