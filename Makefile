# oriel: the two commands that matter are `make run` and `make test`.
# Both install what is missing (Debian packages, npm packages) first.

CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080
# Started inside the virtual display when there is no $DISPLAY, so a
# headless machine shows something.
SESSION ?= xterm
ARGS ?=

E2E_DIR := tests/e2e
BENCH_DIR := bench

.PHONY: run test deps test-deps build build-debug lint unit vm e2e bench clean

run: deps build
	@if [ -z "$$DISPLAY" ] && command -v $(firstword $(SESSION)) >/dev/null 2>&1; then \
		exec ./target/release/oriel serve --listen $(LISTEN) --session-cmd "$(SESSION)" $(ARGS); \
	else \
		exec ./target/release/oriel serve --listen $(LISTEN) $(ARGS); \
	fi

test: test-deps lint unit vm build-debug e2e

deps:
	@scripts/install-deps.sh run

test-deps:
	@scripts/install-deps.sh test
	@cd $(E2E_DIR) && { [ -d node_modules/playwright-core ] && [ -d node_modules/ws ] || npm ci --no-audit --no-fund --loglevel=error; }

build:
	$(CARGO) build --release

build-debug:
	$(CARGO) build

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# uinput on a real kernel: Debian's, booted in qemu (this kernel has none).
vm:
	@bash vm/run-uinput-tests.sh; rc=$$?; \
	if [ $$rc = 77 ]; then echo "WARNING: uinput VM tests skipped (see above)"; exit 0; fi; exit $$rc

e2e: build-debug
	cd $(E2E_DIR) && ORIEL_BIN=$(CURDIR)/target/debug/oriel node --test --test-concurrency=1 --test-reporter=spec *.test.mjs

bench: test-deps build
	@cd $(BENCH_DIR) && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error; }
	cd $(BENCH_DIR) && ORIEL_BIN=$(CURDIR)/target/release/oriel node bench.mjs

clean:
	$(CARGO) clean
	rm -rf $(E2E_DIR)/node_modules $(BENCH_DIR)/node_modules
