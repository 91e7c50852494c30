#!/usr/bin/env bash
# Installs what building and testing need on Debian 12, skipping what is present.
# Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail

APT_PACKAGES=(
    nginx-light libnginx-mod-http-lua libnginx-mod-http-ndk  # nginx 1.22 + lua-nginx-module 0.10.23 + luajit2
    lua-check                                                # luacheck
    libtest-base-perl libtext-diff-perl liblist-moreutils-perl  # the Test::Nginx-format runner
    curl ca-certificates
    wrk                                                      # ci/reload-test.sh, ci/bench.sh
    luarocks lua5.1 make                                     # ci/install-test.sh: the rock (build type make)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    # The nginx package's postinst tries to start the service; this project never
    # uses the system instance.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# botocore verifies signatures in the mock function (an implementation we did not write);
# moto's server plays STS for the credential tests. pip where python3 allows it; Debian's
# own python3 (PEP 668) gets Debian's packages, and t/TestAWSLambda.pm and ci/demo.sh
# fall back to /usr/bin/python3.
have_python_deps() {
    "$1" -c "import botocore, moto, flask, flask_cors" 2>/dev/null
}
if ! have_python_deps python3 && ! have_python_deps /usr/bin/python3; then
    echo "installing Python packages: botocore moto[server]"
    if ! python3 -m pip install --quiet botocore 'moto[server]' 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq \
            python3-botocore python3-moto python3-flask python3-flask-cors >/dev/null
    fi
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done

# ci/fuzz.sh: libFuzzer targets through cargo-fuzz (built from crates.io when missing).
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
