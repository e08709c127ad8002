"""What a training run's page shows, read from its folder (search/training/checkpoint.py's layout) without drawing:
the learning curves, the final accuracies, the confusion matrix and example predictions."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effnas.search.training.checkpoint import read_run


@dataclass(frozen=True)
class RunInfo:
    name: str
    config: dict[str, Any]
    epochs: list[int]
    planned_epochs: int
    train_loss: list[float]
    val_loss: list[float]
    val_accuracy: list[float]
    ema_val_loss: list[float]
    ema_val_accuracy: list[float]
    images_per_second: list[float]
    metrics: list[dict[str, Any]]
    evaluation: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.evaluation is not None

    def final(self) -> dict[str, float | None]:
        """The accuracies the page and the index state."""
        evaluation = self.evaluation or {}
        test = evaluation.get("test")
        return {"validation": (evaluation.get("validation") or {}).get("accuracy"),
                "test": test["accuracy"] if test else None,
                "last_epoch_validation": self.val_accuracy[-1] if self.val_accuracy else None,
                "last_epoch_validation_ema": self.ema_val_accuracy[-1] if self.ema_val_accuracy else None}


def run_info(folder: Path) -> RunInfo:
    files = read_run(folder)
    rows = files.metrics

    def column(key: str) -> list[float]:
        return [row[key] for row in rows if key in row]

    evaluation = files.evaluation
    return RunInfo(name=Path(folder).name, config=files.config, epochs=[row["epoch"] for row in rows],
                   planned_epochs=int(files.config.get("settings", {}).get("epochs", len(rows))),
                   train_loss=column("train_loss"), val_loss=column("val_loss"), val_accuracy=column("val_accuracy"),
                   ema_val_loss=column("ema_val_loss"), ema_val_accuracy=column("ema_val_accuracy"),
                   images_per_second=column("images_per_second"), metrics=rows, evaluation=evaluation,
                   examples=list((evaluation or {}).get("examples", [])))
