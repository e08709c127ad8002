"""A candidate that cannot fit its device is never attempted: the analytic cost bounds a training step's memory,
an over-large candidate is recorded infeasible, and a study whose smallest candidate cannot fit is refused."""
from __future__ import annotations

import torch

from effnas.models import build
from effnas.search.trial import Budget, training_memory
from effnas.space.arch import ArchSpec
from effnas.space.cost import activations, cost
from tests.clirun import assert_user_error, effnas

TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r2_k3_s2_e3_c16 head_c32"


def test_activations_count_what_the_forward_pass_produces():
    """Every conv, batch norm and activation output of a small network, counted by hooks, against the formula."""
    arch = ArchSpec.parse(TINY)
    model = build(arch, num_classes=10)
    produced = []

    def hook(module, inputs, output):
        produced.append(output.numel())

    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.SiLU, torch.nn.ReLU)
    for module in model.modules():
        if isinstance(module, kinds) and not _in_squeeze_excite(model, module):
            module.register_forward_hook(hook)
    model(torch.zeros(1, 3, 32, 32))
    assert activations(arch, 32) == sum(produced)


def _in_squeeze_excite(model, target) -> bool:
    return any(target in list(m.modules()) for m in model.modules() if type(m).__name__ == "SqueezeExcite")


def test_the_budget_refuses_what_cannot_fit():
    arch = ArchSpec.parse(TINY)
    c = cost(arch, 32, num_classes=10)
    need = training_memory(arch, 32, c, batch_size=64)
    assert need == 16 * c.params + 4 * 64 * activations(arch, 32)
    assert Budget(memory=need, batch_size=64).violations(arch, 32, c) == []
    (problem,) = Budget(memory=need - 1, batch_size=64).violations(arch, 32, c)
    assert "training needs" in problem and "GiB" in problem


def test_a_study_whose_smallest_candidate_cannot_fit_is_refused(tmp_path):
    huge = "stem_c64 ir_r4_k3_s1_e6_c4096 head_c4096"
    result = effnas("search", "--base", huge, "--resolution", "64", "--batch-size", "1000000", "--trials", "1",
                    "--storage", f"sqlite:///{tmp_path}/m.db", cwd=tmp_path)
    assert_user_error(result, "training needs")
    assert list(tmp_path.iterdir()) == []


def test_a_fixed_list_that_cannot_fit_is_refused_before_training(tmp_path):
    """A scaling grid must train every triple, so one that cannot fit stops the command, not a loop of skips."""
    result = effnas("scale", "--baseline", TINY, "--resolution", "64", "--batch-size", "100000000", "--dataset",
                    "digits", "--step", "0.25", "--storage", f"sqlite:///{tmp_path}/m.db", cwd=tmp_path)
    assert_user_error(result, "training needs")
    assert list(tmp_path.iterdir()) == []
