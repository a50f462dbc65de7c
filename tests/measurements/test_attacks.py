import pytest
import torch

from modules.attacks import APGD, AutoAttack
from modules.attacks.norms import l1_projection


def norms(adv, x):
    d = (adv - x).flatten(1)
    return {"Linf": d.abs().amax(1), "L2": d.norm(dim=1), "L1": d.abs().sum(1)}


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


CASES = [
    ("apgd-Linf", lambda m, e: APGD(m, "Linf", e, 10, keep="misclassified"), "Linf", 8 / 255),
    ("apgd-L2", lambda m, e: APGD(m, "L2", e, 10, keep="misclassified"), "L2", 0.5),
    ("l1-apgd", lambda m, e: APGD(m, "L1", e, 10, keep="misclassified", use_largereps=True), "L1", 5.0),
    (
        "l1-apgd-t",
        lambda m, e: APGD(
            m, "L1", e, 10, keep="misclassified", loss="dlr-targeted", n_target_classes=2, use_largereps=True
        ),
        "L1",
        5.0,
    ),
    ("aa-Linf", lambda m, e: AutoAttack(m, "Linf", e, steps=3, square_queries=10), "Linf", 4 / 255),
    ("aa-L2", lambda m, e: AutoAttack(m, "L2", e, steps=3, square_queries=10), "L2", 0.3),
    ("aa-L1", lambda m, e: AutoAttack(m, "L1", e, steps=3), "L1", 3.0),
]


@pytest.mark.parametrize("name,build,norm,eps", CASES, ids=[c[0] for c in CASES])
def test_every_example_stays_in_its_ball_and_the_box(model, data, name, build, norm, eps):
    x, y = data
    x, y = x[:6], y[:6]
    adv = build(model, eps)(x, y)
    assert adv.shape == x.shape
    assert adv.min() >= 0 and adv.max() <= 1
    assert (norms(adv, x)[norm] <= eps * (1 + 1e-5) + 1e-6).all(), norms(adv, x)[norm].max()


@pytest.mark.parametrize(
    "name,build,norm,eps",
    [c for c in CASES if c[0] in ("apgd-Linf", "l1-apgd", "aa-L2")],
    ids=["apgd-Linf", "l1-apgd", "aa-L2"],
)
def test_an_undefended_model_is_broken_at_large_eps_and_not_at_zero(model, data, name, build, norm, eps):
    x, y = data
    clean = accuracy(model, x, y)
    assert clean > 0.8
    large = {"Linf": 64 / 255, "L2": 8.0, "L1": 200.0}[norm]
    assert accuracy(model, build(model, large)(x, y), y) <= 0.05
    assert accuracy(model, build(model, 0.0)(x, y), y) == clean


def test_attacks_restore_modes_and_leave_batchnorm_statistics(data):
    from tests.measurements.conftest import make_model  # noqa: F401  (same helper as the fixture)

    model = make_model().train()
    model[1].eval()  # a frozen module keeps its own flag
    stats = model[1].running_mean.clone(), model[1].num_batches_tracked.clone()
    x, y = data
    with torch.inference_mode():  # Lightning's test loop
        adv = AutoAttack(model, "L1", 3.0, steps=3)(x[:4], y[:4])
    assert adv.requires_grad is False
    assert model.training and not model[1].training and model[0].training
    assert torch.equal(model[1].running_mean, stats[0]) and torch.equal(model[1].num_batches_tracked, stats[1])


def test_l1_projection_lands_in_ball_and_box():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 8, 8, generator=g)
    y = 2 * torch.randn(6, 3, 8, 8, generator=g)
    p = x + y + l1_projection(x, y, 4.0)
    assert p.min() >= -1e-6 and p.max() <= 1 + 1e-6
    assert ((p - x).abs().flatten(1).sum(1) <= 4.0 + 1e-4).all()
