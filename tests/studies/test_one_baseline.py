"""The chosen baseline is one decision: the summary `effnas search` prints, the star on the report page
and the baseline `effnas scale` starts from all come from search.selection.choose_baseline."""
from __future__ import annotations

import io
import json
import re

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from effnas.reports.html import study_page
from effnas.studies.config import load_config
from effnas.studies.nas import print_summary
from effnas.studies.scaling import resolve_baseline

ARCH = "stem_c8 ir_r1_k3_s2_e3_c{c} head_c32"
TARGET = 1000


def add(study: optuna.Study, *, accuracy: float, macs: int, channels: int) -> int:
    trial = create_trial(
        state=TrialState.COMPLETE, values=[accuracy, float(macs)], params={"x": float(channels)},
        distributions={"x": FloatDistribution(0, 1000)},
        user_attrs={"arch": ARCH.format(c=channels), "accuracy": accuracy, "macs": macs, "params": 10 * macs,
                    "resolution": 16, "num_classes": 10})
    study.add_trial(trial)
    return len(study.trials) - 1


def three_choices(study: optuna.Study, url: str) -> tuple[int, int, int]:
    out = io.StringIO()
    print_summary(study, target_macs=TARGET, out=out)
    printed = int(re.search(r"Baseline: trial (\d+)", out.getvalue()).group(1))
    page = study_page(study)
    start = page.index('"pareto",', page.index("Plotly.newPlot(")) + len('"pareto",')
    traces, _ = json.JSONDecoder().raw_decode(page[start:].lstrip())
    star = next(t for t in traces if t.get("name") == "chosen baseline")
    starred = int(re.search(r"trial (\d+)", star["customdata"][0]).group(1))
    config = load_config(overrides={"storage": url, "study": study.study_name}, command="scale")
    label = resolve_baseline("best", config=config).label
    scaled = int(label.rpartition(" ")[2])
    return printed, starred, scaled


def test_summary_report_and_scale_agree_as_the_front_changes(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="one", storage=url, directions=["maximize", "minimize"])
    study.set_user_attr("kind", "nas")
    study.set_user_attr("target_macs", TARGET)
    add(study, accuracy=0.70, macs=500, channels=8)
    second = add(study, accuracy=0.80, macs=1000, channels=16)
    add(study, accuracy=0.60, macs=2000, channels=24)  # dominated
    assert three_choices(study, url) == (second,) * 3
    # more accurate, but four times the target: its reward 0.82 * 4^-0.07 = 0.747 < 0.80
    add(study, accuracy=0.82, macs=4000, channels=32)
    assert three_choices(study, url) == (second,) * 3
    # a new trial dominates the old choice: every view moves to it together
    better = add(study, accuracy=0.85, macs=900, channels=40)
    assert three_choices(study, url) == (better,) * 3
