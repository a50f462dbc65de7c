"""Square Attack in L1 (the port of the reference's `SquareAttack(norm='L1')`)."""

import pytest
import torch

from modules.attacks.square_l1 import SquareL1, p_selection


def l1(adv, x):
    return (adv - x).flatten(1).abs().sum(1)


def predicted(model, x):
    """Label each image with the model's own prediction, so that every example is attacked."""
    with torch.no_grad():
        return model.eval()(x).argmax(1)


def robust_accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_every_example_stays_in_the_l1_ball_and_the_box(tiny_model, batch):
    x, _ = batch
    y = predicted(tiny_model, x)
    eps = 2.0
    adv = SquareL1(tiny_model, eps=eps, n_queries=200, seed=0)(x, y)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert adv.min() >= 0 and adv.max() <= 1
    assert (l1(adv, x) <= eps * (1 + 1e-4)).all(), l1(adv, x).max()
    assert not adv.requires_grad


def test_an_undefended_model_is_broken_at_large_eps_and_not_at_zero(tiny_model, batch):
    x, _ = batch
    y = predicted(tiny_model, x)
    assert robust_accuracy(tiny_model, SquareL1(tiny_model, eps=30.0, n_queries=200, seed=0)(x, y), y) <= 0.25
    assert torch.equal(SquareL1(tiny_model, eps=0.0, n_queries=200, seed=0)(x, y), x)


def test_misclassified_examples_are_returned_unchanged(tiny_model, batch):
    x, y = batch
    wrong = predicted(tiny_model, x) != y
    assert wrong.any()
    adv = SquareL1(tiny_model, eps=30.0, n_queries=20, seed=0)(x, y)
    assert torch.equal(adv[wrong], x[wrong])


def test_the_p_schedule_is_the_reference_one():
    assert [p_selection(0.8, it, 5000) for it in (0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000,
                                                  2001, 4000, 4001, 6000, 6001, 8000, 8001)] == \
        [0.8, 0.8] + [0.8 / d for d in (2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512)]
    assert p_selection(0.8, 100, 1000, rescale_schedule=True) == 0.8 / 16  # rescaled to iteration 1000


@pytest.mark.reference
@pytest.mark.slow
def test_agrees_with_the_reference_square_l1(model, data):
    reference = pytest.importorskip("pyautoattack.square")
    x, y = data
    eps, queries = 12.0, 1000  # a radius where the tiny trained model is partly robust
    mine = SquareL1(model, eps=eps, n_queries=queries, p_init=0.8, seed=0)(x, y)
    attack = reference.SquareAttack(model, norm="L1", eps=eps, n_queries=queries, p_init=0.8, n_restarts=1, seed=0,
                                    resc_schedule=False, device="cpu")
    theirs = attack.perturb(x, y)
    ours_acc, theirs_acc = robust_accuracy(model, mine, y), robust_accuracy(model, theirs, y)
    clean = robust_accuracy(model, x, y)
    print(f"Square L1 eps {eps}, {queries} queries: clean {clean:.3f}, ours {ours_acc:.3f}, reference {theirs_acc:.3f}")
    assert ours_acc < clean  # the comparison means something: the attack breaks some examples
    assert abs(ours_acc - theirs_acc) <= 3 / len(y)
    assert (l1(mine, x) <= eps * (1 + 1e-4)).all() and mine.min() >= 0 and mine.max() <= 1
