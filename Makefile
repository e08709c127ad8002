# Two commands do all the set-up: `make demo` (the main job) and `make test` (the suite).
# Both create .venv here with effnas installed; CPU torch is pinned through constraints.txt.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

demo: venv
	$(VENV)/bin/effnas search
	$(VENV)/bin/effnas report

lint: venv
	$(VENV)/bin/ruff check .

test: lint
	$(VENV)/bin/pytest

bench: venv
	$(PY) -m tests.benchmarks.run_all

clean:
	rm -rf $(VENV) runs reports-out
