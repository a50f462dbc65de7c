"""Pretrained weights without network: read from the local cache, fetched ahead with
`python -m app weights fetch` (a local server stands in for the hub), one line when missing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from commands import app
from hub_server import Hub
from huggingface_hub import constants

from modules.model.backbones import create_classifier
from modules.model.pretrained import WeightsUnavailable

REPO_FILE = "timm/test_resnet.r160_in1k/model.safetensors"  # where timm looks for `test_resnet`'s weights


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed: connections are refused


@pytest.fixture
def hub_weights() -> dict[str, torch.Tensor]:
    """Weights of a randomly initialised `test_resnet`, as the hub would hold its pretrained ones."""
    torch.manual_seed(1)
    return timm.create_model("test_resnet", pretrained=False).state_dict()


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, in this process."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def unreachable(monkeypatch) -> None:
    """The hub's address answers nothing (huggingface_hub reads its URL template at import)."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")


@pytest.mark.parametrize(
    "why, offline",
    [
        ("HF_HUB_OFFLINE is set", lambda patch: patch.setattr(constants, "HF_HUB_OFFLINE", True)),
        ("cannot be reached: ", unreachable),
    ],
)
def test_missing_weights_without_network_fail_fast_with_what_to_do(offline_cache, monkeypatch, why, offline):
    offline(monkeypatch)
    started = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as error:
        create_classifier("test_resnet", num_classes=10, pretrained=True)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    assert "\n" not in message and why in message
    for part in (
        "backbone 'test_resnet'",
        "timm/test_resnet.r160_in1k",
        str(offline_cache),
        "python -m app weights fetch test_resnet",
        "HF_HOME",
        "--model.weights FILE",
    ):
        assert part in message, part


@pytest.mark.parametrize("offline", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}])
def test_fit_offline_without_the_weights_is_one_line(tmp_path, offline):
    started = time.perf_counter()
    done = app(
        "fit",
        "--config",
        "configs/quickstart.yaml",
        "--model.pretrained",
        "true",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        HF_HOME=str(tmp_path / "hf"),
        **offline,
    )
    assert time.perf_counter() - started < 30  # imports included; timm alone retried for about a minute
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: pretrained weights of backbone 'test_resnet'") and "Traceback" not in done.stderr
    assert f"not in the local cache {tmp_path / 'hf' / 'hub'}" in error
    assert not (tmp_path / "runs").exists()


def test_fetch_fills_the_cache_that_an_offline_run_then_reads(tmp_path, hub_weights, monkeypatch):
    hub = Hub({REPO_FILE: safetensors.torch.save(hub_weights)})
    home = tmp_path / "hf"
    fetched = app("weights", "fetch", "test_resnet", "robust_resnet50", HF_HOME=str(home), HF_ENDPOINT=hub.url)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    lines = fetched.stdout.strip().splitlines()
    assert lines[0].startswith("fetched    test_resnet") and lines[0].endswith("model.safetensors  (loads)")
    assert lines[1].startswith("local file robust_resnet50") and "--model.weights FILE (madry format" in lines[1]

    status = app("weights", "status", "test_resnet", HF_HOME=str(home), HF_HUB_OFFLINE="1")
    assert status.returncode == 0 and status.stdout.startswith("cached     test_resnet")
    again = app("weights", "fetch", "test_resnet", HF_HOME=str(home), HF_ENDPOINT=hub.url)
    assert again.stdout.startswith("cached     test_resnet")
    downloads = [request for request in hub.requests if request.startswith("GET") and "/resolve/" in request]
    assert downloads == ["GET /timm/test_resnet.r160_in1k/resolve/main/model.safetensors"]  # once: then cached

    # an offline process builds the classifier from the cache: exactly the hub's weights, no network
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = create_classifier("test_resnet", num_classes=3, pretrained=True)
    loaded = model.net.state_dict()
    head = {
        f"{name}.{key}"
        for name, module in model.net.named_modules()
        if module is model.net.get_classifier()
        for key in module.state_dict()
    }
    assert all(torch.equal(loaded[key], value) for key, value in hub_weights.items() if key not in head)
    hub.shutdown()


def test_fetch_reports_weights_that_do_not_load_and_names_it_cannot_find(tmp_path, hub_weights):
    broken = safetensors.torch.save({key: value for key, value in hub_weights.items() if "layer1" not in key})
    hub = Hub({REPO_FILE: broken})
    done = app(
        "weights",
        "fetch",
        "test_resnet",
        "vit_tiny_patch16_224.augreg_in21k",
        HF_HOME=str(tmp_path / "hf"),
        HF_ENDPOINT=hub.url,
    )
    assert done.returncode == 1
    first, second = done.stdout.strip().splitlines()[:2]
    assert first.startswith("fetched    test_resnet") and "does not load: " in first
    assert (
        second.startswith("failed     vit_tiny_patch16_224.augreg_in21k") and "has none of model.safetensors" in second
    )
    unknown = app("weights", "fetch", "resnet5O", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=hub.url)
    assert unknown.returncode == 2 and "unknown backbone 'resnet5O'" in unknown.stderr
    hub.shutdown()
