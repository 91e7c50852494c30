//! Streamed answers: the function's body handed to Lua chunk by chunk as it arrives,
//! with backpressure.
//!
//! An answer whose body is not all there when its head is (see [`first_window`]) is
//! handed over as a head, the bytes read so far and a [`Reader`]; the rest of the body
//! flows through a [`Channel`] that one task fills from a [`Source`] ([`pump`]) and the
//! nginx thread empties ([`Reader::next`], behind `awsl_stream_next`).
//!
//! Bound: the pump reads the next piece from its source only while less than
//! [`HIGH_WATER`] (64 KiB) waits for Lua, so the channel holds at most 64 KiB plus one
//! piece of the source (hyper hands over what one socket read gave, at most its read
//! buffer). Lua takes what waits (up to [`LEND_MAX`] at a time) only after its previous
//! write to the client was flushed, so a slow client slows the reads from the function
//! down to its own pace, as nginx's `proxy_buffering off` does.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::bridge::tickets::Outcome;

/// The pump stops reading from the source while this much waits for Lua.
pub(crate) const HIGH_WATER: usize = 64 * 1024;
/// The most Lua is lent at a time: several queued pieces are joined up to this size, so
/// that a body that arrives in small pieces is not written to the client piece by piece.
pub(crate) const LEND_MAX: usize = 64 * 1024;
/// An answer whose body ends within its first this many bytes, all read by the time the
/// head is, is handed over whole (one crossing, as before streaming existed).
pub(crate) const WINDOW: usize = 64 * 1024;

/// Where a streamed body comes from: the function's HTTP body (`client::BodyReader`), or
/// a decoder in front of one (the Invoke API's event stream). Poll-based, like
/// `http_body::Body::poll_frame`, so that [`first_window`] can take what is ready
/// without waiting and without losing a piece half read.
pub trait Source: Send + Unpin {
    /// The next piece of the body; `None` at its end; `Err` with a cause for the error
    /// log (no secrets) when the body broke off.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>>;

    /// Once the body ended or broke off: what the function logged, for the error log
    /// (InvokeWithResponseStream sends the log tail last, after the body).
    fn end_log(&mut self) -> Option<String> {
        None
    }

    /// Once the body ended: finishes what is below it (a decoder reads its HTTP body to
    /// the end, so that the connection goes back to the pool). Waited for at most
    /// [`FINISH_WAIT`], after the end was handed to Lua.
    fn poll_finish(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// The longest a source may take to finish after its body ended (see
/// [`Source::poll_finish`]); past it, it is dropped (and its connection closed).
pub(crate) const FINISH_WAIT: Duration = Duration::from_secs(1);

/// How a stream ended, as Lua learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Done,
    /// Done, with the function's log for the error log at info level.
    Logged(String),
    Failed(String),
}

/// What [`Reader::next`] gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Body bytes, never empty.
    Chunk(Bytes),
    /// Nothing yet: the ticket's id comes on the pump when there is.
    Again,
    End(End),
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    queued: usize,
    end: Option<End>,
    /// Lua got `Again` and waits for the ticket's id on the pump.
    lua_waits: bool,
    /// Lua gave up (client gone, timeout): the pump drops the source.
    cancelled: bool,
    /// When Lua last asked, for [`Reader::abandoned`].
    last_asked: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    /// Lua took something or cancelled: the pump looks again.
    changed: Notify,
}

/// The producer's end, held by the task that runs [`pump`].
pub struct Channel(Arc<Shared>);

/// Lua's end (kept in the ticket table). Dropping it cancels the stream, so a reader
/// that is forgotten (expired, cancelled, the table stopped) never leaves the pump
/// waiting for room.
pub struct Reader(Arc<Shared>);

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// A new stream's two ends.
pub fn channel() -> (Channel, Reader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        changed: Notify::new(),
    });
    (Channel(shared.clone()), Reader(shared))
}

impl Reader {
    /// Takes what waits (joined up to [`LEND_MAX`]), or says that nothing does yet
    /// (`Again`: the pump's wake-up follows), or how the stream ended.
    pub fn next(&self) -> Next {
        let mut st = self.0.state.lock();
        st.last_asked = Some(Instant::now());
        let Some(first) = st.queue.pop_front() else {
            return match &st.end {
                Some(end) => Next::End(end.clone()),
                None => {
                    st.lua_waits = true;
                    Next::Again
                }
            };
        };
        let mut out = first;
        // Joined only when the next piece fits: else `out` goes as it is, uncopied.
        if st
            .queue
            .front()
            .is_some_and(|next| out.len() + next.len() <= LEND_MAX)
        {
            // `queued` still counts `out`: it is all that waits.
            let mut joined = BytesMut::with_capacity(LEND_MAX.min(st.queued));
            joined.extend_from_slice(&out);
            while let Some(next) = st.queue.front() {
                if joined.len() + next.len() > LEND_MAX {
                    break;
                }
                joined.extend_from_slice(next);
                st.queue.pop_front();
            }
            out = joined.freeze();
        }
        st.queued -= out.len();
        drop(st);
        self.0.changed.notify_one();
        Next::Chunk(out)
    }

    /// Lua gave up: the pump drops the source (and the function's connection) at once.
    pub fn cancel(&self) {
        self.0.state.lock().cancelled = true;
        self.0.changed.notify_one();
    }

    /// Lua took the answer's head: from now on it asks for the rest, so a stream it
    /// stops asking for (its request was ended while it flushed the head) counts as
    /// [`abandoned`](Self::abandoned) too.
    pub fn head_taken(&self) {
        self.0.state.lock().last_asked = Some(Instant::now());
    }

    /// Whether something (bytes or the end) has waited for Lua, untaken, for longer
    /// than `max` since Lua last asked or took the head: the request that read this
    /// stream is gone without cancelling it.
    pub fn abandoned(&self, now: Instant, max: Duration) -> bool {
        let st = self.0.state.lock();
        let waiting = !st.queue.is_empty() || st.end.is_some();
        waiting && !st.lua_waits && st.last_asked.is_some_and(|at| now.duration_since(at) > max)
    }

    /// The runtime stopped under the stream: it ends with `cause`.
    pub fn fail(&self, cause: String) {
        let mut st = self.0.state.lock();
        if st.end.is_none() {
            st.end = Some(End::Failed(cause));
        }
        st.lua_waits = false;
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl Channel {
    /// Waits until there is room (`true`) or Lua cancelled (`false`).
    async fn room(&self) -> bool {
        loop {
            {
                let st = self.0.state.lock();
                if st.cancelled {
                    return false;
                }
                if st.queued < HIGH_WATER {
                    return true;
                }
            }
            self.0.changed.notified().await;
        }
    }

    async fn cancelled(&self) {
        loop {
            if self.0.state.lock().cancelled {
                return;
            }
            self.0.changed.notified().await;
        }
    }

    /// Queues `chunk` (or the end); returns whether Lua waits to be woken.
    fn put(&self, chunk: Option<Bytes>, end: Option<End>) -> bool {
        let mut st = self.0.state.lock();
        if let Some(chunk) = chunk {
            st.queued += chunk.len();
            st.queue.push_back(chunk);
        }
        if let Some(end) = end {
            st.end.get_or_insert(end);
        }
        std::mem::take(&mut st.lua_waits)
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        (**self).poll_chunk(cx)
    }

    fn end_log(&mut self) -> Option<String> {
        (**self).end_log()
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        (**self).poll_finish(cx)
    }
}

/// The rest of a streamed answer: what the request's task runs once the ticket holds
/// the head (`Rest::run`).
pub struct Rest<'a> {
    chan: Channel,
    source: Box<dyn Source + 'a>,
    idle: Duration,
}

impl Rest<'_> {
    /// Runs [`pump`] to the stream's end; `wake` posts Lua's semaphore.
    pub async fn run(self, wake: impl Fn()) {
        pump(self.chan, self.source, self.idle, wake).await;
    }
}

/// An answer whose head is there, and whose body comes from `source`: handed over
/// whole (`Outcome::Response`) when the body ends within what is ready now (up to
/// [`WINDOW`]), else streamed (see [`stream_on`]). A body that breaks off before
/// anything was handed over is a 502 with the cause. `idle` bounds the silence between
/// pieces (`stream_idle_timeout`).
pub async fn answer<'a>(
    status: u16,
    head: Vec<u8>,
    mut source: Box<dyn Source + 'a>,
    idle: Duration,
) -> (Outcome, Option<Rest<'a>>) {
    let (window, end) = first_window(&mut source, false).await;
    match end {
        Some(End::Done | End::Logged(_)) => (
            Outcome::Response {
                status,
                head,
                body: window.freeze(),
                log: None,
            },
            None,
        ),
        Some(End::Failed(cause)) => (Outcome::error(502, cause), None),
        None => stream_on(status, head, window.freeze(), source, idle),
    }
}

/// A streamed answer: `Outcome::Stream` with `first`, the bytes read so far, and the
/// [`Rest`] of the body to run.
pub fn stream_on<'a>(
    status: u16,
    head: Vec<u8>,
    first: Bytes,
    source: Box<dyn Source + 'a>,
    idle: Duration,
) -> (Outcome, Option<Rest<'a>>) {
    let (chan, reader) = channel();
    let outcome = Outcome::Stream {
        status,
        head,
        first,
        reader: Some(reader),
    };
    (outcome, Some(Rest { chan, source, idle }))
}

/// What a source had ready right after the head: up to [`WINDOW`] bytes, and whether
/// that was the whole body (then the answer is handed over whole). The connection's
/// task gets one turn to read what already arrived, so a body sent with its head is
/// seen as such; with `turn_per_piece`, one turn after each piece (hyper hands a
/// chunked body over one chunk per turn, and Lambda sends each event of a streamed
/// invocation as a chunk of its own). Nothing here waits for the function.
pub async fn first_window<S: Source>(
    source: &mut S,
    turn_per_piece: bool,
) -> (BytesMut, Option<End>) {
    let mut window = BytesMut::new();
    let mut yielded = false;
    loop {
        let ready = poll_fn(|cx| Poll::Ready(source.poll_chunk(cx))).await;
        match ready {
            Poll::Ready(None) => return (window, Some(End::Done)),
            Poll::Ready(Some(Err(cause))) => return (window, Some(End::Failed(cause))),
            Poll::Ready(Some(Ok(chunk))) => {
                window.extend_from_slice(&chunk);
                if window.len() > WINDOW {
                    return (window, None);
                }
                yielded = yielded && !turn_per_piece;
            }
            Poll::Pending if !yielded => {
                yielded = true;
                tokio::task::yield_now().await;
            }
            Poll::Pending => return (window, None),
        }
    }
}

/// Moves the body from `source` into the channel until it ends, fails, stays silent
/// for `idle`, or Lua cancels. `wake` tells the pump to post Lua's semaphore (the
/// ticket's id). Reading stops while the channel is full ([`HIGH_WATER`]); the idle
/// timer runs only while waiting for the function, never while waiting for Lua.
pub async fn pump<S: Source>(chan: Channel, mut source: S, idle: Duration, wake: impl Fn()) {
    loop {
        if !chan.room().await {
            return;
        }
        let got = tokio::select! {
            biased;
            () = chan.cancelled() => return,
            got = tokio::time::timeout(idle, poll_fn(|cx| source.poll_chunk(cx))) => got,
        };
        let (chunk, end) = match got {
            Ok(Some(Ok(chunk))) if chunk.is_empty() => continue,
            Ok(Some(Ok(chunk))) => (Some(chunk), None),
            Ok(None) => match source.end_log() {
                Some(log) => (None, Some(End::Logged(log))),
                None => (None, Some(End::Done)),
            },
            // One error-log line: the cause, then what the function logged.
            Ok(Some(Err(cause))) => match source.end_log() {
                Some(log) => (None, Some(End::Failed(format!("{cause}; {log}")))),
                None => (None, Some(End::Failed(cause))),
            },
            Err(_) => (
                None,
                Some(End::Failed(format!(
                    "the function sent nothing for {} ms (stream_idle_timeout)",
                    idle.as_millis()
                ))),
            ),
        };
        let done = matches!(end, Some(End::Done | End::Logged(_)));
        let ended = end.is_some();
        if chan.put(chunk, end) {
            wake();
        }
        if done {
            // Lua has the end already; the client's answer does not wait for this.
            let _ = tokio::time::timeout(FINISH_WAIT, poll_fn(|cx| source.poll_finish(cx))).await;
        }
        if ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source fed by the test through a tokio channel.
    struct Fed(tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, String>>);

    impl Source for Fed {
        fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
            self.0.poll_recv(cx)
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_stream_never_asked_for_after_its_head_is_abandoned() {
        let (chan, reader) = channel();
        chan.put(Some(Bytes::from_static(b"piece")), None);
        let max = Duration::from_secs(300);
        let later = Instant::now() + max * 2;
        assert!(!reader.abandoned(later, max), "its head was not taken yet");
        // Lua took the head, then its request ended before it asked for more.
        reader.head_taken();
        assert!(!reader.abandoned(Instant::now(), max));
        assert!(reader.abandoned(later, max));
    }

    #[test]
    fn a_body_sent_with_its_head_is_one_window() {
        runtime().block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(Ok(Bytes::from_static(b"hello "))).unwrap();
            tx.send(Ok(Bytes::from_static(b"world"))).unwrap();
            drop(tx);
            let (window, end) = first_window(&mut Fed(rx), false).await;
            assert_eq!(&window[..], b"hello world");
            assert_eq!(end, Some(End::Done));
        });
    }

    #[test]
    fn a_body_still_coming_streams() {
        runtime().block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(Ok(Bytes::from_static(b"first"))).unwrap();
            let mut source = Fed(rx);
            let (window, end) = first_window(&mut source, false).await;
            assert_eq!((&window[..], end), (&b"first"[..], None));
            // A body over the window streams even if all of it is there.
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            for _ in 0..3 {
                tx.send(Ok(Bytes::from(vec![b'x'; WINDOW / 2]))).unwrap();
            }
            drop(tx);
            let (window, end) = first_window(&mut Fed(rx), false).await;
            assert!(window.len() > WINDOW && end.is_none());
        });
    }

    #[test]
    fn the_pump_stops_reading_while_lua_holds_the_high_water_mark() {
        runtime().block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let (chan, reader) = channel();
            let wakes = Arc::new(AtomicUsize::new(0));
            let w = wakes.clone();
            let task = tokio::spawn(pump(chan, Fed(rx), Duration::from_secs(5), move || {
                w.fetch_add(1, Ordering::SeqCst);
            }));
            assert_eq!(reader.next(), Next::Again);
            for _ in 0..10 {
                tx.send(Ok(Bytes::from(vec![b'x'; 16 * 1024]))).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(wakes.load(Ordering::SeqCst), 1, "Lua woken once");
            // 4 x 16 KiB reach the mark; the rest stays in the source.
            assert_eq!(reader.0.state.lock().queued, HIGH_WATER);
            let Next::Chunk(c) = reader.next() else {
                panic!("a chunk")
            };
            assert_eq!(c.len(), LEND_MAX, "pieces joined up to the lend size");
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(reader.0.state.lock().queued, HIGH_WATER);
            let mut total = c.len();
            drop(tx);
            loop {
                match reader.next() {
                    Next::Chunk(c) => total += c.len(),
                    Next::Again => tokio::time::sleep(Duration::from_millis(1)).await,
                    Next::End(end) => {
                        assert_eq!(end, End::Done);
                        break;
                    }
                }
            }
            assert_eq!(total, 160 * 1024);
            task.await.unwrap();
        });
    }

    #[test]
    fn silence_past_the_idle_timeout_fails_the_stream() {
        runtime().block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let (chan, reader) = channel();
            let task = tokio::spawn(pump(chan, Fed(rx), Duration::from_millis(500), || {}));
            tx.send(Ok(Bytes::from_static(b"a"))).unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(reader.next(), Next::Chunk(Bytes::from_static(b"a")));
            tokio::time::sleep(Duration::from_millis(600)).await;
            match reader.next() {
                Next::End(End::Failed(cause)) => {
                    assert!(cause.contains("sent nothing for 500 ms"), "{cause}")
                }
                other => panic!("{other:?}"),
            }
            task.await.unwrap();
            drop(tx);
        });
    }

    /// A source of one piece and an end (or a failure), and a log it gives after.
    struct Logged(Vec<Result<Bytes, String>>);

    impl Source for Logged {
        fn poll_chunk(&mut self, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
            Poll::Ready(if self.0.is_empty() {
                None
            } else {
                Some(self.0.remove(0))
            })
        }

        fn end_log(&mut self) -> Option<String> {
            Some("function log tail: x".into())
        }
    }

    #[test]
    fn the_sources_log_comes_with_the_end() {
        runtime().block_on(async {
            for (pieces, end) in [
                (
                    vec![Ok(Bytes::from_static(b"a"))],
                    End::Logged("function log tail: x".into()),
                ),
                (
                    vec![Ok(Bytes::from_static(b"a")), Err("cut".into())],
                    End::Failed("cut; function log tail: x".into()),
                ),
            ] {
                let (chan, reader) = channel();
                pump(chan, Logged(pieces), Duration::from_secs(5), || {}).await;
                assert_eq!(reader.next(), Next::Chunk(Bytes::from_static(b"a")));
                assert_eq!(reader.next(), Next::End(end));
            }
        });
    }

    #[test]
    fn dropping_the_reader_ends_the_pump_and_drops_the_source() {
        runtime().block_on(async {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, String>>();
            let (chan, reader) = channel();
            let task = tokio::spawn(pump(chan, Fed(rx), Duration::from_secs(60), || {}));
            tokio::time::sleep(Duration::from_millis(1)).await;
            drop(reader);
            task.await.unwrap();
            assert!(tx.is_closed(), "the source was dropped");
        });
    }
}
