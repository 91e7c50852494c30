//! Validation with defaults, reproducing APISIX's `core.schema.check`.
//!
//! APISIX validates plugin configuration with api7's `jsonschema` Lua library (0.9.x,
//! `lib/jsonschema.lua`). This module interprets `schema.json` the way the code that
//! library generates does, and returns the same message strings, so a user sees the
//! same errors from this plugin as from APISIX's own `aws-lambda`:
//!
//! - a subschema checks `type`, then `properties`/`required` (injecting defaults as it
//!   goes), then `items`, then `minLength`, then `minimum`/`maximum`, then `enum`, and
//!   stops at the first failure;
//! - failures compose as `property "a" validation failed: <inner>` and
//!   `failed to validate item <1-based index>: <inner>`;
//! - types are Lua's view of the data: every number is a double (so 3000.0 is an
//!   integer), an empty table is both an empty object and an empty array, and JSON null
//!   (`cjson.null`, a light userdata) is reported as `userdata`;
//! - numbers in messages print as LuaJIT's `tostring` prints them (`%.14g`).
//!
//! The library walks `properties` with `pairs`, so when several properties fail, the
//! one APISIX reports depends on Lua's hash order. Here properties are checked in
//! document order of `schema.json` (function_uri first), then `required` names that have
//! no property schema, in array order.
//!
//! Current APISIX (`core.schema` passing `secret.is_secret_ref` as jsonschema 0.9.13's
//! `skip_validation` hook) accepts a string field whose value is a secret reference
//! (`$secret://...`, or `$env://...` in any case) without checking it, and resolves it
//! before `access`. The same skip applies here, to the schema and to the semantic checks.

use serde_json::{Map, Value};

use super::schema::{self, Node, Type};
use super::{endpoint, function};

/// A default that `check` wrote into the configuration, so the caller can write the same
/// key into its own copy (the Lua table APISIX keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Object keys from the root to the injected property. A step through an array item
    /// would be its 1-based Lua index in decimal; the current schema has none.
    pub path: Vec<String>,
    pub value: Value,
}

/// Validates `conf` against the plugin schema, then the checks JSON Schema cannot
/// express (`function_uri` must be an http(s) URL, `unsigned_headers` items must be
/// header names).
///
/// On success, `conf` holds the defaults for absent properties and the returned list
/// names each one, in the order they were injected. On failure, `conf` is unchanged and
/// the error is the message APISIX's `core.schema.check` would return.
pub fn check(conf: &mut Value) -> Result<Vec<Injected>, String> {
    check_with_meta(conf, None)
}

/// APISIX's plugin loader adds `_meta` (disable, priority, filter, ...) to each
/// plugin's `schema.properties` and validates it with the rest of the configuration.
/// The Lua side hands that injected subschema here as `meta`, so `_meta` is checked
/// against the running APISIX's own definition, with jsonschema's messages. Without
/// `meta` (plain OpenResty, where `_meta` means nothing), `_meta` is not looked at.
pub fn check_with_meta(
    conf: &mut Value,
    meta: Option<&MetaSchema>,
) -> Result<Vec<Injected>, String> {
    // Work on a copy so that a failure leaves the caller's value as it was.
    let mut work = conf.clone();
    let mut injected = Vec::new();
    let mut path = Vec::new();
    // Where APISIX's schema says `required: ["function_uri"]`, and reported first as
    // APISIX reports it.
    if is_lua_object(&work)
        && work.get("function_uri").is_none()
        && work.get("function_name").is_none()
    {
        return Err("property \"function_uri\" is required".to_owned());
    }
    validate(schema::root(), &mut work, &mut path, &mut injected)?;
    if let (Some(meta), Some(value)) = (meta, work.get_mut("_meta")) {
        path.push("_meta".to_owned());
        validate(&meta.0, value, &mut path, &mut injected)
            .map_err(|err| format!("property \"_meta\" validation failed: {err}"))?;
        path.pop();
    }
    semantic(&work)?;
    *conf = work;
    Ok(injected)
}

/// The `_meta` subschema a host injected (APISIX's `plugin_injected_schema._meta`),
/// parsed for the validator.
pub struct MetaSchema(Node);

impl MetaSchema {
    /// Fails, naming the problem, when the subschema uses a keyword the validator does
    /// not implement (a future APISIX could add one): the caller then leaves `_meta`
    /// unchecked, as before, rather than refusing every route that has one.
    pub fn parse(meta: Value) -> Result<MetaSchema, String> {
        serde_json::from_value(meta)
            .map(MetaSchema)
            .map_err(|e| e.to_string())
    }
}

fn validate(
    node: &Node,
    value: &mut Value,
    path: &mut Vec<String>,
    injected: &mut Vec<Injected>,
) -> Result<(), String> {
    if matches!(node.ty, None | Some(Type::String)) && is_secret_ref(value) {
        return Ok(());
    }

    if let Some(ty) = node.ty {
        if !has_type(value, ty) {
            return Err(format!(
                "wrong type: expected {}, got {}",
                ty.name(),
                lua_type(value)
            ));
        }
    }

    if (!node.properties.0.is_empty() || !node.required.is_empty()) && is_lua_object(value) {
        for (name, sub) in &node.properties.0 {
            if let Some(prop) = value.get_mut(name.as_str()) {
                path.push(name.clone());
                validate(sub, prop, path, injected)
                    .map_err(|err| format!("property \"{name}\" validation failed: {err}"))?;
                path.pop();
            } else if node.required.contains(name) {
                return Err(format!("property \"{name}\" is required"));
            } else if let Some(default) = &sub.default {
                insert(value, name, default.clone());
                let mut at = path.clone();
                at.push(name.clone());
                injected.push(Injected {
                    path: at,
                    value: default.clone(),
                });
            }
        }
        for name in &node.required {
            let described = node.properties.0.iter().any(|(p, _)| p == name);
            if !described && value.get(name.as_str()).is_none() {
                return Err(format!("property \"{name}\" is required"));
            }
        }
    }

    // With the message of a missing required property: APISIX's plugin requires both
    // keys, and its test for `iam = { secretkey = ... }` expects exactly that message.
    if is_lua_object(value) {
        for (present, needs) in &node.dependencies {
            if value.get(present.as_str()).is_some() {
                if let Some(missing) = needs.iter().find(|n| value.get(n.as_str()).is_none()) {
                    return Err(format!("property \"{missing}\" is required"));
                }
            }
        }
    }

    if node.additional_properties == Some(false) && is_lua_object(value) {
        if let Value::Object(map) = &*value {
            if let Some(extra) = map
                .keys()
                .find(|k| !node.properties.0.iter().any(|(p, _)| p == *k))
            {
                return Err(format!("additional properties forbidden, found {extra}"));
            }
        }
    }

    if let (Some(items), Value::Array(list)) = (&node.items, &mut *value) {
        for (i, item) in list.iter_mut().enumerate() {
            path.push((i + 1).to_string());
            validate(items, item, path, injected)
                .map_err(|err| format!("failed to validate item {}: {err}", i + 1))?;
            path.pop();
        }
    }

    if let (Some(min), Value::String(s)) = (node.min_length, &*value) {
        // The library counts UTF-8 characters, not bytes.
        let len = s.chars().count() as u64;
        if len < min {
            return Err(format!(
                "string too short, expected at least {min}, got {len}"
            ));
        }
    }

    if let Some(x) = value.as_f64() {
        if let Some(min) = node.minimum {
            if x < min {
                return Err(format!(
                    "expected {} to be at least {}",
                    lua_number(x),
                    lua_number(min)
                ));
            }
        }
        if let Some(max) = node.maximum {
            if x > max {
                return Err(format!(
                    "expected {} to be at most {}",
                    lua_number(x),
                    lua_number(max)
                ));
            }
        }
    }

    if let Some(allowed) = &node.enumeration {
        if !allowed.iter().any(|a| lua_eq(a, value)) {
            return Err("matches none of the enum values".to_owned());
        }
    }

    if let Some(choices) = &node.one_of {
        let mut matched = None;
        for (i, choice) in choices.iter().enumerate() {
            // A trial run: neither its defaults nor its failure count.
            if validate(choice, &mut value.clone(), &mut Vec::new(), &mut Vec::new()).is_ok() {
                if let Some(first) = matched {
                    return Err(format!(
                        "value should match only one schema, but matches both schemas {first} and {}",
                        i + 1
                    ));
                }
                matched = Some(i + 1);
            }
        }
        if matched.is_none() {
            return Err("value should match only one schema, but matches none".to_owned());
        }
    }

    Ok(())
}

/// What JSON Schema cannot say; runs only on a configuration that passed the schema.
fn semantic(conf: &Value) -> Result<(), String> {
    target(conf)?;
    if let Some(Value::String(uri)) = conf.get("function_uri") {
        if !is_secret_ref_str(uri) {
            endpoint::parse(uri)
                .map_err(|why| format!("property \"function_uri\" validation failed: {why}"))?;
        }
    }
    if let Some(Value::String(url)) = conf.pointer("/authorization/iam/sts_endpoint") {
        if !is_secret_ref_str(url) {
            endpoint::parse(url).map_err(|why| {
                format!(
                    "property \"authorization\" validation failed: property \"iam\" validation \
                     failed: property \"sts_endpoint\" validation failed: {why}"
                )
            })?;
        }
    }
    if let Some(Value::String(url)) = conf.get("proxy_url") {
        if !is_secret_ref_str(url) {
            super::proxy::parse(url)
                .map_err(|why| format!("property \"proxy_url\" validation failed: {why}"))?;
        }
    }
    if let Some(Value::Array(names)) = conf.get("unsigned_headers") {
        for (i, name) in names.iter().enumerate() {
            let Value::String(name) = name else { continue };
            if !is_secret_ref_str(name) && !is_header_pattern(name) {
                return Err(format!(
                    "property \"unsigned_headers\" validation failed: failed to validate item {}: \
                     expected a header name, optionally ending in \"*\", got \"{}\"",
                    i + 1,
                    name.escape_debug()
                ));
            }
        }
    }
    Ok(())
}

/// Properties that only the Invoke API mode (`function_name`) reads.
const INVOKE_ONLY: [&str; 8] = [
    "qualifier",
    "aws_region",
    "invoke_endpoint",
    "invocation_type",
    "invoke_mode",
    "payload_format",
    "function_error_status",
    "log_type",
];

/// Exactly one of `function_uri` and `function_name`, and what goes with each.
fn target(conf: &Value) -> Result<(), String> {
    let text = |key: &str| match conf.get(key) {
        Some(Value::String(s)) if !is_secret_ref_str(s) => Some(s.as_str()),
        _ => None,
    };
    let prop = |key: &str, why: String| format!("property \"{key}\" validation failed: {why}");
    match (conf.get("function_uri"), conf.get("function_name")) {
        // check() has reported it already.
        (None, None) => return Err("property \"function_uri\" is required".to_owned()),
        (Some(_), Some(_)) => {
            return Err("only one of \"function_uri\" and \"function_name\" may be set".to_owned())
        }
        (Some(_), None) => {
            if let Some(key) = INVOKE_ONLY.iter().find(|k| conf.get(**k).is_some()) {
                return Err(format!(
                    "property \"{key}\" is only used with \"function_name\""
                ));
            }
            return Ok(());
        }
        (None, Some(_)) => {}
    }
    if conf.pointer("/authorization/apikey").is_some() {
        return Err(prop(
            "authorization",
            "apikey cannot be used with \"function_name\": the Lambda Invoke API is \
             authorised with iam"
                .to_owned(),
        ));
    }
    // These two before function_name, which may be a secret reference (not checked).
    if let Some(uri) = text("invoke_endpoint") {
        endpoint::parse(uri).map_err(|why| prop("invoke_endpoint", why.to_owned()))?;
    }
    // InvokeWithResponseStream takes RequestResponse and DryRun only (its
    // ResponseStreamingInvocationType); LogType is None or Tail as for Invoke.
    if let (Some("response_stream"), Some("Event")) = (text("invoke_mode"), text("invocation_type"))
    {
        return Err(prop(
            "invocation_type",
            "Event cannot be used with invoke_mode \"response_stream\": \
             InvokeWithResponseStream takes RequestResponse or DryRun"
                .to_owned(),
        ));
    }
    let Some(name) = text("function_name") else {
        return Ok(());
    };
    let function = function::parse(name).map_err(|why| prop("function_name", why))?;
    if let Some(q) = text("qualifier") {
        function::check_qualifier(q).map_err(|why| prop("qualifier", why))?;
        if function.qualifier.as_deref().is_some_and(|own| own != q) {
            return Err(prop(
                "qualifier",
                "differs from the qualifier in function_name".to_owned(),
            ));
        }
    }
    if let Some(region) = text("aws_region") {
        if !function::is_region(region) {
            return Err(prop(
                "aws_region",
                format!("{region:?} is not a region name"),
            ));
        }
        if function.region.as_deref().is_some_and(|own| own != region) {
            return Err(prop(
                "aws_region",
                "differs from the region in the function ARN".to_owned(),
            ));
        }
    }
    Ok(())
}

/// A header name, or a prefix of one followed by `*` (a bare `*` leaves every optional
/// header unsigned). `*` is legal inside a header name, but one anywhere else is a glob
/// that would never match, so it is refused.
fn is_header_pattern(name: &str) -> bool {
    let prefix = name.strip_suffix('*').unwrap_or(name);
    !prefix.contains('*')
        && (prefix.is_empty() || http::HeaderName::from_bytes(prefix.as_bytes()).is_ok())
}

/// APISIX's `secret.is_secret_ref`: the value is resolved from a secret manager or the
/// environment at run time, so its literal text is not checked.
fn is_secret_ref(value: &Value) -> bool {
    matches!(value, Value::String(s) if is_secret_ref_str(s))
}

fn is_secret_ref_str(s: &str) -> bool {
    s.starts_with("$secret://")
        || s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("$env://"))
}

/// The library's `tablekind` rule: a Lua table with no keys is an object and an array.
fn is_lua_object(value: &Value) -> bool {
    match value {
        Value::Object(_) => true,
        Value::Array(list) => list.is_empty(),
        _ => false,
    }
}

fn is_lua_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn has_type(value: &Value, ty: Type) -> bool {
    match ty {
        Type::Object => is_lua_object(value),
        Type::Array => is_lua_array(value),
        Type::String => value.is_string(),
        Type::Boolean => value.is_boolean(),
        Type::Number => value.is_number(),
        // `v % 1.0 == 0.0` in the library: integral doubles count.
        Type::Integer => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|x| x.fract() == 0.0)
            }
            _ => false,
        },
    }
}

/// Lua's `type()` of the value as APISIX sees it after `cjson.decode`.
fn lua_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "userdata",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Object(_) => "table",
    }
}

/// Lua equality for `enum`: numbers compare as doubles, tables by content (`deepeq`).
fn lua_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| lua_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| lua_eq(v, w)))
        }
        _ => a == b,
    }
}

fn insert(target: &mut Value, key: &str, value: Value) {
    // An empty Lua table may have arrived as `[]`; it is the object that gets the key.
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        map.insert(key.to_owned(), value);
    }
}

/// A number as LuaJIT's `tostring` writes it: C's `%.14g`.
pub(crate) fn lua_number(x: f64) -> String {
    const PRECISION: i32 = 14;
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // %g takes the exponent %e would print after rounding to the precision.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return x.to_string();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return x.to_string();
    };
    if !(-4..PRECISION).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_fraction(mantissa),
            exp.unsigned_abs()
        )
    } else {
        let fixed = format!("{:.*}", (PRECISION - 1 - exp) as usize, x);
        trim_fraction(&fixed).to_owned()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URI: &str = "https://abc.lambda-url.us-west-2.on.aws/";

    fn err(mut conf: Value) -> String {
        let before = conf.clone();
        let e = check(&mut conf).expect_err("should be rejected");
        assert_eq!(conf, before, "a failed check must not change the conf");
        e
    }

    fn ok(mut conf: Value) -> (Value, Vec<Injected>) {
        match check(&mut conf) {
            Ok(injected) => (conf, injected),
            Err(e) => panic!("rejected: {e}"),
        }
    }

    /// `conf` with one property replaced, on top of a valid base.
    fn with(key: &str, value: Value) -> Value {
        let mut conf = json!({"function_uri": URI});
        conf[key] = value;
        conf
    }

    fn prop(name: &str, inner: &str) -> String {
        format!("property \"{name}\" validation failed: {inner}")
    }

    fn injected(path: &[&str], value: Value) -> Injected {
        Injected {
            path: path.iter().map(|s| s.to_string()).collect(),
            value,
        }
    }

    #[test]
    fn accepts_apisix_examples() {
        // t/plugin/aws-lambda.t and docs/en/latest/plugins/aws-lambda.md
        for conf in [
            json!({"function_uri": "https://api.amazonaws.com",
                   "authorization": {"iam": {"accesskey": "key1", "secretkey": "key2"}}}),
            json!({"function_uri": "http://localhost:8765/httptrigger",
                   "authorization": {"apikey": "testkey"}}),
            json!({"function_uri": "http://localhost:8765/generic",
                   "authorization": {"apikey": "test-api-key",
                                     "iam": {"accesskey": "test-access-key",
                                             "secretkey": "test-secret-key"}}}),
            json!({"function_uri": "https://your-lambda-function-url.lambda-url.us-west-2.on.aws/",
                   "authorization": {"iam": {"accesskey": "YOUR_IAM_ACCESS_KEY",
                                             "secretkey": "YOUR_IAM_SECRET_KEY",
                                             "aws_region": "us-west-2", "service": "lambda"}},
                   "ssl_verify": false}),
            json!({"function_uri": "https://your-api-id.execute-api.us-west-2.amazonaws.com/default",
                   "authorization": {"apikey": "YOUR_API_GATEWAY_API_KEY"},
                   "ssl_verify": false}),
        ] {
            ok(conf);
        }
    }

    #[test]
    fn injects_top_level_defaults_in_document_order() {
        let (conf, list) = ok(json!({"function_uri": URI}));
        assert_eq!(
            list,
            [
                injected(&["timeout"], json!(3000)),
                injected(&["stream_idle_timeout"], json!(60000)),
                injected(&["ssl_verify"], json!(true)),
                injected(&["keepalive"], json!(true)),
                injected(&["keepalive_timeout"], json!(60000)),
                injected(&["keepalive_pool"], json!(5)),
                injected(&["http2"], json!(true)),
                injected(&["max_req_body_size"], json!(67108864)),
                injected(&["max_resp_body_size"], json!(20971520)),
            ]
        );
        assert_eq!(
            conf,
            json!({"function_uri": URI, "timeout": 3000, "stream_idle_timeout": 60000,
                   "ssl_verify": true, "keepalive": true,
                   "keepalive_timeout": 60000, "keepalive_pool": 5, "http2": true,
                   "max_req_body_size": 67108864, "max_resp_body_size": 20971520})
        );
    }

    #[test]
    fn injects_iam_defaults_only_into_present_objects() {
        let (conf, list) = ok(json!({"function_uri": URI, "authorization": {"apikey": "k"}}));
        assert_eq!(conf["authorization"], json!({"apikey": "k"}));
        assert!(list.iter().all(|i| i.path.len() == 1), "{list:?}");

        let (conf, list) = ok(json!({"function_uri": URI,
            "authorization": {"iam": {"accesskey": "a", "secretkey": "s"}}}));
        assert_eq!(
            conf["authorization"]["iam"],
            json!({"accesskey": "a", "secretkey": "s",
                   "aws_region": "us-east-1", "service": "execute-api"})
        );
        assert_eq!(
            list[..2],
            [
                injected(&["authorization", "iam", "aws_region"], json!("us-east-1")),
                injected(&["authorization", "iam", "service"], json!("execute-api")),
            ]
        );
    }

    #[test]
    fn keeps_present_values_and_unknown_properties() {
        let conf = json!({"function_uri": URI, "timeout": 100, "stream_idle_timeout": 100,
            "ssl_verify": false, "keepalive": false, "keepalive_timeout": 1000, "keepalive_pool": 1,
            "http2": false, "max_req_body_size": 1, "max_resp_body_size": 1, "unsigned_headers": [],
            "authorization": {"iam": {"accesskey": "a", "secretkey": "s",
                                      "aws_region": "eu-west-1", "service": "lambda"}},
            "_meta": {"disable": false}, "extra": [1, 2]});
        let (out, list) = ok(conf.clone());
        assert_eq!(out, conf);
        assert!(list.is_empty());
    }

    #[test]
    fn required() {
        assert_eq!(err(json!({})), "property \"function_uri\" is required");
        assert_eq!(
            err(json!({"timeout": 3000})),
            "property \"function_uri\" is required"
        );
        // t/plugin/aws-lambda.t TEST 2
        assert_eq!(
            err(json!({"function_uri": "https://api.amazonaws.com",
                       "authorization": {"iam": {"secretkey": "key2"}}})),
            "property \"authorization\" validation failed: property \"iam\" validation failed: \
             property \"accesskey\" is required"
        );
        assert_eq!(
            err(with("authorization", json!({"iam": {"accesskey": "a"}}))),
            "property \"authorization\" validation failed: property \"iam\" validation failed: \
             property \"secretkey\" is required"
        );
        // No keys at all: the AWS credential chain.
        ok(with("authorization", json!({"iam": {}})));
    }

    #[test]
    fn wrong_types() {
        let cases = [
            (
                "timeout",
                json!("x"),
                "wrong type: expected integer, got string",
            ),
            (
                "timeout",
                json!(true),
                "wrong type: expected integer, got boolean",
            ),
            (
                "timeout",
                json!(3000.5),
                "wrong type: expected integer, got number",
            ),
            (
                "ssl_verify",
                json!("yes"),
                "wrong type: expected boolean, got string",
            ),
            (
                "keepalive",
                json!(1),
                "wrong type: expected boolean, got number",
            ),
            (
                "http2",
                json!("on"),
                "wrong type: expected boolean, got string",
            ),
            (
                "authorization",
                json!("x"),
                "wrong type: expected object, got string",
            ),
            (
                "authorization",
                json!(["apikey"]),
                "wrong type: expected object, got table",
            ),
            (
                "function_uri",
                json!(1),
                "wrong type: expected string, got number",
            ),
            (
                "function_uri",
                json!({"a": 1}),
                "wrong type: expected string, got table",
            ),
            (
                "function_uri",
                Value::Null,
                "wrong type: expected string, got userdata",
            ),
            (
                "unsigned_headers",
                json!("x-debug"),
                "wrong type: expected array, got string",
            ),
            (
                "unsigned_headers",
                json!({"a": "b"}),
                "wrong type: expected array, got table",
            ),
        ];
        for (key, value, inner) in cases {
            assert_eq!(err(with(key, value)), prop(key, inner), "{key}");
        }
        assert_eq!(
            err(with(
                "authorization",
                json!({"iam": {"accesskey": 1, "secretkey": "s"}})
            )),
            "property \"authorization\" validation failed: property \"iam\" validation failed: \
             property \"accesskey\" validation failed: wrong type: expected string, got number"
        );
        assert_eq!(err(json!("x")), "wrong type: expected object, got string");
        assert_eq!(err(json!([1])), "wrong type: expected object, got table");
    }

    #[test]
    fn lua_doubles_count_as_integers() {
        let (conf, list) = ok(with("timeout", json!(3000.0)));
        assert_eq!(conf["timeout"], json!(3000.0));
        assert!(list.iter().all(|i| i.path != ["timeout"]));
        ok(with("keepalive_pool", json!(1.0)));
    }

    #[test]
    fn out_of_range() {
        let cases = [
            ("timeout", json!(10), "expected 10 to be at least 100"),
            ("timeout", json!(99.0), "expected 99 to be at least 100"),
            ("keepalive_pool", json!(0), "expected 0 to be at least 1"),
            (
                "keepalive_timeout",
                json!(999),
                "expected 999 to be at least 1000",
            ),
            ("max_req_body_size", json!(0), "expected 0 to be at least 1"),
            (
                "max_req_body_size",
                json!(-5),
                "expected -5 to be at least 1",
            ),
            (
                "max_resp_body_size",
                json!(0),
                "expected 0 to be at least 1",
            ),
        ];
        for (key, value, inner) in cases {
            assert_eq!(err(with(key, value)), prop(key, inner), "{key}");
        }
    }

    #[test]
    fn empty_strings() {
        let short = "string too short, expected at least 1, got 0";
        assert_eq!(
            err(with("function_uri", json!(""))),
            prop("function_uri", short)
        );
        assert_eq!(
            err(with("authorization", json!({"apikey": ""}))),
            prop("authorization", &prop("apikey", short))
        );
        for field in ["accesskey", "secretkey", "aws_region", "service"] {
            let mut iam = json!({"accesskey": "a", "secretkey": "s"});
            iam[field] = json!("");
            assert_eq!(
                err(with("authorization", json!({ "iam": iam }))),
                prop("authorization", &prop("iam", &prop(field, short))),
                "{field}"
            );
        }
    }

    #[test]
    fn bad_function_uri() {
        let not_absolute = prop("function_uri", "must be an absolute http or https URL");
        for uri in [
            "/relative",
            "relative/path",
            "ftp://example.com/f",
            "http://",
            "https:///p",
        ] {
            assert_eq!(err(with("function_uri", json!(uri))), not_absolute, "{uri}");
        }
        let e = err(with(
            "function_uri",
            json!("https://user:hunter2@example.com/"),
        ));
        assert!(e.starts_with("property \"function_uri\" validation failed: must not contain"));
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn unsigned_headers() {
        ok(with(
            "unsigned_headers",
            json!(["X-Debug-*", "x-trace", "*"]),
        ));
        // An empty Lua table may come over as an object.
        ok(with("unsigned_headers", json!({})));
        let cases = [
            (json!([1]), "failed to validate item 1: wrong type: expected string, got number"),
            (json!(["a", ["b"]]), "failed to validate item 2: wrong type: expected string, got table"),
            (json!(["a", ""]), "failed to validate item 2: string too short, expected at least 1, got 0"),
            (
                json!(["x y"]),
                "failed to validate item 1: expected a header name, optionally ending in \"*\", got \"x y\"",
            ),
            (
                json!(["ok", "x-*-y*"]),
                "failed to validate item 2: expected a header name, optionally ending in \"*\", got \"x-*-y*\"",
            ),
        ];
        for (value, inner) in cases {
            assert_eq!(
                err(with("unsigned_headers", value)),
                prop("unsigned_headers", inner)
            );
        }
    }

    #[test]
    fn first_failure_in_document_order() {
        assert_eq!(
            err(json!({"timeout": "x", "keepalive_pool": 0})),
            "property \"function_uri\" is required"
        );
        assert_eq!(
            err(with("keepalive_pool", json!(0)).tap_set("timeout", json!("x"))),
            prop("timeout", "wrong type: expected integer, got string")
        );
    }

    #[test]
    fn a_secret_function_name_still_has_its_invoke_fields_checked() {
        let conf = json!({
            "function_name": "$secret://vault/1/lambda/name",
            "authorization": {"iam": {"accesskey": "AK", "secretkey": "SK"}},
            "invoke_mode": "response_stream",
            "invocation_type": "Event",
        });
        assert!(err(conf).contains("Event cannot be used with invoke_mode"));
        let conf = json!({
            "function_name": "$secret://vault/1/lambda/name",
            "authorization": {"iam": {"accesskey": "AK", "secretkey": "SK"}},
            "invoke_endpoint": "not a url",
        });
        assert!(err(conf).starts_with("property \"invoke_endpoint\" validation failed"));
    }

    #[test]
    fn secret_references_skip_string_checks() {
        // APISIX resolves these before access; check_schema sees the reference.
        ok(with("function_uri", json!("$secret://vault/1/lambda/url")));
        ok(with("function_uri", json!("$ENV://LAMBDA_URL")));
        ok(with("function_uri", json!("$env://LAMBDA_URL")));
        ok(with(
            "authorization",
            json!({"iam": {"accesskey": "$env://AK", "secretkey": "$secret://v/1/sk"}}),
        ));
        ok(with("unsigned_headers", json!(["$env://X"])));
        // Not for non-string fields, nor for look-alikes.
        assert_eq!(
            err(with("timeout", json!("$env://TIMEOUT"))),
            prop("timeout", "wrong type: expected integer, got string")
        );
        assert_eq!(
            err(with("function_uri", json!("$vault://x"))),
            prop("function_uri", "must be an absolute http or https URL")
        );
    }

    trait TapSet {
        fn tap_set(self, key: &str, value: Value) -> Value;
    }

    impl TapSet for Value {
        fn tap_set(mut self, key: &str, value: Value) -> Value {
            self[key] = value;
            self
        }
    }

    /// The interpreter against keywords the plugin schema does not use (yet).
    fn check_node(schema: &str, mut value: Value) -> Result<Value, String> {
        let node: Node = serde_json::from_str(schema).map_err(|e| e.to_string())?;
        validate(&node, &mut value, &mut Vec::new(), &mut Vec::new())?;
        Ok(value)
    }

    #[test]
    fn other_keywords() {
        let s = r#"{"type": "object", "properties": {
            "n": {"type": "number", "minimum": 0.5, "maximum": 1},
            "e": {"enum": ["a", 2, true]},
            "list": {"type": "array", "items": {"type": "object",
                     "properties": {"k": {"type": "string", "default": "d"}}}}
            }, "required": ["n", "other"]}"#;
        assert_eq!(
            check_node(s, json!({"n": 1.5, "other": 1})).unwrap_err(),
            prop("n", "expected 1.5 to be at most 1")
        );
        assert_eq!(
            check_node(s, json!({"n": 0.25, "other": 1})).unwrap_err(),
            prop("n", "expected 0.25 to be at least 0.5")
        );
        assert_eq!(
            check_node(s, json!({"n": 1})).unwrap_err(),
            "property \"other\" is required"
        );
        assert_eq!(
            check_node(s, json!({"n": 1, "other": 1, "e": "b"})).unwrap_err(),
            prop("e", "matches none of the enum values")
        );
        for e in [json!("a"), json!(2.0), json!(true)] {
            check_node(s, json!({"n": 1, "other": 1, "e": e})).unwrap();
        }
        // Defaults go into objects inside array items too; an empty table is an object.
        assert_eq!(
            check_node(s, json!({"n": 1, "other": 1, "list": [{}, []]})).unwrap()["list"],
            json!([{"k": "d"}, {"k": "d"}])
        );
        assert!(check_node(r#"{"maxLength": 3}"#, json!("x"))
            .unwrap_err()
            .contains("unknown field `maxLength`"));
    }

    #[test]
    fn numbers_print_like_luajit() {
        let cases = [
            (10.0, "10"),
            (-5.0, "-5"),
            (0.0, "0"),
            (0.5, "0.5"),
            (1.5, "1.5"),
            (67108864.0, "67108864"),
            (99999999999999.0, "99999999999999"),
            (1e14, "1e+14"),
            (1e15, "1e+15"),
            (2f64.powi(53), "9.007199254741e+15"),
            (1.0 / 3.0, "0.33333333333333"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e300, "1e+300"),
            (-1.25e-7, "-1.25e-07"),
        ];
        for (x, want) in cases {
            assert_eq!(lua_number(x), want, "{x}");
        }
    }

    /// APISIX's `plugin_injected_schema._meta` (apisix/schema_def.lua), as its plugin
    /// loader adds it to `schema.properties`.
    fn apisix_meta() -> MetaSchema {
        MetaSchema::parse(json!({
            "type": "object",
            "properties": {
                "disable": {"type": "boolean"},
                "error_response": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                "priority": {"description": "priority of plugins by customized order",
                             "type": "integer"},
                "filter": {"description": "filter ...", "type": "array"},
                "pre_function": {"description": "function ...", "type": "string"}
            },
            "additionalProperties": false
        }))
        .expect("APISIX's _meta schema uses known keywords")
    }

    #[test]
    fn meta_as_apisix_checks_it() {
        let meta = apisix_meta();
        let check_meta = |value: Value| {
            let mut conf = with("_meta", value);
            check_with_meta(&mut conf, Some(&meta)).map(|_| conf)
        };
        let good = json!({"priority": 10, "disable": false,
                          "filter": [["arg_v", "==", "1"]], "error_response": {"m": 1},
                          "pre_function": "return function() end"});
        assert_eq!(
            check_meta(good.clone()).unwrap()["_meta"],
            good,
            "kept as it is"
        );
        check_meta(json!({})).unwrap();
        check_meta(json!({"error_response": "text"})).unwrap();
        let cases = [
            (json!("x"), "wrong type: expected object, got string"),
            (json!({"priority": "high"}), "property \"priority\" validation failed: wrong type: expected integer, got string"),
            (json!({"priority": 1.5}), "property \"priority\" validation failed: wrong type: expected integer, got number"),
            (json!({"disable": "yes"}), "property \"disable\" validation failed: wrong type: expected boolean, got string"),
            (json!({"filter": "x"}), "property \"filter\" validation failed: wrong type: expected array, got string"),
            (json!({"error_response": 1}), "property \"error_response\" validation failed: value should match only one schema, but matches none"),
            (json!({"prio": 1}), "additional properties forbidden, found prio"),
        ];
        for (value, inner) in cases {
            assert_eq!(
                check_meta(value.clone()).unwrap_err(),
                prop("_meta", inner),
                "{value}"
            );
        }
        // Without the injected schema (plain OpenResty) `_meta` is not looked at, and
        // the typed configuration never reads it.
        ok(with("_meta", json!({"priority": "high"})));
    }

    #[test]
    fn meta_schema_with_unknown_keyword_is_reported() {
        let e = MetaSchema::parse(json!({"type": "object", "patternProperties": {}}))
            .err()
            .expect("unknown keyword");
        assert!(e.contains("patternProperties"), "{e}");
    }

    #[test]
    fn one_of_matching_both() {
        let node: Node = serde_json::from_value(json!({
            "oneOf": [{"type": "integer"}, {"type": "number"}]
        }))
        .unwrap();
        let mut v = json!(1);
        assert_eq!(
            validate(&node, &mut v, &mut Vec::new(), &mut Vec::new()).unwrap_err(),
            "value should match only one schema, but matches both schemas 1 and 2"
        );
    }

    #[test]
    fn sts_endpoint() {
        let iam = |extra: Value| {
            let mut iam = json!({"assume_role_arn": "arn:aws:iam::123456789012:role/r"});
            for (k, v) in extra.as_object().unwrap() {
                iam[k] = v.clone();
            }
            with("authorization", json!({"iam": iam}))
        };
        ok(iam(
            json!({"sts_endpoint": "https://vpce-1.sts.us-east-1.vpce.amazonaws.com"}),
        ));
        ok(iam(json!({"sts_endpoint": "$env://STS_URL"})));
        let at = |inner: &str| prop("authorization", &prop("iam", inner));
        assert_eq!(
            err(iam(json!({"sts_endpoint": "sts.internal"}))),
            at(&prop(
                "sts_endpoint",
                "must be an absolute http or https URL"
            ))
        );
        assert_eq!(
            err(iam(json!({"sts_endpoint": 5}))),
            at(&prop(
                "sts_endpoint",
                "wrong type: expected string, got number"
            ))
        );
        assert_eq!(
            err(with(
                "authorization",
                json!({"iam": {"sts_endpoint": "https://sts.x"}})
            )),
            at("property \"assume_role_arn\" is required")
        );
    }
}
