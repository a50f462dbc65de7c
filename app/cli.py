"""`python -m app fit|validate|test`: LightningCLI over RobustFineTuneModule and the data modules."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Literal

import yaml
from lightning import Callback
from lightning.pytorch.callbacks import LearningRateMonitor, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

import datamodules  # noqa: F401  (registers the datasets)
from app.config_files import expand_config_arguments
from app.quiet import quiet_lightning
from app.resume import AlreadyComplete, Checkpoint, Resume, prepare_fit, prepare_test, resolve
from datamodules.base import ImageClassificationDataModule
from datamodules.registry import DATAMODULES, class_path
from modules import RobustFineTuneModule
from modules.callbacks import (
    EffectiveBatchSize,
    FiniteLoss,
    Interruption,
    NonFiniteLossError,
    RandomState,
    ResultsWriter,
    RobustnessCallback,
    RunCheckpoint,
)
from modules.registry import ConfigError


class RobustCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(RobustnessCallback, "robustness")
        parser.add_lightning_class_args(EffectiveBatchSize, "batching")
        parser.add_lightning_class_args(ResultsWriter, "results")
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/selection_score",
                "checkpoint.mode": "max",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
            }
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="after fit, run the test measurements on the checkpoint test_checkpoint names",
        )
        parser.add_argument(
            "--test_checkpoint",
            type=Literal["best", "last"],
            default="best",
            help="what test_after_fit measures: best (the highest sum of validation accuracies) "
            "or last (the last epoch's weights, as the paper; the experiment configs)",
        )
        parser.add_argument(
            "--bench",
            type=str | None,
            default=None,
            help="a `python -m app bench --json` or `--suite` JSON: `data.batch_size: null` takes the backbone's "
            "measured largest TRADES batch there (at this image size; scaled by the loss's batch factor)",
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

    checkpoint: Checkpoint | None = None
    resume: Resume | None = None

    def __init__(self, *args, run_folder: Path | None = None, **kwargs) -> None:
        """`run_folder`: `fit` writes into this folder (continuing it from its last.ckpt if it has
        one) instead of a new version of the logger's name."""
        self.run_folder = run_folder
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Composed config files expanded (see app/config_files.py); `--ckpt_path last` resolved and any
        checkpoint checked, before LightningCLI reads it."""
        if args is None or isinstance(args, list):
            self.config = parser.parse_args(expand_config_arguments(sys.argv[1:] if args is None else args))
        else:
            super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand:
            self.checkpoint = resolve(self.config[subcommand], subcommand)

    def before_instantiate_classes(self) -> None:
        """Checks and defaults that need the whole configuration, before anything is built."""
        if self.subcommand == "test" and not self.config.test.get("ckpt_path") and not keeps_head(self.config.test):
            raise ConfigError(
                "test needs a checkpoint: --ckpt_path PATH (e.g. runs/<name>/version_N/checkpoints/best.ckpt), "
                "or a model with its own head for this dataset: --model.backbone local-dir:DIR (or hf-hub:ORG/NAME) "
                "--model.keep_head true"
            )
        self.resolve_batch_size()
        if self.subcommand == "test":
            self.resume = prepare_test(self.config.test, self.checkpoint)
        if self.subcommand == "fit":
            saved = yaml.safe_load(self._parser("fit").dump(self.config.fit, skip_none=False))
            self.resume = prepare_fit(self.config.fit, self.checkpoint, saved, self.run_folder)
        if self.resume is not None:  # its own checkpoints are expected there (run_cli scopes this filter)
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")

    def resolve_batch_size(self) -> None:
        """`data.batch_size: null` (the experiment configs) -> the backbone's default, halved for TRADES."""
        from modules.model.backbone_zoo import default_batch_size

        config = self.config[self.subcommand] if self.subcommand else self.config
        data, model = config.get("data"), config.get("model")
        if data is None or model is None or data.get("init_args") is None or model.get("init_args") is None:
            return
        if data.init_args.get("batch_size", 0) is None:
            backbone, loss = model.init_args.get("backbone", ""), model.init_args.get("loss")
            measured = self.measured_batch_size(config, backbone, data.init_args.get("image_size"), loss)
            data.init_args.batch_size = measured or default_batch_size(backbone, loss)
            if data.init_args.batch_size is None:
                raise ConfigError(
                    f"data.batch_size is null (the backbone's default), but {backbone!r} is not one of "
                    "the study's backbones: give --data.batch_size N"
                )

    @staticmethod
    def measured_batch_size(config, backbone: str, image_size: int | None, loss: str | None) -> int | None:
        """`--bench FILE`: the backbone's measured batch, at most the effective batch (no accumulation past it)."""
        from pathlib import Path

        from app.bench.files import measured_batch, read_benches

        if not config.get("bench"):
            return None
        found = measured_batch(read_benches(Path(config.bench)), backbone, image_size, loss or "trades")
        effective = (config.get("batching") or {}).get("effective_batch_size")
        return min(found, effective) if found and effective else found

    def instantiate_trainer(self, **kwargs):
        """The run's own callbacks first (Interruption writes its checkpoint before ResultsWriter
        records the interruption); the rich progress bar, a default callback, is dropped when the
        user turns the bar off. A resumed run keeps the config.yaml it started with (rewritten
        only if missing, and then as a user would rerun it: no checkpoint, no pinned version)."""
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("enable_progress_bar") is False:
            callbacks = [c for c in self.trainer_defaults.get("callbacks", []) if not isinstance(c, RichProgressBar)]
            self.trainer_defaults = self.trainer_defaults | {"callbacks": callbacks}
        configured = trainer_config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        trainer = super().instantiate_trainer(
            callbacks=[Interruption(), RandomState(), FiniteLoss(), *configured], **kwargs
        )
        if self.resume is not None:
            for callback in trainer.callbacks:
                if isinstance(callback, SaveConfigCallback):
                    callback.config = self.resume.saved_config
                    callback.already_saved = (self.resume.run / callback.config_filename).is_file()
        return trainer

    def after_fit(self) -> None:
        if not self.config_init[self.subcommand].get("test_after_fit") or self.trainer.interrupted:
            return
        checkpointer = self.trainer.checkpoint_callback
        which = self.config_init[self.subcommand].get("test_checkpoint")
        chosen = getattr(checkpointer, "last_model_path" if which == "last" else "best_model_path", "")
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=chosen or None)


def keeps_head(config) -> bool:
    """A model measured as it is, with the head its weights bring (no checkpoint needed)."""
    model = config.get("model")
    return bool(model is not None and model.get("init_args") is not None and model.init_args.get("keep_head"))


def dataset_class_path(value: str) -> str:
    """A registry name -> its class path; class paths and class names pass; anything else is an error."""
    if value in DATAMODULES:
        return class_path(value)
    class_names = {DATAMODULES.get(name).__name__ for name in DATAMODULES}
    if "." in value or value in class_names or value.startswith(("{", "/")) or value.endswith((".yaml", ".yml")):
        return value
    DATAMODULES.get(value)  # raises: unknown dataset, with the valid names
    return value


def expand_dataset_names(argv: list[str]) -> list[str]:
    """`--data flowers-102` -> `--data <its class path>`, so registry names work on the command line."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--data" and i + 1 < len(out):
            out[i + 1] = dataset_class_path(out[i + 1])
        elif arg.startswith("--data="):
            out[i] = f"--data={dataset_class_path(arg.removeprefix('--data='))}"
    return out


_BOILERPLATE = re.compile(
    r"Does not validate against any of the Union subtypes|^Subtypes:|^Errors:|"
    r"Expected a <class 'NoneType'>|^Given value"
)


def condense(error: ArgumentError) -> str:
    """jsonargparse's message without the union boilerplate, plus the accepted options of the class."""
    lines = [line.strip(" -") for line in str(error).splitlines()]
    kept = [line for line in lines if line and not _BOILERPLATE.search(line)]
    message = " ".join(kept)
    bad = re.search(r"Option '([^']+)' is not accepted", message)
    owner = re.search(r"class_path '([\w.]+)'", message)
    if bad and owner:
        module, _, name = owner.group(1).rpartition(".")
        options = [
            p for p in inspect.signature(getattr(importlib.import_module(module), name)).parameters if p != "self"
        ]
        message += f"; valid options: {', '.join(options)}"
    return message


def config_error(error: BaseException) -> ConfigError | None:
    """The ConfigError behind an exception (jsonargparse wraps errors raised while instantiating)."""
    while error is not None:
        if isinstance(error, ConfigError):
            return error
        error = error.__cause__ or error.__context__
    return None


def run_cli(argv: list[str], callbacks: list[Callback] | tuple = (), run_folder: Path | None = None) -> int:
    """`python -m app fit|validate|test ARGS`; `callbacks` join the trainer's (e.g. the sweep's report
    to Tune); `run_folder`: where `fit` runs (see RobustCLI)."""
    program = sys.argv
    try:
        # LightningCLI reads sys.argv (passing `args` as well makes it warn): point it at the
        # expanded arguments for this call only.
        sys.argv = [program[0], *expand_dataset_names(argv)]
        with warnings.catch_warnings():  # filters set for this run (see before_instantiate_classes) end with it
            quiet_lightning()
            RobustCLI(
                RobustFineTuneModule,
                ImageClassificationDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"exit_on_error": False},
                run_folder=run_folder,
                trainer_defaults={
                    "logger": {
                        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                        "init_args": {"save_dir": "runs", "name": "default", "default_hp_metric": False},
                    },
                    "callbacks": [RichProgressBar(), LearningRateMonitor(), *callbacks],
                },
            )
    except ArgumentError as error:
        print(f"error: {condense(error)}", file=sys.stderr)
        return 2
    except SIGTERMException as stop:  # Interruption saved a checkpoint and says how to resume
        if rank_zero_only.rank == 0:
            print("\n".join(getattr(stop, "__notes__", None) or ["interrupted"]), file=sys.stderr)
        return stop.code if isinstance(stop.code, int) else 128 + 15
    except NonFiniteLossError as error:
        if rank_zero_only.rank == 0:
            print(f"error: {error}", file=sys.stderr)
        return 1
    except AlreadyComplete as done:
        print(done, file=sys.stderr)
        return 0
    except Exception as error:
        cause = config_error(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2
    finally:
        sys.argv = program
    return 0
