# The runtime's state for operators: the stats after known traffic, merged over all
# workers through the shared dict, as a Lua table, JSON and Prometheus text; no secret
# in any of them.
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "STATS-APIKEY-75", "KeySecret";

$ENV{TEST_NGINX_TLS_PORT} //= 1986;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('timeout', 30) if !defined $block->timeout;
});

run_tests();

__DATA__

=== TEST 1: known traffic: counted by outcome, latency and endpoint; no secret in the output
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { apikey = "STATS-APIKEY-75" },
    timeout = 500,
    max_req_body_size = 10,
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local stats = require("apisix.plugins.aws-lambda.stats")
            assert(client.request({ path = "/aws/status/404" }).status == 404)
            -- over the route's timeout (500 ms)
            assert(client.request({ path = "/aws/sleep/2000" }).status == 504)
            -- over max_req_body_size: refused before the runtime
            assert(client.request({ method = "POST", path = "/aws/httptrigger",
                                    body = "0123456789abcdef" }).status == 413)
            -- last, so that their connection is the one left idle in the pool
            for _ = 1, 5 do
                assert(client.request({ path = "/aws/httptrigger" }).status == 200)
            end
            local s = stats.collect()
            ngx.say("workers: ", s.workers, " all: ", s.all_workers)
            ngx.say("2xx: ", s.requests["2xx"], " 4xx: ", s.requests["4xx"],
                    " 5xx: ", s.requests["5xx"])
            ngx.say("timeout: ", s.failures.timeout, " too_large: ", s.failures.too_large,
                    " function_error: ", s.failures.function_error)
            ngx.say("in flight: ", s.in_flight, " queue: ", s.queue_depth)
            local lat = s.time_to_head_seconds
            ngx.say("answers timed: ", lat.count, " +Inf: ", lat.buckets[#lat.buckets].count,
                    " sum > 0: ", lat.sum > 0)
            local ep = s.endpoints["http://127.0.0.1:$TEST_NGINX_MOCK_PORT"]
            ngx.say("endpoint: opened >= 1: ", ep.connections_opened >= 1,
                    " idle >= 1: ", ep.idle >= 1, " active: ", ep.active,
                    " tls: ", ep.tls_handshakes_full + ep.tls_handshakes_resumed)
            ngx.say("restarts: ", s.runtime_restarts)

            local prom = stats.prometheus()
            for _, line in ipairs({
                'apisix_aws_lambda_requests_total{code="2xx"} 5',
                'apisix_aws_lambda_failures_total{reason="timeout"} 1',
                "# TYPE apisix_aws_lambda_time_to_head_seconds histogram",
                'apisix_aws_lambda_time_to_head_seconds_bucket{le="+Inf"} 6',
                "apisix_aws_lambda_time_to_head_seconds_count 6",
            }) do
                ngx.say(line, ": ", prom:find("\n" .. line .. "\n", 1, true) ~= nil)
            end
            local json = stats.json()
            ngx.say("json: ", json:find('"2xx":5', 1, true) ~= nil)
            ngx.say("secret in json: ", json:find("STATS-APIKEY-75", 1, true) ~= nil,
                    ", in metrics: ", prom:find("STATS-APIKEY-75", 1, true) ~= nil)
        }
    }
--- response_body
workers: 1 all: true
2xx: 5 4xx: 2 5xx: 1
timeout: 1 too_large: 1 function_error: 0
in flight: 0 queue: 0
answers timed: 6 +Inf: 6 sum > 0: true
endpoint: opened >= 1: true idle >= 1: true active: 0 tls: 0
restarts: 0
apisix_aws_lambda_requests_total{code="2xx"} 5: true
apisix_aws_lambda_failures_total{reason="timeout"} 1: true
# TYPE apisix_aws_lambda_time_to_head_seconds histogram: true
apisix_aws_lambda_time_to_head_seconds_bucket{le="+Inf"} 6: true
apisix_aws_lambda_time_to_head_seconds_count 6: true
json: true
secret in json: false, in metrics: false
--- error_log
did not answer within 500 ms
larger than max_req_body_size



=== TEST 2: without the shared dict: this worker only, said in the output and the log
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            assert(require("client").request({ path = "/aws" }).status == 200)
            local s = require("apisix.plugins.aws-lambda.stats").collect()
            ngx.say("workers: ", s.workers, " all: ", s.all_workers, " 2xx: ", s.requests["2xx"])
        }
    }
--- response_body
workers: 1 all: false 2xx: 1
--- error_log
no lua_shared_dict aws-lambda-stats



=== TEST 3: the stats in a location, as the README shows for plain OpenResty
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location = /aws-lambda/stats {
        allow 127.0.0.1;
        deny all;
        content_by_lua_block {
            ngx.header["Content-Type"] = "application/json"
            ngx.print(require("apisix.plugins.aws-lambda.stats").json())
        }
    }
    location = /aws-lambda/metrics {
        allow 127.0.0.1;
        deny all;
        content_by_lua_block {
            ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            ngx.print(require("apisix.plugins.aws-lambda.stats").prometheus())
        }
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            assert(client.request({ path = "/aws" }).status == 200)
            local res = assert(client.request({ path = "/aws-lambda/stats" }))
            ngx.say(res.status, " ", res.headers["content-type"], " ",
                    res.body:find('"2xx":1', 1, true) ~= nil)
            res = assert(client.request({ path = "/aws-lambda/metrics" }))
            ngx.say(res.status, " ", res.headers["content-type"], " ",
                    res.body:find('apisix_aws_lambda_requests_total{code="2xx"} 1', 1, true)
                    ~= nil)
        }
    }
--- response_body
200 application/json true
200 text/plain; version=0.0.4; charset=utf-8 true



=== TEST 4: TLS: new connections counted, the first handshake full, later ones resumed
--- main_config
    env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
    server {
        listen $TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/httptrigger", keepalive = false }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _ = 1, 4 do
                assert(client.request({ path = "/aws" }).status == 200)
            end
            local s = require("apisix.plugins.aws-lambda.stats").collect()
            local ep = s.endpoints["https://127.0.0.1:$TEST_NGINX_TLS_PORT"]
            ngx.say("opened: ", ep.connections_opened, " full: ", ep.tls_handshakes_full,
                    " resumed: ", ep.tls_handshakes_resumed, " idle: ", ep.idle)
        }
    }
--- response_body
opened: 4 full: 1 resumed: 3 idle: 0



=== TEST 5: a credential source that is down: fetches, failures and the last error; no secret
--- main_config
    env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/creds;
    env AWS_CONTAINER_AUTHORIZATION_TOKEN=STATS-APIKEY-75-TOKEN;
    env AWS_EC2_METADATA_DISABLED=true;
    env AWS_SHARED_CREDENTIALS_FILE=/nonexistent/aws-lambda-native-test/credentials;
    env AWS_CONFIG_FILE=/nonexistent/aws-lambda-native-test/config;
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger",
    timeout = 10000,
    authorization = { iam = {} },
}
--- config
    location /t {
        content_by_lua_block {
            local stats = require("apisix.plugins.aws-lambda.stats")
            ngx.say("status: ", require("client").request({ path = "/aws" }).status)
            -- The source's own retries may outlast the request's wait: wait for the
            -- fetch to end.
            local s
            local deadline = ngx.now() + 15
            repeat
                s = stats.collect()
                ngx.sleep(0.1)
                ngx.update_time()
            until s.credentials.failures >= 1 or ngx.now() > deadline
            local c = s.credentials
            ngx.say("fetches >= 1: ", c.fetches >= 1, " failures >= 1: ", c.failures >= 1)
            ngx.say("no_credentials: ", s.failures.no_credentials, " 5xx: ", s.requests["5xx"])
            ngx.say("last error names the source: ", c.last_error:find("chain", 1, true) ~= nil)
            ngx.say("last error at: ", math.abs(c.last_error_at - ngx.time()) < 600)
            local text = stats.json() .. stats.prometheus()
            ngx.say("token shown: ", text:find("STATS-APIKEY-75", 1, true) ~= nil)
        }
    }
--- response_body
status: 503
fetches >= 1: true failures >= 1: true
no_credentials: 1 5xx: 1
last error names the source: true
last error at: true
token shown: false
--- error_log
no AWS credentials



=== TEST 6: bad input: an unreadable snapshot in the dict is skipped and logged; an unknown format is refused
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            assert(require("client").request({ path = "/aws" }).status == 200)
            ngx.shared["aws-lambda-stats"]:set("aws-lambda-stats:worker:1", "{not json", 5)
            local s = require("apisix.plugins.aws-lambda.stats").collect()
            ngx.say("workers: ", s.workers, " 2xx: ", s.requests["2xx"])
            local ok, err = pcall(require("aws_lambda_native").stats_report, {}, "xml", true)
            ngx.say(ok, " ", tostring(err):match("unknown stats format[^\n]*"))
        }
    }
--- response_body
workers: 1 2xx: 1
false unknown stats format "xml": json or prometheus
--- error_log
a worker's statistics were unreadable



=== TEST 7: a function error through the Invoke API is counted as one; the secret key is not shown
--- http_config
    lua_shared_dict aws-lambda-stats 1m;
--- plugin_conf
{
    function_name = "fail",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- config
    location /t {
        content_by_lua_block {
            local stats = require("apisix.plugins.aws-lambda.stats")
            ngx.say("status: ", require("client").request({ path = "/aws" }).status)
            local s = stats.collect()
            ngx.say("function_error: ", s.failures.function_error, " 5xx: ", s.requests["5xx"],
                    " bad_response: ", s.failures.bad_response)
            local text = stats.json() .. stats.prometheus()
            ngx.say("secret shown: ", text:find("KeySecret", 1, true) ~= nil)
        }
    }
--- response_body
status: 502
function_error: 1 5xx: 1 bad_response: 0
secret shown: false
--- error_log
the function failed (Unhandled)
