//! HTTP/1.1 client on hyper's connection API, with an own pool keyed by endpoint, and
//! HTTP/2 on the h2 crate (see `h2`).
//!
//! DESIGN.md measured hyper's `client::conn::http1` with an own pool at half the
//! per-request CPU of hyper-util's legacy client and a quarter of reqwest's, so the
//! per-request path uses it directly. Everything here runs on the worker's runtime
//! thread; the pool's lock is contended by the nginx thread only when it reads the
//! stats (about once a second).

mod h2;
mod proxy;
mod tls;

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, PROXY_AUTHORIZATION};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use rustls::pki_types::ServerName;
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::stats::{self, EndpointStats, Failure};

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
    /// `http2`: offer h2 by ALPN and multiplex calls on it (TLS endpoints only).
    pub http2: bool,
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

/// An endpoint's counters are forgotten after this long without a connection or a
/// request (a route that was deleted or moved), so the stats do not grow for ever.
const FORGET_ENDPOINT_AFTER: Duration = Duration::from_secs(3600);

/// An endpoint's counters for the stats. Relaxed atomics: they are bumped on the
/// runtime thread without the pool's lock and read, rarely, from the nginx thread.
#[derive(Default)]
struct EndpointCounters {
    active: AtomicU64,
    opened: AtomicU64,
    tls_full: AtomicU64,
    tls_resumed: AtomicU64,
}

/// A request on a connection to the endpoint, from checkout to the end of `send`.
struct Active(Arc<EndpointCounters>);

impl Active {
    fn new(counters: Arc<EndpointCounters>) -> Self {
        counters.active.fetch_add(1, Relaxed);
        Self(counters)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// The most a function's response head (status line and headers) may take: 64 KiB, the
/// same order as nginx's proxy buffers (`proxy_buffer_size` 4-8 KiB, `proxy_buffers`
/// 8 x 4-8 KiB). A larger head is refused (502), and so is one of more than
/// [`MAX_HEAD_LINES`] lines.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper counts header lines too (100 by default), and parses every response into two
/// heap arrays of this many 32-byte slots. At `MAX_HEAD_BYTES / 3` (every line a head of
/// 64 KiB can hold) that was 2 x 700 KB per response: under load the runtime thread's
/// heap grew and was trimmed again (`madvise`, then page faults). 1024 lines keep a
/// response with 1000 headers (t/55-bad-input.t TEST 18) and cost 2 x 32 KB.
pub(crate) const MAX_HEAD_LINES: usize = 1024;

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
    /// The endpoint's HTTP/2 connections, with `http2`.
    h2: h2::H2List,
    /// `keepalive_pool` of the route that checked in last.
    cap: usize,
    counters: Arc<EndpointCounters>,
    last_used: Instant,
}

impl<C> Default for IdleList<C> {
    fn default() -> Self {
        Self {
            conns: VecDeque::new(),
            h2: h2::H2List::default(),
            cap: 0,
            counters: Arc::default(),
            last_used: Instant::now(),
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
    // Looked up twice per request (checkout, checkin): FxHash, not SipHash, since the
    // keys come from the configuration, not from clients.
    idle: Mutex<FxHashMap<Endpoint, IdleList<Conn>>>,
}

/// A connection to the function: hyper's sender, and whether any byte of an answer
/// arrived since the last checkout (set by [`Counted`], reset at checkout).
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    answered: Arc<AtomicBool>,
}

/// What a call sends on: a connection of its own (and whether it was pooled), or a
/// stream on a shared HTTP/2 connection.
enum Lease {
    H1(Conn, bool),
    H2(h2::H2Stream),
}

/// A new connection, in the protocol ALPN chose.
enum Connected {
    H1(Conn),
    H2(h2::Opened),
}

/// An HTTP/2 endpoint's connect in progress; dropped before it ends (failed, or the
/// call was given up), it lets the waiting calls check out again.
struct PendingConnect<'a> {
    pool: &'a Pool,
    ep: &'a Endpoint,
}

impl Drop for PendingConnect<'_> {
    fn drop(&mut self) {
        if let Some(list) = self.pool.idle.lock().get_mut(self.ep) {
            list.h2.connect_failed();
        }
    }
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
        req: Request<Full<Bytes>>,
    ) -> Result<Response, ClientError> {
        let result = match self.exchange(ep, opts, req).await {
            Ok(answer) => self.collect(ep, opts, answer).await,
            Err(err) => Err(err),
        };
        if let Err(err) = &result {
            count_failure(err);
        }
        result
    }

    /// Sends `req` and waits for the answer's head. Refuses a Content-Length over
    /// `opts.max_body` at once (nothing of it is read).
    async fn exchange(
        &self,
        ep: &Endpoint,
        opts: &Options,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Answer, ClientError> {
        if let (Some(proxy), false) = (&ep.proxy, ep.tls) {
            proxy::absolute_form(&mut req, proxy);
        }
        let idempotent = is_idempotent(req.method());
        let mut retried = false;
        // When the first attempt failed: the retry takes a connection opened since.
        let mut failed_at = None;
        let mut active = None;
        loop {
            // The retry goes on a new connection: others in the pool may be stale too.
            let (lease, counters) = self.checkout(ep, opts, failed_at).await;
            let counters = &active.get_or_insert_with(|| Active::new(counters)).0;
            let lease = match lease {
                Some(lease) => lease,
                // Boxed: the connect future (TLS handshake included) is large, and
                // inline it would sit in every request's task, pooled or not, for the
                // whole call (measured: 4.4 KB -> 2.2 KB per request in flight).
                None => Box::pin(self.connect_lease(ep, counters)).await?,
            };
            let sent = Instant::now();
            let (res, lease) = match lease {
                Lease::H1(mut conn, reused) => {
                    // A pooled connection can be closed by the function's side just as
                    // a request goes out on it (its idle timeout, a reload): see `retry`.
                    let copy = (reused && idempotent && !retried).then(|| copy_request(&req));
                    match conn.sender.try_send_request(req).await {
                        Ok(res) => (res.map(AnswerBody::H1), Lease::H1(conn, reused)),
                        Err(mut err) => {
                            let unsent = err.take_message();
                            let answered = conn.answered.load(Ordering::Relaxed);
                            match retry(unsent, copy, retried, answered, err.error()) {
                                Some(again) => {
                                    req = again;
                                    retried = true;
                                    failed_at = Some(Instant::now());
                                    continue;
                                }
                                None => return Err(response_error(ep, &err.into_error(), retried)),
                            }
                        }
                    }
                }
                Lease::H2(mut stream) => {
                    h2::absolute(&mut req)?;
                    let copy = (!retried).then(|| copy_request(&req));
                    match h2::send(&mut stream, req).await {
                        Ok(res) => (res.map(AnswerBody::H2), Lease::H2(stream)),
                        Err(err) => {
                            if !h2::stream_only(&err.error) {
                                stream.retire();
                            }
                            match h2::retry(copy, retried, idempotent, &err) {
                                Some(mut again) => {
                                    // The retry may go on HTTP/1.1.
                                    h2::origin_form(&mut again);
                                    req = again;
                                    retried = true;
                                    failed_at = Some(Instant::now());
                                    continue;
                                }
                                None => return Err(response_error(ep, &err.error, retried)),
                            }
                        }
                    }
                }
            };
            stats::WORKER.latency.observe(sent.elapsed());
            let (parts, body) = res.into_parts();
            let length = content_length(&parts.headers);
            if length.is_some_and(|len| len > opts.max_body) {
                return Err(ClientError::TooLarge(opts.max_body));
            }
            let reuse = opts.keepalive && !wants_close(&parts.headers);
            return Ok(Answer {
                parts,
                length,
                body,
                lease,
                reuse,
                _active: active,
            });
        }
    }

    /// Reads the whole body of `answer`, refusing more than `opts.max_body` bytes
    /// without buffering them, and checks the connection back in.
    async fn collect(
        &self,
        ep: &Endpoint,
        opts: &Options,
        answer: Answer,
    ) -> Result<Response, ClientError> {
        let limit = usize::try_from(opts.max_body).unwrap_or(usize::MAX);
        let body = match Limited::new(answer.body, limit).collect().await {
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
        // An HTTP/2 stream's slot is given back here, when it is dropped.
        if let (Lease::H1(conn, _), true) = (answer.lease, answer.reuse) {
            self.checkin(ep, conn, opts);
        }
        Ok(Response {
            status: answer.parts.status.as_u16(),
            headers: answer.parts.headers,
            body,
        })
    }

    /// Sends `req` and returns the answer's head with a reader of its body, for an
    /// answer that may be streamed (`crate::stream`). A body with a Content-Length of
    /// at most `stream::WINDOW` is read whole first, as by [`Pool::send`] (no reader
    /// then); a Content-Length over `opts.max_body` is refused (502) before any of it
    /// is read; any other body is left to the reader, unbounded in size.
    pub async fn send_streaming(
        &self,
        ep: &Endpoint,
        opts: &Options,
        req: Request<Full<Bytes>>,
    ) -> Result<(Response, Option<BodyReader<'_>>), ClientError> {
        let result = match self.exchange(ep, opts, req).await {
            Ok(answer)
                if answer
                    .length
                    .is_some_and(|n| n <= crate::stream::WINDOW as u64) =>
            {
                self.collect(ep, opts, answer).await.map(|res| (res, None))
            }
            Ok(answer) => {
                let head = Response {
                    status: answer.parts.status.as_u16(),
                    headers: answer.parts.headers,
                    body: Bytes::new(),
                };
                let reader = BodyReader {
                    pool: self,
                    ep: ep.clone(),
                    opts: opts.clone(),
                    body: answer.body,
                    lease: Some(answer.lease),
                    reuse: answer.reuse,
                    _active: answer._active,
                };
                Ok((head, Some(reader)))
            }
            Err(err) => Err(err),
        };
        if let Err(err) = &result {
            count_failure(err);
        }
        result
    }

    /// A pooled connection or an HTTP/2 stream, and the endpoint's counters. None: the
    /// caller connects. `failed_at`: when the first attempt failed; a retry takes no
    /// pooled HTTP/1.1 connection, and only an HTTP/2 connection opened since. Over
    /// HTTP/2 a call waits while another one opens the connection it will share.
    async fn checkout(
        &self,
        ep: &Endpoint,
        opts: &Options,
        failed_at: Option<Instant>,
    ) -> (Option<Lease>, Arc<EndpointCounters>) {
        loop {
            match self.try_checkout(ep, opts, failed_at) {
                Ok(got) => return got,
                // The connect that notifies runs on this thread, after this: nothing is
                // missed between the check and the wait.
                Err(opened) => opened.notified().await,
            }
        }
    }

    /// `checkout` without the wait: Err is the notice to wait for.
    #[allow(clippy::type_complexity)]
    fn try_checkout(
        &self,
        ep: &Endpoint,
        opts: &Options,
        failed_at: Option<Instant>,
    ) -> Result<(Option<Lease>, Arc<EndpointCounters>), Arc<tokio::sync::Notify>> {
        let now = Instant::now();
        let mut idle = self.idle.lock();
        let list = match idle.get_mut(ep) {
            Some(list) => list,
            None => idle.entry(ep.clone()).or_default(),
        };
        list.last_used = now;
        if ep.http2 {
            match list.h2.checkout(now, failed_at, opts.keepalive_timeout) {
                h2::Next::Stream(s) => return Ok((Some(Lease::H2(s)), list.counters.clone())),
                h2::Next::Wait(opened) => return Err(opened),
                h2::Next::Connect => return Ok((None, list.counters.clone())),
                h2::Next::Http1 => {}
            }
        }
        let conn = if failed_at.is_some() {
            None
        } else {
            list.pop(now, |c| c.sender.is_ready())
        };
        if let Some(conn) = &conn {
            // Idle, so everything read so far was a whole earlier answer.
            conn.answered.store(false, Ordering::Relaxed);
        }
        Ok((conn.map(|c| Lease::H1(c, true)), list.counters.clone()))
    }

    /// A new connection. With `http2` this call is the endpoint's one connect (see
    /// `checkout`): the calls waiting for it share its connection, or connect on their
    /// own if it failed or the function chose HTTP/1.1.
    async fn connect_lease(
        &self,
        ep: &Endpoint,
        counters: &EndpointCounters,
    ) -> Result<Lease, ClientError> {
        // Ends the connect for the waiting calls even when this one fails or is dropped.
        let mut pending = ep.http2.then_some(PendingConnect { pool: self, ep });
        let connected = connect(ep, counters).await?;
        let now = Instant::now();
        let mut idle = self.idle.lock();
        let list = idle.entry(ep.clone()).or_default();
        // The connect ends here, under the lock (its drop would take the lock again).
        if let Some(pending) = pending.take() {
            std::mem::forget(pending);
        }
        Ok(match connected {
            Connected::H1(conn) => {
                if ep.http2 {
                    list.h2.refused = true;
                    list.h2.connect_failed();
                }
                Lease::H1(conn, false)
            }
            Connected::H2(opened) => Lease::H2(list.h2.connected(opened, now)),
        })
    }

    fn checkin(&self, ep: &Endpoint, conn: Conn, opts: &Options) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        let list = match idle.get_mut(ep) {
            Some(list) => list,
            None => idle.entry(ep.clone()).or_default(),
        };
        list.push(conn, Instant::now(), opts.pool_size, opts.keepalive_timeout);
    }

    /// Closes idle connections past their keepalive timeout, and those over the cap
    /// past the grace period. Runs every [`SWEEP_EVERY`].
    pub fn sweep(&self, now: Instant) {
        let mut idle = self.idle.lock();
        idle.retain(|_, list| {
            list.sweep(now, |c| c.sender.is_closed());
            list.h2.sweep(now);
            // Kept while in use, and for a while after, for its counters.
            !list.conns.is_empty()
                || !list.h2.is_empty()
                || Arc::strong_count(&list.counters) > 1
                || now.duration_since(list.last_used) < FORGET_ENDPOINT_AFTER
        });
    }

    /// Each endpoint's connections and counters, keyed `scheme://host:port`.
    pub fn endpoints(&self) -> Vec<(String, EndpointStats)> {
        let idle = self.idle.lock();
        idle.iter()
            .map(|(ep, list)| {
                let c = &list.counters;
                let scheme = if ep.tls { "https" } else { "http" };
                let stats = EndpointStats {
                    idle: (list.conns.len() + list.h2.idle()) as u64,
                    active: c.active.load(Relaxed),
                    connections_opened: c.opened.load(Relaxed),
                    tls_handshakes_full: c.tls_full.load(Relaxed),
                    tls_handshakes_resumed: c.tls_resumed.load(Relaxed),
                };
                (format!("{scheme}://{ep}"), stats)
            })
            .collect()
    }
}

fn count_failure(err: &ClientError) {
    stats::WORKER.failed(match err {
        ClientError::Unreachable(_) | ClientError::Proxy(_) => Failure::Unreachable,
        ClientError::BadResponse(_) => Failure::BadResponse,
        ClientError::TooLarge(_) => Failure::TooLarge,
    });
}

/// An answer's head, with its body still to read on `lease`.
struct Answer {
    parts: http::response::Parts,
    length: Option<u64>,
    body: AnswerBody,
    lease: Lease,
    /// Whether `lease` may go back to the pool once the body was read.
    reuse: bool,
    _active: Option<Active>,
}

/// An answer's body on either protocol.
enum AnswerBody {
    H1(Incoming),
    H2(::h2::RecvStream),
}

type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for AnswerBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            AnswerBody::H1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            // Trailers are not read: nginx cannot pass them on from here.
            AnswerBody::H2(body) => match body.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    // Read: the function may send as much again.
                    let _ = body.flow_control().release_capacity(data.len());
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AnswerBody::H1(body) => body.is_end_stream(),
            AnswerBody::H2(body) => body.is_end_stream(),
        }
    }
}

/// The body of a streamed answer, read as it arrives. At its end an HTTP/1.1
/// connection goes back to the pool (when it may); dropped before that, the connection
/// is closed (an HTTP/2 stream is reset), so a stream that Lua gave up leaves nothing
/// behind.
pub struct BodyReader<'a> {
    pool: &'a Pool,
    ep: Endpoint,
    opts: Options,
    body: AnswerBody,
    lease: Option<Lease>,
    reuse: bool,
    _active: Option<Active>,
}

impl crate::stream::Source for BodyReader<'_> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        loop {
            return match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // Trailers: nginx cannot pass them on from here.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(err))) => {
                    stats::WORKER.failed(Failure::BadResponse);
                    self.lease = None;
                    // hyper's own text is generic ("error reading a body from
                    // connection"): the causes below it say what happened.
                    let mut cause = err.to_string();
                    let mut source = err.source();
                    while let Some(inner) = source {
                        cause.push_str(": ");
                        cause.push_str(&inner.to_string());
                        source = inner.source();
                    }
                    Poll::Ready(Some(Err(format!(
                        "reading the response from {} failed: {cause}",
                        self.ep
                    ))))
                }
                Poll::Ready(None) => {
                    // An HTTP/2 stream's slot is given back when it is dropped.
                    if let (Some(Lease::H1(conn, _)), true) = (self.lease.take(), self.reuse) {
                        self.pool.checkin(&self.ep, conn, &self.opts);
                    }
                    Poll::Ready(None)
                }
            };
        }
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

/// Whether a failed request goes out once more, on a new connection, and which copy.
///
/// - `unsent`: hyper handed the request back, so it provably never left (the connection
///   was found closed before any of it was written): sent again whatever the method.
/// - `copy`: set for an idempotent request on a reused connection. It is sent again when
///   the connection broke before any byte of the answer arrived (`answered` false): the
///   function's side closed it as the request went out, as nginx's
///   `proxy_next_upstream error` does for idempotent methods.
///
/// Anything else, and above all a non-idempotent request (a POST; every Invoke, so an
/// `Event` invocation never runs twice) that may have reached the function, is not
/// retried. There is at most one retry.
fn retry(
    unsent: Option<Request<Full<Bytes>>>,
    copy: Option<Request<Full<Bytes>>>,
    retried: bool,
    answered: bool,
    err: &hyper::Error,
) -> Option<Request<Full<Bytes>>> {
    if retried {
        return None;
    }
    unsent.or_else(|| copy.filter(|_| !answered && closed_before_answer(err)))
}

/// The connection ended or broke (rather than, say, an answer that is not HTTP).
fn closed_before_answer(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return true;
    }
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return broken(io.kind());
        }
        cause = c.source();
    }
    false
}

/// The I/O errors of a connection that the peer ended or broke.
fn broken(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof
    )
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

fn response_error(ep: &Endpoint, err: &dyn fmt::Display, retried: bool) -> ClientError {
    let again = if retried {
        " (sent again on a new connection after the first broke)"
    } else {
        ""
    };
    ClientError::BadResponse(format!("request to {ep} failed{again}: {err}"))
}

async fn connect(ep: &Endpoint, counters: &EndpointCounters) -> Result<Connected, ClientError> {
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
    counters.opened.fetch_add(1, Relaxed);
    // Requests are written in one go; Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    if !ep.tls {
        return handshake(ep, tcp).await.map(Connected::H1);
    }
    let tcp = match &ep.proxy {
        // TLS with the function runs inside the tunnel, verified against its name.
        Some(p) => proxy::tunnel(ep, p, tcp).await?,
        None => tcp,
    };
    let config = tls::config(ep.ssl_verify, ep.http2).map_err(|e| unreachable("TLS to", &e))?;
    let name = ServerName::try_from(ep.host.clone()).map_err(|e| unreachable("TLS to", &e))?;
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable("TLS handshake with", &e))?;
    let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
    let kind = if resumed {
        &counters.tls_resumed
    } else {
        &counters.tls_full
    };
    kind.fetch_add(1, Relaxed);
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return h2::handshake(ep, stream).await.map(Connected::H2);
    }
    handshake(ep, stream).await.map(Connected::H1)
}

async fn handshake<T>(ep: &Endpoint, io: T) -> Result<Conn, ClientError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let answered = Arc::new(AtomicBool::new(false));
    let io = Counted {
        io,
        answered: answered.clone(),
    };
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
    Ok(Conn { sender, answered })
}

/// The connection's stream as hyper sees it (plain text under TLS), noting whether any
/// byte arrived: whether a broken exchange got any of its answer (see `retry`).
struct Counted<T> {
    io: T,
    answered: Arc<AtomicBool>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.answered.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
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

    /// What a test function does with the second request on a connection (it answers
    /// the first one on each with keep-alive).
    #[derive(Clone, Copy)]
    enum OnReuse {
        /// Reads the request and closes: the function's side closed the connection as
        /// the request went out.
        Close,
        /// Sends the start of an answer, then closes.
        CloseMidAnswer,
    }

    /// A function on a local port (served by a plain thread): returns the port and the
    /// number of requests that reached it.
    fn function(on_reuse: OnReuse) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                for n in 0.. {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            length = usize::MAX;
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().expect("length");
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if length == usize::MAX {
                        break;
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        break;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    if n == 0 {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                        continue;
                    }
                    if let OnReuse::CloseMidAnswer = on_reuse {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
                    }
                    break;
                }
            }
        });
        (port, seen)
    }

    /// A plain-HTTP endpoint on this host, pooled with the defaults.
    fn local(port: u16) -> (Endpoint, Options) {
        let ep = Endpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port,
            ssl_verify: true,
            proxy: None,
            http2: false,
        };
        let opts = Options {
            keepalive: true,
            keepalive_timeout: TIMEOUT,
            pool_size: 5,
            max_body: 1024,
        };
        (ep, opts)
    }

    fn exchange(port: u16, methods: &[&str]) -> Vec<Result<u16, String>> {
        let (ep, opts) = local(port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pool = Pool::new();
        runtime.block_on(async {
            let mut out = Vec::new();
            for method in methods {
                let req = Request::builder()
                    .method(*method)
                    .uri("/f")
                    .header("host", "fn")
                    .header("content-length", "4")
                    .body(Full::new(Bytes::from_static(b"body")))
                    .expect("request");
                let res = pool.send(&ep, &opts, req).await;
                out.push(res.map(|r| r.status).map_err(|e| e.to_string()));
            }
            out
        })
    }

    #[test]
    fn an_idempotent_request_meeting_a_closed_connection_is_sent_again() {
        let (port, seen) = function(OnReuse::Close);
        let results = exchange(port, &["GET", "PUT", "DELETE"]);
        assert!(results.iter().all(|r| r == &Ok(200)), "{results:?}");
        // each reuse met a close and went again on a new connection
        assert_eq!(seen.load(Ordering::SeqCst), 5, "{results:?}");
    }

    #[test]
    fn a_post_that_may_have_reached_the_function_is_never_sent_again() {
        let (port, seen) = function(OnReuse::Close);
        let results = exchange(port, &["POST", "POST", "POST"]);
        assert_eq!(results[0], Ok(200));
        let err = results[1]
            .as_ref()
            .expect_err("the reused connection closed");
        assert!(
            err.contains("connection closed before message completed"),
            "{err}"
        );
        assert!(!err.contains("sent again"), "{err}");
        // the broken connection left the pool: the next POST gets a new one
        assert_eq!(results[2], Ok(200));
        assert_eq!(seen.load(Ordering::SeqCst), 3, "{results:?}");
    }

    #[test]
    fn an_idempotent_request_is_not_sent_again_once_its_answer_began() {
        let (port, seen) = function(OnReuse::CloseMidAnswer);
        let results = exchange(port, &["GET", "GET"]);
        assert_eq!(results[0], Ok(200));
        assert!(results[1].is_err(), "{results:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    /// The function closes a pooled connection just before a POST is handed to it, and
    /// the connection's task sees the close before writing: hyper hands the request
    /// back, and it goes once more, on a new connection. Staged deterministically: the
    /// function signals on a socket, then closes, so that the runtime's next poll wakes
    /// this task (which checks the connection out and queues the request) before the
    /// connection's task.
    #[test]
    fn a_post_that_never_left_is_sent_again_on_a_new_connection() {
        use std::io::{BufRead, BufReader, Read, Write};
        use tokio::io::AsyncReadExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (signal_out, signal_in) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            let serve_one = |stream: &mut std::net::TcpStream| {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("read");
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().expect("length");
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                counter.fetch_add(1, Ordering::SeqCst);
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .expect("answer");
            };
            let (mut first, _) = listener.accept().expect("accept");
            serve_one(&mut first);
            close_rx.recv().expect("close");
            (&signal_out).write_all(b"x").expect("signal");
            std::thread::sleep(Duration::from_millis(20));
            drop(first);
            std::thread::sleep(Duration::from_millis(20));
            closed_tx.send(()).expect("closed");
            let (mut second, _) = listener.accept().expect("accept");
            serve_one(&mut second);
            std::thread::sleep(Duration::from_millis(200));
        });
        let (ep, opts) = local(port);
        let post = || {
            Request::builder()
                .method("POST")
                .uri("/f")
                .header("host", "fn")
                .header("content-length", "4")
                .body(Full::new(Bytes::from_static(b"body")))
                .expect("request")
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pool = Pool::new();
        let second = runtime.block_on(async {
            let first = pool.send(&ep, &opts, post()).await.map(|r| r.status);
            assert_eq!(first.map_err(|e| e.to_string()), Ok(200));
            signal_in.set_nonblocking(true).expect("nonblocking");
            let mut signal = tokio::net::UnixStream::from_std(signal_in).expect("signal");
            // the runtime takes in what is pending on both sockets
            tokio::time::sleep(Duration::from_millis(50)).await;
            // both the signal and the close arrive while the runtime waits here
            close_tx.send(()).expect("close");
            closed_rx.recv().expect("closed");
            signal.read_exact(&mut [0; 1]).await.expect("signal");
            pool.send(&ep, &opts, post()).await.map(|r| r.status)
        });
        assert_eq!(second.map_err(|e| e.to_string()), Ok(200));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2,
            "the function saw each POST once"
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
