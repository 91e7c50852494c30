-- A minimal HTTP/1.1 client on a cosocket, for tests that send many or unusual
-- requests to the server under test (concurrency, chunked bodies, raw requests).
local ngx = ngx
local tonumber = tonumber
local str_format = string.format
local tab_concat = table.concat

local _M = {}


-- Reads a response's status line and headers: `status, headers` (names lowercase, a
-- repeated header as a list of its values), or `nil, err`.
function _M.read_head(sock)
    local line, err = sock:receive("*l")
    if not line then
        return nil, "status line: " .. tostring(err)
    end
    local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
    if not status then
        return nil, "bad status line: " .. line
    end
    local headers = {}
    while true do
        local h
        h, err = sock:receive("*l")
        if not h then
            return nil, "headers: " .. tostring(err)
        end
        if h == "" then
            break
        end
        local name, value = h:match("^([^:]+):%s*(.-)%s*$")
        if name then
            name = name:lower()
            local prev = headers[name]
            if prev == nil then
                headers[name] = value
            elseif type(prev) == "table" then
                prev[#prev + 1] = value
            else
                headers[name] = { prev, value }
            end
        end
    end
    return status, headers
end


local function read_response(sock)
    local status, headers = _M.read_head(sock)
    if not status then
        return nil, headers
    end
    local body, err
    local length = tonumber(headers["content-length"])
    if length then
        body, err = sock:receive(length)
    elseif headers["transfer-encoding"] == "chunked" then
        local parts = {}
        while true do
            local size_line
            size_line, err = sock:receive("*l")
            if not size_line then
                break
            end
            local size = tonumber(size_line:match("^%x+"), 16)
            if not size or size == 0 then
                sock:receive("*l")
                break
            end
            local chunk = sock:receive(size)
            if not chunk then
                break
            end
            parts[#parts + 1] = chunk
            sock:receive("*l")
        end
        body = tab_concat(parts)
    else
        body, err = sock:receive("*a")
    end
    if not body then
        return nil, "body: " .. tostring(err)
    end
    return { status = status, headers = headers, body = body }
end


-- Sends `raw` (a complete request) to the server under test and reads one response.
function _M.raw(raw, port, timeout)
    local sock = ngx.socket.tcp()
    sock:settimeout(timeout or 5000)
    local ok, err = sock:connect("127.0.0.1", port or ngx.var.server_port)
    if not ok then
        return nil, "connect: " .. err
    end
    ok, err = sock:send(raw)
    if not ok then
        return nil, "send: " .. err
    end
    local res
    res, err = read_response(sock)
    sock:close()
    return res, err
end


-- request{method=, path=, headers={name=value}, body=, port=, timeout=}
function _M.request(opts)
    local body = opts.body
    local lines = { str_format("%s %s HTTP/1.1", opts.method or "GET", opts.path),
                    "Host: localhost", "Connection: close" }
    for name, value in pairs(opts.headers or {}) do
        lines[#lines + 1] = name .. ": " .. value
    end
    if body then
        lines[#lines + 1] = "Content-Length: " .. #body
    end
    return _M.raw(tab_concat(lines, "\r\n") .. "\r\n\r\n" .. (body or ""), opts.port,
                  opts.timeout)
end


return _M
