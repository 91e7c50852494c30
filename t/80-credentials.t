# Credentials beyond static keys (issue 3): a static session token, the AWS default
# chain (environment, web identity, container credentials, IMDSv2), assume role
# with STS, background refresh across a rotation and across a failing source, and
# sources that are down or return garbage.
#
# The credential servers run in the mock's process (t/mock/function.py: IMDSv2,
# container credentials with an authorization token, moto's STS), so the mock
# verifies every request with the secret and session token issued with its access
# key (and rejects an expired pair). Each block isolates nginx from the host's AWS
# setup: nginx passes no environment variable to the worker unless a block sets it
# with `env` in --- main_config, and the preprocessor below adds
#   AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE = a nonexistent path,
#   AWS_EC2_METADATA_DISABLED = true (unless the block sets
#   AWS_EC2_METADATA_SERVICE_ENDPOINT, i.e. tests IMDS),
# each unless the block sets it itself. Every block checks that no secret the mock
# knows (static test keys, every pair served or issued by STS, the container
# authorization token, web identity tokens) is in error.log.
BEGIN { $t::TestAWSLambda::CredentialServers = 1 }
use t::TestAWSLambda 'no_plan';

use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();

our $WebIdentityToken = 'eyJhbGciOiJSUzI1NiIsImtpZCI6Im1vY2sifQ'
    . '.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcGlzaXgifQ.mock-signature';
$ENV{TEST_NGINX_WEB_IDENTITY_TOKEN} = $WebIdentityToken;

push @t::TestAWSLambda::NeverLogged,
    'wJalrXUtnFEMI', 'KeySecret',
    'tempSecretKeyExample', 'tempSessionTokenExample',
    'envSecretKeyExample', 'envSessionTokenExample',
    'imdsSecretKeyExample1', 'imdsSessionTokenExample1',
    'ecsSecretKeyExample1', 'ecsSessionTokenExample1',
    'rotateOldSecretKey1', 'rotateOldSessionToken1',
    'rotateNewSecretKey1', 'rotateNewSessionToken1',
    'refreshFailSecretKey1', 'refreshFailSessionToken1',
    'FQoGZXIvYXdzEBYaD',    # the start of every session token moto issues
    $ENV{TEST_NGINX_ECS_TOKEN}, $WebIdentityToken;

# GET path on the mock's control API -> the body
sub mock_get {
    my $path = shift;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ENV{TEST_NGINX_MOCK_PORT},
                                     Proto => 'tcp', Timeout => 5)
        or return undef;
    print $sock "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    my $resp = '';
    my $sel = IO::Select->new($sock);
    while ($sel->can_read(5)) {
        last if !sysread($sock, my $buf, 65536);
        $resp .= $buf;
    }
    close $sock;
    return (split /\r\n\r\n/, $resp, 2)[1];
}

# Secrets that only the mock knows (what moto issued): none may be in error.log.
add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    return if $dry_run;
    my $json = mock_get('/_secrets');
    my $secrets = eval { JSON::PP::decode_json($json)->{secrets} };
    if (!$secrets) {
        Test::More::fail($block->name . " - the mock lists its secrets");
        return;
    }
    my $log = '';
    if (open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log") {
        local $/;
        $log = <$in> // '';
        close $in;
    }
    # (short test strings would match by accident; the suite's secrets are long)
    my @found = grep { length($_) >= 8 && index($log, $_) >= 0 } @$secrets;
    Test::More::ok(!@found, $block->name . " - no secret known to the mock is in error.log")
        or Test::More::diag("logged: " . join(', ', map { substr($_, 0, 6) . '...' } @found));
});

add_block_preprocessor(sub {
    my $block = shift;

    my $main_config = $block->main_config // '';
    my %isolate = (
        AWS_SHARED_CREDENTIALS_FILE => '/nonexistent/aws-lambda-native-test/credentials',
        AWS_CONFIG_FILE => '/nonexistent/aws-lambda-native-test/config',
    );
    if ($main_config !~ /\bAWS_EC2_METADATA_SERVICE_ENDPOINT\b/) {
        $isolate{AWS_EC2_METADATA_DISABLED} = 'true';
    }
    for my $name (sort keys %isolate) {
        $main_config .= "env $name=$isolate{$name};\n" if $main_config !~ /\benv\s+$name\b/;
    }
    $block->set_value('main_config', $main_config);

    # creds_t: helpers for the blocks' Lua (the mock's control API, requests
    # through this nginx, the result of a signed request)
    $block->set_value('http_config', ($block->http_config // '') . <<'_EOC_');
    init_worker_by_lua_block {
        local client = require("client")
        local M = {}
        local MOCK = $TEST_NGINX_MOCK_PORT

        M.html_dir = "$TEST_NGINX_HTML_DIR"
        M.web_identity_token = "$TEST_NGINX_WEB_IDENTITY_TOKEN"
        M.ecs_token = "$TEST_NGINX_ECS_TOKEN"
        -- the configuration of /apikey: one table for every request, as in APISIX
        M.apikey_conf = {
            function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
            authorization = { apikey = "test-api-key" },
        }

        function M.mock(method, path, body)
            local res, err = client.request({ method = method, path = path, body = body,
                                              port = MOCK })
            if not res then
                error("mock " .. path .. ": " .. tostring(err))
            end
            return res
        end

        function M.reset()
            assert(M.mock("POST", "/_reset").status == 200)
        end

        -- what a source ("ecs", "imds") serves from now on
        function M.set(source, fields)
            local parts = { "source=" .. source }
            for _, k in ipairs({ "access_key", "secret_key", "token", "expires_in",
                                 "delay_ms", "fail" }) do
                if fields[k] ~= nil then
                    parts[#parts + 1] = k .. "=" .. ngx.escape_uri(tostring(fields[k]))
                end
            end
            local res = M.mock("POST", "/_creds", table.concat(parts, "&"))
            assert(res.status == 200, res.body)
        end

        function M.stats()
            return M.mock("GET", "/_stats").body
        end

        function M.stat(stats, name)
            return tonumber(stats:match('"' .. name .. '": (%d+)'))
        end

        -- the STS calls the mock recorded: { action=, role_arn=, ... }
        function M.sts_calls(stats)
            local calls = {}
            for obj in stats:gmatch('{[^{}]-"action": [^{}]-}') do
                local call = {}
                for k, v in obj:gmatch('"([%w_]+)": "([^"]*)"') do
                    call[k] = v
                end
                for k, v in obj:gmatch('"([%w_]+)": (%d+)') do
                    call[k] = v
                end
                calls[#calls + 1] = call
            end
            return calls
        end

        function M.request(path)
            return client.request({ path = path, timeout = 20000 })
        end

        -- a response of the mock through the plugin -> what the mock saw
        function M.parse(res)
            local body = res.body or ""
            local signed = body:match("\nsigned_headers: ([^\n]*)") or ""
            local token = "none"
            if body:find("\nheader: x-amz-security-token: ", 1, true) then
                token = signed:find("x-amz-security-token", 1, true) and "signed" or "unsigned"
            end
            return {
                status = res.status,
                signature = body:match("\nsignature: (%S+)") or "-",
                key = body:match("Credential=([^/]+)/") or "-",
                scope = body:match("Credential=[^/]+/%d+/([^/]+/[^/]+)/aws4_request") or "-",
                token = token,
            }
        end

        -- [error] lines of error.log that contain every one of the strings
        function M.error_lines(...)
            local f = assert(io.open(ngx.config.prefix() .. "logs/error.log"))
            local n = 0
            for line in f:lines() do
                local all = line:find("[error]", 1, true)
                for _, s in ipairs({ ... }) do
                    all = all and line:find(s, 1, true)
                end
                if all then
                    n = n + 1
                end
            end
            f:close()
            return n
        end

        function M.write(path, data)
            local f = assert(io.open(path, "w"))
            f:write(data)
            f:close()
        end

        -- a series of requests to /aws, one a second: the results and a summary
        function M.series(n, at)
            local results = {}
            ngx.update_time()
            local start = ngx.now()
            for i = 1, n do
                if at and at[i] then
                    at[i]()
                end
                ngx.update_time()
                local t0 = ngx.now()
                local res, err = M.request("/aws")
                ngx.update_time()
                local r = res and M.parse(res) or { status = "-", signature = err, key = "-" }
                r.took = ngx.now() - t0
                results[i] = r
                ngx.sleep(math.max(0.001, start + i - ngx.now()))
            end
            local ok, keys, switches, slow = true, {}, 0, 0
            for i, r in ipairs(results) do
                ok = ok and r.status == 200 and r.signature == "ok"
                if i > 1 and r.key ~= results[i - 1].key then
                    switches = switches + 1
                end
                if i > 1 and r.took > 0.9 then
                    slow = slow + 1
                end
                if not keys[r.key] then
                    keys[r.key] = true
                    keys[#keys + 1] = r.key
                end
            end
            return results, { ok = ok, keys = keys, switches = switches, slow = slow }
        end

        function M.say_series(results)
            for i, r in ipairs(results) do
                ngx.say(string.format("%d: %s %s %s %.2fs", i, r.status, r.signature, r.key,
                                      r.took))
            end
        end

        package.loaded.creds_t = M
    }
_EOC_

    my $config = $block->config;
    if (!defined $config) {
        # one request through the plugin, and what the mock and its sources saw
        $config = <<'_EOC_';
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            t.write(t.html_dir .. "/web-identity-token", t.web_identity_token)
            t.write(t.html_dir .. "/ecs-token", t.ecs_token)
            local res, err = t.request("/aws")
            if not res then
                ngx.say("request failed: ", err)
                return
            end
            local r = t.parse(res)
            local stats = t.stats()
            local calls = t.sts_calls(stats)
            local from_sts
            for _, c in ipairs(calls) do
                from_sts = from_sts or c.access_key == r.key
            end
            ngx.say("status: ", r.status)
            ngx.say("signature: ", r.signature)
            ngx.say("key: ", from_sts and "issued by STS" or r.key)
            ngx.say("scope: ", r.scope)
            ngx.say("token: ", r.token)
            local used = {}
            for _, s in ipairs({ "imds_credentials", "ecs_credentials", "sts_calls" }) do
                if t.stat(stats, s) > 0 then
                    used[#used + 1] = s:match("^[a-z]+")
                end
            end
            ngx.say("sources: ", #used > 0 and table.concat(used, " ") or "none")
            ngx.say("imds requests without a token: ", t.stat(stats, "imds_unauthorized"))
            ngx.say("ecs requests without the token: ", t.stat(stats, "ecs_unauthorized"))
            for _, c in ipairs(calls) do
                ngx.say("sts: ", c.action, " role=", c.role_arn or "-",
                        " session=", c.session_name or "-",
                        " external_id=", c.external_id or "-",
                        " signed_by=", c.signed_by or "-", " signature=", c.signature,
                        " status=", c.status,
                        c.web_identity_token and (" web_identity_token="
                            .. (c.web_identity_token == t.web_identity_token and "the file's"
                                or "another")) or "")
            end
        }
    }
_EOC_
    }
    $block->set_value('config', $config . <<'_EOC_');
    location = /apikey {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(
                require("creds_t").apikey_conf)
        }
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a static session token is signed as X-Amz-Security-Token (the client's is replaced)
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = {
            accesskey = "ASIATEMPEXAMPLE",
            secretkey = "tempSecretKeyExample",
            session_token = "tempSessionTokenExample",
        },
    },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            local res = assert(require("client").request({
                path = "/aws",
                headers = { ["X-Amz-Security-Token"] = "someone-elses-token" },
            }))
            local r = t.parse(res)
            ngx.say(r.status, " ", r.signature, " ", r.key, " ", r.scope, " token ", r.token)
            ngx.say(res.body:match("\n(signed_headers: [^\n]*)") or "signed_headers: -")
            for v in res.body:gmatch("\nheader: x%-amz%-security%-token: ([^\n]*)") do
                ngx.say("x-amz-security-token: ", v)
            end
        }
    }
--- response_body
200 ok ASIATEMPEXAMPLE us-east-1/execute-api token signed
signed_headers: host;x-amz-date;x-amz-security-token
x-amz-security-token: tempSessionTokenExample



=== TEST 2: no keys in the route: the chain takes them from the environment (with a session token)
--- main_config
env AWS_ACCESS_KEY_ID=ASIAENVEXAMPLE;
env AWS_SECRET_ACCESS_KEY=envSecretKeyExample;
env AWS_SESSION_TOKEN=envSessionTokenExample;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- response_body
status: 200
signature: ok
key: ASIAENVEXAMPLE
scope: us-east-1/execute-api
token: signed
sources: none
imds requests without a token: 0
ecs requests without the token: 0



=== TEST 3: iam with only aws_region and service: the environment's long-term keys, that scope
--- main_config
env AWS_ACCESS_KEY_ID=AKIDEXAMPLE;
env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { aws_region = "eu-west-1", service = "lambda" } },
}
--- response_body
status: 200
signature: ok
key: AKIDEXAMPLE
scope: eu-west-1/lambda
token: none
sources: none
imds requests without a token: 0
ecs requests without the token: 0



=== TEST 4: web identity (EKS IRSA): the token file is exchanged with STS (moto) for a role's credentials
--- main_config
env AWS_WEB_IDENTITY_TOKEN_FILE=$TEST_NGINX_HTML_DIR/web-identity-token;
env AWS_ROLE_ARN=arn:aws:iam::123456789012:role/web-identity;
env AWS_ROLE_SESSION_NAME=t-web-identity;
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { aws_region = "us-east-1" } },
}
--- response_body
status: 200
signature: ok
key: issued by STS
scope: us-east-1/execute-api
token: signed
sources: sts
imds requests without a token: 0
ecs requests without the token: 0
sts: AssumeRoleWithWebIdentity role=arn:aws:iam::123456789012:role/web-identity session=t-web-identity external_id=- signed_by=- signature=none status=200 web_identity_token=the file's



=== TEST 5: container credentials (ECS): full URI and authorization token
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/task;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- response_body
status: 200
signature: ok
key: ASIAECSEXAMPLE1
scope: us-east-1/execute-api
token: signed
sources: ecs
imds requests without a token: 0
ecs requests without the token: 0



=== TEST 6: container credentials (EKS Pod Identity): authorization token file
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v1/credentials;
env AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$TEST_NGINX_HTML_DIR/ecs-token;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- response_body
status: 200
signature: ok
key: ASIAECSEXAMPLE1
scope: us-east-1/execute-api
token: signed
sources: ecs
imds requests without a token: 0
ecs requests without the token: 0



=== TEST 7: EC2 instance profile through IMDSv2 (the mock refuses requests without a token)
--- main_config
env AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$TEST_NGINX_IMDS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- response_body
status: 200
signature: ok
key: ASIAIMDSEXAMPLE1
scope: us-east-1/execute-api
token: signed
sources: imds
imds requests without a token: 0
ecs requests without the token: 0



=== TEST 8: assume role on top of static keys, with an external id and a session name
--- main_config
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = {
            accesskey = "AKIDEXAMPLE",
            secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            assume_role_arn = "arn:aws:iam::123456789012:role/test",
            external_id = "ext-1",
            role_session_name = "t-session",
        },
    },
}
--- response_body
status: 200
signature: ok
key: issued by STS
scope: us-east-1/execute-api
token: signed
sources: sts
imds requests without a token: 0
ecs requests without the token: 0
sts: AssumeRole role=arn:aws:iam::123456789012:role/test session=t-session external_id=ext-1 signed_by=AKIDEXAMPLE signature=ok status=200



=== TEST 9: assume role on top of the chain (the environment's temporary keys sign the AssumeRole)
--- main_config
env AWS_ACCESS_KEY_ID=ASIAENVEXAMPLE;
env AWS_SECRET_ACCESS_KEY=envSecretKeyExample;
env AWS_SESSION_TOKEN=envSessionTokenExample;
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = { assume_role_arn = "arn:aws:iam::123456789012:role/from-chain" },
    },
}
--- response_body_like chomp
\Astatus: 200
signature: ok
key: issued by STS
scope: us-east-1/execute-api
token: signed
sources: sts
imds requests without a token: 0
ecs requests without the token: 0
sts: AssumeRole role=arn:aws:iam::123456789012:role/from-chain session=\S+ external_id=- signed_by=ASIAENVEXAMPLE signature=ok status=200
\z



=== TEST 10: rotation: credentials that expire in 20 s are refreshed in the background; no request fails or waits
The container source serves an old pair that expires 20 s after the block starts;
after the third request it serves a new pair, and answers 1.5 s late from then on.
The plugin refreshes when less than half the lifetime remains (about 10 s in):
requests keep being signed with the old pair until the new one has arrived, none
waits for the slow refresh, and the last ones are signed with the new pair.
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/rotate;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            t.set("ecs", { access_key = "ASIAROTATEOLD1", secret_key = "rotateOldSecretKey1",
                           token = "rotateOldSessionToken1", expires_in = 20 })
            local results, s = t.series(16, {
                [4] = function()
                    t.set("ecs", { access_key = "ASIAROTATENEW1",
                                   secret_key = "rotateNewSecretKey1",
                                   token = "rotateNewSessionToken1", expires_in = 3600,
                                   delay_ms = 1500 })
                end,
            })
            local stats = t.stats()
            t.reset()
            ngx.say("all 200 and signature ok: ", s.ok)
            ngx.say("keys in order: ", table.concat(s.keys, " "))
            ngx.say("key switches: ", s.switches)
            ngx.say("requests that waited: ", s.slow)
            ngx.say("container fetches >= 2: ", t.stat(stats, "ecs_credentials") >= 2)
            ngx.say("requests signed with the old pair after it expired: ",
                    stats:match('"ASIAROTATEOLD1": {[^}]-"expired": (%d+)') or 0)
            t.say_series(results)
        }
    }
--- timeout: 60
--- response_body_like chomp
\Aall 200 and signature ok: true
keys in order: ASIAROTATEOLD1 ASIAROTATENEW1
key switches: 1
requests that waited: 0
container fetches >= 2: true
requests signed with the old pair after it expired: 0
1: 200 ok ASIAROTATEOLD1 [\d.]+s
2: 200 ok ASIAROTATEOLD1 [\d.]+s
(?:\d+: 200 ok ASIAROTATEOLD1 [\d.]+s\n){5,}(?:\d+: 200 ok ASIAROTATENEW1 [\d.]+s\n){2,}\z



=== TEST 11: a refresh that fails: requests keep being signed with the still-valid pair; logged once
The container source serves a pair that expires 20 s after the block starts, then
only errors. The refresh (about 10 s in) fails: the 14 requests are all signed with
the valid pair, none waits, and one line says that refreshing failed.
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/failing;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            t.set("ecs", { access_key = "ASIAREFRESHFAIL1", secret_key = "refreshFailSecretKey1",
                           token = "refreshFailSessionToken1", expires_in = 20 })
            local results, s = t.series(14, {
                [2] = function() t.set("ecs", { fail = "error" }) end,
            })
            local stats = t.stats()
            t.reset()
            ngx.say("all 200 and signature ok: ", s.ok)
            ngx.say("keys in order: ", table.concat(s.keys, " "))
            ngx.say("requests that waited: ", s.slow)
            ngx.say("failed container fetches >= 1: ", t.stat(stats, "ecs_failed") >= 1)
            t.say_series(results)
        }
    }
--- timeout: 60
--- response_body_like
\Aall 200 and signature ok: true
keys in order: ASIAREFRESHFAIL1
requests that waited: 0
failed container fetches >= 1: true
--- error_log
refreshing AWS credentials failed
--- grep_error_log eval
qr/refreshing AWS credentials failed/
--- grep_error_log_out
refreshing AWS credentials failed



=== TEST 12: the only source is down (connection refused): 503, one clear log line each time, the worker keeps serving
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/v2/credentials/down;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 10000,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            local res = assert(t.request("/aws"))
            ngx.say("aws: ", res.status)
            ngx.say("log lines: ", t.error_lines("no AWS credentials"))
            res = assert(t.request("/apikey"))
            ngx.say("apikey: ", res.status, " ",
                    res.body:match("\nheader: x%-api%-key: ([^\n]*)") or "-")
            res = assert(t.request("/aws"))
            ngx.say("aws again: ", res.status)
            ngx.say("log lines: ", t.error_lines("no AWS credentials"))
        }
    }
--- timeout: 30
--- response_body
aws: 503
log lines: 1
apikey: 200 test-api-key
aws again: 503
log lines: 2
--- error_log eval
qr/\[error\](?=.*failed to process aws-lambda)(?=.*no AWS credentials)/



=== TEST 13: the only source returns garbage (200, not JSON): 503, one clear log line, the worker keeps serving
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/garbage;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 10000,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            local res = assert(t.request("/aws"))
            ngx.say("aws: ", res.status)
            ngx.say("log lines: ", t.error_lines("no AWS credentials"))
            ngx.say("garbage served: ", t.stat(t.stats(), "ecs_garbage") >= 1)
            res = assert(t.request("/apikey"))
            ngx.say("apikey: ", res.status, " ",
                    res.body:match("\nheader: x%-api%-key: ([^\n]*)") or "-")
        }
    }
--- timeout: 30
--- response_body
aws: 503
log lines: 1
garbage served: true
apikey: 200 test-api-key
--- error_log eval
qr/\[error\](?=.*failed to process aws-lambda)(?=.*no AWS credentials)/



=== TEST 14: the container source refuses a wrong authorization token: 503, and the token is not logged
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/task;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong-container-authorization-token;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 10000,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            local res = assert(t.request("/aws"))
            ngx.say("aws: ", res.status)
            ngx.say("refused: ", t.stat(t.stats(), "ecs_unauthorized") >= 1)
            res = assert(t.request("/apikey"))
            ngx.say("apikey: ", res.status)
        }
    }
--- timeout: 30
--- response_body
aws: 503
refused: true
apikey: 200
--- error_log eval
qr/\[error\](?=.*failed to process aws-lambda)(?=.*no AWS credentials)/
--- no_error_log
[alert]
[emerg]
wrong-container-authorization-token



=== TEST 15: a credential source slower than the route's timeout: 503 at half the timeout (the function is never called)
--- main_config
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/slow;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    timeout = 300,
    authorization = { iam = {} },
}
--- config
    location = /t {
        content_by_lua_block {
            local t = require("creds_t")
            t.reset()
            t.set("ecs", { delay_ms = 2000 })
            local res = assert(t.request("/aws"))
            t.reset()
            ngx.say("aws: ", res.status)
            ngx.say("log lines: ", t.error_lines("no AWS credentials yet: the AWS credential "
                                                 .. "chain gave none within 150 ms"))
        }
    }
--- timeout: 30
--- response_body
aws: 503
log lines: 1
--- error_log eval
qr/\[error\].*failed to process aws-lambda, err: no AWS credentials yet: the AWS credential chain gave none within 150 ms \(still trying\)/



=== TEST 16: assume role through the route's sts_endpoint (a VPC endpoint for STS), which wins over AWS_ENDPOINT_URL_STS
The environment's STS override points at a closed port: the role is assumed at the
route's sts_endpoint (moto's STS) all the same.
--- main_config
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:1;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = {
            accesskey = "AKIDEXAMPLE",
            secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            assume_role_arn = "arn:aws:iam::123456789012:role/vpce",
            role_session_name = "t-vpce",
            sts_endpoint = "http://127.0.0.1:$TEST_NGINX_STS_PORT",
        },
    },
}
--- response_body
status: 200
signature: ok
key: issued by STS
scope: us-east-1/execute-api
token: signed
sources: sts
imds requests without a token: 0
ecs requests without the token: 0
sts: AssumeRole role=arn:aws:iam::123456789012:role/vpce session=t-vpce external_id=- signed_by=AKIDEXAMPLE signature=ok status=200
