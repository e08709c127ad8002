"""Installed from its wheel, effnas is one package: nothing generic in site-packages, and a user's project with
its own models/ and search/ packages runs `effnas` and the README's Python snippets from inside it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = "stem_c8 ds_r1_k3_s1_c8 ir_r1_k3_s2_e3_c16 head_c32"
pytestmark = pytest.mark.slow


def readme_python(section: str) -> list[str]:
    """The ```python blocks of the README section headed ``section``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end if end > 0 else None], re.S)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding effnas's wheel alone; its dependencies are this venv's (a path line, so nothing of
    this venv's own effnas install comes along)."""
    work = tmp_path_factory.mktemp("install")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(work / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((work / "dist").glob("effnas-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=300)
    python = work / "venv" / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return work / "venv"


def test_the_wheel_installs_one_top_level_package(installed):
    site = next((installed / "lib").glob("python*/site-packages"))
    ours = {p.name for p in site.iterdir()} - {"dependencies.pth", "__pycache__"}
    ours = {name for name in ours if not name.startswith(("pip", "_distutils_hack", "setuptools", "pkg_resources",
                                                           "distutils-precedence"))}
    assert {name for name in ours if not name.endswith(".dist-info")} == {"effnas"}
    assert {"space", "models", "search", "studies", "reports"} <= {p.name for p in (site / "effnas").iterdir()}


def test_a_project_with_its_own_models_and_search_packages(installed, tmp_path):
    for package in ("models", "search"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"MINE = {package!r}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    python, effnas = installed / "bin" / "python", installed / "bin" / "effnas"
    shown = subprocess.run([str(effnas), "show", "efficientnet-b0"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "385,814,752" in shown.stdout  # B0's MACs at 224 px
    searched = subprocess.run([str(effnas), "search", "--trials", "2", "--epochs", "1", "--resolution", "8",
                               "--base", TINY], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert searched.returncode == 0, searched.stderr[-3000:]
    snippets = readme_python("Python API")
    assert snippets, "the README's Python API section has no python block"
    for snippet in snippets:
        ran = subprocess.run([str(python), "-c", snippet + "\nimport models, search\n"
                              "assert (models.MINE, search.MINE) == ('models', 'search')\n"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "385814752" in ran.stdout
    lazy = subprocess.run([str(python), "-c", "import sys, effnas; effnas.cost; "
                           "print('torch' in sys.modules, 'optuna' in sys.modules)"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert lazy.stdout.split() == ["False", "False"], lazy.stderr
