"""`python -m app bench --suite OUT`: a GPU node (or this CPU, `--quick`) checked and priced in one run.

Parts, in order, each timed; a part that would not fit in the time left is skipped and says so:

- `environment`: torch, CUDA, cuDNN and driver versions, the device, its memory and compute
  capability, bf16 support, the distributed backends;
- `checks`: the project's CUDA tests (pytest, one result per test; skipped without CUDA or without
  the repository's tests/) and the suite's own: test attacks see fp32 logits under a bf16 trainer;
- `fit`: a few steps of a real `app fit` of configs/experiment/fft50.yaml (random weights, generated
  images through `image-folder`, bf16-mixed, the paper's training attack, one validation): AMP, the
  callbacks, results.json, TensorBoard and the checkpoint, not only kernels;
- `autoattack`: the standard AutoAttack in fp32, per image (labels = predictions: every image is
  attacked), the five measurements extrapolated to 1,000 test images;
- `bench`: `app bench` of the study's convnext_tiny and vit_small at 224 in bf16 with `--max-batch`
  (on a CPU: one small backbone at 64, in fp32); then `--compare` (torch.compile, channels-last).

It writes OUT/suite.json (every figure as {"value", "unit"}, every check passed / failed / skipped
with why) and OUT/suite.md (the table, printed last); any failed check makes the exit status 1.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from modules.registry import ConfigError, first_line

FIT_CONFIG = Path("configs/experiment/fft50.yaml")


def repository() -> Path | None:
    """Where the configs and tests are: the working folder (an installed app run from a checkout or a
    copy of its configs), else the checkout this module lies in; None when neither has them."""
    for folder in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (folder / FIT_CONFIG).is_file():
            return folder
    return None


CUDA_TESTS = ("tests/measurements/test_sync.py",)  # the project's tests that need a GPU
GPU_BACKBONES = ("convnext_tiny.fb_in1k", "vit_small_patch16_224.augreg_in1k")
TEST_IMAGES = 1000  # what the AutoAttack cost is extrapolated to


def figure(value: float | int | None, unit: str) -> dict[str, Any]:
    return {"value": None if value is None else round(float(value), 6), "unit": unit}


@dataclass
class Check:
    name: str
    status: str  # passed | failed | skipped
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Plan:
    """What the suite runs: the full GPU suite, or `--quick` (minutes on a 2-core CPU)."""

    device: torch.device
    quick: bool
    budget: float  # seconds; the parts that would start after it are skipped
    backbones: tuple[str, ...] = GPU_BACKBONES
    image_size: int = 224
    bench_batch: int = 64
    precision: str = "bf16"
    fit_backbone: str = "convnext_tiny.fb_in1k"
    fit_batch: int = 32
    aa_backbone: str = "convnext_tiny.fb_in1k"
    aa_images: int = 64
    workers: int = 8

    @classmethod
    def for_device(cls, device: torch.device, quick: bool, budget: float | None) -> Plan:
        if not quick:
            return cls(device, False, budget or 480.0)
        return cls(
            device,
            True,
            budget or 600.0,
            backbones=("resnet18",),
            image_size=64,
            bench_batch=16,
            precision="bf16" if device.type == "cuda" else "32",
            fit_backbone="test_resnet",
            fit_batch=16,
            aa_backbone="test_resnet",
            aa_images=4,
            workers=2,
        )


@dataclass
class Suite:
    plan: Plan
    out: Path
    started: float = field(default_factory=time.perf_counter)
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def left(self) -> float:
        return self.plan.budget - (time.perf_counter() - self.started)

    def part(self, name: str, needs: float, work: Callable[[], None]) -> None:
        """Run `work` if `needs` seconds are left of the budget; a part that raises is a failed check."""
        if self.left() < needs:
            self.skipped[name] = (
                f"{self.left():.0f} s of the {self.plan.budget:.0f} s budget left, it needs ~{needs:.0f} s"
            )
            return
        started = time.perf_counter()
        try:
            work()
        except Exception as error:  # recorded, and the suite goes on with the next part
            self.checks.append(Check(name, "failed", f"{type(error).__name__}: {first_line(error)}"))
        self.figures[f"{name}.seconds"] = figure(time.perf_counter() - started, "s")


def environment(device: torch.device) -> dict[str, Any]:
    import torch.distributed as dist

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "distributed_backends": [
            name
            for name, available in (("nccl", dist.is_nccl_available()), ("gloo", dist.is_gloo_available()))
            if available
        ],
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "device_name": props.name,
            "device_memory_gb": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "driver": driver_version(),
        }
    else:
        info |= {"device_name": platform.processor() or platform.machine(), "bf16_supported": True}
    return info


def driver_version() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    done = subprocess.run(
        [smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def cuda_tests(suite: Suite) -> None:
    """The project's CUDA tests, one check each (pytest's JUnit report)."""
    root = repository() or Path.cwd()
    files = [root / path for path in CUDA_TESTS]
    if suite.plan.device.type != "cuda":
        suite.checks.append(Check("cuda tests", "skipped", "no CUDA device: the CUDA tests need one"))
        return
    if not all(path.is_file() for path in files):
        suite.checks.append(Check("cuda tests", "skipped", f"the repository's tests are not in {root}"))
        return
    report = suite.out / "work" / "cuda-tests.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *map(str, files)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=max(60.0, suite.left()),
    )
    if not report.is_file():
        suite.checks.append(Check("cuda tests", "failed", f"pytest wrote no report: {done.stderr[-300:]}"))
        return
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        status = "failed" if failure is not None else "skipped" if skipped is not None else "passed"
        why = (failure if failure is not None else skipped) if status != "passed" else None
        detail = first_line(Exception(why.get("message", ""))) if why is not None else ""
        suite.checks.append(Check(f"cuda test {case.get('name')}", status, detail, float(case.get("time", 0))))


def fp32_attacks_under_bf16(suite: Suite) -> None:
    """Under a bf16 trainer's autocast, a test measurement's attack sees fp32 logits (the default
    `attack_precision: 32`): rounding the logits to bf16 can hide successful attacks."""
    from modules.evaluation import measurements
    from modules.model.backbones import create_classifier

    device = suite.plan.device
    started = time.perf_counter()
    torch.manual_seed(0)
    model = create_classifier("test_resnet", num_classes=10, pretrained=False).to(device).eval()
    seen: set[torch.dtype] = set()
    hook = model.register_forward_hook(lambda module, inputs, output: seen.add(output.dtype))
    settings = measurements.EvaluationSettings(
        attack="apgd", steps=3, num_examples=4, precision=measurements.autocast(device.type, "32")
    )
    linf = measurements.build_measurements(["linf"], model, settings)["linf"]
    x = torch.rand(4, 3, 32, 32, device=device)
    y = torch.arange(4, device=device)
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):  # what a bf16-mixed trainer runs the test in
            linf.run(x, y, torch.arange(4))
    finally:
        hook.remove()
    passed = seen == {torch.float32}
    detail = "logits fp32" if passed else f"the attack saw logits in {sorted(str(d) for d in seen)}"
    suite.checks.append(
        Check(
            "test attacks in fp32 under bf16", "passed" if passed else "failed", detail, time.perf_counter() - started
        )
    )


def generated_images(root: Path, size: int, train: int, eval_images: int) -> Path:
    """Random PNGs of two classes in train/val/test folders: the `image-folder` layout."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", train), ("val", eval_images), ("test", eval_images)):
        for i in range(count):
            folder = root / split / f"class{i % 2}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{i:04d}.png")
    return root


def fit(suite: Suite) -> None:
    """A few steps of a real `app fit` of the FFT-50 experiment config, in a subprocess."""
    plan, work, root = suite.plan, suite.out / "work", repository()
    if root is None:
        suite.skipped["fit"] = f"{FIT_CONFIG} is not in the working folder {Path.cwd()}: run from the repository"
        return
    batch = plan.fit_batch
    images = generated_images(work / "images", plan.image_size, 4 * batch, batch)
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    arguments = [
        "fit",
        "--config",
        str(root / FIT_CONFIG),
        "--model.backbone",
        plan.fit_backbone,
        "--model.pretrained",
        "false",
        "--data",
        "image-folder",
        "--data.root",
        str(images),
        "--data.image_size",
        str(plan.image_size),
        "--data.batch_size",
        str(batch),
        "--data.num_workers",
        str(plan.workers),
        "--batching.effective_batch_size",
        str(2 * batch),  # two accumulated batches per optimizer step
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "4",
        "--trainer.limit_val_batches",
        "1",
        "--robustness.subset_size",
        str(batch),
        "--test_after_fit",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(runs),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app", *arguments],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=max(60.0, suite.left()),
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    seconds = time.perf_counter() - started
    run = next(iter(sorted((runs / "fft50").glob("version_*"))), None) if (runs / "fft50").is_dir() else None
    record = json.loads((run / "results.json").read_text()) if run and (run / "results.json").is_file() else {}
    problems = []
    if done.returncode != 0:
        problems.append(
            f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}"
        )
    if record.get("status") != "trained":
        problems.append(f"results.json status {record.get('status')!r}, expected 'trained'")
    if run is None or not (run / "checkpoints" / "last.ckpt").is_file():
        problems.append("no checkpoints/last.ckpt")
    if run is None or not list(run.glob("events.out.tfevents.*")):
        problems.append("no TensorBoard event file")
    status = "failed" if problems else "passed"
    suite.checks.append(Check("app fit (fft50.yaml, bf16-mixed)", status, "; ".join(problems) or str(run), seconds))
    cost = record.get("cost", {}).get("fit", {})
    suite.figures |= {
        "fit.train_images_per_s": figure(cost.get("train_images_per_s"), "images/s"),
        "fit.peak_memory_mb": figure(cost.get("peak_memory_mb"), "MiB"),
    }
    suite.details["fit"] = {"backbone": plan.fit_backbone, "arguments": arguments, "record": record}


def autoattack(suite: Suite) -> None:
    """The five measurements' seconds per image (standard AutoAttack, fp32), and 1,000 images' worth."""
    from app.bench.measurements import measurement_cost
    from app.bench.steps import Setup

    plan = suite.plan
    setup = Setup(plan.aa_backbone, plan.image_size, plan.aa_images, str(plan.device), "32")
    cost = measurement_cost(setup, plan.aa_images, steps=100, queries=5000, reference=False)
    per_image = cost["seconds_per_image"]
    for name, seconds in per_image.items():
        suite.figures[f"autoattack.{name}_seconds_per_image"] = figure(seconds, "s/image")
    suite.figures["autoattack.five_measurements_1000_images"] = figure(
        sum(per_image.values()) * TEST_IMAGES / 3600, "h"
    )
    suite.details["autoattack"] = cost | {"backbone": plan.aa_backbone, "image_size": plan.image_size}


def bench(suite: Suite) -> None:
    """`app bench` of each backbone, with --max-batch on a GPU."""
    from app.commands.bench import parse, run

    plan = suite.plan
    for backbone in plan.backbones:
        if suite.left() < 45:
            suite.skipped[f"bench {backbone}"] = f"{suite.left():.0f} s of the budget left"
            continue
        arguments = [
            *("--backbone", backbone, "--image-size", str(plan.image_size), "--batch-size", str(plan.bench_batch)),
            *("--device", str(plan.device), "--precision", plan.precision, "--repeats", "3"),
            *("--workers", str(plan.workers), "--measure-images", "0"),
            *(["--max-batch"] if plan.device.type == "cuda" else []),
        ]
        result = run(parse(arguments))
        suite.details.setdefault("bench", {})[backbone] = result
        key = f"bench.{backbone}"
        suite.figures |= {
            f"{key}.train_images_per_s": figure(result["train_images_per_s"], "images/s"),
            f"{key}.mfu": figure(result["mfu"], "fraction of peak"),
            f"{key}.attack_floor_ratio": figure(result["attack_floor_ratio"], "x floor"),
            f"{key}.loader_images_per_s": figure(result["loader_images_per_s"], "images/s"),
            f"{key}.max_batch": figure(result.get("max_batch"), "images (TRADES step)"),
        }


def compare(suite: Suite) -> None:
    """torch.compile and channels-last against the plain model of the bench part (`bench --compare`)."""
    from app.bench.steps import Setup, step_composition
    from modules.attacks import AttackConfig

    plan = suite.plan
    for backbone, plain in suite.details.get("bench", {}).items():
        if suite.left() < 60:
            suite.skipped[f"compare {backbone}"] = f"{suite.left():.0f} s of the budget left"
            continue
        setup = Setup(
            backbone, plan.image_size, plan.bench_batch, str(plan.device), plan.precision, AttackConfig(), repeats=3
        )
        variants = {}
        for name, options in (("channels_last", {"channels_last": True}), ("compile", {"compile": True})):
            seconds = step_composition(Setup(**vars(setup) | options))["seconds"]
            variants[name] = seconds
            suite.figures[f"bench.{backbone}.{name}_trades_time_ratio"] = figure(
                seconds["trades"] / plain["steps"]["seconds"]["trades"], "x plain"
            )
        plain["variants"] = variants


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"# Suite: {env.get('device_name')} ({result['date']}, {'quick' if result['quick'] else 'full'})",
        "",
        f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, driver {env.get('driver')}, "
        f"compute capability {env.get('compute_capability')}, bf16 {env['bf16_supported']}, "
        f"backends {', '.join(env['distributed_backends'])}",
        "",
        "| check | result | detail |",
        "|---|---|---|",
        *(f"| {c['name']} | {c['status']} | {c['detail']} |" for c in result["checks"]),
        "",
        "| figure | value | unit |",
        "|---|---|---|",
        *(
            f"| {name} | {'-' if f['value'] is None else format(f['value'], '.4g')} | {f['unit']} |"
            for name, f in result["figures"].items()
        ),
    ]
    if result["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{name} ({why})" for name, why in result["skipped"].items())]
    verdict = "all checks passed" if result["passed"] else "FAILED: " + ", ".join(result["failed"])
    lines += ["", f"{verdict}; {result['seconds']:.0f} s in all."]
    return "\n".join(lines) + "\n"


PARTS = ("checks", "fit", "autoattack", "bench", "compare")


def check_arguments(out: Path, parts: list[str]) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--suite {out} is a file: give a folder for suite.json and suite.md")
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ConfigError(f"--parts: unknown part {unknown[0]!r}; valid choices: {', '.join(PARTS)}")


def run_suite(out: Path, device: torch.device, quick: bool, budget: float | None, parts: list[str]) -> dict[str, Any]:
    """Run the parts of the suite, writing OUT/suite.json and OUT/suite.md after each (a suite cut
    short keeps what it measured), and return the result."""
    check_arguments(out, parts)
    (out / "work").mkdir(parents=True, exist_ok=True)
    suite = Suite(Plan.for_device(device, quick, budget), out)
    info = environment(device)
    work = [
        ("checks", 30, lambda: (fp32_attacks_under_bf16(suite), cuda_tests(suite))),
        ("fit", 60, lambda: fit(suite)),
        ("autoattack", 30, lambda: autoattack(suite)),
        ("bench", 60, lambda: bench(suite)),
        ("compare", 90, lambda: compare(suite)),
    ]
    write(suite, info, finished=False)
    for name, needs, part in work:
        if name not in parts:
            continue
        if name == "compare" and "bench" not in suite.details:
            suite.skipped[name] = "needs the bench part's plain figures"
        elif name == "compare" and quick and device.type == "cpu":
            suite.skipped[name] = "--quick on a CPU: torch.compile's first compile takes minutes there"
        else:
            suite.part(name, needs, part)
        write(suite, info, finished=False)
    return write(suite, info, finished=True)


def write(suite: Suite, info: dict[str, Any], finished: bool) -> dict[str, Any]:
    failed = [check.name for check in suite.checks if check.status == "failed"]
    result = {
        "suite_version": 1,
        "date": datetime.date.today().isoformat(),
        "finished": finished,
        "quick": suite.plan.quick,
        "budget_seconds": suite.plan.budget,
        "environment": info,
        "checks": [asdict(check) for check in suite.checks],
        "figures": suite.figures,
        "skipped": suite.skipped,
        "passed": not failed,
        "failed": failed,
        "seconds": round(time.perf_counter() - suite.started, 1),
        "bench": list(suite.details.get("bench", {}).values()),  # `app bench --json` objects: app sweep --bench
        "details": {key: value for key, value in suite.details.items() if key != "bench"},
    }
    (suite.out / "suite.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (suite.out / "suite.md").write_text(markdown(result))
    return result
