from __future__ import annotations

import pytest

from effnas.space import presets
from effnas.space.compound import Triple, compound_grid, family, member, scale_resolution
from effnas.space.errors import UserError

B0 = presets.get("efficientnet-b0").arch()


def test_grid_holds_the_papers_triple_and_only_triples_within_tolerance():
    grid = compound_grid(step=0.05, tolerance=0.1, max_coef=2.0)
    assert Triple(1.2, 1.1, 1.15) in grid
    assert all(abs(t.nominal - 2) <= 0.1 + 1e-9 for t in grid)
    assert all(1 <= v <= 2.0 for t in grid for v in (t.alpha, t.beta, t.gamma))
    assert len(grid) == len(set(grid)) > 50


def test_phi_one_is_b2_at_256():
    m = member(B0, resolution=224, triple=Triple(1.2, 1.1, 1.15), phi=1)
    assert (m.width, m.depth, m.resolution) == (1.1, 1.2, 256)
    assert m.arch == presets.get("efficientnet-b2").arch()
    assert m.nominal_ratio == pytest.approx(1.92027)
    assert m.macs_ratio == pytest.approx(859_853_760 / 385_814_752)


def test_family_grows():
    members = family(B0, resolution=224, triple=Triple(1.2, 1.1, 1.15), phis=[0, 1, 2, 3])
    assert members[0].arch == B0 and members[0].macs_ratio == 1.0
    assert [m.macs for m in members] == sorted(m.macs for m in members)
    assert len({m.macs for m in members}) == 4


def test_scale_resolution_nearest_multiple():
    assert scale_resolution(224, 1.15, 1) == 256
    assert scale_resolution(224, 1.15, 1, multiple=1) == 258
    assert scale_resolution(16, 1.0, 1, multiple=32) == 32


@pytest.mark.parametrize("kwargs, message", [
    ({"step": 0}, "step"), ({"step": -0.1}, "step"), ({"tolerance": -1}, "tolerance"), ({"max_coef": 0.5}, "max-coef"),
])
def test_bad_grid(kwargs, message):
    with pytest.raises(UserError, match=message):
        compound_grid(**kwargs)


def test_coefficients_below_one():
    with pytest.raises(UserError, match="alpha"):
        member(B0, resolution=224, triple=Triple(0.9, 1.1, 1.1), phi=1)
