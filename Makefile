# Shortcuts; the README's commands are scripts/dev and scripts/test.
.PHONY: setup dev test gas bench-api bench-indexer

setup:
	scripts/setup

dev:
	scripts/dev

test:
	scripts/test

APE = PATH=$(CURDIR)/.tools/bin:$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/ape

# `rm -rf contracts/.cache`: see scripts/test (Ape's 500-file source scan).
gas:
	scripts/setup && $(APE) compile && rm -rf contracts/.cache && $(APE) run gas_report --network ethereum:local:foundry

bench-api:
	scripts/setup && .venv/bin/python scripts/bench_api.py

bench-indexer:
	scripts/setup && PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/python scripts/bench_indexer.py
