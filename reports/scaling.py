"""The pages of a scaling study (the alpha/beta/gamma grid and the triple it chose) and of a family study
(the trained members of the scaled family)."""
from __future__ import annotations

from html import escape
from typing import Any

import optuna
import pandas as pd

from effnas.reports import figures
from effnas.reports.info import ScalingInfo, reliability, scaling_info
from effnas.reports.layout import constraint, extent, figure_html, header, table_html, trials_section
from effnas.search.record import TrialRecord
from effnas.space.arch import ArchSpec
from effnas.space.compound import Triple, family

RULE = ("Each triple is judged at its real (rounded) cost: the chosen one has the highest MnasNet reward "
        "ACC × (real MACs / T)<sup>−0.07</sup> at the nominal target T = 2<sup>φ</sup> × the baseline's MACs, "
        "averaged over its seeds.")


def scaling_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame, siblings: object) -> str:
    attrs = study.user_attrs
    parts = [header(study, frame), _baseline_line(attrs)]
    info = scaling_info(records, base_macs=int(attrs.get("base_macs", 1)), phi=float(attrs.get("phi", 1.0)))
    if info is None:
        parts.append("<p>No complete trial yet.</p>")
    else:
        c = info.chosen
        spread = f" ± {c.accuracy_sd:.4f} over {c.n} seeds" if c.accuracy_sd is not None else ""
        parts.append(f"<p>Chosen triple: <b>α = {c.alpha:g}, β = {c.beta:g}, γ = {c.gamma:g}</b> (under "
                     f"{constraint(attrs.get('dims'))} ≈ 2; trial {c.numbers[0]}): accuracy {c.accuracy:.4f}{spread}, "
                     f"{c.macs:,} MACs, real MACs ratio "
                     f"{c.macs_ratio:.3f} against the nominal {info.nominal_ratio:g}.</p>"
                     f"<p class=\"muted\">{RULE} T = {info.target_macs:,.0f} MACs. {escape(reliability(info.scores))}"
                     "</p>")
        parts.append("<h2>Triples: accuracy at their real cost</h2>")
        parts.append(figure_html(figures.triples_figure(info), "triples"))
        parts.append(_triples_table(info, attrs.get("dims")))
        rows = _projected_family(attrs, c)
        parts.append("<h2>The family this triple gives (not trained here: <code>effnas family --from-study "
                     f"{escape(study.study_name.removesuffix('-scaling'))} --train</code>)</h2>")
        parts.append(figure_html(figures.family_macs_figure(rows, nominal=constraint(attrs.get("dims"))),
                                 "family-macs"))
        parts.append(_family_table(rows))
    parts.append(trials_section(study, frame))
    return "".join(parts)


def family_body(study: optuna.Study, records: list[TrialRecord], frame: pd.DataFrame, siblings: object) -> str:
    attrs = study.user_attrs
    alpha, beta, gamma = (float(v) for v in str(attrs.get("triple", "1,1,1")).split(","))
    base = ArchSpec.parse(attrs["baseline"])
    triple = Triple(alpha, beta, gamma, dims=base.dims)
    parts = [header(study, frame), _baseline_line(attrs),
             f"<p>Triple: <b>α = {alpha:g}, β = {beta:g}, γ = {gamma:g}</b> ({constraint(base.dims)} = "
             f"{triple.nominal:.4f})</p>"]
    members = {round(float(r.phi), 6): r for r in records if r.state == "COMPLETE" and r.phi is not None}
    rows = family(base, resolution=int(attrs["base_resolution"]), triple=triple, phis=sorted(members) or [0.0],
                  multiple=int(attrs.get("resolution_multiple", 8)), num_classes=int(attrs.get("num_classes", 1000)))
    table = [{**m.to_dict(), "accuracy": members[round(m.phi, 6)].accuracy if round(m.phi, 6) in members else None}
             for m in rows]
    if members:
        parts.append("<h2>Accuracy against MACs, per φ</h2>")
        parts.append(figure_html(figures.family_accuracy_figure(table), "family-accuracy"))
    parts.append(f"<h2>MACs per φ: real (after rounding) and nominal, the baseline's "
                 f"× ({constraint(base.dims)})^φ</h2>")
    parts.append(figure_html(figures.family_macs_figure(table, nominal=constraint(base.dims)), "family-macs"))
    parts.append(_family_table(table))
    parts.append(trials_section(study, frame))
    return "".join(parts)


def _baseline_line(attrs: dict[str, Any]) -> str:
    return (f"<p>Baseline: {escape(str(attrs.get('baseline_label', '?')))} at "
            f"{extent(attrs.get('base_resolution'), dims=attrs.get('dims'))}, "
            f"{int(attrs.get('base_macs', 0)):,} MACs for {attrs.get('num_classes')} classes<br>"
            f"<code>{escape(str(attrs.get('baseline', '')))}</code></p>")


def _triples_table(info: ScalingInfo, dims: object) -> str:
    power = 3 if dims == 3 else 2
    rows = [{"α": s.alpha, "β": s.beta, "γ": s.gamma,
             f"nominal {constraint(dims)}": s.alpha * s.beta**2 * s.gamma**power,
             "real MACs ratio": s.macs_ratio, "seeds": s.n, "accuracy": s.accuracy, "sd": s.accuracy_sd,
             "reward": s.reward, "trials": ", ".join(map(str, s.numbers)),
             "chosen": "★" if s is info.chosen else ""} for s in info.scores]
    return f'<div class="scroll">{table_html(pd.DataFrame(rows), left=("trials", "chosen"))}</div>'


def _projected_family(attrs: dict[str, Any], chosen: Any) -> list[dict[str, Any]]:
    base = ArchSpec.parse(attrs["baseline"])
    members = family(base, resolution=int(attrs["base_resolution"]),
                     triple=Triple(chosen.alpha, chosen.beta, chosen.gamma, dims=base.dims),
                     phis=[0.0, 1.0, 2.0, 3.0],
                     multiple=int(attrs.get("resolution_multiple", 8)), num_classes=int(attrs.get("num_classes", 1000)))
    return [m.to_dict() for m in members]


def _family_table(rows: list[dict[str, Any]]) -> str:
    columns = [c for c in ("phi", "depth", "width", "resolution", "params", "macs", "macs_ratio", "nominal_ratio",
                           "accuracy", "arch") if any(c in r for r in rows)]
    return table_html(pd.DataFrame(rows)[columns], left=("arch",))
