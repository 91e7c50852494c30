#!/usr/bin/env bash
# Installs the plugin as a user would, offline, and runs part of the t/ suite against
# the installed copy instead of the source tree:
#   1. the versions agree: Cargo.toml, the rockspec's file name, `version` and source url,
#      and CHANGELOG.md; later the installed library's and plugin's own reports;
#   2. `luarocks make` from this clone into a temporary tree (cargo reuses target/);
#   3. `luarocks pack` of that installed rock (a binary rock), installed into a tree of
#      its own with cargo hidden from PATH (a gateway has no Rust toolchain); its library
#      is stripped and under 10 MB;
#   3b. `make dist` (ci/dist.sh): the release tarball, its rockspec with the md5, and the
#      source rock, installed with `luarocks install` into another tree, building with
#      cargo again (in a copy of target/release);
#   4. in each tree, the library and the plugin report the Cargo.toml version, and nginx
#      loads every module and the library from that tree;
#   5. t/20-apikey.t (still without cargo on PATH) against the binary rock's tree, and
#      t/30-sigv4.t against the source rock's, with lua/ and build/lib/ replaced by the
#      tree (TEST_AWSL_LUA_DIR / TEST_AWSL_LIB_DIR, see t/TestAWSLambda.pm), so a file
#      missing from a rock fails them.
# Offline: luarocks may only use an empty directory as its rocks server, cargo runs with
# CARGO_NET_OFFLINE (run ci/build.sh first; ci/test.sh does), and where `unshare -n`
# works the luarocks steps run without any network at all.
# Prints a few lines; on failure, the end of the log and where the rest is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export CARGO_NET_OFFLINE=true
nginx_bin=${TEST_NGINX_BINARY:-/usr/sbin/nginx}
modules=${TEST_NGINX_LOAD_MODULES:-/usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so}

work=$(mktemp -d /tmp/aws-lambda-install.XXXXXX)
log=$work/log
: >"$log"
keep=""
trap '[ -n "$keep" ] || rm -rf "$work"' EXIT

fail() {
    keep=1
    {
        echo "install test FAILED: $*"
        tail -n 30 "$log" | sed 's/^/  | /'
        echo "log, trees and rocks kept in $work"
    } >&2
    exit 1
}

# Runs a command with its output in the log.
run() {
    echo "\$ $*" >>"$log"
    "$@" >>"$log" 2>&1 || fail "$*"
}

# luarocks with no rocks server and, where possible, no network.
mkdir -p "$work/no-server"
netless=()
if unshare -n true 2>/dev/null; then
    netless=(unshare -n)
fi
rocks() {
    run "${netless[@]}" luarocks --lua-version=5.1 --only-server="$work/no-server" "$@"
}

# 1. versions
version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' \
              Cargo.toml)
[ -n "$version" ] || fail "no [package] version in Cargo.toml"
shopt -s nullglob
rockspecs=(rockspec/aws-lambda-native-*.rockspec)
shopt -u nullglob
[ ${#rockspecs[@]} -eq 1 ] || fail "expected exactly one rockspec/aws-lambda-native-*.rockspec"
rockspec=${rockspecs[0]}
rock_version=${rockspec#rockspec/aws-lambda-native-}
rock_version=${rock_version%.rockspec}
[ "${rock_version%-*}" = "$version" ] \
    || fail "$rockspec is version ${rock_version%-*}, Cargo.toml says $version"
grep -qxF "version = \"$rock_version\"" "$rockspec" \
    || fail "$rockspec: its version field is not \"$rock_version\""
grep -qxF "    url = \"aws-lambda-native-$version.tar.gz\"," "$rockspec" \
    || fail "$rockspec: its source url is not \"aws-lambda-native-$version.tar.gz\""
grep -qE "^## \\[?${version//./\\.}\\]?( |$)" CHANGELOG.md \
    || fail "CHANGELOG.md has no '## $version' section"
series=$(echo "$version" | cut -d. -f1,2)

# What nginx loads from a tree: versions, and the file each module and the library came
# from (the source of a function of each module, the mapped library). init_by_lua runs
# while nginx reads its configuration, before it opens sockets or forks: it reports and
# ends the process (`nginx -t` would skip it).
probe() {
    local tree=$1 dir=$work/probe-${1##*/}
    mkdir -p "$dir/conf" "$dir/logs"
    {
        for m in $modules; do echo "load_module $m;"; done
        cat <<EOF
error_log logs/error.log;
events {}
http {
    lua_package_path "$tree/share/lua/5.1/?.lua;;";
    lua_package_cpath "$tree/lib/lua/5.1/?.so;;";
    init_by_lua_block {
        local out = assert(io.open("$dir/out", "w"))
        local lib = require("aws_lambda_native")
        local plugin = require("apisix.plugins.aws-lambda")
        local native = require("apisix.plugins.aws-lambda.native")
        local openresty = require("apisix.plugins.aws-lambda.openresty")
        out:write("library ", lib.version, "\n", "plugin ", tostring(plugin.version), "\n")
        for _, f in ipairs({ plugin.access, native.invoke, openresty.run }) do
            out:write("file ", (debug.getinfo(f, "S").source:gsub("^@", "")), "\n")
        end
        for line in io.lines("/proc/self/maps") do
            local path = line:match("%s(/%S*aws_lambda_native%S*)$")
            if path then
                out:write("file ", path, "\n")
                break
            end
        end
        out:close()
        os.exit(0)
    }
}
EOF
    } >"$dir/conf/nginx.conf"
    run timeout 60 "$nginx_bin" -p "$dir" -c conf/nginx.conf -g 'daemon off; master_process off;'
    grep -qxF "library $version" "$dir/out" \
        || fail "$tree: the library reports $(grep '^library' "$dir/out"), not $version"
    grep -qxF "plugin $series" "$dir/out" \
        || fail "$tree: the plugin reports $(grep '^plugin' "$dir/out"), not $series"
    [ "$(grep -c '^file ' "$dir/out")" -eq 4 ] || fail "$tree: not every file was found"
    if grep '^file ' "$dir/out" | grep -vq "^file $tree/"; then
        fail "$tree: loaded from elsewhere: $(grep '^file ' "$dir/out" | grep -v "^file $tree/")"
    fi
    luarocks --lua-version=5.1 --tree "$tree" list --porcelain aws-lambda-native >"$dir/list" 2>>"$log" \
        || fail "luarocks --tree $tree list"
    grep -qP "^aws-lambda-native\t\Q$rock_version\E\tinstalled\t" "$dir/list" \
        || fail "$tree: aws-lambda-native $rock_version is not listed as installed"
}

echo "versions agree: $version (Cargo.toml, $rockspec, CHANGELOG.md)"

# 2. luarocks make from the clone (4. is in probe)
rocks --tree "$work/make" make "$rockspec"
probe "$work/make"

# 3. binary rock: pack what was installed, install it elsewhere
mkdir -p "$work/rocks"
cd "$work/rocks"
rocks --tree "$work/make" pack aws-lambda-native "$rock_version"
cd "$root"
bin_rock=""
for f in "$work/rocks/aws-lambda-native-$rock_version".*.rock; do
    [ -f "$f" ] && [ "${f%.src.rock}" = "$f" ] && bin_rock=${f##*/}
done
[ -n "$bin_rock" ] || fail "luarocks pack made no binary rock"
# PATH without any directory that holds cargo, rustc or rustup.
nocargo_path=$(tr ':' '\n' <<<"$PATH" | while read -r d; do
    [ -n "$d" ] && ! [ -x "$d/cargo" ] && ! [ -x "$d/rustc" ] && ! [ -x "$d/rustup" ] && echo "$d"
done | paste -sd:)
PATH=$nocargo_path command -v cargo >/dev/null && fail "cargo is still on the reduced PATH"
PATH=$nocargo_path rocks --tree "$work/bin" install "$work/rocks/$bin_rock"
probe "$work/bin"
bin_lib=$work/bin/lib/lua/5.1/aws_lambda_native.so
bin_size=$(stat -c %s "$bin_lib")
[ "$bin_size" -lt $((10 * 1024 * 1024)) ] || fail "the rock's library is $bin_size bytes (>= 10 MB)"
if readelf -S "$bin_lib" | grep -q '\.debug_info'; then
    fail "the rock's library is not stripped (it has .debug_info)"
fi
echo "binary rock installed without cargo on PATH: library $((bin_size / 1024)) KiB, stripped"

# 3b. source rock: `make dist` packs every tracked file of this work tree (uncommitted
# changes included; an untracked file is left out, as from a release)
run make --no-print-directory dist
src_rock=aws-lambda-native-$rock_version.src.rock
[ -f "dist/$src_rock" ] || fail "make dist made no $src_rock"
run cp "dist/$src_rock" "$work/rocks/"
(cd dist && sha256sum --quiet -c "aws-lambda-native-$version.tar.gz.sha256") >>"$log" 2>&1 \
    || fail "dist: the tarball does not match its .sha256"
# It builds in a copy of target/release: cargo reuses the compiled dependencies, and
# the clone's own target/ is left as the clone's builds made it. The copy is taken under
# cargo's lock on that directory, so no build writes to it meanwhile.
if [ -d "$CARGO_TARGET_DIR/release" ]; then
    run mkdir -p "$work/target"
    run flock "$CARGO_TARGET_DIR/release/.cargo-lock" cp -a "$CARGO_TARGET_DIR/release" "$work/target/"
fi
CARGO_TARGET_DIR=$work/target rocks --tree "$work/tree" install "$work/rocks/$src_rock"
probe "$work/tree"
echo "luarocks make, and luarocks pack + install of $bin_rock and $src_rock, offline:" \
     "library $version, plugin $series, every file loaded from the rock tree"

# 5. part of the suite against each installed rock
against() {
    local tree=$1 t=$2 name=${2##*/}
    shift 2
    set +e
    env "$@" TEST_AWSL_LUA_DIR="$tree/share/lua/5.1" TEST_AWSL_LIB_DIR="$tree/lib/lua/5.1" \
        TEST_NGINX_SERVROOT="$work/servroot" TEST_NGINX_MOCK_LOG="$work/mock.log" \
        TEST_NGINX_BINARY="$nginx_bin" \
        prove -I. -It/runner "$t" >"$work/prove-$name.log" 2>&1
    local status=$?
    set -e
    cat "$work/prove-$name.log" >>"$log"
    [ $status -eq 0 ] || fail "$t against the rock installed in $tree"
    echo "$t against the rock in ${tree##*/}/: " \
         "$(grep -o 'Tests=[0-9]*' "$work/prove-$name.log" | head -1 | cut -d= -f2) tests ok"
}
against "$work/bin" t/20-apikey.t PATH="$nocargo_path"
against "$work/tree" t/30-sigv4.t
