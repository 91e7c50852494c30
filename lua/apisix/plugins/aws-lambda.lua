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
local req_get_headers = ngx.req.get_headers
local req_get_method = ngx.req.get_method
local req_read_body = ngx.req.read_body
local req_get_body_data = ngx.req.get_body_data
local req_get_body_file = ngx.req.get_body_file
local pairs = pairs
local ipairs = ipairs
local type = type
local tonumber = tonumber
local tostring = tostring
local floor = math.floor
local str_byte = string.byte
local UNDERSCORE = str_byte("_")
local setmetatable = setmetatable
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
local context_parts = new_tab(16, 0)

local function request_context(matched)
    local var = ngx.var
    local path = var.request_uri
    local q = str_find(path, "?", 1, true)
    if q then
        path = str_sub(path, 1, q - 1)
    end
    context_parts[1] = path
    context_parts[2] = var.remote_addr
    context_parts[3] = var.request_id
    context_parts[4] = var.server_protocol
    context_parts[5] = var.host
    context_parts[6] = var.time_local
    context_parts[7] = tostring(floor(ngx.req.start_time() * 1000))
    context_parts[8] = matched and matched._path or ""
    local n = 8
    if matched then
        for name, value in pairs(matched) do
            if type(name) == "string" and type(value) == "string"
               and str_byte(name, 1) ~= UNDERSCORE then
                context_parts[n + 1] = name
                context_parts[n + 2] = value
                n = n + 2
            end
        end
    end
    context_parts[n + 1] = ""
    local blob = tab_concat(context_parts, "\0", 1, n + 1)
    clear_tab(context_parts)
    return blob
end


-- The client's headers as `name:value\n` lines; repeated headers stay repeated.
local header_lines = new_tab(32, 0)

local function request_headers()
    local headers = req_get_headers(0)
    local n = 0
    for name, value in pairs(headers) do
        if type(value) == "table" then
            for _, v in ipairs(value) do
                n = n + 1
                header_lines[n] = name .. ":" .. v .. "\n"
            end
        else
            n = n + 1
            header_lines[n] = name .. ":" .. value .. "\n"
        end
    end
    local blob = tab_concat(header_lines, "", 1, n)
    clear_tab(header_lines)
    return blob
end


local function set_response_headers(head)
    local pos = 1
    local len = #head
    local seen = {}
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


function _M.access(conf, ctx)
    local route, err, sends_event = route_for(conf)
    if not route then
        ngx_log(ERR, "failed to process ", plugin_name, ": invalid configuration: ", err)
        native.stats_refused(500, false)
        return 500
    end

    -- Refuse early when the length is known; a chunked body is checked once read.
    local max_body = conf.max_req_body_size
    local length = tonumber(ngx.var.http_content_length)
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
                                                                request_headers(), body,
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
