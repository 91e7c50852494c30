//! HTTP/1.1 client on hyper's connection API, with an own pool keyed by endpoint.
//!
//! DESIGN.md measured hyper's `client::conn::http1` with an own pool at half the
//! per-request CPU of hyper-util's legacy client and a quarter of reqwest's, so the
//! per-request path uses it directly. Everything here runs on the worker's runtime
//! thread; the pool's lock is never contended by the nginx thread.

mod tls;

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where connections go; also the pool key, so routes that share an endpoint and TLS
/// settings share connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub ssl_verify: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Per-route connection behaviour, from the plugin configuration.
#[derive(Clone, Debug)]
pub struct Options {
    pub keepalive: bool,
    pub keepalive_timeout: Duration,
    pub pool_size: usize,
    pub max_body: u64,
}

/// A complete response from the function.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why an exchange failed. Messages name the endpoint and the cause, never request data.
#[derive(Debug)]
pub enum ClientError {
    /// DNS, TCP connect or TLS handshake failed: the function could not be reached.
    Unreachable(String),
    /// The connection broke or the answer was not valid HTTP.
    BadResponse(String),
    /// The response body is larger than `max_resp_body_size`.
    TooLarge(u64),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(m) | ClientError::BadResponse(m) => f.write_str(m),
            ClientError::TooLarge(limit) => {
                write!(
                    f,
                    "response body larger than max_resp_body_size ({limit} bytes)"
                )
            }
        }
    }
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    expires: Instant,
}

/// Idle keepalive connections by endpoint.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Endpoint, Vec<Idle>>>,
}

impl Pool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to `ep` on a pooled or new connection and reads the whole response,
    /// refusing bodies over `opts.max_body` without buffering them.
    pub async fn send(
        &self,
        ep: &Endpoint,
        opts: &Options,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response, ClientError> {
        let idempotent = is_idempotent(req.method());
        let mut retried = false;
        loop {
            // The retry goes on a new connection: others in the pool may be stale too.
            let pooled = if retried { None } else { self.checkout(ep) };
            let (mut sender, reused) = match pooled {
                Some(sender) => (sender, true),
                // Boxed: the connect future (TLS handshake included) is large, and
                // inline it would sit in every request's task, pooled or not, for the
                // whole call (measured: 4.4 KB -> 2.2 KB per request in flight).
                None => (Box::pin(connect(ep)).await?, false),
            };
            // A pooled connection can be closed by the server just as a request goes out
            // on it (its idle timeout, a reload). An idempotent request is then sent
            // once more on a new connection, as nginx's proxy_next_upstream does.
            let copy = (reused && idempotent && !retried).then(|| copy_request(&req));
            let res = match sender.try_send_request(req).await {
                Ok(res) => res,
                Err(mut err) => match (err.take_message(), copy) {
                    // Not written at all: safe to send again on another connection.
                    (Some(unsent), _) if reused => {
                        req = unsent;
                        continue;
                    }
                    (_, Some(copy)) if closed_before_answer(err.error()) => {
                        req = copy;
                        retried = true;
                        continue;
                    }
                    _ => return Err(response_error(ep, err.into_error())),
                },
            };
            let (parts, body) = res.into_parts();
            if let Some(len) = content_length(&parts.headers) {
                if len > opts.max_body {
                    return Err(ClientError::TooLarge(opts.max_body));
                }
            }
            let limit = usize::try_from(opts.max_body).unwrap_or(usize::MAX);
            let body = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                    return Err(ClientError::TooLarge(opts.max_body))
                }
                Err(err) => {
                    return Err(ClientError::BadResponse(format!(
                        "reading the response from {ep} failed: {err}"
                    )))
                }
            };
            if opts.keepalive && !wants_close(&parts.headers) {
                self.checkin(ep, sender, opts);
            }
            return Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            });
        }
    }

    fn checkout(&self, ep: &Endpoint) -> Option<SendRequest<Full<Bytes>>> {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        let list = idle.get_mut(ep)?;
        // Most recently used first: it is the least likely to have been closed.
        while let Some(conn) = list.pop() {
            if conn.expires > now && conn.sender.is_ready() {
                return Some(conn.sender);
            }
        }
        None
    }

    fn checkin(&self, ep: &Endpoint, sender: SendRequest<Full<Bytes>>, opts: &Options) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        let list = match idle.get_mut(ep) {
            Some(list) => list,
            None => idle.entry(ep.clone()).or_default(),
        };
        if list.len() < opts.pool_size {
            list.push(Idle {
                sender,
                expires: Instant::now() + opts.keepalive_timeout,
            });
        }
    }

    /// Closes idle connections past their keepalive timeout.
    pub fn sweep(&self, now: Instant) {
        let mut idle = self.idle.lock();
        idle.retain(|_, list| {
            list.retain(|c| c.expires > now && !c.sender.is_closed());
            !list.is_empty()
        });
    }
}

fn is_idempotent(method: &http::Method) -> bool {
    use http::Method;
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn copy_request(req: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// The connection ended before any of the answer arrived.
fn closed_before_answer(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return true;
    }
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        cause = c.source();
    }
    false
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn wants_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
            .unwrap_or(false)
    })
}

fn response_error(ep: &Endpoint, err: hyper::Error) -> ClientError {
    ClientError::BadResponse(format!("request to {ep} failed: {err}"))
}

async fn connect(ep: &Endpoint) -> Result<SendRequest<Full<Bytes>>, ClientError> {
    let unreachable = |what: &str, err: &dyn fmt::Display| {
        ClientError::Unreachable(format!("{what} {ep} failed: {err}"))
    };
    let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .map_err(|e| unreachable("connecting to", &e))?;
    // Requests are written in one go; Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    if !ep.tls {
        return handshake(ep, tcp).await;
    }
    let config = tls::config(ep.ssl_verify).map_err(|e| unreachable("TLS to", &e))?;
    let name = ServerName::try_from(ep.host.clone()).map_err(|e| unreachable("TLS to", &e))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable("TLS handshake with", &e))?;
    handshake(ep, stream).await
}

async fn handshake<T>(ep: &Endpoint, io: T) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Unreachable(format!("connecting to {ep} failed: {e}")))?;
    tokio::spawn(async move {
        // Ends when the peer closes or the last sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}
