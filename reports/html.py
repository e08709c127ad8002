"""Self-contained HTML reports: one page per study and per training run and an index, readable offline from
file://.

plotly.js is written once beside the pages (``plotly.min.js``) and loaded by a relative path; no page
references a network address; a run's example images are embedded as data: URIs. Every string a user or a
study chose is escaped. Every file is written atomically.
"""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import optuna

from effnas.reports import confirm, nas, scaling
from effnas.reports.frames import study_records, trials_frame
from effnas.reports.layout import PLOTLY_JS, page, safe_name
from effnas.reports.run_page import run_body
from effnas.reports.runs import run_info
from effnas.search import catalog, selection
from effnas.search.utils.files import remove_stale_temporaries, write_atomic
from effnas.space.checks import is_number
from effnas.space.errors import UserError

BODIES = {"nas": nas.nas_body, "scaling": scaling.scaling_body, "family": scaling.family_body,
          "confirm": confirm.confirm_body}


# what a page of records another tool wrote (or a hand edited) raises as it is drawn: the page is left out
UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, UserError)


def study_page(study: optuna.Study, siblings: nas.Siblings = lambda name: None,
               skipped: list[str] | None = None) -> str:
    """A study's page; ``siblings`` finds the other studies of its storage (a NAS page shows its confirmation).
    Trials whose records are not effnas's are left out, each with a line in ``skipped``."""
    left_out: list[str] = []
    records = study_records(study, left_out)
    frame = trials_frame(records)
    body = BODIES.get(catalog.kind_of(study), nas.nas_body)(study, records, frame, siblings)
    if skipped is not None:
        skipped.extend(left_out)
    return page(f"effnas — {study.study_name}", left_out_box(left_out) + body)


def left_out_box(lines: list[str]) -> str:
    """What a page could not read, one line each."""
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f'<div class="left-out"><p><b>Left out</b> (not readable as effnas wrote it):</p><ul>{items}</ul></div>'



def index_entry(study: optuna.Study, file_name: str) -> dict[str, Any]:
    records = study_records(study)
    top = selection.most_accurate(records)
    evaluator = study.user_attrs.get("evaluator")
    value = "" if top is None else f"{evaluator} {top.accuracy:.4g}" if isinstance(evaluator, str) else \
        f"{top.accuracy:.4f}"
    best = f"{value} @ {top.macs / 1e6:.2f}M MACs" if top is not None else ""
    return {"name": study.study_name, "file": file_name, "kind": study.user_attrs.get("kind", "?"),
            "complete": sum(r.state == "COMPLETE" for r in records), "trials": len(records), "best": best}


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}")[:240]


def index_page(entries: list[dict[str, Any]], *, storage_label: str, runs: list[dict[str, Any]] = (),
               skipped: list[str] = ()) -> str:
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
    return page("effnas studies", left_out_box(list(skipped)) + body)


def _accuracy(value: float | None) -> str:
    return f"{value:.4f}" if is_number(value) else ""


def write_report(storage: Any, *, names: list[str], out: Path, storage_label: str,
                 runs: list[Path] = (), skipped: list[str] | None = None) -> list[Path]:
    """Write DIR/index.html, one page per study and per training run, and plotly.min.js once; returns the pages.

    Every page is made before any is written, and each file is replaced atomically: a report killed at
    any moment leaves the previous pages or the new ones, each whole. plotly.min.js is rewritten only
    when it differs from the installed plotly's. What cannot be read (a trial, a study or a run folder that
    another tool wrote or someone edited) is left out with one line in ``skipped`` and on the index page, and
    the rest is drawn.
    """
    skipped = [] if skipped is None else skipped
    from plotly.offline import get_plotlyjs

    files: dict[str, str] = {}
    entries, run_entries = [], []
    available = catalog.present(storage) if storage is not None else set()

    def siblings(name: str) -> optuna.Study | None:
        return catalog.get(storage, name) if name in available else None

    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        file_name = safe_name(name)
        try:
            text, entry = study_page(study, siblings, skipped), index_entry(study, file_name)
        except UNREADABLE as exc:
            skipped.append(f"study {name!r}: left out, its attributes are not effnas's ({_reason(exc)})")
            continue
        files[file_name] = text
        entries.append(entry)
    for folder in runs:
        try:
            info = run_info(folder)
            file_name = safe_name(f"run:{info.name}")
            text = page(f"effnas — run {info.name}", run_body(info))
            final = info.final()
            entry = {"name": info.name, "file": file_name, "label": str(info.config.get("label", "")),
                     "epochs": len(info.epochs), "validation": final["validation"] or final["last_epoch_validation"],
                     "test": final["test"]}
        except UNREADABLE as exc:
            skipped.append(f"run {str(folder)!r}: left out ({_reason(exc)})")
            continue
        files[file_name] = text
        run_entries.append(entry)
    files["index.html"] = index_page(entries, storage_label=storage_label, runs=run_entries, skipped=skipped)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    script = get_plotlyjs().encode("utf-8")
    current = out / PLOTLY_JS
    if not current.is_file() or current.stat().st_size != len(script) or current.read_bytes() != script:
        write_atomic(current, script)
    for file_name, text in files.items():
        write_atomic(out / file_name, text)
    return [out / file_name for file_name in ["index.html", *(f for f in files if f != "index.html")]]
