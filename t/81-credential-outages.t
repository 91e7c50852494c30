# Credential outages (issue 19): a source that fails while the plugin still has
# credentials, through their expiry, and back. TEST 1 (IMDS answering 500): credentials
# last 20 s, as in the issue, the outage 25 s (40 s in the issue), about 35 s in all;
# not shorter, as the refresh at half-life must end before expiry and aws-config's IMDS
# retries (4 attempts, jittered backoff) took 3 to 5 s here. TEST 2 (the container
# endpoint closing connections, which fails fast): 12 s and 14 s, about 20 s.
#
# A steady loop sends a request every 250 ms to /aws and records status, time taken
# and Retry-After. Before the credentials expire every request is signed (botocore
# checks each signature in the mock) and one warning names the failing source; once
# they have expired every request answers 503 at once (the SDK's retries run in the
# background), with Retry-After and the source and cause in the log; after
# the source recovers, requests succeed again: within 6 s, because the fetch under way
# then may be in aws-config's backoff between attempts (up to about 4 s).
#
# nginx passes no AWS variable to the worker except those a block sets; the shared
# files point nowhere, so the chain can only use the source under test.
BEGIN { $t::TestAWSLambda::CredentialServers = 1 }
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged,
    'outageSecretKey1', 'outageSessionToken1', 'recoveredSecretKey1',
    'recoveredSessionToken1', $ENV{TEST_NGINX_ECS_TOKEN};

add_block_preprocessor(sub {
    my $block = shift;
    my $main_config = ($block->main_config // '') . <<'_EOC_';
env AWS_SHARED_CREDENTIALS_FILE=/nonexistent/aws-lambda-native-test/credentials;
env AWS_CONFIG_FILE=/nonexistent/aws-lambda-native-test/config;
_EOC_
    $block->set_value('main_config', $main_config);
    $block->set_value('http_config', ($block->http_config // '') . <<'_EOC_');
    init_worker_by_lua_block {
        local client = require("client")
        local M = {}

        function M.mock(method, path, body)
            local res = assert(client.request({ method = method, path = path, body = body,
                                                port = $TEST_NGINX_MOCK_PORT }))
            assert(res.status == 200, res.body)
            return res
        end

        -- what a source ("ecs", "imds") serves from now on
        function M.set(source, fields)
            local parts = { "source=" .. source }
            for k, v in pairs(fields) do
                parts[#parts + 1] = k .. "=" .. ngx.escape_uri(tostring(v))
            end
            M.mock("POST", "/_creds", table.concat(parts, "&"))
        end

        -- [level] lines of error.log that contain every one of the strings
        function M.log_lines(level, ...)
            local f = assert(io.open(ngx.config.prefix() .. "logs/error.log"))
            local n = 0
            for line in f:lines() do
                local all = line:find("[" .. level .. "]", 1, true)
                for _, s in ipairs({ ... }) do
                    all = all and line:find(s, 1, true)
                end
                n = n + (all and 1 or 0)
            end
            f:close()
            return n
        end

        -- Requests to /aws every 250 ms for `duration` s; `at[t]` runs at t s.
        -- Returns the results: { t = start (s), status, sig, took, retry_after }.
        function M.loop(duration, at)
            local results = {}
            ngx.update_time()
            local start = ngx.now()
            local i = 0
            while true do
                ngx.update_time()
                local t = ngx.now() - start
                if t >= duration then
                    break
                end
                for when, f in pairs(at) do
                    if t >= when then
                        f()
                        at[when] = nil
                    end
                end
                local res, err = client.request({ path = "/aws", timeout = 20000 })
                ngx.update_time()
                i = i + 1
                results[i] = {
                    t = t,
                    took = ngx.now() - start - t,
                    status = res and res.status or err,
                    sig = res and (res.body or ""):match("\nsignature: (%S+)") or "-",
                    retry_after = res and res.headers["retry-after"],
                }
                ngx.sleep(math.max(0.001, start + i * 0.25 - ngx.now()))
            end
            return results
        end

        -- The phases of a loop: before expiry, the outage after it, after recovery.
        function M.report(results, expiry, recovery)
            local before, outage, slow503, retry_after = true, 0, 0, true
            local not503, first_ok, after_ok, over_timeout = 0, nil, true, 0
            for _, r in ipairs(results) do
                if r.took >= 3 then
                    over_timeout = over_timeout + 1
                end
                -- (the mock's Expiration has whole seconds: up to 1 s before `expiry`)
                if r.t < expiry - 1.5 then
                    before = before and r.status == 200 and r.sig == "ok"
                elseif r.t > expiry + 0.5 and r.t < recovery then
                    outage = outage + 1
                    if r.status ~= 503 then
                        not503 = not503 + 1
                    elseif r.took >= 1 then
                        slow503 = slow503 + 1
                    end
                    retry_after = retry_after and r.retry_after == "1"
                elseif r.t >= recovery then
                    if first_ok then
                        after_ok = after_ok and r.status == 200 and r.sig == "ok"
                    elseif r.status == 200 and r.sig == "ok" then
                        first_ok = r.t + r.took - recovery
                    end
                end
            end
            ngx.say("before expiry, all signed: ", before)
            ngx.say("requests after expiry, before recovery: ", outage > 8 and "many" or outage)
            ngx.say("of those, not 503: ", not503)
            ngx.say("of those, 503 after 1 s or more: ", slow503)
            ngx.say("each 503 with Retry-After: 1: ", retry_after)
            ngx.say("requests that took the route's timeout (3 s): ", over_timeout)
            ngx.say("signed again within 6 s of recovery: ", (first_ok or 99) < 6)
            ngx.say("then all signed: ", after_ok)
            for _, r in ipairs(results) do
                ngx.log(ngx.INFO, string.format("loop: t=%.2f status=%s sig=%s took=%.3f",
                                                r.t, r.status, r.sig, r.took))
            end
        end

        package.loaded.outage_t = M
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: IMDS answers 500 from 1 s to 26 s; its credentials expire at 20 s
aws-config's IMDS provider answers the failed refresh (at half-life, 10 s) with the
credentials it already had: that counts as a failed refresh, logged once while they
are still valid, and after they expire as the cause of each 503.
--- main_config
env AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$TEST_NGINX_IMDS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 3000,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("outage_t")
            t.mock("POST", "/_reset")
            t.set("imds", { access_key = "ASIAOUTAGEIMDS1", secret_key = "outageSecretKey1",
                            token = "outageSessionToken1", expires_in = 20 })
            local results = t.loop(33, {
                [1] = function() t.set("imds", { fail = "error" }) end,
                [26] = function()
                    t.set("imds", { access_key = "ASIARECOVERIMDS1", fail = "none",
                                    secret_key = "recoveredSecretKey1",
                                    token = "recoveredSessionToken1", expires_in = 3600 })
                end,
            })
            t.mock("POST", "/_reset")
            t.report(results, 20, 26)
            ngx.say("warnings: ", t.log_lines("error", "refreshing AWS credentials failed",
                "the AWS credential chain handed back the credentials it already had",
                "could not fetch new ones", "still signing with the current ones"))
            -- (until the refresh under way at expiry ends, the cause is not known yet)
            local failed = t.log_lines("error", "failed to process aws-lambda")
            ngx.say("every 503 logged with the source: ", failed == t.log_lines("error",
                "no AWS credentials (the last expired ", "s ago): the AWS credential chain"))
            local with_cause = t.log_lines("error", "no AWS credentials (the last expired ",
                "the AWS credential chain handed back", "could not fetch new ones")
            ngx.say("and most with the cause: ", with_cause > failed / 2)
        }
    }
--- timeout: 60
--- response_body
before expiry, all signed: true
requests after expiry, before recovery: many
of those, not 503: 0
of those, 503 after 1 s or more: 0
each 503 with Retry-After: 1: true
requests that took the route's timeout (3 s): 0
signed again within 6 s of recovery: true
then all signed: true
warnings: 1
every 503 logged with the source: true
and most with the cause: true
--- error_log
no AWS credentials



=== TEST 2: the container endpoint closes every connection from 1 s to 15 s; its credentials expire at 12 s
A source that fails without handing anything back, and fast (the refresh at 6 s ends
well before expiry): the same warning, 503s and recovery, with aws-config's own error
as the cause.
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/outage;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
env AWS_EC2_METADATA_DISABLED=true;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 3000,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("outage_t")
            t.mock("POST", "/_reset")
            t.set("ecs", { access_key = "ASIAOUTAGEECS1", secret_key = "outageSecretKey1",
                           token = "outageSessionToken1", expires_in = 12 })
            local results = t.loop(18, {
                [1] = function() t.set("ecs", { fail = "down" }) end,
                [15] = function()
                    t.set("ecs", { access_key = "ASIARECOVERECS1", fail = "none",
                                   secret_key = "recoveredSecretKey1",
                                   token = "recoveredSessionToken1", expires_in = 3600 })
                end,
            })
            t.mock("POST", "/_reset")
            t.report(results, 12, 15)
            ngx.say("warnings: ", t.log_lines("error", "refreshing AWS credentials failed",
                "the AWS credential chain failed: ", "still signing with the current ones"))
            local failed = t.log_lines("error", "failed to process aws-lambda")
            ngx.say("every 503 logged with the source: ", failed == t.log_lines("error",
                "no AWS credentials (the last expired ", "s ago): the AWS credential chain"))
            local with_cause = t.log_lines("error", "no AWS credentials (the last expired ",
                "the AWS credential chain failed: ")
            ngx.say("and most with the cause: ", with_cause > failed / 2)
        }
    }
--- timeout: 60
--- response_body
before expiry, all signed: true
requests after expiry, before recovery: many
of those, not 503: 0
of those, 503 after 1 s or more: 0
each 503 with Retry-After: 1: true
requests that took the route's timeout (3 s): 0
signed again within 6 s of recovery: true
then all signed: true
warnings: 1
every 503 logged with the source: true
and most with the cause: true
--- error_log
no AWS credentials
