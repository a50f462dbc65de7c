"""The install on an offline node whose image already has torch, lightning, timm and tensorboard (a GPU
cluster's stock PyTorch image): a wheelhouse of what it lacks (.ci/wheelhouse.py, built here where
the index is), installed with `--no-index` into a fresh venv that sees an existing torch, then the
suite, `python -m app bench --suite OUT --quick`, run by that install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from app_runs import ROOT, environment

sys.path.insert(0, str(ROOT / ".ci"))
from wheelhouse import STOCK, closure  # noqa: E402

UNITS = {"s", "s/image", "h", "images/s", "MiB", "fraction of peak", "x floor", "images (TRADES step)", "x plain"}


def stock_image(folder: Path) -> Path:
    """The stock packages and what they need, installed here, seen through links in one folder (as an
    image's site-packages would be): nothing of the project's own dependencies beyond them."""
    folder.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in closure(list(STOCK)):
        for top in {path.parts[0] for path in metadata.distribution(name).files or [] if path.parts[0] != ".."}:
            if (site / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(site / top)
    return folder


def run(args: list[str], cwd: Path, timeout: float, offline: bool = False) -> subprocess.CompletedProcess:
    """`offline`: pip sees no configuration (this machine's adds local wheel folders and indexes)."""
    env = environment()
    if offline:
        env = {key: value for key, value in env.items() if not key.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def offline_install(tmp_path_factory) -> Path:
    """A fresh venv holding the project from the wheelhouse alone, torch & co. from the 'image'."""
    base = tmp_path_factory.mktemp("airgap")
    built = run([sys.executable, str(ROOT / ".ci" / "wheelhouse.py"), str(base / "wheelhouse")], ROOT, 900)
    assert built.returncode == 0, built.stderr[-3000:]
    venv = base / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], base, 300).returncode == 0
    packages = next((venv / "lib").glob("python3*/site-packages"))
    (packages / "stock-image.pth").write_text(str(stock_image(base / "image")) + "\n")

    # a wheel missing from the wheelhouse is named by the install, and nothing is half-installed
    partial = base / "partial"
    shutil.copytree(base / "wheelhouse", partial)
    for wheel in partial.glob("torchattacks-*"):
        wheel.unlink()
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links"]
    refused = run([*pip, str(partial), "robust-finetune"], base, 600, offline=True)
    assert refused.returncode != 0 and "torchattacks" in refused.stderr, refused.stderr[-2000:]
    installed = run([*pip, str(base / "wheelhouse"), "robust-finetune"], base, 600, offline=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_the_offline_install_runs_the_quick_suite(offline_install, tmp_path):
    python = str(offline_install / "bin" / "python")
    where = run([python, "-c", "import app, torch, torchattacks; print(app.__file__, torch.__file__)"], tmp_path, 120)
    app_file, torch_file = where.stdout.split()
    assert app_file.startswith(str(offline_install)) and "image" in Path(torch_file).parts  # not the repository's
    (tmp_path / "configs").symlink_to(ROOT / "configs")  # the suite's fit reads the study's configs
    done = run(
        [python, "-m", "app", "bench", "--suite", str(tmp_path / "suite"), "--quick", "--device", "cpu"], tmp_path, 900
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    result = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert result["passed"] is True and result["finished"] is True and result["failed"] == []
    assert {"torch", "cuda", "cudnn", "device_name", "bf16_supported", "distributed_backends"} <= set(
        result["environment"]
    )
    statuses = {check["name"]: check["status"] for check in result["checks"]}
    assert statuses == {
        "test attacks in fp32 under bf16": "passed",
        "cuda tests": "skipped",
        "app fit (fft50.yaml, bf16-mixed)": "passed",
    }
    figures = result["figures"]
    assert all(set(f) == {"value", "unit"} and f["unit"] in UNITS for f in figures.values())
    for name in ("fit.train_images_per_s", "autoattack.linf_seconds_per_image", "bench.resnet18.train_images_per_s"):
        assert figures[name]["value"] > 0, name
    assert figures["autoattack.five_measurements_1000_images"]["unit"] == "h"
    assert "torch.compile" in result["skipped"]["compare"]
    assert result["bench"][0]["backbone"] == "resnet18"  # what `app sweep --bench` reads
    assert done.stdout.rstrip().endswith("s in all.") and "| app fit (fft50.yaml, bf16-mixed) | passed |" in done.stdout
