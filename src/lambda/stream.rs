//! InvokeWithResponseStream's answer, decoded piece by piece.
//!
//! Lambda frames the function's streamed payload as an AWS event stream (whatever the
//! HTTP `Content-Type` says: that header is the function's own stream content type).
//! `PayloadChunk` events carry the payload's bytes; `InvokeComplete` ends it, with an
//! `ErrorCode`/`ErrorDetails` when the function failed and a `LogResult` with
//! `LogType: Tail`. Frames are decoded by aws-smithy-eventstream (lengths, CRCs,
//! headers); this module only reads their meaning.
//!
//! With an API Gateway payload format, the payload starts with the HTTP integration
//! prelude `awslambda.HttpResponseStream.from()` writes: a JSON object (`statusCode`,
//! `headers`, `cookies`) and 8 NUL bytes, then the body. The prelude, its NULs and the
//! frames around them may be split anywhere: bytes are fed as they come, and
//! [`Decoder::next`] hands out what is complete.

use std::collections::VecDeque;
use std::task::{Context, Poll};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue as FrameValue, Message};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::HeaderMap;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::response;
use crate::config::PayloadFormat;
use crate::stream::Source;

/// The event stream specification's largest message (16 MiB); a longer frame is
/// refused before it is buffered. Lambda's chunks are far smaller.
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The largest HTTP integration prelude accepted (its JSON holds only the head).
pub(crate) const MAX_PRELUDE: usize = 64 * 1024;
/// The content type that announces the HTTP integration prelude.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// The NUL bytes that end the prelude.
const PRELUDE_END: usize = 8;

/// A piece of the client's response.
#[derive(Debug, PartialEq)]
pub enum Part {
    /// The status and headers; comes before any `Data`.
    Head {
        status: u16,
        headers: HeaderMap,
    },
    Data(Bytes),
    /// The function completed; `log` is its escaped log tail (`log_type: Tail`).
    End {
        log: Option<String>,
    },
    /// The answer failed: `status` is for the client if no `Head` was handed out yet;
    /// `message` is for the error log; `function_failed` when the function raised the
    /// error (InvokeComplete's `ErrorCode`) rather than the stream breaking.
    Error {
        status: u16,
        message: String,
        log: Option<String>,
        function_failed: bool,
    },
}

enum Body {
    /// Waiting for the prelude: the payload so far.
    Prelude(BytesMut),
    /// No prelude: the head is this content type, handed out with the first bytes (or
    /// at the end), so that a function failing before it wrote anything is a 5xx.
    Plain(HeaderValue),
    Streaming,
    Finished,
}

/// Bytes of the HTTP answer in, [`Part`]s out.
pub struct Decoder {
    frames: MessageFrameDecoder,
    /// Bytes not yet decoded into frames.
    pending: BytesMut,
    /// The length of the frame at the head of `pending` once its prelude was checked.
    frame_len: Option<usize>,
    body: Body,
    ready: VecDeque<Part>,
    function_error_status: u16,
}

impl Decoder {
    /// `content_type` is the HTTP answer's `Content-Type` (the function's stream content
    /// type). With an API Gateway format the payload is expected to start with the
    /// prelude, unless that type names something else: a function that set its own
    /// content type and wrote no prelude.
    pub fn new(
        format: PayloadFormat,
        content_type: Option<&HeaderValue>,
        function_error_status: u16,
    ) -> Self {
        let named = content_type
            .filter(|v| {
                let v = v.as_bytes();
                !v.is_empty()
                    && !v.eq_ignore_ascii_case(EVENT_STREAM.as_bytes())
                    && !v.eq_ignore_ascii_case(HTTP_INTEGRATION.as_bytes())
            })
            .cloned();
        let is_integration = content_type.is_some_and(|v| {
            v.as_bytes()
                .eq_ignore_ascii_case(HTTP_INTEGRATION.as_bytes())
        });
        let body = match (format, named) {
            (PayloadFormat::Raw, named) => {
                Body::Plain(named.unwrap_or(HeaderValue::from_static("application/octet-stream")))
            }
            (_, Some(named)) if !is_integration => Body::Plain(named),
            _ => Body::Prelude(BytesMut::new()),
        };
        Self {
            frames: MessageFrameDecoder::new(),
            pending: BytesMut::new(),
            frame_len: None,
            body,
            ready: VecDeque::new(),
            function_error_status,
        }
    }

    /// Adds bytes of the HTTP answer's body.
    pub fn push(&mut self, bytes: &[u8]) {
        if !matches!(self.body, Body::Finished) {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// The next complete part, if any; `None` asks for more bytes (or [`finish`]).
    ///
    /// [`finish`]: Decoder::finish
    pub fn next_part(&mut self) -> Option<Part> {
        loop {
            if let Some(part) = self.ready.pop_front() {
                return Some(part);
            }
            if matches!(self.body, Body::Finished) {
                return None;
            }
            match self.next_frame() {
                Ok(Some(message)) => self.on_message(&message),
                Ok(None) => return None,
                Err(message) => self.fail(502, message, None),
            }
        }
    }

    /// The HTTP answer ended: the last part, unless the stream had ended already.
    pub fn finish(&mut self) -> Option<Part> {
        if let Some(part) = self.next_part() {
            self.ready.push_front(part);
            return self.ready.pop_front();
        }
        if matches!(self.body, Body::Finished) {
            return None;
        }
        let message = if self.pending.is_empty() && self.frame_len.is_none() {
            "the response stream ended without InvokeComplete"
        } else {
            "the response stream ended inside an event"
        };
        self.fail(502, message.to_owned(), None);
        self.ready.pop_front()
    }

    /// The HTTP answer broke off (`cause`, for the log): the stream fails, unless it had
    /// ended already.
    pub fn abort(&mut self, cause: String) {
        // What arrived before the break still counts.
        let mut before = VecDeque::new();
        while let Some(part) = self.next_part() {
            before.push_back(part);
        }
        self.ready = before;
        if !matches!(self.body, Body::Finished) {
            self.fail(502, cause, None);
        }
    }

    /// Whether a `Head` was handed out (a failure can no longer change the status).
    pub fn head_sent(&self) -> bool {
        matches!(self.body, Body::Streaming)
    }

    fn next_frame(&mut self) -> Result<Option<Message>, String> {
        if self.frame_len.is_none() {
            if self.pending.len() < 4 {
                return Ok(None);
            }
            let len = (&self.pending[..4]).get_u32() as usize;
            if len > MAX_FRAME {
                return Err(format!(
                    "the response stream has an event of {len} bytes, over {MAX_FRAME}"
                ));
            }
            self.frame_len = Some(len);
        }
        match self.frames.decode_frame(&mut self.pending) {
            Ok(DecodedFrame::Complete(message)) => {
                self.frame_len = None;
                Ok(Some(message))
            }
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Err(e) => Err(format!(
                "the response stream is not a valid event stream: {e}"
            )),
        }
    }

    fn on_message(&mut self, message: &Message) {
        let header = |name: &str| {
            message
                .headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| match h.value() {
                    FrameValue::String(s) => Some(s.as_str().to_owned()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        match header(":message-type").as_str() {
            "event" => match header(":event-type").as_str() {
                "PayloadChunk" => self.on_payload(message.payload().clone()),
                "InvokeComplete" => self.on_complete(message.payload()),
                // An event type added later: nothing of the payload.
                _ => {}
            },
            "exception" => {
                let detail: Detail = serde_json::from_slice(message.payload()).unwrap_or_default();
                let text = detail.message.unwrap_or_default();
                let line = format!(
                    "Lambda Invoke API stream exception {}: {text}",
                    header(":exception-type")
                );
                self.fail(502, response::one_line(&line), None);
            }
            _ => {
                // `:message-type: error`, or a frame that is not an event at all.
                let line = format!(
                    "Lambda Invoke API stream error {}: {}",
                    header(":error-code"),
                    header(":error-message")
                );
                self.fail(502, response::one_line(&line), None);
            }
        }
    }

    fn on_payload(&mut self, bytes: Bytes) {
        match &mut self.body {
            Body::Prelude(seen) => {
                if seen.len() + bytes.len() > MAX_PRELUDE + PRELUDE_END && !has_nul(seen, &bytes) {
                    let message = format!(
                        "the function's HTTP integration prelude is longer than {MAX_PRELUDE} \
                         bytes or not followed by 8 NUL bytes"
                    );
                    return self.fail(502, message, None);
                }
                seen.extend_from_slice(&bytes);
                self.try_prelude();
            }
            Body::Plain(content_type) => {
                if bytes.is_empty() {
                    return;
                }
                let content_type = content_type.clone();
                self.head(200, plain_headers(content_type));
                self.ready.push_back(Part::Data(bytes));
            }
            Body::Streaming => {
                if !bytes.is_empty() {
                    self.ready.push_back(Part::Data(bytes));
                }
            }
            Body::Finished => {}
        }
    }

    /// Hands out the head once the prelude and its NULs are in, and what followed them.
    fn try_prelude(&mut self) {
        let Body::Prelude(seen) = &mut self.body else {
            return;
        };
        // JSON never holds a raw NUL: the first one ends the object.
        let Some(end) = seen.iter().position(|b| *b == 0) else {
            return;
        };
        if end > MAX_PRELUDE {
            let message = format!(
                "the function's HTTP integration prelude is longer than {MAX_PRELUDE} bytes"
            );
            return self.fail(502, message, None);
        }
        let nuls = &seen[end..seen.len().min(end + PRELUDE_END)];
        if nuls.iter().any(|b| *b != 0) {
            let message =
                "the function's HTTP integration prelude is not followed by 8 NUL bytes".to_owned();
            return self.fail(502, message, None);
        }
        if nuls.len() < PRELUDE_END {
            return;
        }
        let mut seen = std::mem::take(seen);
        let rest = seen.split_off(end + PRELUDE_END).freeze();
        seen.truncate(end);
        match prelude_head(&seen) {
            Ok((status, headers)) => {
                self.head(status, headers);
                if !rest.is_empty() {
                    self.ready.push_back(Part::Data(rest));
                }
            }
            Err(message) => self.fail(502, message, None),
        }
    }

    fn on_complete(&mut self, payload: &[u8]) {
        let done: Complete = match serde_json::from_slice(payload) {
            Ok(done) => done,
            Err(e) => {
                let message = format!("the response stream's InvokeComplete is not JSON: {e}");
                return self.fail(502, message, None);
            }
        };
        let log = done
            .log_result
            .as_deref()
            .filter(|l| !l.is_empty())
            .and_then(|l| response::log_tail_of(l.as_bytes()))
            .map(|tail| format!("function log tail: {tail}"));
        if let Some(code) = done.error_code.filter(|c| !c.is_empty()) {
            let details = done.error_details.unwrap_or_default();
            let message = response::function_error(&code, details.as_bytes());
            self.fail(self.function_error_status, message, log);
            if let Some(Part::Error {
                function_failed, ..
            }) = self.ready.back_mut()
            {
                *function_failed = true;
            }
            return;
        }
        match std::mem::replace(&mut self.body, Body::Finished) {
            Body::Plain(content_type) => self.head(200, plain_headers(content_type)),
            Body::Prelude(seen) if seen.is_empty() => {
                // The function wrote nothing at all: an empty answer.
                self.head(
                    200,
                    plain_headers(HeaderValue::from_static("application/json")),
                );
            }
            Body::Prelude(_) => {
                let message = "the function's HTTP integration prelude is not followed by 8 \
                               NUL bytes"
                    .to_owned();
                return self.fail(502, message, log);
            }
            Body::Streaming | Body::Finished => {}
        }
        self.body = Body::Finished;
        self.ready.push_back(Part::End { log });
    }

    fn head(&mut self, status: u16, headers: HeaderMap) {
        self.body = Body::Streaming;
        self.ready.push_back(Part::Head { status, headers });
    }

    fn fail(&mut self, status: u16, message: String, log: Option<String>) {
        self.body = Body::Finished;
        self.pending = BytesMut::new();
        self.ready.push_back(Part::Error {
            status,
            message,
            log,
            function_failed: false,
        });
    }
}

/// A streamed Invoke answer's body for `crate::stream`: the HTTP body's pieces go
/// through the [`Decoder`], the payload's bytes come out. The decoder holds at most one
/// event plus one piece of the body, so the stream's bound stays `crate::stream`'s (an
/// event of Lambda's is far smaller than the 16 MiB allowed).
pub(crate) struct Payload<S> {
    body: Option<S>,
    decoder: Decoder,
    /// How it ended, once it has: the log tail, or the failure's status.
    pub(crate) ended: Option<Part>,
}

impl<S: Source> Payload<S> {
    /// `body` is the rest of the HTTP answer (`None`: all of it was pushed already).
    pub(crate) fn new(body: Option<S>, decoder: Decoder) -> Self {
        Self {
            body,
            decoder,
            ended: None,
        }
    }

    /// Reads until the head, a failure or the end: the caller awaits it within
    /// `timeout`, which thus bounds the time to the head.
    pub(crate) async fn head(&mut self) -> Part {
        std::future::poll_fn(|cx| self.poll_part(cx)).await
    }

    fn poll_part(&mut self, cx: &mut Context<'_>) -> Poll<Part> {
        loop {
            if let Some(part) = self.decoder.next_part() {
                return Poll::Ready(part);
            }
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(self.decoder.finish().unwrap_or(Part::End { log: None }));
            };
            match body.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => self.decoder.push(&bytes),
                Poll::Ready(Some(Err(cause))) => {
                    self.body = None;
                    self.decoder.abort(cause);
                }
                Poll::Ready(None) => self.body = None,
            }
        }
    }
}

impl<S: Source> Source for Payload<S> {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        loop {
            let part = match self.poll_part(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(part) => part,
            };
            return Poll::Ready(match part {
                Part::Data(bytes) => Some(Ok(bytes)),
                // `head` handed it out before this is polled.
                Part::Head { .. } => continue,
                Part::End { log } => {
                    self.ended.get_or_insert(Part::End { log });
                    None
                }
                Part::Error {
                    status,
                    message,
                    log,
                    function_failed,
                } => {
                    self.ended.get_or_insert(Part::Error {
                        status,
                        message: message.clone(),
                        log,
                        function_failed,
                    });
                    Some(Err(message))
                }
            });
        }
    }

    /// After InvokeComplete, the HTTP body's end (Lambda sends it right after): read, it
    /// gives the connection back to the pool; dropped unread, it closes it.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(body) = self.body.as_mut() {
            match body.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                // Nothing Lambda sends after InvokeComplete: not the client's.
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(_) => self.body = None,
            }
        }
        Poll::Ready(())
    }

    /// InvokeComplete's log tail (with `log_type: Tail`), once the stream is over.
    fn end_log(&mut self) -> Option<String> {
        match self.ended.as_mut()? {
            Part::End { log } | Part::Error { log, .. } => log.take(),
            _ => None,
        }
    }
}

fn has_nul(seen: &[u8], more: &[u8]) -> bool {
    seen.contains(&0) || more.contains(&0)
}

fn plain_headers(content_type: HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type);
    headers
}

/// The prelude's status and headers, read by the buffered proxy response's rules (a
/// 2.0 response without a body: `statusCode`, `headers`, `cookies`). A prelude without
/// `statusCode` is a 200, as a function URL answers it.
fn prelude_head(json: &[u8]) -> Result<(u16, HeaderMap), String> {
    let members: std::collections::BTreeMap<String, IgnoredAny> = serde_json::from_slice(json)
        .map_err(|e| {
            format!("the function's HTTP integration prelude is not a JSON object: {e}")
        })?;
    let json = match members.contains_key("statusCode") {
        true => Bytes::copy_from_slice(json),
        false => {
            // `{` then the object's members, if any, after a 200.
            let text = std::str::from_utf8(json).map_err(|_| "prelude is not UTF-8")?;
            let members = text.trim_start().strip_prefix('{').unwrap_or_default();
            let comma = if members.trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            Bytes::from(format!("{{\"statusCode\":200{comma}{members}"))
        }
    };
    let answer = response::from_payload(PayloadFormat::ApigwV2, json)
        .map_err(|e| e.replace("proxy response", "HTTP integration prelude"))?;
    Ok((answer.status, answer.headers))
}

#[derive(Deserialize, Default)]
struct Detail {
    #[serde(alias = "Message")]
    message: Option<String>,
}

/// `InvokeComplete`'s payload.
#[derive(Deserialize)]
struct Complete {
    #[serde(rename = "ErrorCode")]
    error_code: Option<String>,
    #[serde(rename = "ErrorDetails")]
    error_details: Option<String>,
    #[serde(rename = "LogResult")]
    log_result: Option<String>,
}

/// Event-stream frames as Lambda writes them, for tests and fuzzing.
#[cfg(test)]
pub(crate) mod frames {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use bytes::Bytes;

    fn event(kind: &'static str, content_type: &'static str, payload: Bytes) -> Vec<u8> {
        let message = Message::new(payload)
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(":event-type", HeaderValue::String(kind.into())))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String(content_type.into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("a frame");
        out
    }

    pub fn chunk(payload: &[u8]) -> Vec<u8> {
        event(
            "PayloadChunk",
            "application/octet-stream",
            Bytes::copy_from_slice(payload),
        )
    }

    pub fn complete(json: &str) -> Vec<u8> {
        event(
            "InvokeComplete",
            "application/json",
            Bytes::copy_from_slice(json.as_bytes()),
        )
    }

    pub fn exception(kind: &'static str, message: &str) -> Vec<u8> {
        let message = Message::new(Bytes::from(format!("{{\"message\":\"{message}\"}}")))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("exception".into()),
            ))
            .add_header(Header::new(
                ":exception-type",
                HeaderValue::String(kind.into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).expect("a frame");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::frames::*;
    use super::*;

    const PRELUDE: &str =
        r#"{"statusCode":201,"headers":{"x-a":"1","content-type":"text/plain"},"cookies":["c=1"]}"#;

    /// Every part for `stream` fed in pieces cut at `cuts`, data joined.
    fn run(format: PayloadFormat, ct: Option<&str>, stream: &[u8], cuts: &[usize]) -> Vec<Part> {
        let ct = ct.map(|c| HeaderValue::from_str(c).unwrap());
        let mut d = Decoder::new(format, ct.as_ref(), 502);
        let mut parts = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([stream.len()].iter()) {
            d.push(&stream[at..cut]);
            at = cut;
            while let Some(p) = d.next_part() {
                parts.push(p);
            }
        }
        parts.extend(d.finish());
        // Data joined, so that splits compare equal.
        let mut joined: Vec<Part> = Vec::new();
        for p in parts {
            match (joined.last_mut(), p) {
                (Some(Part::Data(a)), Part::Data(b)) => {
                    let mut v = a.to_vec();
                    v.extend_from_slice(&b);
                    *a = Bytes::from(v);
                }
                (_, p) => joined.push(p),
            }
        }
        joined
    }

    fn prelude_stream(pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            out.extend(chunk(p));
        }
        out.extend(complete("{}"));
        out
    }

    fn expect_prelude_answer(parts: &[Part], body: &[u8]) {
        assert_eq!(parts.len(), 3, "{parts:?}");
        let Part::Head { status, headers } = &parts[0] else {
            panic!("{parts:?}")
        };
        assert_eq!(*status, 201);
        assert_eq!(headers["x-a"], "1");
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["set-cookie"], "c=1");
        assert_eq!(parts[1], Part::Data(Bytes::copy_from_slice(body)));
        assert_eq!(parts[2], Part::End { log: None });
    }

    /// The prelude, its NULs and the body split at every point across PayloadChunks,
    /// and the frames split at every point across reads.
    #[test]
    fn prelude_split_anywhere() {
        let mut payload = PRELUDE.as_bytes().to_vec();
        payload.extend([0u8; 8]);
        payload.extend(b"hello body");
        for cut in 0..=payload.len() {
            let stream = prelude_stream(&[&payload[..cut], &payload[cut..]]);
            expect_prelude_answer(
                &run(PayloadFormat::ApigwV2, None, &stream, &[]),
                b"hello body",
            );
        }
        // Byte by byte, in one-byte events.
        let pieces: Vec<&[u8]> = payload.chunks(1).collect();
        let stream = prelude_stream(&pieces);
        expect_prelude_answer(
            &run(PayloadFormat::ApigwV1, None, &stream, &[]),
            b"hello body",
        );
        // Frames cut at every byte of the HTTP body, and at every pair of points.
        let stream = prelude_stream(&[&payload[..20], &payload[20..]]);
        for cut in 0..=stream.len() {
            expect_prelude_answer(
                &run(PayloadFormat::ApigwV2, None, &stream, &[cut]),
                b"hello body",
            );
        }
        for a in (0..stream.len()).step_by(7) {
            for b in a..stream.len() {
                expect_prelude_answer(
                    &run(PayloadFormat::ApigwV2, None, &stream, &[a, b]),
                    b"hello body",
                );
            }
        }
        let all: Vec<usize> = (0..stream.len()).collect();
        expect_prelude_answer(
            &run(PayloadFormat::ApigwV2, None, &stream, &all),
            b"hello body",
        );
    }

    #[test]
    fn head_before_the_body_arrives() {
        let mut payload = PRELUDE.as_bytes().to_vec();
        payload.extend([0u8; 8]);
        let mut d = Decoder::new(PayloadFormat::ApigwV2, None, 502);
        d.push(&chunk(&payload));
        assert!(matches!(
            d.next_part(),
            Some(Part::Head { status: 201, .. })
        ));
        assert!(d.head_sent());
        assert_eq!(d.next_part(), None);
        d.push(&chunk(b"later"));
        assert_eq!(
            d.next_part(),
            Some(Part::Data(Bytes::from_static(b"later")))
        );
    }

    #[test]
    fn prelude_defaults_and_errors() {
        let ans = |prelude: &str| {
            let mut payload = prelude.as_bytes().to_vec();
            payload.extend([0u8; 8]);
            payload.extend(b"b");
            run(
                PayloadFormat::ApigwV2,
                None,
                &prelude_stream(&[&payload]),
                &[],
            )
        };
        let parts = ans("{}");
        let Part::Head { status, headers } = &parts[0] else {
            panic!("{parts:?}")
        };
        assert_eq!(*status, 200);
        assert_eq!(headers["content-type"], "application/json");
        let parts = ans(r#" { "headers": {"x-b": "2"} }"#);
        assert!(matches!(&parts[0], Part::Head { status: 200, headers } if headers["x-b"] == "2"));
        for bad in [
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":99}"#,
            "[1]",
            "nope",
        ] {
            let parts = ans(bad);
            assert!(
                matches!(&parts[..], [Part::Error { status: 502, .. }]),
                "{bad}: {parts:?}"
            );
        }
        // Fewer than 8 NULs, then a body byte.
        let mut payload = b"{}".to_vec();
        payload.extend([0u8; 5]);
        payload.extend(b"body");
        let parts = run(
            PayloadFormat::ApigwV2,
            None,
            &prelude_stream(&[&payload]),
            &[],
        );
        assert!(
            matches!(&parts[..], [Part::Error { status: 502, message, .. }]
            if message.contains("8 NUL"))
        );
        // No NUL within the limit.
        let big = vec![b' '; MAX_PRELUDE + 100];
        let parts = run(PayloadFormat::ApigwV2, None, &prelude_stream(&[&big]), &[]);
        assert!(matches!(&parts[..], [Part::Error { status: 502, .. }]));
    }

    #[test]
    fn plain_streams() {
        let stream = prelude_stream(&[b"", b"ab", b"cd"]);
        let parts = run(PayloadFormat::Raw, None, &stream, &[]);
        let Part::Head {
            status: 200,
            headers,
        } = &parts[0]
        else {
            panic!("{parts:?}")
        };
        assert_eq!(headers["content-type"], "application/octet-stream");
        assert_eq!(
            parts[1..],
            [Part::Data("abcd".into()), Part::End { log: None }]
        );
        // A function that set its own content type and wrote no prelude.
        let parts = run(
            PayloadFormat::ApigwV2,
            Some("text/event-stream"),
            &stream,
            &[],
        );
        assert!(
            matches!(&parts[0], Part::Head { headers, .. } if headers["content-type"] == "text/event-stream")
        );
        assert_eq!(parts[1], Part::Data("abcd".into()));
        // The announced prelude, or an emulator's event-stream type: a prelude.
        for ct in [HTTP_INTEGRATION, EVENT_STREAM] {
            let parts = run(PayloadFormat::ApigwV2, Some(ct), &stream, &[]);
            assert!(
                matches!(&parts[..], [Part::Error { .. }]),
                "{ct}: {parts:?}"
            );
        }
        // Nothing written: an empty 200.
        let parts = run(PayloadFormat::ApigwV2, None, &complete("{}"), &[]);
        assert!(matches!(
            &parts[..],
            [Part::Head { status: 200, .. }, Part::End { .. }]
        ));
    }

    #[test]
    fn invoke_complete_errors_and_logs() {
        let tail = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "START\nline\nEND\n",
        );
        let done = format!(
            r#"{{"ErrorCode":"Unhandled","ErrorDetails":"{{\"errorType\":\"Error\",\"errorMessage\":\"boom\"}}","LogResult":"{tail}"}}"#
        );
        // Before anything was written: the function error's status.
        let mut d = Decoder::new(PayloadFormat::Raw, None, 500);
        d.push(&complete(&done));
        let Some(Part::Error {
            status,
            message,
            log,
            function_failed: true,
        }) = d.next_part()
        else {
            panic!()
        };
        assert_eq!(status, 500);
        assert_eq!(message, "the function failed (Unhandled): Error: boom");
        assert_eq!(
            log.as_deref(),
            Some("function log tail: START\\nline\\nEND")
        );
        assert!(!d.head_sent());
        // After data: the same error, after the head.
        let mut stream = chunk(b"partial");
        stream.extend(complete(&done));
        let parts = run(PayloadFormat::Raw, None, &stream, &[]);
        assert!(matches!(
            &parts[..],
            [Part::Head { .. }, Part::Data(_), Part::Error { .. }]
        ));
        // A log tail with success.
        let mut stream = chunk(b"x");
        stream.extend(complete(&format!(r#"{{"LogResult":"{tail}"}}"#)));
        let parts = run(PayloadFormat::Raw, None, &stream, &[]);
        assert!(matches!(&parts[2], Part::End { log: Some(l) } if l.contains("line")));
    }

    #[test]
    fn broken_streams() {
        let mut stream = chunk(b"abc");
        // Cut before InvokeComplete, inside a frame, a bad CRC, an exception.
        let parts = run(PayloadFormat::Raw, None, &stream, &[]);
        assert!(
            matches!(&parts[2], Part::Error { message, .. } if message.contains("without InvokeComplete"))
        );
        let parts = run(PayloadFormat::Raw, None, &stream[..stream.len() - 1], &[]);
        assert!(
            matches!(&parts[..], [Part::Error { message, .. }] if message.contains("inside an event"))
        );
        let last = stream.len() - 1;
        stream[last] ^= 1;
        let parts = run(PayloadFormat::Raw, None, &stream, &[]);
        assert!(
            matches!(&parts[..], [Part::Error { status: 502, .. }]),
            "{parts:?}"
        );
        let parts = run(
            PayloadFormat::Raw,
            None,
            &exception("ServiceException", "it broke"),
            &[],
        );
        assert!(
            matches!(&parts[..], [Part::Error { status: 502, message, .. }]
            if message == "Lambda Invoke API stream exception ServiceException: it broke")
        );
        // A frame announced longer than any event may be: refused before buffering.
        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        huge.extend([0u8; 12]);
        let parts = run(PayloadFormat::Raw, None, &huge, &[]);
        assert!(matches!(&parts[..], [Part::Error { message, .. }] if message.contains("over")));
        // The connection broke: the cause, unless InvokeComplete had come.
        let mut d = Decoder::new(PayloadFormat::Raw, None, 502);
        d.push(&chunk(b"abc"));
        d.abort("reset".to_owned());
        let parts: Vec<Part> = std::iter::from_fn(|| d.next_part()).collect();
        assert!(
            matches!(&parts[..], [Part::Head { .. }, Part::Data(_), Part::Error { message, .. }] if message == "reset")
        );
        let mut d = Decoder::new(PayloadFormat::Raw, None, 502);
        d.push(&complete("{}"));
        d.abort("reset".to_owned());
        let parts: Vec<Part> = std::iter::from_fn(|| d.next_part()).collect();
        assert!(
            matches!(&parts[..], [Part::Head { .. }, Part::End { .. }]),
            "{parts:?}"
        );
        // Not an event stream at all.
        let parts = run(PayloadFormat::Raw, None, b"{\"statusCode\":200}", &[]);
        assert!(
            matches!(&parts[..], [Part::Error { status: 502, .. }]),
            "{parts:?}"
        );
    }
}
