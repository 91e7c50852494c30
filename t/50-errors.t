# Failures get the documented status and one error-log line naming the function's
# host, never a secret; the worker keeps serving.
use t::TestAWSLambda 'no_plan';

# No secret may reach the log, whatever failed.
push @t::TestAWSLambda::NeverLogged,
    "AKIDSECRETACCESS", "SECRET-KEY-wJalrXUtnFEMI", "APIKEY-SECRET-123";

run_tests();

__DATA__

=== TEST 1: a body over max_req_body_size with a Content-Length: 413 before reading it
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", max_req_body_size = 10 }
--- request
POST /aws
01234567890
--- error_code: 413
--- error_log
request body of 11 bytes is larger than max_req_body_size (10)



=== TEST 2: a chunked body over max_req_body_size: 413
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", max_req_body_size = 10 }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("POST /aws HTTP/1.1\r\n"
                .. "Host: localhost\r\nConnection: close\r\n"
                .. "Transfer-Encoding: chunked\r\n\r\n"
                .. "6\r\n012345\r\n5\r\n67890\r\n0\r\n\r\n"))
            ngx.say(res.status)
        }
    }
--- request
GET /t
--- response_body
413
--- error_log
request body of 11 bytes is larger than max_req_body_size (10)



=== TEST 3: a body of exactly max_req_body_size is sent
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", max_req_body_size = 10 }
--- request
POST /aws
0123456789
--- response_body_like chomp
\nbody: 0123456789\n
--- no_error_log
[error]



=== TEST 4: a body nginx buffered to a file is sent whole
--- http_config
    client_body_buffer_size 1k;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- request eval
"POST /aws\n" . ("x" x 100000)
--- response_body_like chomp
\nbody_length: 100000\n
--- no_error_log
[error]



=== TEST 5: connection refused: 503
--- plugin_conf
{
    function_uri = "http://127.0.0.1:1/fn",
    authorization = { iam = { accesskey = "AKIDSECRETACCESS", secretkey = "SECRET-KEY-wJalrXUtnFEMI" } },
}
--- request
GET /aws
--- error_code: 503
--- error_log eval
qr/\[error\].*failed to process aws-lambda, err: connecting to 127\.0\.0\.1:1 failed: Connection refused/



=== TEST 6: DNS failure: 503
--- plugin_conf
{
    function_uri = "http://no-such-host.invalid/fn",
    authorization = { apikey = "APIKEY-SECRET-123" },
}
--- request
GET /aws
--- error_code: 503
--- error_log
connecting to no-such-host.invalid:80 failed



=== TEST 7: no answer within timeout: 504 (APISIX answers 503)
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/sleep",
    timeout = 200,
    authorization = { apikey = "APIKEY-SECRET-123" },
}
--- request
GET /aws/3000
--- error_code: 504
--- error_log eval
"function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} did not answer within 200 ms"



=== TEST 8: an answer that is not HTTP: 502
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/garbage",
    authorization = { iam = { accesskey = "AKIDSECRETACCESS", secretkey = "SECRET-KEY-wJalrXUtnFEMI" } },
}
--- request
GET /aws
--- error_code: 502
--- error_log eval
"request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed"



=== TEST 9: a connection closed without an answer: 502
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/close" }
--- request
GET /aws
--- error_code: 502
--- error_log eval
"request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed"



=== TEST 10: a response cut short: 502
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/headers-only" }
--- request
GET /aws
--- error_code: 502
--- error_log eval
"reading the response from 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed"



=== TEST 11: a response over max_resp_body_size (Content-Length): 502
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/big", max_resp_body_size = 1000 }
--- request
GET /aws/5000
--- error_code: 502
--- error_log
response body larger than max_resp_body_size (1000 bytes)



=== TEST 12: a chunked response is not refused for its size (it may be streamed)
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/chunked", max_resp_body_size = 1000 }
--- request
GET /aws/5000
--- response_body eval
"x" x 5000
--- no_error_log
[error]



=== TEST 13: a response of exactly max_resp_body_size is passed on
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/chunked", max_resp_body_size = 1000 }
--- request
GET /aws/1000
--- response_body eval
"x" x 1000
--- no_error_log
[error]



=== TEST 14: after each failure, the next request on the same worker succeeds
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/aws/garbage", "/aws/httptrigger", "/aws/close",
                                    "/aws/httptrigger", "/aws/headers-only",
                                    "/aws/httptrigger" }) do
                local res = assert(client.request({ path = path }))
                ngx.say(path, " ", res.status)
            end
        }
    }
--- request
GET /t
--- response_body
/aws/garbage 502
/aws/httptrigger 200
/aws/close 502
/aws/httptrigger 200
/aws/headers-only 502
/aws/httptrigger 200
--- error_log eval
"request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed"



=== TEST 15: a header value the function cannot be sent: 400
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "AKIDSECRETACCESS", secretkey = "SECRET-KEY-wJalrXUtnFEMI" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("GET /aws HTTP/1.1\r\n"
                .. "Host: localhost\r\nConnection: close\r\n"
                .. "X-Latin1: caf\xe9\r\n\r\n"))
            ngx.say(res.status)
        }
    }
--- request
GET /t
--- response_body
400
--- error_log
request header x-latin1 is not valid UTF-8 and cannot be signed



=== TEST 16: without signing, such a header is forwarded byte for byte
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("GET /aws HTTP/1.1\r\n"
                .. "Host: localhost\r\nConnection: close\r\n"
                .. "X-Latin1: caf\xe9\r\n\r\n"))
            ngx.say(res.status, " ", res.body:find("header: x-latin1: caf\xe9\n", 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
200 true
--- no_error_log
[error]



=== TEST 17: memory stays bounded whatever the function sends (70 MB answers)
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT", timeout = 30000 }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local function rss_mb()
                for line in io.lines("/proc/self/status") do
                    local kb = line:match("^VmRSS:%s+(%d+)")
                    if kb then
                        return tonumber(kb) / 1024
                    end
                end
            end
            -- warm up the worker's runtime and pool
            assert(client.request({ path = "/aws/httptrigger" }))
            local before = rss_mb()
            local statuses = {}
            for _, path in ipairs({ "/aws/big/70000000", "/aws/chunked/70000000" }) do
                -- read as it arrives, and not kept: this worker is the client too
                local res = assert(require("stream_client").get({ path = path,
                                                                  timeout = 30000,
                                                                  keep = false }))
                statuses[#statuses + 1] = res.status
            end
            local growth = rss_mb() - before
            ngx.log(ngx.INFO, "worker RSS grew by ", growth, " MB")
            ngx.say(table.concat(statuses, " "))
            -- A Content-Length over the limit (20 MiB) is refused before any of it is
            -- read; a chunked answer streams whatever its size, 64 KiB at a time
            -- (APISIX's plugin grows by the whole 70 MB, and more).
            ngx.say("bounded: ", growth < 45)
        }
    }
--- request
GET /t
--- timeout: 60
--- response_body
502 200
bounded: true
--- error_log
response body larger than max_resp_body_size (20971520 bytes)
