--
-- Licensed under the Apache License, Version 2.0 (the "License").
--
-- The bridge to the native library: loading, the FFI declarations, and the wait.
--
-- This module owns `ffi.cdef` and the library handle. The declarations are the
-- cbindgen-generated header embedded in the library (one source of truth). A request
-- is submitted through the C ABI and gets a ticket; the request coroutine then waits
-- on a semaphore. One pump per worker (a timer holding a unix-socket cosocket) reads
-- the ids of finished tickets that the library's runtime writes, and posts their
-- semaphores. Nothing here blocks the nginx event loop.
--
local ffi = require("ffi")
local base = require("resty.core.base")
local semaphore = require("ngx.semaphore")
local stats = require("apisix.plugins.aws-lambda.stats")

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local ffi_string = ffi.string
local ffi_cast = ffi.cast
local tonumber = tonumber
local ipairs = ipairs
local pairs = pairs
local tab_remove = table.remove
local get_string_buf = base.get_string_buf
local get_size_ptr = base.get_size_ptr

-- `require` searches package.cpath and, when the library is missing, names every
-- path it tried.
local lib_lua = require("aws_lambda_native")

-- APISIX re-requires plugin modules on reload: declare the types only once.
if not pcall(ffi.typeof, "AwslResponse") then
    ffi.cdef(lib_lua.cdef)
end

-- The same file that `require` loaded, opened again for FFI: the loader returns the
-- same mapping, so both bindings share the library's state.
local lib_path = package.searchpath("aws_lambda_native", package.cpath)
local C = ffi.load(lib_path)

local OK = C.AWSL_OK
local AGAIN = C.AWSL_AGAIN
local DEAD = C.AWSL_DEAD
local DONE = C.AWSL_DONE
local ERROR = C.AWSL_ERROR

local _M = {
    version = lib_lua.version,
    -- Where each worker puts its completion socket: a directory the worker user can
    -- write to (workers run after nginx drops privileges).
    socket_dir = "/tmp",
}

-- Allocated once: the per-request path fills these instead of allocating.
local req = ffi.new("AwslRequest")
local lent = ffi.new("AwslOutcome")
local chunk = ffi.new("AwslChunk")
local ticket_out = ffi.new("uint32_t[1]")

-- The worker's pump and its waiters live in the Lua registry, not in this module:
-- APISIX unloads and re-requires plugin modules on reload, and a second copy of this
-- state would start a second pump that steals the first one's socket.
local registry = debug.getregistry()
local state = registry["apisix.plugins.aws-lambda.native"]
if not state then
    state = {
        waiting = {},       -- ticket id -> semaphore
        nwaiting = 0,
        free_semas = {},    -- semaphores reused across requests
        started_pid = nil,
        socket_path = nil,
        pump_running = false,
        pump_gen = 0,       -- a pump of an older runtime ends when it sees this change
        closed = false,     -- the completion socket is closed: outcomes are polled
    }
    registry["apisix.plugins.aws-lambda.native"] = state
end
local waiting = state.waiting
local free_semas = state.free_semas

-- How long the pump's read may idle; the runtime writes a heartbeat well within it.
local PUMP_READ_TIMEOUT = 60000
-- stream_next's message: a cause, or a log tail (1000 characters of up to 4 bytes) after
-- its cause or prefix. A buffer of its own, made once: get_string_buf makes a new one
-- on every call for more than its 4 KiB, and stream_next runs once per streamed piece.
local STREAM_LOG_MAX = 8192
local stream_errbuf = ffi.new("char[?]", STREAM_LOG_MAX)

local pump

-- `gen` is the runtime generation the pump serves (state.pump_gen).
local function schedule_pump(delay, gen)
    local ok, err = ngx.timer.at(delay, pump, gen)
    if not ok then
        ngx_log(ERR, "aws-lambda: cannot start the completion pump: ", err)
        state.pump_running = false
    end
end

-- Once the worker exits and nothing waits on the pump, the completion socket is
-- closed: the pump's read ends and nginx can let the worker go. Requests the exiting
-- worker still gets are served as before, but poll for their outcome.
local function close_if_idle()
    if not state.closed and state.nwaiting == 0 and ngx.worker.exiting() then
        state.closed = true
        C.awsl_worker_close_socket()
    end
end

-- A pending timer runs early ("premature") when the worker starts exiting: that is
-- the moment to stop if nothing is in flight. Otherwise the last request does it.
local function watch_exit(premature)
    if premature then
        return close_if_idle()
    end
    local ok, err = ngx.timer.at(3600, watch_exit)
    if not ok then
        ngx_log(ERR, "aws-lambda: cannot watch for the worker's exit: ", err)
    end
end

-- Lines the runtime wants in the error log (it cannot write it itself).
local function write_runtime_log()
    for _, line in ipairs(lib_lua.take_log()) do
        ngx_log(ERR, "aws-lambda: ", line)
    end
end

local LOG_MARKER = 0xffffffff

-- The runtime thread stopped and completed every ticket it held (with 503): wake all
-- their waiters. Called before a new runtime starts, so every waiter is the old one's.
local function wake_all()
    for id, sema in pairs(waiting) do
        waiting[id] = nil
        sema:post(1)
    end
    state.nwaiting = 0
end

local function post_completions(data)
    -- The runtime writes whole little-endian u32 ids (0 is a heartbeat, LOG_MARKER
    -- announces log lines); one read may end mid-id.
    local n = #data - #data % 4
    local ids = ffi_cast("const uint32_t *", data)
    for i = 0, n / 4 - 1 do
        local id = tonumber(ids[i])
        local sema = waiting[id]
        if id == LOG_MARKER then
            write_runtime_log()
        elseif sema then
            -- The pump, not the waiter, forgets the ticket: a waiter can be killed
            -- (client abort with lua_check_client_abort) and would never do it.
            waiting[id] = nil
            state.nwaiting = state.nwaiting - 1
            sema:post(1)
        end
    end
    if n < #data then
        return data:sub(n + 1)
    end
    return nil
end

-- Whether the pump should stop instead of reconnecting: the socket was closed on
-- purpose, a newer runtime has its own pump, or the runtime stopped (its waiters are
-- woken here; the next request fails fast and starts a new runtime).
local function pump_done(gen)
    if gen ~= state.pump_gen then
        return true
    end
    if state.closed then
        state.pump_running = false
        return true
    end
    if C.awsl_worker_check() == DEAD then
        wake_all()
        state.pump_running = false
        return true
    end
    return false
end

function pump(_, gen)
    local sock = ngx.socket.tcp()
    sock:settimeouts(1000, 1000, PUMP_READ_TIMEOUT)
    local ok, err = sock:connect("unix:" .. state.socket_path)
    if not ok then
        if pump_done(gen) then
            return
        end
        ngx_log(ERR, "aws-lambda: completion pump cannot connect to ", state.socket_path,
                ": ", err)
        return schedule_pump(0.1, gen)
    end
    local rest
    while true do
        local data, rerr = sock:receiveany(65536)
        if not data then
            sock:close()
            if pump_done(gen) then
                return
            end
            if ngx.worker.exiting() then
                state.pump_running = false
                return
            end
            ngx_log(ERR, "aws-lambda: completion pump lost its socket: ", rerr)
            return schedule_pump(0, gen)
        end
        if rest then
            data = rest .. data
        end
        rest = post_completions(data)
    end
end

-- Starts this worker's runtime (or, after it stopped, a new one) and records its
-- socket.
local function start_runtime()
    local dir = _M.socket_dir
    local size = 4096
    local out = get_string_buf(size)
    local len = get_size_ptr()
    len[0] = size
    if C.awsl_worker_start(dir, #dir, out, len) ~= OK then
        return nil, "cannot start the native runtime: " .. ffi_string(out, len[0])
    end
    state.socket_path = ffi_string(out, len[0])
    return true
end

local function start_pump()
    if not state.pump_running and not state.closed then
        state.pump_running = true
        schedule_pump(0, state.pump_gen)
    end
end

local function start_worker()
    local pid = ngx.worker.pid()
    if state.started_pid ~= pid then
        local ok, err = start_runtime()
        if not ok then
            return nil, err
        end
        state.started_pid = pid
        state.pump_running = false
        state.closed = false
        watch_exit()
        stats.start()
    end
    start_pump()
    return true
end

-- The runtime thread stopped (`why` names the cause): its waiters are woken (their
-- tickets hold 503), and a new runtime with a pump of its own takes over, so that the
-- next requests are served. The old pump ends when it sees the generation change.
local function restart_worker(why)
    wake_all()
    state.pump_gen = state.pump_gen + 1
    state.pump_running = false
    local ok, err = start_runtime()
    if not ok then
        return why .. "; " .. err
    end
    if state.closed then
        -- an exiting worker: its outcomes are polled, as before
        C.awsl_worker_close_socket()
    else
        start_pump()
    end
    return why .. "; a new runtime was started"
end


-- Setup-level calls, through mlua.
_M.schema = lib_lua.schema
_M.check_schema = lib_lua.check_schema
-- `stats_refused(status, too_large)`: counts a request answered without the runtime.
_M.stats_refused = lib_lua.stats_refused


-- A route handle for a checked configuration table, freed by the GC, and whether its
-- requests carry the request context (the route sends the function an event).
function _M.route_new(conf)
    local ptr, err, needs_context = lib_lua.route_new(conf)
    if not ptr then
        return nil, err
    end
    -- A Lua closure, not the C function itself, as finalizer: the handle may outlive
    -- this module's reload, and the closure keeps `C` (the library) referenced.
    return ffi.gc(ffi_cast("AwslRoute *", ptr), function(p)
        C.awsl_route_free(p)
    end), nil, needs_context
end


-- Copies the outcome that `awsl_ticket_lend` lent out of the library and ends the loan:
-- `status, head, body, log, stream`, or `nil, status, message, log, head`. `stream` is
-- the ticket's id when the body is streamed (`body` is then its first bytes: read the
-- rest with `stream_next`). Called right after the lend: nothing yields while the loan
-- is read.
local function copy_lent(id)
    local log
    if lent.log_len > 0 then
        log = ffi_string(lent.log, lent.log_len)
    end
    local head = ffi_string(lent.head, lent.head_len)
    local body = ffi_string(lent.body, lent.body_len)
    local status = tonumber(lent.status)
    local is_error = lent.is_error ~= 0
    local more = lent.more ~= 0
    C.awsl_ticket_release()
    if is_error then
        return nil, status, body, log, head
    end
    if more then
        return status, head, body, log, id
    end
    return status, head, body, log
end


-- Without the pump (the worker is exiting and its completion socket closed), the
-- outcome is polled, backing off from 1 ms to 50 ms. True once it is lent.
local function poll(id, timeout_ms)
    local deadline = ngx.now() + timeout_ms / 1000 + 1
    local delay = 0.001
    while true do
        local rc = C.awsl_ticket_lend(id, lent)
        if rc ~= AGAIN then
            return rc == OK
        end
        if ngx.now() >= deadline then
            C.awsl_ticket_cancel(id)
            return false
        end
        ngx.sleep(delay)
        delay = delay < 0.05 and delay * 2 or 0.05
    end
end


-- Waits for ticket `id` on the pump, up to `timeout_ms` and a margin of 1 s. On a
-- timeout the ticket is cancelled and `nil, err` returned.
local function wait_pump(id, timeout_ms)
    local sema = tab_remove(free_semas)
    if not sema then
        sema = semaphore.new()
    end
    waiting[id] = sema
    state.nwaiting = state.nwaiting + 1
    local waited, werr = sema:wait(timeout_ms / 1000 + 1)
    if not waited then
        if waiting[id] then
            waiting[id] = nil
            state.nwaiting = state.nwaiting - 1
        end
        -- This semaphore may still be posted: do not reuse it.
        C.awsl_ticket_cancel(id)
        close_if_idle()
        return nil, werr
    end
    free_semas[#free_semas + 1] = sema
    return true
end


-- Calls the function behind `route` and waits without blocking the worker.
-- Returns `status, head, body, log, stream` (head: `name:value\n` lines; `stream` the
-- id to pass to `stream_next` when the body is streamed, `body` then its first bytes), or
-- `nil, status, message, log, head` when the call failed (the message is for the
-- error log; head, when not nil, holds headers to answer the status with, such as
-- `Retry-After`). `log`, when not nil, is one line for the error log at info level.
-- `context` is the request context for routes that send an event (see
-- `AwslRequest.context`).
function _M.invoke(route, method, ext, query, headers, body, body_file, timeout_ms,
                   context)
    local ok, err = start_worker()
    if not ok then
        return nil, 500, err
    end

    req.method, req.method_len = method, #method
    if ext then
        req.ext, req.ext_len, req.has_ext = ext, #ext, 1
    else
        req.ext, req.ext_len, req.has_ext = nil, 0, 0
    end
    query = query or ""
    req.query, req.query_len = query, #query
    req.headers, req.headers_len = headers, #headers
    body = body or ""
    req.body, req.body_len = body, #body
    body_file = body_file or ""
    req.body_file, req.body_file_len = body_file, #body_file
    context = context or ""
    req.context, req.context_len = context, #context

    local errbuf = get_string_buf(256)
    local errlen = get_size_ptr()
    errlen[0] = 256
    local rc = C.awsl_request_submit(route, req, ticket_out, errbuf, errlen)
    if rc == DEAD then
        return nil, 503, restart_worker(ffi_string(errbuf, errlen[0]))
    end
    if rc ~= OK then
        return nil, 500, "submit failed: " .. ffi_string(errbuf, errlen[0])
    end
    local id = tonumber(ticket_out[0])

    if state.closed then
        if not poll(id, timeout_ms) then
            return nil, 504, "no answer from the native runtime within the timeout"
        end
        return copy_lent(id)
    end

    -- The runtime answers by the route's timeout; the margin only guards against a
    -- runtime that died.
    local waited, werr = wait_pump(id, timeout_ms)
    if not waited then
        ngx_log(WARN, "aws-lambda: no completion for ticket ", id, ": ", werr)
        return nil, 504, "no answer from the native runtime within the timeout"
    end

    local rc = C.awsl_ticket_lend(id, lent)
    if rc ~= OK then
        close_if_idle()
        return nil, 500, "the outcome of the request was lost"
    end
    close_if_idle()
    return copy_lent(id)
end


-- The next piece of the streamed body of ticket `id` (see `invoke`), waiting without
-- blocking the worker: a string (never empty); `nil, nil, log` at the body's end (`log`:
-- what the function logged, for the error log at info level, or nil); or `nil, err`
-- when it broke off (the function closed, reset or stayed silent for `idle_ms`; the
-- message is for the error log). Call it only once the previous piece was written and
-- flushed: the library reads on from the function only while less than 64 KiB waits.
function _M.stream_next(id, idle_ms)
    -- shared by every request's coroutine: nothing yields between the call and the read
    local errbuf = stream_errbuf
    local errlen = get_size_ptr()
    while true do
        errlen[0] = STREAM_LOG_MAX
        local rc = C.awsl_stream_next(id, chunk, errbuf, errlen)
        if rc == OK then
            return ffi_string(chunk.data, chunk.len)
        end
        if rc ~= AGAIN then
            C.awsl_ticket_release()
            close_if_idle()
            if rc == DONE then
                if errlen[0] > 0 then
                    return nil, nil, ffi_string(errbuf, errlen[0])
                end
                return nil
            end
            if rc == ERROR then
                return nil, ffi_string(errbuf, errlen[0])
            end
            return nil, "the rest of the answer was lost"
        end
        if state.closed then
            ngx.sleep(0.005)
        else
            -- The library cuts a stream silent for idle_ms; the margin only guards
            -- against a runtime that died.
            local waited, werr = wait_pump(id, idle_ms)
            if not waited then
                return nil, "no data from the native runtime: " .. werr
            end
        end
    end
end


-- Ends the stream of ticket `id` early (the client went away): the library drops the
-- rest of the body and closes the function's connection.
function _M.stream_cancel(id)
    C.awsl_ticket_cancel(id)
    C.awsl_ticket_release()
    close_if_idle()
end


-- For tests and diagnostics.
function _M.stats()
    return {
        waiting = state.nwaiting,
        free_semaphores = #free_semas,
        socket = state.socket_path,
        live_routes = lib_lua.live_routes(),
        -- tickets the runtime holds: in flight, or finished and not yet taken
        tickets = lib_lua.tickets(),
        -- runtimes started again after theirs stopped
        runtime_restarts = lib_lua.runtime_restarts(),
        -- distinct expiring credential sources that live routes use (one refresher each)
        credential_providers = lib_lua.credential_providers(),
    }
end

return _M
