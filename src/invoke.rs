//! One call to the function: the client's request in, an [`Outcome`] out.
//!
//! This is APISIX's `access` logic (apikey or SigV4, path suffix, query, headers,
//! body) with the wire fixes of `wire`, run on the worker's runtime thread.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use http::{Method, Request};
use http_body_util::Full;

use crate::bridge::tickets::Outcome;
use crate::client::Pool;
use crate::creds::{self, Providers};
use crate::lambda;
use crate::route::{bad_request, BuildError};
pub use crate::route::{Body, Incoming, Route};
use crate::sign::{self, Credentials};
use crate::stats::{self, Failure};
use crate::stream::{self, Rest};
use crate::wire;

/// Makes the call. `timeout` bounds it up to the answer's head (and a buffered answer's
/// body): getting credentials (a 503 when they do not come in time: the function was
/// never called) and the exchange with the function (a 504). A streamed answer comes
/// with the [`Rest`] of its body to run; `stream_idle_timeout` bounds its silences.
pub async fn call<'a>(
    pool: &'a Pool,
    providers: &Arc<Providers>,
    route: &'a Route,
    incoming: Incoming,
) -> (Outcome, Option<Rest<'a>>) {
    match call_head(pool, providers, route, incoming).await {
        Head::Done(outcome) => (outcome, None),
        Head::Body {
            status,
            head,
            source,
        } => stream::answer(status, head, source, route.cfg.stream_idle_timeout).await,
        Head::Streamed {
            status,
            head,
            first,
            source,
        } => stream::stream_on(status, head, first, source, route.cfg.stream_idle_timeout),
    }
}

/// An exchange up to the answer's head: a whole outcome, or a head whose body is still
/// to come from a [`stream::Source`].
enum Head<'a> {
    Done(Outcome),
    /// The function URL's HTTP body: `stream::answer` decides whether it is streamed.
    Body {
        status: u16,
        /// Response headers as `name:value\n` lines, as `Outcome::Response` has them.
        head: Vec<u8>,
        source: Box<dyn stream::Source + 'a>,
    },
    /// An Invoke API stream that `lambda::exchange` found longer than what was ready
    /// (`first`): streamed.
    Streamed {
        status: u16,
        head: Vec<u8>,
        first: Bytes,
        source: Box<dyn stream::Source + 'a>,
    },
}

impl From<Outcome> for Head<'_> {
    fn from(outcome: Outcome) -> Self {
        Head::Done(outcome)
    }
}

async fn call_head<'a>(
    pool: &'a Pool,
    providers: &Arc<Providers>,
    route: &'a Route,
    incoming: Incoming,
) -> Head<'a> {
    let timeout = route.cfg.timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let head_only = incoming.method == b"HEAD";
    let headers = match forwarded_headers(route, &incoming.headers) {
        Ok(headers) => headers,
        Err((status, message)) => return Outcome::error(status, message).into(),
    };
    let creds = match (&route.signing, headers.sign) {
        (Some((_, source)), true) => {
            let first_wait = creds::FIRST_FETCH_WAIT.min(timeout / 2);
            match tokio::time::timeout_at(deadline, providers.get(source, first_wait)).await {
                Ok(Ok(creds)) => Some(creds),
                Ok(Err(message)) => return no_credentials(message).into(),
                Err(_) => {
                    return no_credentials(format!(
                        "no AWS credentials within the timeout ({} ms)",
                        timeout.as_millis()
                    ))
                    .into()
                }
            }
        }
        _ => None,
    };
    let exchange = exchange(pool, route, &incoming, &headers, creds.as_ref(), head_only);
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(head) => head,
        Err(_) => {
            stats::WORKER.failed(Failure::Timeout);
            Outcome::error(
                504,
                format!(
                    "function at {} did not answer within {} ms",
                    route.endpoint,
                    timeout.as_millis()
                ),
            )
            .into()
        }
    }
}

async fn exchange<'a>(
    pool: &'a Pool,
    route: &'a Route,
    incoming: &Incoming,
    headers: &Forwarded<'_>,
    creds: Option<&Credentials>,
    head_only: bool,
) -> Head<'a> {
    let body = match read_body(route, &incoming.body).await {
        Ok(body) => body,
        Err(outcome) => return outcome.into(),
    };
    if let (Some(invoke), Some(target)) = (&route.cfg.invoke, &route.invoke_target) {
        let call = lambda::Call {
            route,
            invoke,
            target,
            incoming,
            headers: &headers.headers,
            creds,
        };
        // Boxed: an invocation's state (the event, the Invoke API's answer) would
        // otherwise sit in every function_uri call's task too (scale bench: bytes per
        // call in flight).
        return match Box::pin(lambda::exchange(pool, call, body)).await {
            lambda::Reply::Done(outcome) => outcome.into(),
            lambda::Reply::Answer {
                answer,
                extra_head,
                log,
            } => {
                let mut head = response_head(&answer.headers, head_only);
                head.extend(extra_head);
                Outcome::Response {
                    status: answer.status,
                    head,
                    body: if head_only { Bytes::new() } else { answer.body },
                    log,
                }
                .into()
            }
            lambda::Reply::Stream {
                status,
                headers,
                extra_head,
                first,
                source,
            } => {
                let mut head = response_head(&headers, head_only);
                head.extend(extra_head);
                if head_only {
                    // Nothing of the body is wanted: dropping the source closes the
                    // connection.
                    return Outcome::Response {
                        status,
                        head,
                        body: Bytes::new(),
                        log: None,
                    }
                    .into();
                }
                Head::Streamed {
                    status,
                    head,
                    first,
                    source,
                }
            }
        };
    }
    let req = match build(
        route,
        &incoming.method,
        incoming.ext.as_deref(),
        &incoming.query,
        headers,
        creds,
        body,
    ) {
        Ok(req) => req,
        Err((status, message)) => return Outcome::error(status, message).into(),
    };
    match pool.send_streaming(&route.endpoint, &route.opts, req).await {
        Ok((res, None)) => Outcome::Response {
            status: res.status,
            head: response_head(&res.headers, head_only),
            body: own_body(res.body),
            log: None,
        }
        .into(),
        Ok((res, Some(reader))) => {
            let mut head = response_head(&res.headers, head_only);
            // A streamed answer of known length keeps it: the client can then tell a
            // cut answer from a whole one, as behind proxy_pass.
            if let (false, Some(length)) = (head_only, res.headers.get(CONTENT_LENGTH)) {
                head.extend_from_slice(b"Content-Length:");
                head.extend_from_slice(length.as_bytes());
                head.push(b'\n');
            }
            Head::Body {
                status: res.status,
                head,
                source: Box::new(reader),
            }
        }
        Err(err) => route.transport_error(&err).into(),
    }
}

/// Bodies up to this size are copied out of hyper's read buffer (see [`own_body`]).
const COPIED_BODY_MAX: usize = 8 * 1024;

/// The body as the outcome keeps it until nginx takes it. hyper hands back a slice of
/// the connection's read buffer (8 KiB at first); kept in the outcome, the slice pins
/// that buffer until nginx takes it, hyper allocates a new one for the connection's next
/// answer, and the old one is freed on the nginx thread. Measured on ci/bench.sh's load:
/// one `madvise` of about 1.2 MB per request as the runtime thread's heap grew and was
/// trimmed, and the page faults after it. A small body is copied instead, so that hyper
/// reuses its buffer in place.
fn own_body(body: Bytes) -> Bytes {
    if body.len() <= COPIED_BODY_MAX {
        Bytes::copy_from_slice(&body)
    } else {
        body
    }
}

/// 503 with `Retry-After`: the function was not called, and a fetch of credentials
/// may be tried again by then.
fn no_credentials(message: String) -> Outcome {
    stats::WORKER.failed(Failure::NoCredentials);
    Outcome::Error {
        status: 503,
        message,
        head: format!("retry-after:{}\n", creds::RETRY_AFTER_SECS).into_bytes(),
        log: None,
    }
}

async fn read_body(route: &Route, body: &Body) -> Result<Bytes, Outcome> {
    let max = route.cfg.max_req_body_size;
    let too_large = || {
        stats::WORKER.failed(Failure::TooLarge);
        Outcome::error(
            413,
            format!("request body larger than max_req_body_size ({max} bytes)"),
        )
    };
    match body {
        Body::Memory(bytes) if bytes.len() as u64 > max => Err(too_large()),
        Body::Memory(bytes) => Ok(bytes.clone()),
        Body::File(path) => {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| Outcome::error(400, format!("cannot read the request body: {e}")))?;
            if meta.len() > max {
                return Err(too_large());
            }
            tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|e| Outcome::error(400, format!("cannot read the request body: {e}")))
        }
    }
}

/// The client's headers that go to the function, and how the request is authorised.
struct Forwarded<'a> {
    headers: Vec<(&'a str, &'a [u8])>,
    /// The configured apikey, when it is to be sent.
    apikey: Option<&'a str>,
    /// Whether to sign with SigV4.
    sign: bool,
}

fn forwarded_headers<'a>(route: &'a Route, raw: &'a [u8]) -> Result<Forwarded<'a>, BuildError> {
    let headers = parse_headers(raw)?;
    let event = route.cfg.invoke.is_some();
    // Names come lowercase from nginx's Lua API, but the C ABI cannot enforce that: a
    // `Host` or `Content-Length` missed here would be sent twice.
    let is = |n: &str, name: &str| n.eq_ignore_ascii_case(name);

    // Hop-by-hop headers, and any header the client named in Connection, belong to the
    // client's connection, not to ours (a forwarded `Connection: close` would make the
    // function close a pooled connection).
    let connection_values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| is(n, "connection"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    let listed = wire::connection_listed(&connection_values);
    let mut forwarded: Vec<(&str, &[u8])> = headers
        .into_iter()
        .filter(|(n, _)| {
            !wire::is_hop_by_hop(n)
                && (event || (!is(n, "host") && !is(n, "content-length")))
                && !listed.iter().any(|l| is(n, l))
        })
        .collect();
    if event {
        // The headers go into the event, as API Gateway passes them (host and
        // authorization included); the Invoke API call itself is always signed.
        return Ok(Forwarded {
            headers: forwarded,
            apikey: None,
            sign: route.signing.is_some(),
        });
    }

    // APISIX's precedence: the configured apikey unless the client sent one; otherwise
    // SigV4 unless the client sent its own authorization.
    let has = |name: &str| forwarded.iter().any(|(n, _)| is(n, name));
    let apikey = match &route.cfg.apikey {
        Some(key) if !has("x-api-key") => Some(key.as_str()),
        _ => None,
    };
    let sign = route.signing.is_some() && apikey.is_none() && !has("authorization");
    if sign {
        // The signature's own headers come from the signer; a client's copy (say, a
        // session token for other credentials) would be signed and make AWS reject it.
        forwarded.retain(|(n, _)| {
            !["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]
                .iter()
                .any(|own| is(n, own))
        });
    }
    Ok(Forwarded {
        headers: forwarded,
        apikey,
        sign,
    })
}

/// Builds the request to the function; `creds` is set when it is to be signed.
fn build(
    route: &Route,
    method: &[u8],
    ext: Option<&[u8]>,
    query: &[u8],
    forwarded: &Forwarded<'_>,
    creds: Option<&Credentials>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, BuildError> {
    let cfg = &route.cfg;
    let method = Method::from_bytes(method).map_err(|_| bad_request("invalid request method"))?;
    let signing = match (&route.signing, creds) {
        (Some((signing_cfg, _)), Some(creds)) => Some((signing_cfg, creds)),
        _ => None,
    };
    let apikey = forwarded.apikey;

    let path = wire::join_path(&cfg.endpoint.base_path, ext);
    let query = if signing.is_some() {
        // Send exactly the canonical query that is signed: the client's bytes, with
        // escapes normalised (any that are not UTF-8 included).
        wire::canonical_query(query)
    } else {
        wire::sanitize_query(query)
    };
    let path_len = path.len();
    let mut target = path;
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query);
    }

    let mut builder = Request::builder()
        .method(method.clone())
        .uri(target.as_str());
    let out = builder
        .headers_mut()
        .ok_or_else(|| bad_request(format!("invalid request path or query: {target}")))?;
    let authority = route
        .host_value
        .clone()
        .ok_or_else(|| (500, "invalid function_uri host".to_string()))?;
    out.insert(HOST, authority);
    for (name, value) in &forwarded.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad_request("invalid request header name"))?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| bad_request(format!("invalid value in request header {name}")))?;
        out.append(name, value);
    }
    if !body.is_empty() || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
        out.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    if apikey.is_some() {
        // `apikey` is the route's own key (Forwarded), made into a value once.
        let value = route
            .apikey_value
            .clone()
            .ok_or_else(|| (500, "invalid apikey".to_string()))?;
        out.insert(HeaderName::from_static("x-api-key"), value);
    }
    if let Some((signing_cfg, creds)) = signing {
        // Signed from the parts just built: the query is the canonical one sent.
        let to = sign::Target {
            tls: cfg.endpoint.tls,
            authority: &cfg.endpoint.authority,
            path: &target[..path_len],
            canonical_query: &query,
        };
        route.add_signature(signing_cfg, creds, &method, &to, out, &body)?;
    }
    builder
        .body(Full::new(body))
        .map_err(|_| bad_request(format!("invalid request path or query: {target}")))
}

/// The request [`call`] would send for `incoming` (its body given as `body`), signed with
/// `creds` when it signs at all; for the fuzz targets (`crate::fuzzing`).
pub(crate) fn request_for(
    route: &Route,
    incoming: &Incoming,
    creds: &Credentials,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, BuildError> {
    let headers = forwarded_headers(route, &incoming.headers)?;
    let creds = headers.sign.then_some(creds);
    build(
        route,
        &incoming.method,
        incoming.ext.as_deref(),
        &incoming.query,
        &headers,
        creds,
        body,
    )
}

/// Splits `name:value\n` lines (names lowercase, as nginx's Lua API gives them).
pub(crate) fn parse_headers(raw: &[u8]) -> Result<Vec<(&str, &[u8])>, BuildError> {
    let mut headers = Vec::new();
    for line in raw.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| bad_request("invalid request header"))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !wire::valid_header_name(name) || !wire::valid_header_value(value) {
            return Err(bad_request("invalid request header"));
        }
        // valid_header_name admits only ASCII token characters.
        let name = std::str::from_utf8(name).map_err(|_| bad_request("invalid request header"))?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// hyper lowercases header names; clients of an HTTP/1.1 gateway expect the usual
/// spelling (`Set-Cookie`), as APISIX passes it on from the function.
fn push_title_case(out: &mut Vec<u8>, name: &str) {
    let mut upper = true;
    for b in name.bytes() {
        out.push(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// The response headers to hand to nginx, as `name:value\n` lines: without hop-by-hop
/// headers (nginx frames its own response, and HTTP/2 forbids them) and without
/// Content-Length, which nginx sets from the body (kept for HEAD, which has none).
pub(crate) fn response_head(headers: &http::HeaderMap, head_only: bool) -> Vec<u8> {
    let connection_values: Vec<&str> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let listed = wire::connection_listed(&connection_values);
    let mut out = Vec::with_capacity(headers.len() * 32);
    for (name, value) in headers {
        let n = name.as_str();
        if wire::is_hop_by_hop(n)
            || (n == "content-length" && !head_only)
            || listed.iter().any(|l| l == n)
        {
            continue;
        }
        push_title_case(&mut out, n);
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginConfig;
    use serde_json::json;

    fn request(conf: serde_json::Value, headers: &[u8]) -> Request<Full<Bytes>> {
        let route = Route::new(PluginConfig::from_value(&conf).expect("configuration"));
        let incoming = Incoming {
            method: b"GET".to_vec(),
            ext: None,
            query: Vec::new(),
            headers: headers.to_vec(),
            body: Body::Memory(Bytes::new()),
            context: None,
        };
        let creds = Credentials::new("AKIDEXAMPLE", "SECRET", None);
        request_for(&route, &incoming, &creds, Bytes::new()).expect("request")
    }

    /// From the headers fuzz target: a client's `Connection` may name `host` or the
    /// credentials' headers; that drops only the client's own copies.
    #[test]
    fn connection_naming_host_or_credentials() {
        let req = request(
            json!({"function_uri": "http://fn.example:8080/p", "authorization": {"apikey": "KEY"}}),
            b"connection:host, x-api-key\nhost:client.example\nx-api-key:client\nx-other:1\n",
        );
        let h = req.headers();
        assert_eq!(h["host"], "fn.example:8080");
        assert_eq!(h["x-api-key"], "KEY", "the client's key was hop-by-hop");
        assert_eq!(h["x-other"], "1");
        assert!(h.get("connection").is_none());

        let req = request(
            json!({"function_uri": "https://fn.example/",
                   "authorization": {"iam": {"accesskey": "AKIDEXAMPLE", "secretkey": "SECRET"}}}),
            b"connection:authorization\nauthorization:Basic eDp5\n",
        );
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert_eq!(req.headers()["host"], "fn.example");
    }

    /// From the headers fuzz target: the C ABI takes names in any case (nginx's Lua API
    /// lowercases them); the client's Host, Content-Length, Connection and the
    /// signature's headers must not get through in capitals.
    #[test]
    fn header_names_in_capitals() {
        let req = request(
            json!({"function_uri": "https://fn.example/",
                   "authorization": {"iam": {"accesskey": "AKIDEXAMPLE", "secretkey": "SECRET"}}}),
            b"Host:client.example\nContent-Length:5\nConnection:X-Gone\nX-Gone:1\n\
              X-Amz-Date:19700101T000000Z\nX-Kept:2\n",
        );
        let h = req.headers();
        assert_eq!(h.get_all("host").iter().collect::<Vec<_>>(), ["fn.example"]);
        assert!(h.get("content-length").is_none(), "GET without a body");
        assert!(h.get("x-gone").is_none() && h.get("connection").is_none());
        assert_eq!(h.get_all("x-amz-date").iter().count(), 1);
        assert_ne!(h["x-amz-date"], "19700101T000000Z");
        assert_eq!(h["x-kept"], "2");

        let req = request(
            json!({"function_uri": "http://fn.example/", "authorization": {"apikey": "KEY"}}),
            b"X-Api-Key:client\n",
        );
        assert_eq!(
            req.headers()["x-api-key"],
            "client",
            "the client's key wins"
        );
    }
}
