#!/usr/bin/env bash
# Regenerates include/aws_lambda_native.h from src/ffi/ with cbindgen.
# `--verify` only checks that the committed header is current (CI does this).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--verify" ]; then
    cargo test --locked --test header
else
    AWSL_UPDATE_HEADER=1 cargo test --locked --test header
    # The library embeds the header: check again against the rebuilt library.
    cargo test --locked --test header
fi
