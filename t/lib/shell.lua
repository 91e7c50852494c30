-- Runs a shell command from a test without blocking the nginx worker: in a thread of
-- nginx's thread pool (ngx.run_worker_thread), for external clients such as curl
-- (Debian's nginx has no ngx.pipe). Needs `thread_pool default threads=N;` in the main
-- configuration.
local ngx = ngx
-- not in luacheck's ngx_lua standard yet (lua-nginx-module 0.10.21)
local run_worker_thread = ngx.run_worker_thread -- luacheck: ignore 143

local _M = {}


-- In the worker thread: the command's whole output.
function _M.capture(cmd)
    local f = assert(io.popen(cmd, "r"))
    local out = f:read("*a")
    f:close()
    return out
end


-- From a request: the output of `cmd` (bash), or nil and an error.
function _M.run(cmd)
    local ok, out = run_worker_thread("default", "shell", "capture",
                                          "bash -c '" .. cmd:gsub("'", "'\\''") .. "'")
    if not ok then
        return nil, out
    end
    return out
end


-- From a request: fetches `url` with curl and returns the number of bytes and the
-- SHA-256 of the body (python3 computes it, as the body arrives), or nil and an error.
function _M.fetch_digest(url)
    local out, err = run_worker_thread("default", "shell", "capture",
        "curl -s '" .. url .. "' | python3 -c 'import hashlib, sys\n"
        .. "h, n = hashlib.sha256(), 0\n"
        .. "for b in iter(lambda: sys.stdin.buffer.read(1 << 20), b\"\"):\n"
        .. "    h.update(b)\n"
        .. "    n += len(b)\n"
        .. "print(n, h.hexdigest())'")
    if not out then
        return nil, err
    end
    local ok, text = out, err
    if ok ~= true then
        return nil, text
    end
    local n, digest = text:match("^(%d+) (%x+)")
    if not n then
        return nil, "unexpected output: " .. text
    end
    return tonumber(n), digest
end


return _M
