"""Self-contained HTML reports: one page per study and per training run and an index, readable offline from
file://.

plotly.js is written once beside the pages (``plotly.min.js``) and loaded by a relative path; no page
references a network address; a run's example images are embedded as data: URIs. Every string a user or a
study chose is escaped. Every file is written atomically.
"""
from __future__ import annotations

import hashlib
import json
import re
from html import escape
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go

from reports import figures
from reports.frames import study_config, study_records, trials_frame
from reports.front import front_info
from reports.runs import RunInfo, run_info
from search import selection
from search.checkpoint import write_atomic
from search.record import TrialRecord
from space.arch import ArchSpec
from space.compound import Triple, family

PLOTLY_JS = "plotly.min.js"
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#1d2430}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde;
padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #eee;text-align:right}
th{background:#f4f6fa;cursor:pointer;position:sticky;top:0}td.l,th.l{text-align:left}
code,pre{font-family:ui-monospace,Menlo,monospace;font-size:.8rem}pre{background:#f7f7f9;padding:.6rem;overflow:auto}
.muted{color:#667}.tag{display:inline-block;padding:0 .4rem;border-radius:.6rem;background:#e8eefc;font-size:.8rem}
.arch td{padding:.15rem .3rem;vertical-align:bottom}.stage{display:inline-block;background:#4a78c2;color:#fff;
border-radius:3px;font-size:.7rem;text-align:center;line-height:1.1;padding:2px 0;min-width:2.2rem}
.stage.se{background:#c2574a}.stage.ds{background:#6b9a4a}.scroll{max-height:28rem;overflow:auto}
.scroll td.l{white-space:nowrap}
.examples{display:flex;flex-wrap:wrap;gap:.5rem}.example{margin:0;text-align:center;font-size:.75rem}
.example img{width:72px;height:72px;image-rendering:pixelated;border:2px solid #2a62c9}
.example.wrong img{border-color:#c92a2a}.example.wrong figcaption{color:#c92a2a}
"""
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){th.addEventListener('click', function(){
 var body = th.closest('table').tBodies[0], rows = Array.from(body.rows), asc = th.dataset.asc !== '1';
 th.dataset.asc = asc ? '1' : '0';
 rows.sort(function(a, b){var x = a.cells[col].dataset.v ?? a.cells[col].textContent,
  y = b.cells[col].dataset.v ?? b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
  var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y); return asc ? c : -c;});
 rows.forEach(function(r){body.appendChild(r);});});});
"""


def safe_name(name: str) -> str:
    """A file name for any study name: readable part plus a hash, so two names never collide."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "study"
    return f"{readable}-{hashlib.sha1(name.encode()).hexdigest()[:8]}.html"


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style>"
            f"<script src=\"{PLOTLY_JS}\"></script></head><body>{body}<script>{SORT_JS}</script></body></html>\n")


def figure_html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def table_html(frame: pd.DataFrame, *, left: tuple[str, ...] = (), css: str = "sortable") -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{escape(str(c))}</th>' for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            shown, sort = _cell(value)
            cls = ' class="l"' if column in left else ""
            cells.append(f'<td{cls} data-v="{escape(sort)}">{escape(shown)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _cell(value: Any) -> tuple[str, str]:
    if value is None or (isinstance(value, float) and value != value):
        return "", ""
    if isinstance(value, float):
        return (f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"), repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}", str(value)
    return str(value), str(value)


def repro_block(study: optuna.Study, frame: pd.DataFrame) -> str:
    config = study_config(study)
    attrs = study.user_attrs
    devices = sorted({str(d) for d in frame.get("device", pd.Series(dtype=object)).dropna()})
    facts = [
        ("effnas version", attrs.get("version", "?")), ("seed", attrs.get("seed", config.get("seed", "?"))),
        ("dataset", attrs.get("dataset", config.get("dataset", "?"))), ("split", attrs.get("split", "?")),
        ("resolution", attrs.get("resolution", config.get("resolution", "?"))),
        ("device(s)", ", ".join(devices) or "none yet"), ("sampler", attrs.get("sampler", "?")),
    ]
    rows = "".join(f'<tr><th class="l">{escape(k)}</th><td class="l"><code>{escape(str(v))}</code></td></tr>'
                   for k, v in facts)
    return (f"<h2>Reproducibility</h2><table>{rows}</table>"
            f"<p class=\"muted\">Full configuration (storage credentials masked):</p>"
            f"<pre>{escape(json.dumps(config, indent=2, sort_keys=True))}</pre>")


def nas_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame) -> str:
    target = study.user_attrs.get("target_macs")
    info = front_info(records, target_macs=target)
    parts = [_header(study, frame)]
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


def trials_table(frame: pd.DataFrame) -> str:
    columns = [c for c in ("number", "state", "accuracy", "macs", "params", "reward", "alpha", "beta", "gamma",
                           "phi", "macs_ratio", "resolution", "train_seconds", "infeasible", "error", "arch")
               if c in frame.columns]
    return f'<div class="scroll">{table_html(frame[columns], left=("state", "arch", "error", "infeasible"))}</div>'


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


def _header(study: optuna.Study, frame: pd.DataFrame) -> str:
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"
    kind = study.user_attrs.get("kind", "?")
    return (f'<p><a href="index.html">← all studies</a></p><h1>{escape(study.study_name)}</h1>'
            f'<p><span class="tag">{escape(str(kind))}</span> {escape(summary)}</p>')


def scaling_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame) -> str:
    parts = [_header(study, frame)]
    chosen = selection.best_triple(records)
    if chosen is not None:
        grid = frame[(frame["state"] == "COMPLETE") & frame["number"].isin(
            [r.number for r in records if r.role in (None, "grid") and r.alpha is not None])]
        parts.append(f"<p>Chosen triple: <b>α = {chosen.alpha:.2f}, β = {chosen.beta:.2f}, γ = {chosen.gamma:.2f}"
                     f"</b> (trial {chosen.number}): accuracy {chosen.accuracy:.4f}, "
                     f"{chosen.macs:,} MACs, real MACs ratio {chosen.macs_ratio:.3f}</p>")
        parts.append("<h2>Accuracy over the (α, β, γ) grid</h2>")
        parts.append(figure_html(figures.grid_figure(grid, chosen), "grid"))
    family = family_info(study, frame, chosen)
    if family:
        parts.append("<h2>The scaled family: MACs against accuracy per φ</h2>")
        parts.append(figure_html(figures.family_figure(family), "family"))
        columns = ["phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_ratio",
                   "accuracy", "arch"]
        table = pd.DataFrame(family)
        parts.append(table_html(table[[c for c in columns if c in table]], left=("arch",)))
    parts.append("<h2>Trials</h2>")
    parts.append(trials_table(frame))
    parts.append(repro_block(study, frame))
    return "".join(parts)


def family_info(study: optuna.Study, frame: pd.DataFrame, best: TrialRecord | None) -> list[dict[str, Any]]:
    """The family rows to draw: trained members of the chosen triple, else phi 0..3 derived from it."""
    if best is None or "baseline" not in study.user_attrs:
        return []
    triple = Triple(float(best.alpha), float(best.beta), float(best.gamma))
    trained = {}
    if "role" in frame:
        members = frame[(frame["role"] == "family") & (frame["state"] == "COMPLETE")]
        for row in members.itertuples():
            if (row.alpha, row.beta, row.gamma) == (triple.alpha, triple.beta, triple.gamma):
                trained[round(float(row.phi), 6)] = float(row.accuracy)
    phis = sorted(set(trained) | {0.0, 1.0, 2.0, 3.0})
    rows = family(ArchSpec.parse(study.user_attrs["baseline"]), resolution=int(study.user_attrs["base_resolution"]),
                  triple=triple, phis=phis, multiple=int(study.user_attrs.get("resolution_multiple", 8)),
                  num_classes=int(study.user_attrs.get("num_classes", 1000)))
    out = []
    for m in rows:
        row = m.to_dict()
        row["accuracy"] = trained.get(round(m.phi, 6))
        if m.phi == float(study.user_attrs.get("phi", 1.0)) and row["accuracy"] is None:
            row["accuracy"] = float(best.accuracy)  # the grid trained this member already
        out.append(row)
    return out


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


def study_page(study: optuna.Study) -> str:
    records = study_records(study)
    frame = trials_frame(records)
    body = (scaling_body if study.user_attrs.get("kind") == "scaling" else nas_body)(study, records, frame)
    return page(f"effnas — {study.study_name}", body)


def index_entry(study: optuna.Study, file_name: str) -> dict[str, Any]:
    records = study_records(study)
    top = selection.most_accurate(records)
    best = f"{top.accuracy:.4f} @ {top.macs / 1e6:.2f}M MACs" if top is not None else ""
    return {"name": study.study_name, "file": file_name, "kind": study.user_attrs.get("kind", "?"),
            "complete": sum(r.state == "COMPLETE" for r in records), "trials": len(records), "best": best}


def index_page(entries: list[dict[str, Any]], *, storage_label: str, runs: list[dict[str, Any]] = ()) -> str:
    rows = "".join(
        f'<tr><td class="l"><a href="{escape(e["file"])}">{escape(e["name"])}</a></td>'
        f'<td class="l">{escape(str(e["kind"]))}</td><td>{e["complete"]}</td><td>{e["trials"]}</td>'
        f'<td class="l">{escape(e["best"])}</td></tr>' for e in entries)
    body = (f"<h1>effnas studies</h1><p class=\"muted\">{escape(storage_label)}</p>"
            f'<table class="sortable"><thead><tr><th class="l">study</th><th class="l">kind</th><th>complete</th>'
            f'<th>trials</th><th class="l">best (accuracy @ MACs)</th></tr></thead><tbody>{rows}</tbody></table>')
    if runs:
        cells = "".join(
            f'<tr><td class="l"><a href="{escape(r["file"])}">{escape(r["name"])}</a></td>'
            f'<td class="l">{escape(str(r["label"]))}</td><td>{r["epochs"]}</td><td>{_accuracy(r["validation"])}</td>'
            f'<td>{_accuracy(r["test"])}</td></tr>' for r in runs)
        body += ('<h1>Training runs</h1><table class="sortable"><thead><tr><th class="l">run</th>'
                 '<th class="l">network</th><th>epochs</th><th>validation accuracy</th><th>test accuracy</th></tr>'
                 f"</thead><tbody>{cells}</tbody></table>")
    return page("effnas studies", body)


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_report(storage: Any, *, names: list[str], out: Path, storage_label: str,
                 runs: list[Path] = ()) -> list[Path]:
    """Write DIR/index.html, one page per study and per training run, and plotly.min.js once; returns the pages."""
    from plotly.offline import get_plotlyjs

    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / PLOTLY_JS, get_plotlyjs())
    written, entries, run_entries = [], [], []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        file_name = safe_name(name)
        write_atomic(out / file_name, study_page(study))
        entries.append(index_entry(study, file_name))
        written.append(out / file_name)
    for folder in runs:
        info = run_info(folder)
        file_name = safe_name(f"run:{info.name}")
        write_atomic(out / file_name, page(f"effnas — run {info.name}", run_body(info)))
        final = info.final()
        run_entries.append({"name": info.name, "file": file_name, "label": info.config.get("label", ""),
                            "epochs": len(info.epochs), "validation": final["validation"] or
                            final["last_epoch_validation"], "test": final["test"]})
        written.append(out / file_name)
    write_atomic(out / "index.html", index_page(entries, storage_label=storage_label, runs=run_entries))
    return [out / "index.html", *written]
