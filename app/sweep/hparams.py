"""TensorBoard's HParams tab over a sweep folder (`tensorboard --logdir DIR`).

The sweep writes the experiment itself, once, in DIR: the cell's axes and the searched options as
hyper-parameters, the search metric and the five test figures as metrics. Left to infer it,
TensorBoard takes the experiment of whichever run it reads first, or the union of every logged
setting. Each trial and final run gets one session (its axes and values) in its own folder; the
runs themselves log no HParams of their own (`--results.hparams false`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from app.sweep.cells import axis_values
from app.sweep.spec import AXES, Sweep
from modules.vocabulary import PAPER_COLUMN_OF

SUFFIX = ".sweep"  # our event files: events.out.tfevents.<time>.<host>.sweep
TEST_METRICS = tuple(f"test/{logged}" for logged in PAPER_COLUMN_OF)  # test/clean_acc, test/linf_acc, ...


def column(option: str) -> str:
    """A searched option's column: `model.lr_head` -> `lr_head`."""
    return option.removeprefix("model.")


def _write(folder: Path, plugin_data: plugin_data_pb2.HParamsPluginData, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(plugin_data))]
    )
    writer = EventFileWriter(str(folder), filename_suffix=SUFFIX)
    writer.add_event(event_pb2.Event(wall_time=time.time(), summary=summary))
    writer.close()


def _value(value: Any) -> struct_pb2.Value:
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, int | float):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=str(value))


def _discrete(name: str, values: list[Any]) -> api_pb2.HParamInfo:
    kinds = {type(v) for v in values}
    kind = (
        api_pb2.DATA_TYPE_BOOL
        if kinds == {bool}
        else api_pb2.DATA_TYPE_FLOAT64
        if kinds <= {int, float}
        else api_pb2.DATA_TYPE_STRING
    )
    shown = values if kind != api_pb2.DATA_TYPE_STRING else [str(v) for v in values]
    return api_pb2.HParamInfo(
        name=name, type=kind, domain_discrete=struct_pb2.ListValue(values=[_value(v) for v in shown])
    )


def experiment(sweep: Sweep) -> api_pb2.Experiment:
    """The columns: the axes (protocol, dataset, backbone, loss, further axes), then every searched
    option; the metrics: `val/<search metric>` and the test figures."""
    infos = [_discrete(axis, [str(v) for v in axis_values(sweep, axis)]) for axis in (*AXES, *sweep.axes)]
    searched: dict[str, tuple] = {}
    for space in sweep.search.spaces.values():
        searched.update(space)
    for option, (kind, *args) in searched.items():
        if kind == "choice":
            infos.append(_discrete(column(option), list(args[0])))
        else:
            infos.append(
                api_pb2.HParamInfo(
                    name=column(option),
                    type=api_pb2.DATA_TYPE_FLOAT64,
                    domain_interval=api_pb2.Interval(min_value=float(args[0]), max_value=float(args[1])),
                )
            )
    metrics = [f"val/{sweep.search.metric}", *TEST_METRICS]
    return api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=tag) for tag in metrics],
        time_created_secs=time.time(),
    )


def write_experiment(out: Path, sweep: Sweep) -> None:
    """The sweep's experiment in `out` (replacing the one an earlier start of the driver wrote)."""
    old = list(out.glob(f"events.out.tfevents.*{SUFFIX}"))
    _write(out, plugin_data_pb2.HParamsPluginData(experiment=experiment(sweep)), metadata.EXPERIMENT_TAG)
    for path in old:
        path.unlink(missing_ok=True)


def write_session(run: Path, axes: dict[str, str], values: dict[str, Any]) -> None:
    """The session of one run (once: a resumed run keeps the session it started with)."""
    if any(run.glob(f"events.out.tfevents.*{SUFFIX}")):
        return
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for name, value in [*axes.items(), *((column(option), value) for option, value in values.items())]:
        start.hparams[name].CopyFrom(_value(value))
    _write(run, plugin_data_pb2.HParamsPluginData(session_start_info=start), metadata.SESSION_START_INFO_TAG)
