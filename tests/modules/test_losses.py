from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from modules import RobustFineTuneModule
from modules.attacks import AttackConfig, build_attack
from modules.model.backbone_zoo import default_batch_size
from modules.model.losses import LOSSES, Loss, LossOutput, build_loss, settings_of
from modules.registry import ConfigError


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


@dataclass
class LabelSmoothedAT(Loss):
    """A loss from outside the package, with a setting of its own and a cost of its own."""

    batch_factor: ClassVar[float] = 0.25
    smoothing: float = 0.1

    def __call__(self, model, x, y, attack):
        logits = model(attack(x, y))
        return LossOutput(F.cross_entropy(logits.float(), y, label_smoothing=self.smoothing), logits, logits)


def test_a_loss_with_its_own_setting_and_cost_is_one_registration(monkeypatch):
    monkeypatch.setitem(LOSSES._entries, "smoothed_at", LabelSmoothedAT)
    module = RobustFineTuneModule(
        "test_resnet", 10, pretrained=False, loss="smoothed_at", loss_settings={"smoothed_at": {"smoothing": 0.2}}
    )
    assert module.loss_fn == LabelSmoothedAT(smoothing=0.2)
    assert module.hparams["loss_settings"] == {"smoothed_at": {"smoothing": 0.2}}
    assert default_batch_size("convnext_tiny.fb_in1k", "smoothed_at") == 16  # 64 x 0.25
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    out = module.loss_fn(module.model, x, y, module.training_attack())
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, y, label_smoothing=0.2))


def test_loss_settings_are_checked_for_every_loss_and_kept_per_loss():
    with pytest.raises(ConfigError, match="loss 'classic_at' has no setting 'beta'; its settings: none"):
        RobustFineTuneModule(
            "test_resnet", 10, pretrained=False, loss="trades", loss_settings={"classic_at": {"beta": 2}}
        )
    with pytest.raises(ConfigError, match="loss 'trades' has no setting 'gamma'; its settings: beta"):
        settings_of("trades", {"trades": {"gamma": 2}})
    with pytest.raises(ConfigError, match="must map loss names to their settings"):
        settings_of("trades", {"beta": 6.0})
    module = RobustFineTuneModule(
        "test_resnet", 10, pretrained=False, loss="classic_at", loss_settings={"trades": {"beta": 6.0}}
    )
    assert module.hparams["loss_settings"] == {"trades": {"beta": 6.0}, "classic_at": {}}
    assert build_loss("trades", **settings_of("trades", module.hparams["loss_settings"])).beta == 6.0
