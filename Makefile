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

.PHONY: run test deps test-deps build build-debug lint unit fuzz fuzz-short vm e2e bench bench-deps install uninstall clean

PREFIX ?= $(HOME)/.local
UNIT_DIR ?= $(HOME)/.config/systemd/user
UDEV_RULE := /etc/udev/rules.d/60-oriel-uinput.rules

run: deps build
	@if [ -z "$$DISPLAY" ] && command -v $(firstword $(SESSION)) >/dev/null 2>&1; then \
		exec ./target/release/oriel serve --listen $(LISTEN) --session-cmd "$(SESSION)" $(ARGS); \
	else \
		exec ./target/release/oriel serve --listen $(LISTEN) $(ARGS); \
	fi

test: test-deps lint unit fuzz-short vm build-debug e2e reliability

deps:
	@scripts/install-deps.sh run

test-deps:
	@scripts/install-deps.sh test
	@cd $(E2E_DIR) && { [ -d node_modules/playwright-core ] && [ -d node_modules/ws ] || npm ci --no-audit --no-fund --loglevel=error; }
	@cd $(BENCH_DIR) && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error; }

build:
	$(CARGO) build --release

build-debug:
	$(CARGO) build --bins --examples

lint:
	$(CARGO) fmt --all --check
	cd fuzz && $(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# Coverage-guided fuzzing of the parsers of outside bytes (fuzz/, with
# cargo-afl, installed on first use): every target in turn for FUZZ_SECONDS,
# or FUZZ_TARGETS only. Fails on a crash; crashes land in fuzz/regressions/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

# The short run `make test` makes: a smoke test of every target and the
# replay of every seed and past crash.
fuzz-short:
	FUZZ_SECONDS=15 scripts/fuzz.sh

# uinput on a real kernel: Debian's, booted in qemu (this kernel has none).
vm:
	@bash vm/run-uinput-tests.sh; rc=$$?; \
	if [ $$rc = 77 ]; then echo "WARNING: uinput VM tests skipped (see above)"; exit 0; fi; exit $$rc

# The Wayland and service tests run as another user (`nobody`): they run
# from a copy of the test tree inside a private (0700) directory, as a clone
# in /root is, so every run shows nothing needs the checkout to be readable.
PRIVATE_E2E := wayland.test.mjs service.test.mjs

e2e: build-debug
	cd $(E2E_DIR) && ORIEL_BIN=$(CURDIR)/target/debug/oriel node --test --test-concurrency=1 --test-reporter=spec \
		$(filter-out $(PRIVATE_E2E),$(notdir $(wildcard $(E2E_DIR)/*.test.mjs)))
	ORIEL_BIN=$(CURDIR)/target/debug/oriel scripts/e2e-private.sh $(PRIVATE_E2E)

# Benchmarks (bench/README.md): every part in turn, unattended; a part that
# fails does not stop the others, but makes `make bench` fail at the end.
# Each writes bench/results/<date>-<part>.json and regenerates BENCHMARKS.md.
BENCH_PARTS := glass glass-network viewers peer ttff still click shared-viewers audio input files pointer churn clients sfu network bad-clients

bench: bench-deps
	@failed=""; for p in $(BENCH_PARTS); do \
		echo "=== bench $$p ==="; \
		(cd $(BENCH_DIR) && ORIEL_BIN=$(CURDIR)/target/release/oriel node $$p.mjs) || failed="$$failed $$p"; \
	done; \
	if [ -n "$$failed" ]; then echo "bench parts failed:$$failed"; exit 1; fi

bench-deps: test-deps
	$(CARGO) build --release --bins --examples
	@cd $(BENCH_DIR) && { [ -d node_modules/playwright-core ] && [ -d node_modules/ws ] || npm ci --no-audit --no-fund --loglevel=error; }

# The short forms of the reliability benchmarks, as checks (BENCH_CHECK=1:
# they fail on a crash, a stall, a leftover client or GStreamer object, a
# viewer slowing down, input not landing); on the debug build, results to
# the temp dir. The full forms: make bench-churn, bench-churn-valgrind,
# bench-soak.
RELIABILITY_ENV := BENCH_CHECK=1 BENCH_NO_MARKDOWN=1 ORIEL_BIN=$(CURDIR)/target/debug/oriel \
	BENCH_RECEIVER=$(CURDIR)/target/debug/examples/bench_receiver

.PHONY: reliability
reliability: build-debug
	cd $(BENCH_DIR) && $(RELIABILITY_ENV) BENCH_CHURN_CYCLES=100 BENCH_CHURN_EVERY=50 BENCH_CHURN_DISRUPT=5 node churn.mjs
	cd $(BENCH_DIR) && $(RELIABILITY_ENV) BENCH_SOAK_MINUTES=3 BENCH_SOAK_SAMPLE_S=30 node soak.mjs

.PHONY: bench-soak
bench-soak: bench-deps
	cd $(BENCH_DIR) && ORIEL_BIN=$(CURDIR)/target/release/oriel node soak.mjs

.PHONY: $(addprefix bench-,$(BENCH_PARTS))
$(addprefix bench-,$(BENCH_PARTS)): bench-%: bench-deps
	cd $(BENCH_DIR) && ORIEL_BIN=$(CURDIR)/target/release/oriel node $*.mjs

# Every fuzz target up to 10 million executions or 30 min (FUZZ_EXECS,
# FUZZ_SECONDS), into BENCHMARKS.md; bench/fuzz.mjs TARGET... for some.
.PHONY: bench-fuzz
bench-fuzz: test-deps
	cd $(BENCH_DIR) && node fuzz.mjs

# The churn part again, 100 cycles under Valgrind memcheck.
.PHONY: bench-churn-valgrind
bench-churn-valgrind: bench-deps
	cd $(BENCH_DIR) && BENCH_CHURN_VALGRIND=1 ORIEL_BIN=$(CURDIR)/target/release/oriel node churn.mjs

# Installs for the current user; the udev rule (uinput access for the
# logged-in user) needs root, so it is installed only when run as root.
install: deps build
	install -D -s -m 0755 target/release/oriel $(PREFIX)/bin/oriel
	install -D -m 0644 systemd/oriel.service $(UNIT_DIR)/oriel.service
	install -D -m 0644 README.md $(PREFIX)/share/doc/oriel/README.md
	@echo "installed $(PREFIX)/bin/oriel and $(UNIT_DIR)/oriel.service"
	@if [ "$$(id -u)" = 0 ]; then install -D -m 0644 systemd/60-oriel-uinput.rules $(UDEV_RULE) && \
		(udevadm control --reload-rules 2>/dev/null; udevadm trigger --sysname-match=uinput 2>/dev/null; true) && \
		echo "installed $(UDEV_RULE)"; \
	else echo "for gamepads and uinput input, as root: install -m 0644 systemd/60-oriel-uinput.rules $(UDEV_RULE)"; fi
	@echo "start it with your desktop: systemctl --user daemon-reload && systemctl --user enable --now oriel"

uninstall:
	-systemctl --user disable --now oriel 2>/dev/null
	rm -f $(PREFIX)/bin/oriel $(UNIT_DIR)/oriel.service
	rm -rf $(PREFIX)/share/doc/oriel
	@if [ "$$(id -u)" = 0 ]; then rm -f $(UDEV_RULE); fi
	@echo "removed oriel (links and secret stay in ~/.local/state/oriel)"

clean:
	$(CARGO) clean
	rm -rf $(E2E_DIR)/node_modules $(BENCH_DIR)/node_modules
