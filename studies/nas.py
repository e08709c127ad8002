"""The NAS study: check everything, open the storage, run the executor, print the front and the baseline."""
from __future__ import annotations

import dataclasses
import functools
import json
import sys
from dataclasses import dataclass, replace
from typing import Any, TextIO

import optuna

from effnas.search import catalog, record, samplers, selection
from effnas.search.data.kinds import dataset_channels, dataset_classes
from effnas.search.halving import Rungs
from effnas.search.settings import TrainSettings, as_recorded_now
from effnas.search.trial import Budget, LatencyOf, TrialPlanner, TrialTemplate, score_objective, space_proposer
from effnas.search.utils.memory import device_memory
from effnas.space import presets
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.space.searchspace import SearchSpace
from effnas.studies import __version__
from effnas.studies.config import StudyConfig, space_options
from effnas.studies.runner import (
    create_or_join,
    drive,
    driver_device,
    preflight,
    settle_dims,
    storage_for,
    template,
    trial_device,
)
from effnas.studies.storage import mask_url
from effnas.studies.tables import input_size, text_table


@dataclass
class Plan:
    """A checked study, before any file is written."""

    config: StudyConfig
    space: SearchSpace
    template: TrialTemplate
    budget: Budget
    target_macs: int
    strategy: samplers.Strategy
    split: dict
    metric_names: tuple[str, ...]  # the study's objectives, in order
    directions: tuple[str, ...]
    latency_of: LatencyOf | None  # the latency_ms objective's measurement


def plan_search(config: StudyConfig) -> Plan:
    """Check every input (base, space, dataset, budget) without writing anything.

    The plan's config is the one the study runs with: its dimensionality settled (see
    :func:`studies.runner.settle_dims`). The base takes the study's dimensionality and the dataset's channels.
    """
    strategy = samplers.get(config.sampler)
    config = settle_dims(config, arch=presets.efficientnet(config.base, role="the search space's base (--base)"))
    base = replace(presets.efficientnet(config.base, role="the search space's base (--base)"), dims=config.dims)
    overrides, per_stage = space_options(config.space)
    space = SearchSpace.around(base, overrides=overrides, stage_overrides=per_stage)  # checked before any data
    if space.distinct() < config.trials:
        raise UserError(f"the search space holds {space.distinct()} distinct architectures; --trials "
                        f"{config.trials} asks for more (every architecture is trained once)")
    rungs = rungs_of(config)
    # The budget is checked from the dataset's classes and channels, found without decoding it: a study that
    # cannot run fails before the dataset is loaded (a large folder would be decoded into the cache first).
    space = replace(space, base=replace(base, in_channels=dataset_channels(config.dataset)))
    budget = Budget(max_macs=config.max_macs, max_params=config.max_params,
                    memory=device_memory(trial_device(config)), batch_size=config.train.batch_size)
    smallest = space.smallest()
    problems = budget.violations(smallest, config.resolution,
                                 cost(smallest, config.resolution, num_classes=dataset_classes(config.dataset)))
    if problems:
        raise UserError(f"no architecture of the search space fits the budget: even the smallest has "
                        f"{'; '.join(problems)}")
    data = preflight(config)
    target = config.target_macs or cost(space.base, config.resolution, num_classes=data.num_classes).macs
    shared = template(config, data.num_classes)
    if rungs is not None:
        shared = dataclasses.replace(shared, rungs=rungs, train=dataclasses.replace(shared.train, epochs=rungs.top))
    names, directions, latency_of = objectives(config, strategy)
    return Plan(config=config, space=space, template=shared, budget=budget, target_macs=target, strategy=strategy,
                split=data.split, metric_names=names, directions=directions, latency_of=latency_of)


def rungs_of(config: StudyConfig) -> Rungs | None:
    """The successive-halving rungs, or None; trials then train to the last rung, whatever --epochs says."""
    if config.rungs is None:
        return None
    rungs = Rungs(tuple(config.rungs), config.eta)
    if "epochs" in config.explicit and config.train.epochs != rungs.top:
        raise UserError(f"--epochs {config.train.epochs} and --rungs {','.join(map(str, rungs.epochs))}: with "
                        f"successive halving every trial trains to the last rung ({rungs.top} epochs)")
    return rungs


DIRECTIONS = {"accuracy": "maximize", "macs": "minimize", "latency_ms": "minimize"}
LATENCY_SETUP = {"batch": 1, "warmup": 10, "runs": 50}


def objectives(config: StudyConfig, strategy: samplers.Strategy) -> tuple[tuple[str, ...], tuple[str, ...],
                                                                           LatencyOf | None]:
    """(metric names, directions, the latency measurement if latency_ms is one): the sampler's, or for a Pareto
    sampler accuracy, MACs and optionally measured latency."""
    names = tuple(config.objectives)
    if names not in (("accuracy", "macs"), ("accuracy", "macs", "latency_ms")):
        raise UserError(f"--objectives {','.join(names)}: expected accuracy,macs or accuracy,macs,latency_ms")
    evaluator = config.train.evaluator
    if evaluator != "train":
        if strategy.metric_names != samplers.PARETO[0]:
            raise UserError(f"--evaluator {evaluator}: a zero-cost score is an objective of the Pareto samplers "
                            f"(nsga2, tpe, random), not of {strategy.name!r}, whose reward needs an accuracy")
        if config.rungs is not None:
            raise UserError(f"--evaluator {evaluator} with --rungs: a zero-cost trial does not train, so there is "
                            "nothing for successive halving to stop")
        names = (score_objective(evaluator), *names[1:])
    if strategy.metric_names != samplers.PARETO[0]:
        if names != samplers.PARETO[0]:
            raise UserError(f"sampler {strategy.name!r} optimises {','.join(strategy.metric_names)}; --objectives "
                            "applies to the Pareto samplers (nsga2, tpe, random)")
        return strategy.metric_names, strategy.directions, None
    latency_of = None
    if "latency_ms" in names:
        device = driver_device(config)

        def latency_of(arch, resolution: int, num_classes: int) -> float:
            import torch

            from effnas.models import build
            from effnas.search.training.latency import measure_latency

            with torch.random.fork_rng(devices=[]):  # building must not move the trials' random streams
                model = build(arch, num_classes=num_classes, dropout=0.0, drop_path=0.0)
                return measure_latency(model, resolution=resolution, device=device, **LATENCY_SETUP).median_ms
    return names, tuple(DIRECTIONS.get(n, "maximize") for n in names), latency_of  # a score: maximize


def study_attrs(plan: Plan) -> dict[str, Any]:
    config = plan.config.to_dict()
    config["storage"] = mask_url(config["storage"])
    return {
        "kind": "nas",
        "config": json.dumps(config, sort_keys=True),
        "space": json.dumps(plan.space.to_dict(), sort_keys=True),
        "version": __version__,
        "sampler": plan.strategy.name,
        "target_macs": plan.target_macs,
        "dataset": plan.config.dataset,
        "num_classes": plan.template.num_classes,
        "resolution": plan.config.resolution,
        "dims": plan.config.dims,
        "seed": plan.config.seed,
        "split": json.dumps(plan.split, sort_keys=True),
        "epochs": plan.template.train.epochs,
        **({"evaluator": plan.template.train.evaluator} if plan.template.train.evaluator != "train" else {}),
        "rungs": ",".join(map(str, plan.template.rungs.epochs)) if plan.template.rungs else "",
        "eta": plan.template.rungs.eta if plan.template.rungs else 0.0,
        **({"latency": json.dumps({**LATENCY_SETUP, "device": str(driver_device(plan.config)), "dtype": "float32 "
                                   "on CPU, bfloat16 on CUDA", "memory_format": "channels_last"}, sort_keys=True)}
           if plan.latency_of else {}),
    }


def open_study(plan: Plan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it to resume; refuse one made for another kind, space or strategy."""
    config, strategy = plan.config, plan.strategy
    attrs = study_attrs(plan)

    def setup(study: optuna.Study) -> None:
        study.set_metric_names(list(plan.metric_names))
        catalog.write_record(study, attrs, before_kind=enqueue_base)

    def enqueue_base(study: optuna.Study) -> None:
        base = plan.space.base_params()
        if base is not None and not study.trials and not plan.budget.violations(
                plan.space.base, config.resolution,
                cost(plan.space.base, config.resolution, num_classes=plan.template.num_classes)):
            study.enqueue_trial(base, user_attrs={"enqueued": "base architecture"})

    study = create_or_join(config.study, storage, directions=list(plan.directions),
                           sampler=strategy.make(config.seed, config.trials), setup=setup)
    existing = catalog.require_kind(study, catalog.NAS, name=config.study).user_attrs
    if [d.name.lower() for d in study.directions] != list(plan.directions):
        raise UserError(f"study {config.study!r} was created with sampler {existing.get('sampler')!r} and "
                        f"objectives {','.join(study.metric_names or ())}, which differ from {strategy.name!r} with "
                        f"{','.join(plan.metric_names)}")
    for key in ("space", "resolution", "dataset", "rungs", "split", "epochs"):
        if existing.get(key, attrs[key] if key in ("rungs", "split", "epochs") else None) != attrs[key]:
            raise UserError(f"study {config.study!r} was created with another {key} ({existing.get(key)!r}); give "
                            "the same, or another --study name")
    changed = recipe_changes(json.loads(existing.get("config", "{}")), json.loads(attrs["config"]))
    if changed:
        raise UserError(f"study {config.study!r} was created with another training recipe ({', '.join(changed)}): "
                        "its trials would not compare; give the same settings, or another --study name")
    return study


HOW_NOT_WHAT = {"device", "compile", "cuda_graphs"}  # how a trial runs, not what it measures: may change on resume
COMPARED_APART = {"epochs", "val_fraction"}  # compared as the study's epochs (the last rung's) and split


def recipe_changes(created: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The training settings (``--epochs``, ``--lr``, …) in which ``now`` differs from the study's ``created``
    config, as "name old -> new"; a setting the study's version did not record is not compared (but for
    ``lr_batch``, which an older version's --lr implied)."""
    created = as_recorded_now(created) if "lr" in created else created
    if "lr" in created and "evaluator" in now:  # a study made before --evaluator trained its trials
        created = {"evaluator": "train", **created}
    return [f"{f.name} {created[f.name]!r} -> {now.get(f.name)!r}" for f in dataclasses.fields(TrainSettings)
            if f.name not in HOW_NOT_WHAT | COMPARED_APART and f.name in created and created[f.name] != now.get(f.name)]


def planner_for(plan: Plan, study: optuna.Study) -> TrialPlanner:
    return TrialPlanner(study=study, propose=space_proposer(plan.space, plan.config.resolution), budget=plan.budget,
                        template=plan.template, n_trials=plan.config.trials, target_macs=plan.target_macs,
                        objectives=plan.metric_names, latency_of=plan.latency_of)


def replica(config: StudyConfig, device: str) -> TrialPlanner:
    """The planner of a --workers process: the same study, its trials on ``device``."""
    if device:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, device=device))
    plan = plan_search(config)
    return planner_for(plan, open_study(plan, storage_for(config)))


def run_search(config: StudyConfig, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> optuna.Study:
    plan = plan_search(config)
    config = plan.config
    study = open_study(plan, storage_for(config))
    planner = planner_for(plan, study)
    complete = len(selection.measured(record.read_all(study.get_trials(deepcopy=False))))
    rungs = plan.template.rungs
    evaluator = config.train.evaluator
    budget = (f"successive halving over {','.join(map(str, rungs.epochs))} epochs (eta {rungs.eta:g})" if rungs
              else f"zero-cost {evaluator} score of each untrained network (no training)" if evaluator != "train"
              else f"{config.train.epochs} epoch(s) per trial")
    if plan.split.get("train_samples") is not None:
        budget += (f" on a stratified subset of {plan.split['train_samples']:,} of the {plan.split['train']:,} "
                   "training images")
    header = (f"study {config.study!r} in {mask_url(config.storage)}: {complete}/{config.trials} "
              f"complete; sampler {plan.strategy.name}, {config.executor} executor, {config.dataset} at "
              f"{input_size(config.resolution, dims=config.dims)}, {budget}")
    n = config.execution.workers
    workers = f", {n} worker processes" if n > 1 and config.executor == "local" else ""
    drive(config, planner, total=config.trials, header=header + workers, err=err,
          replicate=functools.partial(replica, config) if n > 1 else None)
    print_summary(study, target_macs=plan.target_macs, out=out)
    return study


def print_summary(study: optuna.Study, *, target_macs: float, out: TextIO) -> None:
    records = record.read_all(study.get_trials(deepcopy=False))
    front = selection.pareto_front(records)
    if not front:
        print("No complete trial yet.", file=out)
        return
    latency = any(r.latency_ms is not None for r in front)
    scored = next((r.evaluator for r in front if r.evaluator), None)  # a zero-cost study's evaluator
    quality = f"{scored} score" if scored else "accuracy"
    rows = [("trial", quality, "MACs", "params", *(() if scored else ("reward",)),
             *(("latency ms",) if latency else ()), "arch")]
    for r in front:
        rows.append((str(r.number), f"{r.accuracy:.6g}" if scored else f"{r.accuracy:.4f}", f"{r.macs:,}",
                     f"{r.params:,}",
                     *(() if scored else (f"{selection.mnas_reward(r.accuracy, r.macs, target_macs):.4f}",)),
                     *((f"{r.latency_ms:.3f}" if r.latency_ms is not None else "",) if latency else ()), r.arch))
    print(f"Pareto front: {len(front)} of {len(selection.measured(records))} complete trials ({quality} up, MACs "
          "down)", file=out)
    print("\n".join(text_table(rows, left=(5,))), file=out)
    best = catalog.chosen_baseline(study, target_macs=target_macs)
    print(f"\nBaseline: trial {best.number}, the highest MnasNet reward ACC x (MACs/T)^-0.07 at "
          f"T = {int(target_macs):,} MACs", file=out)
    size = best.resolution if best.dims in (None, 2) else input_size(best.resolution, dims=best.dims)
    print(f"  {quality} {best.accuracy:.6g}  MACs {best.macs:,}  params {best.params:,}  " if scored else
          f"  accuracy {best.accuracy:.4f}  MACs {best.macs:,}  params {best.params:,}  ", end="", file=out)
    print(f"resolution {size}", file=out)
    if scored:
        print(f"  (untrained networks ranked by {scored}: `effnas confirm` trains the front and states how well the "
              "score ranked them)", file=out)
    print(f"  {best.arch}", file=out)
