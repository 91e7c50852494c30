# Streamed answers: a function_uri answer whose body is not all there with its head
# reaches the client as it arrives (chunked to HTTP/1.1 clients, DATA frames to HTTP/2
# clients), with backpressure; a body that breaks off after its head was sent ends the
# client's connection without a proper end, and the error log names the cause.
BEGIN {
    # an HTTP/2 listener beside the test server (curl is its client)
    $ENV{TEST_NGINX_H2_PORT} //= ($ENV{TEST_NGINX_PORT} // 1984) + 20;
}
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: the first chunk reaches the client before the function sent the last
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/stream/5/300" }))
            ngx.say(res.status, " ", res.headers["transfer-encoding"], " ",
                    res.headers["content-type"], " complete: ", res.complete)
            ngx.print(res.body)
            local first = res.pieces[1].at - res.started
            local last = res.pieces[#res.pieces].at - res.started
            ngx.log(ngx.INFO, "first byte after ", first, " s, last after ", last, " s")
            -- the function sends the last chunk 1.2 s after the first
            ngx.say("first before last: ", last - first > 0.9, " ", first < 0.6)
        }
    }
--- response_body
200 chunked text/plain complete: true
chunk 0
chunk 1
chunk 2
chunk 3
chunk 4
first before last: true true



=== TEST 2: HTTP/2: DATA frames as they arrive; a body cut short resets the stream
--- main_config
    thread_pool default threads=2;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- http_config
    server {
        listen $TEST_NGINX_H2_PORT http2;
        location ~ ^/aws/(.*)$ {
            access_by_lua_block {
                require("apisix.plugins.aws-lambda.openresty").run(PLUGIN_CONF, ngx.var[1],
                                                                   "/aws/*")
            }
        }
    }
--- config
    location /t {
        content_by_lua_block {
            local shell = require("shell")
            -- curl's output lines, each with the time it arrived
            local function curl(path)
                local out = assert(shell.run(
                    "curl -sN --http2-prior-knowledge -w '\\n%{http_version} %{http_code}\\n' "
                    .. "http://127.0.0.1:$TEST_NGINX_H2_PORT" .. path
                    .. " | while IFS= read -r l; do echo \"$(date +%s.%N) ${#l} $l\"; done;"
                    .. " echo \"exit ${PIPESTATUS[0]}\""))
                local lines = {}
                for at, len, line in out:gmatch("([%d.]+) (%d+) ([^\n]*)\n") do
                    lines[#lines + 1] = { at = tonumber(at), len = tonumber(len), line = line }
                end
                return lines, out:match("exit (%d+)")
            end
            local lines, code = curl("/aws/stream/4/300")
            ngx.say("curl exit ", code, ", ", lines[#lines].line)
            for i = 1, 4 do
                ngx.say(lines[i].line)
            end
            ngx.log(ngx.INFO, "first chunk at ", lines[1].at, ", last at ", lines[4].at)
            ngx.say("first before last: ", lines[4].at - lines[1].at > 0.6)
            -- the function closes after 100000 bytes without the last chunk
            lines, code = curl("/aws/cut/100000")
            -- curl: 92 = "stream error in the HTTP/2 framing layer" (RST_STREAM)
            ngx.say("cut: curl exit ", code, ", ", lines[1].len, " bytes")
        }
    }
--- response_body
curl exit 0, 2 200
chunk 0
chunk 1
chunk 2
chunk 3
first before last: true
cut: curl exit 92, 100000 bytes
--- error_log eval
qr/\[error\].*failed to process aws-lambda, err: the function's answer broke off after it began: reading the response from 127\.0\.0\.1:\d+ failed: error reading a body from connection: unexpected EOF during chunk size line/



=== TEST 3: server-sent events pass as they come, with their content type
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/sse/3/250" }))
            ngx.say(res.status, " ", res.headers["content-type"], " complete: ", res.complete)
            ngx.print(res.body)
            local spread = res.pieces[#res.pieces].at - res.pieces[1].at
            ngx.say("events spread over >= 0.4 s: ", spread >= 0.4)
        }
    }
--- response_body
200 text/event-stream complete: true
data: event 0

data: event 1

data: event 2

events spread over >= 0.4 s: true



=== TEST 4: small answers are handed over whole; a streamed answer keeps its Content-Length
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local get = require("stream_client").get
            local res = assert(get({ path = "/aws/httptrigger" }))
            ngx.say("small: ", res.headers["content-length"], " ",
                    tostring(res.headers["transfer-encoding"]), " ", res.complete)
            res = assert(get({ path = "/aws/stream-big/300000?length=1" }))
            ngx.say("streamed with a length: ", res.headers["content-length"], " ",
                    tostring(res.headers["transfer-encoding"]), " ", res.complete, " ",
                    res.length)
            res = assert(get({ path = "/aws/stream-big/300000" }))
            ngx.say("streamed chunked: ", tostring(res.headers["content-length"]), " ",
                    res.headers["transfer-encoding"], " ", res.complete, " ", res.length)
        }
    }
--- response_body
small: 19 nil true
streamed with a length: 300000 nil true 300000
streamed chunked: nil chunked true 300000



=== TEST 5: the function closes mid-stream: a truncated answer, the cause in the log
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/cut/100000" }))
            ngx.say(res.status, " complete: ", res.complete, ", ", res.length, " bytes, ",
                    res.err)
        }
    }
--- response_body
200 complete: false, 100000 bytes, closed
--- error_log eval
qr/\[error\].*the function's answer broke off after it began: reading the response from 127\.0\.0\.1:\d+ failed: error reading a body from connection: unexpected EOF during chunk size line/



=== TEST 6: the function resets the connection mid-stream
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/reset/100000" }))
            ngx.say(res.status, " complete: ", res.complete, ", ", res.err)
        }
    }
--- response_body
200 complete: false, closed
--- error_log eval
qr/\[error\].*the function's answer broke off after it began: .*Connection reset by peer/



=== TEST 7: a stream silent for stream_idle_timeout is cut off
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT", stream_idle_timeout = 300 }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/stall/3000" }))
            ngx.update_time()
            local took = ngx.now() - res.started
            ngx.say(res.status, " complete: ", res.complete, ", ", res.body:gsub("\n", "|"))
            ngx.say("cut after about 0.3 s: ", took > 0.25 and took < 2)
        }
    }
--- response_body
200 complete: false, before|1
cut after about 0.3 s: true
--- error_log
the function's answer broke off after it began: the function sent nothing for 300 ms (stream_idle_timeout)



=== TEST 8: timeout bounds the head only: a stream that keeps sending outlives it
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT", timeout = 500,
  stream_idle_timeout = 1000 }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws/stream/4/400" }))
            ngx.update_time()
            ngx.say(res.status, " complete: ", res.complete, ", ",
                    res.body:gsub("\n", "|"))
            ngx.say("longer than timeout: ", ngx.now() - res.started > 1)
        }
    }
--- response_body
200 complete: true, chunk 0|chunk 1|chunk 2|chunk 3|4
longer than timeout: true



=== TEST 9: a client that goes away: the function's connection closes within 1 s, no ticket is left
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local sc = require("stream_client")
            local native = require("apisix.plugins.aws-lambda.native")
            local function fds()
                local p = io.popen("ls /proc/" .. ngx.worker.pid() .. "/fd | wc -l")
                local n = tonumber(p:read("*a"))
                p:close()
                return n
            end
            -- the runtime and a pooled connection exist before the count
            assert(require("client").request({ path = "/aws/httptrigger" }))
            local fds_before = fds()
            local res = assert(sc.get({
                path = "/aws/stream-big/1000000000?tag=abort&sndbuf=65536",
                abort_after = 1000000, keep = false }))
            ngx.update_time()
            local gone_at = ngx.now()
            ngx.say(res.status, " read ", res.length >= 1000000, " complete: ", res.complete)
            local record
            for _ = 1, 40 do
                ngx.sleep(0.05)
                record = assert(sc.mock_record("abort", $TEST_NGINX_MOCK_PORT))
                if record.ended then
                    break
                end
            end
            ngx.say("function side closed: ", record.closed, ", within 1 s: ",
                    record.ended - gone_at < 1, ", sent < 100 MB: ", record.sent < 1e8)
            ngx.sleep(0.1)
            local stats = native.stats()
            -- (the count before may include the warm-up request's closing connection)
            ngx.say("tickets: ", stats.tickets, ", waiting: ", stats.waiting,
                    ", more file descriptors than before: ", fds() > fds_before)
        }
    }
--- response_body
200 read true complete: false
function side closed: true, within 1 s: true, sent < 100 MB: true
tickets: 0, waiting: 0, more file descriptors than before: false
--- error_log
the client went away during a streamed answer
--- no_error_log
[error]



=== TEST 10: a client reading at 1 MB/s: the function is read no faster
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local sc = require("stream_client")
            local read, mark = 0, nil
            local res = assert(sc.get({
                path = "/aws/stream-big/100000000?tag=slow&sndbuf=65536",
                rate = 1000000, abort_after = 3000000, keep = false, timeout = 20000,
                on_piece = function(piece)
                    read = read + #piece
                    if not mark and read >= 1500000 then
                        -- what the function had sent once the sockets' buffers filled
                        ngx.update_time()
                        mark = { at = ngx.now(),
                                 sent = sc.mock_record("slow", $TEST_NGINX_MOCK_PORT).sent }
                    end
                end }))
            ngx.update_time()
            local now = ngx.now()
            local record = assert(sc.mock_record("slow", $TEST_NGINX_MOCK_PORT))
            local rate = (record.sent - mark.sent) / (now - mark.at)
            ngx.log(ngx.WARN, "read ", res.length, " bytes in ", now - res.started,
                    " s; the function had sent ", mark.sent, " bytes at ",
                    mark.at - res.started, " s and ", record.sent, " at the end: ",
                    rate / 1e6, " MB/s in between")
            ngx.say(res.status, " read 3 MB in >= 2.5 s: ", now - res.started >= 2.5)
            -- Without backpressure the function would have sent all 100 MB in well
            -- under a second; with it, it goes at the client's pace once the
            -- sockets' buffers are full, and stays ahead by what they hold.
            ngx.say("function sends at the client's pace: ", rate < 2e6)
            ngx.say("function ahead of the client by < 16 MB: ",
                    record.sent - res.length < 16e6)
        }
    }
--- timeout: 20
--- response_body
200 read 3 MB in >= 2.5 s: true
function sends at the client's pace: true
function ahead of the client by < 16 MB: true
--- error_log
had sent



=== TEST 11: a header filter, a body filter and the log phase still see a streamed answer
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- http_config
    log_format streamed '$request_uri $status $body_bytes_sent';
--- config
    location /aws-filtered {
        access_log logs/streamed.log streamed;
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(PLUGIN_CONF, "stream/3/100",
                                                               "/aws-filtered")
        }
        # what other plugins do in these phases (response-rewrite, logging plugins)
        header_filter_by_lua_block {
            ngx.header["X-Filtered"] = "yes"
        }
        body_filter_by_lua_block {
            if ngx.arg[1] ~= "" then
                ngx.arg[1] = ngx.arg[1]:upper()
                ngx.ctx.pieces = (ngx.ctx.pieces or 0) + 1
            end
        }
        log_by_lua_block {
            ngx.log(ngx.WARN, "log phase: status ", ngx.var.status, ", bytes ",
                    ngx.var.body_bytes_sent, ", body filter saw ", ngx.ctx.pieces, " pieces")
        }
    }
--- request
GET /aws-filtered
--- response_headers
X-Filtered: yes
--- response_body
CHUNK 0
CHUNK 1
CHUNK 2
--- error_log eval
qr/log phase: status 200, bytes \d+, body filter saw [1-9]\d* pieces/



=== TEST 12: HEAD on a streaming function: the head only, nothing waits
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- request
HEAD /aws/stream/3/100
--- response_headers
Content-Type: text/plain
--- response_body



=== TEST 13: 200 MB pass intact, and the worker's memory stays flat
--- main_config
    thread_pool default threads=2;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local shell = require("shell")
            local sc = require("stream_client")
            local function status_kb(field)
                for line in io.lines("/proc/self/status") do
                    local kb = line:match("^" .. field .. ":%s+(%d+)")
                    if kb then
                        return tonumber(kb)
                    end
                end
            end
            -- curl, another process, is the client: this worker is only the gateway
            local function fetch(n, tag)
                return shell.fetch_digest("http://127.0.0.1:$TEST_NGINX_SERVER_PORT"
                                          .. "/aws/stream-big/" .. n .. "?tag=" .. tag
                                          .. "&sha256=1")
            end
            -- warm up: the runtime, the pool and nginx's buffers
            local start = status_kb("VmRSS")
            assert(fetch(20000000, "warm"))
            collectgarbage()
            local rss, peak = status_kb("VmRSS"), status_kb("VmHWM")
            local bytes, digest = assert(fetch(209715200, "big"))
            local peak_big = status_kb("VmHWM")
            collectgarbage()
            local after = status_kb("VmRSS")
            local record = assert(sc.mock_record("big", $TEST_NGINX_MOCK_PORT))
            ngx.log(ngx.WARN, "RSS (MB): ", start / 1024, " at the start, peak ",
                    peak / 1024, " with 20 MB, then ", rss / 1024, "; peak ",
                    peak_big / 1024, " with 200 MB, then ", after / 1024)
            local growth = (peak_big - rss) / 1024
            ngx.say("bytes: ", bytes)
            ngx.say("checksum matches: ", digest == record.sha256)
            ngx.say("peak RSS growth < 5 MB: ", growth < 5)
        }
    }
--- timeout: 60
--- response_body
bytes: 209715200
checksum matches: true
peak RSS growth < 5 MB: true
--- error_log
RSS (MB):



=== TEST 14: the runtime's state counts a streamed answer while its body flows (streaming), not as a call in flight
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local stats = require("apisix.plugins.aws-lambda.stats")
            local th = ngx.thread.spawn(function()
                return require("stream_client").get({ path = "/aws/stream/4/300" })
            end)
            ngx.sleep(0.45)
            local s = stats.collect()
            ngx.say("while it flows: streaming ", s.streaming, ", in flight ", s.in_flight)
            local _, res = ngx.thread.wait(th)
            ngx.say("answer complete: ", res.complete)
            ngx.sleep(0.05)
            s = stats.collect()
            ngx.say("after: streaming ", s.streaming, ", in flight ", s.in_flight)
            ngx.say("metric: ", stats.prometheus():match("\napisix_aws_lambda_streaming %d+"))
        }
    }
--- response_body
while it flows: streaming 1, in flight 0
answer complete: true
after: streaming 0, in flight 0
metric: 
apisix_aws_lambda_streaming 0
--- no_error_log
[error]
