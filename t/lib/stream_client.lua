-- An HTTP/1.1 client on a cosocket that reads a response body piece by piece as it
-- arrives, for the tests of streamed answers: when each piece came, whether the body
-- ended properly (the last chunk of a chunked body, or all of a Content-Length), and
-- optionally reading at a given rate or going away after some bytes.
local ngx = ngx
local tonumber = tonumber
local str_format = string.format
local tab_concat = table.concat

local _M = {}


-- get{path=, port=, timeout=, rate= (bytes/s), abort_after= (bytes), keep= (false:
-- do not keep the body, only its length), on_piece=function(piece)}. Returns
-- { status, headers, body, length, pieces = { {at=, len=} }, complete = bool,
-- started = ngx.now() at the request, err = why the body ended early }.
function _M.get(opts)
    local sock = ngx.socket.tcp()
    sock:settimeout(opts.timeout or 10000)
    local ok, err = sock:connect("127.0.0.1", opts.port or ngx.var.server_port)
    if not ok then
        return nil, "connect: " .. err
    end
    ngx.update_time()
    local res = { pieces = {}, length = 0, complete = false, started = ngx.now() }
    ok, err = sock:send(str_format("GET %s HTTP/1.1\r\nHost: localhost\r\n"
                                   .. "Connection: close\r\n\r\n", opts.path))
    if not ok then
        return nil, "send: " .. err
    end
    res.status, res.headers = require("client").read_head(sock)
    if not res.status then
        return nil, res.headers
    end
    local keep = opts.keep ~= false
    local parts = {}
    local function got(piece)
        ngx.update_time()
        res.pieces[#res.pieces + 1] = { at = ngx.now(), len = #piece }
        res.length = res.length + #piece
        if keep then
            parts[#parts + 1] = piece
        end
        if opts.on_piece then
            opts.on_piece(piece)
        end
        if opts.rate then
            -- pace the reads: the next one when the bytes so far are due
            local due = res.started + res.length / opts.rate
            local wait = due - ngx.now()
            if wait > 0 then
                ngx.sleep(wait)
            end
        end
        return not (opts.abort_after and res.length >= opts.abort_after)
    end
    local length = tonumber(res.headers["content-length"])
    if res.headers["transfer-encoding"] == "chunked" then
        while true do
            local size_line
            size_line, err = sock:receive("*l")
            if not size_line then
                break
            end
            local size = tonumber(size_line:match("^%x+"), 16)
            if not size then
                err = "bad chunk size " .. size_line
                break
            end
            if size == 0 then
                res.complete = sock:receive("*l") == ""
                break
            end
            -- a large chunk is read in pieces, as it arrives
            local left = size
            local going = true
            while left > 0 and going do
                local piece
                piece, err = sock:receiveany(left)
                if not piece then
                    break
                end
                left = left - #piece
                going = got(piece)
            end
            if left > 0 or not going then
                break
            end
            sock:receive("*l")
        end
    else
        local going = true
        while going and (not length or res.length < length) do
            local piece
            piece, err = sock:receiveany(65536)
            if not piece then
                break
            end
            going = got(piece)
        end
        res.complete = length ~= nil and res.length == length
    end
    res.err = err
    res.body = tab_concat(parts)
    sock:close()
    return res
end


-- The mock function's record of the streamed answer tagged `tag` (GET /_streams):
-- { sent = bytes, ended = time or nil, closed = bool, done = bool, sha256 = hex or nil }.
function _M.mock_record(tag, port)
    local res, err = require("client").request({ path = "/_streams?tag=" .. tag,
                                                 port = port })
    if not res then
        return nil, err
    end
    local body = res.body
    return {
        sent = tonumber(body:match('"sent":%s*(%d+)')),
        ended = tonumber(body:match('"ended":%s*([%d%.e+]+)')),
        closed = body:match('"closed":%s*(%a+)') == "true",
        done = body:match('"done":%s*(%a+)') == "true",
        sha256 = body:match('"sha256":%s*"(%x+)"'),
    }
end


return _M
