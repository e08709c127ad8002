"""The genome knows its dimensionality and input channels: grammar, scaling and the 3-D constraint."""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from effnas.space import presets
from effnas.space.arch import ArchSpec
from effnas.space.compound import Triple, compound_grid, constraint, family, member, scale
from effnas.space.cost import cost
from effnas.space.errors import UserError
from effnas.space.searchspace import SearchSpace
from tests.archgen import random_arch

B0 = presets.get("efficientnet-b0").arch()
B0_3D = replace(B0, dims=3, in_channels=1)


@pytest.mark.parametrize("seed", range(3))
def test_3d_archs_round_trip(seed):
    rng = random.Random(seed)
    for _ in range(50):
        arch = random_arch(rng, dims=3)
        text = str(arch)
        assert text.startswith("3d ") and ArchSpec.parse(text) == arch


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_2d_rgb_strings_have_no_new_tokens(name):
    arch = presets.get(name).arch()
    assert (arch.dims, arch.in_channels) == (2, 3)
    assert not any(token in str(arch).split() for token in ("2d", "3d")) and "in_c" not in str(arch)


def test_tokens_parse_anywhere_and_print_first():
    arch = ArchSpec.parse("stem_c8 ir_r1_k3_s2_e6_c16 in_c1 head_c32 3d")
    assert (arch.dims, arch.in_channels, arch.stem, arch.head) == (3, 1, 8, 32)
    assert str(arch) == "3d in_c1 stem_c8 ir_r1_k3_s2_e6_c16 head_c32"
    assert ArchSpec.parse("2d in_c3 ir_r1_k3_s2_e6_c16") == ArchSpec.parse("ir_r1_k3_s2_e6_c16")
    assert str(ArchSpec.parse("in_c1 ir_r1_k3_s2_e6_c16")) == "in_c1 stem_c32 ir_r1_k3_s2_e6_c16 head_c1280"


@pytest.mark.parametrize("text, message", [
    ("4d ir_r1_k3_s1_e6_c16", "dims must be 2 .* or 3"),
    ("1d ir_r1_k3_s1_e6_c16", "dims must be 2 .* or 3"),
    ("3d 3d ir_r1_k3_s1_e6_c16", "given twice"),
    ("2d 3d ir_r1_k3_s1_e6_c16", "given twice"),
    ("in_c0 ir_r1_k3_s1_e6_c16", "input channels"),
    ("in_cx ir_r1_k3_s1_e6_c16", "integer"),
    ("in_c1 in_c2 ir_r1_k3_s1_e6_c16", "given twice"),
    ("3d", "at least one stage"),
])
def test_bad_tokens(text, message):
    with pytest.raises(UserError, match=message):
        ArchSpec.parse(text)


@pytest.mark.parametrize("dims", [0, 4, 2.5, True, "3"])
def test_dims_are_checked(dims):
    with pytest.raises(UserError, match="dims must be 2"):
        ArchSpec(stages=B0.stages, dims=dims)


def test_scaling_keeps_dims_and_channels():
    b2 = scale(B0_3D, width=1.1, depth=1.2)
    assert (b2.dims, b2.in_channels) == (3, 1)
    assert replace(b2, dims=2, in_channels=3) == presets.get("efficientnet-b2").arch()


def test_search_space_points_keep_dims_and_channels():
    space = SearchSpace.around(B0_3D)
    assert space.arch(space.base_params()) == B0_3D
    assert (space.smallest().dims, space.smallest().in_channels) == (3, 1)


def test_3d_grid_holds_only_triples_within_tolerance_of_its_constraint():
    grid = compound_grid(step=0.05, tolerance=0.1, max_coef=2.0, dims=3)
    assert grid and all(t.dims == 3 for t in grid)
    assert all(abs(t.alpha * t.beta**2 * t.gamma**3 - 2) <= 0.1 + 1e-9 for t in grid)
    # the paper's 2-D triple is 2.21 under gamma^3: out; the grid differs from the 2-D one
    assert Triple(1.2, 1.1, 1.15, dims=3) not in grid and Triple(1.2, 1.1, 1.15) in compound_grid()
    flat = {(t.alpha, t.beta, t.gamma) for t in compound_grid()}
    assert {(t.alpha, t.beta, t.gamma) for t in grid} != flat
    assert constraint(3) == "alpha*beta^2*gamma^3" and constraint(2) == "alpha*beta^2*gamma^2"


def test_3d_nominal_ratio_is_the_cube_law_and_real_macs_follow_it():
    triple = Triple(1.2, 1.1, 1.1, dims=3)
    assert triple.nominal == pytest.approx(1.2 * 1.21 * 1.331)
    members = family(B0_3D, resolution=64, triple=triple, phis=[0, 1, 2], multiple=8, num_classes=2)
    assert members[0].macs_ratio == 1.0 and members[0].macs == cost(B0_3D, 64, num_classes=2).macs
    assert members[1].nominal_ratio == pytest.approx(triple.nominal)
    assert members[1].resolution == 72  # 64 * 1.1 = 70.4 -> nearest multiple of 8
    assert all((m.arch.dims, m.arch.in_channels) == (3, 1) for m in members)
    assert members[0].macs < members[1].macs < members[2].macs


def test_a_triple_scales_only_networks_of_its_dimensionality():
    with pytest.raises(UserError, match="gamma\\^2 cannot scale a 3-D"):
        member(B0_3D, resolution=64, triple=Triple(1.2, 1.1, 1.15), phi=1)
