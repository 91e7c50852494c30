#!/usr/bin/env bash
# The model check of the hand-off between nginx and the runtime (issue #16): loom runs
# the park-aware submit queue (src/bridge/queue.rs) and the ticket table
# (src/bridge/tickets.rs) through every interleaving of their threads with at most
# LOOM_MAX_PREEMPTIONS preemptions (default 3). loom/ is a workspace of its own that
# compiles only those two files, so it never rebuilds the main crate's dependencies:
# measured cold (nothing built, loom in cargo's cache) on the shared 2-core machine:
# 58 s wall, 29 CPU s to build, 5-7 s to run the models (debug build).
set -euo pipefail
cd "$(dirname "$0")/../loom"
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
cargo fmt --check
# --lib --test model: the lib's own test target would compile queue.rs' tokio tests.
cargo clippy --locked --quiet --lib --test model -- -D warnings
cargo test --locked --quiet 2>&1 | grep -v '^$'
