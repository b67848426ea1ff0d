# dockyard: `make example` runs the hello demo, `make test` runs the checks CI runs.
# `example` and `test` bootstrap the host first (root; idempotent; see scripts/bootstrap.sh).
# `lint` and `unit` need neither root nor an engine: they make .venv if it is missing and run in seconds.
.PHONY: bootstrap example test lint unit screenshots

VENV := .venv
STAMP := $(VENV)/.dockyard-bootstrap

bootstrap:
	bash scripts/bootstrap.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
	sha256sum pyproject.toml | cut -d' ' -f1 > $(STAMP)

example: bootstrap
	$(VENV)/bin/python examples/hello/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy bench/*.py
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

test: bootstrap
	$(MAKE) lint
	$(VENV)/bin/pytest -q

# docs/screenshots/ again, from the browser test (a plain test run writes them to a temporary directory)
screenshots: bootstrap
	DOCKYARD_SCREENSHOTS=$(CURDIR)/docs/screenshots $(VENV)/bin/pytest -q tests/e2e/test_dashboard.py
