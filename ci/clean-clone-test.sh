#!/usr/bin/env bash
# A plain clone needs nothing beside it: clones this repository (its committed HEAD) into
# an empty temporary directory, where no ../shared or other sibling exists, and runs the
# Rust tests (the AWS signing suite included, found inside the aws-sigv4 crate) and the
# mock function's check against that suite there. It reuses this checkout's target/ for the compiled
# dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=$(mktemp -d /tmp/aws-lambda-clone.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/clone"
[ "$(ls -A "$work")" = "clone" ] || { echo "clean clone: $work is not empty" >&2; exit 1; }
cd "$work/clone"
unset AWS_SIGNING_SUITE_DIR AWS_SIGNING_TEST_SUITE
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
if ! cargo test --locked >"$work/cargo-test.log" 2>&1; then
    tail -n 40 "$work/cargo-test.log" >&2
    echo "clean clone: cargo test failed" >&2
    exit 1
fi
grep -E "^test (aws_signing_test_suite_v4|result:)" "$work/cargo-test.log" | sort | uniq -c
(cd t/mock && python3 -m unittest -q test_function.TestSigningSuiteVectors 2>&1 | tail -n 1)
echo "clean clone in $work/clone (nothing beside it): cargo test and the mock's suite check pass"
