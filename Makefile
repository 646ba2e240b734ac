# wfmon: the README's commands. Everything installs into .venv with uv (bootstrapped
# into .tools/ from the system Python), pinned by uv.lock.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench lint clean services-down notebooks

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/wfmon: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(BIN)/wfmon

## Bring the whole platform up on embedded services (Ctrl-C stops everything it started).
demo: install
	$(BIN)/wfmon demo

## Install and run the test suite against real services.
test: install
	$(BIN)/pytest

## Benchmarks: results in bench/results/*.json, one summary line each.
bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wfmon wfmon_defs assets resources bench
	$(BIN)/lint-imports

## Notebook packages (JupyterLab, matplotlib: dependency group `notebooks`, not installed by
## `make test`), then JupyterLab on notebooks/ (needs `wfmon services up` or WFMON_* settings).
notebooks: install
	$(UV) sync --frozen --python $(PYTHON) --group notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

services-down: install
	$(BIN)/wfmon services down

clean:
	rm -rf $(VENV) .tools .wfmon bench/results
