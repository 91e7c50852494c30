//! HTTP/2 to the function (route field `http2`): multiplexed connections per endpoint.
//!
//! Negotiated by ALPN over TLS only; when the function picks http/1.1 the exchange goes
//! on the HTTP/1.1 pool. An endpoint keeps one connection and opens another only when
//! every open one carries [`STREAMS_PER_CONN`] calls. Calls over the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` wait in h2's queue for a free stream, which costs
//! latency, never an error.
//!
//! The h2 crate directly, not hyper's `client::conn::http2` over it: hyper spawns a task
//! per request that waits for the answer and hands it to the caller, sized like its
//! largest future (the connection's), 2.7 KB per call in flight (heaptrack, scale
//! bench), plus a wake-up and a channel send per request. Here the call's own task
//! awaits h2's response future.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::h2::client::{self, ResponseFuture, SendRequest};
use ::h2::RecvStream;
use bytes::Bytes;
use http::header::{HeaderName, CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

use super::{ClientError, Endpoint, MAX_HEAD_BYTES};

/// Calls in flight on one connection before another is opened: nginx's default
/// `http2_max_concurrent_streams` and CloudFront's, and above the 100 that RFC 9113
/// recommends as the least a server should allow.
pub(crate) const STREAMS_PER_CONN: usize = 128;

pub(super) type Sender = SendRequest<Bytes>;

/// A connection just opened: its sender, and the flag its task sets when it ends.
pub(super) struct Opened {
    sender: Sender,
    going_away: Arc<AtomicBool>,
}

/// One HTTP/2 connection: clones of its sender share it.
pub(super) struct H2Conn {
    sender: Sender,
    /// Calls on it right now.
    streams: Arc<AtomicUsize>,
    /// A call on it failed in a way that ends the connection (GOAWAY, reset, EOF), or
    /// its task ended: nothing new goes on it, even while its other streams finish.
    going_away: Arc<AtomicBool>,
    opened: Instant,
    last_used: Instant,
}

impl H2Conn {
    fn usable(&self) -> bool {
        !self.going_away.load(Relaxed)
    }
}

/// A call's stream on a connection; the slot is given back when it is dropped.
pub(super) struct H2Stream {
    pub(super) sender: Sender,
    streams: Arc<AtomicUsize>,
    going_away: Arc<AtomicBool>,
}

impl H2Stream {
    /// Keeps later calls off this connection.
    pub(super) fn retire(&self) {
        self.going_away.store(true, Relaxed);
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Relaxed);
    }
}

/// One endpoint's HTTP/2 connections.
#[derive(Default)]
pub(super) struct H2List {
    conns: Vec<H2Conn>,
    /// A connection (offering h2) is being opened: other calls wait for it rather
    /// than open one each.
    connecting: bool,
    /// The last connection opened got http/1.1 from ALPN: calls do not wait for a
    /// connect, they use the HTTP/1.1 pool.
    pub(super) refused: bool,
    pub(super) opened: Arc<Notify>,
    /// `keepalive_timeout` of the route that checked out last.
    keepalive_timeout: Duration,
}

/// What a call does next on an HTTP/2 endpoint.
pub(super) enum Next {
    Stream(H2Stream),
    /// Wait for the connect under way (then check out again).
    Wait(Arc<Notify>),
    /// Open a connection (this call is the one connecting).
    Connect,
    /// Use the HTTP/1.1 pool.
    Http1,
}

impl H2List {
    /// A stream on the least busy usable connection with a free slot. `opened_after`:
    /// for a retry, only a connection opened after the failure (the others may be going
    /// away too, unnoticed yet), or the one being opened: the calls that failed
    /// together share one new connection.
    pub(super) fn checkout(
        &mut self,
        now: Instant,
        opened_after: Option<Instant>,
        keepalive_timeout: Duration,
    ) -> Next {
        self.keepalive_timeout = keepalive_timeout;
        self.conns.retain(H2Conn::usable);
        let best = self
            .conns
            .iter_mut()
            .filter(|c| c.streams.load(Relaxed) < STREAMS_PER_CONN)
            .filter(|c| opened_after.is_none_or(|t| c.opened > t))
            .min_by_key(|c| c.streams.load(Relaxed));
        if let Some(conn) = best {
            conn.streams.fetch_add(1, Relaxed);
            conn.last_used = now;
            return Next::Stream(H2Stream {
                sender: conn.sender.clone(),
                streams: conn.streams.clone(),
                going_away: conn.going_away.clone(),
            });
        }
        if self.refused {
            return Next::Http1;
        }
        if self.connecting {
            return Next::Wait(self.opened.clone());
        }
        self.connecting = true;
        Next::Connect
    }

    /// Ends this call's connect with a new h2 connection, and takes a stream on it.
    pub(super) fn connected(&mut self, opened: Opened, now: Instant) -> H2Stream {
        self.connect_failed();
        self.refused = false;
        let conn = H2Conn {
            sender: opened.sender,
            streams: Arc::new(AtomicUsize::new(1)),
            going_away: opened.going_away,
            opened: now,
            last_used: now,
        };
        let stream = H2Stream {
            sender: conn.sender.clone(),
            streams: conn.streams.clone(),
            going_away: conn.going_away.clone(),
        };
        self.conns.push(conn);
        stream
    }

    /// The connect of this call ended: waiting calls check out again.
    pub(super) fn connect_failed(&mut self) {
        self.connecting = false;
        self.opened.notify_waiters();
    }

    /// Connections with no call for `keepalive_timeout` are closed (dropping the last
    /// sender ends h2's connection task), and so are dead ones.
    pub(super) fn sweep(&mut self, now: Instant) {
        self.conns.retain(|c| {
            c.usable()
                && (c.streams.load(Relaxed) > 0
                    || now.duration_since(c.last_used) < self.keepalive_timeout)
        });
    }

    /// Open connections with no call on them.
    pub(super) fn idle(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.streams.load(Relaxed) == 0)
            .count()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.conns.is_empty() && !self.connecting
    }
}

/// Starts HTTP/2 on a connection whose TLS handshake picked `h2`. Takes any connected
/// stream, so that the handshake may happen elsewhere. Window and buffer sizes are
/// hyper's defaults, which this client used before.
pub(super) async fn handshake<T>(ep: &Endpoint, io: T) -> Result<Opened, ClientError>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = client::Builder::new()
        .initial_window_size(2 * 1024 * 1024)
        .initial_connection_window_size(5 * 1024 * 1024)
        .max_send_buffer_size(1024 * 1024)
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| ClientError::Unreachable(format!("connecting to {ep} failed: {e}")))?;
    let going_away = Arc::new(AtomicBool::new(false));
    let ended = going_away.clone();
    tokio::spawn(async move {
        // Ends when the peer closes, or when the last sender and stream are dropped.
        let _ = conn.await;
        ended.store(true, Relaxed);
    });
    Ok(Opened { sender, going_away })
}

/// Why a request on a stream failed, and whether it provably never left: h2 refused it
/// before queueing it (the connection was closing or gone).
pub(super) struct SendError {
    pub(super) error: ::h2::Error,
    pub(super) unsent: bool,
}

/// Sends `req` on `stream` and waits for the answer's head. The body is queued whole
/// (it is in memory already); h2 sends it as the function's flow-control window allows.
pub(super) async fn send(
    stream: &mut H2Stream,
    req: Request<Full<Bytes>>,
) -> Result<Response<RecvStream>, SendError> {
    let unsent = |error| SendError {
        error,
        unsent: true,
    };
    let (mut parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes());
    strip_connection_headers(&mut parts.headers);
    if !body.is_empty() || has_payload_semantics(&parts.method) {
        parts
            .headers
            .entry(CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(body.len()));
    }
    poll_fn(|cx| stream.sender.poll_ready(cx))
        .await
        .map_err(unsent)?;
    let head = Request::from_parts(parts, ());
    let (response, mut out): (ResponseFuture, _) = stream
        .sender
        .send_request(head, body.is_empty())
        .map_err(unsent)?;
    if !body.is_empty() {
        out.send_data(body, true).map_err(|error| SendError {
            error,
            unsent: false,
        })?;
    }
    response.await.map_err(|error| SendError {
        error,
        unsent: false,
    })
}

/// The hop-by-hop headers HTTP/2 forbids (RFC 9113 8.2.2), which h2 would refuse the
/// request for: dropped, with those the Connection header names, as hyper does.
fn strip_connection_headers(headers: &mut HeaderMap) {
    const HOP: [HeaderName; 3] = [
        TRANSFER_ENCODING,
        UPGRADE,
        HeaderName::from_static("keep-alive"),
    ];
    for name in &HOP {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
    if headers.get(TE).is_some_and(|te| te != "trailers") {
        headers.remove(TE);
    }
    if let Some(connection) = headers.remove(CONNECTION) {
        if let Ok(names) = connection.to_str() {
            for name in names.split(',') {
                headers.remove(name.trim());
            }
        }
    }
}

/// Methods whose empty body still gets `content-length: 0` (as hyper and nginx send).
fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

/// HTTP/2 takes the authority from the URI (`:authority`), not from a Host header.
pub(super) fn absolute(req: &mut Request<Full<Bytes>>) -> Result<(), ClientError> {
    let bad = |e: &dyn std::fmt::Display| ClientError::BadResponse(format!("bad request URI: {e}"));
    let Some(host) = req.headers_mut().remove(HOST) else {
        return Ok(());
    };
    let host = host.to_str().map_err(|e| bad(&e))?;
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri: Uri = format!("https://{host}{path}")
        .parse()
        .map_err(|e| bad(&e))?;
    *req.uri_mut() = uri;
    Ok(())
}

/// HTTP/1.1 form again (Host header, origin-form target), for a retry that may go on
/// an HTTP/1.1 connection.
pub(super) fn origin_form(req: &mut Request<Full<Bytes>>) {
    let Some(authority) = req.uri().authority().cloned() else {
        return;
    };
    if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
        req.headers_mut().insert(HOST, host);
    }
    let path = req.uri().path_and_query().cloned();
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = path;
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

/// Whether a failed call goes out once more (on another connection), with `copy` (kept
/// from the first attempt): when h2 never took it (`unsent`), when the function
/// provably did not process it, or when it is idempotent and the connection ended
/// before its answer (an HTTP/2 stream fails before its response head or not at all).
/// At most once.
pub(super) fn retry(
    copy: Option<Request<Full<Bytes>>>,
    retried: bool,
    idempotent: bool,
    err: &SendError,
) -> Option<Request<Full<Bytes>>> {
    if retried {
        return None;
    }
    copy.filter(|_| err.unsent || unprocessed(&err.error) || (idempotent && closed(&err.error)))
}

/// The error ended one stream, not the connection (RST_STREAM): other calls may still
/// use it.
pub(super) fn stream_only(err: &::h2::Error) -> bool {
    err.is_reset()
}

/// The function provably did not process the stream, so that even a POST may go again
/// (RFC 9113 8.7): it refused it (`REFUSED_STREAM`), or it was above the last stream
/// of a graceful GOAWAY (h2 fails those, and only those, with a remote NO_ERROR GOAWAY;
/// a connection that ends after a GOAWAY fails the streams it still had with an I/O
/// error).
fn unprocessed(h2: &::h2::Error) -> bool {
    let refused = h2.is_reset() && h2.reason() == Some(::h2::Reason::REFUSED_STREAM);
    let above_goaway = h2.is_go_away() && h2.reason() == Some(::h2::Reason::NO_ERROR);
    h2.is_remote() && (refused || above_goaway)
}

/// The connection ended or broke under the stream.
fn closed(h2: &::h2::Error) -> bool {
    h2.get_io().is_some_and(|io| super::broken(io.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_takes_the_host_header() {
        let mut req = Request::builder()
            .uri("/fn/x?a=b")
            .header(HOST, "fn.example:8443")
            .body(Full::new(Bytes::new()))
            .unwrap();
        absolute(&mut req).unwrap();
        assert_eq!(req.uri(), "https://fn.example:8443/fn/x?a=b");
        assert!(req.headers().get(HOST).is_none());
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_with_those_connection_names() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("x-amz-date", "20261204T000000Z"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_connection_headers(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-amz-date"]);

        let mut trailers = HeaderMap::new();
        trailers.insert(TE, HeaderValue::from_static("trailers"));
        strip_connection_headers(&mut trailers);
        assert_eq!(trailers.len(), 1);
    }
}
