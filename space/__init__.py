"""The genome: what an architecture is and what it costs. No torch here."""
from __future__ import annotations

from space.arch import ArchError, ArchSpec, StageSpec
from space.cost import Cost, StageCost, cost, stage_costs
from space.scaling import round_filters, round_repeats, scale

__all__ = [
    "ArchError",
    "ArchSpec",
    "StageSpec",
    "Cost",
    "StageCost",
    "cost",
    "stage_costs",
    "round_filters",
    "round_repeats",
    "scale",
]
