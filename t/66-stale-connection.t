# A pooled connection that the function's side closed as the request went out on it
# (issue 16, item 4). The mock's stale mode (POST /_stale on) closes every connection
# upon its second request, after reading it and before serving it, so each request
# that reuses a pooled connection meets one, deterministically.
#
# - An idempotent request (GET) is sent again on a new connection: no client sees it.
# - A POST may have reached the function: it is not sent again, and the client gets
#   502. The broken connection leaves the pool, so the next request opens a new one:
#   of requests in a row, every second one fails (docs/bad-input.md).
# - An Invoke (a POST) likewise: an `Event` invocation never runs twice, even when the
#   function ran it and then lost the connection (POST /_stale after: the mock serves the
#   request, drops the answer and closes; TEST 4).
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "KeySecret";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', ($block->config // '') . <<'_EOC_');
    location = /t {
        content_by_lua_block {
            local client = require("client")
            local function mock(method, path, body)
                local res = assert(client.request({ method = method, path = path,
                                                    body = body,
                                                    port = $TEST_NGINX_MOCK_PORT }))
                assert(res.status == 200, res.body)
                return res.body
            end
            mock("POST", "/_reset")
            mock("POST", "/_stale", ngx.var.arg_stale or "on")
            local statuses, failed = {}, 0
            for i = 1, 8 do
                local res = assert(client.request({ method = ngx.var.arg_method,
                                                    path = "/aws", body = "{}" }))
                statuses[i] = res.status
                failed = failed + (res.status >= 500 and 1 or 0)
            end
            local stats = mock("GET", "/_stats")
            mock("POST", "/_reset")
            ngx.say("statuses: ", table.concat(statuses, " "))
            ngx.say("client-visible errors: ", failed)
            ngx.say("connections closed on reuse: ", stats:match('"stale_closes": (%d+)'))
            ngx.say("invocations: ", stats:match('"echo": (%d+)') or 0,
                    ", repeated: ", stats:match('"invocations_repeated": (%d+)'))
        }
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: GET: each request that meets a closed connection goes again on a new one
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- request
GET /t?method=GET
--- response_body
statuses: 200 200 200 200 200 200 200 200
client-visible errors: 0
connections closed on reuse: 7
invocations: 0, repeated: 0



=== TEST 2: POST: never sent twice; every second request fails with 502
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- request
GET /t?method=POST
--- response_body
statuses: 200 502 200 502 200 502 200 502
client-visible errors: 4
connections closed on reuse: 4
invocations: 0, repeated: 0
--- error_log
connection closed before message completed



=== TEST 3: Invoke (Event): never sent twice, so never invoked twice; 502 as for a POST
--- plugin_conf
{
    function_name = "echo",
    invocation_type = "Event",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /t?method=GET
--- response_body
statuses: 202 502 202 502 202 502 202 502
client-visible errors: 4
connections closed on reuse: 4
invocations: 4, repeated: 0
--- error_log
connection closed before message completed



=== TEST 4: Invoke (Event) that the function ran before the connection broke: 502, never run twice
--- plugin_conf
{
    function_name = "echo",
    invocation_type = "Event",
    invoke_endpoint = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /t?method=GET&stale=after
--- response_body
statuses: 202 502 202 502 202 502 202 502
client-visible errors: 4
connections closed on reuse: 4
invocations: 8, repeated: 0
--- error_log
connection closed before message completed
