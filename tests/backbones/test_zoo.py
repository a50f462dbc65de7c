"""The registry of the study's 40 backbones against the paper's CSV, and `python -m app backbones`."""

from __future__ import annotations

import csv
import json

from app.__main__ import main
from modules.model.backbone_zoo import BACKBONES, backbone_info, default_batch_size, to_paper_name


def test_forty_backbones_five_robust():
    assert len(BACKBONES) == 40
    robust = {name for name, info in BACKBONES.items() if info.checkpoint_format}
    assert robust == {
        "robust_convnext_tiny",
        "robust_convnext_base",
        "robust_deit_small_patch16_224",
        "robust_vit_base_patch16_224",
        "robust_resnet50",
    }
    assert BACKBONES["robust_resnet50"].checkpoint_format == "madry"
    assert {BACKBONES[n].checkpoint_format for n in robust - {"robust_resnet50"}} == {"revisiting"}
    assert sum(info.size == "small" for info in BACKBONES.values()) == 7


def test_metadata_matches_the_paper_csv(paper_csv):
    with paper_csv.open() as f:
        rows = {row["backbone"]: row for row in csv.DictReader(f)}
    assert set(rows) == {info.paper_name for info in BACKBONES.values()}
    for info in BACKBONES.values():
        row = rows[info.paper_name]
        assert (info.size, info.model_type, info.pretraining_strategy, info.pretraining_data, info.short_name) == (
            row["model_size"],
            row["model_type"],
            row["pre_training_strategy"],
            row["pre_training_dataset"],
            row["backbone_name"],
        ), info.name
        assert info.pretraining_volume == int(float(row["volume_pre_training_data"])), info.name


def test_names_and_batch_sizes():
    assert backbone_info("efficientnet-b0").name == "tf_efficientnet_b0.in1k"
    assert to_paper_name("convnext_base.clip_laion2b") == "CLIP-convnext_base_w-laion2B-s13B-b82K"
    assert backbone_info("mobilevit-small").timm_name == "mobilevit_s.cvnets_in1k"
    assert backbone_info("robust_resnet50").timm_name == "resnet50"
    assert default_batch_size("convnext_tiny.fb_in1k", "classic_at") == 64
    assert default_batch_size("convnext_tiny.fb_in1k", "trades") == 32
    assert default_batch_size("vit_base_patch16_224.mae", "trades") == 16
    assert default_batch_size("test_resnet", "trades") is None


def test_backbones_table(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "40 backbones" in out and "robust_resnet50" in out and "CLIP-convnext_base_w-laion2B-s13B-b82K" in out


def test_backbones_json(capsys):
    assert main(["backbones", "--json", "--size", "small"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == 7
    assert {
        "timm_name",
        "paper_name",
        "size",
        "model_type",
        "pretraining_strategy",
        "pretraining_data",
        "pretraining_volume",
        "batch_size",
        "checkpoint_format",
    } <= set(entries[0])
