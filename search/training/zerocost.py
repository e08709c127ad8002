"""Zero-cost evaluators: a score of an untrained network from one batch, in place of its trained accuracy.

Each is the published measure, computed on the network as :func:`models.build` makes it (seeded init):

- ``synflow`` (Tanaka et al. 2020; as a NAS proxy Abdelfattah et al. 2021): every weight replaced by its absolute
  value, in float64, batch norm at its initial statistics (an identity), an all-ones input; the score is
  sum |theta * dR/dtheta| for R the sum of the outputs. Data-free; it grows with the parameters on a path.
- ``naswot`` (Mellor et al. 2021, "Neural Architecture Search without Training"): the binary code of each sample
  (which units of every activation's input are positive) over one batch; the score is log |det K| of the kernel
  K[i, j] = the units on which samples i and j agree. Networks that tell samples apart score higher.
- ``jacob_cov`` (Mellor et al., the first version of the same paper): the Jacobian of each sample's summed
  output with respect to its input, the correlation matrix of those Jacobians over one batch, and
  -sum(log(lambda + k) + 1 / (lambda + k)) over its eigenvalues, k = 1e-5.
- ``params`` and ``macs``: the analytic counts of :mod:`space.cost`, the baselines the literature says a
  zero-cost proxy must beat (Ning et al. 2021; Krishnakumar et al. 2022).

Every score is larger for a network expected to be better. The batch is drawn from the training split by a
seeded permutation (the study's seed: every trial sees the same images); batch norm runs on the batch's
statistics (train mode, under no optimizer). Scores are deterministic for a seed on one device.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from effnas.search.data.dataset import Dataset
from effnas.search.settings import EVALUATORS
from effnas.space.errors import SearchError

ZERO_COST = tuple(name for name in EVALUATORS if name != "train")
SCORE_BATCH = 64  # samples of the batch naswot and jacob_cov score on (Mellor et al. used 128 on CIFAR)
JACOB_K = 1e-5


def scoring_batch(data: Dataset, *, size: int, seed: int, device: torch.device) -> torch.Tensor:
    """``size`` normalised training samples chosen by a permutation seeded with ``seed`` (the same for every
    architecture of a study)."""
    count = min(size, len(data.train_y))
    index = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(seed))[:count]
    images = data.train_x[index.to(data.train_x.device)] if isinstance(data.train_x, torch.Tensor) else \
        data.train_x[index]
    return data.normalize(images.to(device))


def synflow(model: nn.Module, inputs: torch.Tensor) -> float:
    model = model.double().eval()  # batch norm at its initial statistics: an identity, as the paper removes it
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    model.zero_grad(set_to_none=True)
    model(ones).sum().backward()
    return float(sum((p.detach() * p.grad).abs().sum() for p in model.parameters() if p.grad is not None))


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    model.train()
    count = len(inputs)
    kernel = torch.zeros((count, count), dtype=torch.float64, device=inputs.device)

    def code(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        on = (args[0].detach().reshape(count, -1) > 0).double()
        kernel.add_(on @ on.T).add_((1 - on) @ (1 - on).T)

    hooks = [m.register_forward_pre_hook(code) for m in model.modules() if isinstance(m, (nn.SiLU, nn.ReLU))]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def jacob_cov(model: nn.Module, inputs: torch.Tensor) -> float:
    model.train()
    inputs = inputs.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(inputs).sum().backward()
    jacobians = inputs.grad.reshape(len(inputs), -1).double()
    correlation = torch.corrcoef(jacobians)
    if not torch.isfinite(correlation).all():  # a constant Jacobian row: the network maps the batch flat
        return -math.inf
    eigenvalues = torch.linalg.eigvalsh(correlation)
    return float(-torch.sum(torch.log(eigenvalues + JACOB_K) + 1.0 / (eigenvalues + JACOB_K)))


SCORERS: dict[str, Callable[[nn.Module, torch.Tensor], float]] = {"synflow": synflow, "naswot": naswot,
                                                                   "jacob_cov": jacob_cov}


def score(evaluator: str, model: nn.Module, data: Dataset, *, seed: int, device: torch.device,
          macs: int | None = None, params: int | None = None, batch_size: int = SCORE_BATCH) -> float:
    """``evaluator``'s score of the untrained ``model`` (params and macs: the analytic counts, given)."""
    if evaluator == "params":
        return float(params if params is not None else sum(p.numel() for p in model.parameters()))
    if evaluator == "macs":
        if macs is None:
            raise ValueError("the macs evaluator needs the network's MACs")
        return float(macs)
    if evaluator not in SCORERS:
        raise ValueError(f"unknown zero-cost evaluator {evaluator!r}")
    model = model.to(device)
    inputs = scoring_batch(data, size=1 if evaluator == "synflow" else batch_size, seed=seed, device=device)
    value = SCORERS[evaluator](model, inputs)
    if not math.isfinite(value):
        raise SearchError(f"{evaluator} score is {value} (the network maps its scoring batch to identical codes "
                          "or Jacobians)")
    return value
