"""The compound-scaling study (alpha, beta, gamma grid search) and the scaled family.

The grid study trains every triple of the grid as one trial of the study ``NAME-scaling`` (kind
``scaling``), through the same planner and executors as the NAS study, so it resumes the same way.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.objective import Budget, Proposal, TrialPlanner
from space import presets
from space.arch import ArchSpec
from space.cost import cost
from space.scaling import Member, Triple, check_coefficients, compound_grid, family, member
from studies import __version__
from studies.config import DEFAULT_STORAGE, StudyConfig
from studies.errors import UserError
from studies.storage import mask_url, open_storage, recover_dead_trials

TRAIN_FIELDS = ("study", "storage", "dataset", "epochs", "resolution", "batch_size", "executor", "seed", "lr",
                "weight_decay", "label_smoothing", "dropout", "drop_path", "val_fraction", "device", "max_failures",
                "address", "gpus_per_trial", "cpus_per_trial", "max_concurrent")


@dataclass(frozen=True)
class Baseline:
    arch: ArchSpec
    resolution: int
    label: str
    num_classes: int = 1000  # a study's class count; ImageNet's for presets and arch strings


@dataclass(frozen=True)
class GridOptions:
    phi: float = 1.0
    step: float = 0.05
    tolerance: float = 0.1
    max_coef: float = 2.0
    resolution_multiple: int = 8


def resolve_baseline(text: str, *, config: StudyConfig) -> Baseline:
    """``best`` (the NAS study's chosen baseline), a trial number of it, a preset, or an arch string."""
    if text == "best" or text.isdigit():
        study = _load_nas_study(config)
        from studies.nas import choose_baseline

        if text == "best":
            trial = choose_baseline(study)
        else:
            matches = [t for t in study.get_trials(deepcopy=False) if t.number == int(text)]
            if not matches or matches[0].state != TrialState.COMPLETE:
                raise UserError(f"study {config.study!r} has no complete trial {text}")
            trial = matches[0]
        arch, resolution = ArchSpec.parse(trial.user_attrs["arch"]), int(trial.user_attrs["resolution"])
        label = f"{config.study} trial {trial.number}"
        num_classes = int(trial.user_attrs.get("num_classes", study.user_attrs.get("num_classes", 1000)))
    else:
        arch, preset = presets.resolve(text)
        resolution, label = (preset.resolution, preset.name) if preset else (224, "arch string")
        num_classes = 1000
    if "resolution" in config.explicit:
        resolution = config.resolution
    return Baseline(arch=arch, resolution=resolution, label=label, num_classes=num_classes)


def _load_nas_study(config: StudyConfig) -> optuna.Study:
    storage = open_storage(config.storage, create=False)
    try:
        study = optuna.load_study(study_name=config.study, storage=storage)
    except KeyError:
        raise UserError(f"no study {config.study!r} in {mask_url(config.storage)}") from None
    if study.user_attrs.get("kind") != "nas":
        raise UserError(f"study {config.study!r} is not a NAS study")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise UserError(f"NAS study {config.study!r} has no complete trial")
    return study


def grid_rows(baseline: Baseline, options: GridOptions) -> list[dict[str, Any]]:
    triples = compound_grid(step=options.step, tolerance=options.tolerance, max_coef=options.max_coef)
    if not triples:
        raise UserError(f"no triple within tolerance {options.tolerance} of alpha*beta^2*gamma^2 = 2 on this grid")
    rows = []
    for t in triples:
        m = member(baseline.arch, resolution=baseline.resolution, triple=t, phi=options.phi,
                   multiple=options.resolution_multiple, num_classes=baseline.num_classes)
        rows.append({"alpha": t.alpha, "beta": t.beta, "gamma": t.gamma, "nominal": round(t.nominal, 6),
                     "width": m.width, "depth": m.depth, "resolution": m.resolution, "params": m.params,
                     "macs": m.macs, "macs_ratio": m.macs_ratio})
    return rows


def check_options(options: GridOptions) -> None:
    if not options.phi >= 0:
        raise UserError(f"argument --phi: must be >= 0, got {options.phi}")
    compound_grid(step=options.step, tolerance=options.tolerance, max_coef=options.max_coef)  # validates
    if options.resolution_multiple < 1:
        raise UserError(f"argument --resolution-multiple: must be >= 1, got {options.resolution_multiple}")


def _driver_data(config: StudyConfig) -> tuple[int, dict]:
    from studies.nas import driver_dataset

    data = driver_dataset(config)
    return data.num_classes, dict(data.split)


def open_scaling_study(name: str, storage: Any, attrs: dict[str, Any], *, check: tuple[str, ...]) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"],
                                load_if_exists=True)
    existing = study.user_attrs
    if "kind" in existing:
        if existing["kind"] != "scaling":
            raise UserError(f"study {name!r} is a {existing['kind']} study, not a scaling study")
        for key in check:
            if existing.get(key) != attrs.get(key):
                raise UserError(f"study {name!r} was made with another {key}; use another --study name")
        return study
    study.set_metric_names(["accuracy", "macs"])
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study


def _key(alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    return round(alpha, 6), round(beta, 6), round(gamma, 6)


def _study_attrs(config: StudyConfig, baseline: Baseline, num_classes: int, split: dict,
                 extra: dict[str, Any]) -> dict[str, Any]:
    masked = {**config.values, "storage": mask_url(config.storage)}
    return {
        "kind": "scaling", "baseline": str(baseline.arch), "baseline_label": baseline.label,
        "base_resolution": baseline.resolution, "num_classes": num_classes, "dataset": config.dataset,
        "seed": config.seed, "version": __version__, "split": json.dumps(split, sort_keys=True),
        "config": json.dumps({**masked, **extra}, sort_keys=True, default=str),
        "base_macs": cost(baseline.arch, baseline.resolution, num_classes=num_classes).macs, **extra,
    }


def _train_members(config: StudyConfig, study: optuna.Study, members: dict[tuple, tuple[Member, Triple]], *,
                   param_names: tuple[str, ...], role: dict[str, str], num_classes: int, label: str,
                   err: TextIO) -> None:
    """Train each member that the study does not hold yet; the study is resumable like any other.

    ``members`` maps a key (the values of ``param_names``) to its member; the next missing key is queued
    before every ask, so a failed or killed trial is simply asked again.
    """

    def ours(trial: FrozenTrial) -> bool:
        return all(trial.user_attrs.get(k) == v for k, v in role.items())

    def key_of(trial: FrozenTrial) -> tuple | None:
        if not ours(trial) or not set(param_names) <= set(trial.params):
            return None
        return tuple(round(float(trial.params[n]), 6) for n in param_names)

    def queue_next() -> bool:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                          TrialState.WAITING))
        if any(t.state == TrialState.WAITING and ours(t) for t in trials):
            return True  # a queued (or requeued) member is next; its params are set only once asked
        missing = [k for k in members if k not in {key_of(t) for t in trials}]
        if missing:
            study.enqueue_trial(dict(zip(param_names, missing[0])), user_attrs=role)
        return bool(missing)

    def propose(trial: optuna.Trial) -> Proposal:
        key = tuple(round(trial.suggest_float(n, 0.0, 1e6), 6) for n in param_names)
        m, triple = members[key]
        return Proposal(arch=m.arch, resolution=m.resolution, attrs=_member_attrs(m, triple))

    from studies.nas import drive, trial_template

    recover_dead_trials(study)
    planner = TrialPlanner(study=study, propose=propose, budget=Budget(), template=trial_template(config, num_classes),
                           n_trials=len(members), target_macs=study.user_attrs["base_macs"],
                           objectives=("accuracy", "macs"), before_ask=queue_next,
                           counts_toward=lambda t: key_of(t) is not None)
    header = f"{label} in {mask_url(config.storage)}; {config.dataset}, {config.epochs} epoch(s) per trial"
    drive(config, planner, study, total=len(members), header=header, err=err)


def run_scale(config: StudyConfig, baseline: Baseline, options: GridOptions, *,
              err: TextIO = sys.stderr) -> dict[str, Any]:
    """Train every triple of the grid (resuming what is done) and return the best one."""
    num_classes, split = _driver_data(config)
    triples = compound_grid(step=options.step, tolerance=options.tolerance, max_coef=options.max_coef)
    storage = open_storage(config.storage, create_default_dir=config.storage == DEFAULT_STORAGE)
    attrs = _study_attrs(config, baseline, num_classes, split, dict(options.__dict__))
    name = f"{config.study}-scaling"
    study = open_scaling_study(name, storage, attrs, check=("baseline", "base_resolution", "phi", "step",
                                                             "tolerance", "max_coef", "dataset"))
    members = {
        _key(t.alpha, t.beta, t.gamma): (member(baseline.arch, resolution=baseline.resolution, triple=t,
                                                phi=options.phi, multiple=options.resolution_multiple,
                                                num_classes=num_classes), t)
        for t in triples
    }
    _train_members(config, study, members, param_names=("alpha", "beta", "gamma"), role={"role": "grid"},
                   num_classes=num_classes, label=f"scaling study {name!r}: {len(triples)} triples", err=err)
    return best_triple(study)


def _member_attrs(m: Member, triple: Triple) -> dict[str, Any]:
    return {"alpha": triple.alpha, "beta": triple.beta, "gamma": triple.gamma, "width": m.width,
            "depth": m.depth, "phi": m.phi, "macs_ratio": m.macs_ratio, "nominal": triple.nominal,
            "nominal_ratio": m.nominal_ratio}


def best_triple(study: optuna.Study) -> dict[str, Any]:
    """Highest validation accuracy; ties go to fewer MACs."""
    grid = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("role", "grid") == "grid"]
    if not grid:
        raise UserError(f"scaling study {study.study_name!r} has no complete trial")
    best = max(grid, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["macs"], -t.number))
    a = best.user_attrs
    return {"study": study.study_name, "trial": best.number, "alpha": a["alpha"], "beta": a["beta"],
            "gamma": a["gamma"], "accuracy": a["accuracy"], "macs": a["macs"], "params": a["params"],
            "macs_ratio": a["macs_ratio"], "resolution": a["resolution"], "arch": a["arch"]}


def family_rows(baseline: Baseline, triple: Triple, phis: list[float], *, multiple: int) -> list[Member]:
    check_coefficients(triple)
    return family(baseline.arch, resolution=baseline.resolution, triple=triple, phis=phis, multiple=multiple,
                  num_classes=baseline.num_classes)


def load_scaling_study(config: StudyConfig, name: str) -> optuna.Study:
    """``name`` is a scaling study, or a NAS study whose ``name-scaling`` holds the grid."""
    storage = open_storage(config.storage, create=False)
    names = optuna.get_all_study_names(storage)
    for candidate in (name, f"{name}-scaling"):
        if candidate in names:
            study = optuna.load_study(study_name=candidate, storage=storage)
            if study.user_attrs.get("kind") == "scaling":
                return study
    raise UserError(f"no scaling study {name!r} (or {name + '-scaling'!r}) in {mask_url(config.storage)}")


def train_family(config: StudyConfig, study_name: str, baseline: Baseline, triple: Triple, members: list[Member],
                 *, multiple: int, err: TextIO = sys.stderr) -> dict[float, float]:
    """Train every member into the scaling study (role ``family``); returns accuracy per phi."""
    num_classes, split = _driver_data(config)
    storage = open_storage(config.storage, create_default_dir=config.storage == DEFAULT_STORAGE)
    attrs = _study_attrs(config, baseline, num_classes, split, {"resolution_multiple": multiple})
    study = open_scaling_study(study_name, storage, attrs, check=("baseline", "base_resolution", "dataset"))
    role = {"role": "family", "triple": f"{triple.alpha},{triple.beta},{triple.gamma}"}
    by_phi = {(round(m.phi, 6),): (m, triple) for m in members}
    _train_members(config, study, by_phi, param_names=("phi",), role=role, num_classes=num_classes,
                   label=f"family of {len(members)} in {study_name!r}", err=err)
    trained = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {round(t.params["phi"], 6): t.user_attrs["accuracy"] for t in trained
            if all(t.user_attrs.get(k) == v for k, v in role.items())}
