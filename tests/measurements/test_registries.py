"""Every registered attack and measurement, by name: a new one is covered by adding its entry."""

import copy
from typing import get_args

import pytest
import torch

from modules.attacks import ATTACKS, AttackConfig, build_attack
from modules.attacks.norms import NORMS, lp_norm
from modules.evaluation import MEASUREMENTS, EvaluationSettings, evaluate
from modules.vocabulary import Norm, NormName

RADIUS = {"Linf": 8 / 255, "L2": 0.5, "L1": 5.0}
ATTACK_CASES = [
    (name, norm, purpose)
    for name in ATTACKS
    for norm in ATTACKS.get(name).norms
    for purpose in (("train", "eval") if ATTACKS.get(name).trains else ("eval",))
]


@pytest.mark.parametrize("name,norm,purpose", ATTACK_CASES, ids=["-".join(case) for case in ATTACK_CASES])
def test_every_attack_stays_in_its_ball_and_leaves_the_model_as_it_was(model, data, name, norm, purpose):
    x, y = data
    x, y = x[:6], y[:6]
    model = copy.deepcopy(model).train()
    model[1].eval()  # a frozen BatchNorm keeps its own flag
    state = copy.deepcopy(model.state_dict())
    with torch.inference_mode():  # as in Lightning's test loop
        adv = build_attack(AttackConfig(name, norm, RADIUS[norm], steps=3, queries=20), model, purpose)(x, y)
    assert adv.shape == x.shape and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    assert (lp_norm(adv - x, norm) <= RADIUS[norm] * ATTACKS.get(name).reach * (1 + 1e-5) + 1e-6).all()
    assert model.training and not model[1].training
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", list(MEASUREMENTS))
def test_every_measurement_runs_and_summarises(model, data, name):
    x, y = data
    settings = EvaluationSettings(
        attack="apgd", eps={"linf": 4 / 255, "l2": 0.5, "l1": 4.0}, steps=3, num_examples=12, grid_step=2 / 255
    )
    report = evaluate(model, list(zip(x[:12], y[:12])), list(range(12)), [name], settings, torch.device("cpu"), 5)
    (column,) = report["accuracy"]
    assert column == f"{name}_acc" and 0.0 <= report["accuracy"][column] <= 1.0
    assert report["settings"][name]["precision"] == "32" and report["seconds"][name] >= 0


def test_the_norm_is_spelled_one_way_in_configs_attacks_measurements_and_columns():
    assert get_args(NormName) == NORMS == tuple(Norm)  # a config's Literal, the attacks' list, the enum
    assert [norm.measurement for norm in Norm] == ["linf", "l2", "l1"]
    assert [Norm.of_measurement(name).paper_column for name in ("linf", "l2", "l1")] == ["Linf_acc", "L2_acc", "L1_acc"]
