"""A NAS study's page: the Pareto front with the chosen baseline, hypervolume, importances, the front's
architectures stage by stage, and every trial."""
from __future__ import annotations

from collections.abc import Callable
from html import escape

import optuna
import pandas as pd

from effnas.reports import figures
from effnas.reports.frames import study_config
from effnas.reports.info import front_info
from effnas.reports.layout import extent, figure_html, header, trials_section
from effnas.search import catalog, selection
from effnas.search.confirmation import ConfirmResult, confirm_result
from effnas.search.record import TrialRecord
from effnas.space.arch import ArchSpec
from effnas.space.cost import stage_costs

MIN_TRIALS_FOR_IMPORTANCE = 30
Siblings = Callable[[str], "optuna.Study | None"]  # another study of the same storage, by name


def quality_of(study: optuna.Study) -> tuple[str, str]:
    """(record key, name) of what the study ranks by: ("accuracy", "accuracy"), or for a zero-cost ``--evaluator``
    study ("score", "synflow score")."""
    evaluator = study.user_attrs.get("evaluator")
    return ("score", f"{evaluator} score") if isinstance(evaluator, str) and evaluator != "train" else \
        ("accuracy", "accuracy")


def nas_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame, siblings: Siblings) -> str:
    target = study.user_attrs.get("target_macs")
    key, quality = quality_of(study)
    base = str(study_config(study).get("base", ""))
    info = front_info(records, target_macs=target, base_label=f"{base} (base)" if "_" not in base else "the base")
    parts = [header(study, frame)]
    if not info.numbers:
        parts.append("<p>No complete trial yet.</p>")
    else:
        chosen = next(selection.quality(r) for r in records if r.number == info.baseline) \
            if info.baseline is not None else None
        if chosen is not None:
            value = f"accuracy {chosen.accuracy:.4f}" if key == "accuracy" else f"{quality} {chosen.accuracy:.6g}"
            parts.append(f"<p>Chosen baseline: <b>trial {chosen.number}</b> — {escape(value)}, "
                         f"{chosen.macs:,} MACs, {chosen.params:,} params (highest MnasNet reward at T = "
                         f"{int(target):,} MACs)<br><code>{escape(str(chosen.arch))}</code></p>")
        confirm = siblings(catalog.companion(study.study_name, catalog.CONFIRM))
        result = confirm_result(confirm) if confirm is not None else None
        parts.append(fidelity_box(result, study.study_name, budget=_budget(study), quality=quality))
        proxy = "the study's proxy training" if key == "accuracy" else "a zero-cost score of untrained networks"
        parts.append(f"<h2>Pareto front: {escape(quality)} against MACs ({proxy})</h2>")
        parts.append(figure_html(figures.pareto_figure(info, quality=quality), "pareto"))
        if result is not None and result.rows:
            parts.append(f"<h2>Confirmed at {result.epochs} epochs: mean ± sd over seeds, references named</h2>")
            parts.append(figure_html(figures.confirmed_figure(result), "confirmed"))
        parts.append("<h2>Hypervolume over trials</h2>")
        if key == "accuracy":
            parts.append(figure_html(figures.hypervolume_figure(info), "hypervolume"))
            parts.append(f'<p class="muted">Reference point: accuracy 0 and {info.hypervolume_reference_macs:,.0f} '
                         "MACs (1.1 × the costliest trial); MACs normalised to it.</p>")
        else:
            parts.append(f'<p class="muted">Not drawn: a hypervolume needs an accuracy in [0, 1], and a '
                         f"{escape(quality)} has no such scale; the confirmed front's is what compares.</p>")
        parts.append(importance_section(study, len(info.numbers), key=key, quality=quality))
        parts.append("<h2>Pareto architectures, stage by stage</h2>")
        parts.append(arch_grid(frame, info.front_numbers, baseline=info.baseline, key=key))
    parts.append(trials_section(study, frame))
    return "".join(parts)


def _value(value: float, key: str) -> str:
    return f"{value:.3f} acc" if key == "accuracy" else f"score {value:.4g}"


def _budget(study: optuna.Study) -> str:
    attrs = study.user_attrs
    if isinstance(attrs.get("evaluator"), str):
        return f"the zero-cost {attrs['evaluator']} score of each untrained network"
    if attrs.get("rungs"):
        return f"successive halving over {attrs['rungs']} epochs"
    epochs = attrs.get("epochs", study_config(study).get("epochs", "?"))
    return f"{epochs} epoch(s) per trial"


def fidelity_box(result: ConfirmResult | None, name: str, *, budget: str, quality: str = "accuracy") -> str:
    """What the study's ranking is worth: the proxy fidelity measured by `effnas confirm`, or that it is not."""
    if result is None or not result.rows:
        measured = "was scored once" if quality != "accuracy" else "trained once"
        return (f'<p class="warn">How far can this front be trusted? Nothing measures it yet: every trial {measured} '
                f"({escape(budget)}), with its own seed. <code>effnas confirm --study {escape(name)}</code> "
                "retrains the best at a longer budget with several seeds and measures how well this ranking "
                "predicts it.</p>")
    f = result.fidelity
    tau = (f"Kendall τ = {f.tau:.2f} (p = {f.p_value:.3f}) over {f.n} retrained trials" if f.tau is not None
           else f"Kendall τ not measurable over {f.n} retrained trial(s)")
    noise = (f"seed noise sd {f.seed_noise:.4f} against a spread of {f.spread:.4f} between architectures"
             if f.seed_noise is not None and f.spread is not None else "seed noise not measured (one seed)")
    text = (f"<p><b>Proxy fidelity</b> (<code>{escape(result.study)}</code>, {result.epochs} epochs): {tau} "
            f"between this study's {escape(quality)} and the confirmed mean; {noise}.")
    if result.baseline is not None:
        text += f" Confirmed baseline: <b>{escape(result.baseline.entry.label)}</b>."
    warnings = "".join(f'<p class="warn">Warning: {escape(w)}.</p>' for w in f.warnings())
    return text + "</p>" + warnings


def importance_section(study: optuna.Study, complete: int, *, key: str = "accuracy", quality: str = "accuracy") -> str:
    head = f"<h2>Parameter importances (for {escape(quality)})</h2>"
    if complete < MIN_TRIALS_FOR_IMPORTANCE:
        return (f'{head}<p class="muted">Not shown: {complete} complete trials. fANOVA fits a random forest to the '
                f"accuracies over every choice of every stage (35 for a 7-stage base); below "
                f"{MIN_TRIALS_FOR_IMPORTANCE} trials its ranking is mostly noise.</p>")
    importance = figures.importance_figure(study, key=key)
    if importance is None:
        return f'{head}<p class="muted">fANOVA could not be fitted to these trials.</p>'
    return (f"{head}{figure_html(importance, 'importance')}<p class=\"muted\">fANOVA over {complete} trials: which "
            "choices moved this study's proxy accuracy, not the architectures' accuracy at a full budget; "
            "importances near zero are indistinguishable from noise at this size.</p>")


def arch_grid(frame: pd.DataFrame, numbers: list[int], *, baseline: int | None, key: str = "accuracy") -> str:
    """Each architecture as a row of stage blocks: height by repeats, width by channels, colour by kind, and
    the size of the maps each stage outputs (H×W, or D×H×W for a volume network)."""
    rows = []
    by_number = frame.set_index("number")
    for number in numbers:
        record = by_number.loc[number]
        arch = ArchSpec.parse(str(record["arch"]))
        sizes = [r.out_size for r in stage_costs(arch, int(record["resolution"]))[1:-1]]
        cells = []
        for stage, size in zip(arch.stages, sizes):
            kind = "ds" if stage.block == "ds" else ("se" if stage.se else "")
            height = 14 * stage.repeats
            width = 24 + stage.channels // 8
            label = (f"k{stage.kernel}<br>e{stage.expansion:g}<br>×{stage.repeats}<br>{stage.channels}"
                     f"<br>{extent(size, dims=arch.dims)}")
            tip = escape(str(stage))
            cells.append(f'<td><span class="stage {kind}" title="{tip}" style="height:{height + 30}px;'
                         f'width:{width}px">{label}</span></td>')
        mark = " <span class=\"tag\">baseline</span>" if number == baseline else ""
        rows.append(f'<tr><th class="l">trial {number}{mark}<br><span class="muted">{_value(record[key], key)}, '
                    f'{record["macs"] / 1e6:.2f}M MACs</span></th>{"".join(cells)}</tr>')
    legend = ('<p class="muted">Blue: inverted residual; red: with SE; green: depthwise-separable. '
              "Height: repeats; width: channels; labels: kernel, expansion, repeats, channels, output size.</p>")
    return f'<table class="arch">{"".join(rows)}</table>{legend}'
