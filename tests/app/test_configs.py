"""The paper's protocol configs resolve (LightningCLI --print_config) to the documented settings,
and `data.batch_size: null` becomes the backbone's default batch, halved for TRADES."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from app.cli import RobustCLI, expand_dataset_names, run_cli
from datamodules.base import ImageClassificationDataModule
from modules import RobustFineTuneModule
from modules.callbacks import EffectiveBatchSize

CONFIGS = Path(__file__).parents[2] / "configs"
PROTOCOLS = {  # name: (protocol, epochs, lr_backbone, lr_head)
    "fft50": ("full", 50, 1e-4, 1e-3),
    "fft5": ("full", 5, 1e-4, 1e-3),
    "lp50": ("linear_probe", 50, 0.0, 1e-3),
}


def print_config(capsys, monkeypatch, *argv: str) -> dict:
    monkeypatch.setattr(sys, "argv", ["python -m app"])  # run_cli sets sys.argv
    with pytest.raises(SystemExit) as exit_:
        run_cli(["fit", *argv, "--print_config"])
    assert exit_.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("name", PROTOCOLS)
def test_protocol_config_resolves_to_the_paper_settings(capsys, monkeypatch, name, tmp_path):
    protocol, epochs, lr_backbone, lr_head = PROTOCOLS[name]
    config = print_config(capsys, monkeypatch, "--config", str(CONFIGS / "experiment" / f"{name}.yaml"),
                          "--model.backbone", "convnext_tiny.fb_in1k", "--data", "flowers-102",
                          "--data.root", str(tmp_path), "--model.loss", "trades")
    model = config["model"]["init_args"]
    assert (model["protocol"], model["lr_backbone"], model["lr_head"]) == (protocol, lr_backbone, lr_head)
    assert model["betas"] == [0.9, 0.95] and model["loss"] == "trades" and model["beta"] == 1.0
    assert model["attack"] == {"algorithm": "apgd", "norm": "Linf", "eps": pytest.approx(4 / 255), "steps": 10,
                               "step_size": None, "random_start": False, "restarts": 1, "queries": 5000, "seed": 0}
    assert model["eps_schedule"]["name"] == "constant"
    trainer = config["trainer"]
    assert trainer["max_epochs"] == epochs
    assert trainer["precision"] == "bf16-mixed"
    assert (trainer["strategy"], trainer["devices"]) == ("auto", "auto")  # DDP on several GPUs
    assert config["batching"]["effective_batch_size"] == 1024
    assert config["data"]["class_path"].endswith("FlowersDataModule")
    assert config["data"]["init_args"]["batch_size"] is None  # resolved at instantiation, see below
    assert config["data"]["init_args"]["image_size"] == 224


def test_config_groups_compose(capsys, monkeypatch, tmp_path):
    config = print_config(capsys, monkeypatch, "--config", str(CONFIGS / "experiment" / "fft5.yaml"),
                          "--config", str(CONFIGS / "backbone" / "robust_resnet50.yaml"),
                          "--config", str(CONFIGS / "loss" / "classic_at.yaml"),
                          "--config", str(CONFIGS / "eps_schedule" / "linear_warmup.yaml"),
                          "--config", str(CONFIGS / "data" / "flowers-102.yaml"), "--data.root", str(tmp_path))
    model = config["model"]["init_args"]
    assert (model["backbone"], model["loss"], model["eps_schedule"]["name"]) == ("robust_resnet50", "classic_at", "linear_warmup")
    assert config["trainer"]["max_epochs"] == 5 and config["data"]["init_args"]["num_workers"] == 8


def instantiate(tmp_path, *argv: str) -> RobustCLI:
    # digits: instantiating links num_classes from the data, which needs the dataset's files; digits is
    # bundled. Its class types batch_size `int`, so switching to it drops the config's null: re-given here.
    args = expand_dataset_names([*argv, "--model.pretrained", "false", "--trainer.logger", "false",
                                 "--trainer.accelerator", "cpu", "--data", "digits", "--data.batch_size", "null"])
    return RobustCLI(RobustFineTuneModule, ImageClassificationDataModule, subclass_mode_model=True,
                     subclass_mode_data=True, run=False, args=args, parser_kwargs={"exit_on_error": False})


def test_batch_size_resolves_to_the_backbone_default(tmp_path):
    cli = instantiate(tmp_path, "--config", str(CONFIGS / "experiment" / "lp50.yaml"),
                      "--model.backbone", "deit_tiny_patch16_224.fb_in1k", "--model.loss", "trades")
    assert cli.datamodule.batch_size == 64  # small backbone: 128, halved for TRADES
    assert EffectiveBatchSize(1024).accumulation(cli.datamodule.batch_size, 1) == 16
    assert cli.trainer.max_epochs == 50
    trainable = {name for name, p in cli.model.model.net.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}  # LP: the head only


def test_classic_at_keeps_the_full_default(tmp_path):
    cli = instantiate(tmp_path, "--config", str(CONFIGS / "experiment" / "fft5.yaml"),
                      "--model.backbone", "mobilenetv3_large_100.ra_in1k", "--model.loss", "classic_at")
    assert cli.datamodule.batch_size == 128 and cli.trainer.max_epochs == 5
    assert EffectiveBatchSize(1024).accumulation(cli.datamodule.batch_size, 1) == 8
    cli.model.trainer = cli.trainer
    groups = {group["name"]: group["lr"] for group in cli.model.configure_optimizers()["optimizer"].param_groups}
    assert groups == {"backbone": 1e-4, "backbone_no_decay": 1e-4, "head": 1e-3, "head_no_decay": 1e-3}


def test_batch_size_null_survives_another_dataset(capsys, monkeypatch, tmp_path):
    """jsonargparse keeps init_args valid for the new class: the file datasets type batch_size `int | None`."""
    config = print_config(capsys, monkeypatch, "--config", str(CONFIGS / "experiment" / "fft50.yaml"),
                          "--data", "caltech101", "--data.root", str(tmp_path))
    assert config["data"]["init_args"]["batch_size"] is None
