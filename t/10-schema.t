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



=== TEST 9: `_meta` is checked against the schema APISIX injects, with APISIX's messages
APISIX's plugin loader (apisix/plugin.lua, load_plugin) adds its common `_meta`
schema (apisix/schema_def.lua, plugin_injected_schema) to schema.properties and
relies on check_schema to enforce it; this block does what the loader does.
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local function try(meta)
                local conf = { function_uri = "https://x", _meta = meta }
                local ok, err = plugin.check_schema(conf)
                ngx.say(ok and "ok" or err)
                return conf
            end
            -- plain OpenResty: nothing injected, `_meta` means nothing and is not looked at
            try({ priority = "high" })

            plugin.schema.properties._meta = {
                type = "object",
                properties = {
                    disable = { type = "boolean" },
                    error_response = { oneOf = { { type = "string" }, { type = "object" } } },
                    priority = { description = "priority of plugins by customized order",
                                 type = "integer" },
                    filter = { description = "filter determines whether the plugin "
                                             .. "needs to be executed at runtime",
                               type = "array" },
                    pre_function = { description = "function to be executed ...",
                                     type = "string" },
                },
                additionalProperties = false,
            }
            plugin.schema["$comment"] = "this is a mark for our injected plugin schema"

            local conf = try({ priority = 10, disable = false,
                               filter = { { "arg_name", "==", "json" } },
                               error_response = "denied" })
            ngx.say("kept: ", conf._meta.priority, " ", tostring(conf._meta.disable), " ",
                    conf._meta.filter[1][1], " ", conf._meta.error_response)
            try({})
            try({ error_response = { message = "denied" } })
            try("high")
            try({ priority = "high" })
            try({ priority = 1.5 })
            try({ disable = "yes" })
            try({ filter = "arg_name == json" })
            try({ error_response = 403 })
            try({ priority = 1, prio = 2 })
            -- a plugin field is still reported first
            local ok, err = plugin.check_schema({ function_uri = "https://x", timeout = "1",
                                                  _meta = { priority = "high" } })
            ngx.say(err)
        }
    }
--- response_body
ok
ok
kept: 10 false arg_name denied
ok
ok
property "_meta" validation failed: wrong type: expected object, got string
property "_meta" validation failed: property "priority" validation failed: wrong type: expected integer, got string
property "_meta" validation failed: property "priority" validation failed: wrong type: expected integer, got number
property "_meta" validation failed: property "disable" validation failed: wrong type: expected boolean, got string
property "_meta" validation failed: property "filter" validation failed: wrong type: expected array, got string
property "_meta" validation failed: property "error_response" validation failed: value should match only one schema, but matches none
property "_meta" validation failed: additional properties forbidden, found prio
property "timeout" validation failed: wrong type: expected integer, got string
--- no_error_log
[warn]
[error]



=== TEST 10: an injected `_meta` schema this plugin cannot interpret leaves `_meta` unchecked, with a warning
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            plugin.schema.properties._meta = {
                type = "object",
                patternProperties = { ["^x-"] = { type = "string" } },
            }
            for _ = 1, 2 do
                ngx.say(tostring(plugin.check_schema({ function_uri = "https://x",
                                                       _meta = { priority = "high" } })))
            end
        }
    }
--- response_body
true
true
--- grep_error_log eval
qr/aws-lambda: _meta left unchecked: [^,]*patternProperties/
--- grep_error_log_out eval
qr/\A[^\n]+\n\z/



=== TEST 11: every string field the plugin page lists accepts a secret reference (APISIX resolves it before access)
--- config
    location /t {
        content_by_lua_block {
            local plugin = require("apisix.plugins.aws-lambda")
            local uri_fields = {
                "function_uri", "authorization.apikey", "authorization.iam.accesskey",
                "authorization.iam.secretkey", "authorization.iam.session_token",
                "authorization.iam.assume_role_arn", "authorization.iam.external_id",
                "authorization.iam.role_session_name", "authorization.iam.sts_endpoint",
                "authorization.iam.aws_region", "authorization.iam.service",
                "unsigned_headers.1",
            }
            local invoke_fields = {
                "function_name", "qualifier", "aws_region", "invoke_endpoint",
                "invocation_type", "payload_format", "log_type", "invoke_mode",
            }
            local function set(conf, path, value)
                local t = conf
                local keys = {}
                for k in path:gmatch("[^.]+") do keys[#keys + 1] = tonumber(k) or k end
                for i = 1, #keys - 1 do
                    t[keys[i]] = t[keys[i]] or {}
                    t = t[keys[i]]
                end
                t[keys[#keys]] = value
            end
            local function try(base, fields)
                for _, field in ipairs(fields) do
                    local conf = base()
                    set(conf, field, "$env://AWSL_" .. field:gsub("%W", "_"):upper())
                    local ok, err = plugin.check_schema(conf)
                    ngx.say(field, ": ", ok and "accepted" or err)
                end
            end
            try(function()
                return { function_uri = "https://x",
                         authorization = { iam = { accesskey = "a", secretkey = "s",
                                                   assume_role_arn = "arn:aws:iam::1:role/r" } } }
            end, uri_fields)
            try(function()
                return { function_name = "f", authorization = { iam = {} } }
            end, invoke_fields)
        }
    }
--- response_body
function_uri: accepted
authorization.apikey: accepted
authorization.iam.accesskey: accepted
authorization.iam.secretkey: accepted
authorization.iam.session_token: accepted
authorization.iam.assume_role_arn: accepted
authorization.iam.external_id: accepted
authorization.iam.role_session_name: accepted
authorization.iam.sts_endpoint: accepted
authorization.iam.aws_region: accepted
authorization.iam.service: accepted
unsigned_headers.1: accepted
function_name: accepted
qualifier: accepted
aws_region: accepted
invoke_endpoint: accepted
invocation_type: accepted
payload_format: accepted
log_type: accepted
invoke_mode: accepted
