"""Protocols decide what one real training step may change."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from lightning import Trainer

from datamodules import DigitsDataModule
from modules import RobustFineTuneModule
from modules.attacks import AttackConfig


def train_one_step(module: RobustFineTuneModule) -> dict[str, torch.Tensor]:
    """The state dict before one TRADES training step; the module is trained in place."""
    before = copy.deepcopy(module.model.net.state_dict())
    trainer = Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=DigitsDataModule(image_size=16, batch_size=16))
    return before


def changed(module: RobustFineTuneModule, before: dict[str, torch.Tensor]) -> set[str]:
    return {key for key, value in module.model.net.state_dict().items() if not torch.equal(value, before[key])}


def make(protocol: str, backbone: str = "test_resnet", **options) -> RobustFineTuneModule:
    torch.manual_seed(0)
    module = RobustFineTuneModule(
        backbone,
        10,
        pretrained=False,
        loss="trades",
        protocol=protocol,
        attack=AttackConfig(steps=2),
        cosine=False,
        lr_backbone=1e-2,
        **options,
    )
    for layer in module.model.net.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            # timm zero-initialises each residual block's last BatchNorm, which would leave that
            # branch with exactly zero gradient on a first step, and so unchanged.
            torch.nn.init.ones_(layer.weight)
    return module


def test_linear_probe_changes_the_head_only_and_no_batchnorm_statistic():
    module = make("linear_probe")
    before = train_one_step(module)
    assert changed(module, before) == {"fc.weight", "fc.bias"}
    assert all(not m.training for name, m in module.model.net.named_modules() if name and not name.startswith("fc"))


@pytest.mark.parametrize(
    "backbone, unit, blocks, trained",
    [
        ("test_resnet", "stage", 1, ("layer4.", "fc.")),
        ("test_resnet", "stage", 2, ("layer3.", "layer4.", "fc.")),
        ("resnet18", "block", 1, ("layer4.1.", "fc.")),  # resnet18: two blocks per stage
        ("resnet18", "block", 3, ("layer3.1.", "layer4.", "fc.")),
    ],
)
def test_partial_trains_exactly_the_last_blocks(backbone, unit, blocks, trained):
    module = make("partial", backbone, partial_unit=unit, partial_blocks=blocks)
    before = train_one_step(module)
    expected = {key for key in before if key.startswith(trained) and "num_batches_tracked" not in key}
    # Parameters and the BatchNorm statistics of the trained blocks move; nothing else does.
    assert changed(module, before) - {k for k in before if "num_batches_tracked" in k} == expected


def test_partial_with_more_blocks_than_the_backbone_has_is_an_error_before_training():
    with pytest.raises(ValueError, match="partial_blocks=9, but the backbone has only 5 stage groups"):
        make("partial", partial_unit="stage", partial_blocks=9)


def test_full_fine_tuning_changes_every_parameter():
    module = make("full")
    before = train_one_step(module)
    params = {name for name, _ in module.model.net.named_parameters()}
    assert params <= changed(module, before)


def test_lp_ft_probes_then_fine_tunes():
    module = make("lp_ft", lp_epochs=2)
    net = module.model.net
    for epoch, backbone_trains in [(0, False), (1, False), (2, True), (5, True)]:
        module.apply_protocol(epoch)
        assert net.layer1[0].conv1.weight.requires_grad is backbone_trains
        assert net.fc.weight.requires_grad


def test_lp_ft_refuses_several_devices_before_training():
    module = make("lp_ft", lp_epochs=2)
    module.trainer = SimpleNamespace(world_size=2)
    with pytest.raises(ValueError, match="protocol lp_ft cannot run on several devices"):
        module.setup("fit")
    module.trainer = SimpleNamespace(world_size=1)
    module.setup("fit")


def test_unknown_protocol_names_the_choices():
    with pytest.raises(ValueError, match="unknown protocol 'lp'; valid choices: full, linear_probe, partial, lp_ft"):
        make("lp")
