"""Parameter count and one forward+backward time at 224x224, batch 2, for a few backbones per size class
(`python -m app bench --backbone NAME` gives the whole training step of one backbone).

    python benchmarks/backbone_speed.py [--all] [--repeats 3] [--device cpu|cuda] [--threads N] [NAME ...]

Random weights (pretrained=False), a fresh 10-class head, [0, 1] inputs through the model's own
normalization; the time is the median of `--repeats` forward+backward passes after one warm-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.bench.timing import median_seconds  # noqa: E402
from modules.model.backbone_zoo import BACKBONES  # noqa: E402
from modules.model.backbones import create_classifier  # noqa: E402

DEFAULT = [  # a few per size class
    "mobilenetv3_large_100.ra_in1k",
    "deit_tiny_patch16_224.fb_in1k",
    "tf_efficientnet_b0.in1k",
    "resnet50.a1_in1k",
    "convnext_tiny.fb_in1k",
    "vit_small_patch16_224.augreg_in1k",
    "convnext_base.fb_in1k",
    "vit_base_patch16_224.augreg_in1k",
    "swin_base_patch4_window7_224.ms_in22k_ft_in1k",
]


def measure(name: str, device: torch.device, repeats: int) -> tuple[int, float]:
    torch.manual_seed(0)
    model = create_classifier(name, num_classes=10, pretrained=False).to(device).train()
    x = torch.rand(2, 3, 224, 224, device=device)
    y = torch.tensor([0, 1], device=device)
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()

    return params, median_seconds(step, device, repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="backbones (default: three per size class)")
    p.add_argument("--all", action="store_true", help="all 40")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = list(BACKBONES) if args.all else args.names or DEFAULT
    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; batch 2 at 224x224, "
        f"median of {args.repeats} forward+backward passes"
    )
    print(f"{'backbone':<48} {'size':<7} {'params (M)':>10} {'fwd+bwd (s)':>12}")
    for name in names:
        params, seconds = measure(name, device, args.repeats)
        size = BACKBONES[name].size if name in BACKBONES else "-"
        print(f"{name:<48} {size:<7} {params / 1e6:>10.2f} {seconds:>12.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
