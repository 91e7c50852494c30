//! InvokeWithResponseStream's answer (`lambda::stream::Decoder`): whatever Lambda or the
//! function sends, cut wherever the network cuts it, the decoder never panics, hands out
//! the same parts for every cut, and in order: at most one head, data only after it, one
//! end or error last.
#![no_main]

use arbitrary::Arbitrary;
use aws_lambda_native::config::PayloadFormat;
use aws_lambda_native::lambda::stream::{Decoder, Part};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message};
use bytes::Bytes;
use http::HeaderValue;
use libfuzzer_sys::fuzz_target;

const FORMATS: [PayloadFormat; 3] = [
    PayloadFormat::ApigwV2,
    PayloadFormat::ApigwV1,
    PayloadFormat::Raw,
];
const TYPES: [&str; 4] = [
    "",
    "application/vnd.awslambda.http-integration-response",
    "application/vnd.amazon.eventstream",
    "text/event-stream",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    format: u8,
    content_type: u8,
    /// PayloadChunk payloads (the prelude is most often valid JSON + NULs when seeded).
    chunks: Vec<&'a [u8]>,
    /// InvokeComplete's JSON payload, if any.
    complete: Option<&'a [u8]>,
    /// Bytes after the frames (garbage, a cut frame).
    tail: &'a [u8],
    cuts: Vec<u16>,
}

fn event(kind: &'static str, payload: &[u8]) -> Vec<u8> {
    let message = Message::new(Bytes::copy_from_slice(payload))
        .add_header(Header::new(
            ":message-type",
            FrameValue::String("event".into()),
        ))
        .add_header(Header::new(":event-type", FrameValue::String(kind.into())));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("a frame");
    out
}

fn decode(input: &Input<'_>, stream: &[u8], cuts: &[usize]) -> Vec<Part> {
    let ct = TYPES[usize::from(input.content_type) % TYPES.len()];
    let ct = (!ct.is_empty()).then(|| HeaderValue::from_static(ct));
    let format = FORMATS[usize::from(input.format) % FORMATS.len()];
    let mut decoder = Decoder::new(format, ct.as_ref(), 502);
    let mut parts: Vec<Part> = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([stream.len()].iter()) {
        decoder.push(&stream[at..cut]);
        at = cut;
        while let Some(part) = decoder.next_part() {
            parts.push(part);
        }
    }
    parts.extend(decoder.finish());
    // Data joined: a cut may split it.
    let mut joined: Vec<Part> = Vec::new();
    for part in parts {
        match (joined.last_mut(), part) {
            (Some(Part::Data(a)), Part::Data(b)) => {
                let mut all = a.to_vec();
                all.extend_from_slice(&b);
                *a = Bytes::from(all);
            }
            (_, part) => joined.push(part),
        }
    }
    joined
}

fuzz_target!(|input: Input<'_>| {
    let mut stream = Vec::new();
    for chunk in &input.chunks {
        stream.extend(event("PayloadChunk", chunk));
    }
    if let Some(done) = input.complete {
        stream.extend(event("InvokeComplete", done));
    }
    stream.extend_from_slice(input.tail);

    let whole = decode(&input, &stream, &[]);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| usize::from(*c) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    assert_eq!(
        decode(&input, &stream, &cuts),
        whole,
        "a cut changed the answer"
    );

    let mut head = false;
    for (i, part) in whole.iter().enumerate() {
        let last = i + 1 == whole.len();
        match part {
            Part::Head { status, .. } => {
                assert!(!head && (100..=599).contains(status));
                head = true;
            }
            Part::Data(bytes) => assert!(head && !bytes.is_empty()),
            Part::End { .. } => assert!(head && last),
            Part::Error { message, .. } => assert!(last && !message.contains('\n')),
        }
    }
    assert!(
        matches!(whole.last(), Some(Part::End { .. } | Part::Error { .. })),
        "the stream always ends"
    );
});
