# Self-test of the Test::Nginx-format runner with plain nginx + lua blocks
# (no plugin).  Valid for both runners:
#   prove -I. -It/runner t/00-runner.t                 (the compact runner)
#   prove -I. -I<test-nginx>/lib t/00-runner.t         (openresty/test-nginx)

BEGIN {
    # Debian's nginx loads the lua module only through /etc/nginx, which the
    # tests never use: tell both runners to load it (unless told otherwise).
    if (!defined $ENV{TEST_NGINX_BINARY} && -x '/usr/sbin/nginx') {
        $ENV{TEST_NGINX_BINARY} = '/usr/sbin/nginx';
    }
    my $dir = '/usr/lib/nginx/modules';
    if (!defined $ENV{TEST_NGINX_LOAD_MODULES} && -f "$dir/ngx_http_lua_module.so") {
        $ENV{TEST_NGINX_LOAD_MODULES} =
            "$dir/ndk_http_module.so $dir/ngx_http_lua_module.so";
    }
    $ENV{TEST_NGINX_RUNNER_GREETING} = 'hello from the environment';
}

use Test::Nginx::Socket::Lua;

repeat_each(2);
log_level('info');
no_shuffle();
env_to_nginx('TEST_NGINX_RUNNER_GREETING');

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

# per request: status code + the checks each block names; the last block's
# shutdown_error_log is checked once, after nginx stops.
plan tests => repeat_each() * 48 + 1;

run_tests();

__DATA__

=== TEST 1: content_by_lua, response_body, no_error_log
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("hello, world")
        }
    }
--- request
GET /t
--- response_body
hello, world
--- no_error_log
[error]
[alert]



=== TEST 2: response_body_like and error_code
--- config
    location = /t {
        content_by_lua_block {
            ngx.status = 201
            ngx.say("created at ", ngx.now())
        }
    }
--- request
GET /t
--- error_code: 201
--- response_headers_like
Content-Type: text/pl.*
--- response_body_like chomp
^created at \d+
--- no_error_log
[error]



=== TEST 3: a 404 from nginx itself
--- config
    location = /t {
        return 404;
    }
--- request
GET /t
--- error_code: 404
--- response_body_like: 404 Not Found



=== TEST 4: response_headers, absent headers, repeated headers
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["X-Foo"] = "bar"
            ngx.header["Set-Cookie"] = {"a=1", "b=2"}
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_headers
X-Foo: bar
Set-Cookie: a=1, b=2
Content-Type: text/plain
!X-Absent
--- response_body
ok



=== TEST 5: more_headers reach the server; Host and Connection are added
--- config
    location = /t {
        content_by_lua_block {
            local h = ngx.req.get_headers()
            ngx.say("x-test: ", h["x-test"])
            ngx.say("x-multi: ", table.concat(h["x-multi"], ","))
            ngx.say("host: ", h["host"])
            ngx.say("connection: ", h["connection"])
        }
    }
--- request
GET /t
--- more_headers
X-Test: hello there
X-Multi: 1
X-Multi: 2
--- response_body
x-test: hello there
x-multi: 1,2
host: localhost
connection: close



=== TEST 6: error_log patterns, lines and regexes
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.ERR, "something bad: ", 42)
            ngx.log(ngx.WARN, "a warning")
            ngx.say("logged")
        }
    }
--- request
GET /t
--- response_body
logged
--- error_log eval
["something bad: 42", qr/\[warn\].*a warning/]
--- no_error_log
[alert]
[crit]



=== TEST 7: POST with a body (Content-Length added, body trimmed)
--- config
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            local body = ngx.req.get_body_data()
            ngx.say(ngx.req.get_method(), " ", #body, " [", body, "] ",
                    ngx.var.http_content_length)
        }
    }
--- request
POST /echo
hello world
--- response_body
POST 11 [hello world] 11



=== TEST 8: main_config and http_config injection
--- main_config
    env RUNNER_MAIN_CONFIG=injected;
--- http_config
    lua_shared_dict runner_dict 1m;
    init_by_lua_block {
        ngx.shared.runner_dict:set("from_init", "yes")
    }
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("env: ", os.getenv("RUNNER_MAIN_CONFIG"))
            ngx.say("dict: ", ngx.shared.runner_dict:get("from_init"))
        }
    }
--- request
GET /t
--- response_body
env: injected
dict: yes



=== TEST 9: $TEST_NGINX_* substitution in config, user_files, env_to_nginx
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("port: ", $TEST_NGINX_SERVER_PORT == tonumber(ngx.var.server_port))
            local f = assert(io.open("$TEST_NGINX_HTML_DIR/data.txt"))
            ngx.print("file: ", f:read("*a"))
            f:close()
            ngx.say("greeting: $TEST_NGINX_RUNNER_GREETING")
            ngx.say("env: ", os.getenv("TEST_NGINX_RUNNER_GREETING"))
        }
    }
--- user_files
>>> data.txt
some data
--- request
GET /t
--- response_body
port: true
file: some data
greeting: hello from the environment
env: hello from the environment



=== TEST 10: the root location serves html_dir; response_body eval qr//
--- config
--- request
GET /index.html
--- response_body eval
qr{<title>It works!</title>}



=== TEST 11: several requests in one block (request eval list)
--- config
    location /t {
        content_by_lua_block {
            ngx.say("uri ", ngx.var.uri)
        }
    }
--- request eval
["GET /t/a", "GET /t/b"]
--- error_code eval
[200, 200]
--- response_body eval
["uri /t/a\n", "uri /t/b\n"]



=== TEST 12: grep_error_log
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.INFO, "counter: 1")
            ngx.log(ngx.INFO, "counter: 2")
            ngx.say("ok")
        }
    }
--- request
GET /t
--- grep_error_log eval
qr/counter: \d+/
--- grep_error_log_out
counter: 1
counter: 2
--- response_body
ok



=== TEST 13: chunked response, log_by_lua, wait
--- config
    location = /t {
        content_by_lua_block {
            ngx.print("first ")
            ngx.flush(true)
            ngx.say("second")
        }
        log_by_lua_block {
            ngx.log(ngx.WARN, "log phase ran")
        }
    }
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
first second
--- wait: 0.1
--- error_log
log phase ran



=== TEST 14: raw_request
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(ngx.req.get_method(), " ", ngx.var.request_uri, " ",
                    ngx.req.http_version())
        }
    }
--- raw_request eval
"GET /t?x=1 HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
GET /t?x=1 1



=== TEST 15: client timeout with abort
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(1)
            ngx.say("too late")
        }
    }
--- request
GET /t
--- timeout: 0.2
--- abort
--- ignore_response



=== TEST 16: skipped block (would fail)
--- SKIP
--- config
    location = /t {
        return 500;
    }
--- request
GET /t
--- response_body
never



=== TEST 17: shutdown_error_log is checked after nginx stops
--- config
    location = /t {
        return 200 "bye\n";
    }
--- request
GET /t
--- response_body
bye
--- shutdown_error_log
signal 3 (SIGQUIT) received
