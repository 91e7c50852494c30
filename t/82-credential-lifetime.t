# Credential providers live as long as the routes that use them (issue 16, item 2).
# Routes with the same credential configuration share one provider and one background
# refresher; when the last of them is gone (its configuration replaced or deleted and
# the GC has freed its handle), the refresher stops: no further AssumeRole reaches STS.
#
# moto's STS (in the mock's process) issues credentials for 10 s here (the mock rewrites
# DurationSeconds: POST /_creds source=sts expires_in=10), and so does the container
# credentials endpoint that the AWS chain finds (rolling: each answer expires 10 s
# later), so a refresher calls AssumeRole or the container endpoint about every 5 s (at
# half the lifetime). The block takes about 20 s.
BEGIN { $t::TestAWSLambda::CredentialServers = 1 }
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged,
    'wJalrXUtnFEMI', 'chainRollSecretKey1', 'chainRollSessionToken1',
    $ENV{TEST_NGINX_ECS_TOKEN},
    'FQoGZXIvYXdzEBYaD';    # the start of every session token moto issues

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', ($block->main_config // '') . <<'_EOC_');
env AWS_SHARED_CREDENTIALS_FILE=/nonexistent/aws-lambda-native-test/credentials;
env AWS_CONFIG_FILE=/nonexistent/aws-lambda-native-test/config;
env AWS_EC2_METADATA_DISABLED=true;
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$TEST_NGINX_ECS_PORT/v2/credentials/rolling;
env AWS_CONTAINER_AUTHORIZATION_TOKEN=$TEST_NGINX_ECS_TOKEN;
_EOC_
});

run_tests();

__DATA__

=== TEST 1: routes with the same role share a refresher; it stops once its routes are gone
Route c has no keys: the AWS chain's container credentials, refreshed the same way.
--- http_config
    init_by_lua_block {
        local function conf(role)
            return {
                function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
                authorization = { iam = {
                    accesskey = "AKIDEXAMPLE",
                    secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    assume_role_arn = "arn:aws:iam::123456789012:role/" .. role,
                } },
            }
        end
        -- one configuration table per route, as APISIX keeps them
        CONFS = { a = conf("shared"), b = conf("shared"), c = {
            function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
            authorization = { iam = {} },
        } }
        NEW_CONF = conf
    }
--- config
    location ~ ^/route/(\w+)$ {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[ngx.var[1]])
        }
    }
    location = /t {
        content_by_lua_block {
            local client = require("client")
            local native = require("apisix.plugins.aws-lambda.native")
            local function mock(method, path, body)
                local res = assert(client.request({ method = method, path = path,
                                                    body = body,
                                                    port = $TEST_NGINX_MOCK_PORT }))
                assert(res.status == 200, res.body)
                return res.body
            end
            -- AssumeRole calls STS got for each role
            local function calls()
                local n = {}
                local stats = mock("GET", "/_stats")
                for role in stats:gmatch('"role_arn": "[^"]-role/(%w+)"') do
                    n[role] = (n[role] or 0) + 1
                end
                n.chain = tonumber(stats:match('"ecs_credentials": (%d+)'))
                return n
            end
            local function request(route)
                local res = assert(client.request({ path = "/route/" .. route,
                                                    timeout = 10000 }))
                return res.status .. " " .. (res.body:match("\nsignature: (%S+)") or "-")
            end
            local function gc()
                collectgarbage()
                collectgarbage()
            end

            mock("POST", "/_reset")
            mock("POST", "/_creds", "source=sts&expires_in=10")
            mock("POST", "/_creds", "source=ecs&access_key=ASIACHAINROLL1"
                 .. "&secret_key=chainRollSecretKey1&token=chainRollSessionToken1"
                 .. "&expires_in=10&rolling=1")
            ngx.say("route a: ", request("a"), ", route b: ", request("b"),
                    ", route c: ", request("c"))
            ngx.say("AssumeRole for the two routes: ", calls().shared)
            ngx.say("providers: ", native.stats().credential_providers)

            -- route b changes to another role; a still uses the shared one
            CONFS.b = NEW_CONF("changed")
            ngx.say("route b changed: ", request("b"))
            gc()
            ngx.say("providers: ", native.stats().credential_providers)
            -- one refresh period (about 5 s) and a margin: one refresh per role
            ngx.sleep(7.5)
            local n = calls()
            ngx.say("after 7.5 s, AssumeRole: shared ", n.shared, ", changed ", n.changed,
                    "; container fetches: ", n.chain)

            -- routes a and c go: nothing uses the shared role or the chain any more
            CONFS.a, CONFS.c = nil, nil
            gc()
            ngx.say("routes a and c deleted, providers: ",
                    native.stats().credential_providers)
            -- two refresh periods and a margin
            ngx.sleep(11)
            local later = calls()
            ngx.say("11 s later, AssumeRole for the deleted role: ",
                    later.shared - n.shared, ", container fetches: ", later.chain - n.chain)
            ngx.say("and for the live one, more: ", later.changed > n.changed)
            ngx.say("route b: ", request("b"))

            CONFS.b = nil
            gc()
            ngx.say("all deleted, providers: ", native.stats().credential_providers,
                    ", routes: ", native.stats().live_routes)
            mock("POST", "/_reset")
        }
    }
--- timeout: 60
--- response_body
route a: 200 ok, route b: 200 ok, route c: 200 ok
AssumeRole for the two routes: 1
providers: 2
route b changed: 200 ok
providers: 3
after 7.5 s, AssumeRole: shared 2, changed 2; container fetches: 2
routes a and c deleted, providers: 1
11 s later, AssumeRole for the deleted role: 0, container fetches: 0
and for the live one, more: true
route b: 200 ok
all deleted, providers: 0, routes: 0
