--
-- Licensed under the Apache License, Version 2.0 (the "License").
--
-- The runtime's state for operators, across all workers of this nginx.
--
-- Each worker counts in its own process (the native library's per-worker counters,
-- lock-free on the request path). Once a worker's runtime has started, the worker
-- publishes a snapshot of its counters every second into a shared dict, under a key
-- of its pid that expires after a few seconds, so exited workers drop out. A report
-- merges the other workers' snapshots with the reading worker's own, taken at that
-- moment: other workers' numbers are at most about a second old.
--
-- The dict is `aws-lambda-stats` when declared (`lua_shared_dict aws-lambda-stats 1m;`,
-- or in APISIX `nginx_config.http.custom_lua_shared_dict`), else APISIX's own
-- `internal-status` (under keys of its own prefix). With neither, a report covers the
-- reading worker only, and says so (`all_workers: false`).
--
local lib_lua = require("aws_lambda_native")

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local ipairs = ipairs
local str_sub = string.sub

local _M = {
    -- Tried in this order.
    dicts = { "aws-lambda-stats", "internal-status" },
    -- Seconds between two snapshots of a worker.
    publish_every = 1,
}

local PREFIX = "aws-lambda-stats:worker:"
-- A snapshot outlives a few missed publications, not a worker's exit by much.
local TTL = 5

local warned_no_dict = false

local function dict()
    for _, name in ipairs(_M.dicts) do
        local d = ngx.shared[name]
        if d then
            return d, name
        end
    end
    if not warned_no_dict then
        warned_no_dict = true
        ngx_log(WARN, "aws-lambda: no lua_shared_dict ", _M.dicts[1],
                ": the stats cover only the worker that answers")
    end
    return nil
end


local function publish(premature)
    if premature then
        return
    end
    local d, name = dict()
    if not d then
        return
    end
    local ok, err = d:set(PREFIX .. ngx.worker.pid(), lib_lua.stats_snapshot(), TTL)
    if not ok then
        ngx_log(ERR, "aws-lambda: cannot publish the stats to lua_shared_dict ", name, ": ",
                err)
    end
end


-- Starts publishing this worker's snapshots; called once per worker, when its runtime
-- starts.
function _M.start()
    if not dict() then
        return
    end
    publish()
    local ok, err = ngx.timer.every(_M.publish_every, publish)
    if not ok then
        ngx_log(ERR, "aws-lambda: cannot start publishing the stats: ", err)
    end
end


local function report(format)
    local list = { lib_lua.stats_snapshot() }
    local d = dict()
    if d then
        local own = PREFIX .. ngx.worker.pid()
        -- 0: all keys; the dict holds one per worker (and, when it is APISIX's
        -- internal-status, a few of APISIX's own).
        for _, key in ipairs(d:get_keys(0)) do
            if key ~= own and str_sub(key, 1, #PREFIX) == PREFIX then
                local snapshot = d:get(key)
                if snapshot then
                    list[#list + 1] = snapshot
                end
            end
        end
    end
    local out, errors = lib_lua.stats_report(list, format, d ~= nil)
    for _, err in ipairs(errors) do
        ngx_log(ERR, "aws-lambda: ", err)
    end
    return out
end


-- The stats of all workers as a Lua table (the same fields as `json()`).
function _M.collect()
    return report("table")
end


-- The stats of all workers as JSON text.
function _M.json()
    return report("json")
end


-- The stats of all workers in Prometheus's text format (version 0.0.4).
function _M.prometheus()
    return report("prometheus")
end


return _M
