"""The standard AutoAttack against the reference implementation (pyautoattack), same model and images,
in every norm, at a radius where the model is partly robust: robust accuracy, which examples
survive, and how many each component breaks."""

import logging
import re
import time

import pytest
import torch

from modules.attacks import AutoAttack
from modules.attacks.base import BROKEN, ROBUST
from modules.attacks.autoattack import COMPONENTS

# radii where the tiny trained model of conftest.py keeps between 20% and 90% of the 32 images
RADII = {"Linf": 6 / 255, "L2": 0.5, "L1": 4.0}


def reference_run(reference, model, x, y, norm, eps, caplog) -> tuple[torch.Tensor, dict[str, int]]:
    """The reference's robust flags, and the examples each component broke (from its log)."""
    attack = reference.AutoAttack(model, norm=norm, eps=eps, version="standard", seed=0, device="cpu")
    with caplog.at_level(logging.DEBUG, logger="auto-attack"):
        caplog.clear()
        _, y_adv = attack.run_standard_evaluation(x, y, batch_size=len(x))
    accuracy = {"clean": None}
    for record in caplog.records:
        found = re.match(r"robust accuracy after ([A-Z-]+): ([\d.]+)%", record.getMessage())
        if found:
            accuracy[found[1].lower()] = float(found[2]) / 100
    robust = y_adv == y
    counts, before = {}, (model(x).argmax(1) == y).sum().item()
    for name in COMPONENTS:
        after = round(accuracy.get(name, before / len(y)) * len(y))
        counts[name], before = before - after, after
    return robust, counts


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("norm", list(RADII))
def test_standard_autoattack_agrees_with_the_reference(model, data, norm, caplog):
    reference = pytest.importorskip("pyautoattack")
    x, y = data
    eps = RADII[norm]
    started = time.perf_counter()
    _, outcome = AutoAttack(model, norm, eps, seed=0).run(x, y)
    ours_seconds = time.perf_counter() - started
    mine = outcome == ROBUST
    counts = {name: int((outcome == BROKEN + k).sum()) for k, name in enumerate(COMPONENTS)}
    started = time.perf_counter()
    theirs, their_counts = reference_run(reference, model, x, y, norm, eps, caplog)
    their_seconds = time.perf_counter() - started
    n = len(y)
    print(f"\n{norm} eps {eps:.4g}, {n} images: ours {mine.float().mean():.4f} in {ours_seconds:.1f} s, reference "
          f"{theirs.float().mean():.4f} in {their_seconds:.1f} s (ratio {ours_seconds / their_seconds:.2f}); "
          f"broken by ours {counts}, by the reference {their_counts}; the reference breaks "
          f"{int((mine & ~theirs).sum())} of our {int(mine.sum())} robust examples")
    assert 0.2 <= theirs.float().mean() <= 0.9  # the comparison means something at this radius
    assert abs(int(mine.sum()) - int(theirs.sum())) <= 1
    assert int((mine & ~theirs).sum()) <= 1
    for name in COMPONENTS:
        assert abs(counts[name] - their_counts[name]) <= 1, (name, counts, their_counts)
