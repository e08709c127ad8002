"""The engine that evaluates candidates. The trial engine sits at the top (no torch here but ``worker``); the
data pipeline, the training engine and the shared helpers have their own sub-packages.

- ``settings``: TrainSettings, ExecutorSettings and RunSettings, declared once (study file key, CLI flag, record)
- ``trial``: Budget, TrialSpec, TrialPlanner — ask, cost, budget check, record
- ``worker``: run_trial and the dataset cache, what a local process or a Ray worker runs: the one module that
  joins the trial engine and torch
- ``record``: the one trial-record schema that writers and readers use
- ``selection``: Pareto front, hypervolume, MnasNet reward, chosen baseline, best triple
- ``lifecycle``: heartbeats, dead workers, interrupts, requeues — the only code that touches Optuna internals
- ``halving``: multi-objective successive halving (rungs, promotion)
- ``samplers``: the registry of search strategies (stock Optuna samplers); ``seeding``: each seeded afresh per trial
- ``confirmation``: a confirm study read back; ``catalog``: study names (NAME-scaling, -family, -confirm), lookup
  by kind and ``--trial N|baseline`` resolution
- ``executors``: where trials run (the registry: local, ray)
- ``data/``: datasets by kind, the image cache, read-ahead, augmentation — no Optuna
- ``training/``: optimizer, schedule, epoch loop, full runs, checkpoints, inference, DDP, latency — no Optuna
- ``utils/``: atomic files, processes, signals, memory, devices
"""
