# The two entry points the README opens with. `setup` is idempotent (a stamp in .venv).
.PHONY: setup repro test lint
PY := .venv/bin/python

setup:
	bash scripts/setup.sh

repro: setup
	.venv/bin/gspo-repro probe

test: setup
	$(PY) -m pytest -q
	.venv/bin/ruff check .

lint: setup
	.venv/bin/ruff check .
