"""The data pipeline: datasets by kind and what feeds their samples to a training. No Optuna here.

- ``kinds``: the registry of dataset kinds (digits, cifar10, folder, fashion-mnist, idx, shapes3d, volumes) and
  the functions that check, count and load a dataset spec
- ``dataset``: Dataset (the train/validation split in memory or memory-mapped), Rows, the seeded split, the
  stratified training subset (``--train-samples``), placement on a device
- ``digits``, ``cifar10``, ``images`` (folder datasets), ``idx`` (MNIST's IDX format: Fashion-MNIST, MNIST, ...),
  ``shapes3d``, ``volumes``: each kind's readers
- ``folders``: the one-sub-folder-per-class layout; ``imagecache``: a folder (or an IDX set) decoded once into a
  memory map
- ``readahead``: batches of a host-kept set gathered by reader threads; ``augment``: crops and flips on the device
"""
