"""A confirmation's page: every retrained architecture's mean ± sd over seeds at the longer budget, the
references beside them, and how well the NAS study's proxy ranked them."""
from __future__ import annotations

from html import escape

import optuna
import pandas as pd

from effnas.reports import figures
from effnas.reports.layout import figure_html, header, safe_name, table_html, trials_section
from effnas.reports.nas import Siblings, fidelity_box
from effnas.search.confirmation import confirm_result
from effnas.search.record import TrialRecord


def confirm_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame, siblings: Siblings) -> str:
    result = confirm_result(study)
    source = study.user_attrs.get("source", "?")
    parts = [header(study, frame), f'<p>Retrains the best of the NAS study <a href="{escape(safe_name(source))}">'
             f"{escape(source)}</a>.</p>",
             fidelity_box(result, source, budget=f"{result.epochs} epochs")]
    if result.rows:
        parts.append(f"<h2>Confirmed at {result.epochs} epochs: mean ± sd over seeds</h2>")
        parts.append(figure_html(figures.confirmed_figure(result), "confirmed"))
        parts.append("<h2>The study's accuracy (the proxy) against the confirmed one</h2>")
        parts.append(figure_html(figures.fidelity_figure(result), "fidelity"))
        rows = [{"role": c.entry.role, "label": c.entry.label, "trial": "" if c.entry.source_trial is None
                 else str(c.entry.source_trial), "MACs": c.macs,
                 "params": c.params, "study accuracy": c.entry.proxy_accuracy, "mean": c.mean, "sd": c.sd,
                 "seeds": len(c.accuracies), "arch": c.entry.arch} for c in result.rows]
        parts.append(table_html(pd.DataFrame(rows), left=("role", "label", "trial", "arch")))
    parts.append(trials_section(study, frame))
    return "".join(parts)
