"""Epsilon schedules, logged per epoch to TensorBoard."""

from __future__ import annotations

import pytest
from lightning import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import TensorBoardLogger

from datamodules import DigitsDataModule
from modules import RobustFineTuneModule
from modules.model.schedules import SCHEDULES, EpsSchedule
from modules.registry import ConfigError

EPS = 4 / 255


def test_constant_schedule():
    assert [EpsSchedule().alpha(epoch) for epoch in (0, 10, 49)] == [1.0, 1.0, 1.0]


def test_linear_warmup_of_the_follow_up_paper():
    schedule = EpsSchedule("linear_warmup", t1=12, t2=37)
    assert schedule.alpha(0) == schedule.alpha(11) == 0.0
    assert schedule.alpha(12) == 0.0 and schedule.alpha(37) == schedule.alpha(49) == 1.0
    assert schedule.alpha(24) == pytest.approx(12 / 25)
    alphas = [schedule.alpha(epoch) for epoch in range(50)]
    assert alphas == sorted(alphas)
    assert EpsSchedule("linear_warmup", t1=3, t2=3).alpha(3) == 1.0


def test_bad_schedules():
    assert {"constant", "linear_warmup"} <= set(SCHEDULES.names())
    with pytest.raises(ConfigError, match="unknown eps schedule 'cosine'; valid choices: constant, linear_warmup"):
        EpsSchedule("cosine")
    with pytest.raises(ConfigError, match="t1 <= t2"):
        EpsSchedule("linear_warmup", t1=5, t2=2)


class RecordEps(Callback):
    def __init__(self) -> None:
        self.eps: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.eps.append(pl_module.training_attack_config().eps)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 3-epoch TRADES fit of timm's test ResNet on digits, eps warmed up over epochs 1..3."""
    seed_everything(0)
    out = tmp_path_factory.mktemp("fit")
    model = RobustFineTuneModule(
        backbone="test_resnet",
        num_classes=10,
        pretrained=False,
        loss="trades",
        attack={"eps": EPS, "steps": 1},
        eps_schedule={"name": "linear_warmup", "t1": 1, "t2": 3},
    )
    data = DigitsDataModule(image_size=16, batch_size=8, num_workers=0)
    record = RecordEps()
    trainer = Trainer(
        max_epochs=3,
        limit_train_batches=1,
        limit_val_batches=0,
        accelerator="cpu",
        devices=1,
        logger=TensorBoardLogger(out, name="tb", version=0),
        callbacks=[record],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, datamodule=data)
    return model, record, out


def test_eps_follows_the_schedule_and_is_logged_per_epoch(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, record, out = fitted
    assert record.eps == pytest.approx([0.0, 0.0, EPS / 2])
    events = EventAccumulator(str(out / "tb" / "version_0"))
    events.Reload()
    logged = [event.value for event in events.Scalars("train/eps")]
    assert logged == pytest.approx([0.0, 0.0, EPS / 2], abs=1e-7)
    assert model.hparams["eps_schedule"] == {"name": "linear_warmup", "t1": 1, "t2": 3}
