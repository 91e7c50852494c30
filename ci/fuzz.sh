#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a while (docs/fuzzing.md).
#
#   ci/fuzz.sh                  # every target, 20 s each (what ci/test.sh runs)
#   ci/fuzz.sh 600 sign         # one target for 10 minutes
#
# libFuzzer needs nightly compiler features: RUSTC_BOOTSTRAP=1 lets the stable toolchain
# build them. No sanitizer (-s none): the code under test is safe Rust, so AddressSanitizer
# would find nothing that a panic does not, while it doubles the build time and halves
# the executions. Inputs found are kept in fuzz/corpus/<target> (not committed); the
# committed seeds (fuzz/seeds/<target>) and dictionaries (fuzz/dict/<target>.dict) are
# read too. A crash fails the script; its input is in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${1:-20}
shift || true
TARGETS=("$@")
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "fuzz: seconds must be a number" >&2; exit 2; }
# cargo-fuzz is this script's own tool: built from crates.io when missing (about a
# minute), so that building and the demo do not pay for it.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
FLAGS=(--sanitizer none)
if ((${#TARGETS[@]} == 0)); then
    mapfile -t TARGETS < <(cargo fuzz list)
    cargo fuzz build "${FLAGS[@]}"
else
    for t in "${TARGETS[@]}"; do cargo fuzz build "${FLAGS[@]}" "$t"; done
fi

status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    opts=(-max_total_time="$SECONDS_EACH" -print_final_stats=1)
    [ -f "dict/$t.dict" ] && opts+=(-dict="dict/$t.dict")
    log=$(mktemp)
    echo "== fuzz $t (${SECONDS_EACH} s)"
    if cargo fuzz run "${FLAGS[@]}" "$t" "${dirs[@]}" -- "${opts[@]}" >"$log" 2>&1; then
        # The last status line (executions, coverage, corpus) and the run's totals.
        grep -E '^#[0-9]+' "$log" | tail -n 1
        grep -E '^stat::number_of_executed_units' "$log" || true
    else
        status=1
        grep -vE '^#[0-9]+|^INFO:' "$log" | tail -n 40 >&2
        echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    fi
    rm -f "$log"
done
exit "$status"
