--
-- Licensed under the Apache License, Version 2.0 (the "License").
--
-- Plain OpenResty use, without APISIX: run the plugin for the current request the
-- way APISIX runs it in its access phase.
--
--   location /fn/ {
--       access_by_lua_block {
--           require("apisix.plugins.aws-lambda.openresty").run({
--               function_uri = "https://xxx.execute-api.us-east-1.amazonaws.com/default/fn",
--               authorization = { apikey = "..." },
--           }, ngx.var.uri:sub(#"/fn/"))
--       }
--   }
--
local plugin = require("apisix.plugins.aws-lambda")

local ngx = ngx

local _M = {}


-- `conf` is the plugin configuration (defaults are injected on first use); `ext` is
-- the path suffix to append to function_uri (APISIX's `ctx.curr_req_matched[":ext"]`);
-- `route`, optional, the location's path pattern in APISIX's notation (`/fn/*`),
-- which an event (function_name) reports as its resource.
function _M.run(conf, ext, route)
    local ctx = { curr_req_matched = { [":ext"] = ext, _path = route } }
    local code, body = plugin.access(conf, ctx)
    if not code then
        return
    end
    -- What APISIX's core.response.exit does with an access handler's result.
    ngx.status = code
    if body then
        ngx.print(body)
    end
    return ngx.exit(code)
end


return _M
