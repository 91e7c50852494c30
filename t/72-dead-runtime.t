# A worker whose runtime thread dies: the calls it held answer 503 at once, the next
# request fails fast with 503 and the cause in the error log, and the request after
# that is served by a new runtime. The thread is killed through the test hook, which
# needs AWSL_TEST_HOOKS=1 in the worker's environment (nginx.conf's `env`).
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: the test hook is off unless nginx.conf passes AWSL_TEST_HOOKS=1
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            ngx.say(assert(client.request({ path = "/aws/httptrigger" })).status)
            ngx.say(select(2, require("aws_lambda_native").test_kill_runtime()))
            ngx.say(assert(client.request({ path = "/aws/httptrigger" })).status)
        }
    }
--- response_body
200
test hooks are off (AWSL_TEST_HOOKS=1 was not set when the runtime started)
200



=== TEST 2: a dead runtime: its calls get 503 at once, the next one fails fast, then a new runtime serves
--- main_config
env AWSL_TEST_HOOKS=1;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT", timeout = 60000 }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local native = require("apisix.plugins.aws-lambda.native")
            ngx.say("before: ", assert(client.request({ path = "/aws/httptrigger" })).status)
            -- a call the runtime holds when it dies: the function takes 5 s, the route
            -- allows 60 s, and the client waits 20 s
            local slow = ngx.thread.spawn(function()
                return client.request({ path = "/aws/sleep/5000", timeout = 20000 })
            end)
            for _ = 1, 200 do
                if native.stats().waiting > 0 then
                    break
                end
                ngx.sleep(0.02)
            end
            ngx.say("in flight: ", native.stats().waiting)
            assert(require("aws_lambda_native").test_kill_runtime())
            local _, res = ngx.thread.wait(slow)
            ngx.say("the held call: ", res.status)
            ngx.say("waiting: ", native.stats().waiting)
            ngx.say("next: ", assert(client.request({ path = "/aws/httptrigger" })).status)
            ngx.say("after: ", assert(client.request({ path = "/aws/httptrigger" })).status)
            ngx.say("restarts: ", native.stats().runtime_restarts)
            ngx.say("tickets left: ", native.stats().tickets)
        }
    }
--- response_body
before: 200
in flight: 1
the held call: 503
waiting: 0
next: 503
after: 200
restarts: 1
tickets left: 0
--- error_log eval
[
    qr/\[error\].*failed to process aws-lambda, err: the native runtime of this worker stopped: it panicked: killed on purpose through the test hook \(AWSL_TEST_HOOKS=1\), client/,
    qr/\[error\].*failed to process aws-lambda, err: the native runtime of this worker stopped: it panicked: killed on purpose through the test hook \(AWSL_TEST_HOOKS=1\); a new runtime was started, client/,
]
--- no_error_log
[alert]
[emerg]
completion pump



=== TEST 3: runtimes that die one after another are each replaced, with no pump left behind
--- main_config
env AWSL_TEST_HOOKS=1;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT" }
--- config
    location /t {
        content_by_lua_block {
            local ffi = require("ffi")
            local client = require("client")
            local native = require("apisix.plugins.aws-lambda.native")
            local lib = require("aws_lambda_native")
            local C = ffi.load(package.searchpath("aws_lambda_native", package.cpath))
            for round = 1, 5 do
                ngx.say(round, ": ", assert(client.request({ path = "/aws/httptrigger" })).status)
                assert(lib.test_kill_runtime())
                while C.awsl_worker_check() ~= C.AWSL_DEAD do
                    ngx.sleep(0.001)
                end
                -- the pump may or may not have seen the runtime stop by now
                ngx.say(round, ": ", assert(client.request({ path = "/aws/httptrigger" })).status)
            end
            ngx.say(assert(client.request({ path = "/aws/httptrigger" })).status)
            ngx.say("restarts: ", native.stats().runtime_restarts)
            ngx.sleep(0.2)
            ngx.say("waiting: ", native.stats().waiting)
        }
    }
--- response_body
1: 200
1: 503
2: 200
2: 503
3: 200
3: 503
4: 200
4: 503
5: 200
5: 503
200
restarts: 5
waiting: 0
--- error_log
a new runtime was started
--- no_error_log
[alert]
[emerg]
completion pump
