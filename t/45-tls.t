# HTTPS to the function (AWS endpoints are HTTPS only): verification is on by default.
use t::TestAWSLambda 'no_plan';

# The refused handshakes below carry keys: neither may reach the log.
push @t::TestAWSLambda::NeverLogged, "wJalrXUtnFEMI", "TLS-SESSION-TOKEN-45", "TLS-APIKEY-45";

$ENV{TEST_NGINX_TLS_PORT} //= 1986;

add_block_preprocessor(sub {
    my $block = shift;
    my $http_config = $block->http_config // '';
    $block->set_value('http_config', $http_config . <<'_EOC_');
    server {
        listen $TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_ROOT/t/cert/server.crt;
        ssl_certificate_key $TEST_NGINX_ROOT/t/cert/server.key;
        # TLS in front of the mock function, which verifies signatures
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
            proxy_set_header Host $http_host;
            proxy_set_header X-Tls-Protocol $ssl_protocol;
        }
    }
_EOC_
    $block->set_value('request', 'GET /aws/fn?x=1') if !defined $block->request;
});

run_tests();

__DATA__

=== TEST 1: a certificate from an unknown CA is refused by default: 503
--- plugin_conf
{
    function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/tls",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                              session_token = "TLS-SESSION-TOKEN-45" } },
}
--- error_code: 503
--- error_log eval
"TLS handshake with 127.0.0.1:$ENV{TEST_NGINX_TLS_PORT} failed: invalid peer certificate: UnknownIssuer"



=== TEST 2: with ssl_verify false, the same endpoint works
--- plugin_conf
{ function_uri = "https://127.0.0.1:$TEST_NGINX_TLS_PORT/tls", ssl_verify = false }
--- response_body_like chomp
\ntarget: /tls/fn\?x=1
(?:.*\n)*header: x-tls-protocol: TLSv1\.[23]\n
--- no_error_log
[error]



=== TEST 3: a CA trusted through SSL_CERT_FILE verifies, host name included
--- main_config
    env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;
--- plugin_conf
{ function_uri = "https://localhost:$TEST_NGINX_TLS_PORT/tls" }
--- response_body_like chomp
\ntarget: /tls/fn\?x=1
(?:.*\n)*header: x-tls-protocol: TLSv1\.[23]\n
--- no_error_log
[error]



=== TEST 4: a trusted certificate for another name is refused: 503
--- main_config
    env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;
--- plugin_conf
{ function_uri = "https://127.0.0.2:$TEST_NGINX_TLS_PORT/tls", authorization = { apikey = "TLS-APIKEY-45" } }
--- error_code: 503
--- error_log eval
qr/failed to process aws-lambda, err: TLS handshake with 127\.0\.0\.2:$ENV{TEST_NGINX_TLS_PORT} failed: invalid peer certificate: certificate not valid for name "127\.0\.0\.2"/



=== TEST 5: IAM signing over TLS verifies at the function
--- main_config
    env SSL_CERT_FILE=$TEST_NGINX_ROOT/t/cert/ca.crt;
--- plugin_conf
{
    function_uri = "https://localhost:$TEST_NGINX_TLS_PORT/echo",
    authorization = { iam = { accesskey = "AKIDEXAMPLE", secretkey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" } },
}
--- response_body_like chomp
\ntarget: /echo/fn\?x=1
(?:.*\n)*signature: ok
(?:.*\n)*header: host: localhost:\d+\n
--- no_error_log
[error]
