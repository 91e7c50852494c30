#!/usr/bin/env bash
# Builds the native library (`make build`): build/lib/aws_lambda_native.so, stripped, under
# the name `require("aws_lambda_native")` looks for on lua_package_cpath, and its debug
# info in build/lib/aws_lambda_native.so.debug.
set -euo pipefail
cd "$(dirname "$0")/.."

make --no-print-directory build
