# proxy_url: the function (and STS) reached through a real forward proxy, tinyproxy
# from Debian, started here. HTTPS goes through a CONNECT tunnel (TLS with the function
# end to end, verified against its name); plain HTTP as absolute-form requests.
BEGIN { $t::TestAWSLambda::CredentialServers = 1 }
use t::TestAWSLambda 'no_plan';
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

push @t::TestAWSLambda::NeverLogged, "PROXY-PASS-47", "WRONG-PASS-47", "wJalrXUtnFEMI";

$ENV{TEST_NGINX_TLS_PORT} //= 1986;
$ENV{TEST_NGINX_PROXY_PORT} //= 1988;
my $dir = "$ENV{TEST_NGINX_ROOT}/t/servroot-proxy";
$ENV{TEST_NGINX_PROXY_LOG} = "$dir/tinyproxy.log";

my $proxy_pid;
{
    mkdir $dir;
    unlink $ENV{TEST_NGINX_PROXY_LOG};
    open my $conf, '>', "$dir/tinyproxy.conf" or die "$dir/tinyproxy.conf: $!";
    print $conf <<"_EOC_";
Port $ENV{TEST_NGINX_PROXY_PORT}
Listen 127.0.0.1
Timeout 30
LogFile "$ENV{TEST_NGINX_PROXY_LOG}"
LogLevel Info
MaxClients 64
Allow 127.0.0.1
ConnectPort $ENV{TEST_NGINX_TLS_PORT}
BasicAuth proxyuser PROXY-PASS-47
_EOC_
    close $conf;
    $proxy_pid = fork();
    die "fork: $!" if !defined $proxy_pid;
    if ($proxy_pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', "$dir/tinyproxy.stderr";
        exec 'tinyproxy', '-d', '-c', "$dir/tinyproxy.conf" or POSIX::_exit(127);
    }
    my $deadline = Time::HiRes::time() + 10;
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $ENV{TEST_NGINX_PROXY_PORT}, Proto => 'tcp')) {
        die "tinyproxy did not start on port $ENV{TEST_NGINX_PROXY_PORT} (see $dir)\n"
            if Time::HiRes::time() > $deadline || waitpid($proxy_pid, POSIX::WNOHANG()) != 0;
        Time::HiRes::sleep(0.05);
    }
}

END {
    if ($proxy_pid) {
        local $?;
        kill 'TERM', $proxy_pid;
        waitpid $proxy_pid, 0;
    }
}

add_block_preprocessor(sub {
    my $block = shift;
    my $http_config = $block->http_config // '';
    $block->set_value('http_config', $http_config . <<'_EOC_');
    server {
        listen $TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_set_header Host $http_host;
        }
    }
_EOC_
    $block->set_value('main_config', 'env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;')
        if !defined $block->main_config;
});

run_tests();

__DATA__

=== TEST 1: HTTPS through a CONNECT tunnel: the certificate verifies for the function's name, the signature at the function, the proxy logs the CONNECT; a second call reuses the tunnel
--- plugin_conf
{
    function_uri = "https://localhost:$TEST_NGINX_TLS_PORT/echo",
    proxy_url = "http://proxyuser:PROXY-PASS-47@127.0.0.1:$TEST_NGINX_PROXY_PORT",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local function connects()
                local f = io.open("$TEST_NGINX_PROXY_LOG")
                local n = 0
                for line in f:lines() do
                    if line:find("CONNECT localhost:$TEST_NGINX_TLS_PORT HTTP/1.1", 1, true) then
                        n = n + 1
                    end
                end
                f:close()
                return n
            end
            local before = connects()
            for i = 1, 2 do
                local res = assert(client.request({ path = "/aws/fn?x=" .. i }))
                ngx.say(res.status, " ", res.body:match("\nsignature: (%S+)"), " ",
                        res.body:match("\ntarget: (%S+)"), " ",
                        tostring(res.body:find("proxy-authorization", 1, true)))
            end
            ngx.say("CONNECTs: ", connects() - before)
        }
    }
--- response_body
200 ok /echo/fn?x=1 nil
200 ok /echo/fn?x=2 nil
CONNECTs: 1
--- no_error_log
[error]



=== TEST 2: plain HTTP through the proxy: absolute-form requests, still signed
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    proxy_url = "http://proxyuser:PROXY-PASS-47@127.0.0.1:$TEST_NGINX_PROXY_PORT",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.request({ path = "/aws/fn?x=abs" }))
            ngx.say(res.status, " ", res.body:match("\nsignature: (%S+)"), " ",
                    res.body:match("\ntarget: (%S+)"), " via proxy: ",
                    tostring(res.body:find("\nheader: via: ", 1, true) ~= nil))
            local f = io.open("$TEST_NGINX_PROXY_LOG")
            local log = f:read("*a")
            f:close()
            ngx.say("absolute form: ", tostring(log:find(
                "GET http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo/fn?x=abs HTTP/1.1", 1, true) ~= nil))
        }
    }
--- response_body
200 ok /echo/fn?x=abs via proxy: true
absolute form: true
--- no_error_log
[error]



=== TEST 3: a proxy that refuses the tunnel (wrong credentials; tinyproxy answers 401): 502 and a log line without them
--- plugin_conf
{
    function_uri = "https://localhost:$TEST_NGINX_TLS_PORT/echo",
    proxy_url = "http://proxyuser:WRONG-PASS-47@127.0.0.1:$TEST_NGINX_PROXY_PORT",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- request
GET /aws/fn
--- error_code: 502
--- error_log eval
qr/failed to process aws-lambda, err: proxy 127\.0\.0\.1:$ENV{TEST_NGINX_PROXY_PORT} for localhost:$ENV{TEST_NGINX_TLS_PORT}: CONNECT refused: HTTP\/1\.[01] 40[17] /



=== TEST 4: a proxy that is down: 502 and a log line
--- plugin_conf
{
    function_uri = "https://localhost:$TEST_NGINX_TLS_PORT/echo",
    proxy_url = "http://proxyuser:PROXY-PASS-47@127.0.0.1:1",
}
--- request
GET /aws/fn
--- error_code: 502
--- error_log eval
qr/failed to process aws-lambda, err: connecting to proxy 127\.0\.0\.1:1 for localhost:$ENV{TEST_NGINX_TLS_PORT} failed: Connection refused/



=== TEST 5: check_schema: proxy_url must be http://[user:pass@]host:port; the message never shows it
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            for _, url in ipairs({ "https://u:PROXY-PASS-47@proxy:3128", "http://proxy",
                                   "http://u:PROXY-PASS-47@proxy:3128/path", "proxy:3128",
                                   "http://proxy:3128" }) do
                local ok, err = plugin.check_schema({ function_uri = "https://x.on.aws/",
                                                      proxy_url = url })
                ngx.say(tostring(ok), " ", tostring(err))
            end
            ngx.say(table.concat(plugin.schema.encrypt_fields, " "))
        }
    }
--- response_body
false property "proxy_url" validation failed: must be an http URL of a proxy: http://[user:pass@]host:port
false property "proxy_url" validation failed: must name a port between 1 and 65535
false property "proxy_url" validation failed: must not have a path or a query: http://[user:pass@]host:port
false property "proxy_url" validation failed: must be an http URL of a proxy: http://[user:pass@]host:port
true nil
authorization.apikey authorization.iam.accesskey authorization.iam.secretkey authorization.iam.session_token proxy_url



=== TEST 6: STS (role assumption) goes through proxy_url too
--- main_config
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    proxy_url = "http://proxyuser:PROXY-PASS-47@127.0.0.1:$TEST_NGINX_PROXY_PORT",
    authorization = { iam = {
        accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        assume_role_arn = "arn:aws:iam::123456789012:role/through-proxy",
    } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.request({ path = "/aws/fn" }))
            ngx.say(res.status, " ", res.body:match("\nsignature: (%S+)"))
            local f = io.open("$TEST_NGINX_PROXY_LOG")
            local log = f:read("*a")
            f:close()
            ngx.say("STS through the proxy: ", tostring(log:find(
                "POST http://127.0.0.1:$TEST_NGINX_STS_PORT/ HTTP/1.1", 1, true) ~= nil))
        }
    }
--- response_body
200 ok
STS through the proxy: true
--- no_error_log
[error]



=== TEST 7: without proxy_url, the credential chain honours HTTP_PROXY / NO_PROXY from nginx's environment
--- main_config
env AWS_ENDPOINT_URL_STS=http://127.0.0.1:$TEST_NGINX_STS_PORT;
env HTTP_PROXY=http://proxyuser:PROXY-PASS-47@127.0.0.1:$TEST_NGINX_PROXY_PORT;
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = {
        accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        assume_role_arn = "arn:aws:iam::123456789012:role/env-proxy",
    } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local function sts_calls()
                local f = io.open("$TEST_NGINX_PROXY_LOG")
                local n = 0
                for line in f:lines() do
                    if line:find("POST http://127.0.0.1:$TEST_NGINX_STS_PORT/ HTTP/1.1", 1,
                                 true) then
                        n = n + 1
                    end
                end
                f:close()
                return n
            end
            local before = sts_calls()
            local res = assert(client.request({ path = "/aws/fn" }))
            ngx.say(res.status, " ", res.body:match("\nsignature: (%S+)"))
            ngx.say("STS calls through the proxy: ", sts_calls() - before)
        }
    }
--- response_body
200 ok
STS calls through the proxy: 1
--- no_error_log
[error]
