# Bad input, each with its answer (the table in docs/bad-input.md): configurations
# check_schema refuses, requests refused or forwarded byte for byte, functions that
# fail, and the C ABI called wrongly. After each, the worker keeps serving, and no
# secret reaches the error log or the client.
use t::TestAWSLambda 'no_plan';

$ENV{TEST_NGINX_TLS_PORT} //= 1986;

# No secret may reach the log, whatever failed (the IAM pair below that the mock
# knows, and the made-up ones of the fault blocks).
push @t::TestAWSLambda::NeverLogged,
    "wJalrXUtnFEMI", "SECRET-KEY-55", "SESSION-TOKEN-55", "APIKEY-55", "URI-PASSWORD-55";

# Blocks that list their error lines (grep_error_log) match every [error] line, the
# plugin's or not, without nginx's prefix and the client part; a DNS failure's cause is
# cut off, since its wording is the resolver's.

run_tests();

__DATA__

=== TEST 1: configuration: unknown authorization shapes and empty strings are refused
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local uri = "https://api.amazonaws.com"
            local cases = {
                { authorization = { iam = "x" } },
                { authorization = { iam = { "AKID", "secret" } } },
                { authorization = { iam = true } },
                { authorization = { apikey = 1 } },
                { authorization = { apikey = { "k" } } },
                { authorization = { iam = { secretkey = "s", session_token = "t" } } },
                { authorization = { iam = { accesskey = "", secretkey = "s" } } },
                { authorization = { iam = { accesskey = "a", secretkey = "" } } },
                { authorization = { iam = { aws_region = "" } } },
                { authorization = { iam = { service = "" } } },
                { authorization = { iam = { session_token = "" } } },
                { authorization = { iam = { assume_role_arn = "" } } },
                { authorization = { iam = { external_id = "" } } },
                { authorization = { iam = { role_session_name = "" } } },
                { unsigned_headers = { "" } },
            }
            for _, conf in ipairs(cases) do
                conf.function_uri = uri
                local ok, err = plugin.check_schema(conf)
                ngx.say(ok and "accepted" or err)
            end
        }
    }
--- response_body
property "authorization" validation failed: property "iam" validation failed: wrong type: expected object, got string
property "authorization" validation failed: property "iam" validation failed: wrong type: expected object, got table
property "authorization" validation failed: property "iam" validation failed: wrong type: expected object, got boolean
property "authorization" validation failed: property "apikey" validation failed: wrong type: expected string, got number
property "authorization" validation failed: property "apikey" validation failed: wrong type: expected string, got table
property "authorization" validation failed: property "iam" validation failed: property "accesskey" is required
property "authorization" validation failed: property "iam" validation failed: property "accesskey" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "secretkey" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "aws_region" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "service" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "session_token" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "assume_role_arn" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "external_id" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "role_session_name" validation failed: string too short, expected at least 1, got 0
property "unsigned_headers" validation failed: failed to validate item 1: string too short, expected at least 1, got 0



=== TEST 2: configuration: function_uri values that are not an absolute http(s) URL, or a port out of range
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            for _, uri in ipairs({
                "http://", "https:///path", " http://h/", "http://exa mple.com/",
                "h:80/fn", "//h/fn", "http://[::1/", "http://h/a\r\nb", "http://h\0x/",
                "http://h:0/", "http://h:65536/", "http://h:99999/",
                "http://user:URI-PASSWORD-55@h/",
            }) do
                local ok, err = plugin.check_schema({ function_uri = uri })
                ngx.say(ok and "accepted" or err)
            end
            -- the largest port and an upper-case scheme are fine
            ngx.say(tostring((plugin.check_schema({ function_uri = "HTTPS://h:65535/" }))))
        }
    }
--- response_body
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: port 0 is not a valid port
property "function_uri" validation failed: port must be between 1 and 65535
property "function_uri" validation failed: port must be between 1 and 65535
property "function_uri" validation failed: must not contain user information; use "authorization"
true



=== TEST 3: configuration: numbers out of range or not numbers, and Lua values JSON cannot hold
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local uri = "https://api.amazonaws.com"
            local cycle = {}
            cycle.self = cycle
            local cases = {
                { timeout = -1 },
                { timeout = 99 },
                { timeout = 0 / 0 },
                { timeout = math.huge },
                { keepalive_pool = 1.5 },
                { keepalive_timeout = "60000" },
                { max_req_body_size = -5 },
                { max_resp_body_size = 0 },
                { ssl_verify = 1 },
                { keepalive = "false" },
                { unsigned_headers = "x-a" },
                { unsigned_headers = { "bad header" } },
                { function_uri = ngx.null },
                { function_uri = "http://caf\xe9/" },
                { authorization = { apikey = "caf\xe9" } },
                { timeout = function() end },
                { x = cycle },
                { [true] = 1 },
            }
            for _, conf in ipairs(cases) do
                if conf.function_uri == nil then
                    conf.function_uri = uri
                end
                local ok, err = plugin.check_schema(conf)
                ngx.say(ok and "accepted" or err)
            end
            for _, conf in ipairs({ "x", 1, true }) do
                ngx.say(select(2, plugin.check_schema(conf)))
            end
            ngx.say(select(2, plugin.check_schema()))
        }
    }
--- response_body
property "timeout" validation failed: expected -1 to be at least 100
property "timeout" validation failed: expected 99 to be at least 100
property "timeout" validation failed: wrong type: expected integer, got userdata
property "timeout" validation failed: wrong type: expected integer, got userdata
property "keepalive_pool" validation failed: wrong type: expected integer, got number
property "keepalive_timeout" validation failed: wrong type: expected integer, got string
property "max_req_body_size" validation failed: expected -5 to be at least 1
property "max_resp_body_size" validation failed: expected 0 to be at least 1
property "ssl_verify" validation failed: wrong type: expected boolean, got number
property "keepalive" validation failed: wrong type: expected boolean, got string
property "unsigned_headers" validation failed: wrong type: expected array, got string
property "unsigned_headers" validation failed: failed to validate item 1: expected a header name, optionally ending in "*", got "bad header"
property "function_uri" validation failed: wrong type: expected string, got userdata
invalid configuration: deserialize error: invalid type: byte array, expected any valid JSON value
invalid configuration: deserialize error: invalid type: byte array, expected any valid JSON value
invalid configuration: deserialize error: unsupported value type `function`
invalid configuration: deserialize error: recursive table detected
invalid configuration: deserialize error: invalid type: boolean `true`, expected a string
wrong type: expected object, got string
wrong type: expected object, got integer
wrong type: expected object, got boolean
wrong type: expected object, got nil



=== TEST 4: nothing half-applied: a configuration refused at its last property gets no default, nested ones included
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local function dump(v)
                if type(v) ~= "table" then
                    return tostring(v)
                end
                local keys = {}
                for k in pairs(v) do
                    keys[#keys + 1] = k
                end
                table.sort(keys)
                local out = {}
                for _, k in ipairs(keys) do
                    out[#out + 1] = k .. "=" .. dump(v[k])
                end
                return "{" .. table.concat(out, ",") .. "}"
            end
            -- valid up to unsigned_headers, the last property checked
            local conf = {
                function_uri = "https://h/fn",
                authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "s" } },
                unsigned_headers = { "x-ok", 1 },
            }
            local before = dump(conf)
            local ok, err = plugin.check_schema(conf)
            ngx.say(ok, " ", err)
            ngx.say(dump(conf) == before and "unchanged" or dump(conf))
            -- once fixed, every default is injected
            conf.unsigned_headers = { "x-ok" }
            assert(plugin.check_schema(conf))
            ngx.say(conf.timeout, " ", conf.authorization.iam.aws_region)
        }
    }
--- response_body
false property "unsigned_headers" validation failed: failed to validate item 2: wrong type: expected string, got number
unchanged
3000 us-east-1



=== TEST 5: nothing half-applied at request time: an invalid configuration gets 500 and one log line, makes no route, and the same location then works with a valid one
--- http_config
    init_by_lua_block {
        CONF = {
            function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger",
            timeout = 1,
            authorization = { apikey = "APIKEY-55" },
        }
    }
--- config
    location = /fn {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(CONF)
        }
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            local native = require("apisix.plugins.aws-lambda.native")
            local before = native.stats().live_routes
            local res = assert(client.request({ path = "/fn" }))
            ngx.say(res.status, " ", res.body:find("APIKEY-55", 1, true) ~= nil)
            ngx.say("routes made: ", native.stats().live_routes - before,
                    ", defaults injected: ", tostring(CONF.ssl_verify))
            CONF.timeout = 3000
            res = assert(client.request({ path = "/fn" }))
            ngx.print(res.status, " ", res.body)
        }
    }
--- response_body
500 false
routes made: 0, defaults injected: nil
200 aws lambda invoked
--- grep_error_log eval
qr/\[error\] \d+#\d+: (?:\*\d+ )?(?:\[lua\] \S+:\d+: (?:\S+\(\): )?)?\K.*?(?=(?:: failed to lookup address information: [^,]*)?(?:, client:|, context:|$))/
--- grep_error_log_out
failed to process aws-lambda: invalid configuration: property "timeout" validation failed: expected 1 to be at least 100
--- no_error_log
[alert]
[emerg]



=== TEST 6: a chunked body over max_req_body_size that nginx buffered to a file: 413, the function never called
--- http_config
    client_body_buffer_size 1k;
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", max_req_body_size = 5000 }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local function chunked(n)
                return "POST /aws HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                    .. "Transfer-Encoding: chunked\r\n\r\n"
                    .. string.format("%x", n) .. "\r\n" .. string.rep("y", n) .. "\r\n0\r\n\r\n"
            end
            local res = assert(client.raw(chunked(6000)))
            ngx.say(res.status)
            -- the limit itself, also from a file, is sent whole
            res = assert(client.raw(chunked(5000)))
            ngx.say(res.status, " ", res.body:match("\nbody_length: (%d+)"))
        }
    }
--- response_body
413
200 5000
--- error_log
request body larger than max_req_body_size (5000 bytes)
--- no_error_log
[alert]
[emerg]



=== TEST 7: header lines with a bare CR, a NUL or a folded continuation: nginx answers 400, the plugin never runs
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, header in ipairs({ "X-A: a\rb", "X-A: a\0b", "X-A: a\r\n folded" }) do
                local res = assert(client.raw("GET /aws HTTP/1.1\r\nHost: localhost\r\n"
                    .. "Connection: close\r\n" .. header .. "\r\n\r\n"))
                ngx.say(res.status)
            end
        }
    }
--- response_body
400
400
400
--- error_log
client sent invalid header line: "X-A: a\x0d..."
client sent invalid header line: "X-A: a\x00..."
client sent invalid header line: "\x20..."
--- no_error_log
failed to process aws-lambda
[alert]
[emerg]



=== TEST 8: CR, LF and NUL that an earlier phase put in a header or the path suffix are forwarded escaped, and signed
--- http_config
    init_by_lua_block {
        CONF = {
            function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
            authorization = { iam = { accesskey = "AKIDEXAMPLE",
                                      secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
        }
    }
--- config
    location = /fn {
        access_by_lua_block {
            -- what another plugin in front of this one could do
            ngx.req.set_header("X-Injected", "a\r\nX-Evil: 1")
            require("apisix.plugins.aws-lambda.openresty").run(CONF, "a\r\nb\0c")
        }
    }
--- request
GET /fn
--- response_body_like chomp
\ntarget: /echo/a%0D%0Ab%00c\n(?:.*\n)*signature: ok\n(?:.*\n)*header: x-injected: a%0D%0AX-Evil: 1\n
--- response_body_unlike chomp
header: x-evil



=== TEST 9: bytes that are not UTF-8, with an apikey: path, query, header and body arrive byte for byte
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", authorization = { apikey = "APIKEY-55" } }
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw(
                "POST /aws/caf\xe9%FF?q=caf\xe9&r=%FF HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\nX-Latin1: caf\xe9\r\nContent-Length: 4\r\n\r\n"
                .. "\xff\xfe\x00\x80"))
            local b = res.body
            ngx.say(res.status)
            -- raw bytes outside ASCII are not allowed in a URI: they go percent-encoded,
            -- which decodes to the same bytes; escapes the client sent stay as they were
            ngx.say(b:match("\ntarget: ([^\n]*)"))
            ngx.say("header byte for byte: ",
                    b:find("\nheader: x-latin1: caf\xe9\n", 1, true) ~= nil)
            ngx.say(b:match("\nbody_hex: ([^\n]*)"))
        }
    }
--- response_body
200
/echo/caf%E9%FF?q=caf%E9&r=%FF
header byte for byte: true
fffe0080



=== TEST 10: bytes that are not UTF-8, with IAM: path, query and body are signed; a header that cannot be signed gets 400
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.raw("POST /aws/caf\xe9%FF HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x80"))
            ngx.say(res.status, " ", res.body:match("\ntarget: ([^\n]*)"), " ",
                    res.body:match("\nbody_hex: ([^\n]*)"), " ",
                    res.body:match("\nsignature: ([^\n]*)"))
            res = assert(client.raw("GET /aws?q=caf\xe9 HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\n\r\n"))
            ngx.say(res.status, " ", res.body:match("\ntarget: ([^\n]*)"), " ",
                    res.body:match("\nsignature: ([^\n]*)"))
            res = assert(client.raw("GET /aws HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\nX-Latin1: caf\xe9\r\n\r\n"))
            ngx.say(res.status)
        }
    }
--- response_body
200 /echo/caf%E9%FF fffe0080 ok
200 /echo?q=caf%E9 ok
400
--- grep_error_log eval
qr/\[error\] \d+#\d+: (?:\*\d+ )?(?:\[lua\] \S+:\d+: (?:\S+\(\): )?)?\K.*?(?=(?:: failed to lookup address information: [^,]*)?(?:, client:|, context:|$))/
--- grep_error_log_out
failed to process aws-lambda, err: request header x-latin1 is not valid UTF-8 and cannot be signed
--- no_error_log
[alert]
[emerg]



=== TEST 11: very many headers and a very long query, with an apikey: all forwarded as sent
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", authorization = { apikey = "APIKEY-55" } }
--- config
    location /t {
        content_by_lua_block {
            local headers = {}
            for i = 1, 90 do
                headers["X-Many-" .. i] = "value-" .. i
            end
            local args = {}
            for i = 1, 500 do
                args[i] = "k" .. i .. "=" .. string.rep("v", 8)
            end
            local query = table.concat(args, "&")
            local res = assert(require("client").request({ path = "/aws?" .. query,
                                                           headers = headers }))
            local _, n = res.body:gsub("\nheader: x%-many%-%d+: value%-%d+", "")
            ngx.say(res.status, " ", n, " headers, query as sent: ",
                    res.body:match("\nquery: ([^\n]*)") == query, ", ", #query, " bytes")
        }
    }
--- response_body
200 90 headers, query as sent: true, 6891 bytes



=== TEST 12: a request line or a header line longer than nginx's buffers: nginx answers 414 or 400, the plugin never runs
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.raw("GET /aws?" .. string.rep("a", 9000)
                .. " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
            ngx.say(res.status)
            res = assert(client.raw("GET /aws HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\nX-Long: " .. string.rep("a", 9000) .. "\r\n\r\n"))
            ngx.say(res.status)
        }
    }
--- response_body
414
400
--- no_error_log
failed to process aws-lambda
[alert]
[emerg]



=== TEST 13: an HTTP/1.0 client's POST is forwarded, signed, and answered with a length
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local res = assert(require("client").raw("POST /aws/fn HTTP/1.0\r\n"
                .. "Content-Length: 5\r\n\r\nhello"))
            ngx.say(res.status, " ", res.headers["content-length"] == tostring(#res.body),
                    " ", res.body:match("\nbody: ([^\n]*)"), " ",
                    res.body:match("\nsignature: ([^\n]*)"))
        }
    }
--- response_body
200 true hello ok



=== TEST 14: a function that sends its status line and then stalls, or stalls mid-body: 504 at the timeout
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    timeout = 300,
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/aws/slow-headers/10000", "/aws/slow-body/10000" }) do
                local start = ngx.now()
                local res = assert(client.request({ path = path }))
                ngx.update_time()
                -- loose on purpose: the function would answer after 10 s
                ngx.say(path, " ", res.status, " well before the function: ",
                        ngx.now() - start < 5)
            end
            local res = assert(client.request({ path = "/aws/httptrigger" }))
            ngx.say("next ", res.status)
        }
    }
--- response_body
/aws/slow-headers/10000 504 well before the function: true
/aws/slow-body/10000 504 well before the function: true
next 200
--- grep_error_log eval
qr/\[error\] \d+#\d+: (?:\*\d+ )?(?:\[lua\] \S+:\d+: (?:\S+\(\): )?)?\K.*?(?=(?:: failed to lookup address information: [^,]*)?(?:, client:|, context:|$))/
--- grep_error_log_out eval
"failed to process aws-lambda, err: function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} did not answer within 300 ms
failed to process aws-lambda, err: function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} did not answer within 300 ms
"
--- no_error_log
[alert]
[emerg]



=== TEST 15: every fault once, each followed by a request that succeeds on the same worker; one log line each, no secret in any answer
--- http_config
    server {
        listen $TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        location / {
            return 200 "tls ok\n";
        }
    }
    init_by_lua_block {
        local mock = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT"
        local function iam()
            return { iam = { accesskey = "AKIDFAULT55", secretkey = "SECRET-KEY-55",
                             session_token = "SESSION-TOKEN-55" } }
        end
        local apikey = { apikey = "APIKEY-55" }
        CONFS = {
            ok = { function_uri = mock .. "/httptrigger" },
            config = { function_uri = "http://u:URI-PASSWORD-55@127.0.0.1/" },
            too_large = { function_uri = mock .. "/echo", max_req_body_size = 3,
                          authorization = iam() },
            not_signable = { function_uri = mock .. "/echo", authorization = iam() },
            refused = { function_uri = "http://127.0.0.1:1/fn", authorization = iam() },
            dns = { function_uri = "http://no-such-host.invalid/fn", authorization = apikey },
            tls = { function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/fn",
                    authorization = iam() },
            -- no keys: this same nginx plays the function and logs what it receives
            tls_unverified = { function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/fn",
                               ssl_verify = false },
            no_headers = { function_uri = mock .. "/sleep/10000", timeout = 200,
                           authorization = iam() },
            slow_headers = { function_uri = mock .. "/slow-headers/10000", timeout = 200,
                             authorization = apikey },
            garbage = { function_uri = mock .. "/garbage", authorization = iam() },
            closed = { function_uri = mock .. "/close", authorization = apikey },
            cut_short = { function_uri = mock .. "/headers-only", authorization = iam() },
            oversized = { function_uri = mock .. "/big/5000", max_resp_body_size = 1000,
                          authorization = iam() },
        }
    }
--- config
    location ~ ^/f/(\w+)$ {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(CONFS[ngx.var[1]])
        }
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            local secrets = { "SECRET-KEY-55", "SESSION-TOKEN-55", "APIKEY-55",
                              "URI-PASSWORD-55" }
            local function leaks(res)
                local text = res.body
                for name, value in pairs(res.headers) do
                    text = text .. "\n" .. name .. ": "
                        .. (type(value) == "table" and table.concat(value, ", ") or value)
                end
                for _, s in ipairs(secrets) do
                    if text:find(s, 1, true) then
                        return " LEAKS " .. s
                    end
                end
                return ""
            end
            local pid = ngx.worker.pid()
            for _, fault in ipairs({ "config", "too_large", "not_signable", "refused", "dns",
                                     "tls", "tls_unverified", "no_headers", "slow_headers",
                                     "garbage", "closed", "cut_short", "oversized" }) do
                -- a header that cannot be signed only where that is the fault
                local headers = fault == "not_signable" and { ["X-Latin1"] = "caf\xe9" } or nil
                local res = assert(client.request({ path = "/f/" .. fault, headers = headers,
                                                    body = "body" }))
                local ok = assert(client.request({ path = "/f/ok" }))
                ngx.say(fault, " ", res.status, leaks(res), ", then ", ok.status)
            end
            ngx.say("same worker: ", ngx.worker.pid() == pid)
        }
    }
--- response_body
config 500, then 200
too_large 413, then 200
not_signable 400, then 200
refused 503, then 200
dns 503, then 200
tls 503, then 200
tls_unverified 200, then 200
no_headers 504, then 200
slow_headers 504, then 200
garbage 502, then 200
closed 502, then 200
cut_short 502, then 200
oversized 502, then 200
same worker: true
--- grep_error_log eval
qr/\[error\] \d+#\d+: (?:\*\d+ )?(?:\[lua\] \S+:\d+: (?:\S+\(\): )?)?\K.*?(?=(?:: failed to lookup address information: [^,]*)?(?:, client:|, context:|$))/
--- grep_error_log_out eval
"failed to process aws-lambda: invalid configuration: property \"function_uri\" validation failed: must not contain user information; use \"authorization\"
failed to process aws-lambda: request body of 4 bytes is larger than max_req_body_size (3)
failed to process aws-lambda, err: request header x-latin1 is not valid UTF-8 and cannot be signed
failed to process aws-lambda, err: connecting to 127.0.0.1:1 failed: Connection refused (os error 111)
failed to process aws-lambda, err: connecting to no-such-host.invalid:80 failed
failed to process aws-lambda, err: TLS handshake with 127.0.0.1:$ENV{TEST_NGINX_TLS_PORT} failed: invalid peer certificate: UnknownIssuer
failed to process aws-lambda, err: function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} did not answer within 200 ms
failed to process aws-lambda, err: function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} did not answer within 200 ms
failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: invalid HTTP version parsed
failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed (sent again on a new connection after the first broke): connection closed before message completed
failed to process aws-lambda, err: reading the response from 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: error reading a body from connection
failed to process aws-lambda, err: function at 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}: response body larger than max_resp_body_size (1000 bytes)
"
--- no_error_log
[alert]
[emerg]
[crit]



=== TEST 16: every C export called wrongly returns an error code, not a dead worker; the worker then serves
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local ffi = require("ffi")
            local native = require("apisix.plugins.aws-lambda.native")  -- declares the types
            local C = ffi.load(package.searchpath("aws_lambda_native", package.cpath))
            local err = ffi.new("char[256]")
            local len = ffi.new("size_t[1]")
            local function call(name, rc, with_msg)
                ngx.say(name, ": ", rc, with_msg and (" " .. ffi.string(err, len[0])) or "")
                len[0] = 256
            end
            len[0] = 256
            local route = assert(native.route_new({
                function_uri = "http://127.0.0.1:" .. $TEST_NGINX_MOCK_PORT .. "/echo" }))
            local req = ffi.new("AwslRequest")
            req.method, req.method_len = "GET", 3
            local ticket = ffi.new("uint32_t[1]")
            local out = ffi.new("AwslResponse")

            -- before this worker's runtime is started
            call("close_socket, not started", C.awsl_worker_close_socket())
            call("check, not started", C.awsl_worker_check())
            call("submit, not started", C.awsl_request_submit(route, req, ticket, err, len), true)
            call("take, not started", C.awsl_ticket_take(1, out, nil, 0))
            call("cancel, not started", C.awsl_ticket_cancel(1))
            call("start, NULL dir", C.awsl_worker_start(nil, 3, err, len), true)
            local msg
            call("start, no such dir", C.awsl_worker_start("/nonexistent/awsl", 17, err, len))
            -- the message names the socket path, which holds the pid
            ngx.say((ffi.string(err, 256):gsub("%-%d+%.sock.*", "-<pid>.sock ...")))
            len[0] = 3
            call("start, no room for the path", C.awsl_worker_start("/tmp", 4, err, len))

            -- with the runtime started
            call("check, started", C.awsl_worker_check())
            call("submit, NULL route", C.awsl_request_submit(nil, req, ticket, err, len), true)
            call("submit, NULL request", C.awsl_request_submit(route, nil, ticket, err, len), true)
            call("submit, NULL ticket", C.awsl_request_submit(route, req, nil, err, len), true)
            req.query_len = 5
            call("submit, NULL query with a length",
                 C.awsl_request_submit(route, req, ticket, err, len), true)
            req.query_len = 0
            call("submit, NULL error buffer", C.awsl_request_submit(nil, req, ticket, nil, nil))
            -- a header line nginx would never pass: refused by the runtime with 400
            local headers = "x-a:a\rb\n"
            req.headers, req.headers_len = headers, #headers
            call("submit, CR in a header", C.awsl_request_submit(route, req, ticket, err, len))
            local id = ticket[0]
            local rc = C.AWSL_AGAIN
            for _ = 1, 500 do
                rc = C.awsl_ticket_take(id, out, nil, 0)
                if rc ~= C.AWSL_AGAIN then
                    break
                end
                ngx.sleep(0.01)
            end
            ngx.say("take, no buffer: ", rc, " status ", out.status, " is_error ", out.is_error)
            call("take, NULL out", C.awsl_ticket_take(id, nil, err, 256))
            local buf = ffi.new("char[?]", out.body_len)
            ngx.say("take: ", C.awsl_ticket_take(id, out, buf, out.body_len), " ",
                    ffi.string(buf, out.body_len))
            call("take, taken already", C.awsl_ticket_take(id, out, buf, out.body_len))
            call("cancel, unknown", C.awsl_ticket_cancel(4000000000))
            C.awsl_route_free(nil)
            ngx.say("route_free(NULL): returned")

            local res = assert(require("client").request({ path = "/aws" }))
            ngx.print("then a request: ", res.status, " ", res.body)
        }
    }
--- response_body eval
"close_socket, not started: 0
check, not started: -5
submit, not started: -1 the worker was not started in this process
take, not started: -5
cancel, not started: -5
start, NULL dir: -1 dir is NULL
start, no such dir: -1
cannot listen on /nonexistent/awsl/aws-lambda-native-<pid>.sock ...
start, no room for the path: -1
check, started: 0
submit, NULL route: -1 NULL argument
submit, NULL request: -1 NULL argument
submit, NULL ticket: -1 NULL argument
submit, NULL query with a length: -1 NULL pointer with a length in the request
submit, NULL error buffer: -1
submit, CR in a header: 0
take, no buffer: -6 status 400 is_error 1
take, NULL out: -1
take: 0 invalid request header
take, taken already: -5
cancel, unknown: -5
route_free(NULL): returned
then a request: 200 aws lambda invoked
"
--- no_error_log
[error]
[alert]
[emerg]
[crit]



=== TEST 17: the mlua calls given bad arguments return error values; the worker then serves
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local lib = require("aws_lambda_native")
            local function deep(n)
                local top = { function_uri = "http://h/" }
                local t = top
                for _ = 1, n do
                    t.x = {}
                    t = t.x
                end
                return top
            end
            -- 1000 levels: as deep as cjson decodes by default, so what APISIX could hand
            -- over; 100000: only from Lua, and past what mlua can convert
            for _, n in ipairs({ 1000, 100000 }) do
                ngx.say("check_schema, ", n, " levels: ",
                        tostring(select(2, lib.check_schema(deep(n)))))
                local route, err = lib.route_new(deep(n))
                ngx.say("route_new, ", n, " levels: ", tostring(route), " ", err)
            end
            -- 60 levels is still a configuration (unknown properties are kept)
            ngx.say("check_schema, 60 levels: ", tostring((lib.check_schema(deep(60)))))
            local route, err = lib.route_new(nil)
            ngx.say("route_new(nil): ", tostring(route), " ", err)
            ngx.say("route_new(function): ", select(2, lib.route_new(print)))
            ngx.say("schema(junk): ", type(lib.schema("junk", {})))
            ngx.say("take_log(junk): ", #lib.take_log(1, 2))
            ngx.say("tickets(junk): ", lib.tickets("x"))
            ngx.say("live_routes(junk): ", type(lib.live_routes({})))
            local res = assert(require("client").request({ path = "/aws" }))
            ngx.print("then a request: ", res.status, " ", res.body)
        }
    }
--- response_body
check_schema, 1000 levels: invalid configuration: tables nested more than 64 levels deep
route_new, 1000 levels: nil invalid configuration: tables nested more than 64 levels deep
check_schema, 100000 levels: invalid configuration: tables nested more than 64 levels deep
route_new, 100000 levels: nil invalid configuration: tables nested more than 64 levels deep
check_schema, 60 levels: true
route_new(nil): nil wrong type: expected object, got nil
route_new(function): wrong type: expected object, got function
schema(junk): table
take_log(junk): 0
tickets(junk): 0
live_routes(junk): number
then a request: 200 aws lambda invoked



=== TEST 18: a response head over 64 KiB (10000 headers, or a 100 KB header) or over 1024 lines (1100 short headers): 502, one log line each; 1000 headers or a 60 KB header pass; the next request succeeds
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, path in ipairs({ "/aws/many-headers/90", "/aws/many-headers/1000",
                                    "/aws/many-headers/1100", "/aws/many-headers/10000", "/aws/long-header/60000",
                                    "/aws/long-header/100000", "/aws/long-header/1000000",
                                    "/aws/httptrigger" }) do
                local res = assert(client.request({ path = path }))
                local n = 0
                for name in pairs(res.headers) do
                    n = n + (name:find("^x%-h%-") and 1 or 0)
                end
                ngx.say(path, " ", res.status, " ", n, " ", #(res.headers["x-long"] or ""))
            end
        }
    }
--- response_body
/aws/many-headers/90 200 90 0
/aws/many-headers/1000 200 1000 0
/aws/many-headers/1100 502 0 0
/aws/many-headers/10000 502 0 0
/aws/long-header/60000 200 0 60000
/aws/long-header/100000 502 0 0
/aws/long-header/1000000 502 0 0
/aws/httptrigger 200 0 0
--- grep_error_log eval
qr/\[error\] \d+#\d+: (?:\*\d+ )?(?:\[lua\] \S+:\d+: (?:\S+\(\): )?)?\K.*?(?=(?:: failed to lookup address information: [^,]*)?(?:, client:|, context:|$))/
--- grep_error_log_out eval
"failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: message head is too large
failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: message head is too large
failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: message head is too large
failed to process aws-lambda, err: request to 127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT} failed: message head is too large
"
--- no_error_log
[alert]
[emerg]
[crit]



=== TEST 19: a Content-Length over max_req_body_size is refused before any of the body is sent
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", max_req_body_size = 1000 }
--- config
    location /t {
        content_by_lua_block {
            -- only the head: were the body awaited, the read would time out (under
            -- nginx's client_max_body_size of 1m, so that the plugin is the one refusing)
            local res, err = require("client").raw("POST /aws HTTP/1.1\r\nHost: localhost\r\n"
                .. "Connection: close\r\nContent-Length: 500000\r\n\r\n", nil, 2000)
            ngx.say(res and res.status or err)
        }
    }
--- response_body
413
--- error_log
request body of 500000 bytes is larger than max_req_body_size (1000)
--- no_error_log
[alert]
[emerg]



=== TEST 20: a secret reference nobody resolved (plain OpenResty), or a resolved function_uri that is not a URL: 500 and one log line per request; the worker keeps serving
APISIX resolves `$env://` and `$secret://` before access and keeps a reference it
could not resolve; here nothing resolves them, so they reach the request as they are.
--- http_config
    init_by_lua_block {
        REF = { function_uri = "$env://AWSL_FUNCTION_URI" }
        BAD = { function_uri = "127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
        GOOD = { function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
    }
--- config
    location = /ref {
        access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(REF) }
    }
    location = /bad {
        access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(BAD) }
    }
    location = /good {
        access_by_lua_block { require("apisix.plugins.aws-lambda.openresty").run(GOOD) }
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            local plugin = require("apisix.plugins.aws-lambda")
            ngx.say("check_schema accepts the reference: ",
                    tostring(plugin.check_schema({ function_uri = "$env://AWSL_FUNCTION_URI" })))
            for _, path in ipairs({ "/ref", "/bad", "/ref", "/good" }) do
                local res = assert(client.request({ path = path }))
                ngx.say(path, " ", res.status)
            end
        }
    }
--- response_body
check_schema accepts the reference: true
/ref 500
/bad 500
/ref 500
/good 200
--- grep_error_log eval
qr/failed to process aws-lambda: invalid configuration: [^,]*/
--- grep_error_log_out
failed to process aws-lambda: invalid configuration: property "function_uri" validation failed: must be an absolute http or https URL
failed to process aws-lambda: invalid configuration: property "function_uri" validation failed: must be an absolute http or https URL
failed to process aws-lambda: invalid configuration: property "function_uri" validation failed: must be an absolute http or https URL
--- no_error_log
[alert]
[emerg]
