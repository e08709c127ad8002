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

from reports import confirm, nas, scaling
from reports.frames import study_records, trials_frame
from reports.layout import PLOTLY_JS, page, safe_name
from reports.run_page import run_body
from reports.runs import run_info
from search import catalog, selection
from search.utils.files import remove_stale_temporaries, write_atomic

BODIES = {"nas": nas.nas_body, "scaling": scaling.scaling_body, "family": scaling.family_body,
          "confirm": confirm.confirm_body}


def study_page(study: optuna.Study, siblings: nas.Siblings = lambda name: None) -> str:
    """A study's page; ``siblings`` finds the other studies of its storage (a NAS page shows its confirmation)."""
    records = study_records(study)
    frame = trials_frame(records)
    body = BODIES.get(catalog.kind_of(study), nas.nas_body)(study, records, frame, siblings)
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
    """Write DIR/index.html, one page per study and per training run, and plotly.min.js once; returns the pages.

    Every page is made before any is written, and each file is replaced atomically: a report killed at
    any moment leaves the previous pages or the new ones, each whole. plotly.min.js is rewritten only
    when it differs from the installed plotly's.
    """
    from plotly.offline import get_plotlyjs

    files: dict[str, str] = {}
    entries, run_entries = [], []
    available = catalog.present(storage) if storage is not None else set()

    def siblings(name: str) -> optuna.Study | None:
        return catalog.get(storage, name) if name in available else None

    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        file_name = safe_name(name)
        files[file_name] = study_page(study, siblings)
        entries.append(index_entry(study, file_name))
    for folder in runs:
        info = run_info(folder)
        file_name = safe_name(f"run:{info.name}")
        files[file_name] = page(f"effnas — run {info.name}", run_body(info))
        final = info.final()
        run_entries.append({"name": info.name, "file": file_name, "label": info.config.get("label", ""),
                            "epochs": len(info.epochs), "validation": final["validation"] or
                            final["last_epoch_validation"], "test": final["test"]})
    files["index.html"] = index_page(entries, storage_label=storage_label, runs=run_entries)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    script = get_plotlyjs().encode("utf-8")
    current = out / PLOTLY_JS
    if not current.is_file() or current.stat().st_size != len(script) or current.read_bytes() != script:
        write_atomic(current, script)
    for file_name, text in files.items():
        write_atomic(out / file_name, text)
    return [out / file_name for file_name in ["index.html", *(f for f in files if f != "index.html")]]
