//! HTTP/1.1 client on hyper's connection API, with an own pool keyed by endpoint.
//!
//! DESIGN.md measured hyper's `client::conn::http1` with an own pool at half the
//! per-request CPU of hyper-util's legacy client and a quarter of reqwest's, so the
//! per-request path uses it directly. Everything here runs on the worker's runtime
//! thread; the pool's lock is never contended by the nginx thread.

mod proxy;
mod tls;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub use crate::config::Proxy;

/// Where connections go; also the pool key, so routes that share an endpoint, TLS
/// settings and proxy share connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub ssl_verify: bool,
    /// `proxy_url`: connections go through this forward proxy.
    pub proxy: Option<Proxy>,
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
    /// The forward proxy (`proxy_url`) could not be reached, or refused the tunnel.
    Proxy(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(m) | ClientError::BadResponse(m) | ClientError::Proxy(m) => {
                f.write_str(m)
            }
            ClientError::TooLarge(limit) => {
                write!(
                    f,
                    "response body larger than max_resp_body_size ({limit} bytes)"
                )
            }
        }
    }
}

/// How long a connection over an endpoint's `keepalive_pool` may stay idle before it is
/// closed. Completions arrive in batches: closing the surplus at once (nginx's
/// `keepalive N`) means connecting again a moment later, so the cap is enforced over
/// time instead. A second covers the gaps between batches under load and is short
/// next to `keepalive_timeout` (at least 1 s, 60 s by default).
pub(crate) const SURPLUS_GRACE: Duration = Duration::from_secs(1);

/// Idle connections an endpoint may hold over its `keepalive_pool` while they wait out
/// the grace period: the hard bound for a pathological burst. Past it the connection
/// idle the longest is closed at once.
pub(crate) const SURPLUS_MAX: usize = 1024;

/// How often the runtime sweeps the pool: often enough that a surplus connection goes
/// within a quarter of the grace period after it ran out.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// The most a function's response head (status line and headers) may take: 64 KiB, the
/// same order as nginx's proxy buffers (`proxy_buffer_size` 4-8 KiB, `proxy_buffers`
/// 8 x 4-8 KiB). A larger head is refused (502); its number of lines is not limited.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper counts header lines too (100 by default): allow as many as a head of
/// [`MAX_HEAD_BYTES`] can hold (the shortest line, `a:\n`, is 3 bytes), so the size is
/// the only bound. hyper then parses into a heap array of this many slots per response,
/// left uninitialised past the lines actually received.
pub(crate) const MAX_HEAD_LINES: usize = MAX_HEAD_BYTES / 3;

struct Idle<C> {
    conn: C,
    since: Instant,
    expires: Instant,
}

/// One endpoint's idle connections, the longest idle first. Checkout and checkin work
/// at the back, so the order by idle time holds without sorting, and the connections
/// that stay at the front are the ones the load does not need.
struct IdleList<C> {
    conns: VecDeque<Idle<C>>,
    /// `keepalive_pool` of the route that checked in last.
    cap: usize,
}

impl<C> Default for IdleList<C> {
    fn default() -> Self {
        Self {
            conns: VecDeque::new(),
            cap: 0,
        }
    }
}

impl<C> IdleList<C> {
    /// The most recently used connection that is still usable: the least likely to
    /// have been closed by the function.
    fn pop(&mut self, now: Instant, usable: impl Fn(&C) -> bool) -> Option<C> {
        while let Some(idle) = self.conns.pop_back() {
            if idle.expires > now && usable(&idle.conn) {
                return Some(idle.conn);
            }
        }
        None
    }

    fn push(&mut self, conn: C, now: Instant, cap: usize, keepalive_timeout: Duration) {
        self.cap = cap;
        if self.conns.len() >= cap.saturating_add(SURPLUS_MAX) {
            self.conns.pop_front();
        }
        self.conns.push_back(Idle {
            conn,
            since: now,
            expires: now + keepalive_timeout,
        });
        self.trim(now);
    }

    /// Closes what is over the cap and has been idle for the whole grace period.
    fn trim(&mut self, now: Instant) {
        while self.conns.len() > self.cap {
            match self.conns.front() {
                Some(oldest) if now.duration_since(oldest.since) >= SURPLUS_GRACE => {
                    self.conns.pop_front();
                }
                _ => break,
            }
        }
    }

    fn sweep(&mut self, now: Instant, closed: impl Fn(&C) -> bool) {
        self.conns.retain(|c| c.expires > now && !closed(&c.conn));
        self.trim(now);
    }
}

/// Idle keepalive connections by endpoint.
///
/// `keepalive_pool` bounds what an endpoint keeps idle once the load drops, not what a
/// batch of completions may hold for a moment: a connection over the cap stays usable
/// for [`SURPLUS_GRACE`] and is closed if nothing took it by then, so under steady load
/// nothing is closed and reopened. [`SURPLUS_MAX`] bounds the surplus, and
/// `keepalive_timeout` ends every idle connection.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Endpoint, IdleList<SendRequest<Full<Bytes>>>>>,
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
        if let (Some(proxy), false) = (&ep.proxy, ep.tls) {
            proxy::absolute_form(&mut req, proxy);
        }
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
        idle.get_mut(ep)?.pop(now, |c| c.is_ready())
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
        list.push(
            sender,
            Instant::now(),
            opts.pool_size,
            opts.keepalive_timeout,
        );
    }

    /// Closes idle connections past their keepalive timeout, and those over the cap
    /// past the grace period. Runs every [`SWEEP_EVERY`].
    pub fn sweep(&self, now: Instant) {
        let mut idle = self.idle.lock();
        idle.retain(|_, list| {
            list.sweep(now, |c| c.is_closed());
            !list.conns.is_empty()
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
    let tcp = match &ep.proxy {
        None => TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| unreachable("connecting to", &e))?,
        Some(p) => TcpStream::connect((p.host.as_str(), p.port))
            .await
            .map_err(|e| {
                ClientError::Proxy(format!("connecting to proxy {p} for {ep} failed: {e}"))
            })?,
    };
    // Requests are written in one go; Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    if !ep.tls {
        return handshake(ep, tcp).await;
    }
    let tcp = match &ep.proxy {
        // TLS with the function runs inside the tunnel, verified against its name.
        Some(p) => proxy::tunnel(ep, p, tcp).await?,
        None => tcp,
    };
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
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEAD_LINES)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| ClientError::Unreachable(format!("connecting to {ep} failed: {e}")))?;
    tokio::spawn(async move {
        // Ends when the peer closes or the last sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn ids(list: &IdleList<u32>) -> Vec<u32> {
        list.conns.iter().map(|c| c.conn).collect()
    }

    #[test]
    fn a_batch_over_the_cap_stays_usable_within_the_grace_period() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        for id in 0..32 {
            list.push(id, t0, 5, TIMEOUT);
        }
        assert_eq!(list.conns.len(), 32);
        // The next batch of requests takes all of them, newest first: no connect.
        let later = t0 + SURPLUS_GRACE / 2;
        for want in (0..32).rev() {
            assert_eq!(list.pop(later, |_| true), Some(want));
        }
        assert_eq!(list.pop(later, |_| true), None);
    }

    #[test]
    fn the_surplus_goes_after_the_grace_period_longest_idle_first() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        for id in 0..8 {
            list.push(id, t0 + Duration::from_millis(id.into()), 5, TIMEOUT);
        }
        list.sweep(t0 + SURPLUS_GRACE - Duration::from_millis(1), |_| false);
        assert_eq!(list.conns.len(), 8);
        list.sweep(t0 + SURPLUS_GRACE + Duration::from_millis(1), |_| false);
        assert_eq!(ids(&list), [2, 3, 4, 5, 6, 7]);
        list.sweep(t0 + SURPLUS_GRACE * 2, |_| false);
        assert_eq!(ids(&list), [3, 4, 5, 6, 7]);
        // The cap itself is kept until keepalive_timeout.
        list.sweep(t0 + TIMEOUT - Duration::from_millis(1), |_| false);
        assert_eq!(list.conns.len(), 5);
        list.sweep(t0 + TIMEOUT + Duration::from_millis(8), |_| false);
        assert_eq!(list.conns.len(), 0);
    }

    #[test]
    fn a_checkin_trims_what_outstayed_the_grace_period() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        for id in 0..3 {
            list.push(id, t0, 1, TIMEOUT);
        }
        list.push(3, t0 + SURPLUS_GRACE, 1, TIMEOUT);
        assert_eq!(ids(&list), [3]);
    }

    #[test]
    fn a_burst_holds_at_most_surplus_max_over_the_cap() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        let n = u32::try_from(SURPLUS_MAX).unwrap() + 100;
        for id in 0..n {
            list.push(id, t0, 5, TIMEOUT);
        }
        assert_eq!(list.conns.len(), 5 + SURPLUS_MAX);
        // The ones idle the longest went first.
        assert_eq!(
            list.conns.front().map(|c| c.conn),
            Some(n - 5 - SURPLUS_MAX as u32)
        );
    }

    #[test]
    fn expired_and_closed_connections_are_never_handed_out() {
        let t0 = Instant::now();
        let mut list = IdleList::default();
        list.push(1, t0, 5, Duration::from_secs(1));
        list.push(2, t0, 5, Duration::from_secs(60));
        list.push(3, t0, 5, Duration::from_secs(60));
        // 3 is closed, 1 has expired: 2 is the only one usable.
        let at = t0 + Duration::from_secs(2);
        assert_eq!(list.pop(at, |&c| c != 3), Some(2));
        assert_eq!(list.pop(at, |_| true), None);
        list.push(4, t0, 5, Duration::from_secs(60));
        list.sweep(t0, |&c| c == 4);
        assert!(list.conns.is_empty());
    }
}
