//! Direct invocation through the Lambda Invoke API (`function_name`).
//!
//! The client's request becomes an event (`event`), is POSTed signed for service
//! `lambda` to `/2015-03-31/functions/{name}/invocations`, and the function's payload
//! becomes the response (`response`). Invocation type, log tail and qualifier are the
//! Invoke API's own headers and query.

pub mod event;
pub mod response;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::bridge::tickets::Outcome;
use crate::client::Pool;
use crate::config::{InvocationType, InvokeConfig, PayloadFormat};
use crate::invoke::{self, BuildError, Incoming, Route};
use crate::sign::Credentials;
use crate::stats::{self, Failure};

/// Lambda's payload limits: 6 MB for a synchronous invocation, 1 MB for an
/// asynchronous one (`Event`).
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// RFC 3986 unreserved characters stay; everything else (`:` of an ARN, `$` of
/// `$LATEST`) is percent-encoded, as the AWS SDKs encode a URI label.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The Invoke API's path and query for `invoke`, below the endpoint's `base_path`.
pub fn invoke_target(base_path: &str, invoke: &InvokeConfig) -> String {
    let mut target = base_path.trim_end_matches('/').to_owned();
    target.push_str("/2015-03-31/functions/");
    // A qualifier written in the name stays there; the Qualifier parameter is then the
    // same value (check() refused a different one).
    target.extend(utf8_percent_encode(&invoke.function.name, LABEL));
    target.push_str("/invocations");
    if let (Some(q), None) = (&invoke.qualifier, &invoke.function.qualifier) {
        target.push_str("?Qualifier=");
        target.extend(utf8_percent_encode(q, LABEL));
    }
    target
}

/// One invocation: the route, the client's request and the credentials to sign with.
pub(crate) struct Call<'a> {
    pub route: &'a Route,
    pub invoke: &'a InvokeConfig,
    pub target: &'a str,
    pub incoming: &'a Incoming,
    /// The client's headers for the event (hop-by-hop ones removed).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub creds: Option<&'a Credentials>,
    pub head_only: bool,
}

pub(crate) async fn exchange(pool: &Pool, call: Call<'_>, body: Bytes) -> Outcome {
    let invoke = call.invoke;
    let payload = match payload(&call, body) {
        Ok(payload) => payload,
        Err((status, message)) => return Outcome::error(status, message),
    };
    let limit = match invoke.invocation_type {
        InvocationType::Event => ASYNC_PAYLOAD_LIMIT,
        _ => SYNC_PAYLOAD_LIMIT,
    };
    if payload.len() > limit {
        return Outcome::error(
            413,
            format!(
                "the invocation payload of {} bytes exceeds Lambda's {} limit of {limit} bytes",
                payload.len(),
                match invoke.invocation_type {
                    InvocationType::Event => "asynchronous",
                    _ => "synchronous",
                }
            ),
        );
    }
    let req = match request(&call, payload) {
        Ok(req) => req,
        Err((status, message)) => return Outcome::error(status, message),
    };
    let route = call.route;
    let res = match pool.send(&route.endpoint, &route.opts, req).await {
        Ok(res) => res,
        Err(err) => return invoke::transport_error(route, &err),
    };
    let log = if invoke.log_tail {
        response::log_tail(&res.headers).map(|tail| format!("function log tail: {tail}"))
    } else {
        None
    };
    let answer = |status: u16| Outcome::Response {
        status,
        head: response::executed_version(&res.headers, None),
        body: Bytes::new(),
        log: log.clone(),
    };
    match (res.status, invoke.invocation_type) {
        (200, InvocationType::RequestResponse) => {}
        (202, InvocationType::Event) => return answer(202),
        (204, InvocationType::DryRun) => return answer(204),
        (status, _) => {
            let secrets = call.creds.map(Credentials::secrets).unwrap_or_default();
            let (status, message) = response::api_error(status, &res.headers, &res.body, &secrets);
            return Outcome::Error {
                status,
                head: response::retry_after(status, &res.headers),
                message,
                log,
            };
        }
    }
    if let Some(kind) = res.headers.get("x-amz-function-error") {
        stats::WORKER.failed(Failure::FunctionError);
        return Outcome::Error {
            status: invoke.function_error_status,
            head: response::executed_version(&res.headers, None),
            message: response::function_error(&String::from_utf8_lossy(kind.as_bytes()), &res.body),
            log,
        };
    }
    match response::from_payload(invoke.payload_format, res.body) {
        Ok(answer) => Outcome::Response {
            status: answer.status,
            head: {
                let mut head = invoke::response_head(&answer.headers, call.head_only);
                head.extend(response::executed_version(
                    &res.headers,
                    Some(&answer.headers),
                ));
                head
            },
            body: if call.head_only {
                Bytes::new()
            } else {
                answer.body
            },
            log,
        },
        Err(message) => Outcome::Error {
            status: 502,
            head: Vec::new(),
            message,
            log,
        },
    }
}

/// The invocation payload: the event, or the body itself for `raw`.
fn payload(call: &Call<'_>, body: Bytes) -> Result<Bytes, BuildError> {
    let format = call.invoke.payload_format;
    if format == PayloadFormat::Raw {
        return Ok(body);
    }
    let raw = call.incoming.context.as_deref().unwrap_or_default();
    let ctx = event::Context::parse(raw).map_err(|e| (400, e))?;
    let method = std::str::from_utf8(&call.incoming.method)
        .map_err(|_| (400, "invalid request method".to_owned()))?;
    event::build(
        format,
        method,
        call.headers,
        &call.incoming.query,
        &body,
        &ctx,
    )
    .map(Bytes::from)
    .map_err(|e| (400, e))
}

/// The signed POST to the Invoke API.
fn request(call: &Call<'_>, payload: Bytes) -> Result<Request<Full<Bytes>>, BuildError> {
    let route = call.route;
    let invoke = call.invoke;
    let mut builder = Request::builder().method(Method::POST).uri(call.target);
    let out = builder
        .headers_mut()
        .ok_or_else(|| (500, "invalid function_name".to_owned()))?;
    let authority = HeaderValue::from_str(&route.cfg.endpoint.authority)
        .map_err(|_| (500, "invalid Lambda endpoint host".to_owned()))?;
    out.insert(HOST, authority);
    out.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out.insert(CONTENT_LENGTH, HeaderValue::from(payload.len()));
    out.insert(
        HeaderName::from_static("x-amz-invocation-type"),
        HeaderValue::from_static(invoke.invocation_type.as_str()),
    );
    if invoke.log_tail {
        out.insert(
            HeaderName::from_static("x-amz-log-type"),
            HeaderValue::from_static("Tail"),
        );
    }
    if let (Some((signing_cfg, _)), Some(creds)) = (&route.signing, call.creds) {
        // The target's query (a Qualifier, encoded like a label) is canonical already.
        let (path, query) = call.target.split_once('?').unwrap_or((call.target, ""));
        let target = crate::sign::Target {
            tls: route.cfg.endpoint.tls,
            authority: &route.cfg.endpoint.authority,
            path,
            canonical_query: query,
        };
        invoke::add_signature(
            route,
            signing_cfg,
            creds,
            &Method::POST,
            &target,
            out,
            &payload,
        )?;
    }
    builder
        .body(Full::new(payload))
        .map_err(|_| (500, "invalid function_name".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke(name: &str, qualifier: Option<&str>) -> InvokeConfig {
        InvokeConfig {
            function: crate::config::FunctionRef {
                name: name.into(),
                region: None,
                qualifier: name.split_once(':').map(|(_, q)| q.to_owned()),
            },
            qualifier: qualifier.map(str::to_owned),
            region: "us-east-1".into(),
            invocation_type: InvocationType::RequestResponse,
            payload_format: PayloadFormat::ApigwV2,
            function_error_status: 502,
            log_tail: false,
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            invoke_target("/", &invoke("f", None)),
            "/2015-03-31/functions/f/invocations"
        );
        assert_eq!(
            invoke_target("/base/", &invoke("f", Some("$LATEST"))),
            "/base/2015-03-31/functions/f/invocations?Qualifier=%24LATEST"
        );
        assert_eq!(
            invoke_target("/", &invoke("my-fn:live", Some("live"))),
            "/2015-03-31/functions/my-fn%3Alive/invocations"
        );
        // Signed as they are: the query must be SigV4's canonical form.
        for q in ["$LATEST", "live", "1", "a b+c~d.e_f-g/h:i"] {
            let target = invoke_target("/", &invoke("f", Some(q)));
            let (_, query) = target.split_once('?').expect("a query");
            assert_eq!(crate::wire::canonical_query(query.as_bytes()), query);
        }
    }
}
