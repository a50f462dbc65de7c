"""FAB-T stays torchattacks' (with a multi-target loop that also works in L1) because it agrees with the
reference's: the same examples survive, in every norm."""

import pytest
import torch

from modules.attacks import FAB
from tests.measurements.test_reference import RADII


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.parametrize("norm", list(RADII))
def test_fab_t_breaks_the_examples_the_reference_breaks(model, data, norm):
    reference = pytest.importorskip("pyautoattack.fab_pt")
    x, y = data
    eps = RADII[norm]
    ours = FAB(model, norm, eps, steps=100, seed=0)(x, y)
    attack = reference.FABAttack_PT(
        model, norm=norm, n_restarts=1, n_iter=100, eps=eps, seed=0, targeted=True, device="cpu", n_target_classes=9
    )
    with torch.random.fork_rng():  # the reference reseeds the global generators
        theirs = attack.perturb(x, y)
    with torch.no_grad():
        mine, their = model(ours).argmax(1) == y, model(theirs).argmax(1) == y
    assert 0 < their.sum() < len(y)  # the radius breaks some examples, not all
    assert torch.equal(mine, their)
    assert (ours - x).flatten(1).norm(p={"Linf": float("inf"), "L2": 2, "L1": 1}[norm], dim=1).max() <= eps * (1 + 1e-5)
