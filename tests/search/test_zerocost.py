"""Zero-cost evaluators on tiny networks: deterministic for a seed, finite, and larger where the literature says."""
from __future__ import annotations

import math

import pytest
import torch

from effnas.models import build
from effnas.search.data import kinds
from effnas.search.training import zerocost
from effnas.space import presets
from effnas.space.cost import cost

NARROW = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
WIDE = "stem_c16 ds_r1_k3_s1_c16 ir_r1_k3_s2_e6_c32 head_c64"
DEEP = "stem_c16 ds_r1_k3_s1_c16 ir_r3_k3_s2_e6_c32 ir_r2_k3_s2_e6_c48 head_c64"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return kinds.load_dataset("digits", resolution=16, seed=0)


def scored(evaluator: str, arch: str, data, *, init: int = 0, seed: int = 0) -> float:
    torch.manual_seed(init)
    network = presets.network(arch)
    c = cost(network, 16, num_classes=10)
    return zerocost.score(evaluator, build(network, num_classes=10), data, seed=seed, device=CPU, macs=c.macs,
                          params=c.params)


@pytest.mark.parametrize("evaluator", zerocost.ZERO_COST)
def test_deterministic_for_a_seed_and_finite(digits, evaluator):
    first, again = scored(evaluator, WIDE, digits), scored(evaluator, WIDE, digits)
    assert first == again and math.isfinite(first)


@pytest.mark.parametrize("evaluator", ["naswot", "jacob_cov"])
def test_the_batch_is_the_seeds(digits, evaluator):
    assert scored(evaluator, WIDE, digits, seed=0) != scored(evaluator, WIDE, digits, seed=1)
    one = zerocost.scoring_batch(digits, size=8, seed=0, device=CPU)
    assert torch.equal(one, zerocost.scoring_batch(digits, size=8, seed=0, device=CPU)) and one.shape[0] == 8


def test_synflow_grows_with_the_parameters_on_a_path(digits):
    # Tanaka et al.: synflow is the l1 path norm of |theta|, so an untrained network with more parameters on its
    # paths (wider, deeper) scores higher, for any init seed
    for init in (0, 1, 2):
        narrow, wide, deep = (scored("synflow", a, digits, init=init) for a in (NARROW, WIDE, DEEP))
        assert narrow < wide < deep


def test_naswot_tells_more_samples_apart_with_more_units(digits):
    # Mellor et al.: log|K_H| grows as the activation codes separate the batch; a network with more units
    # (a wider and deeper one) separates it better
    for init in (0, 1):
        assert scored("naswot", NARROW, digits, init=init) < scored("naswot", DEEP, digits, init=init)


def test_params_and_macs_are_the_analytic_counts(digits):
    c = cost(presets.network(WIDE), 16, num_classes=10)
    assert scored("params", WIDE, digits) == c.params and scored("macs", WIDE, digits) == c.macs
    assert c.params == sum(p.numel() for p in build(presets.network(WIDE), num_classes=10).parameters())


def test_a_score_of_a_flat_network_is_an_error(digits):
    from effnas.space.errors import SearchError

    torch.manual_seed(0)
    model = build(presets.network(NARROW), num_classes=10)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    with pytest.raises(SearchError, match="jacob_cov score"):
        zerocost.score("jacob_cov", model, digits, seed=0, device=CPU)
