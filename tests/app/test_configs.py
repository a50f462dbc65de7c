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
    config = print_config(
        capsys,
        monkeypatch,
        "--config",
        str(CONFIGS / "experiment" / f"{name}.yaml"),
        "--model.backbone",
        "convnext_tiny.fb_in1k",
        "--data",
        "flowers-102",
        "--data.root",
        str(tmp_path),
        "--model.loss",
        "trades",
    )
    model = config["model"]["init_args"]
    assert (model["protocol"], model["lr_backbone"], model["lr_head"]) == (protocol, lr_backbone, lr_head)
    assert (
        model["betas"] == [0.9, 0.95]
        and model["loss"] == "trades"
        and model["loss_settings"] == {"trades": {"beta": 1.0}}
    )
    assert model["attack"] == {
        "algorithm": "apgd",
        "norm": "Linf",
        "eps": pytest.approx(4 / 255),
        "steps": 10,
        "step_size": None,
        "random_start": False,
        "restarts": 1,
        "queries": 5000,
        "seed": 0,
    }
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
    config = print_config(
        capsys,
        monkeypatch,
        "--config",
        str(CONFIGS / "experiment" / "fft5.yaml"),
        "--model.backbone",
        "robust_resnet50",
        "--config",
        str(CONFIGS / "loss" / "classic_at.yaml"),
        "--config",
        str(CONFIGS / "eps_schedule" / "linear_warmup.yaml"),
        "--config",
        str(CONFIGS / "data" / "flowers-102.yaml"),
        "--data.root",
        str(tmp_path),
    )
    model = config["model"]["init_args"]
    assert (model["backbone"], model["loss"], model["eps_schedule"]["name"]) == (
        "robust_resnet50",
        "classic_at",
        "linear_warmup",
    )
    assert config["trainer"]["max_epochs"] == 5 and config["data"]["init_args"]["num_workers"] == 8


def instantiate(tmp_path, *argv: str) -> RobustCLI:
    # digits: instantiating links num_classes from the data, which needs the dataset's files; digits is
    # bundled. Its class types batch_size `int`, so switching to it drops the config's null: re-given here.
    args = expand_dataset_names(
        [
            *argv,
            "--model.pretrained",
            "false",
            "--trainer.logger",
            "false",
            "--trainer.accelerator",
            "cpu",
            "--data",
            "digits",
            "--data.batch_size",
            "null",
        ]
    )
    return RobustCLI(
        RobustFineTuneModule,
        ImageClassificationDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        args=args,
        parser_kwargs={"exit_on_error": False},
    )


def test_batch_size_resolves_to_the_backbone_default(tmp_path):
    cli = instantiate(
        tmp_path,
        "--config",
        str(CONFIGS / "experiment" / "lp50.yaml"),
        "--model.backbone",
        "deit_tiny_patch16_224.fb_in1k",
        "--model.loss",
        "trades",
    )
    assert cli.datamodule.batch_size == 64  # small backbone: 128, halved for TRADES
    assert EffectiveBatchSize(1024).accumulation(cli.datamodule.batch_size, 1) == 16
    assert cli.trainer.max_epochs == 50
    trainable = {name for name, p in cli.model.model.net.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}  # LP: the head only


def test_classic_at_keeps_the_full_default(tmp_path):
    cli = instantiate(
        tmp_path,
        "--config",
        str(CONFIGS / "experiment" / "fft5.yaml"),
        "--model.backbone",
        "mobilenetv3_large_100.ra_in1k",
        "--model.loss",
        "classic_at",
    )
    assert cli.datamodule.batch_size == 128 and cli.trainer.max_epochs == 5
    assert EffectiveBatchSize(1024).accumulation(cli.datamodule.batch_size, 1) == 8
    cli.model.trainer = cli.trainer
    groups = {group["name"]: group["lr"] for group in cli.model.configure_optimizers()["optimizer"].param_groups}
    assert groups == {"backbone": 1e-4, "backbone_no_decay": 1e-4, "head": 1e-3, "head_no_decay": 1e-3}


def test_batch_size_null_survives_another_dataset(capsys, monkeypatch, tmp_path):
    """jsonargparse keeps init_args valid for the new class: the file datasets type batch_size `int | None`."""
    config = print_config(
        capsys,
        monkeypatch,
        "--config",
        str(CONFIGS / "experiment" / "fft50.yaml"),
        "--data",
        "caltech101",
        "--data.root",
        str(tmp_path),
    )
    assert config["data"]["init_args"]["batch_size"] is None


SHIPPED = sorted(path for path in CONFIGS.rglob("*.yaml") if path.parent.name != "sweep")  # sweeps: test_sweep_plan


def leaves(mapping: dict, prefix: str = "") -> dict[str, object]:
    """`a.b.c` -> value for every leaf of a config file, its composition key left out."""
    out: dict[str, object] = {}
    for key, value in mapping.items():
        if not prefix and key == "config":
            continue
        if isinstance(value, dict) and value:
            out |= leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: str(path.relative_to(CONFIGS)))
def test_every_shipped_config_parses_and_sets_what_it_says(capsys, monkeypatch, path, tmp_path):
    """Each file, given last (a group after an experiment), parses, and each value it sets is in the
    resolved configuration."""
    whole = path.parent.name == "experiment" or path.name in ("quickstart.yaml", "study.yaml")
    base = [] if whole else ["--config", str(CONFIGS / "experiment" / "fft5.yaml")]
    config = print_config(capsys, monkeypatch, *base, "--config", str(path))
    for dotted, value in leaves(yaml.safe_load(path.read_text())).items():
        resolved = config
        for part in dotted.split("."):
            resolved = resolved[part]
        if dotted.endswith("class_path"):
            assert resolved.rsplit(".", 1)[-1] == value.rsplit(".", 1)[-1], dotted
        else:
            assert resolved == pytest.approx(value) if isinstance(value, float) else resolved == value, dotted


def test_an_experiment_is_its_study_file_then_its_protocol(capsys, monkeypatch, tmp_path):
    composed = print_config(
        capsys, monkeypatch, "--config", str(CONFIGS / "experiment" / "lp50.yaml"), "--data.root", str(tmp_path)
    )
    by_hand = print_config(
        capsys,
        monkeypatch,
        "--config",
        str(CONFIGS / "study.yaml"),
        "--config",
        str(CONFIGS / "protocol" / "lp50.yaml"),
        "--data.root",
        str(tmp_path),
    )
    assert composed == by_hand


def test_a_config_that_lists_itself_or_a_missing_file_is_named(capsys, monkeypatch, tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("config: [loop.yaml]\n")
    missing = tmp_path / "missing.yaml"
    missing.write_text("config: [../nowhere.yaml]\n")
    listing = tmp_path / "listing.yaml"
    listing.write_text("- a\n- b\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    for path, expected in (
        (loop, "lists itself under `config`"),
        (missing, "lists '../nowhere.yaml' under `config`"),
        (listing, "must hold a mapping of options, got a list"),
        (broken, "is not valid YAML"),
    ):
        monkeypatch.setattr(sys, "argv", ["python -m app"])
        assert run_cli(["fit", "--config", str(path), "--print_config"]) == 2
        error = capsys.readouterr().err
        assert expected in error and str(path) in error


def test_a_parsed_norm_stays_a_plain_string_in_the_hyper_parameters(tmp_path):
    """hparams.yaml and results.json record strings, not the vocabulary's enum."""
    cli = instantiate(
        tmp_path,
        "--config",
        str(CONFIGS / "experiment" / "fft5.yaml"),
        "--model.backbone",
        "mobilenetv3_large_100.ra_in1k",
        "--model.attack.norm",
        "L2",
    )
    assert cli.model.hparams["attack"]["norm"] == "L2" and type(cli.model.hparams["attack"]["norm"]) is str
