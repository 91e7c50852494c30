# The connection pool at the default keepalive_pool (5), counted at the mock function:
# under load nothing is closed and reopened; once the load stops, the idle connections
# are back within keepalive_pool after the grace period (1 s) and a sweep; the
# keepalive_timeout still ends them; without keepalive every request has its own
# connection; new TLS connections resume the sessions of earlier ones.
use t::TestAWSLambda 'no_plan';

$ENV{TEST_NGINX_TLS_PORT} //= 1986;

master_on();
workers(1);
worker_connections(4096);

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('timeout', 90) if !defined $block->timeout;
});

run_tests();

__DATA__

=== TEST 1: 32 concurrent clients at the defaults: no churn, then back within keepalive_pool
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local load = require("load")
            local mock = $TEST_NGINX_MOCK_PORT
            -- the connections of the nginx of an earlier test are gone
            load.wait_open(mock, 0, 5)
            local before = load.conns(mock).accepted
            local ok = load.run(32, 25, "/aws")
            local new = load.conns(mock).accepted - before
            ngx.log(ngx.NOTICE, "pool test: ", new, " new connections for ", ok, " requests")
            ngx.say("succeeded: ", ok)
            -- The pool first grows to the load's concurrency (32 connections at most);
            -- from then on requests reuse them. One load without a pause: a pause longer
            -- than the grace period lets the pool shrink, as it should. (The count itself
            -- when it is too high.)
            ngx.say("new connections per request after the first 32 <= 0.05: ",
                    (new - 32) / 800 <= 0.05 or new)
            -- the grace period (1 s) plus one second
            ngx.sleep(2)
            local open = load.wait_open(mock, 5, 3)
            ngx.say("idle connections within keepalive_pool: ", open <= 5 or open)
            ngx.say("idle connections kept: ", load.conns(mock).open)
        }
    }
--- response_body
succeeded: 800
new connections per request after the first 32 <= 0.05: true
idle connections within keepalive_pool: true
idle connections kept: 5



=== TEST 2: 128 concurrent clients at the defaults: no churn, then back within keepalive_pool
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local load = require("load")
            local mock = $TEST_NGINX_MOCK_PORT
            load.wait_open(mock, 0, 5)
            local before = load.conns(mock).accepted
            local ok = load.run(128, 12, "/aws")
            local new = load.conns(mock).accepted - before
            ngx.log(ngx.NOTICE, "pool test: ", new, " new connections for ", ok, " requests")
            ngx.say("succeeded: ", ok)
            ngx.say("new connections per request after the first 128 <= 0.05: ",
                    (new - 128) / 1536 <= 0.05 or new)
            ngx.sleep(2)
            local open = load.wait_open(mock, 5, 3)
            ngx.say("idle connections within keepalive_pool: ", open <= 5 or open)
            ngx.say("idle connections kept: ", load.conns(mock).open)
        }
    }
--- response_body
succeeded: 1536
new connections per request after the first 128 <= 0.05: true
idle connections within keepalive_pool: true
idle connections kept: 5



=== TEST 3: keepalive_timeout still ends every idle connection
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger", keepalive_timeout = 1000 }
--- config
    location /t {
        content_by_lua_block {
            local load = require("load")
            local mock = $TEST_NGINX_MOCK_PORT
            load.wait_open(mock, 0, 5)
            ngx.say("succeeded: ", load.run(32, 4, "/aws"))
            ngx.say("connections open under load: ", load.conns(mock).open > 0)
            -- the keepalive_timeout (1 s) plus one second
            ngx.sleep(2)
            ngx.say("idle connections left: ", load.wait_open(mock, 0, 3))
        }
    }
--- response_body
succeeded: 128
connections open under load: true
idle connections left: 0



=== TEST 4: keepalive false: one connection per request, none kept
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger", keepalive = false }
--- config
    location /t {
        content_by_lua_block {
            local load = require("load")
            local mock = $TEST_NGINX_MOCK_PORT
            load.wait_open(mock, 0, 5)
            local before = load.conns(mock).accepted
            ngx.say("succeeded: ", load.run(8, 5, "/aws"))
            ngx.say("new connections: ", load.conns(mock).accepted - before)
            ngx.say("idle connections left: ", load.wait_open(mock, 0, 3))
        }
    }
--- response_body
succeeded: 40
new connections: 40
idle connections left: 0



=== TEST 5: new TLS connections resume sessions: counted at the TLS server ($ssl_session_reused)
--- main_config
    env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;
--- http_config
    lua_shared_dict tls_counts 1m;
    server {
        listen $TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_set_header Host $http_host;
            log_by_lua_block {
                if ngx.var.connection_requests == "1" then
                    local counts = ngx.shared.tls_counts
                    counts:incr("new", 1, 0)
                    if ngx.var.ssl_session_reused == "r" then
                        counts:incr("resumed", 1, 0)
                    end
                end
            }
        }
    }
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/httptrigger", keepalive = false }
--- config
    location /t {
        content_by_lua_block {
            local load = require("load")
            local counts = ngx.shared.tls_counts
            -- One count from an empty session store, over ten bursts of 32 requests
            -- sent at once; every request opens a connection (keepalive false). A
            -- TLS 1.3 ticket resumes one connection; nginx sends two after a full
            -- handshake and one after a resumed one, so the tickets in hand never
            -- shrink, and a full handshake is only paid while fewer are in hand than
            -- connections being opened: at most 32 in all, however the handshakes
            -- overlap (counted exactly: 32 when the first burst's all overlap). With
            -- rustls's own store (8 tickets) any burst whose handshakes overlap wider
            -- than 8 pays again; src/client/tls.rs's test shows it without timing.
            local ok = 0
            for _ = 1, 10 do
                ok = ok + load.run(32, 1, "/aws")
            end
            local new, resumed = counts:get("new") or 0, counts:get("resumed") or 0
            ngx.log(ngx.NOTICE, "TLS test: ", resumed, " of ", new, " connections resumed")
            ngx.say("succeeded: ", ok)
            ngx.say("new TLS connections: ", new)
            ngx.say("full handshakes <= 32: ", new - resumed <= 32 or new - resumed)
        }
    }
--- response_body
succeeded: 320
new TLS connections: 320
full handshakes <= 32: true
