//! What a call is made of: the route (a plugin configuration, built once) and the
//! client's request. Both the function-URL path (`invoke`) and the Invoke API path
//! (`lambda`) build on this module; it depends on neither.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, HOST};
use http::Method;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::bridge::tickets::Outcome;
use crate::client::{ClientError, Endpoint, Options};
use crate::config::{InvokeConfig, InvokeMode, PluginConfig};
use crate::creds::{self, Source};
use crate::sign::{self, Credentials, SigningConfig};
use crate::wire;

/// Why a request to the function could not be built: a status and a message.
pub(crate) type BuildError = (u16, String);

pub(crate) fn bad_request(message: impl Into<String>) -> BuildError {
    (400, message.into())
}

/// A configured route, built once per plugin configuration and shared by its requests.
pub struct Route {
    pub(crate) cfg: PluginConfig,
    pub(crate) endpoint: Endpoint,
    pub(crate) opts: Options,
    pub(crate) signing: Option<(SigningConfig, Source)>,
    /// With `function_name`: the Invoke API's path and query, fixed per route.
    pub(crate) invoke_target: Option<String>,
    /// The Host and `x-api-key` values every request of the route sends, made once: a
    /// clone shares their bytes (None: not a valid header value, refused per request).
    pub(crate) host_value: Option<HeaderValue>,
    pub(crate) apikey_value: Option<HeaderValue>,
}

impl Route {
    pub fn new(cfg: PluginConfig) -> Arc<Self> {
        let endpoint = Endpoint {
            tls: cfg.endpoint.tls,
            host: cfg.endpoint.host.clone(),
            port: cfg.endpoint.port,
            ssl_verify: cfg.ssl_verify,
            proxy: cfg.proxy.clone(),
            // HTTP/2 is negotiated by ALPN, and only shares connections that are kept.
            http2: cfg.http2 && cfg.endpoint.tls && cfg.keepalive,
        };
        let opts = Options {
            keepalive: cfg.keepalive,
            keepalive_timeout: cfg.keepalive_timeout,
            pool_size: cfg.keepalive_pool,
            max_body: cfg.max_resp_body_size,
        };
        let signing = cfg.iam.as_ref().map(|iam| {
            // The Invoke API is service `lambda` in the function's region.
            let (region, service) = match &cfg.invoke {
                Some(invoke) => (invoke.region.clone(), "lambda".to_owned()),
                None => (iam.region.clone(), iam.service.clone()),
            };
            // SigV4's canonical URI: every service but S3 normalizes the path and
            // encodes each segment twice.
            let not_s3 = service != "s3";
            (
                SigningConfig {
                    region,
                    service,
                    normalize_path: not_s3,
                    sign_body: false,
                    double_encode_path: not_s3,
                },
                credential_source(iam, cfg.proxy.as_ref()),
            )
        });
        let invoke_target = cfg
            .invoke
            .as_ref()
            .map(|invoke| invoke_target(&cfg.endpoint.base_path, invoke));
        let host_value = HeaderValue::from_str(&cfg.endpoint.authority).ok();
        let apikey_value = cfg.apikey.as_deref().and_then(|key| {
            let mut value = HeaderValue::from_str(key).ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        Arc::new(Self {
            cfg,
            endpoint,
            opts,
            signing,
            invoke_target,
            host_value,
            apikey_value,
        })
    }

    /// A failed exchange: 503 when the function could not be reached, else 502.
    pub(crate) fn transport_error(&self, err: &ClientError) -> Outcome {
        let status = match err {
            ClientError::Unreachable(_) => 503,
            ClientError::BadResponse(_) | ClientError::TooLarge(_) | ClientError::Proxy(_) => 502,
        };
        let message = match err {
            ClientError::TooLarge(_) => format!("function at {}: {err}", self.endpoint),
            _ => err.to_string(),
        };
        Outcome::error(status, message)
    }

    /// Signs the request in `out` (every header but Host and the unsigned ones) and adds
    /// the signature's headers, marked sensitive.
    pub(crate) fn add_signature(
        &self,
        signing_cfg: &SigningConfig,
        creds: &Credentials,
        method: &Method,
        target: &sign::Target<'_>,
        out: &mut http::HeaderMap,
        body: &[u8],
    ) -> Result<(), BuildError> {
        let cfg = &self.cfg;
        let mut to_sign: Vec<(&str, &str)> = Vec::with_capacity(out.len());
        for (name, value) in out.iter() {
            if name == HOST || wire::is_unsigned(name.as_str(), &cfg.unsigned_headers) {
                continue;
            }
            let value = value.to_str().map_err(|_| {
                bad_request(format!(
                    "request header {name} is not valid UTF-8 and cannot be signed"
                ))
            })?;
            to_sign.push((name.as_str(), value));
        }
        let signature = sign::sign_target(
            signing_cfg,
            creds,
            method.as_str(),
            target,
            &to_sign,
            body,
            SystemTime::now(),
        )
        .map_err(|e| {
            let status = if e.is_bad_query() { 400 } else { 500 };
            (status, format!("signing the request failed: {e}"))
        })?;
        for (name, value) in signature.headers {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| (500, "signing produced an invalid header".to_string()))?;
            value.set_sensitive(true);
            out.insert(HeaderName::from_static(name), value);
        }
        Ok(())
    }
}

/// Static keys are used as they are; anything that expires (the AWS chain, an assumed
/// role) goes through the worker's credential providers.
fn credential_source(iam: &crate::config::Iam, proxy: Option<&crate::config::Proxy>) -> Source {
    match (&iam.keys, &iam.assume_role_arn) {
        (Some((ak, sk, token)), None) => {
            Source::Static(Credentials::new(ak.clone(), sk.clone(), token.clone()))
        }
        (keys, role) => Source::Dynamic(creds::Shared::new(creds::Dynamic {
            base: keys.as_ref().map(|(ak, sk, token)| creds::StaticKeys {
                access_key: ak.clone(),
                secret_key: sk.clone(),
                session_token: token.clone(),
            }),
            assume_role: role.as_ref().map(|arn| creds::AssumeRole {
                role_arn: arn.clone(),
                external_id: iam.external_id.clone(),
                session_name: iam.role_session_name.clone(),
                sts_endpoint: iam.sts_endpoint.clone(),
            }),
            region: iam.region.clone(),
            proxy: proxy.cloned(),
        })),
    }
}

/// The client's request, copied out of nginx.
pub struct Incoming {
    pub method: Vec<u8>,
    /// The route's wildcard suffix, decoded (APISIX's `ctx.curr_req_matched[":ext"]`).
    pub ext: Option<Vec<u8>>,
    /// The raw query string (`$args`).
    pub query: Vec<u8>,
    /// Request headers as `name:value\n` lines.
    pub headers: Vec<u8>,
    pub body: Body,
    /// For an event (`function_name`): what else nginx knows of the request, in the
    /// form `lambda::event::Context::parse` reads.
    pub context: Option<Vec<u8>>,
}

pub enum Body {
    Memory(Bytes),
    /// nginx buffered the body to a file (larger than client_body_buffer_size).
    File(PathBuf),
}

/// RFC 3986 unreserved characters stay; everything else (`:` of an ARN, `$` of
/// `$LATEST`) is percent-encoded, as the AWS SDKs encode a URI label.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The Invoke API's path and query for `invoke`, below the endpoint's `base_path`.
pub(crate) fn invoke_target(base_path: &str, invoke: &InvokeConfig) -> String {
    let mut target = base_path.trim_end_matches('/').to_owned();
    let (version, operation) = match invoke.invoke_mode {
        InvokeMode::Buffered => ("/2015-03-31/functions/", "/invocations"),
        // InvokeWithResponseStream.
        InvokeMode::ResponseStream => ("/2021-11-15/functions/", "/response-streaming-invocations"),
    };
    target.push_str(version);
    // A qualifier written in the name stays there; the Qualifier parameter is then the
    // same value (check() refused a different one).
    target.extend(utf8_percent_encode(&invoke.function.name, LABEL));
    target.push_str(operation);
    if let (Some(q), None) = (&invoke.qualifier, &invoke.function.qualifier) {
        target.push_str("?Qualifier=");
        target.extend(utf8_percent_encode(q, LABEL));
    }
    target
}
