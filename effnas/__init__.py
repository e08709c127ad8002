"""effnas: architecture search and compound scaling for EfficientNet-style networks.

Installed, effnas is one package: the repository's folders are its sub-packages (``effnas.space`` is space/,
``effnas.models`` models/, ``effnas.search`` search/, ``effnas.reports`` reports/, ``effnas.studies`` studies/).
What a Python user needs is here, imported when first used (``import effnas`` itself loads neither torch nor
Optuna)::

    import effnas

    arch = effnas.network("efficientnet-b0")          # a preset, a reference (resnet18) or an arch string
    print(effnas.cost(arch, 224).macs)                 # exact MACs and parameters, no torch needed
    model = effnas.build(arch, num_classes=10)         # the torch module
    study = effnas.load_study("effnas", "sqlite:///runs/effnas.db")
    front = effnas.pareto_front(effnas.trials(study))  # the study's records, and its accuracy/MACs front
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

# public name -> (module, attribute)
_API = {
    "ArchSpec": ("effnas.space.arch", "ArchSpec"),
    "SearchSpace": ("effnas.space.searchspace", "SearchSpace"),
    "Cost": ("effnas.space.cost", "Cost"),
    "cost": ("effnas.space.cost", "cost"),
    "network": ("effnas.space.presets", "network"),
    "UserError": ("effnas.space.errors", "UserError"),
    "build": ("effnas.models.builder", "build"),
    "TrialRecord": ("effnas.search.record", "TrialRecord"),
    "pareto_front": ("effnas.search.selection", "pareto_front"),
    "choose_baseline": ("effnas.search.selection", "choose_baseline"),
    "load_study": ("effnas._studies", "load_study"),
    "trials": ("effnas._studies", "trials"),
    "__version__": ("effnas.studies", "__version__"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'effnas' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
