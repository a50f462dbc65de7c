"""The preprocessed cache gives the same pixels as decoding; `python -m app data` reports splits."""

from __future__ import annotations

import json

import torch

from app.commands.data import main
from datamodules import DATAMODULES


def test_cache_gives_the_same_eval_images_and_is_reused(write_layout, tmp_path):
    layout = write_layout("image-folder", splits=("all",), n_classes=3, per_class=8)
    options = {"root": str(layout.root), "image_size": 20, "num_workers": 0, "augment": False}
    plain = DATAMODULES.get("image-folder")(**options)
    cached = DATAMODULES.get("image-folder")(**options, cache=True, cache_dir=str(tmp_path / "cache"))
    cached.prepare_data()
    plain.setup(), cached.setup()
    files = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob("*.tmp*"))
    for split in ("train", "val", "test"):
        assert plain.datasets[split].items == cached.datasets[split].items
        for i in range(len(plain.datasets[split])):
            assert torch.equal(plain.datasets[split][i][0], cached.datasets[split][i][0])
    built = files[0].stat().st_mtime_ns
    again = DATAMODULES.get("image-folder")(**options, cache=True, cache_dir=str(tmp_path / "cache"))
    again.setup()
    assert sorted((tmp_path / "cache").glob("*.npy")) == files and files[0].stat().st_mtime_ns == built


def test_data_command_json(official_layout, capsys):
    layout = official_layout("flowers-102")
    assert main(["--dataset", "flowers-102", "--root", str(layout.root), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"dataset": "flowers-102", "num_classes": 102, "train": 204, "val": 204, "test": 306}


def test_data_command_human_output_and_error(official_layout, capsys, tmp_path):
    assert main(["--dataset", "oxford-iiit-pet", "--root", str(official_layout("oxford-iiit-pet").root)]) == 0
    out = capsys.readouterr().out
    assert "37" in out and "251" in out
    assert main(["--dataset", "caltech101", "--root", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err
