#!/usr/bin/env bash
# Runs browser e2e test files from a copy of the test tree inside a private
# (0700) directory, the way a newcomer's clone in /root sits: a test that
# runs something from the checkout as another user (the Wayland session
# runs as `nobody`) fails here, so `make test` proves on every run that
# nothing depends on the checkout being readable by others.
# Usage: scripts/e2e-private.sh FILE.test.mjs... (names under tests/e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
bin="${ORIEL_BIN:-$root/target/debug/oriel}"

private="$(mktemp -d)"   # mode 0700, owned by whoever runs the tests
trap 'rm -rf "$private"' EXIT
chmod 700 "$private"
copy="$private/oriel"
mkdir -p "$copy/target/debug"
# The tests and their helpers, and the agent binary; node_modules is
# linked (only this user's test runner reads it).
tar -C "$root" --exclude=tests/e2e/node_modules -cf - tests systemd | tar -C "$copy" -xf -
ln -s "$root/tests/e2e/node_modules" "$copy/tests/e2e/node_modules"
cp "$bin" "$copy/target/debug/oriel"
echo "e2e from a private copy ($(stat -c %a "$private") $private): $*"
cd "$copy/tests/e2e"
ORIEL_BIN="$copy/target/debug/oriel" node --test --test-concurrency=1 --test-reporter=spec "$@"
