"""What one training step costs, part by part: the attack's unit (a forward pass and an input
gradient), a clean step, the training attack, and the full TRADES and classic-AT steps; their
FLOPs (counted with `torch.utils.flop_counter`), model FLOP utilisation and peak memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from app.bench.peak import peak
from app.bench.timing import median_seconds, synchronize
from modules.attacks import AttackConfig, build_attack, eval_mode
from modules.evaluation.measurements import DTYPES
from modules.evaluation.measurements import autocast as precision_context
from modules.model.backbones import create_classifier
from modules.model.losses import build_loss


@dataclass
class Setup:
    backbone: str = "resnet18"
    image_size: int = 64
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "32"
    attack: AttackConfig | None = None  # the training attack (default: the paper's APGD-CE, 10 steps)
    num_classes: int = 10
    compile: bool = False
    channels_last: bool = False
    repeats: int = 5

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]


def autocast(setup: Setup) -> contextlib.AbstractContextManager:
    return precision_context(torch.device(setup.device).type, setup.precision)()


def build_model(setup: Setup) -> nn.Module:
    torch.manual_seed(0)
    model = create_classifier(setup.backbone, setup.num_classes, pretrained=False).to(setup.device)
    if setup.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if setup.compile:
        model.compile()
    return model


def batch(setup: Setup, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    n = size or setup.batch_size
    x = torch.rand(n, 3, setup.image_size, setup.image_size, generator=generator).to(setup.device)
    if setup.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, setup.num_classes, (n,), generator=generator).to(setup.device)
    return x, y


def steps(setup: Setup, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable[[], object]]:
    """Each part as a closure over the same model and batch."""
    config = setup.attack or AttackConfig()
    attack = build_attack(config, model, "train")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)  # tiny: the weights barely move between repeats
    losses = {"trades": build_loss("trades"), "classic_at": build_loss("classic_at"), "clean": build_loss("ce")}

    def gradient() -> torch.Tensor:
        with eval_mode(model), autocast(setup):
            inputs = x.detach().requires_grad_(True)
            return torch.autograd.grad(F.cross_entropy(model(inputs).float(), y), [inputs])[0]

    def train_step(loss_name: str) -> Callable[[], object]:
        def step() -> None:
            model.train()
            with autocast(setup):
                out = losses[loss_name](model, x, y, attack)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def attack_only() -> torch.Tensor:
        with autocast(setup):
            return attack(x, y)

    return {
        "gradient": gradient,
        "clean": train_step("clean"),
        "attack": attack_only,
        "trades": train_step("trades"),
        "classic_at": train_step("classic_at"),
    }


class _NoModuleTracking:
    """FlopCounterMode attributes FLOPs to modules with hooks that fail under `torch.autograd.grad` of a
    leaf input (what every attack does); only the total is needed here."""

    parents = {"Global"}

    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def count_flops(work: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracking()
    with counter:
        work()
    return counter.get_total_flops()


def peak_memory_mb(work: Callable[[], object], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    work()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def step_composition(setup: Setup) -> dict[str, object]:
    """Seconds, images/s, FLOPs, MFU and (CUDA) peak memory of each part, and the attack against its floor."""
    device = torch.device(setup.device)
    model = build_model(setup)
    x, y = batch(setup)
    parts = steps(setup, model, x, y)
    compile_seconds = median_seconds(parts["trades"], device, repeats=1, warmup=0) if setup.compile else None
    seconds = {name: median_seconds(work, device, setup.repeats) for name, work in parts.items()}
    flops = {name: count_flops(work) for name, work in parts.items()} if not setup.compile else {}
    peak_flops, peak_source = peak(device, setup.dtype)
    k = (setup.attack or AttackConfig()).steps
    images = {name: setup.batch_size / seconds[name] for name in ("clean", "trades", "classic_at")}
    result: dict[str, object] = {
        "seconds": seconds,
        "images_per_s": images,
        "flops": flops,
        "attack_steps": k,
        "attack_floor_ratio": seconds["attack"] / (k * seconds["gradient"]),
        "attack_per_gradient_ratio": seconds["attack"] / ((k + 1) * seconds["gradient"]),
        "peak_flops": peak_flops,
        "peak_source": peak_source,
        "mfu": {name: flops[name] / seconds[name] / peak_flops for name in flops},
        "peak_memory_mb": {name: peak_memory_mb(work, device) for name, work in parts.items()},
    }
    if compile_seconds is not None:
        result["compile_seconds"] = compile_seconds
    return result


def fits(setup: Setup, size: int) -> bool:
    """Whether a TRADES step on a batch of `size` fits in the GPU's memory."""
    model = build_model(setup)
    x, y = batch(setup, size)
    try:
        steps(setup, model, x, y)["trades"]()
        synchronize(torch.device(setup.device))
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        del model, x, y
        torch.cuda.empty_cache()


def largest_batch(setup: Setup, limit: int = 8192) -> int | None:
    """The largest batch whose TRADES step fits (CUDA only): doubling, then bisection."""
    if torch.device(setup.device).type != "cuda":
        return None
    low, high = 0, setup.batch_size
    while high <= limit and fits(setup, high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > max(low // 16, 1):  # to within 1/16
        middle = (low + high) // 2
        low, high = (middle, high) if fits(setup, middle) else (low, middle)
    return low or None
