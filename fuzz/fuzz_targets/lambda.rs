//! The Invoke API's side: whatever a function or Lambda answers (`lambda::response`)
//! and whatever a client sends into an event (`lambda::event`) must never panic; an
//! event that is built is valid JSON of the requested shape, and a response that is
//! accepted has a valid status.
#![no_main]

use arbitrary::Arbitrary;
use aws_lambda_native::config::PayloadFormat;
use aws_lambda_native::lambda::{event, response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FORMATS: [PayloadFormat; 3] = [
    PayloadFormat::ApigwV2,
    PayloadFormat::ApigwV1,
    PayloadFormat::Raw,
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    format: u8,
    payload: &'a [u8],
    api_status: u16,
    error_type: &'a [u8],
    method: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    query: &'a [u8],
    body: &'a [u8],
    context: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let format = FORMATS[usize::from(input.format) % FORMATS.len()];

    match response::from_payload(format, Bytes::copy_from_slice(input.payload)) {
        Ok(answer) => assert!((100..=599).contains(&answer.status)),
        Err(message) => assert!(message.starts_with("the function")),
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(input.error_type) {
        headers.insert("x-amzn-errortype", value);
    }
    let (status, message) =
        response::api_error(input.api_status, &headers, input.payload, &["SECRET"]);
    assert!((400..=599).contains(&status));
    assert!(!message.contains("SECRET") && !message.contains('\n'));
    let _ = response::function_error("Unhandled", input.payload);

    if format == PayloadFormat::Raw {
        return;
    }
    let Ok(ctx) = event::Context::parse(input.context) else {
        return;
    };
    // Names as the Lua side sends them: lowercase header names.
    let names: Vec<String> = input
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    let headers: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&input.headers)
        .map(|(n, (_, v))| (n.as_str(), *v))
        .collect();
    if let Ok(bytes) = event::build(
        format,
        input.method,
        &headers,
        input.query,
        input.body,
        &ctx,
    ) {
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("event is JSON");
        match format {
            PayloadFormat::ApigwV2 => assert_eq!(value["version"], "2.0"),
            _ => assert!(value["httpMethod"].is_string()),
        }
    }
});
