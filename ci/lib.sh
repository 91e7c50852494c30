# Shared by the scripts that start their own nginx (demo.sh, bench.sh, reload-test.sh,
# http2-test.sh, soak.sh).
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

# Waits up to 5 s for something to listen on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 50); do
        port_in_use "$1" && return 0
        sleep 0.1
    done
    return 1
}

# Stops the nginx master whose pid file is under prefix $1 and waits for it ($2 tenths
# of a second, 50 by default, then SIGKILL).
stop_nginx() {
    local pidfile="$1/logs/nginx.pid" pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq "${2:-50}"); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Prints the pid of the only worker of the nginx master under prefix $1; fails (with a
# message) unless there is exactly one.
master_worker() {
    local master kids
    master=$(cat "$1/logs/nginx.pid")
    kids=$(pgrep -P "$master" || true)
    if [ -z "$kids" ] || [ "$(wc -w <<<"$kids")" -ne 1 ]; then
        echo "expected exactly one worker under master $master, found: '${kids//$'\n'/ }'" >&2
        return 1
    fi
    echo "$kids"
}
