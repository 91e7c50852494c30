-- The version is Cargo.toml's (the one place it is set); ci/install-test.sh fails
-- when this file's name, `version` or source url disagrees with it or with the library.
rockspec_format = "3.0"
package = "aws-lambda-native"
version = "0.1.0-1"

source = {
    -- The release tarball `make dist` writes (dist/, with its .sha256). `make dist` also
    -- writes this rockspec with the tarball's md5 added, and the source rock that bundles
    -- both: `luarocks install aws-lambda-native-0.1.0-1.src.rock` checks the md5 and
    -- builds from it, on any machine. A relative url is read from the current directory,
    -- as `luarocks pack` in dist/ does. `luarocks make` in a clone fetches nothing.
    url = "aws-lambda-native-0.1.0.tar.gz",
    dir = "aws-lambda-native-0.1.0",
}

description = {
    summary = "Native (Rust) aws-lambda plugin for Apache APISIX and OpenResty",
    detailed = [[
A drop-in for APISIX's aws-lambda plugin (same name, priority, configuration): the
route proxies to an AWS Lambda function URL or API Gateway endpoint, authorised with
an API key or AWS Signature V4. Signing, the connection pool and the wait run in a
Rust library off the nginx event loop; a thin Lua shim adapts it to APISIX or plain
OpenResty. Building needs a Rust toolchain (cargo); installs apisix/plugins/aws-lambda.lua,
its helpers under apisix/plugins/aws-lambda/ and the aws_lambda_native library.
]],
    license = "Apache-2.0",
    labels = { "apisix", "openresty", "aws", "lambda", "plugin" },
}

supported_platforms = { "linux" }

-- Nothing from a rocks server: LuaJIT/OpenResty (lua-resty-core, ngx.semaphore) come
-- with the gateway, the Rust crates with cargo.
dependencies = {
    "lua ~> 5.1",
}

build = {
    type = "make",
    -- `make` runs cargo and stages build/lib/aws_lambda_native.so; `make install`
    -- copies lua/ recursively into the rock's lua directory and the library into its
    -- lib directory (luarocks then deploys them to share/lua/5.1 and lib/lua/5.1).
    -- CFLAGS only silences luarocks' warning: cargo builds with the caller's own
    -- environment (see the Makefile), so a rock build reuses a plain cargo build.
    build_variables = {
        CFLAGS = "$(CFLAGS)",
    },
    install_variables = {
        PREFIX = "$(PREFIX)",
        LUADIR = "$(LUADIR)",
        LIBDIR = "$(LIBDIR)",
    },
}
