"""Plotly figures drawn from info objects and frames computed beforehand (optuna.visualization's split)."""
from __future__ import annotations

from html import escape
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go

from reports.info import FrontInfo, ScalingInfo

LAYOUT = {"template": "plotly_white", "height": 460, "margin": {"l": 60, "r": 20, "t": 30, "b": 50}}


def _hover(record: pd.Series) -> str:
    return (f"trial {int(record['number'])}<br>accuracy {record['accuracy']:.4f}<br>MACs {int(record['macs']):,}"
            f"<br>params {int(record['params']):,}<br>{escape(str(record['arch']))}")


def pareto_figure(frame: pd.DataFrame, info: FrontInfo) -> go.Figure:
    """One marker per trial: dominated, front, baseline, and infeasible (untrained, drawn at accuracy 0)."""
    by_number = frame.set_index("number", drop=False)
    groups: dict[str, list[int]] = {"dominated": [], "front": [], "baseline": []}
    for number, keep in zip(info.numbers, info.on_front):
        groups["baseline" if number == info.baseline else ("front" if keep else "dominated")].append(number)
    fig = go.Figure()
    styles = {
        "dominated": {"color": "#b8bfcc", "size": 8, "symbol": "circle"},
        "front": {"color": "#2a62c9", "size": 10, "symbol": "circle"},
        "baseline": {"color": "#e8590c", "size": 16, "symbol": "star"},
    }
    front = sorted(zip((by_number.loc[n, "macs"] for n in info.front_numbers),
                       (by_number.loc[n, "accuracy"] for n in info.front_numbers)))
    if front:
        fig.add_trace(go.Scatter(x=[m for m, _ in front], y=[a for _, a in front], mode="lines", name="front line",
                                 line={"color": "#2a62c9", "shape": "hv", "width": 1}, hoverinfo="skip"))
    names = {"dominated": "dominated", "front": "Pareto front", "baseline": "chosen baseline"}
    for group, numbers in groups.items():
        if not numbers:
            continue
        rows = [by_number.loc[n] for n in numbers]
        fig.add_trace(go.Scatter(
            x=[r["macs"] for r in rows], y=[r["accuracy"] for r in rows], mode="markers", name=names[group],
            marker=styles[group], text=[_hover(r) for r in rows], hovertemplate="%{text}<extra></extra>"))
    if info.infeasible_numbers:
        rows = [by_number.loc[n] for n in info.infeasible_numbers]
        fig.add_trace(go.Scatter(
            x=[r["macs"] for r in rows], y=[0.0] * len(rows), mode="markers", name="infeasible (not trained)",
            marker={"color": "#c92a2a", "symbol": "x", "size": 9},
            text=[f"trial {int(r['number'])}<br>{escape(str(r['infeasible']))}<br>params {int(r['params']):,}<br>"
                  f"{escape(str(r['arch']))}" for r in rows],
            hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(**LAYOUT, xaxis_title="MACs (multiply-adds)", yaxis_title="validation accuracy",
                      legend={"orientation": "h", "y": -0.18})
    return fig


def hypervolume_figure(info: FrontInfo) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(1, len(info.hypervolume) + 1)), y=info.hypervolume,
                               mode="lines+markers", name="hypervolume"))
    fig.update_layout(**{**LAYOUT, "height": 320}, xaxis_title="complete trials",
                      yaxis_title=f"hypervolume (ref: acc 0, {info.hypervolume_reference_macs:,.0f} MACs)")
    return fig


def importance_figure(study: optuna.Study) -> go.Figure | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if "accuracy" in t.user_attrs]
    if len(complete) < 2:
        return None
    try:
        importances = optuna.importance.get_param_importances(
            study, target=lambda t: t.user_attrs.get("accuracy", 0.0),
            evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return None
    if not importances:
        return None
    names = list(importances)[::-1]
    fig = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h"))
    fig.update_layout(**{**LAYOUT, "height": max(300, 60 + 18 * len(names))}, xaxis_title="fANOVA importance",
                      yaxis={"tickmode": "linear", "automargin": True})
    return fig


def triples_figure(info: ScalingInfo) -> go.Figure:
    """Each triple's accuracy at its real MACs ratio (error bars: sd over seeds), the nominal target marked."""
    scores = info.scores
    text = [f"α {s.alpha:g} β {s.beta:g} γ {s.gamma:g}<br>accuracy {s.accuracy:.4f}"
            + (f" ± {s.accuracy_sd:.4f} ({s.n} seeds)" if s.accuracy_sd is not None else "")
            + f"<br>real MACs ratio {s.macs_ratio:.3f}<br>reward {s.reward:.4f}" for s in scores]
    fig = go.Figure(go.Scatter(
        x=[s.macs_ratio for s in scores], y=[s.accuracy for s in scores], mode="markers", name="triples",
        error_y={"type": "data", "array": [s.accuracy_sd or 0.0 for s in scores], "visible": True},
        marker={"size": 10, "color": [s.reward for s in scores], "colorscale": "Viridis",
                "colorbar": {"title": {"text": "reward"}}},
        text=text, hovertemplate="%{text}<extra></extra>"))
    chosen = info.chosen
    fig.add_trace(go.Scatter(x=[chosen.macs_ratio], y=[chosen.accuracy], mode="markers", name="chosen triple",
                             marker={"size": 18, "color": "#e8590c", "symbol": "star"}, hoverinfo="skip"))
    fig.add_vline(x=info.nominal_ratio, line={"dash": "dot", "color": "#667"},
                  annotation_text=f"nominal 2^φ = {info.nominal_ratio:g}")
    fig.update_layout(**LAYOUT, xaxis_title="real MACs over the baseline's (after rounding)",
                      yaxis_title="validation accuracy", legend={"orientation": "h", "y": -0.2})
    return fig


def family_macs_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Real (after rounding) and nominal MACs per phi, as two named series."""
    base = rows[0]["macs"] / rows[0]["macs_ratio"]
    phis = [r["phi"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=phis, y=[r["macs"] for r in rows], mode="lines+markers",
                             name="real MACs (after rounding)"))
    fig.add_trace(go.Scatter(x=phis, y=[base * r["nominal_ratio"] for r in rows], mode="lines+markers",
                             name="nominal MACs (baseline x (αβ²γ²)^φ)", line={"dash": "dot"}))
    fig.update_layout(**{**LAYOUT, "height": 380}, xaxis_title="φ (compound coefficient)",
                      yaxis_title="MACs (multiply-adds)", yaxis_type="log", legend={"orientation": "h", "y": -0.25})
    return fig


def family_accuracy_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """Accuracy against real MACs for the trained members, each labelled by its phi."""
    trained = [r for r in rows if r.get("accuracy") is not None]
    fig = go.Figure(go.Scatter(x=[r["macs"] for r in trained], y=[r["accuracy"] for r in trained],
                               mode="lines+markers+text", text=[f"φ={r['phi']:g}" for r in trained],
                               textposition="top center", name="trained members", marker={"size": 10}))
    fig.update_layout(**{**LAYOUT, "height": 380}, xaxis_title="MACs (multiply-adds, real)", xaxis_type="log",
                      yaxis_title="validation accuracy", showlegend=False)
    return fig
