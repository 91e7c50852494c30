//! The typed configuration, built from a configuration that passed [`check`].

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::endpoint::{self, Endpoint};
use super::function::{self, InvocationType, InvokeConfig, InvokeMode, PayloadFormat};
use super::proxy::{self, Proxy};
use super::validate::check;

/// SigV4 signing: static keys, or (without them) the AWS credential chain, and
/// optionally a role assumed on top.
#[derive(Clone, PartialEq, Eq)]
pub struct Iam {
    /// Access key, secret key and session token; None: the AWS credential chain.
    pub keys: Option<(String, String, Option<String>)>,
    pub region: String,
    pub service: String,
    pub assume_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    pub sts_endpoint: Option<String>,
}

impl fmt::Debug for Iam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iam")
            .field("access_key", &self.keys.as_ref().map(|k| &k.0))
            .field("secret_key", &self.keys.as_ref().map(|_| "<redacted>"))
            .field(
                "session_token",
                &self
                    .keys
                    .as_ref()
                    .and_then(|k| k.2.as_ref())
                    .map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("service", &self.service)
            .field("assume_role_arn", &self.assume_role_arn)
            .field("external_id", &self.external_id)
            .field("role_session_name", &self.role_session_name)
            .field("sts_endpoint", &self.sts_endpoint)
            .finish()
    }
}

/// One route's plugin configuration, with every default applied.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// `function_uri`, or with `function_name` the Lambda API's URL.
    pub function_uri: String,
    pub endpoint: Endpoint,
    /// Set with `function_name`: the request goes to the Invoke API as an event.
    pub invoke: Option<InvokeConfig>,
    pub apikey: Option<String>,
    pub iam: Option<Iam>,
    pub timeout: Duration,
    /// `stream_idle_timeout`: the longest silence within a streamed answer's body.
    pub stream_idle_timeout: Duration,
    pub ssl_verify: bool,
    pub keepalive: bool,
    pub keepalive_timeout: Duration,
    pub keepalive_pool: usize,
    /// `http2`: offer h2 to an https function (see client::Endpoint).
    pub http2: bool,
    pub max_req_body_size: u64,
    pub max_resp_body_size: u64,
    /// Extra names never signed, lowercased; a trailing `*` is a prefix match.
    pub unsigned_headers: Vec<String>,
    /// `proxy_url`: the forward proxy for the function and STS.
    pub proxy: Option<Proxy>,
}

impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginConfig")
            .field("function_uri", &self.function_uri)
            .field("endpoint", &self.endpoint)
            .field("invoke", &self.invoke)
            .field("apikey", &self.apikey.as_ref().map(|_| "<redacted>"))
            .field("iam", &self.iam)
            .field("timeout", &self.timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("ssl_verify", &self.ssl_verify)
            .field("keepalive", &self.keepalive)
            .field("keepalive_timeout", &self.keepalive_timeout)
            .field("keepalive_pool", &self.keepalive_pool)
            .field("http2", &self.http2)
            .field("max_req_body_size", &self.max_req_body_size)
            .field("max_resp_body_size", &self.max_resp_body_size)
            .field("unsigned_headers", &self.unsigned_headers)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl PluginConfig {
    /// Builds the typed configuration from a plugin conf as APISIX holds it.
    ///
    /// The value is validated again (on a copy, with defaults injected), so absent
    /// properties take the schema's defaults and an invalid value is refused with the
    /// same message `check` gives. That also covers values APISIX substituted for secret
    /// references after `check_schema` accepted the reference itself.
    ///
    /// Integer fields are milliseconds or bytes; a value beyond the target type's range
    /// saturates rather than fails, since the schema sets no maximum.
    pub fn from_value(v: &Value) -> Result<PluginConfig, String> {
        let mut conf = v.clone();
        check(&mut conf)?;

        let invoke = match conf.get("function_name") {
            Some(_) => Some(invoke_config(&conf)?),
            None => None,
        };
        let (function_uri, uri_property) = match &invoke {
            Some(invoke) => match conf.get("invoke_endpoint") {
                Some(_) => (string(&conf, &["invoke_endpoint"])?, "invoke_endpoint"),
                None => (function::default_endpoint(&invoke.region), "aws_region"),
            },
            None => (string(&conf, &["function_uri"])?, "function_uri"),
        };
        let endpoint = endpoint::parse(&function_uri)
            .map_err(|why| format!("property \"{uri_property}\" validation failed: {why}"))?;

        let apikey = match conf.pointer("/authorization/apikey") {
            Some(_) => Some(string(&conf, &["authorization", "apikey"])?),
            None => None,
        };
        let iam = match conf.pointer("/authorization/iam") {
            Some(_) => {
                let opt = |name: &str| match conf.pointer(&format!("/authorization/iam/{name}")) {
                    Some(_) => string(&conf, &["authorization", "iam", name]).map(Some),
                    None => Ok(None),
                };
                // The schema makes the keys come as a pair.
                let keys = match (opt("accesskey")?, opt("secretkey")?) {
                    (Some(ak), Some(sk)) => Some((ak, sk, opt("session_token")?)),
                    _ => None,
                };
                Some(Iam {
                    keys,
                    region: string(&conf, &["authorization", "iam", "aws_region"])?,
                    service: string(&conf, &["authorization", "iam", "service"])?,
                    assume_role_arn: opt("assume_role_arn")?,
                    external_id: opt("external_id")?,
                    role_session_name: opt("role_session_name")?,
                    sts_endpoint: opt("sts_endpoint")?,
                })
            }
            None => None,
        };

        let unsigned_headers = match conf.get("unsigned_headers") {
            // An empty Lua table may arrive as `{}`.
            None | Some(Value::Object(_)) => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_ascii_lowercase))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| unexpected(&["unsigned_headers"]))?,
            Some(_) => return Err(unexpected(&["unsigned_headers"])),
        };

        let proxy = match conf.get("proxy_url") {
            Some(_) => Some(
                proxy::parse(&string(&conf, &["proxy_url"])?)
                    .map_err(|why| format!("property \"proxy_url\" validation failed: {why}"))?,
            ),
            None => None,
        };

        Ok(PluginConfig {
            function_uri,
            endpoint,
            invoke,
            apikey,
            iam,
            timeout: Duration::from_millis(integer(&conf, "timeout")?),
            stream_idle_timeout: Duration::from_millis(integer(&conf, "stream_idle_timeout")?),
            ssl_verify: boolean(&conf, "ssl_verify")?,
            keepalive: boolean(&conf, "keepalive")?,
            keepalive_timeout: Duration::from_millis(integer(&conf, "keepalive_timeout")?),
            keepalive_pool: usize::try_from(integer(&conf, "keepalive_pool")?)
                .unwrap_or(usize::MAX),
            http2: boolean(&conf, "http2")?,
            max_req_body_size: integer(&conf, "max_req_body_size")?,
            max_resp_body_size: integer(&conf, "max_resp_body_size")?,
            unsigned_headers,
            proxy,
        })
    }
}

/// The Invoke API settings of a checked configuration that has `function_name`.
fn invoke_config(conf: &Value) -> Result<InvokeConfig, String> {
    let opt = |key: &str| match conf.get(key) {
        Some(_) => string(conf, &[key]).map(Some),
        None => Ok(None),
    };
    let function = function::parse(&string(conf, &["function_name"])?)
        .map_err(|why| format!("property \"function_name\" validation failed: {why}"))?;
    // check() has refused a qualifier or region that contradicts the name.
    let qualifier = opt("qualifier")?.or_else(|| function.qualifier.clone());
    let region = match (function.region.clone(), opt("aws_region")?) {
        (Some(region), _) | (None, Some(region)) => region,
        (None, None) => match conf.pointer("/authorization/iam/aws_region") {
            Some(_) => string(conf, &["authorization", "iam", "aws_region"])?,
            None => "us-east-1".to_owned(),
        },
    };
    let invocation_type = match opt("invocation_type")? {
        Some(t) => InvocationType::parse(&t).ok_or_else(|| unexpected(&["invocation_type"]))?,
        None => InvocationType::RequestResponse,
    };
    let payload_format = match opt("payload_format")? {
        Some(f) => PayloadFormat::parse(&f).ok_or_else(|| unexpected(&["payload_format"]))?,
        None => PayloadFormat::ApigwV2,
    };
    let function_error_status = match conf.get("function_error_status") {
        Some(_) => u16::try_from(integer(conf, "function_error_status")?)
            .map_err(|_| unexpected(&["function_error_status"]))?,
        None => 502,
    };
    Ok(InvokeConfig {
        function,
        qualifier,
        region,
        invocation_type,
        payload_format,
        function_error_status,
        log_tail: opt("log_type")?.as_deref() == Some("Tail"),
        invoke_mode: match opt("invoke_mode")? {
            Some(m) => InvokeMode::parse(&m).ok_or_else(|| unexpected(&["invoke_mode"]))?,
            None => InvokeMode::Buffered,
        },
    })
}

// The accessors below fail only if `check` let through something the schema forbids;
// they exist so that such a bug is an error, never a panic.

fn unexpected(path: &[&str]) -> String {
    format!("property \"{}\" has an unexpected value", path.join("."))
}

fn lookup<'a>(conf: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(conf, |v, key| v.get(*key))
}

fn string(conf: &Value, path: &[&str]) -> Result<String, String> {
    lookup(conf, path)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unexpected(path))
}

fn boolean(conf: &Value, key: &str) -> Result<bool, String> {
    conf.get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| unexpected(&[key]))
}

/// A non-negative integer, which Lua may have sent as an integral double.
fn integer(conf: &Value, key: &str) -> Result<u64, String> {
    let n = conf.get(key).ok_or_else(|| unexpected(&[key]))?;
    if let Some(n) = n.as_u64() {
        return Ok(n);
    }
    match n.as_f64() {
        // `as` saturates at u64::MAX.
        Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(x as u64),
        _ => Err(unexpected(&[key])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iam_with_defaults() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://abc.lambda-url.us-west-2.on.aws/",
            "authorization": {"iam": {"accesskey": "AKID", "secretkey": "SECRET"}},
        }))
        .unwrap();
        assert_eq!(cfg.function_uri, "https://abc.lambda-url.us-west-2.on.aws/");
        assert_eq!(cfg.endpoint.host, "abc.lambda-url.us-west-2.on.aws");
        assert_eq!(cfg.endpoint.port, 443);
        assert!(cfg.endpoint.tls);
        assert_eq!(cfg.apikey, None);
        assert_eq!(
            cfg.iam,
            Some(Iam {
                keys: Some(("AKID".into(), "SECRET".into(), None)),
                region: "us-east-1".into(),
                service: "execute-api".into(),
                assume_role_arn: None,
                external_id: None,
                role_session_name: None,
                sts_endpoint: None,
            })
        );
        assert_eq!(cfg.timeout, Duration::from_millis(3000));
        assert!(cfg.ssl_verify);
        assert!(cfg.keepalive);
        assert_eq!(cfg.keepalive_timeout, Duration::from_millis(60000));
        assert_eq!(cfg.keepalive_pool, 5);
        assert!(cfg.http2);
        assert_eq!(cfg.max_req_body_size, 67108864);
        assert_eq!(cfg.max_resp_body_size, 20971520);
        assert!(cfg.unsigned_headers.is_empty());
    }

    #[test]
    fn iam_without_keys_uses_the_chain_and_may_assume_a_role() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://x.execute-api.eu-west-1.amazonaws.com/p",
            "authorization": {"iam": {"aws_region": "eu-west-1",
                                      "assume_role_arn": "arn:aws:iam::123456789012:role/r",
                                      "external_id": "ext", "role_session_name": "s"}},
        }))
        .unwrap();
        let iam = cfg.iam.expect("iam");
        assert_eq!(iam.keys, None);
        assert_eq!(iam.region, "eu-west-1");
        assert_eq!(
            iam.assume_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/r")
        );
        assert_eq!(iam.external_id.as_deref(), Some("ext"));
        assert_eq!(iam.role_session_name.as_deref(), Some("s"));
    }

    #[test]
    fn session_token_goes_with_the_keys_and_is_redacted() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://x",
            "authorization": {"iam": {"accesskey": "ASIA", "secretkey": "SECRETKEY",
                                      "session_token": "TOKENVALUE"}},
        }))
        .unwrap();
        let iam = cfg.iam.expect("iam");
        assert_eq!(
            iam.keys.as_ref().and_then(|k| k.2.as_deref()),
            Some("TOKENVALUE")
        );
        let shown = format!("{iam:?}");
        assert!(!shown.contains("SECRETKEY") && !shown.contains("TOKENVALUE"));
    }

    #[test]
    fn explicit_values_and_lua_doubles() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "http://localhost:8765/generic",
            "authorization": {"apikey": "test_key"},
            "timeout": 1500.0,
            "ssl_verify": false,
            "keepalive": false,
            "keepalive_timeout": 1000.0,
            "keepalive_pool": 64.0,
            "http2": false,
            "max_req_body_size": 1024,
            "max_resp_body_size": 2048.0,
            "unsigned_headers": ["X-Debug-*", "X-Trace"],
            "_meta": {"disable": false},
        }))
        .unwrap();
        assert_eq!(cfg.apikey.as_deref(), Some("test_key"));
        assert_eq!(cfg.iam, None);
        assert_eq!(cfg.endpoint.authority, "localhost:8765");
        assert_eq!(cfg.endpoint.base_path, "/generic");
        assert_eq!(cfg.timeout, Duration::from_millis(1500));
        assert!(!cfg.ssl_verify && !cfg.keepalive);
        assert_eq!(cfg.keepalive_timeout, Duration::from_secs(1));
        assert_eq!(cfg.keepalive_pool, 64);
        assert!(!cfg.http2);
        assert_eq!(cfg.max_req_body_size, 1024);
        assert_eq!(cfg.max_resp_body_size, 2048);
        assert_eq!(cfg.unsigned_headers, ["x-debug-*", "x-trace"]);
    }

    #[test]
    fn huge_integers_saturate() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://h/", "timeout": 1e300, "max_req_body_size": 1e30,
        }))
        .unwrap();
        assert_eq!(cfg.timeout, Duration::from_millis(u64::MAX));
        assert_eq!(cfg.max_req_body_size, u64::MAX);
    }

    #[test]
    fn empty_lua_tables() {
        // mlua may hand an empty Lua table over as `{}` or `[]`.
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://h/", "authorization": [], "unsigned_headers": {},
        }))
        .unwrap();
        assert_eq!((cfg.apikey, cfg.iam), (None, None));
        assert!(cfg.unsigned_headers.is_empty());
    }

    #[test]
    fn function_name_region_endpoint_and_defaults() {
        let from = |v: Value| PluginConfig::from_value(&v).unwrap();
        let cfg = from(json!({"function_name": "f"}));
        let invoke = cfg.invoke.expect("invoke");
        assert_eq!(invoke.region, "us-east-1");
        assert_eq!(cfg.function_uri, "https://lambda.us-east-1.amazonaws.com");
        assert_eq!(cfg.endpoint.host, "lambda.us-east-1.amazonaws.com");
        assert_eq!(invoke.invocation_type, InvocationType::RequestResponse);
        assert_eq!(invoke.payload_format, PayloadFormat::ApigwV2);
        assert_eq!(
            (invoke.function_error_status, invoke.log_tail),
            (502, false)
        );

        // The region: the ARN's, else aws_region, else iam.aws_region.
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:f:live";
        let cfg = from(json!({"function_name": arn, "authorization": {"iam": {}}}));
        assert_eq!(cfg.invoke.as_ref().unwrap().region, "eu-west-1");
        assert_eq!(cfg.invoke.unwrap().qualifier.as_deref(), Some("live"));
        let cfg = from(json!({"function_name": "f", "aws_region": "ap-south-1",
                              "authorization": {"iam": {"aws_region": "eu-north-1"}}}));
        assert_eq!(cfg.invoke.unwrap().region, "ap-south-1");
        let cfg = from(json!({"function_name": "f",
                              "authorization": {"iam": {"aws_region": "eu-north-1"}}}));
        assert_eq!(cfg.invoke.unwrap().region, "eu-north-1");

        let cfg = from(
            json!({"function_name": "f", "invoke_endpoint": "http://127.0.0.1:9001/x",
                              "payload_format": "raw", "invocation_type": "DryRun",
                              "function_error_status": 500.0, "log_type": "Tail"}),
        );
        assert_eq!(cfg.endpoint.authority, "127.0.0.1:9001");
        let invoke = cfg.invoke.unwrap();
        assert_eq!(invoke.payload_format, PayloadFormat::Raw);
        assert_eq!(invoke.invocation_type, InvocationType::DryRun);
        assert_eq!((invoke.function_error_status, invoke.log_tail), (500, true));
        // function_uri routes are untouched.
        assert_eq!(from(json!({"function_uri": "https://h/"})).invoke, None);
    }

    #[test]
    fn invalid_is_refused_with_the_check_message() {
        assert_eq!(
            PluginConfig::from_value(&json!({"timeout": 3000})).unwrap_err(),
            "property \"function_uri\" is required"
        );
        assert_eq!(
            PluginConfig::from_value(&json!("x")).unwrap_err(),
            "wrong type: expected object, got string"
        );
    }

    #[test]
    fn unresolved_secret_reference_in_function_uri_is_refused() {
        // check_schema accepts the reference; a literal one reaching access is unusable.
        assert_eq!(
            PluginConfig::from_value(&json!({"function_uri": "$env://LAMBDA_URL"})).unwrap_err(),
            "property \"function_uri\" validation failed: must be an absolute http or https URL"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let cfg = PluginConfig::from_value(&json!({
            "function_uri": "https://h/",
            "authorization": {
                "apikey": "APIKEY-VALUE",
                "iam": {"accesskey": "AKID", "secretkey": "SECRET-VALUE"},
            },
        }))
        .unwrap();
        let shown = format!("{cfg:?} {:#?}", cfg.iam);
        assert!(!shown.contains("APIKEY-VALUE"), "{shown}");
        assert!(!shown.contains("SECRET-VALUE"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("AKID"));
    }
}
