# Direct invocation with response streaming (invoke_mode: response_stream): the
# mock's InvokeWithResponseStream (t/mock/lambda_api.py) verifies each signature with
# botocore and answers with event-stream frames, chunked, as Lambda does.
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "KeySecret";

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->plugin_conf && !defined $block->config) {
        $block->set_value('plugin_conf', <<'_EOC_');
{
    function_name = "stream-http",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the HTTP integration prelude: status, headers and cookies from it, the body after its 8 NULs
--- request
GET /aws/x
--- error_code: 201
--- response_headers
Content-Type: text/event-stream
X-Function: stream-http
X-Amz-Executed-Version: $LATEST
--- raw_response_headers_like
Set-Cookie: a=1; Path=/\r
Set-Cookie: b=2; Path=/\r
--- response_body eval
"data: one\n\ndata: two\n\ndata: three\n\n"



=== TEST 2: the prelude split inside its JSON and inside its NULs, frames split across 7-byte HTTP chunks
--- plugin_conf
{
    function_name = "stream-split",
    invoke_mode = "response_stream",
    payload_format = "apigw_v1",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 201
--- response_headers
Content-Type: text/event-stream
X-Function: stream-split
--- response_body eval
"data: one\n\ndata: two\n\ndata: three\n\n"



=== TEST 3: raw: the payload is the body, with the function's stream content type
--- plugin_conf
{
    function_name = "stream-plain",
    invoke_mode = "response_stream",
    payload_format = "raw",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
POST /aws
{"a": 1}
--- response_headers
Content-Type: text/plain
--- response_body
chunk 0
chunk 1
chunk 2



=== TEST 4: the event is the same as Invoke's (apigw_v1 checked by the mock), the call signed for lambda
--- plugin_conf
{
    function_name = "stream-echo",
    invoke_mode = "response_stream",
    payload_format = "apigw_v1",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
POST /aws/users/7?a=1
hello
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{.*"httpMethod":"POST".*"path":"\/aws\/users\/7".*\}\nsignature: ok format: v1 problems: 0\n$/s



=== TEST 5: a function error in InvokeComplete before anything was written: function_error_status, the cause logged
--- plugin_conf
{
    function_name = "stream-fail-early",
    invoke_mode = "response_stream",
    function_error_status = 500,
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 500
--- response_headers
X-Amz-Executed-Version: $LATEST
--- error_log
the function failed (Unhandled): Error: boom mid-stream
--- response_body_unlike
boom



=== TEST 6: a function error in InvokeComplete after the head and some of the body: the answer is cut (no last chunk), the cause logged
--- plugin_conf
{
    function_name = "stream-fail",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            ngx.say(res.status, " ", res.headers["content-type"], " complete: ", res.complete)
            ngx.print(res.body)
        }
    }
--- response_body eval
"201 text/event-stream complete: false\ndata: one\n\n"
--- error_log
the function's answer broke off after it began: the function failed (Unhandled): Error: boom mid-stream



=== TEST 7: an exception event mid-stream: the answer is cut, the exception logged
--- plugin_conf
{
    function_name = "stream-exception",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            ngx.say(res.status, " complete: ", res.complete)
            ngx.print(res.body)
        }
    }
--- response_body eval
"201 complete: false\ndata: one\n\n"
--- error_log
the function's answer broke off after it began: Lambda Invoke API stream exception ServiceException: the stream broke



=== TEST 8: log_type Tail: InvokeComplete's LogResult in the error log at info level, escaped onto one line
--- plugin_conf
{
    function_name = "stream-http",
    invoke_mode = "response_stream",
    log_type = "Tail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws
--- error_code: 201
--- error_log eval
qr/\[info\] .*aws-lambda: function log tail: START RequestId: mock Version: \$LATEST\\nmock log line from stream-http\\nEND RequestId: mock, client: /
--- no_error_log eval
[qr/^(?:mock log line|END RequestId)/, '[error]', '[alert]', '[emerg]']



=== TEST 9: timeout bounds the time to the head (504); stream_idle_timeout a stall after it (the answer is cut)
--- config
    location /t {
        content_by_lua_block {
            local client = require("stream_client")
            for _, path in ipairs({ "/late", "/stall" }) do
                local res = assert(client.get({ path = path }))
                ngx.say(path, " ", res.status, " complete: ", res.complete)
                if res.status == 201 then
                    ngx.print(res.body)
                end
            end
        }
    }
    location ~ ^/(late|stall)$ {
        access_by_lua_block {
            local name = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[name] = CONFS[name] or {
                function_name = name == "late" and "stream-late-3000" or "stream-stall-3000",
                invoke_mode = "response_stream",
                timeout = 500,
                stream_idle_timeout = 500,
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[name])
        }
    }
--- response_body eval
"/late 504 complete: true\n/stall 201 complete: false\ndata: one\n\n"
--- error_log
did not answer within 500 ms
the function sent nothing for 500 ms (stream_idle_timeout)



=== TEST 10: DryRun: 204; Lambda's errors as with Invoke (throttling 429 with Retry-After, a missing function 502)
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/dryrun", "/throttle", "/nosuch" }) do
                local res = assert(client.request({ method = "GET", path = path }))
                ngx.say(path, " ", res.status, " [", res.headers["retry-after"] or "", "]")
            end
        }
    }
    location ~ ^/(dryrun|throttle|nosuch)$ {
        access_by_lua_block {
            local name = ngx.var[1]
            CONFS = CONFS or {}
            CONFS[name] = CONFS[name] or {
                function_name = name == "dryrun" and "stream-http" or name,
                invocation_type = name == "dryrun" and "DryRun" or nil,
                invoke_mode = "response_stream",
                invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
                authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
            }
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[name])
        }
    }
--- response_body
/dryrun 204 []
/throttle 429 [7]
/nosuch 502 []
--- error_log
Lambda Invoke API answered 429 TooManyRequestsException: Rate Exceeded.
Lambda Invoke API answered 404 ResourceNotFoundException



=== TEST 11: the first event reaches the client before the function sent the last; a streamed answer is not refused for its size
--- plugin_conf
{
    function_name = "stream-stall-1000",
    invoke_mode = "response_stream",
    max_resp_body_size = 10,
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            ngx.say(res.status, " ", res.headers["transfer-encoding"], " complete: ",
                    res.complete)
            ngx.print(res.body)
            local first = res.pieces[1].at - res.started
            local last = res.pieces[#res.pieces].at - res.started
            ngx.log(ngx.INFO, "first byte after ", first, " s, last after ", last, " s")
            -- the function sends the second event 1 s after the first
            ngx.say("first before last: ", last - first > 0.7, " ", first < 0.6)
        }
    }
--- response_body
201 chunked complete: true
data: one

data: two

data: three

first before last: true true



=== TEST 12: 2 MiB in 128 events, frames cut across HTTP chunks: every byte in order; HEAD: the head only
--- plugin_conf
{
    function_name = "stream-big-128",
    invoke_mode = "response_stream",
    payload_format = "raw",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            local expected = {}
            for i = 0, 127 do
                expected[#expected + 1] = string.rep(string.format("%07d\n", i), 2048)
            end
            ngx.say(res.status, " ", res.headers["content-type"], " complete: ", res.complete,
                    " length: ", #res.body, " intact: ", res.body == table.concat(expected))
            local client = require("client")
            local head = assert(client.request({ method = "HEAD", path = "/aws" }))
            ngx.say("HEAD ", head.status, " ", head.headers["content-type"], " [", head.body, "]")
        }
    }
--- response_body
200 application/octet-stream complete: true length: 2097152 intact: true
HEAD 200 application/octet-stream []



=== TEST 13: a client that goes away mid-stream: no ticket is left once the function sends again (the next write fails or the stream ends)
--- plugin_conf
{
    function_name = "stream-stall-1000",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local native = require("apisix.plugins.aws-lambda.native")
            local res = assert(require("stream_client").get({ path = "/aws", abort_after = 5 }))
            ngx.say(res.status, " complete: ", res.complete)
            local stats
            for _ = 1, 50 do
                ngx.sleep(0.05)
                stats = native.stats()
                if stats.tickets == 0 then
                    break
                end
            end
            ngx.say("tickets: ", stats.tickets, ", waiting: ", stats.waiting)
        }
    }
--- response_body
201 complete: false
tickets: 0, waiting: 0
--- no_error_log
[error]



=== TEST 14: check_schema: invoke_mode
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local confs = {
                { function_name = "f", invoke_mode = "response_stream" },
                { function_name = "f", invoke_mode = "buffered", invocation_type = "Event" },
                { function_name = "f", invoke_mode = "response_stream",
                  invocation_type = "DryRun", log_type = "Tail" },
                { function_name = "f", invoke_mode = "response_stream",
                  invocation_type = "Event" },
                { function_name = "f", invoke_mode = "stream" },
                { function_uri = "https://x", invoke_mode = "response_stream" },
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
ok
property "invocation_type" validation failed: Event cannot be used with invoke_mode "response_stream": InvokeWithResponseStream takes RequestResponse or DryRun
property "invoke_mode" validation failed: matches none of the enum values
property "invoke_mode" is only used with "function_name"



=== TEST 15: log_type Tail on an answer that really streams: the tail, which Lambda sends last, in the error log at info level
--- plugin_conf
{
    function_name = "stream-stall-300",
    invoke_mode = "response_stream",
    log_type = "Tail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            ngx.say(res.status, " ", res.headers["transfer-encoding"], " complete: ",
                    res.complete)
        }
    }
--- response_body
201 chunked complete: true
--- error_log eval
qr/\[info\] .*aws-lambda: function log tail: START RequestId: mock Version: \$LATEST\\nmock log line from stream-stall-300\\nEND RequestId: mock, client: /
--- no_error_log
[error]



=== TEST 16: log_type Tail on a function error after the head: the cause and the tail on one error-log line
--- plugin_conf
{
    function_name = "stream-fail",
    invoke_mode = "response_stream",
    log_type = "Tail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("stream_client").get({ path = "/aws" }))
            ngx.say(res.status, " complete: ", res.complete)
        }
    }
--- response_body
201 complete: false
--- error_log eval
qr/\[error\] .*the function's answer broke off after it began: the function failed \(Unhandled\): Error: boom mid-stream; function log tail: START RequestId: mock Version: \$LATEST\\nmock log line from stream-fail\\nEND RequestId: mock, client: /



=== TEST 17: the connection goes back to the pool after a streamed answer (Lambda ends the body after InvokeComplete)
--- plugin_conf
{
    function_name = "stream-stall-200",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            for _ = 1, 3 do
                local res = assert(require("stream_client").get({ path = "/aws" }))
                ngx.say(res.status, " ", res.headers["transfer-encoding"], " complete: ",
                        res.complete)
            end
            local s = require("apisix.plugins.aws-lambda.stats").collect()
            local ep = s.endpoints["http://127.0.0.1:$TEST_NGINX_MOCK_PORT"]
            ngx.say("connections opened: ", ep.connections_opened, ", idle: ", ep.idle)
        }
    }
--- response_body
201 chunked complete: true
201 chunked complete: true
201 chunked complete: true
connections opened: 1, idle: 1
--- no_error_log
[error]



=== TEST 18: and after a small answer handed over whole
--- plugin_conf
{
    function_name = "stream-http",
    invoke_mode = "response_stream",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            for _ = 1, 3 do
                local res = assert(require("client").request({ path = "/aws" }))
                ngx.say(res.status, " ", res.body:sub(1, 9))
            end
            local s = require("apisix.plugins.aws-lambda.stats").collect()
            local ep = s.endpoints["http://127.0.0.1:$TEST_NGINX_MOCK_PORT"]
            ngx.say("connections opened: ", ep.connections_opened, ", idle: ", ep.idle)
        }
    }
--- response_body
201 data: one
201 data: one
201 data: one
connections opened: 1, idle: 1
--- no_error_log
[error]
