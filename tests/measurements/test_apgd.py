"""APGD and APGD-T (one loop, Linf / L2 / L1): the reference's trajectories, per-example step sizes,
restarts that add rather than repeat or overwrite."""

import copy

import pytest
import torch
import torch.nn.functional as F

from modules.attacks import APGD, AttackConfig, build_attack

CASES = [
    ("Linf", 4 / 255, "ce"),
    ("L2", 0.5, "ce"),
    ("L1", 4.0, "ce"),
    ("Linf", 4 / 255, "dlr-targeted"),
    ("L2", 0.5, "dlr-targeted"),
    ("L1", 4.0, "dlr-targeted"),
]


def robust(model, x, y):
    with torch.no_grad():
        return model(x).argmax(1) == y


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("norm,eps,loss", CASES, ids=[f"{n}-{lo}" for n, _, lo in CASES])
def test_follows_the_reference_trajectory(model, data, norm, eps, loss):
    """Same model, images, seed and settings as the reference's APGDAttack / APGDAttack_targeted: the
    same examples survive and (Linf, L2) the same adversarial points, up to float round-off."""
    reference = pytest.importorskip("pyautoattack.autopgd_base")
    x, y = data
    targets, largereps = (5, True) if norm == "L1" else (9, False)
    ours = APGD(
        model,
        norm,
        eps,
        20,
        random_start=True,
        keep="misclassified",
        loss=loss,
        n_target_classes=targets,
        use_largereps=largereps,
        seed=0,
    )(x, y)
    if loss == "ce":
        attack = reference.APGDAttack(
            model, n_iter=20, norm=norm, n_restarts=1, eps=eps, seed=0, loss="ce", device="cpu", use_largereps=largereps
        )
    else:
        attack = reference.APGDAttack_targeted(
            model,
            n_iter=20,
            norm=norm,
            n_restarts=1,
            eps=eps,
            seed=0,
            device="cpu",
            use_largereps=largereps,
            n_target_classes=targets,
        )
    theirs = attack.perturb(x, y)
    mine_robust, their_robust = robust(model, ours, y), robust(model, theirs, y)
    assert 0 < their_robust.sum() < robust(model, x, y).sum()  # the radius breaks some examples, not all
    assert torch.equal(mine_robust, their_robust)
    if norm != "L1":  # L1: the sparse step's ties at the top-k threshold may pick other coordinates
        assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("norm,eps", [("L2", 0.5), ("Linf", 4 / 255)])
def test_each_example_moves_by_its_own_step_size(model, data, norm, eps):
    """torchattacks' APGD-T moves every example in L2 by example 0's step size: then an example's attack
    depends on its neighbours in the batch. Here it is the same alone and in a batch. In float64: in
    float32 a convolution's round-off differs with the batch size on some CPUs, enough to flip the
    sign of a gradient coordinate of an Linf step after a few steps."""
    x, y = data[0].double(), data[1]
    model = copy.deepcopy(model).double()
    attack = APGD(model, norm, eps, 20, random_start=False, keep="max_loss", loss="dlr-targeted", n_target_classes=3)
    together = attack(x[:8], y[:8])
    alone = torch.cat([attack(x[i : i + 1], y[i : i + 1]) for i in range(8)])
    assert torch.allclose(together, alone, atol=1e-5), (together - alone).abs().flatten(1).amax(1)


def test_a_later_restart_never_overwrites_a_better_one(model, data):
    x, y = data
    one = APGD(model, "Linf", 4 / 255, 5, restarts=1, keep="max_loss")(x, y)
    three = APGD(model, "Linf", 4 / 255, 5, restarts=3, keep="max_loss")(x, y)
    with torch.no_grad():
        loss_one = F.cross_entropy(model(one), y, reduction="none")
        loss_three = F.cross_entropy(model(three), y, reduction="none")
    assert (loss_three >= loss_one - 1e-6).all()
    assert (loss_three > loss_one + 1e-6).any()  # the restarts from noise found more: they are not repeats


def test_evaluation_attacks_start_from_noise_as_the_reference(model, data):
    """Through the registry an evaluation APGD starts from noise (the seed matters); the paper's training
    attack starts from the clean image (the seed does not matter)."""
    x, y = data

    def run(purpose, seed):
        return build_attack(AttackConfig("apgd", "L2", 0.5, steps=5, seed=seed), model, purpose)(x, y)

    assert not torch.equal(run("eval", 0), run("eval", 1))
    assert torch.equal(run("train", 0), run("train", 1))


def test_apgd_t_names_why_it_needs_four_classes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with pytest.raises(ValueError, match="targeted DLR loss reads the 4 largest logits; the model has 3 classes"):
        APGD(model, "Linf", 0.1, 3, loss="dlr-targeted", keep="misclassified")(
            torch.rand(2, 3, 2, 2), torch.tensor([0, 1])
        )
