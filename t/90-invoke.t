# Direct invocation through the Lambda Invoke API (function_name). The mock's
# Invoke API (t/mock/lambda_api.py) verifies each signature with botocore, checks
# every event against the shapes AWS documents, and answers as Lambda does.
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "KeySecret", "tempSecretKeyExample",
     "tempSessionTokenExample";

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->plugin_conf && !defined $block->config) {
        $block->set_value('plugin_conf', <<'_EOC_');
{
    function_name = "echo",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: apigw_v2 (default): a well-formed 2.0 event, signed for lambda; Lambda's X-Amz-Executed-Version passed on
--- request
GET /aws/x/y?a=1&a=2&b=x+y%21
--- more_headers
User-Agent: test-agent
Cookie: c1=v1; c2=v2
X-Multi: 1
X-Multi: 2
--- response_headers
Content-Type: application/json
X-Function: echo
X-Amz-Executed-Version: $LATEST
--- response_body_like eval
qr/^(?=.*"format": "v2", "invocation_type": "RequestResponse", "problems": \[\])(?=.*"signature": "ok")(?=.*"cookies": \["c1=v1", "c2=v2"\], "headers": \{"host": "localhost", "user-agent": "test-agent", "x-multi": "1,2"\})(?=.*"isBase64Encoded": false, "pathParameters": \{"proxy": "x\/y"\}, "queryStringParameters": \{"a": "1,2", "b": "x\+y!"\}, "rawPath": "\/aws\/x\/y", "rawQueryString": "a=1&a=2&b=x\+y%21")(?=.*"requestContext": \{"accountId": "anonymous")(?=.*"http": \{"method": "GET", "path": "\/aws\/x\/y", "protocol": "HTTP\/1.1", "sourceIp": "127.0.0.1", "userAgent": "test-agent"\})(?=.*"routeKey": "ANY \/aws\/\{proxy\+\}", "stage": "\$default")(?=.*"version": "2.0")/s



=== TEST 2: the client's Authorization goes into the event; the call is still signed
--- request
POST /aws
{"k": 1}
--- more_headers
Authorization: Bearer client-token
Content-Type: application/json
--- response_body_like eval
qr/^(?=.*"body": "\{\\"k\\": 1\}", "headers": \{"authorization": "Bearer client-token")(?=.*"isBase64Encoded": false)(?=.*"routeKey": "ANY \/aws")(?=.*"problems": \[\])(?=.*"signature": "ok")/s



=== TEST 3: apigw_v1: a well-formed REST API proxy event
--- plugin_conf
{
    function_name = "echo",
    payload_format = "apigw_v1",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
POST /aws/users/7?a=1&a=2
hello
--- more_headers
Content-Type: text/plain
X-Multi: 1
X-Multi: 2
--- response_body_like eval
qr/^(?=.*"format": "v1", "invocation_type": "RequestResponse", "problems": \[\])(?=.*"body": "hello", "headers": \{[^}]*"x-multi": "2"\}, "httpMethod": "POST", "isBase64Encoded": false)(?=.*"multiValueHeaders": \{[^}]*"x-multi": \["1", "2"\]\}, "multiValueQueryStringParameters": \{"a": \["1", "2"\]\})(?=.*"path": "\/aws\/users\/7", "pathParameters": \{"proxy": "users\/7"\}, "queryStringParameters": \{"a": "2"\})(?=.*"identity": \{[^}]*"sourceIp": "127.0.0.1")(?=.*"resourcePath": "\/aws\/\{proxy\+\}")(?=.*"resource": "\/aws\/\{proxy\+\}", "stageVariables": null)/s



=== TEST 4: apigw_v1 without query, path parameters or body: nulls, as API Gateway sends
--- plugin_conf
{
    function_name = "echo",
    payload_format = "apigw_v1",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- response_body_like eval
qr/^(?=.*"body": null)(?=.*"multiValueQueryStringParameters": null, "path": "\/aws", "pathParameters": null, "queryStringParameters": null)(?=.*"format": "v1", "invocation_type": "RequestResponse", "problems": \[\])/s



=== TEST 5: binary bodies round-trip byte for byte (base64 both ways), v2 and v1
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local bytes = {}
            for i = 0, 255 do
                bytes[#bytes + 1] = string.char(i)
            end
            local payload = table.concat(bytes):rep(3)
            for _, path in ipairs({ "/v2", "/v1", "/v2-text" }) do
                local ctype = path == "/v2-text" and "text/plain" or "application/octet-stream"
                local res, err = client.request({ method = "POST", path = path, body = payload,
                                                  headers = { ["Content-Type"] = ctype } })
                if not res then
                    ngx.say(path, " failed: ", err)
                else
                    ngx.say(path, " ", res.status, " ", res.headers["content-type"], " ",
                            res.body == payload and "same bytes" or "DIFFERENT: " .. #res.body)
                end
            end
        }
    }
    location ~ ^/(v2|v2-text)$ {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "echo-body",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
    location = /v1 {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "echo-body",
                payload_format = "apigw_v1",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
--- response_body
/v2 200 application/octet-stream same bytes
/v1 200 application/octet-stream same bytes
/v2-text 200 text/plain same bytes



=== TEST 6: cookies and multi-value headers from a 2.0 response; its multiValueHeaders are ignored
--- plugin_conf
{
    function_name = "cookies",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- raw_response_headers_like
Set-Cookie: a=1; Path=/\r
Set-Cookie: b=2; Path=/\r
--- response_headers
X-Single: s
X-Multi: 1,2
!X-Only-Multi
--- response_body chomp
cookies



=== TEST 7: multiValueHeaders from a 1.0 response: each value its own header line
--- plugin_conf
{
    function_name = "cookies",
    payload_format = "apigw_v1",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- raw_response_headers_like eval
qr/^(?=.*Set-Cookie: a=1; Path=\/\r\nSet-Cookie: b=2; Path=\/\r\n)(?=.*X-Multi: 1\r\nX-Multi: 2\r\n)/s
--- response_headers
X-Single: s
--- response_body chomp
cookies



=== TEST 8: a payload that is not a proxy response is a JSON body with 200
--- plugin_conf
{
    function_name = "plain",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- response_headers
Content-Type: application/json
--- response_body chomp
{"hello": "world"}



=== TEST 9: raw: the body is the payload and the payload the body
--- plugin_conf
{
    function_name = "raw-echo",
    payload_format = "raw",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
POST /aws/ignored?also=ignored
{"order": [1, 2, 3]}
--- response_headers
Content-Type: application/json
--- response_body chomp
{"order": [1, 2, 3]}



=== TEST 10: raw with a body that is not JSON: Lambda refuses it, 400
--- plugin_conf
{
    function_name = "raw-echo",
    payload_format = "raw",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
POST /aws
not json
--- error_code: 400
--- error_log
Lambda Invoke API answered 400 InvalidRequestContentException: Could not parse request body into json



=== TEST 11: invocation_type Event: 202 at once; DryRun: 204
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/event", "/dryrun" }) do
                local res = assert(client.request({ method = "POST", path = path,
                                                    body = '{"a": 1}' }))
                ngx.say(path, " ", res.status, " [", res.body, "]")
            end
        }
    }
    location = /event {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "echo", invocation_type = "Event",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
    location = /dryrun {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "echo", invocation_type = "DryRun",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
--- response_body
/event 202 []
/dryrun 204 []



=== TEST 12: a function error: function_error_status (502 by default), X-Amz-Executed-Version, and one log line
--- plugin_conf
{
    function_name = "fail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 502
--- response_headers
X-Amz-Executed-Version: $LATEST
--- error_log
failed to process aws-lambda, err: the function failed (Unhandled): Error: boom from the function
--- response_body_unlike
boom



=== TEST 13: function_error_status sets the status of a function error
--- plugin_conf
{
    function_name = "fail",
    function_error_status = 500,
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 500
--- error_log
the function failed (Unhandled): Error: boom from the function



=== TEST 14: Lambda's errors: throttling 429, a missing function 502, an update in progress 503
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, name in ipairs({ "throttle", "nosuchfunction", "updating" }) do
                local res = assert(client.request({ path = "/fn/" .. name }))
                ngx.say(name, " ", res.status)
            end
        }
    }
    location ~ ^/fn/(.+)$ {
        access_by_lua_block {
            local name = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[name] = CONFS[name] or {
                function_name = name,
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[name])
        }
    }
--- response_body
throttle 429
nosuchfunction 502
updating 503
--- error_log
Lambda Invoke API answered 429 TooManyRequestsException: Rate Exceeded.
Lambda Invoke API answered 404 ResourceNotFoundException: Function not found
Lambda Invoke API answered 409 ResourceConflictException: The operation cannot be performed



=== TEST 15: a payload that is not JSON or a malformed proxy response: 502, and the next request succeeds
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, name in ipairs({ "malformed", "badproxy", "plain" }) do
                local res = assert(client.request({ path = "/fn/" .. name }))
                ngx.say(name, " ", res.status)
            end
        }
    }
    location ~ ^/fn/(.+)$ {
        access_by_lua_block {
            local name = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[name] = CONFS[name] or {
                function_name = name,
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[name])
        }
    }
--- response_body
malformed 502
badproxy 502
plain 200
--- error_log
the function's payload is not JSON
the function returned a malformed proxy response



=== TEST 16: log_type Tail: the function's log tail in the error log at info level
--- plugin_conf
{
    function_name = "echo",
    log_type = "Tail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_log eval
qr/\[info\] .*aws-lambda: function log tail: START RequestId: mock Version: \$LATEST\\nmock log line from echo\\nEND RequestId: mock, client: /
--- no_error_log eval
[qr/^(?:mock log line|END RequestId)/, '[error]', '[alert]', '[emerg]']



=== TEST 17: qualifier, and a full ARN: the ARN's region signs the request; the version that ran is X-Amz-Executed-Version
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/alias", "/arn" }) do
                local res = assert(client.request({ path = path }))
                ngx.say(path, " ", res.status, " ", res.body:match('"qualifier": ("?[^,]*)'),
                        " ", res.body:match('"signature": "(%w+)"'), " ",
                        res.headers["x-amz-executed-version"])
            end
        }
    }
    location = /alias {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "echo", qualifier = "live",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
    location = /arn {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run({
                function_name = "arn:aws:lambda:eu-west-1:123456789012:function:echo:7",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            })
        }
    }
--- response_body
/alias 200 "live" ok live
/arn 200 "7" ok 7



=== TEST 18: an event over Lambda's 6 MB synchronous limit: 413 before sending
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            -- 4.8 MB of binary is 6.4 MB once base64-encoded in the event
            local res = assert(client.request({ method = "POST", path = "/aws",
                body = string.rep("\255", 4800000),
                headers = { ["Content-Type"] = "application/octet-stream" } }))
            ngx.say(res.status)
            res = assert(client.request({ path = "/aws" }))
            ngx.say(res.status)
        }
    }
--- plugin_conf
{
    function_name = "echo",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- response_body
413
200
--- error_log
the invocation payload of 6400
exceeds Lambda's synchronous limit of 6291456 bytes



=== TEST 19: an Event payload over Lambda's 1 MB asynchronous limit: 413
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.request({ method = "POST", path = "/aws",
                                                body = string.rep("x", 1100000) }))
            ngx.say(res.status)
        }
    }
--- plugin_conf
{
    function_name = "echo",
    invocation_type = "Event",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- response_body
413
--- error_log
exceeds Lambda's asynchronous limit of 1048576 bytes



=== TEST 20: without authorization Lambda refuses the call: 502 and a log line
--- plugin_conf
{
    function_name = "echo",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
}
--- request
GET /aws
--- error_code: 502
--- error_log
Lambda Invoke API answered 403 MissingAuthenticationTokenException: Missing Authentication Token



=== TEST 21: a refused signature: AWS quotes the canonical request, the token is not logged
--- plugin_conf
{
    function_name = "echo",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "ASIATEMPEXAMPLE", secretkey = "wrongSecret",
                              session_token = "tempSessionTokenExample" } },
}
--- request
GET /aws
--- error_code: 502
--- error_log eval
qr/Lambda Invoke API answered 403 InvalidSignatureException: The request signature we calculated does not match the signature you provided\. Check your AWS Secret Access Key and signing method\. Consult the service documentation for details\., client: /
--- no_error_log
wrongSecret
Canonical String
String-to-Sign
x-amz-date:
AWS4-HMAC-SHA256
[alert]
[emerg]
--- response_body_unlike
tempSessionToken|wrongSecret



=== TEST 22: HEAD: the function's status and headers, no body
--- request
HEAD /aws
--- response_headers
X-Function: echo
--- response_body



=== TEST 23: a function slower than timeout: 504
--- plugin_conf
{
    function_name = "sleep-3000",
    timeout = 500,
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 504
--- error_log
did not answer within 500 ms



=== TEST 24: a Lambda endpoint that cannot be reached: 503
--- plugin_conf
{
    function_name = "echo",
    invoke_endpoint = "http://127.0.0.1:1",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 503
--- error_log
failed to process aws-lambda, err:



=== TEST 25: check_schema: function_name and its properties
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local confs = {
                { function_name = "f" },
                { function_name = "arn:aws:lambda:eu-west-1:123456789012:function:f:live",
                  qualifier = "live", aws_region = "eu-west-1", payload_format = "raw",
                  invocation_type = "Event", log_type = "Tail", function_error_status = 500 },
                {},
                { function_uri = "https://x", function_name = "f" },
                { function_uri = "https://x", payload_format = "raw" },
                { function_name = "my function" },
                { function_name = "f:a", qualifier = "b" },
                { function_name = "arn:aws:lambda:eu-west-1:123456789012:function:f",
                  aws_region = "us-east-1" },
                { function_name = "f", aws_region = "Mars" },
                { function_name = "f", payload_format = "apigw_v3" },
                { function_name = "f", invocation_type = "event" },
                { function_name = "f", function_error_status = 200 },
                { function_name = "f", invoke_endpoint = "lambda.local" },
                { function_name = "f", authorization = { apikey = "k" } },
                { function_name = "" },
            }
            for _, conf in ipairs(confs) do
                local ok, err = plugin.check_schema(conf)
                ngx.say(ok and "ok" or err)
            end
        }
    }
--- response_body
ok
ok
property "function_uri" is required
only one of "function_uri" and "function_name" may be set
property "payload_format" is only used with "function_name"
property "function_name" validation failed: function name "my function" must be 1 to 64 letters, digits, hyphens or underscores
property "qualifier" validation failed: differs from the qualifier in function_name
property "aws_region" validation failed: differs from the region in the function ARN
property "aws_region" validation failed: "Mars" is not a region name
property "payload_format" validation failed: matches none of the enum values
property "invocation_type" validation failed: matches none of the enum values
property "function_error_status" validation failed: expected 200 to be at least 400
property "invoke_endpoint" validation failed: must be an absolute http or https URL
property "authorization" validation failed: apikey cannot be used with "function_name": the Lambda Invoke API is authorised with iam
property "function_name" validation failed: string too short, expected at least 1, got 0



=== TEST 26: a function's log tail cannot forge error-log entries: it is escaped onto one line
--- plugin_conf
{
    function_name = "forged-log",
    log_type = "Tail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_log eval
['\n2026/01/01 00:00:00 [alert] forged\nEND RequestId: mock',
 qr/\[info\] .*aws-lambda: function log tail: START RequestId: .*\\nmock log line from forged-log\\n2026\/01\/01 00:00:00 \[alert\] forged\\nEND RequestId: mock, client: /]
--- no_error_log eval
[qr/^2026\/01\/01 00:00:00 \[alert\]/, qr/^(?:mock log line|END RequestId)/, '[error]',
 '[emerg]']



=== TEST 27: a refused signature, message on one line: cut before the quoted canonical request
--- plugin_conf
{
    function_name = "one-line-sig",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "ASIATEMPEXAMPLE", secretkey = "wrongSecret",
                              session_token = "tempSessionTokenExample" } },
}
--- request
GET /aws
--- error_code: 502
--- error_log eval
qr/Lambda Invoke API answered 403 InvalidSignatureException: The request signature we calculated does not match the signature you provided\., client: /
--- no_error_log
wrongSecret
Canonical String
x-amz-date:
[alert]
[emerg]



=== TEST 28: the client's proxy credentials (Proxy-Authorization, Proxy-Authenticate) stay out of the event
--- request
GET /aws
--- more_headers
Proxy-Authorization: Basic cHJveHk6c2VjcmV0
Proxy-Authenticate: Basic realm="proxy"
Proxy-Connection: keep-alive
X-End-To-End: kept
--- response_body_like chomp
"x-end-to-end": "kept"
--- response_body_unlike chomp
(?i)proxy-(?:authorization|authenticate|connection)|cHJveHk6c2VjcmV0



=== TEST 29: throttling (429) and an unavailable Lambda (503) keep Lambda's Retry-After
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, name in ipairs({ "throttle", "unavailable", "updating", "nosuchfunction" }) do
                local res = assert(client.request({ path = "/fn/" .. name }))
                ngx.say(name, " ", res.status, " Retry-After: ",
                        res.headers["retry-after"] or "none")
            end
        }
    }
    location ~ ^/fn/(.+)$ {
        access_by_lua_block {
            local name = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[name] = CONFS[name] or {
                function_name = name,
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[name])
        }
    }
--- response_body
throttle 429 Retry-After: 7
unavailable 503 Retry-After: 5
updating 503 Retry-After: none
nosuchfunction 502 Retry-After: none
--- error_log
Lambda Invoke API answered 429 TooManyRequestsException: Rate Exceeded.
Lambda Invoke API answered 503 ServiceUnavailableException: Service Unavailable



=== TEST 30: no Content-Type from the function: application/json for a proxy response (v2, v1), by the payload for raw
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/v2", "/v1", "/raw-json", "/raw-bytes" }) do
                local res = assert(client.request({ method = "POST", path = path,
                                                    body = '{"a": 1}' }))
                ngx.say(path, " ", res.status, " ", res.headers["content-type"], " ",
                        res.body)
            end
        }
    }
    location ~ ^/(v2|v1|raw-json|raw-bytes)$ {
        access_by_lua_block {
            local route = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[route] = CONFS[route] or {
                function_name = ({ v2 = "untyped", v1 = "untyped", ["raw-json"] = "raw-echo",
                                   ["raw-bytes"] = "malformed" })[route],
                payload_format = ({ v2 = "apigw_v2", v1 = "apigw_v1" })[route] or "raw",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[route])
        }
    }
--- response_body
/v2 200 application/json no content-type
/v1 200 application/json no content-type
/raw-json 200 application/json {"a": 1}
/raw-bytes 200 application/octet-stream {not json
