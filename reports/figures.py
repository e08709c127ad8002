"""Plotly figures drawn from info objects and frames computed beforehand (optuna.visualization's split)."""
from __future__ import annotations

import math
from html import escape
from typing import Any

import optuna
import plotly.graph_objects as go

from effnas.reports.info import FrontInfo, Point, ScalingInfo
from effnas.reports.runs import RunInfo
from effnas.search.confirmation import ConfirmResult

LAYOUT = {"template": "plotly_white", "height": 460, "margin": {"l": 60, "r": 20, "t": 30, "b": 50}}


STYLES = {
    "dominated": ("dominated", {"color": "#b8bfcc", "size": 8, "symbol": "circle"}),
    "front": ("Pareto front", {"color": "#2a62c9", "size": 10, "symbol": "circle"}),
    "baseline": ("chosen baseline", {"color": "#e8590c", "size": 16, "symbol": "star"}),
    "stopped": ("stopped early (accuracy at its last rung)", {"color": "#8a93a6", "size": 8, "symbol": "circle-open"}),
    "infeasible": ("infeasible (not trained)", {"color": "#c92a2a", "size": 9, "symbol": "x"}),
}


def _hover(p: Point, quality: str = "accuracy") -> str:
    trials = ", ".join(map(str, p.numbers))
    spread = f" ± {p.sd:.4f}" if p.sd is not None else ""
    value = f"accuracy {p.accuracy:.4f}{spread}" if quality == "accuracy" else f"{escape(quality)} {p.accuracy:.6g}"
    return "<br>".join(x for x in (
        f"{escape(p.label)}" if p.label else "", f"trial {trials}", value,
        f"MACs {int(p.macs):,}", f"params {p.params:,}", escape(p.note) if p.note else "", escape(p.arch)) if x)


def label_positions(every: list[float], xs: list[float], *, log: bool = False) -> list[str]:
    """Where each point's label goes: to the left near the right edge of the plot, to the right near the left
    edge, centred elsewhere, so a label is never cut off by the plot's border."""
    scale = (lambda v: math.log10(max(v, 1))) if log else (lambda v: v)
    low, high = min(map(scale, every), default=0), max(map(scale, every), default=0)
    span = (high - low) or 1.0
    return ["top left" if (scale(x) - low) / span > 0.8 else "top right" if (scale(x) - low) / span < 0.2
            else "top center" for x in xs]


def pareto_figure(info: FrontInfo, *, quality: str = "accuracy") -> go.Figure:
    """One marker per architecture (repeats merged, with their spread), stopped and infeasible trials apart; the
    base architecture named on the plot."""
    fig = go.Figure()
    front = sorted((p.macs, p.accuracy) for p in info.points if p.kind in ("front", "baseline"))
    if front:
        fig.add_trace(go.Scatter(x=[m for m, _ in front], y=[a for _, a in front], mode="lines", name="front line",
                                 line={"color": "#2a62c9", "shape": "hv", "width": 1}, hoverinfo="skip"))
    for kind, (name, marker) in STYLES.items():
        points = [p for p in info.points if p.kind == kind]
        if not points:
            continue
        spread = [p.sd or 0.0 for p in points]
        fig.add_trace(go.Scatter(
            x=[p.macs for p in points], y=[p.accuracy for p in points], mode="markers+text", name=name,
            marker=marker, text=[p.label or "" for p in points],
            textposition=label_positions([p.macs for p in info.points], [p.macs for p in points]),
            error_y={"type": "data", "array": spread, "visible": any(spread)},
            customdata=[_hover(p, quality) for p in points], hovertemplate="%{customdata}<extra></extra>"))
    fig.update_layout(**LAYOUT, xaxis_title="MACs (multiply-adds)",
                      yaxis_title="validation accuracy" if quality == "accuracy" else f"{quality} (untrained)",
                      legend={"orientation": "h", "y": -0.18})
    return fig


def hypervolume_figure(info: FrontInfo) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(1, len(info.hypervolume) + 1)), y=info.hypervolume,
                               mode="lines+markers", name="hypervolume"))
    fig.update_layout(**{**LAYOUT, "height": 340, "margin": {"l": 80, "r": 20, "t": 30, "b": 50}},
                      xaxis_title="complete trials", yaxis={"title": {"text": "hypervolume"}, "automargin": True})
    return fig


def importance_figure(study: optuna.Study, *, key: str = "accuracy") -> go.Figure | None:
    """fANOVA importances of the choices for the trials' ``key`` (accuracy, or a zero-cost study's score)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if key in t.user_attrs]
    if len(complete) < 2:
        return None
    try:
        importances = optuna.importance.get_param_importances(
            study, target=lambda t: t.user_attrs.get(key, 0.0),
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


def family_macs_figure(rows: list[dict[str, Any]], *, nominal: str = "αβ²γ²") -> go.Figure:
    """Real (after rounding) and nominal MACs per phi, as two named series; ``nominal`` is the constraint's left
    side (αβ²γ³ for volume networks)."""
    base = rows[0]["macs"] / rows[0]["macs_ratio"]
    phis = [r["phi"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=phis, y=[r["macs"] for r in rows], mode="lines+markers",
                             name="real MACs (after rounding)"))
    fig.add_trace(go.Scatter(x=phis, y=[base * r["nominal_ratio"] for r in rows], mode="lines+markers",
                             name=f"nominal MACs (baseline x ({nominal})^φ)", line={"dash": "dot"}))
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


ROLE_STYLES = {
    "candidate": {"color": "#2a62c9", "size": 10, "symbol": "circle"},
    "baseline": {"color": "#e8590c", "size": 16, "symbol": "star"},
    "reference": {"color": "#495057", "size": 11, "symbol": "diamond"},
}


def confirmed_figure(result: ConfirmResult) -> go.Figure:
    """The confirmed architectures at the longer budget: mean accuracy over seeds with its sd, references named."""
    fig = go.Figure()
    for role, marker in ROLE_STYLES.items():
        rows = [c for c in result.rows if c.entry.role == role]
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[c.macs for c in rows], y=[c.mean for c in rows], mode="markers+text", name=role,
            marker=marker, error_y={"type": "data", "array": [c.sd or 0.0 for c in rows], "visible": True},
            text=[c.entry.label if role != "candidate" or "base" in c.entry.label else "" for c in rows],
            textposition=label_positions([c.macs for c in result.rows], [c.macs for c in rows], log=True),
            customdata=[f"{escape(c.entry.label)}<br>accuracy {c.mean:.4f} ± {c.sd or 0:.4f} ({len(c.accuracies)} "
                        f"seeds)<br>MACs {c.macs:,}<br>{escape(c.entry.arch)}" for c in rows],
            hovertemplate="%{customdata}<extra></extra>"))
    fig.update_layout(**LAYOUT, xaxis_title="MACs (multiply-adds)", xaxis_type="log",
                      yaxis_title=f"validation accuracy at {result.epochs} epochs (mean ± sd)",
                      legend={"orientation": "h", "y": -0.2})
    return fig


def fidelity_figure(result: ConfirmResult) -> go.Figure:
    """The study's (proxy) accuracy against the confirmed mean, one point per retrained trial."""
    rows = [c for c in result.rows if c.entry.proxy_accuracy is not None]
    fig = go.Figure(go.Scatter(
        x=[c.entry.proxy_accuracy for c in rows], y=[c.mean for c in rows], mode="markers+text",
        error_y={"type": "data", "array": [c.sd or 0.0 for c in rows], "visible": True},
        text=[c.entry.label for c in rows], textposition="top center", marker={"size": 10, "color": "#2a62c9"},
        hovertemplate="study %{x:.4f}<br>confirmed %{y:.4f}<extra></extra>"))
    fig.update_layout(**{**LAYOUT, "height": 400}, xaxis_title="accuracy in the study (the proxy)",
                      yaxis_title=f"confirmed accuracy at {result.epochs} epochs", showlegend=False)
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
