# The stats cover every worker: two workers each call the function, and the report
# that one of them serves adds up both (through the shared dict).
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "STATS-APIKEY-76";

master_on();
workers(2);

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('timeout', 30) if !defined $block->timeout;
});

run_tests();

__DATA__

=== TEST 1: two workers: each calls the function 3 times, the stats add up both
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
    init_worker_by_lua_block {
        -- Each worker makes its own calls, so both are known to have traffic.
        ngx.timer.at(0, function()
            local native = require("apisix.plugins.aws-lambda.native")
            local route = assert(native.route_new({
                function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger",
                authorization = { apikey = "STATS-APIKEY-76" },
            }))
            for _ = 1, 3 do
                local status, _, _, _, err = native.invoke(route, "GET", nil, "", "", "",
                                                           nil, 5000)
                if status ~= 200 then
                    ngx.log(ngx.ERR, "call failed: ", status, " ", err)
                end
            end
        end)
    }
--- config
    location /t {
        content_by_lua_block {
            local stats = require("apisix.plugins.aws-lambda.stats")
            -- Snapshots are published every second: wait for both workers' last ones.
            local s
            local deadline = ngx.now() + 10
            repeat
                ngx.sleep(0.2)
                ngx.update_time()
                s = stats.collect()
            until (s.workers == 2 and s.requests["2xx"] == 6) or ngx.now() > deadline
            local pids = {}
            for _, pid in ipairs(s.pids) do
                pids[pid] = true
            end
            ngx.say("workers: ", s.workers, " all: ", s.all_workers)
            ngx.say("distinct pids: ", #s.pids == 2 and s.pids[1] ~= s.pids[2])
            ngx.say("this worker included: ", pids[ngx.worker.pid()] == true)
            ngx.say("2xx: ", s.requests["2xx"])
            ngx.say("answers timed: ", s.time_to_head_seconds.count)
            local prom = stats.prometheus()
            ngx.say(prom:match("\napisix_aws_lambda_workers %d+"))
            ngx.say(prom:match('\napisix_aws_lambda_requests_total{code="2xx"} %d+'))
        }
    }
--- response_body
workers: 2 all: true
distinct pids: true
this worker included: true
2xx: 6
answers timed: 6

apisix_aws_lambda_workers 2

apisix_aws_lambda_requests_total{code="2xx"} 6
