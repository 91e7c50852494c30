#!/usr/bin/env bash
# Builds the native library and installs it as build/lib/aws_lambda_native.so, the
# name `require("aws_lambda_native")` looks for on lua_package_cpath.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --lib
mkdir -p build/lib
install -m 0755 target/release/libaws_lambda_native.so build/lib/aws_lambda_native.so
