#!/usr/bin/env bash
# Fuzzes oriel's parsers of outside bytes (fuzz/, issue 21) with AFL++
# through cargo-afl, on the stable toolchain, one target after another.
#
# Usage: scripts/fuzz.sh [TARGET...]     (default: every target)
#
# Environment:
#   FUZZ_SECONDS  fuzzing time per target (default 60)
#   FUZZ_EXECS    also stop a target after this many executions (AFL's -E)
#   FUZZ_NICE     nice level of the fuzzers (default 19: shared machines)
#   FUZZ_OUT      AFL's output directory (default: a new one under $TMPDIR;
#                 kept after the run, for a look at the queue and logs)
#   FUZZ_JSON     where to write the results (default $FUZZ_OUT/result.json)
#
# Installs the pinned cargo-afl when missing, builds the targets, replays
# the seed corpora and past crashes (fuzz/regressions/) through the checks,
# then fuzzes. Every new crash is copied into fuzz/regressions/<target>/, so
# the replay test keeps it. Exits nonzero when a target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

AFL_VERSION=0.18.2 # = the afl crate's pin in fuzz/Cargo.toml
seconds="${FUZZ_SECONDS:-60}"
execs="${FUZZ_EXECS:-}"
nice_level="${FUZZ_NICE:-19}"
out="${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/oriel-fuzz.XXXXXX")}"
json="${FUZZ_JSON:-$out/result.json}"
mkdir -p "$out"

log() { echo "fuzz: $*" >&2; }

# cargo-afl, and AFL++ built for this rustc (its install builds AFL++, but a
# later rustc update needs `config --build` again).
if [ "$(cargo afl --version 2>/dev/null | awk '{print $2}')" != "$AFL_VERSION" ]; then
  log "installing cargo-afl $AFL_VERSION"
  cargo install cargo-afl --version "$AFL_VERSION" --locked --force
fi
if ! config_out="$(cargo afl config --build 2>&1)" && ! grep -q "already built" <<<"$config_out"; then
  echo "$config_out" >&2
  exit 1
fi

log "building the targets"
# The tree the targets are built from (a long run outlives later commits).
built_from="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
(cd fuzz && cargo afl build --release --features afl --bins)
# The same flags as the build, so the test reuses its compiled crates.
log "replaying the corpora and regressions"
(cd fuzz && cargo afl test --release --features afl --lib)

bin="$root/fuzz/target/release"
# name<TAB>parser for every target, from the fuzz crate's TARGETS.
targets_tsv="$("$bin/targets")"
if [ "$#" -gt 0 ]; then
  wanted=("$@")
else
  mapfile -t wanted < <(cut -f1 <<<"$targets_tsv")
fi

# Unattended: no UI, no checks of the machine's tuning, no pinning to a core
# (a shared machine has none free).
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  AFL_NO_AFFINITY=1 AFL_NO_CRASH_README=1 AFL_FAST_CAL=1

afl_stat() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$2"; }
json_str() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }

rows=()
crashed=0
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for t in "${wanted[@]}"; do
  parser="$(awk -F'\t' -v t="$t" '$1 == t {print $2}' <<<"$targets_tsv")"
  if [ -z "$parser" ]; then
    log "no target $t (targets: $(cut -f1 <<<"$targets_tsv" | tr '\n' ' '))"
    exit 2
  fi
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-x "fuzz/dict/$t.dict")
  limit=(-V "$seconds")
  [ -n "$execs" ] && limit+=(-E "$execs")
  log "$t: fuzzing for ${seconds}s${execs:+ or $execs executions} (output $out/$t)"
  rm -rf "${out:?}/$t"
  if ! nice -n "$nice_level" cargo afl fuzz "${limit[@]}" "${dict[@]}" -i "fuzz/corpus/$t" \
    -o "$out/$t" -- "$bin/$t" >"$out/$t.log" 2>&1; then
    tail -30 "$out/$t.log" >&2
    log "$t: afl-fuzz failed (log $out/$t.log)"
    exit 1
  fi
  stats="$out/$t/default/fuzzer_stats"
  n_execs="$(afl_stat execs_done "$stats")"
  n_crashes="$(afl_stat saved_crashes "$stats")"
  n_hangs="$(afl_stat saved_hangs "$stats")"
  run_time="$(afl_stat run_time "$stats")"
  corpus="$(afl_stat corpus_count "$stats")"
  edges="$(afl_stat edges_found "$stats")"
  # Every crash into the regressions, named by content: the same input
  # found twice is kept once.
  for f in "$out/$t/default/crashes"/id:*; do
    [ -e "$f" ] || continue
    mkdir -p "fuzz/regressions/$t"
    cp "$f" "fuzz/regressions/$t/crash-$(sha1sum "$f" | cut -c1-16)"
  done
  [ "$n_crashes" -gt 0 ] && crashed=1
  rows+=("$t|$parser|$n_execs|$n_crashes|$n_hangs|$run_time|$corpus|$edges")
done

cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
{
  printf '{\n  "startedAt": "%s",\n  "seconds": %s,\n  "execsLimit": %s,\n  "nice": %s,\n' \
    "$started" "$seconds" "${execs:-null}" "$nice_level"
  printf '  "cargoAfl": %s,\n  "rustc": %s,\n  "gitHead": %s,\n' \
    "$(json_str "$(cargo afl --version)")" "$(json_str "$(rustc --version)")" \
    "$(json_str "$built_from")"
  printf '  "host": {"cpuModel": %s, "cores": %s},\n  "outDir": %s,\n  "targets": [\n' \
    "$(json_str "$cpu")" "$(nproc)" "$(json_str "$out")"
  sep=""
  for r in "${rows[@]}"; do
    IFS='|' read -r t parser n_execs n_crashes n_hangs run_time corpus edges <<<"$r"
    printf '%s    {"target": "%s", "parser": %s, "execs": %s, "crashes": %s, "hangs": %s, "seconds": %s, "corpus": %s, "edges": %s}' \
      "$sep" "$t" "$(json_str "$parser")" "$n_execs" "$n_crashes" "$n_hangs" "$run_time" "$corpus" "$edges"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} >"$json"

printf '\n%-11s %12s %8s %6s %8s %9s\n' target execs crashes hangs seconds execs/s
for r in "${rows[@]}"; do
  IFS='|' read -r t _ n_execs n_crashes n_hangs run_time _ _ <<<"$r"
  printf '%-11s %12s %8s %6s %8s %9s\n' "$t" "$n_execs" "$n_crashes" "$n_hangs" "$run_time" \
    "$((n_execs / (run_time > 0 ? run_time : 1)))"
done
log "results: $json"
if [ "$crashed" -ne 0 ]; then
  log "CRASHES: inputs copied to fuzz/regressions/ (replay: cd fuzz && cargo test)"
  exit 1
fi
