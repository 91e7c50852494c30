# AWS Signature V4: every request the function receives is verified by the mock
# with botocore over exactly the headers named in SignedHeaders, as AWS does.
use t::TestAWSLambda 'no_plan';

push @t::TestAWSLambda::NeverLogged, "wJalrXUtnFEMI";

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->plugin_conf && !defined $block->config) {
        $block->set_value('plugin_conf', <<'_EOC_');
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = {
            accesskey = "AKIDEXAMPLE",
            secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        },
    },
}
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: a GET is signed and the signature verifies
--- request
GET /aws
--- response_body_like chomp
^method: GET
target: /echo
path: /echo
query: 
signature: ok
signed_headers: host;x-amz-date
(?:.*\n)*header: authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}
(?:.*\n)*header: x-amz-date: \d{8}T\d{6}Z
--- response_body_unlike chomp
wJalrXUtnFEMI



=== TEST 2: a POST with a body is signed over the body
--- request
POST /aws
{"order": 42}
--- more_headers
Content-Type: application/json
--- response_body_like chomp
^method: POST
(?:.*\n)*signature: ok
signed_headers: content-length;content-type;host;x-amz-date
(?:.*\n)*body: \{"order": 42\}



=== TEST 3: APISIX TEST 9: the canonical query is what is sent and signed
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/generic",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /aws?with%20space=a%2Fb%20c&multi=m2&multi=m1&flag&a=*&a-=x
--- response_body_like chomp
\nquery: a=%2A&a-=x&flag=&multi=m1&multi=m2&with%20space=a%2Fb%20c
signature: ok



=== TEST 4: awkward queries: '+', '=' in values, empty pieces, UTF-8, invalid escapes
--- request
GET /aws?b=x+y&a==1&&c=%E2%82%AC&d=%zz&e=%C3%A9%20
--- response_body_like chomp
\nquery: a=%3D1&b=x%20y&c=%E2%82%AC&d=%25zz&e=%C3%A9%20
signature: ok



=== TEST 5: a path suffix with a space, UTF-8 and reserved characters is encoded and signed
--- request
GET /aws/a%20b/%C3%A9/!*'():@,;=+$&/x%25y
--- response_body_like chomp
\ntarget: /echo/a%20b/%C3%A9/%21%2A%27%28%29%3A%40%2C%3B%3D%2B%24%26/x%25y
path: .*
query: 
signature: ok



=== TEST 6: a suffix that is not UTF-8 is forwarded encoded and correctly signed
--- request
GET /aws/bad%FF%FEbytes
--- response_body_like chomp
\ntarget: /echo/bad%FF%FEbytes
(?:.*\n)*signature: ok



=== TEST 7: headers that proxies in front of AWS change are forwarded but not signed
--- request
GET /aws
--- more_headers
User-Agent: test-agent/1.0
X-Forwarded-For: 10.0.0.1
X-Forwarded-Proto: https
Forwarded: for=10.0.0.1
Via: 1.1 proxy
X-Amzn-Trace-Id: Root=1-abc
X-Custom: yes
--- response_body_like chomp
(?=[\s\S]*\nheader: user-agent: test-agent/1.0\n)(?=[\s\S]*\nheader: x-forwarded-for: 10.0.0.1\n)(?=[\s\S]*\nheader: forwarded: for=10.0.0.1\n)(?=[\s\S]*\nheader: via: 1.1 proxy\n)(?=[\s\S]*\nheader: x-amzn-trace-id: Root=1-abc\n)\nsignature: ok
signed_headers: host;x-amz-date;x-custom\n



=== TEST 8: unsigned_headers adds names and prefixes to the unsigned list
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    unsigned_headers = { "X-Tenant", "x-edge-*" },
    authorization = {
        iam = {
            accesskey = "AKIDEXAMPLE",
            secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        },
    },
}
--- request
GET /aws
--- more_headers
X-Tenant: t1
X-Edge-Location: fra
X-Edge-Id: 7
X-Kept: signed
--- response_body_like chomp
(?=[\s\S]*\nheader: x-tenant: t1\n)(?=[\s\S]*\nheader: x-edge-location: fra\n)\nsignature: ok
signed_headers: host;x-amz-date;x-kept\n



=== TEST 9: repeated headers keep all their values and are signed as AWS joins them
--- request
GET /aws
--- more_headers
X-Multi: one
X-Multi: two
--- response_body_like chomp
\nsignature: ok
signed_headers: host;x-amz-date;x-multi
(?:.*\n)*header: x-multi: one
header: x-multi: two



=== TEST 10: the client's own authorization wins: nothing is signed
--- request
GET /aws
--- more_headers
Authorization: Bearer client-token
--- response_body_like chomp
\nsignature: malformed
signed_headers: 
(?:.*\n)*header: authorization: Bearer client-token
--- response_body_unlike chomp
x-amz-date



=== TEST 11: the client's own x-amz-* signing headers are replaced, not forwarded
--- request
GET /aws
--- more_headers
X-Amz-Date: 20000101T000000Z
X-Amz-Security-Token: someone-elses-token
--- response_body_like chomp
\nsignature: ok
signed_headers: host;x-amz-date
--- response_body_unlike chomp
20000101T000000Z|someone-elses-token



=== TEST 12: with both an apikey and IAM keys, the apikey is used (APISIX's precedence)
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        apikey = "the-api-key",
        iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
    },
}
--- request
GET /aws?b=1&a=2
--- response_body_like chomp
\nquery: b=1&a=2
signature: none
(?:.*\n)*header: x-api-key: the-api-key



=== TEST 13: ... and when the client sent its own x-api-key, the request is signed too
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        apikey = "the-api-key",
        iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
    },
}
--- request
GET /aws
--- more_headers
X-Api-Key: client-key
--- response_body_like chomp
\nsignature: ok
signed_headers: host;x-amz-date;x-api-key
(?:.*\n)*header: x-api-key: client-key



=== TEST 14: the region and service of the configuration are in the credential scope
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = {
        iam = {
            accesskey = "AKIDEXAMPLE",
            secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            aws_region = "eu-west-1",
            service = "lambda",
        },
    },
}
--- request
GET /aws/fn
--- response_body_like chomp
\nsignature: ok
(?:.*\n)*header: authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/lambda/aws4_request



=== TEST 15: a chunked request body is re-framed with a Content-Length and signed (APISIX TEST 11)
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local payload = "hello world"
            local res, err = client.raw("POST /aws HTTP/1.1\r\n"
                .. "Host: 127.0.0.1\r\n"
                .. "Transfer-Encoding: chunked\r\n"
                .. "Content-Type: text/plain\r\n"
                .. "Connection: close\r\n\r\n"
                .. string.format("%x\r\n%s\r\n0\r\n\r\n", #payload, payload))
            if not res then
                ngx.say("failed: ", err)
                return
            end
            ngx.print(res.body)
        }
    }
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- request
GET /t
--- response_body_like chomp
\nsignature: ok
(?:.*\n)*header: content-length: 11
(?:.*\n)*body: hello world
--- response_body_unlike chomp
transfer-encoding



=== TEST 16: queries signed as bytes, botocore verifying each: not UTF-8 once decoded (escaped or raw), lone %, %zz, +, empty names and values
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            for _, q in ipairs({ "k=%FF%C3%28", "name=caf%E9", "k=\xff\xfe&e=%C3%A9",
                                 "a=%&b=%zz&c=%4", "a+b=c+d&p=%2B", "=&=v&k=&k&&x",
                                 "%FF=%FE&%ff=%fe" }) do
                local res = assert(client.raw("GET /aws?" .. q .. " HTTP/1.1\r\n"
                    .. "Host: localhost\r\nConnection: close\r\n\r\n"))
                ngx.say(res.status, " ", res.body:match("\nsignature: (%S+)"), " ",
                        res.body:match("\nquery: ([^\n]*)"))
            end
        }
    }
--- plugin_conf
{
    function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo",
    authorization = { iam = { accesskey = "KEY1", secretkey = "KeySecret" } },
}
--- response_body
200 ok k=%FF%C3%28
200 ok name=caf%E9
200 ok e=%C3%A9&k=%FF%FE
200 ok a=%25&b=%25zz&c=%254
200 ok a%20b=c%20d&p=%2B
200 ok =&=v&k=&k=&x=
200 ok %FF=%FE&%FF=%FE
--- no_error_log
[error]



=== TEST 17: without signing a query that is not UTF-8 is forwarded as the client sent it
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/echo", authorization = { apikey = "k" } }
--- request
GET /aws?name=caf%E9
--- response_body_like chomp
\nquery: name=caf%E9\n
