"""The hyper-parameter search of one cell on Ray Tune (the paper's: ASHA, minimising the validation
robust loss, within a budget of device time), resumed from its own experiment folder when it exists.

The budget is the authors' (robust_training's `time_budget_s`: 140 minutes of one GPU running one
trial at a time), counted in device-seconds from the trials' own reports, so that time spent
waiting for a device while other cells hold the cluster does not count; it is saved and restored
with the experiment (a Tune Stopper is part of the experiment state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Stopper

from app.sweep.cells import Cell, fit_args
from app.sweep.folders import EXPERIMENTS, TRIALS, Chosen, read_record
from app.sweep.runs import trial_for
from app.sweep.spec import Search, Sweep

LOST_NODE_RETRIES = 3  # a run whose node (or worker) died is started again, from its last checkpoint


class CellFailed(RuntimeError):
    """A cell that cannot complete: no trial of its search finished an epoch, or its final run failed."""


class SearchBudget(Stopper):
    """Ends a cell's search once its trials have used `device_seconds`: the sum over every report of
    the time since the trial's previous one (`time_this_iter_s`, Tune's own measure of a trial's
    time) times the devices of a run. Also what the progress table shows: trials, best value so far.

    Tune saves this object with the experiment and restores it in place of a new one, so the budget
    already spent survives a restore; `LIVE` finds the one a restored experiment actually uses."""

    LIVE: dict[str, SearchBudget] = {}  # experiment folder -> its budget, in the process running the search

    def __init__(self, experiment: str, device_seconds: float, devices: float, metric: str, mode: str) -> None:
        self.experiment, self.device_seconds, self.devices = experiment, device_seconds, devices
        self.metric, self.mode = metric, mode
        self.used = 0.0
        self.trials: set[str] = set()
        self.best: float | None = None
        SearchBudget.LIVE[experiment] = self

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        SearchBudget.LIVE[self.experiment] = self

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.used += float(result.get("time_this_iter_s") or 0.0) * self.devices
        self.trials.add(trial_id)
        value = result.get(self.metric)
        if isinstance(value, int | float) and value == value and self.better(value):  # value == value: not NaN
            self.best = float(value)
        return False

    def better(self, value: float) -> bool:
        return self.best is None or (value < self.best if self.mode == "min" else value > self.best)

    def stop_all(self) -> bool:
        return self.used >= self.device_seconds


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
        max_concurrent_trials=search.concurrent_trials,
        trial_dirname_creator=lambda t: t.trial_id,
        trial_name_creator=lambda t: t.trial_id,
    )


def experiment_folder(cell: Cell, cell_dir: Path) -> Path:
    """Named after the cell: Tune stages an experiment's files in a folder of the node named by the
    experiment's name and start time, so two cells started in the same second must not share it."""
    return cell_dir / EXPERIMENTS / f"search-{cell.id()}"


def search_cell(sweep: Sweep, cell: Cell, cell_dir: Path, resources: dict[str, float]) -> Chosen:
    """Run (or resume) the cell's search and return the best trial's values (scope: each trial's
    last report, as Tune's default)."""
    from ray import tune

    protocol = sweep.protocols[cell.protocol]
    devices = max(resources.get("gpu", 0.0), 1.0)
    trainable = tune.with_resources(trial_for(cell), resources)
    experiment = experiment_folder(cell, cell_dir)
    if tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
    else:
        constants = {
            "cell_id": cell.id(),
            "args": fit_args(sweep, cell),
            "cell_dir": str(cell_dir),
            "metric": sweep.search.metric,
            "axes": cell.axes(),
        }
        budget = SearchBudget(
            str(experiment),
            sweep.search.budget_device_seconds(devices),
            devices,
            sweep.search.metric,
            sweep.search.mode,
        )
        tuner = tune.Tuner(
            trainable,
            param_space=tune_space(sweep.search, protocol.space) | constants,
            tune_config=tune_config(sweep.search, protocol.epochs),
            run_config=tune.RunConfig(
                name=experiment.name,
                storage_path=str(experiment.parent),
                verbose=0,
                stop=budget,
                failure_config=tune.FailureConfig(max_failures=LOST_NODE_RETRIES),
            ),
        )
    grid = tuner.fit()
    used = SearchBudget.LIVE[str(experiment)].used
    reported = [result for result in grid if result.metrics and sweep.search.metric in result.metrics]
    if not reported:
        errors = trial_errors(cell_dir) + [str(r.error).strip().splitlines()[-1] for r in grid if r.error]
        raise CellFailed(
            f"no trial finished an epoch ({len(grid)} trials; first error: "
            f"{errors[0] if errors else 'none'}; their folders: {cell_dir / TRIALS})"
        )
    best = grid.get_best_result(
        metric=sweep.search.metric, mode=sweep.search.mode, scope="last", filter_nan_and_inf=True
    )
    values = {key: value for key, value in best.config.items() if key.startswith("model.")}
    return Chosen(values, best.metrics["trial_id"], float(best.metrics[sweep.search.metric]), used)


def trial_errors(cell_dir: Path) -> list[str]:
    """The errors the cell's failed trials recorded in their results.json."""
    records = [read_record(run) for run in sorted((cell_dir / TRIALS).glob("*"))]
    return [str(r["error"]) for r in records if r.get("status") == "failed" and r.get("error")]
