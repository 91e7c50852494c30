# APISIX's behaviour with an API key or no authorization: what reaches the
# function, and what comes back to the client.
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: the function's answer reaches the client (APISIX TEST 4)
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger",
    authorization = { apikey = "testkey" },
}
--- request
GET /aws
--- response_body
aws lambda invoked
--- response_headers
Content-Length: 19
Content-Type: text/plain



=== TEST 2: the apikey is sent as x-api-key (APISIX TEST 5)
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic",
    authorization = { apikey = "test_key" },
}
--- request
GET /aws
--- response_body_like chomp
^method: GET
target: /generic
(?:.*\n)*header: x-api-key: test_key\n



=== TEST 3: the client's own x-api-key wins
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic",
    authorization = { apikey = "test_key" },
}
--- request
GET /aws
--- more_headers
X-Api-Key: client_key
--- response_body_like chomp
header: x-api-key: client_key\n
--- response_body_unlike chomp
test_key



=== TEST 4: without authorization nothing is added
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic" }
--- request
GET /aws
--- response_body_like chomp
signature: none
--- response_body_unlike chomp
x-api-key|authorization|x-amz-



=== TEST 5: without signing, the query string is forwarded as the client sent it
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic",
    authorization = { apikey = "k" },
}
--- request
GET /aws?z=1&a=%2f&z=0&flag&b=x+y&e=
--- response_body_like chomp
\nquery: z=1&a=%2f&z=0&flag&b=x\+y&e=\n



=== TEST 6: the route's path suffix is appended to function_uri's path
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic" }
--- request
GET /aws/orders/42?x=1
--- response_body_like chomp
\ntarget: /generic/orders/42\?x=1\n



=== TEST 7: method, headers and body reach the function; the client's framing does not
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic" }
--- request
PUT /aws
{"hello":"lambda"}
--- more_headers
Content-Type: application/json
X-Custom: one
X-Custom: two
--- response_body_like chomp
(?=[\s\S]*\nheader: content-type: application/json\n)(?=[\s\S]*\nheader: x-custom: one\nheader: x-custom: two\n)^method: PUT
(?:.*\n)*header: host: 127\.0\.0\.1:\d+
(?:.*\n)*body_length: 18
body: \{"hello":"lambda"\}



=== TEST 8: status, headers (several Set-Cookie) and body come back
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status" }
--- request
GET /aws/201
--- error_code: 201
--- response_body
status 201
--- response_headers
X-Mock: yes
Content-Length: 11
--- raw_response_headers_like chomp
Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\n



=== TEST 9: error statuses of the function are passed through
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status" }
--- request
GET /aws/404
--- error_code: 404
--- response_body
status 404



=== TEST 10: the function's hop-by-hop response headers are not passed on
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- request
GET /aws
--- raw_response_headers_unlike chomp
(?i)keep-alive
--- response_headers
Connection: close



=== TEST 11: HEAD keeps the function's Content-Length and sends no body
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- request
HEAD /aws
--- response_headers
Content-Length: 19
--- response_body



=== TEST 12: a large answer reaches the client whole, and so does a small one after it
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/" }
--- pipelined_requests eval
["GET /aws/big/300000", "GET /aws/big/7"]
--- response_body eval
["x" x 300000, "xxxxxxx"]
--- no_error_log
[error]



=== TEST 13: the headers of one answer do not carry over to the next
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local first = assert(client.request({ path = "/aws/status/201" }))
            local second = assert(client.request({ path = "/aws/big/7" }))
            local cookies = first.headers["set-cookie"]
            ngx.say(first.status, " ", first.headers["x-mock"], " ",
                    type(cookies) == "table" and #cookies or tostring(cookies))
            ngx.say(second.status, " ", tostring(second.headers["x-mock"]), " ",
                    tostring(second.headers["set-cookie"]), " ", second.body)
        }
    }
--- request
GET /t
--- response_body
201 yes 2
200 nil nil xxxxxxx
--- no_error_log
[error]
