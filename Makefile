# Shortcuts; the README's commands are scripts/dev and scripts/test.
.PHONY: setup dev test gas bench-api bench-indexer bench-indexer-remote bench-indexer-ir bench-revocation

setup:
	scripts/setup

dev:
	scripts/dev

test:
	scripts/test

APE = PATH=$(CURDIR)/.tools/bin:$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/ape

gas:
	scripts/setup && $(APE) compile && $(APE) run gas_report --network ethereum:local:foundry

bench-api:
	scripts/setup && .venv/bin/python scripts/bench_api.py

bench-indexer:
	scripts/setup && PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/python scripts/bench_indexer.py

# The backfill through a hosted-RPC-like proxy (50 ms, eth_getLogs caps), ours against naive.
bench-indexer-remote:
	scripts/setup && PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/python scripts/bench_indexer.py --remote

# Instructions of one SQLite backfill (valgrind), here and at BASE: `make bench-indexer-ir BASE=main~3`
bench-indexer-ir:
	scripts/setup && PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/python scripts/bench_indexer_ir.py $(if $(BASE),--base $(BASE))

# Revoke (admin API) -> the public verification API reports revoked: p50/p95 of 50, local stack.
bench-revocation:
	scripts/setup && PATH=$(CURDIR)/node_modules/.bin:$$PATH .venv/bin/python scripts/bench_revocation.py $(if $(REDIS),--redis-url $(REDIS))
