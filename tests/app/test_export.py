"""A fine-tuned model leaves the app as a timm / Hugging Face folder with a robustness model card, is
loaded by timm in one line, and is measured again without its checkpoint (app test, or `measure`)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time

import pytest
import timm
import torch
from app_runs import COLUMNS, ROOT, environment, results, run_app, scalars, the_run
from huggingface_hub import ModelCard
from torch.utils.data import DataLoader

from app.__main__ import main
from datamodules import DigitsDataModule
from modules.evaluation import measure
from modules.model.backbones import create_classifier

EXPORT_FILES = {"config.json", "model.safetensors", "results.json", "README.md"}


@pytest.fixture(scope="module")
def exported(uninterrupted, tmp_path_factory):
    """The short quickstart run's tested checkpoint (best.ckpt), exported with the command."""
    out = tmp_path_factory.mktemp("export") / "digits-robust"
    done = run_app(["export", "--ckpt", str(uninterrupted / "checkpoints" / "best.ckpt"), "--out", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def checkpoint_model(checkpoint):
    """The checkpoint's classifier as the app builds it: the timm network inside, normalization around."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model = create_classifier("test_resnet", num_classes=10, pretrained=False)
    model.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
    return model.eval()


def test_timm_loads_the_export_in_one_line_with_the_checkpoints_logits(uninterrupted, exported):
    assert {path.name for path in exported.iterdir()} == EXPORT_FILES
    umask = os.umask(0)
    os.umask(umask)
    assert {stat.S_IMODE(path.stat().st_mode) for path in exported.iterdir()} == {0o666 & ~umask}
    net = timm.create_model(f"local-dir:{exported}", pretrained=True).eval()
    reference = checkpoint_model(uninterrupted / "checkpoints" / "best.ckpt")
    images = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    normalized = (images - reference.mean) / reference.std
    with torch.no_grad():
        assert torch.equal(net(normalized), reference.net(normalized))
    config = timm.data.resolve_data_config({}, model=net)
    assert config["input_size"] == (3, 16, 16) and config["crop_pct"] == 1.0 and config["crop_mode"] == "squash"
    assert torch.equal(torch.tensor(config["mean"]).view(1, 3, 1, 1), reference.mean)
    assert torch.equal(torch.tensor(config["std"]).view(1, 3, 1, 1), reference.std)
    assert net.pretrained_cfg["label_names"] == [str(digit) for digit in range(10)]


def test_the_card_indexes_every_figure_of_results_json(uninterrupted, exported):
    record = results(uninterrupted)
    card = ModelCard.load(exported / "README.md")
    assert card.data.library_name == "timm" and card.data.datasets == ["digits"]
    assert {"image-classification", "adversarial-robustness"} <= set(card.data.tags)
    assert card.data.base_model is None  # the quickstart starts from random weights
    figures = {result.metric_config: result.metric_value for result in card.data.eval_results}
    assert figures == {
        name: round(record[column], 6)
        for name, column in zip(("clean", "linf", "l2", "l1", "common"), COLUMNS, strict=True)
    }
    linf = next(result for result in card.data.eval_results if result.metric_config == "linf")
    assert linf.metric_args["eps"] == pytest.approx(4 / 255) and linf.metric_args["attack"] == "apgd"
    assert linf.dataset_args == {"num_images": record["num_test_images"]}
    assert "Linf robust accuracy (APGD-CE, 2 steps, eps 4/255)" in card.text
    assert f"local-dir:{exported}" in card.text and "arXiv 2508.14079" in card.text


def test_the_export_measured_without_its_checkpoint_gives_the_checkpoints_figures(uninterrupted, exported, tmp_path):
    done = run_app(
        [
            "test",
            "--config",
            str(uninterrupted / "config.yaml"),
            "--model.backbone",
            f"local-dir:{exported}",
            "--model.keep_head",
            "true",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = the_run(tmp_path)
    measured, original = results(run), results(uninterrupted)
    assert {column: measured[column] for column in COLUMNS} == {column: original[column] for column in COLUMNS}
    assert measured["tested_model"] == f"local-dir:{exported}" and measured["tested_checkpoint"] is None
    assert scalars(run)["test/linf_acc"][-1][1] == pytest.approx(original["Linf_acc"])


def test_measure_in_a_notebook_gives_the_app_tests_figures(uninterrupted, exported):
    net = timm.create_model(f"local-dir:{exported}", pretrained=True)
    config = timm.data.resolve_data_config({}, model=net)
    data = DigitsDataModule(image_size=16)
    data.setup()
    record = results(uninterrupted)
    eps = {name: settings["eps"] for name, settings in record["attacks"].items() if "eps" in settings}
    with torch.no_grad():  # a notebook's habit: the attacks still get their gradients
        result = measure(
            net,
            DataLoader(data.datasets["test"], batch_size=64),
            mean=config["mean"],
            std=config["std"],
            eps=eps,
            attack="apgd",
            steps=2,
            device="cpu",
        )
    assert result.accuracy == {column: record[column] for column in COLUMNS}
    assert len(result.outcomes["linf"]) == record["num_test_images"]
    assert sum(row[0] for row in result.outcomes["linf"].values()) == round(record["Linf_acc"] * 360)
    assert result.report["broken_by"] == record["broken_by"]


def test_the_readme_library_example_runs():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Measure your own model") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = eval(done.stdout.strip().splitlines()[-1])  # the example prints result.accuracy
    assert set(figures) == {"clean_acc", "Linf_acc", "L2_acc"} and all(0 <= v <= 1 for v in figures.values())


def one_line(done, *parts: str) -> None:
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    for part in parts:
        assert part in lines[0], lines[0]


def test_bad_export_destinations_are_one_line_and_write_nothing(uninterrupted, tmp_path):
    ckpt = str(uninterrupted / "checkpoints" / "best.ckpt")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    one_line(run_app(["export", "--ckpt", ckpt, "--out", str(notes)]), "exists and is not an export folder", "todo.txt")
    assert [path.name for path in notes.iterdir()] == ["todo.txt"]
    (tmp_path / "file").write_text("")
    one_line(run_app(["export", "--ckpt", ckpt, "--out", str(tmp_path / "file")]), "is a file")
    one_line(run_app(["export", "--ckpt", ckpt, "--out", str(tmp_path / "m.safetensors")]), "give a folder")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "notes"]


@pytest.mark.parametrize(
    "env, why",
    [({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"), ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot be reached")],
)
def test_push_without_network_fails_within_seconds_after_writing_the_folder(uninterrupted, tmp_path, env, why):
    out = tmp_path / "m"
    ckpt = str(uninterrupted / "checkpoints" / "best.ckpt")
    started = time.perf_counter()
    done = run_app(["export", "--ckpt", ckpt, "--out", str(out), "--push", "me/digits-robust"], **env)
    assert time.perf_counter() - started < 30  # the interpreter's start included; the hub gets 5 s
    one_line(done, "--push me/digits-robust", why, f"the folder {out} is written")
    assert {path.name for path in out.iterdir()} == EXPORT_FILES
    assert "hf-hub:me/digits-robust" in (out / "README.md").read_text()


def test_a_model_without_checkpoint_needs_its_head(tmp_path, capsys):
    plain = ["test", "--config", "configs/quickstart.yaml", "--trainer.logger.init_args.save_dir", str(tmp_path)]

    def refused(*overrides: str) -> str:
        assert main([*plain, *overrides]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
        return err

    assert "test needs a checkpoint" in refused() and "--model.keep_head true" in refused()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"{empty} has no config.json" in refused(
        "--model.backbone", f"local-dir:{empty}", "--model.keep_head", "true"
    )
    five = tmp_path / "five"
    timm.models.save_for_hf(timm.create_model("test_resnet", num_classes=5), str(five), safe_serialization=True)
    message = refused("--model.backbone", f"local-dir:{five}", "--model.keep_head", "true")
    assert f"the head of backbone 'local-dir:{five}' has 5 classes but the dataset has 10" in message
    assert not (tmp_path / "quickstart").exists()
