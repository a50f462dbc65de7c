"""Figures of an evaluation in TensorBoard: the expected-robustness curve and a grid of example inputs."""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger


def collect_examples(measurements: dict, dataset) -> list[tuple]:
    """Up to 8 inputs of each measurement's last batch, with the model's predictions and the labels."""
    examples = []
    for name, measurement in measurements.items():
        if measurement.last_inputs is None:
            continue
        x = measurement.last_inputs[:8]
        predictions = measurement.predict(x).tolist()
        labels = [int(dataset[i][1]) for i in measurement.last_indices[:8]]
        examples.append((name, x.detach().cpu(), predictions, labels))
    return examples


def log_figures(logger: TensorBoardLogger, split: str, report: dict, step: int) -> None:
    """The expected-robustness curve (when measured) and the example grid, as TensorBoard figures; the
    checks of the measurements (when run), as text."""
    if "checks" in report:
        lines = [f"- **warning** {line}" for line in report["warnings"]] or ["- every check passed (or was skipped)"]
        logger.experiment.add_text(f"{split}/checks", "\n".join(lines), step)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return
    curve = report.get("expected_robustness")
    if curve:
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([e * 255 for e in curve["eps"]], curve["accuracy"], marker="o")
        ax.set(xlabel="Linf eps (x 1/255)", ylabel="accuracy", title=f"expected robustness {curve['area']:.3f}")
        logger.experiment.add_figure(f"{split}/expected_robustness", fig, step)
        plt.close(fig)
    examples = report.pop("_examples", None)
    if examples:
        rows = len(examples)
        count = min(len(examples[0][1]), 8)
        fig, axes = plt.subplots(rows, count, figsize=(1.4 * count, 1.6 * rows), squeeze=False)
        for r, (name, images, predictions, labels) in enumerate(examples):
            for c in range(count):
                ax = axes[r][c]
                ax.imshow(images[c].permute(1, 2, 0).float().clamp(0, 1).numpy())
                ok = predictions[c] == labels[c]
                ax.set_title(f"{name}: {predictions[c]}", fontsize=7, color="green" if ok else "red")
                ax.axis("off")
        fig.tight_layout()
        logger.experiment.add_figure(f"{split}/examples", fig, step)
        plt.close(fig)
