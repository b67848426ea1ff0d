# dockyard: `make example` runs the hello demo, `make test` runs the checks CI runs.
# Both bootstrap the host first (idempotent; see scripts/bootstrap.sh).
.PHONY: bootstrap example test

bootstrap:
	bash scripts/bootstrap.sh

example: bootstrap
	.venv/bin/python examples/hello/demo.py

test: bootstrap
	.venv/bin/lint-imports
	.venv/bin/pytest -q
