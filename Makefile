# Two commands on a fresh machine with only python3:
#   make demo   sets itself up and runs the quick start tour in a fresh workspace
#   make test   sets itself up and runs every check and test
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.smalt-synced

.PHONY: setup demo test check bench lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# requirements.lock pins every dependency (regenerate with `make lock`); smalt itself is editable.
$(STAMP): $(UV) pyproject.toml requirements.lock
	[ -x $(VENV)/bin/python ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --compile-bytecode requirements.lock
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode --no-deps -e .
	touch $(STAMP)

# The editable source is compiled on every setup (incremental), since PYTHONDONTWRITEBYTECODE=1 here.
setup: $(STAMP)
	$(VENV)/bin/python -m compileall -q src

demo: setup
	$(VENV)/bin/python examples/tour.py

check: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

# The CLI's tests run twice: on the embedded default, and through `smalt server` (--transport http).
CLI_TESTS := tests/integration/test_cli_assets.py tests/integration/test_cli_resources.py \
	tests/integration/test_cli_options.py tests/integration/test_cli_refusals.py \
	tests/integration/test_bad_input.py tests/integration/test_job_bad_input.py tests/e2e/test_jobs.py \
	tests/e2e/test_pipelines.py tests/e2e/test_lineage.py tests/e2e/test_models.py tests/e2e/test_azure_files.py \
	tests/e2e/test_model_package.py

test: check
	$(VENV)/bin/python -m pytest -n 2 -m "not slow" tests
	$(VENV)/bin/python -m pytest -n 2 -m "not slow and not embedded_only" --transport http $(CLI_TESTS)
	$(VENV)/bin/python -m pytest -m slow tests

bench: setup
	$(VENV)/bin/python benchmarks/cli_startup.py
	$(VENV)/bin/python benchmarks/job_overhead.py
	$(VENV)/bin/python benchmarks/listing.py
	$(VENV)/bin/python benchmarks/uploads.py
	$(VENV)/bin/python benchmarks/environment_build.py
	$(VENV)/bin/python benchmarks/tracking.py
	$(VENV)/bin/python benchmarks/pipelines.py
	$(VENV)/bin/python benchmarks/access.py
	$(VENV)/bin/python benchmarks/lineage.py
	$(VENV)/bin/python benchmarks/serving.py

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache

lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock
