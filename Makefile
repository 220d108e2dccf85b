# The two entry points the README opens with. `setup` is idempotent (a stamp in .venv).
.PHONY: setup repro test lint
PY := .venv/bin/python

setup:
	bash scripts/setup.sh

# The whole tiny reproduction: SFT -> grpo, grpo_rr, gspo -> lm-eval -> tables, figures.
repro: setup
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/snakemake --profile profiles/default

test: setup
	$(PY) -m pytest -q
	.venv/bin/ruff check .

lint: setup
	.venv/bin/ruff check .
