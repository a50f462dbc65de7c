"""`--model.compile` and `--model.channels_last`: what they change, and what they must not (the weights' names)."""

from __future__ import annotations

import torch

from modules import RobustFineTuneModule


def test_compile_wraps_the_classifier_and_keeps_checkpoints_interchangeable():
    compiled = RobustFineTuneModule("test_resnet", 10, pretrained=False, compile=True)
    plain = RobustFineTuneModule("test_resnet", 10, pretrained=False)
    assert compiled.model._compiled_call_impl is not None and plain.model._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no "_orig_mod." prefixes
    plain.load_state_dict(compiled.state_dict())  # a compiled run's checkpoint loads into a plain model


def test_channels_last_converts_the_weights_and_every_batch():
    module = RobustFineTuneModule("test_resnet", 10, pretrained=False, channels_last=True)
    conv = next(m for m in module.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, y = torch.rand(2, 3, 16, 16), torch.tensor([0, 1])
    moved, labels = module.on_after_batch_transfer((x, y), 0)
    assert moved.is_contiguous(memory_format=torch.channels_last) and torch.equal(moved, x) and labels is y
    plain = RobustFineTuneModule("test_resnet", 10, pretrained=False)
    assert plain.on_after_batch_transfer((x, y), 0)[0] is x
