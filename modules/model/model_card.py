"""The model card (README.md) of an exported model: what it is robust to, in the form model hubs index.

Its YAML front matter names the library (timm), the tags, the dataset, the base model it was
fine-tuned from, the licence when the base model's is known, and a `model-index` with one result
per measurement (clean, AutoAttack Linf / L2 / L1 with their radius and version, common corruptions
with their severity and assignment, the number of test images), built with huggingface_hub's own
`ModelCardData` / `EvalResult` so that the hub reads it. The body says how the model was trained
and measured, the figures, how to load it, how to measure it again, and the paper to cite.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from modules.model.export import Exported
from modules.vocabulary import PAPER_COLUMN_OF, loss_label, protocol_label

TAGS = ["image-classification", "timm", "adversarial-robustness", "robust-fine-tuning", "autoattack"]
PAPER = "https://arxiv.org/abs/2508.14079"
CITATION = """@article{heuillet2025guide,
  title   = {A Guide to Robust Generalization: The Impact of Architecture, Pre-training, and Optimization Strategy},
  author  = {Heuillet, Maxime and Bhagwatkar, Rishika and Ngnaw{\\'e}, Jonas and Pequignot, Yann and
             Larouche, Alexandre and Gagn{\\'e}, Christian and Rish, Irina and Ahmad, Ola and Durand, Audrey},
  journal = {arXiv preprint arXiv:2508.14079},
  year    = {2025}
}"""
STUDY_ORDER = ("clean", "linf", "l2", "l1", "common")
ATTACK_NAMES = {"autoattack": "AutoAttack (standard)", "apgd": "APGD-CE", "apgd-t": "APGD-T", "square": "Square"}


def radius(eps: float, norm: str) -> str:
    """4/255 for the Linf radii people quote that way, the number otherwise."""
    if norm == "Linf":
        fraction = Fraction(eps * 255).limit_denominator(8)
        if abs(float(fraction) - eps * 255) < 1e-6:
            return f"{fraction}/255"
    return f"{eps:g}"


def describe(measurement: str, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A measurement's name as a person reads it, and its settings as the model-index records them."""
    if measurement == "clean":
        return "clean accuracy", {"precision": settings.get("precision")}
    if measurement == "common":
        args = {key: settings.get(key) for key in ("severity", "assignment", "corruptions", "seed")}
        return f"common corruptions accuracy (ImageNet-C, severity {settings.get('severity')})", args
    if "norm" in settings:
        algorithm = settings.get("algorithm", "")
        attack = ATTACK_NAMES.get(algorithm, algorithm)
        if algorithm != "autoattack":
            attack += f", {settings.get('steps')} steps"
        norm, eps = settings["norm"], float(settings["eps"])
        args = {
            "norm": norm,
            "eps": eps,
            "attack": algorithm,
            "version": "standard" if algorithm == "autoattack" else "custom",
            "components": settings.get("components"),
            "steps": settings.get("steps"),
            "square_queries": settings.get("square_queries") if algorithm in ("autoattack", "square") else None,
            "precision": settings.get("precision"),
            "seed": settings.get("seed"),
        }
        return f"{norm} robust accuracy ({attack}, eps {radius(eps, norm)})", args
    return f"{measurement} accuracy", dict(settings)


def measured(record: dict[str, Any]) -> list[tuple[str, str, float, dict[str, Any]]]:
    """(measurement, name, accuracy, settings) of every measurement in a results.json, in its order."""
    rows = []
    attacks = record.get("attacks", {})
    for measurement in sorted(attacks, key=lambda name: (STUDY_ORDER.index(name) if name in STUDY_ORDER else 9, name)):
        settings = attacks[measurement]
        column = PAPER_COLUMN_OF.get(f"{measurement}_acc", f"{measurement}_acc")
        if isinstance(record.get(column), (int, float)):
            name, args = describe(measurement, settings)
            rows.append((measurement, name, float(record[column]), {k: v for k, v in args.items() if v is not None}))
    return rows


def base_model(exported: Exported) -> str | None:
    """The hub repository the fine-tune started from (None: random weights, a local file or folder)."""
    from modules.model.shared import shared_model

    backbone, h = exported.hparams["backbone"], exported.hparams
    if not h.get("pretrained", True) or h.get("weights"):
        return None
    shared = shared_model(backbone)
    if shared is not None:
        return shared.hub_files(()).repo_id if shared.source == "hf-hub" else None
    hub_id = exported.net.pretrained_cfg.get("hf_hub_id")
    return hub_id.partition("@")[0] if hub_id else None


def card_data(exported: Exported, name: str) -> ModelCardData:
    record = exported.record or {}
    images = record.get("num_test_images")
    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=exported.dataset,
            dataset_name=exported.dataset,
            dataset_split="test",
            dataset_args={"num_images": images},
            metric_type="accuracy",
            metric_name=label,
            metric_value=round(value, 6),
            metric_config=measurement,
            metric_args=args,
        )
        for measurement, label, value, args in measured(record)
    ]
    license = exported.net.pretrained_cfg.get("license") if base_model(exported) else None
    return ModelCardData(
        library_name="timm",
        pipeline_tag="image-classification",
        tags=TAGS,
        datasets=[exported.dataset],
        base_model=base_model(exported),
        license=license,
        model_name=name,
        eval_results=results or None,
    )


def trained_rows(exported: Exported) -> list[tuple[str, str]]:
    h = exported.hparams
    attack = h.get("attack") or {}
    settings = (h.get("loss_settings") or {}).get(h.get("loss"), {})
    if base_model(exported):
        start = f"`{base_model(exported)}`"
    elif h.get("weights"):
        start = f"local weights file {h['weights']}"
    else:
        start = f"`{h['backbone']}`" if h.get("pretrained", True) else "random weights"
    epochs = (exported.record or {}).get("epochs")
    size = exported.image_size
    return [
        ("backbone", f"`{h['backbone']}` (timm `{exported.net.pretrained_cfg.get('architecture')}`)"),
        ("started from", start),
        ("dataset", f"{exported.dataset} ({exported.net.num_classes} classes), images resized to {size}x{size}"),
        (
            "loss",
            loss_label(h.get("loss", ""))
            + (f" ({', '.join(f'{k} {v}' for k, v in settings.items())})" if settings else ""),
        ),
        ("protocol", protocol_label(h.get("protocol", ""), epochs) if epochs else str(h.get("protocol"))),
        ("weights", f"after epoch {exported.epoch + 1}" if exported.epoch is not None else "not recorded"),
        (
            "training attack",
            f"{ATTACK_NAMES.get(attack.get('algorithm'), attack.get('algorithm'))} {attack.get('norm')}, eps "
            f"{radius(float(attack.get('eps', 0)), attack.get('norm', ''))}, {attack.get('steps')} steps",
        ),
        (
            "optimizer",
            f"AdamW, lr {h.get('lr_backbone')} (backbone) / {h.get('lr_head')} (head), weight decay "
            f"{h.get('wd_backbone')} / {h.get('wd_head')}, cosine schedule {h.get('cosine')}",
        ),
        ("precision", exported.precision or "not recorded"),
    ]


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def card_text(exported: Exported, name: str, folder: str) -> str:
    """The README.md of an export named `name`; `folder` is where it lies (or the hub id once pushed)."""
    record = exported.record or {}
    rows = measured(record)
    data = card_data(exported, name)
    h = exported.hparams
    figures = (
        table(("measurement", "accuracy"), [(label, f"{value:.4f}") for _, label, value, _ in rows])
        + f"\n\nOn the {record.get('num_test_images')} test images of {exported.dataset}, measured by "
        "`python -m app test` of robust-finetune: attacks and predictions in the precision given with each "
        "measurement, every perturbation inside its ball and in [0, 1]. `results.json` holds every setting, "
        "the per-corruption accuracies and which attack broke which examples."
        if rows
        else "Not measured yet: the run's test did not measure these weights. Measure them with the command "
        "below, then export again."
    )
    size = exported.image_size
    body = f"""
# {name}

`{h["backbone"]}` fine-tuned on **{exported.dataset}** with the robust loss **{loss_label(h.get("loss", ""))}** by
robust-finetune, the robust fine-tuning of Heuillet et al., *A Guide to Robust Generalization*
([arXiv 2508.14079]({PAPER})).

## Robustness

{figures}

## How it was trained

{table(("setting", "value"), trained_rows(exported))}

## How to use it

The model takes images normalized with the mean and std in `config.json` (`pretrained_cfg`), at
{size}x{size}, resized without cropping; timm's own data config applies them:

```python
import timm, torch
from PIL import Image

model = timm.create_model("{folder}", pretrained=True).eval()
config = timm.data.resolve_data_config({{}}, model=model)
transform = timm.data.create_transform(**config)
with torch.no_grad():
    logits = model(transform(Image.open("image.jpg").convert("RGB")).unsqueeze(0))
names = model.pretrained_cfg.get("label_names")  # the dataset's class names, when known
print(names[int(logits.argmax())] if names else int(logits.argmax()))
```

## Measure it again

```bash
python -m app test --model.backbone {folder} --model.keep_head true --data {exported.dataset} --data.image_size {size}
```

(with `--data.root DIR` for a dataset on disk) runs the five measurements on this model without a
checkpoint (set the robustness settings recorded in `results.json` with `--robustness.*`), and
`python -m app report --results runs/` places it among the published results.

## Citation

```bibtex
{CITATION}
```
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"
