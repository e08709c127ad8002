"""The parts every report page shares: the page shell, figures, tables, the header and the
reproducibility block. Pages work offline: plotly.js is loaded from a file beside them, and every string a
user or a study chose is escaped."""
from __future__ import annotations

import hashlib
import json
import re
from html import escape
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go

from effnas.reports.frames import study_config
from effnas.space.checks import is_int

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
.left-out{border-left:4px solid #c60;background:#fff6ee;padding:.1rem .8rem;margin:.6rem 0}
.muted{color:#667}.tag{display:inline-block;padding:0 .4rem;border-radius:.6rem;background:#e8eefc;font-size:.8rem}
.arch td{padding:.15rem .3rem;vertical-align:bottom}.stage{display:inline-block;background:#4a78c2;color:#fff;
border-radius:3px;font-size:.7rem;text-align:center;line-height:1.1;padding:2px 0;min-width:2.2rem}
.stage.se{background:#c2574a}.stage.ds{background:#6b9a4a}.scroll{max-height:28rem;overflow:auto}
.scroll td.l{white-space:nowrap}
.warn{background:#fff4e6;border-left:4px solid #e8590c;padding:.4rem .6rem}
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
    if is_int(value):
        return f"{value:,}", str(value)
    return str(value), str(value)


SAMPLERS = {"scaling": "grid: every triple once, then the best --top with --seeds seeds",
            "family": "none: one trial per phi", "confirm": "none: each architecture once per seed"}


def repro_block(study: optuna.Study, frame: pd.DataFrame) -> str:
    config = study_config(study)
    attrs = study.user_attrs
    devices = sorted({str(d) for d in frame.get("device", pd.Series(dtype=object)).dropna()})
    facts = [
        ("effnas version", attrs.get("version", "?")), ("seed", attrs.get("seed", config.get("seed", "?"))),
        ("dataset", attrs.get("dataset", config.get("dataset", "?"))), ("split", attrs.get("split", "?")),
        ("resolution", attrs.get("resolution", attrs.get("base_resolution", config.get("resolution", "?")))),
        ("dimensions", dims_label(attrs.get("dims", config.get("dims", 2)))),
        ("device(s)", ", ".join(devices) or "none yet"),
        ("sampler", attrs.get("sampler", SAMPLERS.get(attrs.get("kind"), "?"))),
    ]
    rows = "".join(f'<tr><th class="l">{escape(k)}</th><td class="l"><code>{escape(str(v))}</code></td></tr>'
                   for k, v in facts)
    return (f"<h2>Reproducibility</h2><table>{rows}</table>"
            f"<p class=\"muted\">Full configuration (storage credentials masked):</p>"
            f"<pre>{escape(json.dumps(config, indent=2, sort_keys=True))}</pre>")


def trials_section(study: optuna.Study, frame: pd.DataFrame) -> str:
    """The end of every study page: the trials table and how to reproduce the study."""
    return "<h2>Trials</h2>" + trials_table(frame) + repro_block(study, frame)


def trials_table(frame: pd.DataFrame) -> str:
    columns = [c for c in ("number", "state", "role", "accuracy", "score", "macs", "params", "reward", "alpha", "beta",
                           "gamma", "replicate", "phi", "macs_ratio", "resolution", "train_seconds", "stopped_at",
                           "infeasible", "duplicate_of", "crashes", "error", "arch")
               if c in frame.columns]
    return f'<div class="scroll">{table_html(frame[columns], left=("state", "arch", "error", "infeasible"))}</div>'


def header(study: optuna.Study, frame: pd.DataFrame) -> str:
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    summary = ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())) or "no trials"
    kind = study.user_attrs.get("kind", "?")
    dims = dims_label(study.user_attrs.get("dims", 2))
    return (f'<p><a href="index.html">← all studies</a></p><h1>{escape(study.study_name)}</h1>'
            f'<p><span class="tag">{escape(str(kind))}</span> <span class="tag">{escape(dims)}</span> '
            f'{escape(summary)}</p>')


def dims_label(dims: object) -> str:
    """What a study's networks take: a study recorded before ``dims`` existed is 2-D."""
    return "3-D (volumes)" if dims == 3 else "2-D (images)"


def extent(size: object, *, dims: object) -> str:
    """A square's or a cube's side written out, as on the pages: 32×32 or 16×16×16."""
    return "×".join([str(size)] * (3 if dims == 3 else 2))


def constraint(dims: object) -> str:
    """The compound-scaling constraint's left side, as on the pages: αβ²γ² or αβ²γ³."""
    return "αβ²γ³" if dims == 3 else "αβ²γ²"


