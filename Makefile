# Entry points: `make run` (the embedded experiment), `make test` (the whole suite), `make outputs` (store the chapters with their outputs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_OUT ?= runs/notebooks/run_experiment_digits_lt.ipynb

.PHONY: run test test-slow outputs venv clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	mkdir -p $(dir $(RUN_OUT))
	$(VENV)/bin/papermill --log-output nbs/run_experiment.ipynb $(RUN_OUT)
	@echo "executed notebook: $(RUN_OUT)"

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q --runslow

outputs: $(STAMP)
	$(PY) tests/chapter_outputs.py

clean-runs:
	rm -rf runs
