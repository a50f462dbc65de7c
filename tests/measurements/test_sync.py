"""On a GPU, an attack's steps never wait for the device: masks instead of indexing by boolean masks,
counters kept on the device, Python branching only on Python numbers. Skipped without CUDA."""

import copy

import pytest
import torch

from modules.attacks import APGD, AttackConfig, build_attack, eval_mode

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CASES = [
    ("Linf", 8 / 255, "ce"),
    ("L2", 0.5, "ce"),
    ("L1", 5.0, "ce"),
    ("Linf", 8 / 255, "dlr-targeted"),
    ("L2", 0.5, "dlr-targeted"),
]


def no_sync(work):
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        return work()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("norm,eps,loss", CASES, ids=[f"{n}-{lo}" for n, _, lo in CASES])
def test_apgd_steps_do_not_synchronise(model, data, norm, eps, loss):
    model = copy.deepcopy(model).cuda().eval()
    x, y = data[0].cuda(), data[1].cuda()
    attack = APGD(model, norm, eps, 10, random_start=True, loss=loss, n_target_classes=3)
    target = attack._target(x, 2) if loss != "ce" else None
    start = attack._start(x, eps, None, True, torch.Generator().manual_seed(0))  # drawn on the CPU, as the reference
    with eval_mode(model):
        best, robust, _, _ = no_sync(lambda: attack._single_run(x, y, target, eps, 10, start, resumed=False))
    assert best.shape == x.shape and robust.dtype == torch.bool


@pytest.mark.parametrize("name", ["fgsm-rs", "n-fgsm", "apgd"])
def test_training_attacks_do_not_synchronise(model, data, name):
    model = copy.deepcopy(model).cuda().eval()
    x, y = data[0].cuda(), data[1].cuda()
    attack = build_attack(AttackConfig(name, "Linf", 8 / 255, steps=5), model, "train")
    attack(x, y)  # warm-up (CUDA context, kernels)
    adversarial = no_sync(lambda: attack.forward(x, y))
    assert adversarial.shape == x.shape
