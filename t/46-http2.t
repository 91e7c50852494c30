# HTTP/2 to the function (route field `http2`, on by default): h2 is offered by ALPN
# over TLS, and the calls of a worker share one multiplexed connection per endpoint. The function is an
# nginx TLS server with HTTP/2 in front of the mock; it passes on the protocol it saw
# ($server_protocol) and the connection that carried the call ($connection), which the
# mock echoes back.
use t::TestAWSLambda 'no_plan';

worker_connections(4096);

$ENV{TEST_NGINX_TLS_PORT} //= 1986;

add_block_preprocessor(sub {
    my $block = shift;
    my $http_config = $block->http_config // '';
    # a block may bring its own function server (TEST 4)
    return if $http_config =~ /listen \$TEST_NGINX_TLS_PORT/;
    $block->set_value('http_config', $http_config . <<'_EOC_');
    server {
        listen $TEST_NGINX_TLS_PORT ssl http2;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_set_header Host $http_host;
            proxy_set_header X-Server-Protocol $server_protocol;
            proxy_set_header X-Conn $connection;
            # streamed answers pass as they come, as a function URL sends them
            proxy_buffering off;
        }
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: by default the function sees HTTP/2
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/h2", ssl_verify = false }
--- request
POST /aws/fn?x=1
hello
--- response_body_like chomp
\ntarget: /h2/fn\?x=1
(?:.*\n)*header: x-server-protocol: HTTP/2\.0\n(?:.*\n)*body: hello
--- no_error_log
[error]



=== TEST 2: http2 false: the function sees HTTP/1.1, although it offers h2
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/h2", ssl_verify = false, http2 = false }
--- request
GET /aws/fn
--- response_body_like chomp
(?:.*\n)*header: x-server-protocol: HTTP/1\.1\n
--- no_error_log
[error]



=== TEST 3: 32 concurrent calls share one connection
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/h2", ssl_verify = false, http2 = true }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local ok, conns, protocols = 0, {}, {}
            local function one()
                for _ = 1, 10 do
                    local res = client.request({ path = "/aws/fn", timeout = 20000 })
                    if res and res.status == 200 then
                        ok = ok + 1
                        conns[res.body:match("header: x%-conn: (%d+)")] = true
                        protocols[res.body:match("header: x%-server%-protocol: (%S+)")] = true
                    end
                end
            end
            local threads = {}
            for i = 1, 32 do
                threads[i] = ngx.thread.spawn(one)
            end
            for i = 1, 32 do
                ngx.thread.wait(threads[i])
            end
            local n = 0
            for _ in pairs(conns) do n = n + 1 end
            ngx.say("succeeded: ", ok)
            ngx.say("connections: ", n)
            for p in pairs(protocols) do ngx.say("protocol: ", p) end
        }
    }
--- request
GET /t
--- response_body
succeeded: 320
connections: 1
protocol: HTTP/2.0
--- no_error_log
[error]



=== TEST 4: the function ends connections under load (GOAWAY after 20 streams): GETs all succeed, no POST reaches it twice
--- http_config
    log_format h2ids '$http_x_call_id';
    server {
        listen $TEST_NGINX_TLS_PORT ssl http2;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        # GOAWAY once a connection carried 20 requests, while others are in flight
        keepalive_requests 20;
        access_log logs/h2-function.log h2ids;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_set_header Host $http_host;
            proxy_set_header X-Conn $connection;
        }
    }
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/h2", ssl_verify = false, http2 = true }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local statuses, conns, sent = {}, {}, {}
            local function one(method, t)
                for i = 1, 16 do
                    local id = method .. "-" .. t .. "-" .. i
                    local res = client.request({ method = method, path = "/aws/fn",
                                                 body = "{}", timeout = 20000,
                                                 headers = { ["X-Call-Id"] = id } })
                    local status = res and res.status or 0
                    statuses[method .. " " .. status] = (statuses[method .. " " .. status] or 0) + 1
                    sent[id] = status
                    if status == 200 then
                        conns[res.body:match("header: x%-conn: (%d+)")] = true
                    end
                end
            end
            local threads = {}
            for t = 1, 4 do
                threads[#threads + 1] = ngx.thread.spawn(one, "GET", t)
                threads[#threads + 1] = ngx.thread.spawn(one, "POST", t)
            end
            for _, th in ipairs(threads) do
                ngx.thread.wait(th)
            end
            ngx.sleep(0.2)
            -- what reached the function, by call id
            local seen = {}
            for id in io.lines(ngx.config.prefix() .. "logs/h2-function.log") do
                seen[id] = (seen[id] or 0) + 1
            end
            local n = 0
            for _ in pairs(conns) do n = n + 1 end
            ngx.log(ngx.NOTICE, "h2 GOAWAY test: POSTs answered 502: ", statuses["POST 502"] or 0)
            ngx.say("GET 200: ", statuses["GET 200"])
            ngx.say("POST 200 or 502: ", (statuses["POST 200"] or 0) + (statuses["POST 502"] or 0))
            ngx.say("connections ended under load: ", n >= 5 or n)
            local twice, lost = {}, {}
            for id, status in pairs(sent) do
                if id:sub(1, 4) == "POST" and (seen[id] or 0) > 1 then
                    twice[#twice + 1] = id
                end
                if status == 200 and not seen[id] then
                    lost[#lost + 1] = id
                end
            end
            ngx.say("POSTs that reached the function twice: ", #twice)
            ngx.say("answered calls the function never saw: ", #lost)
        }
    }
--- request
GET /t
--- response_body
GET 200: 64
POST 200 or 502: 64
connections ended under load: true
POSTs that reached the function twice: 0
answered calls the function never saw: 0
--- no_error_log
[alert]
[emerg]



=== TEST 5: streamed answers over HTTP/2: pieces as they come, a large one whole, a client gone mid-stream resets only its own stream
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT", ssl_verify = false }
--- config
    location /t {
        content_by_lua_block {
            local sc = require("stream_client")
            local function call()
                local res = assert(require("client").request({ path = "/aws/fn" }))
                return res.body:match("header: x%-conn: (%d+)"),
                       res.body:match("header: x%-server%-protocol: (%S+)")
            end
            local conn_before, protocol = call()
            ngx.say("protocol: ", protocol)
            local res = assert(sc.get({ path = "/aws/stream/5/300" }))
            local first = res.pieces[1].at - res.started
            local last = res.pieces[#res.pieces].at - res.started
            ngx.say("pieces: ", res.status, " complete: ", res.complete,
                    ", first before last: ", last - first > 0.9, " ", first < 0.6)
            res = assert(sc.get({ path = "/aws/stream-big/3000000" }))
            ngx.say("large: complete: ", res.complete, ", ", res.length, " bytes")
            res = assert(sc.get({ path = "/aws/stream-big/1000000000",
                                  abort_after = 1000000, keep = false }))
            ngx.say("client gone: complete: ", res.complete)
            ngx.sleep(0.3)
            local conn_after = call()
            ngx.say("the same connection after: ", conn_before == conn_after)
            ngx.say("tickets: ", require("apisix.plugins.aws-lambda.native").stats().tickets)
        }
    }
--- request
GET /t
--- response_body
protocol: HTTP/2.0
pieces: 200 complete: true, first before last: true true
large: complete: true, 3000000 bytes
client gone: complete: false
the same connection after: true
tickets: 0
--- no_error_log
[error]
