"""``effnas confirm``: retrain the best of a finished NAS study at a longer budget, with several seeds and beside
reference architectures, and measure how well the study's short training ranked them (the proxy fidelity).

The confirmation is the study NAME-confirm (kind ``confirm``), trained through the same runner as every
other study, so it resumes the same way. Its trials carry ``role`` (candidate | baseline | reference),
``label``, ``source_trial`` (the NAS trial they retrain), ``replicate`` and ``seed``.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, TextIO

import optuna

from effnas.search import catalog, halving, record, selection
from effnas.search.confirmation import ConfirmResult, Entry, confirm_result
from effnas.search.settings import TrainSettings
from effnas.search.trial import Proposal
from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.errors import UserError
from effnas.studies import __version__
from effnas.studies.config import StudyConfig, with_dims
from effnas.studies.runner import create_or_join, preflight, storage_for, train_list
from effnas.studies.storage import mask_url, open_storage

ROLES = ("candidate", "baseline", "reference")


def load_nas_study(config: StudyConfig) -> optuna.Study:
    study = catalog.get(open_storage(config.storage, write=False), config.study)
    if study is None:
        raise UserError(f"no NAS study {config.study!r} in {mask_url(config.storage)}; `effnas confirm` retrains "
                        "the best of a finished NAS study (--study NAME)")
    catalog.require_kind(study, catalog.NAS)
    if not selection.measured(record.read_all(study.get_trials(deepcopy=False))):
        raise UserError(f"NAS study {config.study!r} has no complete trial yet")
    return study


def entries_of(nas: optuna.Study, config: StudyConfig) -> list[Entry]:
    """The top --top of the front (the next non-dominated ranks when the front is smaller; spread along it
    when larger), the chosen baseline, the study's base and the --references (as networks of the study's
    dimensionality and input channels: a 3-D study compares volume networks)."""
    done, seen = [], set()
    for r in selection.measured(record.read_all(nas.get_trials(deepcopy=False))):
        if r.arch not in seen:  # a repeated architecture is one entry, its first measurement
            seen.add(r.arch)
            done.append(r)
    order = halving.nondominated_order([(r.accuracy, float(r.macs)) for r in done])
    chosen = selection.choose_baseline(done, target_macs=nas.user_attrs["target_macs"])
    picked = [done[i] for i in order[:config.top]]
    if chosen is not None and chosen.number not in {r.number for r in picked}:
        picked.append(chosen)
    base_name = json.loads(nas.user_attrs.get("config", "{}")).get("base", "")
    base_label = f"{base_name}, the base" if base_name in presets.PRESETS else "the base"
    entries = [Entry(id=r.number, role="baseline" if chosen is not None and r.number == chosen.number else "candidate",
                     label=f"trial {r.number}" + (f" ({base_label})" if r.enqueued else ""), arch=r.arch,
                     source_trial=r.number, proxy_accuracy=r.accuracy) for r in picked]
    names = [base_name] + [n for n in (config.references or ()) if n != base_name]
    base = json.loads(nas.user_attrs.get("space", "{}")).get("base")
    like = ArchSpec.parse(base) if base else None  # the study's dimensionality and input channels
    for k, name in enumerate(names):
        resolved = presets.resolve(name)[0]
        if like is not None:
            resolved = dataclasses.replace(resolved, dims=like.dims, in_channels=like.in_channels)
        arch = str(resolved)
        if arch not in {e.arch for e in entries}:
            label = base_label if name == base_name else name
            entries.append(Entry(id=100_000 + k, role="reference", label=label, arch=arch, source_trial=None,
                                 proxy_accuracy=None))
    return entries


def train_settings(nas: optuna.Study, config: StudyConfig) -> TrainSettings:
    """The study's recipe (every training setting it recorded), with this command's flags on top; --epochs
    defaults to five times the study's. A confirmation trains, whatever the study's --evaluator, and on the whole
    training split unless its own --train-samples says otherwise: a subset and a zero-cost score are proxies."""
    recorded = json.loads(nas.user_attrs.get("config", "{}"))
    names = {f.name for f in dataclasses.fields(TrainSettings)} - {"evaluator"}
    values = {k: v for k, v in recorded.items() if k in names - {"train_samples"}}
    values.update({k: getattr(config.train, k) for k in names if k in config.explicit})
    if "epochs" not in config.explicit:
        values["epochs"] = 5 * int(nas.user_attrs.get("epochs", recorded.get("epochs", 1)))
    return TrainSettings.from_dict(values)


def run_confirm(config: StudyConfig, *, err: TextIO = sys.stderr) -> ConfirmResult:
    if config.dims is not None:
        config = with_dims(config, dims=config.dims)  # --dims 3 alone confirms the 3-D default study
    nas = load_nas_study(config)
    train = train_settings(nas, config)
    resolution = int(nas.user_attrs["resolution"])
    trained = dataclasses.replace(config, dataset=nas.user_attrs["dataset"], resolution=resolution, train=train)
    data = preflight(trained)
    name = catalog.companion(config.study, catalog.CONFIRM)
    fresh = entries_of(nas, config)
    attrs = {"kind": "confirm", "source": config.study, "epochs": train.epochs, "dataset": trained.dataset,
             "resolution": resolution, "num_classes": data.num_classes, "seed": config.seed, "version": __version__,
             "split": json.dumps(data.split, sort_keys=True), "target_macs": nas.user_attrs["target_macs"],
             "base_macs": nas.user_attrs["target_macs"],
             "config": json.dumps({**trained.to_dict(), **train.to_dict(), "storage": mask_url(config.storage)},
                                  sort_keys=True, default=str)}
    study = _open(name, storage_for(config), attrs)
    entries = _merge(study, fresh)
    print(f"effnas: confirm: {len(entries)} architectures of {config.study!r} x {config.seeds} seed(s) at "
          f"{train.epochs} epochs ({sum(e.role != 'reference' for e in entries)} from the study, "
          f"{sum(e.role == 'reference' for e in entries)} reference(s))", file=err)
    proposals = {}
    for e in entries:
        for r in range(config.seeds):
            proposals[(float(e.id), float(r))] = Proposal(
                arch=presets.resolve(e.arch)[0], resolution=resolution,
                attrs=record.check({"role": e.role, "label": e.label, "source_trial": e.source_trial,
                                    "replicate": r}))
    header = f"confirmation {name!r} in {mask_url(config.storage)}; {trained.dataset}, {train.epochs} epochs per trial"
    train_list(trained, study, proposals, param_names=("entry", "replicate"), marks={},
               num_classes=data.num_classes, header=header, err=err)
    result = confirm_result(study)
    _record(study, result)
    return result


def _open(name: str, storage: Any, attrs: dict[str, Any]) -> optuna.Study:
    def setup(study: optuna.Study) -> None:
        study.set_metric_names(["accuracy", "macs"])
        catalog.write_record(study, {**attrs, "entries": "[]"})

    study = create_or_join(name, storage, directions=["maximize", "minimize"], sampler=None, setup=setup)
    existing = catalog.require_kind(study, catalog.CONFIRM, name=name).user_attrs
    for key in ("epochs", "dataset", "resolution"):
        if existing.get(key) != attrs[key]:
            raise UserError(f"{name!r} already confirms at {key} {existing.get(key)!r}, not {attrs[key]!r}; give the "
                            "same settings to resume it")
    return study


def _merge(study: optuna.Study, fresh: list[Entry]) -> list[Entry]:
    """The study's entries so far plus the new ones (a grown NAS study adds entries; none is dropped), with
    stable ids: a resumed confirmation trains what it planned before."""
    known = [Entry(**e) for e in json.loads(study.user_attrs.get("entries", "[]"))]
    by_arch = {e.arch: e for e in known}
    merged = list(known)
    for e in fresh:
        if e.arch not in by_arch:
            taken = {k.id for k in merged}
            merged.append(e if e.id not in taken else dataclasses.replace(e, id=max(taken) + 1))
            by_arch[e.arch] = merged[-1]
    study.set_user_attr("entries", json.dumps([dataclasses.asdict(e) for e in merged]))
    return merged


def _record(study: optuna.Study, result: ConfirmResult) -> None:
    f = result.fidelity
    values = {"kendall_tau": f.tau, "kendall_p": f.p_value, "fidelity_n": f.n, "seed_noise": f.seed_noise,
              "spread": f.spread}
    if result.baseline is not None:
        values.update(confirmed_baseline=result.baseline.entry.arch, confirmed_trial=result.baseline.entry.source_trial,
                      confirmed_resolution=int(study.user_attrs["resolution"]))
    for key, value in values.items():
        study.set_user_attr(key, value)

