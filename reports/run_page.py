"""A training run's page (``effnas train``): final accuracies, learning curves, the confusion matrix and
example validation images with their predicted and true labels (the inference demo), all self-contained."""
from __future__ import annotations

import json
from html import escape
from typing import Any

import pandas as pd

from effnas.reports import figures
from effnas.reports.layout import figure_html, table_html
from effnas.reports.runs import RunInfo


def run_body(info: RunInfo) -> str:
    """A training run: what it is, its final accuracies, learning curves, confusion matrix, example predictions."""
    c = info.config
    state = "finished" if info.finished else f"{len(info.epochs)} of {info.planned_epochs} epochs so far"
    parts = [f'<p><a href="index.html">← all studies and runs</a></p><h1>{escape(info.name)}</h1>'
             f'<p><span class="tag">training run</span> {escape(str(c.get("label", "")))}, {escape(state)}</p>'
             f'<p><code>{escape(str(c.get("arch", "")))}</code><br>{c.get("params", 0):,} params, '
             f'{c.get("macs", 0):,} MACs at {c.get("resolution")}px, {c.get("num_classes")} classes</p>']
    final = info.final()
    rows = [("validation accuracy (last epoch)", final["last_epoch_validation"]),
            ("validation accuracy, moving average (last epoch)", final["last_epoch_validation_ema"]),
            ("validation accuracy (final evaluation, the weights predict and export use)", final["validation"]),
            ("test accuracy (held out, evaluated once)", final["test"])]
    cells = "".join(f'<tr><th class="l">{escape(k)}</th><td>{v:.4f}</td></tr>' for k, v in rows if v is not None)
    parts.append(f"<h2>Final accuracies</h2><table>{cells}</table>")
    if info.epochs:
        parts.append("<h2>Learning curves</h2>")
        parts.append(figure_html(figures.learning_curves_figure(info), "curves"))
    if info.evaluation is not None:
        classes = info.evaluation["classes"]
        parts.append("<h2>Confusion matrix (validation)</h2>")
        parts.append(figure_html(figures.confusion_figure(info.evaluation["validation"]["confusion"], classes),
                                 "confusion"))
        parts.append("<h2>Example validation images: predicted (probability) / true</h2>")
        parts.append(examples_grid(info.examples, classes))
    if info.metrics:
        parts.append("<h2>Epochs</h2>")
        parts.append(table_html(pd.DataFrame(info.metrics).astype(object)))
    parts.append(f"<h2>Configuration</h2><pre>{escape(json.dumps(info.config.get('settings', {}), indent=2))}</pre>")
    return "".join(parts)


def examples_grid(examples: list[dict[str, Any]], classes: list[str]) -> str:
    """Each image embedded as a data: URI, under it the prediction and the truth; mistakes in red."""
    cells = []
    for e in examples:
        wrong = e["predicted"] != e["true"]
        caption = (f'{escape(classes[e["predicted"]])} ({e["probability"]:.2f}) / {escape(classes[e["true"]])}')
        cells.append(f'<figure class="example{" wrong" if wrong else ""}"><img alt="validation image {e["index"]}" '
                     f'src="data:image/png;base64,{e["png"]}"><figcaption>{caption}</figcaption></figure>')
    return f'<div class="examples">{"".join(cells)}</div>'
