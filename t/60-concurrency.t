# The worker never blocks while functions run: one worker (forked by a master,
# so the runtime is built after fork) holds 200 concurrent 1 s invocations, and a
# fast route on the same worker answers while they are in flight.
use t::TestAWSLambda 'no_plan';

master_on();
workers(1);
worker_connections(1024);

run_tests();

__DATA__

=== TEST 1: 200 concurrent 1 s calls all succeed, and were not serialised
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/sleep", timeout = 30000 }
--- config
    location = /fast {
        return 200 "fast\n";
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            ngx.update_time()
            local start = ngx.now()
            local threads = {}
            for i = 1, 200 do
                threads[i] = ngx.thread.spawn(client.request,
                                              { path = "/aws/1000", timeout = 30000 })
            end
            ngx.sleep(0.1)
            ngx.update_time()
            local fast_start = ngx.now()
            local fast = assert(client.request({ path = "/fast" }))
            ngx.update_time()
            local fast_elapsed = ngx.now() - fast_start

            local ok = 0
            for i = 1, 200 do
                local done, res = ngx.thread.wait(threads[i])
                if done and res and res.status == 200 and res.body == "slept 1000\n" then
                    ok = ok + 1
                end
            end
            ngx.update_time()
            local total = ngx.now() - start
            ngx.say("succeeded: ", ok)
            ngx.say("fast route: ", fast.status)
            -- Generous margins, not speed claims: a blocked worker would make the fast
            -- request wait for the 1 s calls, and serialised calls take 200 s.
            ngx.say("fast route answered while calls were in flight: ", fast_elapsed < 0.9)
            ngx.say("calls overlapped: ", total < 20)
        }
    }
--- request
GET /t
--- timeout: 60
--- response_body
succeeded: 200
fast route: 200
fast route answered while calls were in flight: true
calls overlapped: true
--- no_error_log
[error]
[alert]



=== TEST 2: the library loaded in the master before fork serves from the worker's own runtime
--- http_config
    init_by_lua_block {
        -- load the library and touch its per-process state in the master
        local native = require("apisix.plugins.aws-lambda.native")
        native.stats()
        CONF = { function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
    }
--- config
    location /aws {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(CONF)
        }
    }
    location /t {
        content_by_lua_block {
            local res = assert(require("client").request({ path = "/aws" }))
            local socket = require("apisix.plugins.aws-lambda.native").stats().socket
            ngx.say(res.status, " ", res.body:sub(1, -2))
            ngx.say("socket of this worker: ",
                    socket:find("-" .. ngx.worker.pid() .. ".sock", 1, true) ~= nil)
        }
    }
--- response_body
200 aws lambda invoked
socket of this worker: true
