"""Compound scaling: the (alpha, beta, gamma) grid study and the scaled family.

One naming rule: every study of a line of work shares the root name NAME given by ``--study`` (default
``effnas``): the NAS study is NAME, ``effnas scale`` trains its grid into NAME-scaling, and ``effnas
family --train`` trains the family into NAME-family (``--from-study NAME`` reads the chosen triple from
NAME-scaling). Both run through the same planner and runner as the NAS study, so they resume the same way.

Volume networks scale under alpha * beta^2 * gamma^3 ~ 2: the exponent is the baseline's dimensionality
(its arch string's ``3d``, or ``--dims``), and a 3-D line of work starts from the 3-D default study.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from effnas.search import catalog, record, selection
from effnas.search.data.kinds import dataset_channels, dataset_classes
from effnas.search.selection import TripleScore
from effnas.search.trial import Proposal
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.compound import Member, Triple, check_coefficients, compound_grid, constraint, family, member
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.studies import __version__
from effnas.studies.config import StudyConfig, with_dims
from effnas.studies.progress import duration
from effnas.studies.runner import check_memory, create_or_join, preflight, settle_dims, storage_for, train_list
from effnas.studies.storage import mask_url, open_storage
from effnas.studies.tables import input_size


@dataclass(frozen=True)
class Baseline:
    arch: ArchSpec
    resolution: int
    label: str


def resolve_baseline(text: str, *, config: StudyConfig) -> Baseline:
    """``best`` (the NAS study's chosen baseline), a trial number of it, a preset, or an arch string; ``--dims``
    turns it into a network of that dimensionality."""
    if config.dims is not None:
        config = with_dims(config, dims=config.dims)  # with --dims 3, "best" is the 3-D default study's
    if text == "best" or text.isdigit():
        study = _load_nas_study(config, text)
        confirmed = catalog.confirmed_baseline(open_storage(config.storage, write=False), config.study)
        if text == "best" and confirmed is not None:
            text_arch, resolution, number = confirmed
            arch, label = ArchSpec.parse(text_arch), f"{config.study} trial {number} (confirmed)"
        else:
            chosen = catalog.chosen_baseline(study) if text == "best" else catalog.trial_of(study, text)
            arch, resolution = ArchSpec.parse(chosen.arch), int(chosen.resolution)
            label = f"{config.study} trial {chosen.number}"
    else:
        arch, preset = presets.efficientnet(text, role="the baseline to scale"), presets.PRESETS.get(text)
        resolution, label = (preset.resolution, preset.name) if preset else (224, "arch string")
    if "resolution" in config.explicit:
        resolution = config.resolution
    if config.dims is not None:
        arch = dataclasses.replace(arch, dims=config.dims)
    return Baseline(arch=arch, resolution=resolution, label=label)


def settle(config: StudyConfig, *, baseline: Baseline, training: bool) -> tuple[StudyConfig, Baseline]:
    """The config and baseline of one dimensionality (the baseline's, unless --dims or the dataset says
    otherwise: :func:`studies.runner.settle_dims`), the baseline taking the input channels it is costed for."""
    config = settle_dims(config, arch=baseline.arch)
    channels = channel_count(config, own=baseline.arch.in_channels, training=training)
    return config, dataclasses.replace(baseline, arch=dataclasses.replace(baseline.arch, dims=config.dims,
                                                                          in_channels=channels))


def _load_nas_study(config: StudyConfig, text: str) -> optuna.Study:
    advice = (f"--baseline {text} scales a trial of the NAS study --study {config.study!r}; run `effnas search "
              f"--study {config.study}` first, or give --baseline PRESET or ARCH to scale without a NAS study")
    try:
        storage = open_storage(config.storage, write=False)
    except UserError as exc:
        raise UserError(f"no NAS study {config.study!r}: {exc}; {advice}") from None
    study = catalog.get(storage, config.study)
    if study is None:
        raise UserError(f"no NAS study {config.study!r} in {mask_url(config.storage)}: {advice}")
    catalog.require_kind(study, catalog.NAS, advice=advice)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise UserError(f"NAS study {config.study!r} has no complete trial yet")
    return study


def class_count(config: StudyConfig, *, training: bool) -> int:
    """The classes costs are counted for: --num-classes; else the dataset's when it will be trained on (or was
    given); else ImageNet's 1000, as the presets are defined."""
    if config.scale.num_classes is not None:
        return config.scale.num_classes
    return dataset_classes(config.dataset) if training or "dataset" in config.explicit else 1000


def channel_count(config: StudyConfig, *, own: int, training: bool) -> int:
    """The input channels costs are counted for, by class_count's rule: --in-channels; else the dataset's when
    it will be trained on (or was given); else the baseline's ``own`` (3 for a preset)."""
    if config.scale.in_channels is not None:
        return config.scale.in_channels
    return dataset_channels(config.dataset) if training or "dataset" in config.explicit else own


@dataclass(frozen=True)
class ScalePlan:
    """A grid study, checked and costed before anything is trained or written."""

    config: StudyConfig  # the study's, its dimensionality settled
    baseline: Baseline
    num_classes: int
    phi: float
    members: dict[tuple[float, float, float], tuple[Member, Triple]]
    base_macs: int

    @property
    def target_macs(self) -> float:
        """The nominal budget every triple stands for: 2^phi x the baseline's MACs."""
        return self.base_macs * 2.0**self.phi


def plan_scale(config: StudyConfig) -> ScalePlan:
    config, baseline = settle(config, baseline=resolve_baseline(config.scale.baseline or "best", config=config),
                              training=True)
    s = config.scale
    num_classes = class_count(config, training=True)
    dims = baseline.arch.dims
    triples = compound_grid(step=s.step, tolerance=s.tolerance, max_coef=s.max_coef, dims=dims)
    if not triples:
        raise UserError(f"no triple within tolerance {s.tolerance} of {constraint(dims)} = 2 on this grid")
    members = {_key(t): (member(baseline.arch, resolution=baseline.resolution, triple=t, phi=s.phi,
                                multiple=s.resolution_multiple, num_classes=num_classes), t) for t in triples}
    base_macs = cost(baseline.arch, baseline.resolution, num_classes=num_classes).macs
    return ScalePlan(config=config, baseline=baseline, num_classes=num_classes, phi=s.phi, members=members,
                     base_macs=base_macs)


def grid_rows(plan: ScalePlan) -> list[dict[str, Any]]:
    """The grid as ``scale --dry-run`` prints it: each triple's member at phi, with its exact cost."""
    return [{"alpha": t.alpha, "beta": t.beta, "gamma": t.gamma, "nominal": round(t.nominal, 6), "width": m.width,
             "depth": m.depth, "resolution": m.resolution, "params": m.params, "macs": m.macs,
             "macs_ratio": m.macs_ratio} for m, t in plan.members.values()]


def announce(plan: ScalePlan, study: optuna.Study | None) -> str:
    """What `effnas scale` is about to train and what that costs, said before any training."""
    config = plan.config
    macs = [m.macs for m, _ in plan.members.values()]
    ratios = [m.macs_ratio for m, _ in plan.members.values()]
    dims = plan.baseline.arch.dims
    text = (f"{len(plan.members)} triples with |{constraint(dims)} - 2| <= {config.scale.tolerance:g} ({dims}-D: MACs "
            f"grow with depth * width^2 * resolution^{dims}) of {plan.baseline.label} "
            f"({input_size(plan.baseline.resolution, dims=dims)}, {plan.num_classes} "
            f"classes) at phi {plan.phi:g} to train on {config.dataset}, {config.train.epochs} epoch(s) each: "
            f"{sum(macs) / 1e6:,.1f} M MACs per image over the grid, {min(ratios):.2f}x to {max(ratios):.2f}x the "
            f"baseline's {plan.base_macs / 1e6:,.2f} M")
    if config.seeds > 1:
        best = min(config.top, len(plan.members))
        text += f"; then the best {best} trained with {config.seeds - 1} more seed(s) each"
    done = [t for t in (study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if study else [])
            if t.user_attrs.get("train_seconds") is not None]
    if done:
        each = sum(t.user_attrs["train_seconds"] + t.user_attrs.get("eval_seconds", 0.0) for t in done) / len(done)
        todo = len(plan.members) + (config.seeds - 1) * min(config.top, len(plan.members)) - len(done)
        text += f"; about {duration(each * max(0, todo))} left at {each:.1f} s per trial (measured here)"
    return text


def _key(t: Triple, replicate: int = 0) -> tuple[float, ...]:
    return round(t.alpha, 6), round(t.beta, 6), round(t.gamma, 6), float(replicate)


def _study_attrs(kind: str, config: StudyConfig, baseline: Baseline, num_classes: int, split: dict,
                 extra: dict[str, Any]) -> dict[str, Any]:
    settings = {**config.to_dict(), "storage": mask_url(config.storage)}
    return {
        "kind": kind, "baseline": str(baseline.arch), "baseline_label": baseline.label,
        "base_resolution": baseline.resolution, "dims": baseline.arch.dims, "num_classes": num_classes,
        "dataset": config.dataset,
        "seed": config.seed, "version": __version__, "split": json.dumps(split, sort_keys=True),
        "config": json.dumps(settings, sort_keys=True, default=str), "epochs": config.train.epochs,
        "base_macs": cost(baseline.arch, baseline.resolution, num_classes=num_classes).macs, **extra,
    }


def _open(name: str, storage: Any, attrs: dict[str, Any], *, check: tuple[str, ...], params: str) -> optuna.Study:
    def setup(study: optuna.Study) -> None:
        study.set_metric_names(["accuracy", "macs"])
        catalog.write_record(study, attrs)

    study = create_or_join(name, storage, directions=["maximize", "minimize"], sampler=None, setup=setup)
    existing = catalog.require_kind(study, attrs["kind"], name=name).user_attrs
    for key in check:
        if existing.get(key) != attrs.get(key):
            root = name.rsplit("-", 1)[0]
            raise UserError(f"study {name!r} already holds the {params} of another {key} ({existing.get(key)!r}, "
                            f"not {attrs.get(key)!r}); give another --study NAME (it trains into NAME"
                            f"{name[len(root):]}) or the same {key}")
    return study


def _train_members(config: StudyConfig, study: optuna.Study, members: dict[tuple, tuple[Member, Triple]], *,
                   param_names: tuple[str, ...], role: dict[str, str], num_classes: int, label: str,
                   err: TextIO) -> None:
    proposals = {}
    for key, (m, triple) in members.items():
        attrs = _member_attrs(m, triple)
        if "replicate" in param_names:
            attrs["replicate"] = int(key[param_names.index("replicate")])
        proposals[key] = Proposal(arch=m.arch, resolution=m.resolution, attrs=attrs)
    header = (f"{label} in {mask_url(config.storage)}; {config.dataset}, {config.train.epochs} epoch(s) per "
              "trial")
    train_list(config, study, proposals, param_names=param_names, marks=role, num_classes=num_classes,
               header=header, err=err)


def _member_attrs(m: Member, triple: Triple) -> dict[str, Any]:
    return record.check({"alpha": triple.alpha, "beta": triple.beta, "gamma": triple.gamma, "width": m.width,
                         "depth": m.depth, "phi": m.phi, "macs_ratio": m.macs_ratio, "nominal": triple.nominal,
                         "nominal_ratio": m.nominal_ratio})


@dataclass(frozen=True)
class ScaleResult:
    study: str
    chosen: TripleScore
    scores: list[TripleScore]
    target_macs: float

    def to_dict(self) -> dict[str, Any]:
        c = self.chosen
        return {"study": self.study, "rule": "highest mean MnasNet reward at 2^phi x the baseline's MACs",
                "target_macs": self.target_macs, "alpha": c.alpha, "beta": c.beta, "gamma": c.gamma,
                "trial": c.numbers[0], "trials": list(c.numbers), "accuracy": c.accuracy,
                "accuracy_sd": c.accuracy_sd, "reward": c.reward, "macs": c.macs, "macs_ratio": c.macs_ratio,
                "triples": [{"alpha": s.alpha, "beta": s.beta, "gamma": s.gamma, "n": s.n, "accuracy": s.accuracy,
                             "accuracy_sd": s.accuracy_sd, "reward": s.reward, "macs_ratio": s.macs_ratio}
                            for s in self.scores]}


def run_scale(plan: ScalePlan, *, err: TextIO = sys.stderr) -> ScaleResult:
    """Train every triple of the grid (resuming what is done), retrain the best with more seeds, choose."""
    config = plan.config
    s = config.scale
    if len(plan.members) > s.max_triples:
        raise UserError(f"the grid holds {len(plan.members)} triples, more than --max-triples {s.max_triples}; "
                        "narrow it (--step, --max-coef, --tolerance) or raise --max-triples")
    data = preflight(config)
    if data.num_classes != plan.num_classes:
        raise UserError(f"--num-classes {plan.num_classes}, but {config.dataset} has {data.num_classes} classes")
    _check_channels(plan.baseline, data.channels, config.dataset)
    check_memory(config, [Proposal(arch=m.arch, resolution=m.resolution) for m, _ in plan.members.values()],
                 num_classes=data.num_classes)  # before the study is created: nothing written on refusal
    name = catalog.companion(config.study, catalog.SCALING)
    options = {"phi": s.phi, "step": s.step, "tolerance": s.tolerance, "max_coef": s.max_coef,
               "resolution_multiple": s.resolution_multiple}
    attrs = _study_attrs("scaling", config, plan.baseline, data.num_classes, data.split, options)
    study = _open(name, storage_for(config), attrs, params="grid",
                  check=("baseline", "base_resolution", "phi", "step", "tolerance", "max_coef", "dataset", "epochs"))
    print(f"effnas: scale: {announce(plan, study)}", file=err)
    names = ("alpha", "beta", "gamma", "replicate")
    _train_members(config, study, plan.members, param_names=names, role={"role": "grid"},
                   num_classes=data.num_classes, label=f"scaling study {name!r}: {len(plan.members)} triples", err=err)
    if config.seeds > 1:
        best = selection.score_triples(record.read_all(study.get_trials(deepcopy=False)),
                                       target_macs=plan.target_macs)[:config.top]
        repeats = dict(plan.members)
        for score in best:
            m, t = plan.members[_key(Triple(score.alpha, score.beta, score.gamma))]
            repeats.update({_key(t, r): (m, t) for r in range(1, config.seeds)})
        _train_members(config, study, repeats, param_names=names, role={"role": "grid"},
                       num_classes=data.num_classes, err=err,
                       label=f"scaling study {name!r}: the best {len(best)} triples with {config.seeds} seeds each")
    return scale_result(study)


def _check_channels(baseline: Baseline, channels: int, dataset: str) -> None:
    if baseline.arch.in_channels != channels:
        raise UserError(f"--in-channels {baseline.arch.in_channels}, but {dataset} has {channels} channel(s)")


def scale_result(study: optuna.Study) -> ScaleResult:
    """The chosen triple of a scaling study, with every triple's score (see search.selection.score_triples)."""
    target = float(study.user_attrs["base_macs"]) * 2.0 ** float(study.user_attrs.get("phi", 1.0))
    scores = selection.score_triples(record.read_all(study.get_trials(deepcopy=False)), target_macs=target)
    if not scores:
        raise UserError(f"scaling study {study.study_name!r} has no complete trial")
    return ScaleResult(study=study.study_name, chosen=scores[0], scores=scores, target_macs=target)


def load_scaling_study(config: StudyConfig, name: str) -> optuna.Study:
    """``name`` is a scaling study, or the root NAME whose NAME-scaling holds the grid."""
    study = catalog.find(open_storage(config.storage, write=False), name, catalog.SCALING)
    if study is not None:
        return study
    missing = catalog.companion(name, catalog.SCALING)
    raise UserError(f"no scaling study {missing!r} in {mask_url(config.storage)}: run `effnas scale --study "
                    f"{name}` first, or give --alpha, --beta and --gamma")


@dataclass(frozen=True)
class Family:
    config: StudyConfig  # the study's, its dimensionality settled
    baseline: Baseline
    triple: Triple
    members: list[Member]
    num_classes: int
    root: str  # the study NAME-family trains into


def derive_family(config: StudyConfig, *, from_study: str | None, training: bool) -> Family:
    """The family a user asked for: the triple and baseline from flags, or from NAME-scaling."""
    s = config.scale
    given = [c is not None for c in (s.alpha, s.beta, s.gamma)]
    if from_study and any(given):
        raise UserError("give either --alpha/--beta/--gamma or --from-study NAME, not both")
    if not from_study and not all(given):
        raise UserError("give --alpha, --beta and --gamma, or --from-study NAME")
    if from_study:
        scaling = load_scaling_study(config, from_study)
        chosen = scale_result(scaling).chosen
        coefficients = (chosen.alpha, chosen.beta, chosen.gamma)
        root = scaling.study_name.removesuffix(catalog.SUFFIXES[catalog.SCALING])
    else:
        scaling, coefficients, root = None, (s.alpha, s.beta, s.gamma), config.study
    if s.baseline is None and scaling is None:
        raise UserError("--baseline is required without --from-study")
    if s.baseline is None:
        attrs = scaling.user_attrs
        resolution = config.resolution if "resolution" in config.explicit else int(attrs["base_resolution"])
        baseline = Baseline(ArchSpec.parse(attrs["baseline"]), resolution, attrs.get("baseline_label", "baseline"))
    else:
        baseline = resolve_baseline(s.baseline, config=config)
    config, baseline = settle(config, baseline=baseline, training=training)
    triple = Triple(*coefficients, dims=baseline.arch.dims)
    check_coefficients(triple)
    num_classes = class_count(config, training=training)
    members = family(baseline.arch, resolution=baseline.resolution, triple=triple, phis=list(s.phis),
                     multiple=s.resolution_multiple, num_classes=num_classes)
    return Family(config=config, baseline=baseline, triple=triple, members=members, num_classes=num_classes,
                  root=root)


def train_family(fam: Family, *, err: TextIO = sys.stderr) -> dict[float, float]:
    """Train every member into NAME-family (its own study: the dashboard sees one search space, phi);
    returns accuracy per phi."""
    config = fam.config
    data = preflight(config)
    if data.num_classes != fam.num_classes:
        raise UserError(f"--num-classes {fam.num_classes}, but {config.dataset} has {data.num_classes} classes")
    _check_channels(fam.baseline, data.channels, config.dataset)
    name = catalog.companion(fam.root, catalog.FAMILY)
    t = fam.triple
    triple = f"{t.alpha:g},{t.beta:g},{t.gamma:g}"
    attrs = _study_attrs("family", config, fam.baseline, data.num_classes, data.split,
                         {"triple": triple, "resolution_multiple": config.scale.resolution_multiple})
    study = _open(name, storage_for(config), attrs, params="family",
                  check=("baseline", "base_resolution", "triple", "dataset", "epochs"))
    role = {"role": "family", "triple": triple}
    by_phi = {(round(m.phi, 6),): (m, t) for m in fam.members}
    _train_members(config, study, by_phi, param_names=("phi",), role=role, num_classes=data.num_classes,
                   label=f"family of {len(fam.members)} in {name!r}", err=err)
    trained = record.read_all(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return {round(r.choices["phi"], 6): r.accuracy for r in trained if r.role == "family"}
