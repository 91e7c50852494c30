//! Direct invocation through the Lambda Invoke API (`function_name`).
//!
//! The client's request becomes an event (`event`), is POSTed signed for service
//! `lambda` to `/2015-03-31/functions/{name}/invocations` (or, with `invoke_mode`
//! `response_stream`, to InvokeWithResponseStream, whose event stream `stream` decodes),
//! and the function's payload becomes the response (`response`). Invocation type, log
//! tail and qualifier are the Invoke API's own headers and query.

pub mod event;
pub mod response;
pub mod stream;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::Full;

use crate::bridge::tickets::Outcome;
use crate::client::Pool;
use crate::config::{InvocationType, InvokeConfig, InvokeMode, PayloadFormat};
use crate::route::{BuildError, Incoming, Route};
use crate::sign::Credentials;
use crate::stats::{self, Failure};
use crate::stream::{End, Source};

/// Lambda's payload limits: 6 MB for a synchronous invocation, 1 MB for an
/// asynchronous one (`Event`).
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// One invocation: the route, the client's request and the credentials to sign with.
pub(crate) struct Call<'a> {
    pub route: &'a Route,
    pub invoke: &'a InvokeConfig,
    pub target: &'a str,
    pub incoming: &'a Incoming,
    /// The client's headers for the event (hop-by-hop ones removed).
    pub headers: &'a [(&'a str, &'a [u8])],
    pub creds: Option<&'a Credentials>,
}

/// What an invocation came to: an outcome as it is, or the function's proxy answer,
/// whose headers the caller turns into the client's, as for any function response:
/// whole, or (`response_stream`) a head whose body is still to come from `source`.
pub(crate) enum Reply<'a> {
    Done(Outcome),
    Answer {
        answer: response::Answer,
        /// Headers to add after the answer's own (`X-Amz-Executed-Version`).
        extra_head: Vec<u8>,
        log: Option<String>,
    },
    /// Longer than what was ready at the head: `first`, then the rest from `source`.
    Stream {
        status: u16,
        headers: http::HeaderMap,
        extra_head: Vec<u8>,
        first: Bytes,
        source: Box<dyn Source + 'a>,
    },
}

impl From<Outcome> for Reply<'_> {
    fn from(outcome: Outcome) -> Self {
        Reply::Done(outcome)
    }
}

pub(crate) async fn exchange<'a>(pool: &'a Pool, call: Call<'_>, body: Bytes) -> Reply<'a> {
    let req = match invocation(&call, body) {
        Ok(req) => req,
        Err(outcome) => return outcome.into(),
    };
    match call.invoke.invoke_mode {
        InvokeMode::Buffered => buffered(pool, &call, req).await,
        // Boxed: its state (decoder, head, reader) would otherwise sit in every call's
        // task, streamed or not.
        InvokeMode::ResponseStream => Box::pin(streamed(pool, &call, req)).await,
    }
}

/// The signed request, or why there is none (413: over Lambda's payload limit).
fn invocation(call: &Call<'_>, body: Bytes) -> Result<Request<Full<Bytes>>, Outcome> {
    let invoke = call.invoke;
    let payload = match payload(call, body) {
        Ok(payload) => payload,
        Err((status, message)) => return Err(Outcome::error(status, message)),
    };
    let limit = match invoke.invocation_type {
        InvocationType::Event => ASYNC_PAYLOAD_LIMIT,
        _ => SYNC_PAYLOAD_LIMIT,
    };
    if payload.len() > limit {
        return Err(Outcome::error(
            413,
            format!(
                "the invocation payload of {} bytes exceeds Lambda's {} limit of {limit} bytes",
                payload.len(),
                match invoke.invocation_type {
                    InvocationType::Event => "asynchronous",
                    _ => "synchronous",
                }
            ),
        ));
    }
    request(call, payload).map_err(|(status, message)| Outcome::error(status, message))
}

/// Invoke: the whole payload in one answer.
async fn buffered<'a>(pool: &Pool, call: &Call<'_>, req: Request<Full<Bytes>>) -> Reply<'a> {
    let invoke = call.invoke;
    let route = call.route;
    let res = match pool.send(&route.endpoint, &route.opts, req).await {
        Ok(res) => res,
        Err(err) => return route.transport_error(&err).into(),
    };
    let log = if invoke.log_tail {
        response::log_tail(&res.headers).map(|tail| format!("function log tail: {tail}"))
    } else {
        None
    };
    match (res.status, invoke.invocation_type) {
        (200, InvocationType::RequestResponse) => {}
        (status @ 202, InvocationType::Event) | (status @ 204, InvocationType::DryRun) => {
            return bodiless(status, &res.headers, log).into()
        }
        (status, _) => return api_failure(call, status, &res.headers, &res.body, log).into(),
    }
    if let Some(kind) = res.headers.get("x-amz-function-error") {
        stats::WORKER.failed(Failure::FunctionError);
        return Reply::Done(Outcome::Error {
            status: invoke.function_error_status,
            head: response::executed_version(&res.headers, None),
            message: response::function_error(&String::from_utf8_lossy(kind.as_bytes()), &res.body),
            log,
        });
    }
    match response::from_payload(invoke.payload_format, res.body) {
        Ok(answer) => Reply::Answer {
            extra_head: response::executed_version(&res.headers, Some(&answer.headers)),
            answer,
            log,
        },
        Err(message) => Reply::Done(Outcome::Error {
            status: 502,
            head: Vec::new(),
            message,
            log,
        }),
    }
}

/// InvokeWithResponseStream: the answer's head once the payload has given it (the
/// prelude read, or the first bytes of a plain payload), within `timeout`; then the
/// rest through `crate::stream`, unless it all came at once.
async fn streamed<'a>(pool: &'a Pool, call: &Call<'_>, req: Request<Full<Bytes>>) -> Reply<'a> {
    let (invoke, route) = (call.invoke, call.route);
    let (res, reader) = match pool.send_streaming(&route.endpoint, &route.opts, req).await {
        Ok(answer) => answer,
        Err(err) => return route.transport_error(&err).into(),
    };
    match (res.status, invoke.invocation_type) {
        (200, InvocationType::RequestResponse) => {}
        (204, InvocationType::DryRun) => return bodiless(204, &res.headers, None).into(),
        (status, _) => {
            let body = match reader {
                Some(reader) => read_capped(reader, ERROR_BODY_MAX).await,
                None => res.body.to_vec(),
            };
            return api_failure(call, status, &res.headers, &body, None).into();
        }
    }
    let mut decoder = stream::Decoder::new(
        invoke.payload_format,
        res.headers.get(CONTENT_TYPE),
        invoke.function_error_status,
    );
    decoder.push(&res.body);
    let mut payload = stream::Payload::new(reader, decoder);
    let (status, headers) = match payload.head().await {
        stream::Part::Head { status, headers } => (status, headers),
        failed => return Reply::Done(stream_failure(failed, &res.headers)),
    };
    let extra_head = response::executed_version(&res.headers, Some(&headers));
    // What is there already: a small answer is handed over whole, with its log tail
    // (InvokeComplete comes last), as `stream::answer` would hand it over.
    let (window, end) = crate::stream::first_window(&mut payload, true).await;
    if let Some(End::Done | End::Logged(_)) = end {
        // The HTTP body's end follows InvokeComplete at once: read, the connection goes
        // back to the pool. Bounded, as the answer waits for it.
        let finish = std::future::poll_fn(|cx| payload.poll_finish(cx));
        let _ = tokio::time::timeout(WHOLE_FINISH_WAIT, finish).await;
    }
    match (end, payload.ended.take()) {
        (Some(End::Done | End::Logged(_)), ended) => Reply::Answer {
            answer: response::Answer {
                status,
                headers,
                body: window.freeze(),
            },
            extra_head,
            log: match ended {
                Some(stream::Part::End { log }) => log,
                _ => None,
            },
        },
        (Some(End::Failed(cause)), ended) => Reply::Done(stream_failure(
            ended.unwrap_or(stream::Part::Error {
                status: 502,
                message: cause,
                log: None,
                function_failed: false,
            }),
            &res.headers,
        )),
        (None, _) => Reply::Stream {
            status,
            headers,
            extra_head,
            first: window.freeze(),
            source: Box::new(payload),
        },
    }
}

/// The Invoke API's answer to an `Event` (202) or `DryRun` (204) invocation: no body.
fn bodiless(status: u16, lambda: &http::HeaderMap, log: Option<String>) -> Outcome {
    Outcome::Response {
        status,
        head: response::executed_version(lambda, None),
        body: Bytes::new(),
        log,
    }
}

/// The Invoke API refused or failed the call itself (not the function): mapped to the
/// client's status, with the API's message stripped of the call's secrets.
fn api_failure(
    call: &Call<'_>,
    status: u16,
    lambda: &http::HeaderMap,
    body: &[u8],
    log: Option<String>,
) -> Outcome {
    let secrets = call.creds.map(Credentials::secrets).unwrap_or_default();
    let (status, message) = response::api_error(status, lambda, body, &secrets);
    Outcome::Error {
        status,
        head: response::retry_after(status, lambda),
        message,
        log,
    }
}

/// How long a small streamed answer, complete with its head, waits for the end of its
/// HTTP body (see `stream::Payload::poll_finish`) before the connection is given up.
const WHOLE_FINISH_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// The most of an error answer's body read (Lambda's JSON errors are small).
const ERROR_BODY_MAX: usize = 64 * 1024;

async fn read_capped<S: Source>(mut body: S, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match std::future::poll_fn(|cx| body.poll_chunk(cx)).await {
            Some(Ok(bytes)) => out.extend_from_slice(&bytes),
            _ => break,
        }
    }
    out.truncate(max);
    out
}

/// A streamed answer that failed before anything reached the client: answered with
/// the failure's status (`function_error_status` for a function error).
fn stream_failure(part: stream::Part, lambda: &http::HeaderMap) -> Outcome {
    match part {
        stream::Part::Error {
            status,
            message,
            log,
            function_failed,
        } => {
            if function_failed {
                stats::WORKER.failed(Failure::FunctionError);
            }
            Outcome::Error {
                status,
                head: response::executed_version(lambda, None),
                message,
                log,
            }
        }
        // The decoder hands out a head before any data or end.
        _ => Outcome::error(502, "the response stream ended without a head"),
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
    let authority = route
        .host_value
        .clone()
        .ok_or_else(|| (500, "invalid Lambda endpoint host".to_owned()))?;
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
        route.add_signature(signing_cfg, creds, &Method::POST, &target, out, &payload)?;
    }
    builder
        .body(Full::new(payload))
        .map_err(|_| (500, "invalid function_name".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::invoke_target;

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
            invoke_mode: InvokeMode::Buffered,
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
        let streaming = InvokeConfig {
            invoke_mode: InvokeMode::ResponseStream,
            ..invoke("f", Some("live"))
        };
        assert_eq!(
            invoke_target("/", &streaming),
            "/2021-11-15/functions/f/response-streaming-invocations?Qualifier=live"
        );
        // Signed as they are: the query must be SigV4's canonical form.
        for q in ["$LATEST", "live", "1", "a b+c~d.e_f-g/h:i"] {
            let target = invoke_target("/", &invoke("f", Some(q)));
            let (_, query) = target.split_once('?').expect("a query");
            assert_eq!(crate::wire::canonical_query(query.as_bytes()), query);
        }
    }
}
