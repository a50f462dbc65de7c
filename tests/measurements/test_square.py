"""Square Attack in Linf, L2 and L1 (the port of the reference's `SquareAttack`)."""

import pytest
import torch

from modules.attacks.norms import lp_norm
from modules.attacks.square import Square, p_selection, window_mass

NORMS = ("Linf", "L2", "L1")
MODERATE = {"Linf": 8 / 255, "L2": 1.0, "L1": 2.0}  # the tiny model loses some examples
LARGE = {"Linf": 0.5, "L2": 8.0, "L1": 30.0}
PARTLY_ROBUST = {"Linf": 8 / 255, "L2": 1.0, "L1": 12.0}  # the trained `model` keeps some but not all of `data`


def predicted(model, x):
    """Label each image with the model's own prediction, so that every example is attacked."""
    with torch.no_grad():
        return model.eval()(x).argmax(1)


def correct(model, x, y):
    with torch.no_grad():
        return model(x).argmax(1) == y


@pytest.mark.parametrize("norm", NORMS)
def test_every_example_stays_in_its_ball_and_the_box(tiny_model, batch, norm):
    x, _ = batch
    y = predicted(tiny_model, x)
    eps = MODERATE[norm]
    adv = Square(tiny_model, norm, eps, n_queries=100, seed=0)(x, y)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert adv.min() >= 0 and adv.max() <= 1
    assert (lp_norm(adv - x, norm) <= eps * (1 + 1e-4)).all(), lp_norm(adv - x, norm).max()
    assert not adv.requires_grad
    assert not torch.equal(adv, x)  # it did move some examples


@pytest.mark.parametrize("norm", NORMS)
def test_an_undefended_model_is_broken_at_large_eps_and_not_at_zero(tiny_model, batch, norm):
    x, _ = batch
    y = predicted(tiny_model, x)
    adv = Square(tiny_model, norm, LARGE[norm], n_queries=200, seed=0)(x, y)
    assert correct(tiny_model, adv, y).float().mean() <= 0.25
    assert torch.equal(Square(tiny_model, norm, 0.0, n_queries=200, seed=0)(x, y), x)


@pytest.mark.parametrize("norm", NORMS)
def test_misclassified_examples_are_returned_unchanged(tiny_model, batch, norm):
    x, _ = batch
    y = predicted(tiny_model, x)
    y[::2] = (y[::2] + 1) % 10  # every other example is misclassified from the start
    wrong = ~correct(tiny_model, x, y)
    adv = Square(tiny_model, norm, LARGE[norm], n_queries=20, seed=0)(x, y)
    assert torch.equal(adv[wrong], x[wrong])
    assert not torch.equal(adv[~wrong], x[~wrong])  # the others were attacked


def test_the_p_schedule_is_the_reference_one():
    assert [
        p_selection(0.8, it, 5000)
        for it in (0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001, 6000, 6001, 8000, 8001)
    ] == [0.8, 0.8] + [0.8 / d for d in (2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512)]
    assert p_selection(0.8, 100, 1000, rescale_schedule=True) == 0.8 / 16  # rescaled to iteration 1000


@pytest.mark.parametrize("norm", NORMS)
def test_the_global_rng_is_untouched(tiny_model, batch, norm):
    x, _ = batch
    y = predicted(tiny_model, x)
    state = torch.get_rng_state()
    Square(tiny_model, norm, MODERATE[norm], n_queries=10, seed=3)(x, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_an_unknown_norm_is_refused(tiny_model):
    with pytest.raises(ValueError, match="'L0'.*Linf"):
        Square(tiny_model, "L0", 1.0)


@pytest.mark.parametrize("norm", ["L2", "L1"])
def test_the_window_mass_is_taken_per_channel(norm):
    """The reference rescales each channel of the new window by its own channel's mass; torchattacks takes
    one norm over all channels, which gives every channel the mass of all of them."""
    delta = torch.zeros(2, 3, 8, 8)
    delta[:, 0] = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0)) - 0.5  # all in channel 0
    mask = torch.zeros_like(delta)
    mask[:, :, 2:7, 1:6] = 1.0
    mass = window_mass(delta, mask, norm)
    assert mass.shape == (2, 3, 1, 1)
    torch.testing.assert_close(mass[:, 0].flatten(), lp_norm((delta * mask)[:, 0], norm))
    assert (mass[:, 1:] == 0).all()
    torchattacks_mass = lp_norm(delta * mask, norm).view(-1, 1, 1, 1).expand_as(mass)
    assert not torch.allclose(mass, torchattacks_mass)

    spread = delta[:, :1].expand(-1, 3, -1, -1)  # the same mass in every channel: each channel counts once
    power = 2 if norm == "L2" else 1
    torch.testing.assert_close(
        (window_mass(spread, mask, norm) ** power).sum(1).flatten(), lp_norm(spread * mask, norm) ** power
    )


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("norm", NORMS)
def test_agrees_with_the_reference_square(model, data, norm):
    reference = pytest.importorskip("pyautoattack.square")
    x, y = data
    eps, queries = PARTLY_ROBUST[norm], 1000
    mine = Square(model, norm, eps, n_queries=queries, p_init=0.8, n_restarts=1, seed=0)(x, y)
    attack = reference.SquareAttack(
        model,
        norm=norm,
        eps=eps,
        n_queries=queries,
        p_init=0.8,
        n_restarts=1,
        seed=0,
        resc_schedule=False,
        device="cpu",
    )
    with torch.random.fork_rng(devices=[]):  # the reference reseeds the global RNG
        theirs = attack.perturb(x, y)
    ours_robust, theirs_robust = correct(model, mine, y), correct(model, theirs, y)
    clean = correct(model, x, y).float().mean().item()
    gap = (mine - theirs).abs().max().item()
    print(
        f"\nSquare {norm} eps {eps:.4g}, {queries} queries: clean {clean:.3f}, "
        f"ours {ours_robust.float().mean():.3f}, reference {theirs_robust.float().mean():.3f}, "
        f"same flags {torch.equal(ours_robust, theirs_robust)}, "
        f"max |ours - reference| {gap:.2e}"
    )
    assert 0 < ours_robust.float().mean() < clean  # partly robust: the comparison means something
    assert torch.equal(ours_robust, theirs_robust)
    torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
    assert (lp_norm(mine - x, norm) <= eps * (1 + 1e-4)).all() and mine.min() >= 0 and mine.max() <= 1
