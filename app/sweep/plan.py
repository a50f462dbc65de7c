"""What a sweep has left to do, and what it needs, before anything is launched: each cell's status
from its folder, the missing dataset folders and pretrained weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.sweep.cells import Cell
from app.sweep.folders import folder_status
from app.sweep.ledger import Ledger
from app.sweep.spec import Sweep, setting
from datamodules import DATAMODULES, FileImageDataModule


def status(cell_dir: Path, ledger: Ledger, cell: Cell) -> str:
    """complete, failed (the ledger says so), training, tuning or pending: the folders decide
    (folders.folder_status); the ledger only remembers failures."""
    state = folder_status(cell_dir)
    if state != "complete" and ledger.get(cell).get("status") == "failed":
        return "failed"
    return state


def pretrained(sweep: Sweep, protocol: str) -> bool:
    """Whether a protocol's runs start from pretrained weights (as the CLI would resolve it)."""
    found = setting(
        "model.init_args.pretrained",
        [sweep.overrides, sweep.protocols[protocol].overrides],
        sweep.protocols[protocol].configs,
    )
    return True if found is None else bool(found)


@dataclass
class Plan:
    statuses: dict[Cell, str]
    missing_roots: list[str] = field(default_factory=list)
    missing_weights: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for value in self.statuses.values():
            counts[value] = counts.get(value, 0) + 1
        return counts

    def todo(self) -> dict[Cell, str]:
        """The cells still to run (neither complete nor failed), with their status."""
        return {cell: value for cell, value in self.statuses.items() if value not in ("complete", "failed")}

    def blockers(self) -> list[str]:
        return [*self.missing_roots, *self.missing_weights]


def plan(sweep: Sweep, selected: list[Cell], out: Path, ledger: Ledger) -> Plan:
    """Statuses and blockers (dataset folders, uncached weights of cells still to run)."""
    from modules.model.backbone_zoo import backbone_info
    from modules.model.backbones import resolve_timm_name
    from modules.model.pretrained import cached_file, hub_weights
    from modules.model.shared import cached, shared_model

    result = Plan({cell: status(cell.folder(out), ledger, cell) for cell in selected})
    todo = result.todo()
    for dataset in sorted({cell.dataset for cell in todo}):
        root = sweep.data_roots.get(dataset)
        if issubclass(DATAMODULES.get(dataset), FileImageDataModule) and (root is None or not root.is_dir()):
            result.missing_roots.append(
                f"dataset {dataset}: folder {root or '(none: give data_roots.' + dataset + ')'} not found"
            )
    for backbone in sorted({cell.backbone for cell in todo if pretrained(sweep, cell.protocol)}):
        info = backbone_info(backbone)
        if backbone in sweep.weights or (info is not None and info.checkpoint_format):
            path = sweep.weights.get(backbone)
            if path is None or not path.is_file():
                result.missing_weights.append(
                    f"backbone {backbone}: checkpoint file {path or '(none: give weights.' + backbone + ')'} not found"
                )
            continue
        shared = shared_model(backbone)
        if shared is not None:
            if shared.source == "hf-hub" and cached(shared) is None:
                result.missing_weights.append(
                    f"backbone {backbone}: not in the cache (python -m app weights fetch {backbone})"
                )
            continue
        weights = hub_weights(resolve_timm_name(backbone))
        if weights is not None and cached_file(weights) is None:
            result.missing_weights.append(
                f"backbone {backbone}: pretrained weights not in the cache (python -m app weights fetch {backbone})"
            )
    return result
