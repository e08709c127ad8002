"""Every example of README's scaling section runs as written, in README's order, in one folder.

README's earlier `effnas search` (the default NAS study, ~2 minutes) is stood in for by a small NAS study of
the same name in the same runs/effnas.db, so `effnas scale`'s default baseline ("best") has a study to read.
"""
from __future__ import annotations

import json
import re
import shlex
import time

import optuna
import pytest

from tests.clirun import ROOT, effnas

pytestmark = pytest.mark.slow
TINY = "stem_c8 ds_r1_k3_s1_c8_se0.25 ir_r2_k3_s2_e3_c16 head_c32"


def scaling_examples() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Compound scaling", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("effnas ")]


def test_readme_scaling_examples_in_order(tmp_path):
    search = effnas("search", "--trials", "4", "--resolution", "8", "--base", TINY, cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    examples = scaling_examples()
    assert [e[0] for e in examples] == ["scale", "scale", "scale", "scale", "family", "family"]
    for args in examples:
        start = time.monotonic()
        result = effnas(*args, cwd=tmp_path, timeout=900)
        print(f"{time.monotonic() - start:6.1f} s  effnas {' '.join(args)}")
        assert result.returncode == 0, (args, result.stderr[-2000:])
        if args[0] == "scale" and "--dry-run" not in args:
            assert re.search(r"effnas: scale: \d+ triples", result.stderr), result.stderr
    url = f"sqlite:///{tmp_path}/runs/effnas.db"
    names = set(optuna.get_all_study_names(url))
    assert {"effnas", "effnas-scaling", "effnas-family", "tiny-scaling"} <= names
    grid = optuna.load_study(study_name="effnas-scaling", storage=url)
    replicates = [t.params["replicate"] for t in grid.trials if t.state.name == "COMPLETE"]
    assert replicates.count(0) == 15 and replicates.count(1) == replicates.count(2) == 3  # --seeds 3, --top 3
    family = json.loads(effnas("family", "--from-study", "effnas", "--train", "--json", cwd=tmp_path).stdout)
    assert [r["phi"] for r in family] == [0, 1, 2, 3] and all(r["accuracy"] is not None for r in family)
