"""A small real NAS study, made once for the report tests."""
from __future__ import annotations

import pytest

from tests.clirun import effnas

TINY_BASE = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 ir_r1_k3_s2_e3_c24 head_c32"
EVIL = "x<script>alert(1)</script>/y"


@pytest.fixture(scope="session")
def nas_storage(tmp_path_factory):
    """Two studies in one SQLite file: a plain one (with an infeasible sample) and one with a hostile name."""
    root = tmp_path_factory.mktemp("nas")
    url = f"sqlite:///{root}/s.db"
    common = ["--storage", url, "--dataset", "digits", "--epochs", "1", "--resolution", "12", "--base", TINY_BASE]
    for name, extra in (("small", ["--trials", "4", "--max-macs", "150000", "--sampler", "random", "--seed", "3"]),
                        (EVIL, ["--trials", "2"])):
        result = effnas("search", "--study", name, *common, *extra)
        assert result.returncode == 0, result.stderr
    return url
