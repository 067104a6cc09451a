# The project's two commands:  `make run`  and  `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One test process per core, at most four (each may run a server, a browser or a PostgreSQL
# cluster); a file's tests stay in one process, so its fixtures are built once.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: run test lint bench clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

## Build the demo warehouse if there is none, then start the dashboard on http://localhost:8501
run: $(VENV)/.installed
	bash scripts/install-browser.sh  # PNG/PDF exports print with Debian's chromium
	$(VENV)/bin/govdash demo --if-missing
	$(VENV)/bin/govdash serve

## Install what the tests need (chromium, LibreOffice, PostgreSQL) and run lint, types and the whole suite,
## then the browser suite once more against two server processes
test: $(VENV)/.installed-test
	bash scripts/install-browser.sh
	bash scripts/install-deploy-tools.sh  # nginx, openssl, systemd-analyze for tests/deploy
	bash scripts/install-office.sh  # LibreOffice Calc and Writer: re-save round trips, the bulletin
	bash scripts/install-postgres.sh  # PostgreSQL: the replica tests' throwaway DuckLake catalog
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q $(PARALLEL)
	# the browser suite again against `govdash serve --workers 2` (nginx in front, sticky sessions)
	GOVDASH_TEST_WORKERS=2 $(PY) -m pytest -q $(PARALLEL) -p no:cacheprovider tests/browser --deselect tests/browser/test_workers.py

bench: $(VENV)/.installed-test
	$(PY) bench/bench_load.py

clean-venv:
	rm -rf $(VENV)
