# The mock function (t/mock/function.py) seen from nginx, through raw
# cosocket requests: request description, signature verdicts for a request
# signed beforehand with botocore (fixed X-Amz-Date: the mock checks the
# signature, not the clock), status/cookie passthrough, keep-alive reuse,
# and the broken-server endpoints.  Also exercises t::TestAWSLambda.

use t::TestAWSLambda 'no_plan';

no_shuffle();
log_level('info');

add_block_preprocessor(sub {
    my $block = shift;
    my $http_config = $block->http_config // '';
    $block->set_value('http_config', $http_config . <<'_EOC_');
    init_by_lua_block {
        local M = {}
        function M.connect()
            local sock = ngx.socket.tcp()
            sock:settimeout(5000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_MOCK_PORT))
            return sock
        end
        -- one request; returns status, head, body (Content-Length framing)
        function M.send(sock, raw)
            assert(sock:send(raw))
            local head, err = sock:receiveuntil("\r\n\r\n")()
            if not head then
                return nil, err
            end
            local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)"))
            local len = tonumber(head:lower():match("\ncontent%-length: *(%d+)"))
            local body = ""
            if len and len > 0 then
                body = assert(sock:receive(len))
            end
            return status, head, body
        end
        function M.once(raw)
            local sock = M.connect()
            local status, head, body = M.send(sock, raw)
            sock:close()
            return status, head, body
        end
        function M.conn(body)
            return tonumber(body:match("\nconn: (%d+)\n"))
        end
        function M.fixed(body)
            return (body:gsub("\nconn: %d+\n", "\nconn: N\n"))
        end
        package.loaded.mock_client = M
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: the helper sets the paths and the environment
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(package.path:find("$TEST_NGINX_ROOT/lua/?.lua;", 1, true) == 1)
            ngx.say(package.cpath:find("$TEST_NGINX_ROOT/build/lib/?.so;", 1, true) == 1)
            ngx.say(tonumber("$TEST_NGINX_MOCK_PORT") ~= nil)
        }
    }
--- request
GET /t
--- response_body
true
true
true



=== TEST 2: an unsigned request is described, target as sent
--- config
    location = /t {
        content_by_lua_block {
            local mc = require "mock_client"
            local status, head, body = mc.once("PUT /echo/a%20b//c?x=1&y HTTP/1.1\r\n"
                .. "Host: lambda.test\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
                .. "Content-Length: 11\r\nConnection: close\r\n\r\nhello world")
            ngx.say(status)
            ngx.print(mc.fixed(body))
        }
    }
--- request
GET /t
--- response_body
200
method: PUT
target: /echo/a%20b//c?x=1&y
path: /echo/a%20b//c
query: x=1&y
signature: none
signed_headers: 
header: host: lambda.test
header: x-multi: 1
header: x-multi: 2
header: content-length: 11
header: connection: close
body_length: 11
body: hello world
conn: N



=== TEST 3: a request signed with botocore is ok; tampered ones are not
--- config
    location = /t {
        content_by_lua_block {
            local mc = require "mock_client"
            local function req(target, host, body, key)
                return "POST " .. target .. " HTTP/1.1\r\n"
                    .. "Host: " .. host .. "\r\n"
                    .. "Content-Type: application/json\r\n"
                    .. "X-Amz-Date: 20240102T030405Z\r\n"
                    .. "Authorization: AWS4-HMAC-SHA256 Credential=" .. key
                    .. "/20240102/us-east-1/lambda/aws4_request, "
                    .. "SignedHeaders=content-type;host;x-amz-date, Signature="
                    .. "898a0fb5e41f25f787d4d7b45406ac42db11865717a510bec6cf78ade752c661\r\n"
                    .. "Content-Length: " .. #body .. "\r\n"
                    .. "Connection: close\r\n\r\n" .. body
            end
            local target = "/echo/a%20b?x=1&y=%C3%A9"
            local cases = {
                {"signed", req(target, "lambda.test", "hello world", "AKIDEXAMPLE")},
                {"other body", req(target, "lambda.test", "hello World", "AKIDEXAMPLE")},
                {"other query", req("/echo/a%20b?x=2&y=%C3%A9", "lambda.test",
                                    "hello world", "AKIDEXAMPLE")},
                {"query order", req("/echo/a%20b?y=%C3%A9&x=1", "lambda.test",
                                    "hello world", "AKIDEXAMPLE")},
                {"other host", req(target, "lambda2.test", "hello world", "AKIDEXAMPLE")},
                {"unknown key", req(target, "lambda.test", "hello world", "AKIDOTHER")},
            }
            for _, c in ipairs(cases) do
                local status, head, body = mc.once(c[2])
                ngx.say(c[1], ": ", body:match("\nsignature: ([^\n]*)\n"),
                        " [", body:match("\nsigned_headers: ([^\n]*)\n"), "]")
            end
        }
    }
--- request
GET /t
--- response_body
signed: ok [content-type;host;x-amz-date]
other body: mismatch [content-type;host;x-amz-date]
other query: mismatch [content-type;host;x-amz-date]
query order: ok [content-type;host;x-amz-date]
other host: mismatch [content-type;host;x-amz-date]
unknown key: unknown-key [content-type;host;x-amz-date]



=== TEST 4: /status/<code> with two Set-Cookie headers; /httptrigger
--- config
    location = /t {
        content_by_lua_block {
            local mc = require "mock_client"
            local status, head, body = mc.once(
                "GET /status/418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            ngx.say(status, " ", body == "status 418\n")
            local cookies = {}
            for c in head:gmatch("\r\nSet%-Cookie: ([^\r]*)") do
                cookies[#cookies + 1] = c
            end
            ngx.say(table.concat(cookies, " | "))
            ngx.say(head:match("\r\nX%-Mock: ([^\r]*)"))
            status, head, body = mc.once(
                "POST /httptrigger HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            ngx.print(status, " ", head:match("\r\nConnection: ([^\r]*)"), " ", body)
        }
    }
--- request
GET /t
--- response_body
418 true
a=1; Path=/ | b=2; Path=/
yes
200 Keep-Alive aws lambda invoked



=== TEST 5: keep-alive: one connection, one serial number
--- config
    location = /t {
        content_by_lua_block {
            local mc = require "mock_client"
            local sock = mc.connect()
            local r = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
            local _, _, b1 = mc.send(sock, r)
            local _, _, b2 = mc.send(sock, r)
            sock:close()
            local _, _, b3 = mc.once(r)
            ngx.say(mc.conn(b1) == mc.conn(b2), " ", mc.conn(b1) ~= mc.conn(b3))
        }
    }
--- request
GET /t
--- response_body
true true



=== TEST 6: the broken endpoints
--- config
    location = /t {
        content_by_lua_block {
            local mc = require "mock_client"
            local sock = mc.connect()
            sock:send("GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
            ngx.say("close: ", select(2, sock:receive()))
            sock:close()

            sock = mc.connect()
            sock:send("GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n")
            ngx.say("garbage: ", sock:receive("*a") == "this is not http\r\n\r\n")
            sock:close()

            sock = mc.connect()
            sock:send("GET /headers-only HTTP/1.1\r\nHost: x\r\n\r\n")
            local all = sock:receive("*a")
            ngx.say("headers-only: ", all:find("Content-Length: 100\r\n", 1, true) ~= nil,
                    " ", #all:match("\r\n\r\n(.*)$"))
            sock:close()

            local status, head, body = mc.once("GET /big/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
            ngx.say("big: ", status, " ", #body, " ", body == string.rep("x", 100000))

            sock = mc.connect()
            sock:send("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n")
            ngx.say("raw space: ", (sock:receive()))
            sock:close()
        }
    }
--- request
GET /t
--- response_body
close: closed
garbage: true
headers-only: true 10
big: 200 100000 true
raw space: HTTP/1.1 400 Bad request syntax ('GET /a b HTTP/1.1')
