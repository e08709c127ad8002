"""The NAS study: validate everything, open the storage, run the executor, choose the baseline."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from reports.pareto import pareto_mask
from search import samplers
from search.data import check_spec
from search.objective import (
    Budget,
    Candidate,
    TrialPlanner,
    TrialSpec,
    load_cached,
    space_proposer,
    worker_id,
)
from search.samplers import mnas_reward
from space import cost, presets
from space.searchspace import SearchSpace
from studies import __version__
from studies.config import DEFAULT_STORAGE, StudyConfig, space_options
from studies.errors import UserError
from studies.progress import Progress
from studies.storage import mask_url, open_storage, recover_dead_trials, release_own_trials
from studies.tables import text_table


@dataclass
class Plan:
    """A validated study, before any file is written."""

    config: StudyConfig
    space: SearchSpace
    template: TrialSpec
    budget: Budget
    target_macs: int
    strategy: samplers.Strategy
    split: dict


def plan_search(config: StudyConfig) -> Plan:
    """Check every input (base, space, dataset, budget) without writing anything."""
    strategy = samplers.get(config.sampler)
    base, _ = presets.resolve(config.base)
    overrides, per_stage = space_options(config.space)
    space = SearchSpace.around(base, overrides=overrides, stage_overrides=per_stage)
    data = driver_dataset(config)
    template = trial_template(config, data.num_classes)
    budget = Budget(max_macs=config.max_macs, max_params=config.max_params)
    smallest = cost(space.smallest(), config.resolution, num_classes=data.num_classes)
    problems = budget.violations(smallest)
    if problems:
        raise UserError(f"no architecture of the search space fits the budget: even the smallest has "
                        f"{'; '.join(problems)}")
    target = config.target_macs or cost(base, config.resolution, num_classes=data.num_classes).macs
    return Plan(config=config, space=space, template=template, budget=budget, target_macs=target,
                strategy=strategy, split=dict(data.split))


def trial_template(config: StudyConfig, num_classes: int) -> TrialSpec:
    """The training settings every trial of a study shares; the planner fills in arch, resolution, seed."""
    return TrialSpec(
        number=-1, arch="", dataset=config.dataset, resolution=config.resolution, num_classes=num_classes,
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
        label_smoothing=config.label_smoothing, dropout=config.dropout, drop_path=config.drop_path,
        split_seed=config.seed, seed=config.seed, device=config.device, val_fraction=config.val_fraction,
    )


def driver_dataset(config: StudyConfig) -> Any:
    """Load (and cache, for the local executor's trials) the dataset in the driver: validates it and
    counts its classes before anything is written."""
    check_executor(config)
    check_spec(config.dataset)
    return load_cached(trial_template(config, 0), _driver_device(config))


def check_executor(config: StudyConfig) -> None:
    """A Ray cluster named by --address must answer before anything is written."""
    if config.executor == "ray" and config.address:
        from search.ray_executor import check_reachable

        check_reachable(config.address)


def _driver_device(config: StudyConfig) -> Any:
    from search.train import pick_device

    if config.executor == "ray":
        import torch

        return torch.device("cpu")  # the driver only counts classes; workers load their own copy
    try:
        device = pick_device(config.device)
        if device.type == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise UserError(f"--device {config.device}: CUDA is not available on this machine")
        return device
    except RuntimeError as exc:
        raise UserError(f"--device {config.device}: {exc}") from None


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
    }


def open_study(plan: Plan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it to resume; refuse one made for another kind, space or strategy."""
    config, strategy = plan.config, plan.strategy
    sampler = strategy.make(config.seed, config.trials)
    directions = list(strategy.directions)
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
            raise UserError(f"study {config.study!r} was created with sampler {attrs.get('sampler')!r}, "
                            f"whose objectives differ from {strategy.name!r}'s")
        if attrs.get("space") != study_attrs(plan)["space"] or attrs.get("resolution") != config.resolution \
                or attrs.get("dataset") != config.dataset:
            raise UserError(f"study {config.study!r} was created with another search space, dataset or "
                            "resolution; use another --study name")
        return study
    study.set_metric_names(list(strategy.metric_names))
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
    storage = open_storage(config.storage, create_default_dir=config.storage == DEFAULT_STORAGE)
    study = open_study(plan, storage)
    recovered = recover_dead_trials(study)
    if recovered:
        print(f"effnas: requeued trial(s) {', '.join(map(str, recovered))} left running by a dead worker",
              file=err)
    planner = TrialPlanner(study=study, propose=space_proposer(plan.space, config.resolution), budget=plan.budget,
                           template=plan.template, n_trials=config.trials, target_macs=plan.target_macs,
                           objectives=plan.strategy.metric_names)
    header = (f"study {config.study!r} in {mask_url(config.storage)}: {len(_complete(study))}/{config.trials} "
              f"complete; sampler {plan.strategy.name}, {config.executor} executor, {config.dataset} at "
              f"{config.resolution}px, {config.epochs} epoch(s) per trial")
    drive(config, planner, study, total=config.trials, header=header, err=err)
    print_summary(study, target_macs=plan.target_macs, out=out)
    return study


def drive(config: StudyConfig, planner: TrialPlanner, study: optuna.Study, *, total: int, header: str,
          err: TextIO) -> None:
    """Run the configured executor with a progress bar; on Ctrl-C, wherever it lands, fail and requeue the
    trials this process holds."""
    print(f"effnas: {header}", file=err)
    progress = Progress(total=total, done=len(planner.complete_trials()), stream=err)

    def on_trial(candidate: Candidate, outcome: str) -> None:
        done = planner.complete_trials()
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        progress.update(done=len(done), failed=failed, best=_best(done))

    try:
        make_executor(config).run(planner, on_trial=on_trial, recover=lambda: recover_dead_trials(study))
    except KeyboardInterrupt:
        release_own_trials(study, worker=worker_id(), reason="interrupted")
        raise
    finally:
        progress.close()


def make_executor(config: StudyConfig):
    if config.executor == "ray":
        from search.ray_executor import RayExecutor

        return RayExecutor(address=config.address, gpus_per_trial=config.gpus_per_trial,
                           cpus_per_trial=config.cpus_per_trial, max_concurrent=config.max_concurrent,
                           max_failures=config.max_failures)
    from search.executors import LocalExecutor

    return LocalExecutor(max_failures=config.max_failures)


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _best(trials: list[FrozenTrial]) -> tuple[float, float] | None:
    if not trials:
        return None
    best = max(trials, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["macs"]))
    return best.user_attrs["accuracy"], best.user_attrs["macs"]


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    trials = _complete(study)
    mask = pareto_mask([t.user_attrs["accuracy"] for t in trials], [t.user_attrs["macs"] for t in trials])
    front = [t for t, keep in zip(trials, mask) if keep]
    return sorted(front, key=lambda t: t.user_attrs["macs"])


def choose_baseline(study: optuna.Study, *, target_macs: float | None = None) -> FrozenTrial:
    """The Pareto trial with the highest MnasNet reward at the target MACs."""
    front = pareto_trials(study)
    if not front:
        raise UserError(f"study {study.study_name!r} has no complete trial")
    target = target_macs or study.user_attrs.get("target_macs")
    return max(front, key=lambda t: (mnas_reward(t.user_attrs["accuracy"], t.user_attrs["macs"], target),
                                     -t.number))


def print_summary(study: optuna.Study, *, target_macs: float, out: TextIO) -> None:
    front = pareto_trials(study)
    if not front:
        print("No complete trial yet.", file=out)
        return
    rows = [("trial", "accuracy", "MACs", "params", "reward", "arch")]
    for t in front:
        a = t.user_attrs
        rows.append((str(t.number), f"{a['accuracy']:.4f}", f"{a['macs']:,}", f"{a['params']:,}",
                     f"{mnas_reward(a['accuracy'], a['macs'], target_macs):.4f}", a["arch"]))
    print(f"Pareto front: {len(front)} of {len(_complete(study))} complete trials (accuracy up, MACs down)", file=out)
    print("\n".join(text_table(rows, left=(5,))), file=out)
    best = choose_baseline(study, target_macs=target_macs)
    a = best.user_attrs
    print(f"\nBaseline: trial {best.number}, the highest MnasNet reward ACC x (MACs/T)^-0.07 at "
          f"T = {int(target_macs):,} MACs", file=out)
    print(f"  accuracy {a['accuracy']:.4f}  MACs {a['macs']:,}  params {a['params']:,}  "
          f"resolution {a['resolution']}", file=out)
    print(f"  {a['arch']}", file=out)
