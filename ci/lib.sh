# Shared by the scripts that start their own nginx (demo.sh, bench.sh, reload-test.sh,
# http2-test.sh).
# Source it after `cd` to the project root.

# The main-context lines that load lua-nginx-module (and NDK) into Debian's nginx.
NGINX_LUA_MODULES="/usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so"
NGINX_LOAD_MODULES=""
for m in $NGINX_LUA_MODULES; do NGINX_LOAD_MODULES+="load_module $m;"$'\n'; done

# Workers must read this checkout, which may sit in a directory only its owner can
# enter (a fresh clone in a private temporary directory): as root, run them as root.
NGINX_WORKER_USER=""
[ "$(id -u)" -ne 0 ] || NGINX_WORKER_USER="user root;"

# Whether something listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
