# BeatStream node. `make dev` runs the node with a demo; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# Native Foundry binaries first (script/setup.sh links them): npm's `.bin/forge` wrapper loses the exit status.
export PATH := $(CURDIR)/node_modules/.beatstream/bin:$(CURDIR)/node_modules/.bin:$(PATH)

CARGO ?= cargo
# nextest runs each test in its own process (parallel across both cores); plain `cargo test` where it is missing.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "nextest run" || echo test)

.PHONY: all setup contracts abi build dev test test-contracts test-rust test-ops fmt lint gas schema bench-indexer bench-keeper bench-api bench-yellow bench-audio bench-partitions guarantees web test-web test-sdk screenshots clean

all: build

## setup: install the pinned Solidity toolchain (npm) and the offline solc shims; idempotent
setup:
	@./script/setup.sh

## contracts: compile the contracts (forge, offline, solcjs)
contracts: setup
	forge build

## abi: refresh primitives/abi/ from the compiled contracts, and the SDK's clients/ts/src/abi.ts from those (commit
## both; the app embeds the SDK, so run `make web` after an ABI change too)
abi: contracts
	node script/export-abi.mjs
	node clients/ts/scripts/gen-abi.mjs

## web: rebuild the app and GraphiQL (web/, on the SDK in clients/ts) into web/dist, which the node embeds (commit it)
web:
	./script/web.sh

## build: contracts and the `beatstream` binary
build: contracts
	$(CARGO) build --workspace

## dev: run the whole node locally with a demo (see README)
dev: contracts
	$(CARGO) run --release -p beatstream-node --bin beatstream -- dev $(ARGS)

## test: every test: ABI freshness, forge (with the gas snapshot check), cargo (with moto's KMS server installed)
test: test-contracts test-rust test-ops test-web test-sdk

test-contracts: contracts
	node script/export-abi.mjs --check
	FORGE_SNAPSHOT_CHECK=true forge test

test-rust: contracts
	./script/check-sqlx.sh
	./script/moto.sh  # the local KMS server of the KMS signer tests (target/venv; Python 3 with venv and pip)
	./script/test-deps.sh  # PgBouncer and openssl for the Postgres topology tests (Debian's packages)
	$(CARGO) $(NEXTEST) --workspace --no-fail-fast

## test-web: web/dist is the build of web/ and clients/ts (npm ci from their lock files), and the app works in
## Debian's Chromium (playwright-core, no browser download) against a real `beatstream dev`
test-web: contracts
	./script/web.sh --check
	./script/test-deps.sh  # Chromium and a font (Debian's packages)
	$(CARGO) build -p beatstream-node --bin beatstream
	cd web && node --test --test-concurrency=1 test/

## screenshots: rerun the browser test and keep its screenshots of the app and GraphiQL in docs/screenshots (commit them)
screenshots: contracts
	./script/test-deps.sh
	$(CARGO) build -p beatstream-node --bin beatstream
	cd web && BEATSTREAM_SCREENSHOTS=docs/screenshots node --test --test-concurrency=1 test/

## test-sdk: the TypeScript SDK (clients/ts, npm ci from its lock file): generated ABIs and GraphQL types fresh, unit
## tests on docs/vectors, and integration tests driving the built `beatstream dev` (relay, indexer, keeper, API, studio)
test-sdk: contracts
	$(CARGO) build -p beatstream-node --bin beatstream
	cd clients/ts && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test

## test-ops: the Prometheus alert rules in ops/ are valid and pass their unit tests (promtool, installed if missing)
test-ops:
	./script/check-alerts.sh

## guarantees: remove each promised mechanism (guarantees/*.patch) in a scratch copy and check its tests catch it
## (MUTATIONS="name ..." for some; prints caught/SURVIVED per mutation; docs/TESTING.md has the last result)
guarantees: contracts
	./script/guarantees.sh $(MUTATIONS)

## gas: re-measure and rewrite the gas snapshots in snapshots/
gas: contracts
	forge test --match-path 'contracts/test/gas/*'

## schema: rewrite docs/schema.graphql from the API's code (a test fails while it is stale)
schema:
	BEATSTREAM_UPDATE_SCHEMA=1 $(CARGO) test -p beatstream-graphql-api --lib schema_file_is_current

## bench-indexer: a million events on anvil, backfilled into Postgres (prints events/s, ceilings, memory)
bench-indexer: contracts
	$(CARGO) bench -p beatstream-indexer --bench backfill

## bench-api: the artist-dashboard query over 1,000,000 settlements (prints p50/p99 latency and requests/s)
bench-api:
	$(CARGO) bench -p beatstream-graphql-api --bench dashboard

## bench-yellow: Yellow updates submitted one by one to the nitronode double, raw and through the relay (500 players; prints node lag, backlog, verdict)
bench-yellow:
	$(CARGO) bench -p beatstream-stream-relay --bench yellow

## bench-audio: upload and chunking throughput (audio crate alone and over the studio's HTTP), chunk serving to 10/100/1000
## listeners next to static files, the relay's cost per released chunk key
bench-audio: contracts
	$(CARGO) bench -p beatstream-audio --bench upload
	$(CARGO) bench -p beatstream-studio --bench audio
	$(CARGO) bench -p beatstream-stream-relay --bench chunk_keys

## bench-partitions: the relay's voucher upsert on the unpartitioned table and on hash(listener) partitions (8, 64) of
## 1,000,000 pairs (prints rows/s, backend CPU µs per row, commit p50/p99, WAL bytes per row, sizes; BENCH_PAIRS, BENCH_SECS)
bench-partitions:
	$(CARGO) bench -p beatstream-stream-relay --bench partitions

## bench-keeper: gas per settled voucher at several batch sizes, and voucher-to-confirmed-settlement latency on anvil
bench-keeper: contracts
	$(CARGO) bench -p beatstream-keeper --bench settlement

## fmt: format Rust and Solidity
fmt: setup
	$(CARGO) fmt --all
	forge fmt

## lint: rustfmt and forge fmt checks, sqlx only under db/ in the services, no module cycles, no test tools in the
## shipped binary, clippy with warnings denied
lint: contracts
	$(CARGO) fmt --all -- --check
	forge fmt --check
	./script/check-sqlx.sh
	node script/check-module-cycles.mjs
	./script/check-product-deps.sh
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf out cache broadcast target
