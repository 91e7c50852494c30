-- Load for the pool tests: light threads that each send requests one after another to
-- the server under test, and the mock function's connection counts (GET /_conns).
local client = require("client")
local tonumber = tonumber
local ngx = ngx

local _M = {}


-- `clients` threads send `each` requests to `path`; returns how many answered 200.
function _M.run(clients, each, path)
    local function one()
        local ok = 0
        for _ = 1, each do
            local res = client.request({ path = path, timeout = 20000 })
            if res and res.status == 200 then
                ok = ok + 1
            end
        end
        return ok
    end
    local threads = {}
    for i = 1, clients do
        threads[i] = ngx.thread.spawn(one)
    end
    local ok = 0
    for i = 1, clients do
        local done, n = ngx.thread.wait(threads[i])
        if done then
            ok = ok + n
        end
    end
    return ok
end


-- {accepted = n, open = n} from the mock function on `port`.
function _M.conns(port)
    local res, err = client.request({ path = "/_conns", port = port })
    if not res then
        error("GET /_conns: " .. err)
    end
    -- (no cjson in every nginx the tests run on: the two numbers are all there is)
    local accepted = tonumber(res.body:match('"accepted":%s*(%d+)'))
    local open = tonumber(res.body:match('"open":%s*(%d+)'))
    if not accepted or not open then
        error("GET /_conns: unexpected answer: " .. res.body)
    end
    return { accepted = accepted, open = open }
end


-- Waits up to `timeout` seconds for at most `want` open connections at the mock (it
-- sees a close when its thread reads the end of the stream); returns the last count.
function _M.wait_open(port, want, timeout)
    local deadline = ngx.now() + timeout
    while true do
        local open = _M.conns(port).open
        if open <= want or ngx.now() >= deadline then
            return open
        end
        ngx.sleep(0.05)
        ngx.update_time()
    end
end


return _M
