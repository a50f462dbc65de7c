"""The JSON files of `python -m app bench`: one backbone's (`--json`) or a suite's (`--suite OUT`,
whose `bench` list holds one such object per backbone). The sweep's cost estimate prices its
backbones from them, and `data.batch_size: null` takes a benched backbone's measured batch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modules.registry import ConfigError

REQUIRED = ("backbone", "batch_size", "train_images_per_s", "steps")


def read_benches(path: Path, option: str = "--bench") -> list[dict[str, Any]]:
    """The bench objects of a bench or suite JSON; one line naming the file when it is neither."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{option} {path}: not a readable JSON file ({error})") from None
    benches = data.get("bench") if isinstance(data, dict) and "suite_version" in data else [data]
    if not benches:
        raise ConfigError(f"{option} {path}: a suite without bench figures (its bench part did not run)")
    for bench in benches:
        missing = [key for key in REQUIRED if not isinstance(bench, dict) or key not in bench]
        if not missing and "gradient" not in bench["steps"].get("seconds", {}):
            missing = ["steps.seconds.gradient"]
        if missing:
            raise ConfigError(
                f"{option} {path}: not the JSON of `python -m app bench --json` or `--suite` "
                f"(missing {', '.join(missing)})"
            )
    return benches


def measured_batch(benches: list[dict[str, Any]], backbone: str, image_size: int, loss: str) -> int | None:
    """The per-device batch of `loss` for `backbone` at `image_size` from its measured largest TRADES
    batch (`--max-batch`), scaled by the loss's batch factor against TRADES'; None when not benched so."""
    from modules.model.losses import LOSSES

    for bench in benches:
        if bench["backbone"] == backbone and bench.get("image_size") == image_size and bench.get("max_batch"):
            factor = LOSSES.get(loss).batch_factor / LOSSES.get("trades").batch_factor
            return max(1, int(bench["max_batch"] * factor))
    return None
