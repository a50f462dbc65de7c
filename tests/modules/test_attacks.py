"""The training and epoch-end attacks: where the perturbation lands, and what it leaves behind."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from modules.attacks import AttackConfig, attack_mode, build_attack

CASES = [
    AttackConfig("apgd", "Linf", 8 / 255, 5),
    AttackConfig("apgd", "L2", 0.5, 5),
    AttackConfig("apgd", "Linf", 8 / 255, 5, random_start=True),
    AttackConfig("pgd", "Linf", 8 / 255, 5, random_start=True),
    AttackConfig("pgd", "L2", 0.5, 5),
]
IDS = ["apgd-linf", "apgd-l2", "apgd-linf-random", "pgd-linf", "pgd-l2"]


def predicted(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x).argmax(1)


def perturbation_norms(x_adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    delta = (x_adv - x).flatten(1)
    return delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)


@pytest.mark.parametrize("purpose", ["train", "eval"])
@pytest.mark.parametrize("config", CASES, ids=IDS)
def test_perturbation_stays_in_ball_and_image_range(tiny_model, batch, config, purpose):
    x, y = batch
    if purpose == "eval":  # evaluation attacks leave misclassified images alone: label by the model's own guess
        y = predicted(tiny_model, x)
    x_adv = build_attack(config, tiny_model, purpose)(x, y)
    norms = perturbation_norms(x_adv, x, config.norm)
    assert (norms <= config.eps * (1 + 1e-5)).all(), norms
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert norms.max() > 0.5 * config.eps  # it moved: the attack actually ran


@pytest.mark.parametrize("config", CASES, ids=IDS)
def test_attack_restores_modes_and_leaves_batchnorm_and_parameters_alone(tiny_model, batch, config):
    x, y = batch
    tiny_model.train()
    tiny_model.net.layer1.eval()  # a frozen part, as linear_probe / partial keep it
    modes = {name: module.training for name, module in tiny_model.named_modules()}
    buffers = copy.deepcopy({k: v for k, v in tiny_model.state_dict().items() if "running" in k or "num_batches" in k})
    seen_modes = []
    hook = tiny_model.register_forward_pre_hook(lambda module, args: seen_modes.append(module.training))

    build_attack(config, tiny_model)(x, y)

    hook.remove()
    assert seen_modes and not any(seen_modes)  # every forward pass of the attack ran in eval mode
    assert {name: module.training for name, module in tiny_model.named_modules()} == modes
    for key, value in tiny_model.state_dict().items():
        if key in buffers:
            assert torch.equal(value, buffers[key]), key
    assert all(p.grad is None for p in tiny_model.parameters())


def test_attack_gets_gradients_under_lightnings_inference_mode(tiny_model, batch):
    x, y = batch
    tiny_model.eval()
    with torch.inference_mode():
        x = x.clone()  # an inference tensor, as Lightning's validation loop makes them
        y = predicted(tiny_model, x)  # every example correct, so every one is attacked
        x_adv = build_attack(AttackConfig("apgd", "Linf", 8 / 255, 5), tiny_model, "eval")(x, y)
    with torch.no_grad():
        clean = F.cross_entropy(tiny_model(x), y, reduction="none")
        attacked = F.cross_entropy(tiny_model(x_adv), y, reduction="none")
    assert (attacked > clean).float().mean() >= 0.75


def test_training_attack_raises_the_loss_of_every_example_including_misclassified(tiny_model, batch):
    x, y = batch
    tiny_model.eval()
    with torch.no_grad():
        clean_logits = tiny_model(x)
    misclassified = clean_logits.argmax(1) != y
    assert misclassified.any()  # a random model gets most wrong: the case torchattacks' APGD skips
    x_adv = build_attack(AttackConfig("apgd", "Linf", 8 / 255, 10), tiny_model, "train")(x, y)
    with torch.no_grad():
        clean = F.cross_entropy(clean_logits, y, reduction="none")
        attacked = F.cross_entropy(tiny_model(x_adv), y, reduction="none")
    assert (attacked >= clean).all()
    assert (attacked[misclassified] > clean[misclassified] + 1e-4).all()


def test_training_attack_without_random_start_is_deterministic(tiny_model, batch):
    x, y = batch
    attack = build_attack(AttackConfig(), tiny_model)
    assert torch.equal(attack(x, y), attack(x, y))


def test_attack_under_bf16_autocast_stays_in_ball(tiny_model, batch):
    x, y = batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = build_attack(AttackConfig("apgd", "Linf", 8 / 255, 5), tiny_model)(x, y)
    assert x_adv.dtype == torch.float32
    assert perturbation_norms(x_adv, x, "Linf").max() <= 8 / 255 + 1e-6
    assert (x_adv != x).any()


def test_attack_rejects_images_outside_unit_range(tiny_model, batch):
    x, y = batch
    with pytest.raises(ValueError, match=r"expects images in \[0, 1\]"):
        build_attack(AttackConfig(), tiny_model)(x * 2 - 1, y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": -0.1}, "eps must be a number >= 0"),
        ({"eps": "big"}, "eps must be a number >= 0"),
        ({"norm": "L3"}, "unknown attack norm 'L3'; valid choices: Linf, L2, L1"),
        (
            {"algorithm": "fgsm2"},
            "unknown attack algorithm 'fgsm2'; valid choices: none, apgd, apgd-t, l1-apgd, pgd, "
            "fgsm-rs, n-fgsm, square, fab, autoattack",
        ),
        ({"algorithm": "l1-apgd"}, "attack 'l1-apgd' does not support norm 'Linf'; valid norms for 'l1-apgd': L1"),
        (
            {"algorithm": "pgd", "norm": "L1"},
            "attack 'pgd' does not support norm 'L1'; valid norms for 'pgd': Linf, L2",
        ),
    ],
)
def test_bad_attack_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttackConfig(**kwargs)


def test_attack_mode_restores_flags_after_an_error(tiny_model):
    tiny_model.train()
    with pytest.raises(RuntimeError), attack_mode(tiny_model):
        assert not tiny_model.training
        raise RuntimeError("boom")
    assert all(module.training for module in tiny_model.modules())


@pytest.mark.parametrize("name, reach", [("fgsm-rs", 1.0), ("n-fgsm", 3.0)])
def test_single_step_attacks_raise_the_loss_within_their_reach(tiny_model, batch, name, reach):
    x, y = batch
    tiny_model.eval()
    eps = 8 / 255
    torch.manual_seed(0)
    x_adv = build_attack(AttackConfig(name, "Linf", eps, steps=1), tiny_model, "train")(x, y)
    norms = perturbation_norms(x_adv, x, "Linf")
    assert (norms <= reach * eps + 1e-6).all() and x_adv.min() >= 0 and x_adv.max() <= 1
    assert norms.max() > (reach - 0.5) * eps  # N-FGSM is not projected back to eps: it goes beyond
    with torch.no_grad():
        clean = F.cross_entropy(tiny_model(x), y)
        attacked = F.cross_entropy(tiny_model(x_adv), y)
    assert attacked > clean
    torch.manual_seed(0)
    again = build_attack(AttackConfig(name, "Linf", eps, steps=1), tiny_model, "train")(x, y)
    assert torch.equal(again, x_adv)  # the noise comes from the (checkpointed) global generator
    assert not torch.equal(build_attack(AttackConfig(name, "Linf", eps), tiny_model, "train")(x, y), x_adv)
