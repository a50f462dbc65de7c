"""The sweep before Ray: the grid, its folders, --only and --shard, the search spaces, the run
arguments, what is left to do, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from app.__main__ import main
from app.sweep.cells import cells, fit_args, only, shard
from app.sweep.ledger import Ledger
from app.sweep.plan import plan, status
from app.sweep.spec import read_sweep
from modules.registry import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PAPER, QUICKSTART = ROOT / "configs" / "sweep" / "paper.yaml", ROOT / "configs" / "sweep" / "quickstart.yaml"


@pytest.fixture(scope="module")
def paper():
    return read_sweep(PAPER)


def test_the_paper_sweep_is_the_studys_1440_cells_in_stable_folders(paper, tmp_path):
    grid = cells(paper)
    assert len(grid) == 1440 == len({cell.folder(tmp_path) for cell in grid})
    assert {c.protocol for c in grid} == {"fft50", "fft5", "lp50"} and len({c.backbone for c in grid}) == 40
    assert len({c.dataset for c in grid}) == 6 and {c.loss for c in grid} == {"trades", "classic_at"}
    assert grid[0].folder(tmp_path) == tmp_path / "fft50" / "caltech101" / "coat_tiny.in1k" / "trades"
    assert [p.epochs for p in paper.protocols.values()] == [50, 5, 50]  # ASHA's max_t


def test_only_selects_and_shards_partition_the_cells(paper):
    grid = cells(paper)
    flowers = only(grid, ["dataset=flowers-102", "loss=trades,classic_at"], paper)
    assert len(flowers) == 240 and {c.dataset for c in flowers} == {"flowers-102"}
    shards = [shard(grid, f"{i}/7") for i in range(7)]
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, grid))  # every cell once
    assert sum(len(s) for s in shards) == 1440 and max(map(len, shards)) - min(map(len, shards)) <= 1
    for bad, message in (
        ("backbone=resnet5O", "resnet5O not among the sweep's backbone values"),
        ("optimizer=adam", "unknown axis 'optimizer'"),
        ("dataset", "expected KEY=V1,V2"),
    ):
        with pytest.raises(ConfigError, match=message):
            only(grid, [bad], paper)
    for bad in ("7/7", "1-7", "a/b"):
        with pytest.raises(ConfigError, match="expected I/N with 0 <= I < N"):
            shard(grid, bad)


def test_linear_probing_searches_only_the_head(paper):
    full, head = paper.search.spaces["full"], paper.search.spaces["head"]
    assert set(full) == {"model.lr_backbone", "model.lr_head", "model.wd_backbone", "model.wd_head", "model.cosine"}
    assert set(head) == {"model.lr_head", "model.wd_head", "model.cosine"}
    assert full["model.lr_backbone"] == ("loguniform", 1e-6, 1e-1) and full["model.wd_head"] == (
        "loguniform",
        1e-6,
        1e-2,
    )
    assert paper.protocols["lp50"].space == "head" and paper.protocols["fft5"].space == "full"
    search = paper.search
    assert (search.metric, search.mode, search.num_samples, search.time_budget_minutes) == (
        "robust_loss",
        "min",
        -1,
        140,
    )
    assert (search.grace_period, search.reduction_factor) == (1, 2)


def test_run_arguments_have_absolute_paths_and_the_chosen_values(paper, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Ray runs trials elsewhere: nothing may depend on the working directory
    cell = only(
        cells(paper), ["protocol=lp50", "dataset=flowers-102", "backbone=robust_resnet50", "loss=trades"], paper
    )[0]
    args = fit_args(paper, cell, {"model.lr_head": 0.01, "model.cosine": False})
    assert args[:3] == ["fit", "--config", str(ROOT / "configs" / "experiment" / "lp50.yaml")]
    pairs = dict(zip(args[3::2], args[4::2]))
    assert pairs["--data"] == "flowers-102" and pairs["--data.init_args.root"] == "/data/flowers-102"
    assert pairs["--model.weights"] == "/checkpoints/madry_imagenet_linf_4.pt"
    assert (pairs["--model.lr_head"], pairs["--model.cosine"]) == ("0.01", "false")
    assert Path(pairs["--data.init_args.root"]).is_absolute()


def test_complete_cells_are_skipped_and_failed_ones_remembered(tmp_path):
    sweep = read_sweep(QUICKSTART)
    done, failed, searched, fresh = cells(sweep)[:4]
    (done.folder(tmp_path) / "final").mkdir(parents=True)
    (done.folder(tmp_path) / "final" / "results.json").write_text(json.dumps({"status": "complete"}))
    (searched.folder(tmp_path)).mkdir(parents=True)
    (searched.folder(tmp_path) / "best.yaml").write_text(yaml.safe_dump({"values": {}}))
    ledger = Ledger(tmp_path)
    ledger.set(failed, status="failed", error="boom")
    ledger = Ledger(tmp_path)  # as a re-run reads it
    assert [status(c.folder(tmp_path), ledger, c) for c in (done, failed, searched, fresh)] == [
        "complete",
        "failed",
        "training",
        "pending",
    ]
    planned = plan(sweep, [done, failed, searched, fresh], tmp_path, ledger)
    assert planned.counts() == {"complete": 1, "failed": 1, "training": 1, "pending": 1}
    assert planned.blockers() == []  # digits ships with scikit-learn; the tiny backbones train from scratch


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s["backbones"].append("resnet5O"), "backbones: unknown backbone 'resnet5O'"),
        (lambda s: s["datasets"].append("flowerz"), "datasets: unknown dataset 'flowerz'"),
        (lambda s: s["losses"].append("madry"), "losses: unknown loss 'madry'"),
        (
            lambda s: s["search"]["space"]["full"].update({"model.learning_rate": ["loguniform", 1e-5, 1e-1]}),
            "unknown search parameter 'model.learning_rate'",
        ),
        (lambda s: s["protocols"]["fft2"].update({"space": "backbone_only"}), "names search space 'backbone_only'"),
        (lambda s: s["protocols"]["fft2"].update({"configs": ["configs/nothing.yaml"]}), "config file(s) not found"),
        (
            lambda s: s["search"].update({"concurrent_trials": 0}),
            "search.concurrent_trials 0: expected an integer >= 1",
        ),
        (lambda s: s["search"].update({"time_budget_minutes": 0}), "search.time_budget_minutes 0: expected a number"),
        (lambda s: s.update({"resources": {"cpu": 0}}), "resources {'cpu': 0}: expected numbers >= 0 for cpu and gpu"),
    ],
)
def test_a_bad_sweep_file_is_one_line_before_ray(tmp_path, capsys, edit, message):
    spec = yaml.safe_load(QUICKSTART.read_text())
    for protocol in spec["protocols"].values():
        protocol["configs"] = [str(ROOT / config) for config in protocol["configs"]]
    edit(spec)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    assert main(["sweep", "--config", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sweep file ") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_command_lines_are_one_line_before_ray(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (["--out", str(a_file / "out")], "is not writable (Not a directory)"),  # unwritable, even for root
        (["--out", str(tmp_path / "a"), "--only", "protocol=fft3"], "fft3 not among the sweep's protocol values"),
        (["--out", str(tmp_path / "b"), "--address", "127.0.0.1:9"], "--address 127.0.0.1:9: no Ray cluster answers"),
        (["--out", str(tmp_path / "c"), "--max-cells", "0"], "--max-cells 0: expected an integer >= 1"),
        (["--out", str(tmp_path / "d"), "--bench", str(a_file)], f"--bench {a_file}: not a readable JSON file"),
        (
            ["--out", str(tmp_path / "e"), "--bench", str(QUICKSTART.parent.parent / "study.yaml")],
            "not a readable JSON file",
        ),
    ]
    a_json = tmp_path / "results.json"
    a_json.write_text(json.dumps({"clean_acc": 0.9}))
    cases.append(
        (["--out", str(tmp_path / "f"), "--bench", str(a_json)], "not the JSON of `python -m app bench --json`")
    )
    for extra, message in cases:
        assert main(["sweep", "--config", str(QUICKSTART), *extra]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
        assert not captured.out  # before anything: not even the plan


def bench_json(path: Path, backbone: str, train_images_per_s: float, gradient_seconds: float) -> Path:
    """The fields of `python -m app bench --json` the estimate reads (a real one: test_bench.py)."""
    path.write_text(
        json.dumps(
            {
                "backbone": backbone,
                "image_size": 16,
                "batch_size": 16,
                "precision": "bf16",
                "device": "NVIDIA H100 80GB HBM3",
                "train_images_per_s": train_images_per_s,
                "steps": {"seconds": {"gradient": gradient_seconds, "clean": 0.01, "trades": 0.16}},
            }
        )
    )
    return path


def test_the_dry_run_prices_each_part_from_a_bench_file_then_measured_cells_then_guesses(tmp_path, capsys):
    from app.bench.files import read_benches
    from app.sweep.cost import DATASET_IMAGES, estimate

    sweep = read_sweep(QUICKSTART)  # 2 protocols x digits x 2 backbones x 2 losses, 2 epochs, 2 samples
    grid = cells(sweep)
    resnet = dict.fromkeys([c for c in grid if c.backbone == "test_resnet"], "pending")
    fast, slow = (
        read_benches(bench_json(tmp_path / f"{name}.json", "test_resnet", 100.0, gradient))[0]
        for name, gradient in (("fast", 0.016), ("slow", 0.032))
    )
    priced, doubled = (estimate(sweep, resnet, tmp_path, grid, [bench], 1.0) for bench in (fast, slow))
    assert priced.sources == {"test_resnet": "bench (NVIDIA H100 80GB HBM3, bf16, 16px)"}
    train, _, _ = DATASET_IMAGES["digits"]
    assert priced.hours["training"] == pytest.approx(4 * train * 2 / 100.0 / 3600)  # images x epochs / images/s
    # validation and test are counted in attack passes: twice the pass time, twice the hours
    for part in ("validation", "test"):
        assert priced.hours[part] > 0 and doubled.hours[part] == pytest.approx(2 * priced.hours[part])
    assert doubled.hours["training"] == priced.hours["training"]
    # the search: both samples to the end when that is less than the budget (10 device-minutes a cell)
    assert priced.hours["search"] == pytest.approx(2 * (priced.hours["training"] + priced.hours["validation"]))
    assert priced.hours["search"] < 4 * 10 / 60
    # wall-clock: the cells shared out over the slots, never less than the longest cell
    assert priced.wall_seconds(2) == pytest.approx(max(sum(priced.cell_seconds) / 2, max(priced.cell_seconds)))
    assert priced.wall_seconds(8) == max(priced.cell_seconds)
    assert estimate(sweep, {c: "pending" for c in grid if c not in resnet}, tmp_path, grid, [fast], 1.0).sources == {
        "test_efficientnet": "guessed (medium)"
    }

    # a complete cell of this sweep prices its backbone ahead of the guess: 48 s of training,
    # 12 s of validation and 36 s of test measurements for each of the 3 cells left
    done, *rest = [c for c in grid if c.backbone == "test_efficientnet"]
    (done.folder(tmp_path) / "final").mkdir(parents=True)
    (done.folder(tmp_path) / "final" / "results.json").write_text(
        json.dumps(
            {
                "status": "complete",
                "epochs": 2,
                "cost": {
                    "fit": {"fit_device_seconds": 60.0, "validation_device_seconds": 12.0, "train_images": 2 * train},
                    "test": {"measurement_device_seconds": {"clean": 1.0, "linf": 35.0}},
                },
            }
        )
    )
    measured = estimate(sweep, dict.fromkeys(rest, "training"), tmp_path, grid, [fast], 1.0)
    assert measured.sources == {"test_efficientnet": "measured (1 cells)"}
    assert measured.hours == pytest.approx(
        {"search": 0, "training": 3 * 48 / 3600, "validation": 3 * 12 / 3600, "test": 3 * 36 / 3600}
    )

    dry = [
        "sweep",
        "--config",
        str(QUICKSTART),
        "--out",
        str(tmp_path),
        "--dry-run",
        "--bench",
        str(tmp_path / "fast.json"),
    ]
    assert main([*dry, "--gpus", "8", "--gpus", "64"]) == 0
    out = capsys.readouterr().out
    assert "8 cells: 1 complete, 7 pending" in out
    assert "GPU-hours left: search " in out and all(f", {part} " in out for part in ("training", "validation", "test"))
    assert "priced from bench (NVIDIA H100 80GB HBM3, bf16, 16px): test_resnet" in out
    assert "priced from measured (1 cells): test_efficientnet" in out
    assert "wall-clock on 8 GPUs: about " in out and "(8 cells in flight)" in out and "(64 cells in flight)" in out
