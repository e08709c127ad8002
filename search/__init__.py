"""The engine that evaluates candidates.

- ``settings``: TrainSettings, declared once (study file key, CLI flag, record)
- ``trial``: Budget, TrialSpec, TrialPlanner — ask, cost, budget check, record
- ``worker``: run_trial and the dataset cache, what a local process or a Ray worker runs
- ``record``: the one trial-record schema that writers and readers use
- ``selection``: Pareto front, hypervolume, MnasNet reward, chosen baseline, best triple
- ``lifecycle``: heartbeats, dead workers, interrupts, requeues — the only code that touches Optuna internals
- ``data``, ``train``, ``samplers``, ``executors`` (local, ray)
"""
