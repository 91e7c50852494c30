--
-- Licensed under the Apache License, Version 2.0 (the "License").
--
-- aws-lambda: a drop-in for APISIX's plugin of the same name, on a native core.
--
-- This file owns only the APISIX contract (name, priority, version, schema,
-- check_schema, access) and the exchange with nginx: reading the client's request
-- and writing the function's response. Schema, validation, signing, the client and
-- the wait live in the native library (see apisix/plugins/aws-lambda/native.lua).
-- It needs nothing from APISIX itself, so plain OpenResty can use it too.
--
local native = require("apisix.plugins.aws-lambda.native")
local stats = require("apisix.plugins.aws-lambda.stats")

local ngx = ngx
local ngx_log = ngx.log
local ERR = ngx.ERR
local WARN = ngx.WARN
local INFO = ngx.INFO
local ngx_header = ngx.header
local ngx_print = ngx.print
local ngx_flush = ngx.flush
local ngx_exit = ngx.exit
local req_get_headers = ngx.req.get_headers
local req_get_method = ngx.req.get_method
local req_read_body = ngx.req.read_body
local req_get_body_data = ngx.req.get_body_data
local req_get_body_file = ngx.req.get_body_file
local req_http_version = ngx.req.http_version
local req_start_time = ngx.req.start_time
local pairs = pairs
local ipairs = ipairs
local type = type
local tonumber = tonumber
local floor = math.floor
local str_byte = string.byte
local UNDERSCORE = str_byte("_")
local setmetatable = setmetatable
local rawget = rawget
local tab_concat = table.concat
local str_find = string.find
local str_sub = string.sub
local new_tab = require("table.new")
local clear_tab = require("table.clear")

local plugin_name = "aws-lambda"

-- The schema is the library's (one source of truth); APISIX's Admin API reads it,
-- including `encrypt_fields`.
local schema = native.schema()

local _M = {
    -- The plugin version is the library's major.minor (Cargo.toml is the one place).
    version = tonumber(native.version:match("^(%d+%.%d+)")),
    priority = -1899,
    name = plugin_name,
    schema = schema,
}


local meta_warned = false

-- Validates `conf` and injects its defaults into it, with APISIX-style messages.
-- Needs no runtime thread: APISIX calls it on the Admin API path too.
-- APISIX's plugin loader adds its common `_meta` schema (disable, priority, filter,
-- ...) to `schema.properties` and relies on check_schema to enforce it, so `_meta`
-- is checked against that injected definition; without one `_meta` is not looked at.
function _M.check_schema(conf)
    local ok, err, warning = native.check_schema(conf, schema.properties._meta)
    if warning and not meta_warned then
        meta_warned = true
        ngx_log(WARN, plugin_name, ": ", warning)
    end
    return ok, err
end


-- Route handles by configuration table. APISIX makes a new table for each version
-- of a route's configuration, so a weak-keyed cache follows it and the GC frees
-- handles of replaced configurations.
local routes = setmetatable({}, { __mode = "k" })

-- Routes that send an event (function_name) need the request context.
local needs_context = setmetatable({}, { __mode = "k" })

-- The route handle for `conf`, nil and a message, and whether it sends an event.
local function route_for(conf)
    local route = routes[conf]
    if route then
        return route, nil, needs_context[conf]
    end
    -- Plain OpenResty callers may pass a configuration APISIX never checked: route_new
    -- validates it too, and injects the defaults that access() reads below.
    local err, context
    route, err, context = native.route_new(conf)
    if not route then
        return nil, err
    end
    routes[conf] = route
    needs_context[conf] = context
    return route, nil, context
end


-- What an event needs beyond method, headers, query and body, in the form
-- `AwslRequest.context` documents: NUL-terminated fields, then the route's path
-- parameters (APISIX's router names the `*` wildcard ":ext") as name, value pairs.
-- Each `ngx.var` read is a lookup by name, so only what nginx alone knows is read
-- here, once: the library cuts the query off the URI and formats the time.
local PROTOCOLS = {
    [0.9] = "HTTP/0.9", [1.0] = "HTTP/1.0", [1.1] = "HTTP/1.1", [2.0] = "HTTP/2.0",
    [3.0] = "HTTP/3.0",
}
local param_parts = new_tab(8, 0)

local function request_context(matched)
    local var = ngx.var
    local protocol = PROTOCOLS[req_http_version()] or var.server_protocol
    local fields = var.request_uri .. "\0" .. var.remote_addr .. "\0" .. var.request_id
                   .. "\0" .. protocol .. "\0" .. var.host .. "\0"
                   .. floor(req_start_time() * 1000) .. "\0"
                   .. (matched and matched._path or "") .. "\0"
    if not matched then
        return fields
    end
    local n = 0
    for name, value in pairs(matched) do
        if type(name) == "string" and type(value) == "string"
           and str_byte(name, 1) ~= UNDERSCORE then
            param_parts[n + 1] = name
            param_parts[n + 2] = value
            n = n + 2
        end
    end
    if n == 0 then
        return fields
    end
    param_parts[n + 1] = ""
    local blob = fields .. tab_concat(param_parts, "\0", 1, n + 1)
    clear_tab(param_parts)
    return blob
end


-- The client's headers as `name:value\n` lines; repeated headers stay repeated. The
-- pieces go into one reused table and are joined once: no string per line.
local header_parts = new_tab(128, 0)

local function request_headers(headers)
    local n = 0
    for name, value in pairs(headers) do
        if type(value) == "table" then
            for _, v in ipairs(value) do
                header_parts[n + 1] = name
                header_parts[n + 2] = ":"
                header_parts[n + 3] = v
                header_parts[n + 4] = "\n"
                n = n + 4
            end
        else
            header_parts[n + 1] = name
            header_parts[n + 2] = ":"
            header_parts[n + 3] = value
            header_parts[n + 4] = "\n"
            n = n + 4
        end
    end
    local blob = tab_concat(header_parts, "", 1, n)
    clear_tab(header_parts)
    return blob
end


-- The function's headers by name (a repeated one as a list of values), reused.
local resp_headers = new_tab(0, 16)

local function set_response_headers(head)
    local pos = 1
    local len = #head
    local seen = resp_headers
    -- emptied first, so that nothing of an earlier request can remain in it
    clear_tab(seen)
    while pos <= len do
        local colon = str_find(head, ":", pos, true)
        local eol = str_find(head, "\n", colon, true)
        local name = str_sub(head, pos, colon - 1)
        local value = str_sub(head, colon + 1, eol - 1)
        local prev = seen[name]
        if prev == nil then
            seen[name] = value
        elseif type(prev) == "table" then
            prev[#prev + 1] = value
        else
            seen[name] = { prev, value }
        end
        pos = eol + 1
    end
    for name, value in pairs(seen) do
        ngx_header[name] = value
    end
end


-- Writes a streamed answer to the client as it arrives: the head and first bytes, then
-- each piece once the previous one was flushed (ngx.flush(true) waits for the client,
-- and only then is the next piece asked for: backpressure). Ends the request itself,
-- as APISIX's ai-proxy does; other plugins' header_filter, body_filter and log phases
-- still run. A body that breaks off after the head was sent cannot become a 5xx: the
-- cause is logged and the connection is cut (no last chunk on HTTP/1.1, RST_STREAM on
-- HTTP/2), so the client can tell a cut answer from a whole one.
local function send_stream(conf, status, head, first, stream)
    ngx.status = status
    set_response_headers(head)
    -- The head goes out at once, with the first bytes if there are any.
    local ok, err
    if first ~= "" then
        ok, err = ngx_print(first)
    else
        ok, err = ngx.send_headers()
    end
    if ok then
        ok, err = ngx_flush(true)
    end
    while ok do
        local chunk, serr, log = native.stream_next(stream, conf.stream_idle_timeout)
        if not chunk then
            if log then
                ngx_log(INFO, plugin_name, ": ", log)
            end
            if serr then
                ngx_log(ERR, "failed to process ", plugin_name,
                        ", err: the function's answer broke off after it began: ", serr)
                return ngx_exit(ngx.ERROR)
            end
            return ngx_exit(ngx.HTTP_OK)
        end
        ok, err = ngx_print(chunk)
        -- The piece is garbage now: have the GC keep up with the body's pace, so
        -- that a long stream does not pile up megabytes of dead pieces.
        collectgarbage("step", #chunk / 1024)
        if ok then
            ok, err = ngx_flush(true)
        end
    end
    -- The client went away: the library drops the rest and the function's connection.
    native.stream_cancel(stream)
    ngx_log(INFO, plugin_name, ": the client went away during a streamed answer: ", err)
    return ngx_exit(ngx.ERROR)
end


function _M.access(conf, ctx)
    local route, err, sends_event = route_for(conf)
    if not route then
        ngx_log(ERR, "failed to process ", plugin_name, ": invalid configuration: ", err)
        native.stats_refused(500, false)
        return 500
    end

    -- Refuse early when the length is known; a chunked body is checked once read.
    local headers = req_get_headers(0)
    local max_body = conf.max_req_body_size
    -- rawget: the names are lowercase already, and a miss through the table's
    -- metatable would normalise the name again
    local length = tonumber(rawget(headers, "content-length"))
    if length and length > max_body then
        ngx_log(ERR, "failed to process ", plugin_name, ": request body of ", length,
                " bytes is larger than max_req_body_size (", max_body, ")")
        native.stats_refused(413, true)
        return 413
    end
    req_read_body()
    local body = req_get_body_data()
    local body_file
    if not body then
        body_file = req_get_body_file()
    end
    if body and #body > max_body then
        ngx_log(ERR, "failed to process ", plugin_name, ": request body of ", #body,
                " bytes is larger than max_req_body_size (", max_body, ")")
        native.stats_refused(413, true)
        return 413
    end

    local matched = ctx and ctx.curr_req_matched
    local ext = matched and matched[":ext"]
    local method = req_get_method()

    local context
    if sends_event then
        context = request_context(matched)
    end

    local status, head, res_body, log, err_head = native.invoke(route, method, ext,
                                                                ngx.var.args,
                                                                request_headers(headers),
                                                                body,
                                                                body_file, conf.timeout,
                                                                context)
    if log then
        ngx_log(INFO, plugin_name, ": ", log)
    end
    if not status then
        -- `head` is the failure status, `res_body` the message (no secrets in it);
        -- `err_head` the headers that go with the status (Retry-After).
        ngx_log(ERR, "failed to process ", plugin_name, ", err: ", res_body)
        if err_head and err_head ~= "" then
            set_response_headers(err_head)
        end
        return head
    end

    if err_head then
        -- `err_head` is the stream's id: the body is still coming.
        return send_stream(conf, status, head, res_body, err_head)
    end
    set_response_headers(head)
    if method ~= "HEAD" then
        ngx_header["Content-Length"] = #res_body
    end
    return status, res_body
end


-- The runtime's state for operators on APISIX's control API (port 9090 by default),
-- covering every worker (see apisix/plugins/aws-lambda/stats.lua).
function _M.control_api()
    return {
        {
            methods = { "GET" },
            uris = { "/v1/plugin/aws-lambda/stats" },
            handler = function()
                ngx_header["Content-Type"] = "application/json"
                return 200, stats.json()
            end,
        },
        {
            methods = { "GET" },
            uris = { "/v1/plugin/aws-lambda/metrics" },
            handler = function()
                ngx_header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
                return 200, stats.prometheus()
            end,
        },
    }
end


return _M
