"""A NAS study's page: the Pareto front with the chosen baseline, hypervolume, importances, the front's
architectures stage by stage, and every trial."""
from __future__ import annotations

from html import escape

import optuna
import pandas as pd

from reports import figures
from reports.info import front_info
from reports.layout import figure_html, header, repro_block, trials_table
from search.record import TrialRecord
from space.arch import ArchSpec


def nas_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame) -> str:
    target = study.user_attrs.get("target_macs")
    info = front_info(records, target_macs=target)
    parts = [header(study, frame)]
    if not info.numbers:
        parts.append("<p>No complete trial yet.</p>")
    else:
        baseline = frame[frame["number"] == info.baseline].iloc[0] if info.baseline is not None else None
        if baseline is not None:
            parts.append(f"<p>Chosen baseline: <b>trial {int(baseline['number'])}</b> — accuracy "
                         f"{baseline['accuracy']:.4f}, {int(baseline['macs']):,} MACs, {int(baseline['params']):,} "
                         f"params (highest MnasNet reward at T = {int(target):,} MACs)<br>"
                         f"<code>{escape(str(baseline['arch']))}</code></p>")
        parts.append("<h2>Pareto front: accuracy against MACs</h2>")
        parts.append(figure_html(figures.pareto_figure(frame, info), "pareto"))
        parts.append("<h2>Hypervolume over trials</h2>")
        parts.append(figure_html(figures.hypervolume_figure(info), "hypervolume"))
        parts.append("<h2>Parameter importances (for accuracy)</h2>")
        importance = figures.importance_figure(study)
        parts.append(figure_html(importance, "importance") if importance is not None else
                     '<p class="muted">Needs at least two complete trials with different parameters.</p>')
        parts.append("<h2>Pareto architectures, stage by stage</h2>")
        parts.append(arch_grid(frame, info.front_numbers, baseline=info.baseline))
    parts.append("<h2>Trials</h2>")
    parts.append(trials_table(frame))
    parts.append(repro_block(study, frame))
    return "".join(parts)


def arch_grid(frame: pd.DataFrame, numbers: list[int], *, baseline: int | None) -> str:
    """Each architecture as a row of stage blocks: height by repeats, width by channels, colour by kind."""
    rows = []
    by_number = frame.set_index("number")
    for number in numbers:
        record = by_number.loc[number]
        arch = ArchSpec.parse(str(record["arch"]))
        cells = []
        for stage in arch.stages:
            kind = "ds" if stage.block == "ds" else ("se" if stage.se else "")
            height = 14 * stage.repeats
            width = 24 + stage.channels // 8
            label = f"k{stage.kernel}<br>e{stage.expansion:g}<br>×{stage.repeats}<br>{stage.channels}"
            tip = escape(str(stage))
            cells.append(f'<td><span class="stage {kind}" title="{tip}" style="height:{height + 30}px;'
                         f'width:{width}px">{label}</span></td>')
        mark = " <span class=\"tag\">baseline</span>" if number == baseline else ""
        rows.append(f'<tr><th class="l">trial {number}{mark}<br><span class="muted">{record["accuracy"]:.3f} acc, '
                    f'{record["macs"] / 1e6:.2f}M MACs</span></th>{"".join(cells)}</tr>')
    legend = ('<p class="muted">Blue: inverted residual; red: with SE; green: depthwise-separable. '
              "Height: repeats; width: channels; labels: kernel, expansion, repeats, channels.</p>")
    return f'<table class="arch">{"".join(rows)}</table>{legend}'
