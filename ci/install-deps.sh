#!/usr/bin/env bash
# Installs what is missing on Debian 12, skipping what is present. Idempotent; needs root
# (or sudo) for apt-get.
#
#   ci/install-deps.sh          # building and running: nginx + lua module, botocore (ci/demo.sh)
#   ci/install-deps.sh --test   # and testing: linters, the Test::Nginx runner, wrk,
#                               #   luarocks, moto, rustfmt and clippy (ci/test.sh)
# The fuzzing tools (cargo-fuzz) are ci/fuzz.sh's own.
set -euo pipefail

tests=0
case "${1:-}" in
    "") ;;
    --test) tests=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

APT_PACKAGES=(
    nginx-light libnginx-mod-http-lua libnginx-mod-http-ndk  # nginx 1.22 + lua-nginx-module 0.10.23 + luajit2
    curl ca-certificates make binutils                       # binutils: objcopy splits the debug info off
)
if ((tests)); then
    APT_PACKAGES+=(
        lua-check                                                # luacheck
        libtest-base-perl libtext-diff-perl liblist-moreutils-perl  # the Test::Nginx-format runner
        wrk                                                      # ci/reload-test.sh, ci/bench.sh
        luarocks lua5.1                                          # ci/install-test.sh: the rocks
        git                                                      # ci/clean-clone-test.sh
        tinyproxy                                                # t/47-proxy.t: a real forward proxy
    )
fi

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
# moto's server plays STS for the credential tests (tests only). pip where python3 allows
# it; Debian's own python3 (PEP 668) gets Debian's packages, and t/TestAWSLambda.pm and
# ci/demo.sh fall back to /usr/bin/python3.
if ((tests)); then
    modules="botocore, moto, flask, flask_cors"
    pip_packages=(botocore 'moto[server]')
    deb_packages=(python3-botocore python3-moto python3-flask python3-flask-cors)
else
    modules="botocore"
    pip_packages=(botocore)
    deb_packages=(python3-botocore)
fi
have_python_deps() {
    "$1" -c "import $modules" 2>/dev/null
}
if ! have_python_deps python3 && ! have_python_deps /usr/bin/python3; then
    echo "installing Python packages: ${pip_packages[*]}"
    if ! python3 -m pip install --quiet "${pip_packages[@]}" 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${deb_packages[@]}" >/dev/null
    fi
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
if ((tests)); then
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            rustup component add "$component"
        fi
    done
fi
