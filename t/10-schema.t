# The plugin's contract with APISIX: name, priority, version, schema and
# check_schema (defaults injected into conf, APISIX's message format).
use t::TestAWSLambda 'no_plan';

run_tests();

__DATA__

=== TEST 1: the plugin's identity
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            ngx.say(plugin.name, " ", plugin.priority, " ", plugin.version)
            ngx.say(table.concat(plugin.schema.encrypt_fields, ","))
            -- function_uri or function_name: check_schema requires one (TEST 25 of
            -- t/90-invoke.t), which JSON Schema's `required` cannot say
            ngx.say("required: ", tostring(plugin.schema.required))
            ngx.say(type(plugin.check_schema), " ", type(plugin.access))
        }
    }
--- response_body
aws-lambda -1899 0.1
authorization.apikey,authorization.iam.accesskey,authorization.iam.secretkey,authorization.iam.session_token,proxy_url
required: nil
function function



=== TEST 2: the schema matches APISIX's in types, bounds and defaults
--- config
    location /t {
        content_by_lua_block {
            local p = require("apisix.plugins.aws-lambda").schema.properties
            local function show(name, s)
                ngx.say(name, " ", s.type, " min=", tostring(s.minimum),
                        " default=", tostring(s.default))
            end
            for _, name in ipairs({"function_uri", "timeout", "ssl_verify", "keepalive",
                                   "keepalive_timeout", "keepalive_pool",
                                   "max_req_body_size"}) do
                show(name, p[name])
            end
            local iam = p.authorization.properties.iam
            show("apikey", p.authorization.properties.apikey)
            show("aws_region", iam.properties.aws_region)
            show("service", iam.properties.service)
            ngx.say("iam keys come as a pair: ",
                    table.concat(iam.dependencies.accesskey, ","), " ",
                    table.concat(iam.dependencies.secretkey, ","))
        }
    }
--- response_body
function_uri string min=nil default=nil
timeout integer min=100 default=3000
ssl_verify boolean min=nil default=true
keepalive boolean min=nil default=true
keepalive_timeout integer min=1000 default=60000
keepalive_pool integer min=1 default=5
max_req_body_size integer min=1 default=67108864
apikey string min=nil default=nil
aws_region string min=nil default=us-east-1
service string min=nil default=execute-api
iam keys come as a pair: secretkey accesskey



=== TEST 3: an IAM configuration is accepted (APISIX TEST 1)
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local ok, err = plugin.check_schema({
                function_uri = "https://api.amazonaws.com",
                authorization = {
                    iam = {
                        accesskey = "key1",
                        secretkey = "key2"
                    }
                }
            })
            if not ok then
                ngx.say(err)
            else
                ngx.say("done")
            end
        }
    }
--- response_body
done



=== TEST 4: a missing accesskey is reported like APISIX (APISIX TEST 2)
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local ok, err = plugin.check_schema({
                function_uri = "https://api.amazonaws.com",
                authorization = {
                    iam = {
                        secretkey = "key2"
                    }
                }
            })
            if not ok then
                ngx.say(err)
            else
                ngx.say("done")
            end
        }
    }
--- response_body
property "authorization" validation failed: property "iam" validation failed: property "accesskey" is required



=== TEST 5: defaults are injected into conf itself
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local conf = {
                function_uri = "https://api.amazonaws.com",
                authorization = { iam = { accesskey = "a", secretkey = "s" } },
            }
            assert(plugin.check_schema(conf))
            ngx.say(conf.timeout, " ", tostring(conf.ssl_verify), " ",
                    tostring(conf.keepalive), " ", conf.keepalive_timeout, " ",
                    conf.keepalive_pool, " ", conf.max_req_body_size, " ",
                    conf.max_resp_body_size)
            ngx.say(conf.authorization.iam.aws_region, " ", conf.authorization.iam.service)
            -- what the user set is kept
            conf = { function_uri = "http://x", timeout = 100, ssl_verify = false }
            assert(plugin.check_schema(conf))
            ngx.say(conf.timeout, " ", tostring(conf.ssl_verify), " ",
                    tostring(conf.authorization))
        }
    }
--- response_body
3000 true true 60000 5 67108864 20971520
us-east-1 execute-api
100 false nil



=== TEST 6: invalid configurations are rejected with APISIX-style messages
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local uri = "https://api.amazonaws.com"
            local cases = {
                {},
                { function_uri = 1 },
                { function_uri = uri, timeout = "x" },
                { function_uri = uri, timeout = 10 },
                { function_uri = uri, timeout = 3000.5 },
                { function_uri = uri, ssl_verify = "yes" },
                { function_uri = uri, keepalive_pool = 0 },
                { function_uri = uri, keepalive_timeout = 999 },
                { function_uri = uri, max_req_body_size = 0 },
                { function_uri = uri, authorization = "x" },
                { function_uri = uri, authorization = { apikey = "" } },
                { function_uri = uri, authorization = { iam = { accesskey = "a" } } },
                { function_uri = uri, authorization = { iam = { accesskey = 1, secretkey = "s" } } },
                { function_uri = "" },
                { function_uri = "/relative" },
                { function_uri = "ftp://example.com/x" },
                { function_uri = uri, unsigned_headers = { 1 } },
            }
            for _, conf in ipairs(cases) do
                local ok, err = plugin.check_schema(conf)
                ngx.say(ok and "accepted" or err)
            end
        }
    }
--- response_body
property "function_uri" is required
property "function_uri" validation failed: wrong type: expected string, got number
property "timeout" validation failed: wrong type: expected integer, got string
property "timeout" validation failed: expected 10 to be at least 100
property "timeout" validation failed: wrong type: expected integer, got number
property "ssl_verify" validation failed: wrong type: expected boolean, got string
property "keepalive_pool" validation failed: expected 0 to be at least 1
property "keepalive_timeout" validation failed: expected 999 to be at least 1000
property "max_req_body_size" validation failed: expected 0 to be at least 1
property "authorization" validation failed: wrong type: expected object, got string
property "authorization" validation failed: property "apikey" validation failed: string too short, expected at least 1, got 0
property "authorization" validation failed: property "iam" validation failed: property "secretkey" is required
property "authorization" validation failed: property "iam" validation failed: property "accesskey" validation failed: wrong type: expected string, got number
property "function_uri" validation failed: string too short, expected at least 1, got 0
property "function_uri" validation failed: must be an absolute http or https URL
property "function_uri" validation failed: must be an absolute http or https URL
property "unsigned_headers" validation failed: failed to validate item 1: wrong type: expected string, got number



=== TEST 7: a rejected configuration is left as it was
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local conf = { function_uri = "https://x", timeout = 1 }
            assert(not plugin.check_schema(conf))
            ngx.say(tostring(conf.keepalive), " ", tostring(conf.ssl_verify))
        }
    }
--- response_body
nil nil



=== TEST 8: check_schema needs no runtime: no socket, no thread is started
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            assert(plugin.check_schema({ function_uri = "https://x" }))
            local native = require("apisix.plugins.aws-lambda.native")
            ngx.say(tostring(native.stats().socket))
        }
    }
--- response_body
nil
