# Surviving APISIX's lifecycle: module reloads, configuration updates, and the GC
# freeing native route handles.
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: route handles are freed by the GC once their configuration is gone
--- config
    location /t {
        content_by_lua_block {
            local native = require("apisix.plugins.aws-lambda.native")
            local before = native.stats().live_routes
            local routes = {}
            for i = 1, 100 do
                routes[i] = assert(native.route_new({ function_uri = "http://127.0.0.1:1/" .. i }))
            end
            ngx.say("created: ", native.stats().live_routes - before)
            routes = nil
            collectgarbage()
            collectgarbage()
            ngx.say("left after GC: ", native.stats().live_routes - before)
        }
    }
--- response_body
created: 100
left after GC: 0



=== TEST 2: an invalid configuration gives no handle and a message
--- config
    location /t {
        content_by_lua_block {
            local native = require("apisix.plugins.aws-lambda.native")
            ngx.say(select(2, native.route_new({ function_uri = "nope" })))
            ngx.say(select(2, native.route_new("nope")))
        }
    }
--- response_body
property "function_uri" validation failed: must be an absolute http or https URL
wrong type: expected object, got string



=== TEST 3: the plugin modules can be unloaded and required again (APISIX's plugin reload)
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            local client = require("client")
            local res = assert(client.request({ path = "/aws" }))
            ngx.print("before: ", res.body)
            for name in pairs(package.loaded) do
                if name:find("^apisix%.plugins%.aws%-lambda") then
                    package.loaded[name] = nil
                end
            end
            local plugin = require("apisix.plugins.aws-lambda")
            ngx.say("reloaded: ", plugin.name, " ", plugin.version)
            res = assert(client.request({ path = "/aws" }))
            ngx.print("after: ", res.body)
        }
    }
--- response_body
before: aws lambda invoked
reloaded: aws-lambda 0.1
after: aws lambda invoked



=== TEST 4: a changed configuration (a new table, as APISIX makes) takes effect
--- http_config
    init_by_lua_block {
        CONF = { function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status/201" }
    }
--- config
    location /aws {
        access_by_lua_block {
            require("apisix.plugins.aws-lambda.openresty").run(CONF)
        }
    }
    location /t {
        content_by_lua_block {
            local client = require("client")
            ngx.say(assert(client.request({ path = "/aws" })).status)
            CONF = { function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/status/202" }
            ngx.say(assert(client.request({ path = "/aws" })).status)
        }
    }
--- response_body
201
202



=== TEST 5: the worker's completion socket is private to the worker user
--- plugin_conf
{ function_uri = "http://127.0.0.1:$TEST_NGINX_MOCK_PORT/httptrigger" }
--- config
    location /t {
        content_by_lua_block {
            assert(require("client").request({ path = "/aws" }))
            local path = require("apisix.plugins.aws-lambda.native").stats().socket
            local p = io.popen("stat -c %a " .. path)
            ngx.say(path:match("aws%-lambda%-native%-%d+%.sock$") ~= nil, " ", p:read("*l"))
            p:close()
        }
    }
--- response_body
true 600
