"""The standard AutoAttack against the reference implementation (pyautoattack), same model and images,
in every norm, at a radius where the model is partly robust: robust accuracy, which examples
survive, and how many each component breaks."""

import pytest

from app.bench.measurements import ours_autoattack, reference_autoattack
from modules.attacks.autoattack import COMPONENTS

# radii where the tiny trained model of conftest.py keeps between 20% and 90% of the 32 images
RADII = {"Linf": 6 / 255, "L2": 0.5, "L1": 4.0}


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("norm", list(RADII))
def test_standard_autoattack_agrees_with_the_reference(model, data, norm):
    pytest.importorskip("pyautoattack")
    x, y = data
    eps = RADII[norm]
    ours = ours_autoattack(model, x, y, norm, eps)
    theirs = reference_autoattack(model, x, y, norm, eps)
    mine, their = ours.robust, theirs.robust
    n = len(y)
    print(
        f"\n{norm} eps {eps:.4g}, {n} images: ours {mine.float().mean():.4f} in {ours.seconds:.1f} s, reference "
        f"{their.float().mean():.4f} in {theirs.seconds:.1f} s (ratio {ours.seconds / theirs.seconds:.2f}); "
        f"broken by ours {ours.broken_by}, by the reference {theirs.broken_by}; the reference breaks "
        f"{int((mine & ~their).sum())} of our {int(mine.sum())} robust examples"
    )
    assert 0.2 <= their.float().mean() <= 0.9  # the comparison means something at this radius
    assert abs(int(mine.sum()) - int(their.sum())) <= 1
    assert int((mine & ~their).sum()) <= 1
    for name in COMPONENTS:
        assert abs(ours.broken_by[name] - theirs.broken_by[name]) <= 1, (name, ours.broken_by, theirs.broken_by)
