import numpy as np
import pytest
import torch

from modules.evaluation import EvaluationSettings, evaluate
from modules.evaluation.corruptions import CORRUPTIONS, corrupt, corrupt_batch, corruption_of
from modules.registry import ConfigError


def test_block_rule_is_contiguous_and_balanced():
    n = 1000
    names = [corruption_of(i, n) for i in range(n)]
    assert names[0] == CORRUPTIONS[0] and names[-1] == CORRUPTIONS[-1]
    assert [i * 11 // n for i in range(n)] == [CORRUPTIONS.index(c) for c in names]
    changes = [i for i in range(1, n) if names[i] != names[i - 1]]
    assert len(changes) == 10  # 11 contiguous blocks
    sizes = [names.count(c) for c in CORRUPTIONS]
    assert set(sizes) <= {90, 91} and sum(sizes) == n


def test_corrupted_test_set_is_deterministic_and_in_range():
    x = torch.rand(11, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    idx = list(range(11))
    a, names = corrupt_batch(x, idx, 11, severity=3, seed=0)
    b, _ = corrupt_batch(x, idx, 11, severity=3, seed=0)
    assert names == list(CORRUPTIONS)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    c, _ = corrupt_batch(x[5:], idx[5:], 11, severity=3, seed=0)  # another shard: same images
    assert torch.equal(a[5:], c)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_severity_changes_more(name):
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    change = [(corrupt(x, name, s, seed=0) - x).abs().mean().item() for s in range(1, 6)]
    assert change[0] > 0 and change[4] > change[0] * 0.9


def test_bad_names_and_severities():
    x = torch.rand(3, 32, 32)
    with pytest.raises(ConfigError, match="valid choices"):
        corrupt(x, "fog", 3)
    with pytest.raises(ConfigError, match="1-5"):
        corrupt(x, "snow", 6)


def _reference():
    return pytest.importorskip("imagecorruptions")


@pytest.mark.reference
def test_matches_reference_statistics():
    ref = _reference()
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    images = []
    for im in load_digits().images[:4]:
        t = torch.nn.functional.interpolate(torch.tensor(im / 16.0).float()[None, None], size=48, mode="bilinear")[0, 0]
        colour = torch.tensor(rng.uniform(0.2, 0.8, 3)).float()[:, None, None]
        images.append(((0.3 * colour + 0.6 * t[None]).clamp(0, 1) * 255).round().byte())
    for name in CORRUPTIONS:
        mine, theirs = [], []
        for k, u8 in enumerate(images):
            x = u8.float() / 255
            np.random.seed(k)
            r = torch.tensor(ref.corrupt(u8.permute(1, 2, 0).numpy(), severity=3, corruption_name=name)).permute(
                2, 0, 1
            )
            theirs.append((r.float() / 255 - x).abs().mean().item())
            mine.append((corrupt(x, name, 3, seed=k) - x).abs().mean().item())
        m, t = np.mean(mine), np.mean(theirs)
        assert abs(m - t) <= 0.005 + 0.25 * t, f"{name}: mean |change| {m:.4f} vs reference {t:.4f}"


@pytest.mark.parametrize("assignment", ["blocks", "all"])
def test_corruption_assignment_is_applied_and_recorded(model, assignment):
    from tests.measurements.conftest import make_data

    x, y = make_data(22)
    settings = EvaluationSettings(num_examples=22, corruption_assignment=assignment)
    report = evaluate(model, list(zip(x, y)), list(range(22)), ["common"], settings, torch.device("cpu"), 8)
    per = report["per_corruption"]
    assert report["settings"]["common"]["assignment"] == assignment and set(per) == set(CORRUPTIONS)
    # brightness, the 7th corruption: blocks give it images 14 and 15 only (floor(11 i / 22) == 6); all, every image
    images = [i for i in range(22) if corruption_of(i, 22) == "brightness"] if assignment == "blocks" else range(22)
    corrupted = torch.stack([corrupt(x[i], "brightness", 3, i) for i in images])
    with torch.no_grad():
        expected = (model(corrupted).argmax(1) == y[list(images)]).float().mean().item()
    assert per["brightness"] == pytest.approx(expected)
    if assignment == "all":
        assert report["accuracy"]["common_acc"] == pytest.approx(sum(per.values()) / 11)
