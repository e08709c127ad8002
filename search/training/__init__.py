"""The training engine: everything that trains, evaluates or loads a torch network for search/. No Optuna here.

- ``optim``: AdamW and the warm-up + cosine schedule
- ``loop``: one epoch, evaluation, batch-norm recalibration, a NAS trial's train_and_evaluate
- ``run``: a full training run (``effnas train``): epochs, EMA, checkpoints, resumption, final evaluation
- ``checkpoint``: a run's folder, its config, metrics and checkpoints (the one home of their layout)
- ``inference``: a trained network loaded for predict, export and bench
- ``distributed``: DistributedDataParallel ranks under torch's launcher
- ``latency``: measured latency of a network on a device
- ``zerocost``: zero-cost evaluators (synflow, naswot, jacob_cov, params, macs) of an untrained network
"""
