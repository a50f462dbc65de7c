"""The outcome files a test keeps as it measures (modules/evaluation/outcomes.py): read back, a torn
last line dropped, other weights or settings started over, another dataset's file left alone."""

from __future__ import annotations

import torch
from torch import nn

from modules.evaluation.outcomes import OutcomeStore, read, weights_digest

ABOUT = {"dataset": "digits", "split": "test", "num_examples": 360, "weights": "w1"}
SETTINGS = {"algorithm": "apgd", "eps": 0.03, "precision": "32"}


def store(folder, about=ABOUT, rank=0) -> tuple[OutcomeStore, list[str]]:
    said: list[str] = []
    return OutcomeStore(folder, rank, about, said.append), said


def test_batches_are_read_back_and_a_torn_last_line_is_dropped_then_cut_before_appending(tmp_path):
    first, said = store(tmp_path)
    assert first.load("linf", SETTINGS) == {}
    first.append("linf", [0, 1], [[1, 0], [0, 3]])
    first.append("linf", [2, 3], [[0, 2], [1, 0]])
    first.close()
    path = first.path("linf")
    assert path.name == "linf.digits-test.rank0.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # SIGKILL in the middle of writing the second batch
    again, said = store(tmp_path)
    assert again.load("linf", SETTINGS) == {0: [1, 0], 1: [0, 3]} and said == []
    again.append("linf", [2, 3], [[0, 2], [1, 1]])
    again.close()
    header, rows, good = read(path)
    assert header["settings"] == SETTINGS and good == path.stat().st_size
    assert rows == {0: [1, 0], 1: [0, 3], 2: [0, 2], 3: [1, 1]}


def test_other_weights_or_settings_start_over_with_one_line(tmp_path):
    first, _ = store(tmp_path)
    first.load("linf", SETTINGS)
    first.load("clean", {"perturbation": "none"})
    first.append("linf", [0], [[1, 0]])
    first.append("clean", [0], [True])
    first.close()
    other, said = store(tmp_path, ABOUT | {"weights": "w2"})
    assert other.load("clean", {"perturbation": "none"}) == {}
    assert said == [f"{first.path('clean')}: measured with other weights: clean starts over"]
    changed, said = store(tmp_path)
    assert changed.load("linf", SETTINGS | {"eps": 0.02}) == {}
    assert said == [f"{first.path('linf')}: measured with other settings: linf starts over"]
    assert not first.path("linf").exists()


def test_a_file_of_another_dataset_or_split_is_named_and_left_alone(tmp_path):
    theirs, _ = store(tmp_path, ABOUT | {"dataset": "flowers-102", "num_examples": 1000})
    theirs.load("linf", SETTINGS)
    theirs.append("linf", [5], [[1, 0]])
    theirs.close()
    before = theirs.path("linf").read_bytes()
    mine, said = store(tmp_path)
    assert mine.load("linf", SETTINGS) == {}
    assert said == [
        f"{theirs.path('linf')}: outcomes of another dataset or split (dataset 'flowers-102', split 'test', "
        "num_examples 1000): not used"
    ]
    mine.append("linf", [0], [[0, 2]])
    mine.close()
    assert theirs.path("linf").read_bytes() == before and mine.path("linf") != theirs.path("linf")


def test_every_process_reads_every_processs_file(tmp_path):
    for rank in (0, 1):
        part, _ = store(tmp_path, rank=rank)
        part.load("clean", {})
        part.append("clean", [rank, rank + 2], [True, False])
        part.close()
    assert store(tmp_path)[0].load("clean", {}) == {0: True, 2: False, 1: True, 3: False}


def test_the_weights_digest_changes_with_any_tensor():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    digest = weights_digest(model)
    assert digest == weights_digest(model)
    model[1].num_batches_tracked += 1  # a 0-dim buffer
    assert weights_digest(model) != digest
