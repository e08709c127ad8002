"""The NAS study: check everything, open the storage, run the executor, print the front and the baseline."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import optuna

from search import record, samplers, selection
from search.record import TrialRecord
from search.trial import Budget, LatencyOf, TrialPlanner, TrialTemplate, space_proposer
from space import presets
from space.cost import cost
from space.errors import UserError
from space.searchspace import SearchSpace
from studies import __version__
from studies.config import StudyConfig, space_options
from studies.runner import check_data, drive, driver_device, storage_for, template
from studies.storage import mask_url
from studies.tables import text_table


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
    """Check every input (base, space, dataset, budget) without writing anything."""
    strategy = samplers.get(config.sampler)
    base = presets.efficientnet(config.base, role="the search space's base (--base)")
    overrides, per_stage = space_options(config.space)
    space = SearchSpace.around(base, overrides=overrides, stage_overrides=per_stage)
    data = check_data(config)
    budget = Budget(max_macs=config.max_macs, max_params=config.max_params)
    smallest = cost(space.smallest(), config.resolution, num_classes=data.num_classes)
    problems = budget.violations(smallest)
    if problems:
        raise UserError(f"no architecture of the search space fits the budget: even the smallest has "
                        f"{'; '.join(problems)}")
    target = config.target_macs or cost(base, config.resolution, num_classes=data.num_classes).macs
    names, directions, latency_of = objectives(config, strategy)
    return Plan(config=config, space=space, template=template(config, data.num_classes), budget=budget,
                target_macs=target, strategy=strategy, split=data.split, metric_names=names, directions=directions,
                latency_of=latency_of)


DIRECTIONS = {"accuracy": "maximize", "macs": "minimize", "latency_ms": "minimize"}
LATENCY_SETUP = {"batch": 1, "warmup": 10, "runs": 50}


def objectives(config: StudyConfig, strategy: samplers.Strategy) -> tuple[tuple[str, ...], tuple[str, ...],
                                                                           LatencyOf | None]:
    """(metric names, directions, the latency measurement if latency_ms is one): the sampler's, or for a Pareto
    sampler accuracy, MACs and optionally measured latency."""
    names = tuple(config.objectives)
    if names not in (("accuracy", "macs"), ("accuracy", "macs", "latency_ms")):
        raise UserError(f"--objectives {','.join(names)}: expected accuracy,macs or accuracy,macs,latency_ms")
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

            from models import build
            from search.bench import measure_latency

            with torch.random.fork_rng(devices=[]):  # building must not move the trials' random streams
                model = build(arch, num_classes=num_classes, dropout=0.0, drop_path=0.0)
                return measure_latency(model, resolution=resolution, device=device, **LATENCY_SETUP).median_ms
    return names, tuple(DIRECTIONS[n] for n in names), latency_of


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
        "seed": plan.config.seed,
        "split": json.dumps(plan.split, sort_keys=True),
        **({"latency": json.dumps({**LATENCY_SETUP, "device": str(driver_device(plan.config)), "dtype": "float32 "
                                   "on CPU, bfloat16 on CUDA", "memory_format": "channels_last"}, sort_keys=True)}
           if plan.latency_of else {}),
    }


def open_study(plan: Plan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it to resume; refuse one made for another kind, space or strategy."""
    config, strategy = plan.config, plan.strategy
    sampler = strategy.make(config.seed, config.trials)
    directions = list(plan.directions)
    try:
        study = optuna.load_study(study_name=config.study, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(study_name=config.study, storage=storage, sampler=sampler,
                                    directions=directions, load_if_exists=True)
    attrs = study.user_attrs
    if "kind" in attrs:
        if attrs["kind"] != "nas":
            raise UserError(f"study {config.study!r} is a {attrs['kind']} study, not a NAS study")
        if [d.name.lower() for d in study.directions] != directions:
            raise UserError(f"study {config.study!r} was created with sampler {attrs.get('sampler')!r} and "
                            f"objectives {','.join(study.metric_names or ())}, which differ from "
                            f"{strategy.name!r} with {','.join(plan.metric_names)}")
        if attrs.get("space") != study_attrs(plan)["space"] or attrs.get("resolution") != config.resolution \
                or attrs.get("dataset") != config.dataset:
            raise UserError(f"study {config.study!r} was created with another search space, dataset or "
                            "resolution; use another --study name")
        return study
    study.set_metric_names(list(plan.metric_names))
    attrs = study_attrs(plan)
    for key, value in attrs.items():
        if key != "kind":
            study.set_user_attr(key, value)
    base = plan.space.base_params()
    if base is not None and not study.trials and not plan.budget.violations(
            cost(plan.space.base, config.resolution, num_classes=plan.template.num_classes)):
        study.enqueue_trial(base, user_attrs={"enqueued": "base architecture"})
    study.set_user_attr("kind", attrs["kind"])  # last: a concurrent worker sees a complete record or none
    return study


def run_search(config: StudyConfig, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> optuna.Study:
    plan = plan_search(config)
    study = open_study(plan, storage_for(config))
    planner = TrialPlanner(study=study, propose=space_proposer(plan.space, config.resolution), budget=plan.budget,
                           template=plan.template, n_trials=config.trials, target_macs=plan.target_macs,
                           objectives=plan.metric_names, latency_of=plan.latency_of)
    complete = len(selection.measured(record.read_all(study.get_trials(deepcopy=False))))
    header = (f"study {config.study!r} in {mask_url(config.storage)}: {complete}/{config.trials} "
              f"complete; sampler {plan.strategy.name}, {config.executor} executor, {config.dataset} at "
              f"{config.resolution}px, {config.train.epochs} epoch(s) per trial")
    drive(config, planner, total=config.trials, header=header, err=err)
    print_summary(study, target_macs=plan.target_macs, out=out)
    return study


def chosen_baseline(study: optuna.Study, *, target_macs: float | None = None) -> TrialRecord:
    """The NAS study's chosen baseline (see :func:`search.selection.choose_baseline`)."""
    target = target_macs or study.user_attrs.get("target_macs")
    best = selection.choose_baseline(record.read_all(study.get_trials(deepcopy=False)), target_macs=target)
    if best is None:
        raise UserError(f"study {study.study_name!r} has no complete trial")
    return best


def print_summary(study: optuna.Study, *, target_macs: float, out: TextIO) -> None:
    records = record.read_all(study.get_trials(deepcopy=False))
    front = selection.pareto_front(records)
    if not front:
        print("No complete trial yet.", file=out)
        return
    latency = any(r.latency_ms is not None for r in front)
    rows = [("trial", "accuracy", "MACs", "params", "reward", *(("latency ms",) if latency else ()), "arch")]
    for r in front:
        rows.append((str(r.number), f"{r.accuracy:.4f}", f"{r.macs:,}", f"{r.params:,}",
                     f"{selection.mnas_reward(r.accuracy, r.macs, target_macs):.4f}",
                     *((f"{r.latency_ms:.3f}" if r.latency_ms is not None else "",) if latency else ()), r.arch))
    print(f"Pareto front: {len(front)} of {len(selection.measured(records))} complete trials (accuracy up, MACs "
          "down)", file=out)
    print("\n".join(text_table(rows, left=(5,))), file=out)
    best = chosen_baseline(study, target_macs=target_macs)
    print(f"\nBaseline: trial {best.number}, the highest MnasNet reward ACC x (MACs/T)^-0.07 at "
          f"T = {int(target_macs):,} MACs", file=out)
    print(f"  accuracy {best.accuracy:.4f}  MACs {best.macs:,}  params {best.params:,}  "
          f"resolution {best.resolution}", file=out)
    print(f"  {best.arch}", file=out)
