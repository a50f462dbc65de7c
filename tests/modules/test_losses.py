from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modules.attacks import AttackConfig, build_attack
from modules.model.losses import build_loss


@pytest.fixture
def attack(tiny_model):
    return build_attack(AttackConfig("apgd", "Linf", 8 / 255, 3), tiny_model)


def test_trades_with_beta_zero_equals_clean_cross_entropy(tiny_model, batch, attack):
    x, y = batch
    tiny_model.eval()  # BatchNorm in eval, so both losses see the same function
    trades = build_loss("trades", beta=0.0)(tiny_model, x, y, attack)
    ce = build_loss("ce")(tiny_model, x, y, None)
    torch.testing.assert_close(trades.loss, ce.loss)
    torch.testing.assert_close(ce.loss, F.cross_entropy(tiny_model(x), y))


def test_trades_adds_beta_times_a_positive_kl_term(tiny_model, batch, attack):
    x, y = batch
    tiny_model.eval()
    base = build_loss("trades", beta=0.0)(tiny_model, x, y, attack).loss
    one = build_loss("trades", beta=1.0)(tiny_model, x, y, attack).loss
    six = build_loss("trades", beta=6.0)(tiny_model, x, y, attack).loss
    assert one > base
    torch.testing.assert_close(six - base, 6 * (one - base), rtol=1e-4, atol=1e-6)


def test_classic_at_is_cross_entropy_on_the_adversarial_example(tiny_model, batch, attack):
    x, y = batch
    tiny_model.eval()
    out = build_loss("classic_at")(tiny_model, x, y, attack)
    x_adv = attack(x, y)
    torch.testing.assert_close(out.loss, F.cross_entropy(tiny_model(x_adv), y))
    assert out.loss > F.cross_entropy(tiny_model(x), y)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'madry'; valid choices: ce, classic_at, trades"):
        build_loss("madry")
