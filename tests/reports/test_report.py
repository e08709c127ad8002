from __future__ import annotations

import json
import re
import shutil
import subprocess

import optuna
import pandas as pd
import pytest

from effnas.reports.frames import study_records
from effnas.reports.html import safe_name
from effnas.reports.info import front_info
from tests.clirun import assert_user_error, effnas
from tests.reports.conftest import EVIL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_front_info_numbers(nas_storage):
    study = optuna.load_study(study_name="small", storage=nas_storage)
    info = front_info(study_records(study), target_macs=study.user_attrs["target_macs"])
    assert len(info.numbers) == 4
    assert info.baseline in info.front_numbers
    assert all(m > 150000 for m in info.infeasible_macs)
    assert info.hypervolume == sorted(info.hypervolume) and info.hypervolume[-1] > 0


@pytest.fixture(scope="module")
def report_dir(nas_storage, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = effnas("report", "--storage", nas_storage, "--out", str(out), "--export", str(out / "trials.csv"))
    assert result.returncode == 0, result.stderr
    return out


def test_report_writes_index_pages_and_export(report_dir):
    names = sorted(p.name for p in report_dir.iterdir())
    assert "index.html" in names and "plotly.min.js" in names and "trials.csv" in names
    assert safe_name("small") in names and safe_name(EVIL) in names
    table = pd.read_csv(report_dir / "trials.csv")
    assert set(table["study"]) == {"small", EVIL} and {"arch", "accuracy", "macs"} <= set(table.columns)


def test_safe_names():
    assert "/" not in safe_name(EVIL) and "<" not in safe_name(EVIL)
    assert safe_name("a/b") != safe_name("a-b")


def test_pages_reference_no_network_address_and_escape_names(report_dir):
    for page in report_dir.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), page.name
        assert "<script>alert(1)</script>" not in text
    evil = (report_dir / safe_name(EVIL)).read_text()
    assert "x&lt;script&gt;alert(1)&lt;/script&gt;/y" in evil


def test_parquet_export(nas_storage, tmp_path):
    result = effnas("report", "--storage", nas_storage, "--study", "small", "--out", str(tmp_path / "r"),
                    "--export", str(tmp_path / "t.parquet"))
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(tmp_path / "t.parquet")) >= 4


@pytest.mark.parametrize("args, fragment", [
    (["--study", "nope"], "no study 'nope'"),
    (["--export", "t.xlsx"], ".csv or .parquet"),
])
def test_report_bad_input(nas_storage, tmp_path, args, fragment):
    result = effnas("report", "--storage", nas_storage, "--out", str(tmp_path / "r"), *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "r").exists()


def test_report_missing_storage(tmp_path):
    result = effnas("report", "--storage", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path / "r"),
                    cwd=tmp_path)
    assert_user_error(result, "does not exist")
    assert list(tmp_path.iterdir()) == []


def render(path, *extra) -> str:
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--virtual-time-budget=10000", *extra, "--dump-dom",
                             path.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
@pytest.mark.parametrize("name", ["small", EVIL])
def test_pareto_plot_renders_one_point_per_trial_in_chromium(report_dir, nas_storage, name, tmp_path):
    study = optuna.load_study(study_name=name, storage=nas_storage)
    complete = {(t.user_attrs["arch"], t.user_attrs["resolution"]) for t in study.trials if t.state.name == "COMPLETE"}
    apart = [t for t in study.trials if "infeasible" in t.user_attrs or t.user_attrs.get("stopped_at")]
    drawn = [*complete, *apart]  # one point per architecture, one per infeasible or stopped trial
    dom = render(report_dir / safe_name(name), f"--user-data-dir={tmp_path}")
    pareto = re.split(r'id="(?:confirmed|hypervolume)"', dom.split('id="pareto"', 1)[1], maxsplit=1)[0]
    assert len(re.findall(r'class="point[ "]', pareto)) == len(drawn) > 0
    assert "main-svg" in pareto  # plotly drew it
    assert "alert(1)" not in dom.split("<body", 1)[1].split("<h1>", 1)[0]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_index_links_every_study(report_dir, tmp_path):
    dom = render(report_dir / "index.html", f"--user-data-dir={tmp_path}")
    assert safe_name("small") in dom and safe_name(EVIL) in dom


@pytest.fixture(scope="module")
def run_report_dir(trained_run, tmp_path_factory):
    """Only training runs: the storage does not exist, which is fine when there are runs to report."""
    out = tmp_path_factory.mktemp("runs-report")
    result = effnas("report", "--storage", f"sqlite:///{out}/none.db", "--runs", str(trained_run.parent), "--out",
                    str(out / "r"))
    assert result.returncode == 0, result.stderr
    return out / "r"


def test_a_training_run_gets_a_self_contained_page(run_report_dir, trained_run):
    page = (run_report_dir / safe_name("run:tiny")).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\\.[a-z]{2,}", page, re.I)
    evaluation = json.loads((trained_run / "evaluation.json").read_text())
    assert page.count('src="data:image/png;base64,') == len(evaluation["examples"]) > 0
    assert f"{evaluation['test']['accuracy']:.4f}" in page and "test accuracy (held out" in page
    index = (run_report_dir / "index.html").read_text()
    assert safe_name("run:tiny") in index and "Training runs" in index


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_run_page_renders_its_plots_and_images_in_chromium(run_report_dir, trained_run, tmp_path):
    dom = render(run_report_dir / safe_name("run:tiny"), f"--user-data-dir={tmp_path}")
    curves = dom.split('id="curves"', 1)[1].split('id="confusion"', 1)[0]
    confusion = dom.split('id="confusion"', 1)[1]
    assert "main-svg" in curves and curves.count('class="scatterlayer') >= 1
    assert "main-svg" in confusion and "heatmaplayer" in confusion
    evaluation = json.loads((trained_run / "evaluation.json").read_text())
    assert dom.count('<figure class="example') == len(evaluation["examples"])
