"""Plotly figures drawn from info objects and frames computed beforehand (optuna.visualization's split)."""
from __future__ import annotations

from html import escape
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go

from reports.front import FrontInfo
from reports.runs import RunInfo
from search.record import TrialRecord

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


def grid_figure(grid: pd.DataFrame, best: TrialRecord) -> go.Figure:
    text = [f"α {r.alpha:.2f} β {r.beta:.2f} γ {r.gamma:.2f}<br>accuracy {r.accuracy:.4f}<br>MACs {int(r.macs):,}"
            f"<br>real ratio {r.macs_ratio:.3f}" for r in grid.itertuples()]
    fig = go.Figure(go.Scatter3d(
        x=grid["alpha"], y=grid["beta"], z=grid["gamma"], mode="markers", text=text,
        hovertemplate="%{text}<extra></extra>", name="triples",
        marker={"size": 6, "color": grid["accuracy"], "colorscale": "Viridis", "colorbar": {"title": "accuracy"}}))
    fig.add_trace(go.Scatter3d(x=[best.alpha], y=[best.beta], z=[best.gamma], mode="markers",
                               name="chosen", marker={"size": 10, "color": "#e8590c", "symbol": "diamond"}))
    fig.update_layout(**{**LAYOUT, "height": 520}, legend={"orientation": "h", "y": -0.05},
                      scene={"xaxis_title": "α (depth)", "yaxis_title": "β (width)", "zaxis_title": "γ (resolution)"})
    return fig


def family_figure(family: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    trained = [m for m in family if m.get("accuracy") is not None]
    base = family[0]["macs"] / family[0]["macs_ratio"]
    fig.add_trace(go.Scatter(x=[m["macs"] for m in family], y=[m["phi"] for m in family], mode="lines+markers",
                             name="real MACs (after rounding)", yaxis="y2",
                             text=[f"φ={m['phi']}<br>{m['resolution']}px" for m in family]))
    fig.add_trace(go.Scatter(x=[base * m["nominal_ratio"] for m in family], y=[m["phi"] for m in family],
                             mode="lines+markers", name="nominal MACs (2^φ)", yaxis="y2", line={"dash": "dot"}))
    if trained:
        fig.add_trace(go.Scatter(x=[m["macs"] for m in trained], y=[m["accuracy"] for m in trained],
                                 mode="lines+markers", name="accuracy", marker={"size": 10}))
    fig.update_layout(**LAYOUT, xaxis_title="MACs", xaxis_type="log", yaxis_title="validation accuracy",
                      yaxis2={"title": "φ", "overlaying": "y", "side": "right"}, legend={"orientation": "h", "y": -0.2})
    return fig


def learning_curves_figure(info: RunInfo) -> go.Figure:
    """Loss (training, validation) and validation accuracy per epoch; the moving average's too, when kept."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation accuracy"))
    for name, values, dash in (("training loss", info.train_loss, "solid"), ("validation loss", info.val_loss, "dot"),
                               ("validation loss (EMA)", info.ema_val_loss, "dash")):
        if values:
            fig.add_trace(go.Scatter(x=info.epochs, y=values, mode="lines+markers", name=name,
                                     line={"dash": dash}), row=1, col=1)
    for name, values in (("validation accuracy", info.val_accuracy), ("validation accuracy (EMA)",
                                                                      info.ema_val_accuracy)):
        if values:
            fig.add_trace(go.Scatter(x=info.epochs, y=values, mode="lines+markers", name=name), row=1, col=2)
    fig.update_layout(**LAYOUT, legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(title_text="epoch", dtick=1 if len(info.epochs) <= 20 else None)
    return fig


def confusion_figure(confusion: list[list[int]], classes: list[str]) -> go.Figure:
    """Validation images by true class (rows) and predicted class (columns)."""
    labels = [escape(c) for c in classes]
    fig = go.Figure(go.Heatmap(z=confusion, x=labels, y=labels, colorscale="Blues", text=confusion,
                               texttemplate="%{text}", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    size = max(360, 40 * len(classes) + 120)
    fig.update_layout(**{**LAYOUT, "height": size, "width": size + 80}, xaxis_title="predicted class",
                      yaxis_title="true class", yaxis={"autorange": "reversed", "type": "category"},
                      xaxis={"type": "category"})
    return fig
