#!/usr/bin/env bash
# Installs what is missing, builds, and runs every check: formatting, lints, the Rust
# tests (incl. the AWS signing test suite and the C header check), and the
# Test::Nginx-format suite in t/ against nginx with the plugin. Ends with prove's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/install-deps.sh --test

echo "== cargo fmt"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== luacheck"
luacheck -q lua t/lib ci/bench
echo "== cargo test"
cargo test --locked

echo "== loom: the submit queue and the ticket table, model-checked"
ci/loom.sh

echo "== a clean clone, with nothing beside it, passes the Rust and mock tests"
ci/clean-clone-test.sh

echo "== links in README.md and docs/ point somewhere"
python3 ci/check-links.py

echo "== the mock function's own tests (botocore verifier, credential servers)"
python3 -m unittest -q t/mock/test_function.py t/mock/test_lambda_api.py 2>&1 | tail -n 3

# FUZZ_SECONDS per target (0 skips). The fuzz build is its own (instrumented, in
# fuzz/target): about 6.5 min the first time on a shared 2-core VM, ~20 s after a change.
echo "== fuzz (cargo-fuzz, ${FUZZ_SECONDS:=20} s per target)"
if [ "$FUZZ_SECONDS" -gt 0 ]; then
    ci/fuzz.sh "$FUZZ_SECONDS"
fi

echo "== build"
ci/build.sh

echo "== install: luarocks make/pack/install offline, t/20 and t/30 against the installed rock"
ci/install-test.sh

echo "== reload under load"
ci/reload-test.sh 2>&1 | grep -v "signal process started"

echo "== HTTP/2 clients (curl --http2-prior-knowledge)"
ci/http2-test.sh

echo "== t/ (Test::Nginx format)"
export TEST_NGINX_BINARY=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
prove -I. -It/runner -r t/
