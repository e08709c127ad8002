"""The compound-scaling study (alpha, beta, gamma grid search) and the scaled family.

The grid study trains every triple of the grid as one trial of the study ``NAME-scaling`` (kind
``scaling``), through the same planner and runner as the NAS study, so it resumes the same way.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import record, selection
from search.trial import Budget, Proposal, TrialPlanner
from space import presets
from space.arch import ArchSpec
from space.compound import Member, Triple, check_coefficients, compound_grid, family, member
from space.cost import cost
from space.errors import UserError
from studies import __version__
from studies.config import StudyConfig
from studies.runner import check_data, drive, storage_for, template
from studies.storage import mask_url, open_storage


@dataclass(frozen=True)
class Baseline:
    arch: ArchSpec
    resolution: int
    label: str
    num_classes: int = 1000  # a study's class count; ImageNet's for presets and arch strings


def resolve_baseline(text: str, *, config: StudyConfig) -> Baseline:
    """``best`` (the NAS study's chosen baseline), a trial number of it, a preset, or an arch string."""
    if text == "best" or text.isdigit():
        from studies.nas import chosen_baseline

        study = _load_nas_study(config)
        if text == "best":
            chosen = chosen_baseline(study)
        else:
            matches = [t for t in study.get_trials(deepcopy=False) if t.number == int(text)]
            if not matches or matches[0].state != TrialState.COMPLETE:
                raise UserError(f"study {config.study!r} has no complete trial {text}")
            chosen = record.read(matches[0])
        arch, resolution = ArchSpec.parse(chosen.arch), int(chosen.resolution)
        label = f"{config.study} trial {chosen.number}"
        num_classes = int(chosen.num_classes or study.user_attrs.get("num_classes", 1000))
    else:
        arch, preset = presets.efficientnet(text, role="the baseline to scale"), presets.PRESETS.get(text)
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


def grid_triples(config: StudyConfig) -> list[Triple]:
    s = config.scale
    triples = compound_grid(step=s.step, tolerance=s.tolerance, max_coef=s.max_coef)
    if not triples:
        raise UserError(f"no triple within tolerance {s.tolerance} of alpha*beta^2*gamma^2 = 2 on this grid")
    return triples


def grid_rows(baseline: Baseline, config: StudyConfig) -> list[dict[str, Any]]:
    """The grid as a user sees it in ``scale --dry-run``: each triple's member at phi with its exact cost."""
    rows = []
    for t in grid_triples(config):
        m = _member(baseline, t, config.scale.phi, config)
        rows.append({"alpha": t.alpha, "beta": t.beta, "gamma": t.gamma, "nominal": round(t.nominal, 6),
                     "width": m.width, "depth": m.depth, "resolution": m.resolution, "params": m.params,
                     "macs": m.macs, "macs_ratio": m.macs_ratio})
    return rows


def _member(baseline: Baseline, triple: Triple, phi: float, config: StudyConfig) -> Member:
    return member(baseline.arch, resolution=baseline.resolution, triple=triple, phi=phi,
                  multiple=config.scale.resolution_multiple, num_classes=baseline.num_classes)


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
    settings = {**config.to_dict(), "storage": mask_url(config.storage)}
    return {
        "kind": "scaling", "baseline": str(baseline.arch), "baseline_label": baseline.label,
        "base_resolution": baseline.resolution, "num_classes": num_classes, "dataset": config.dataset,
        "seed": config.seed, "version": __version__, "split": json.dumps(split, sort_keys=True),
        "config": json.dumps(settings, sort_keys=True, default=str),
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

    planner = TrialPlanner(study=study, propose=propose, budget=Budget(), template=template(config, num_classes),
                           n_trials=len(members), target_macs=study.user_attrs["base_macs"],
                           objectives=("accuracy", "macs"), before_ask=queue_next,
                           counts_toward=lambda t: key_of(t) is not None)
    header = (f"{label} in {mask_url(config.storage)}; {config.dataset}, {config.train.epochs} epoch(s) per "
              "trial")
    drive(config, planner, total=len(members), header=header, err=err)


def run_scale(config: StudyConfig, baseline: Baseline, *, err: TextIO = sys.stderr) -> dict[str, Any]:
    """Train every triple of the grid (resuming what is done) and return the best one."""
    s = config.scale
    data = check_data(config)
    triples = grid_triples(config)
    options = {"phi": s.phi, "step": s.step, "tolerance": s.tolerance, "max_coef": s.max_coef,
               "resolution_multiple": s.resolution_multiple}
    attrs = _study_attrs(config, baseline, data.num_classes, data.split, options)
    name = f"{config.study}-scaling"
    study = open_scaling_study(name, storage_for(config), attrs, check=("baseline", "base_resolution", "phi", "step",
                                                                        "tolerance", "max_coef", "dataset"))
    counted = dataclasses.replace(baseline, num_classes=data.num_classes)
    members = {_key(t.alpha, t.beta, t.gamma): (_member(counted, t, s.phi, config), t) for t in triples}
    _train_members(config, study, members, param_names=("alpha", "beta", "gamma"), role={"role": "grid"},
                   num_classes=data.num_classes, label=f"scaling study {name!r}: {len(triples)} triples", err=err)
    return best_triple(study)


def _member_attrs(m: Member, triple: Triple) -> dict[str, Any]:
    return record.check({"alpha": triple.alpha, "beta": triple.beta, "gamma": triple.gamma, "width": m.width,
                         "depth": m.depth, "phi": m.phi, "macs_ratio": m.macs_ratio, "nominal": triple.nominal,
                         "nominal_ratio": m.nominal_ratio})


def best_triple(study: optuna.Study) -> dict[str, Any]:
    """The chosen triple of a scaling study (see :func:`search.selection.best_triple`)."""
    best = selection.best_triple(record.read_all(study.get_trials(deepcopy=False)))
    if best is None:
        raise UserError(f"scaling study {study.study_name!r} has no complete trial")
    return {"study": study.study_name, "trial": best.number, "alpha": best.alpha, "beta": best.beta,
            "gamma": best.gamma, "accuracy": best.accuracy, "macs": best.macs, "params": best.params,
            "macs_ratio": best.macs_ratio, "resolution": best.resolution, "arch": best.arch}


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


@dataclass(frozen=True)
class Family:
    baseline: Baseline
    triple: Triple
    members: list[Member]
    scaling_study: optuna.Study | None


def derive_family(config: StudyConfig, *, from_study: str | None) -> Family:
    """The family a user asked for: the triple and baseline from flags, or from a scaling study."""
    s = config.scale
    given = [c is not None for c in (s.alpha, s.beta, s.gamma)]
    if from_study and any(given):
        raise UserError("give either --alpha/--beta/--gamma or --from-study, not both")
    if not from_study and not all(given):
        raise UserError("give --alpha, --beta and --gamma, or --from-study NAME")
    scaling_study = load_scaling_study(config, from_study) if from_study else None
    if scaling_study is not None:
        best = best_triple(scaling_study)
        triple = Triple(best["alpha"], best["beta"], best["gamma"])
    else:
        triple = Triple(s.alpha, s.beta, s.gamma)
    if s.baseline is None and scaling_study is None:
        raise UserError("--baseline is required without --from-study")
    if s.baseline is None:
        attrs = scaling_study.user_attrs
        resolution = config.resolution if "resolution" in config.explicit else int(attrs["base_resolution"])
        baseline = Baseline(ArchSpec.parse(attrs["baseline"]), resolution, attrs.get("baseline_label", "baseline"),
                            int(attrs.get("num_classes", 1000)))
    else:
        baseline = resolve_baseline(s.baseline, config=config)
    if s.num_classes is not None:
        baseline = dataclasses.replace(baseline, num_classes=s.num_classes)
    check_coefficients(triple)
    members = family(baseline.arch, resolution=baseline.resolution, triple=triple, phis=list(s.phis),
                     multiple=s.resolution_multiple, num_classes=baseline.num_classes)
    return Family(baseline=baseline, triple=triple, members=members, scaling_study=scaling_study)


def train_family(config: StudyConfig, fam: Family, *, err: TextIO = sys.stderr) -> dict[float, float]:
    """Train every member into the scaling study (role ``family``); returns accuracy per phi."""
    study_name = fam.scaling_study.study_name if fam.scaling_study is not None else f"{config.study}-scaling"
    data = check_data(config)
    attrs = _study_attrs(config, fam.baseline, data.num_classes, data.split,
                         {"resolution_multiple": config.scale.resolution_multiple})
    study = open_scaling_study(study_name, storage_for(config), attrs, check=("baseline", "base_resolution",
                                                                              "dataset"))
    triple = fam.triple
    role = {"role": "family", "triple": f"{triple.alpha},{triple.beta},{triple.gamma}"}
    by_phi = {(round(m.phi, 6),): (m, triple) for m in fam.members}
    _train_members(config, study, by_phi, param_names=("phi",), role=role, num_classes=data.num_classes,
                   label=f"family of {len(fam.members)} in {study_name!r}", err=err)
    trained = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {round(t.params["phi"], 6): t.user_attrs["accuracy"] for t in trained
            if all(t.user_attrs.get(k) == v for k, v in role.items())}
