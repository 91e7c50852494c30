--
-- Licensed under the Apache License, Version 2.0 (the "License").
--
-- ci/bench.sh's "floor" variant: the least a Lua client on nginx cosockets must do for
-- one HTTP/1.1 exchange (connect or reuse from the pool, send a GET, read the status
-- line, the headers and a Content-Length body, put the connection back), the way
-- APISIX's own aws-lambda plugin talks to the function through lua-resty-http. No
-- chunked encoding, no request headers or body forwarded, no signing: every real
-- client does at least this much, so no Lua client can be cheaper.
--
local ngx = ngx
local tcp = ngx.socket.tcp
local str_find = string.find
local str_sub = string.sub
local str_lower = string.lower
local tonumber = tonumber

local _M = {}

-- The TLS session of the last handshake, offered to the next one (per worker).
local tls_session

local function fail(msg, err)
    ngx.log(ngx.ERR, "bench floor: ", msg, ": ", err)
    return ngx.exit(502)
end

-- `host`, `port`: the function; `prefix`: path prepended to `ext`; `pool`: idle
-- connections kept (the bench sets it above the connection count, so no exchange pays a
-- connect and this stays a floor); `tls_name`: speak HTTPS, verifying the certificate
-- for that name and resuming the session of the last handshake.
function _M.run(host, port, prefix, ext, pool, tls_name)
    local sock = tcp()
    sock:settimeouts(3000, 3000, 3000)
    -- One pool per size: locations that differ only in their pool size must not share
    -- one (its size is fixed by whichever makes it first).
    local ok, err = sock:connect(host, port, { pool = host .. ":" .. port .. ":" .. pool })
    if not ok then
        return fail("connect", err)
    end
    if tls_name and sock:getreusedtimes() == 0 then
        local session
        session, err = sock:sslhandshake(tls_session, tls_name, true)
        if not session then
            return fail("TLS handshake", err)
        end
        tls_session = session
    end
    local bytes
    bytes, err = sock:send("GET " .. prefix .. ext .. " HTTP/1.1\r\nHost: " .. host .. ":"
                           .. port .. "\r\n\r\n")
    if not bytes then
        return fail("send", err)
    end

    local line
    line, err = sock:receive("*l")
    if not line then
        return fail("status line", err)
    end
    local status = tonumber(str_sub(line, 10, 12))

    local len, ctype
    local keepalive = true
    while true do
        line, err = sock:receive("*l")
        if not line then
            return fail("header", err)
        end
        if line == "" then
            break
        end
        local colon = str_find(line, ":", 1, true)
        if colon then
            local name = str_lower(str_sub(line, 1, colon - 1))
            if name == "content-length" then
                len = tonumber(str_sub(line, colon + 1))
            elseif name == "content-type" then
                ctype = str_sub(line, colon + 2)
            elseif name == "connection" then
                keepalive = not str_find(str_lower(line), "close", colon, true)
            end
        end
    end
    if not len then
        return fail("response", "no Content-Length")
    end

    local body
    body, err = sock:receive(len)
    if not body then
        return fail("body", err)
    end
    if keepalive then
        sock:setkeepalive(60000, pool)
    else
        sock:close()
    end

    ngx.status = status
    if ctype then
        ngx.header["Content-Type"] = ctype
    end
    ngx.header["Content-Length"] = len
    ngx.print(body)
    return ngx.exit(status)
end

return _M
