//! What the Invoke API answered, as the client's response or as an error.
//!
//! A payload shaped as a proxy response (an object with `statusCode`) is read as
//! `aws_lambda_events`' response types read it (`proxy`) and becomes the HTTP response; any other JSON
//! payload is the body of a 200, as function URLs and HTTP APIs do. Errors of the
//! Invoke API itself (throttling, a missing function, bad credentials) and errors the
//! function raised are mapped to the statuses documented in docs/invoke.md.
//!
//! Everything that came from AWS or the function and goes to the error log is escaped
//! onto one line: a newline in it would let the function write log entries of its own.

mod proxy;

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use http::HeaderMap;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::config::PayloadFormat;

/// The response for the client.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The answer for a successful synchronous invocation's `payload`. The error is for
/// the log (the client gets a 502): the payload is not JSON, or not a valid proxy
/// response.
pub fn from_payload(format: PayloadFormat, payload: Bytes) -> Result<Answer, String> {
    let body_of = |payload, content_type| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Answer {
            status: 200,
            headers,
            body: payload,
        }
    };
    if format == PayloadFormat::Raw {
        // Lambda passes a custom runtime's bytes on unchecked: only JSON is labelled so.
        let is_json = serde_json::from_slice::<IgnoredAny>(&payload).is_ok();
        return Ok(body_of(
            payload,
            if is_json {
                "application/json"
            } else {
                "application/octet-stream"
            },
        ));
    }
    let fields = match serde_json::from_slice::<proxy::Top<'_>>(&payload)
        .map_err(|e| format!("the function's payload is not JSON: {e}"))?
    {
        proxy::Top::Object(fields) if fields.status_code.is_some() => fields,
        _ => return Ok(body_of(payload, "application/json")),
    };
    let parsed = fields
        .read(format)
        .map_err(|e| format!("the function returned a malformed proxy response: {e}"))?;
    proxy_answer(parsed)
}

fn proxy_answer(parsed: proxy::Parsed<'_>) -> Result<Answer, String> {
    let proxy::Parsed {
        status,
        mut headers,
        multi,
        cookies,
        body,
        is_base64,
    } = parsed;
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| {
            format!("the function returned a malformed proxy response: statusCode {status}")
        })?;
    // API Gateway's merge: a name in multiValueHeaders takes its values from there.
    let mut last: Option<HeaderName> = None;
    for (name, value) in multi {
        let name = match name {
            Some(name) => {
                headers.remove(&name);
                last = Some(name.clone());
                name
            }
            // HeaderMap yields a name before the rest of its values.
            None => match &last {
                Some(name) => name.clone(),
                None => continue,
            },
        };
        headers.append(name, value);
    }
    for cookie in cookies {
        let value = HeaderValue::from_str(&cookie).map_err(|_| {
            "the function returned a malformed proxy response: invalid cookie".to_owned()
        })?;
        headers.append(SET_COOKIE, value);
    }
    let body = match body {
        None => Bytes::new(),
        Some(text) if is_base64 => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(|_| {
                "the function returned a malformed proxy response: the body is not base64"
                    .to_owned()
            })?,
        Some(text) => Bytes::from(text.into_owned()),
    };
    // REST APIs and function URLs label a proxy response without one as JSON (HTTP APIs
    // have been seen to answer text/plain; docs/invoke.md says why JSON here).
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The log line for a function that failed (`X-Amz-Function-Error`): its error type and
/// message, on one line and shortened.
pub fn function_error(kind: &str, payload: &[u8]) -> String {
    let value: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or("");
    let (error_type, message) = (field("errorType"), field("errorMessage"));
    let described = match (error_type.is_empty(), message.is_empty()) {
        (true, true) => String::from_utf8_lossy(payload).into_owned(),
        (false, true) => error_type.to_owned(),
        (true, false) => message.to_owned(),
        (false, false) => format!("{error_type}: {message}"),
    };
    format!("the function failed ({kind}): {}", one_line(&described))
}

/// The status for the client and the log line for an error of the Invoke API itself.
/// `secrets` are scrubbed from the message: a signature mismatch message quotes the
/// canonical request, which holds the session token.
pub fn api_error(status: u16, headers: &HeaderMap, body: &[u8], secrets: &[&str]) -> (u16, String) {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| value.get(*n).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    // `x-amzn-ErrorType: TooManyRequestsException:http://internal.amazon.com/...`
    let error_type = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(':').next())
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| text(&["__type", "Type"]));
    let mut message = text(&["message", "Message"]);
    // A signature error goes on to quote the canonical request and the string to sign
    // (on the same line, or after blank lines as Lambda sends it): keep what precedes.
    let lower = message.to_ascii_lowercase();
    if let Some(cut) = ["the canonical string", "the string-to-sign"]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
    {
        message.truncate(cut);
        message.truncate(message.trim_end().len());
    }
    let answer = match (status, error_type.as_str()) {
        // Backing off is the client's to do.
        (429, _) => 429,
        (413, _) => 413,
        // A raw payload that is not JSON: the client's body.
        (400, "InvalidRequestContentException") => 400,
        // The function is being updated or created: try again soon.
        (409, _) | (_, "ResourceNotReadyException") | (503, _) => 503,
        // A missing function, refused credentials, a function that cannot start: the
        // gateway's configuration or the function is broken, not the client's request.
        _ => 502,
    };
    let error_type = if error_type.is_empty() {
        "error".to_owned()
    } else {
        error_type
    };
    let mut line = format!("Lambda Invoke API answered {status} {error_type}: {message}");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        line = line.replace(secret, "<redacted>");
    }
    (answer, one_line(&line))
}

/// `Retry-After` as `name:value\n` for the client, when Lambda sent one with a status
/// that the client answers as 429 or 503 (`answer`): waiting is the client's to do.
pub fn retry_after(answer: u16, headers: &HeaderMap) -> Vec<u8> {
    let value = match (answer, headers.get(RETRY_AFTER)) {
        (429 | 503, Some(value)) => value,
        _ => return Vec::new(),
    };
    // Visible ASCII only, as a delay or an HTTP date is.
    match value.to_str() {
        Ok(value) if !value.is_empty() => format!("Retry-After:{value}\n").into_bytes(),
        _ => Vec::new(),
    }
}

/// Lambda's `X-Amz-Executed-Version` (the version that ran, which an alias resolves to)
/// as `name:value\n` for the client, as Kong passes it on; empty when Lambda sent none,
/// or the answer already has one (a proxy response's own headers win, as in Kong).
pub fn executed_version(lambda: &HeaderMap, answer: Option<&HeaderMap>) -> Vec<u8> {
    const NAME: &str = "x-amz-executed-version";
    if answer.is_some_and(|h| h.contains_key(NAME)) {
        return Vec::new();
    }
    // A version number, `$LATEST`: visible ASCII only.
    match lambda.get(NAME).map(HeaderValue::to_str) {
        Some(Ok(value)) if !value.is_empty() => {
            format!("X-Amz-Executed-Version:{value}\n").into_bytes()
        }
        _ => Vec::new(),
    }
}

/// At most this many bytes of the escaped log tail are logged: nginx cuts an error-log
/// entry at 2048 bytes (NGX_MAX_ERROR_STR), and its prefix and the request's details
/// need room too.
const TAIL_LIMIT: usize = 1024;

/// The function's log tail (`X-Amz-Log-Result`, base64), decoded and escaped onto one
/// line. Its end is kept (the last lines are the ones that tell why), `...` marking a
/// cut.
pub fn log_tail(headers: &HeaderMap) -> Option<String> {
    log_tail_of(headers.get("x-amz-log-result")?.as_bytes())
}

/// The same for the base64 log tail itself (InvokeWithResponseStream's `LogResult`).
pub fn log_tail_of(encoded: &[u8]) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    let (mut start, mut len) = (text.len(), 0);
    for (at, c) in text.char_indices().rev() {
        len += c.escape_default().len();
        if len > TAIL_LIMIT {
            break;
        }
        start = at;
    }
    let mut out = String::with_capacity(len.min(TAIL_LIMIT) + 3);
    if start > 0 {
        out.push_str("...");
    }
    out.extend(text[start..].chars().flat_map(char::escape_default));
    Some(out)
}

/// At most 1000 characters, control characters escaped: one log line per failure.
pub(crate) fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(1000)
        .flat_map(char::escape_default)
        .collect();
    if s.chars().nth(1000).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `from_payload` was: the payload through a `serde_json::Value` into
    /// `aws_lambda_events`' response types. The reference `proxy` is compared with.
    fn from_payload_with_crate(format: PayloadFormat, payload: Bytes) -> Result<Answer, String> {
        use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
        use aws_lambda_events::encodings::Body;
        use serde_json::Value;
        let value: Value = serde_json::from_slice(&payload)
            .map_err(|e| format!("the function's payload is not JSON: {e}"))?;
        let mut obj = match value {
            Value::Object(obj) if obj.contains_key("statusCode") => obj,
            _ => return from_payload(format, payload),
        };
        let parsed = match format {
            PayloadFormat::ApigwV1 => {
                serde_json::from_value::<ApiGatewayProxyResponse>(Value::Object(obj)).map(|r| {
                    (
                        r.status_code,
                        r.headers,
                        r.multi_value_headers,
                        Vec::new(),
                        r.body,
                        r.is_base64_encoded,
                    )
                })
            }
            _ => {
                obj.entry("cookies")
                    .or_insert_with(|| Value::Array(Vec::new()));
                serde_json::from_value::<ApiGatewayV2httpResponse>(Value::Object(obj)).map(|r| {
                    (
                        r.status_code,
                        r.headers,
                        HeaderMap::new(),
                        r.cookies,
                        r.body,
                        r.is_base64_encoded,
                    )
                })
            }
        };
        let (status, headers, multi, cookies, body, is_base64) =
            parsed.map_err(|e| format!("the function returned a malformed proxy response: {e}"))?;
        let body = match body {
            None | Some(Body::Empty) => None,
            Some(Body::Text(text)) => Some(std::borrow::Cow::Owned(text)),
            Some(_) => return Err("a body the crate reads only from binary formats".into()),
        };
        proxy_answer(proxy::Parsed {
            status,
            headers,
            multi,
            cookies: cookies.into_iter().map(std::borrow::Cow::Owned).collect(),
            body,
            is_base64,
        })
    }

    /// The payload read straight is the crate's reading of it, edge cases included.
    #[test]
    fn proxy_responses_read_as_the_crate_reads_them() {
        let payloads = [
            r#"{"statusCode":200}"#,
            r#"{"statusCode":201,"headers":{"X-A":"1","Set-Cookie":"x=0"},"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"headers":{"x-m":"single","x-s":"s"},"multiValueHeaders":{"X-M":["1","2"]},"body":"text"}"#,
            r#"{"statusCode":200,"headers":{"x-m":"1,2"},"multiValueHeaders":{"X-M":["a","b"],"X-Only":["o"]}}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"content-type":["text/csv"]}}"#,
            r#"{"statusCode":200,"headers":null,"multiValueHeaders":null,"body":null,"isBase64Encoded":null}"#,
            r#"{"statusCode":200,"headers":{"a":"1"},"headers":{"b":"2"},"statusCode":204}"#,
            r#"{"statusCode":200,"headers":{"a":["1","2"],"b":[]}}"#,
            r#"{"statusCode":200,"headers":{"a":[[104,105]]}}"#,
            r#"{"statusCode":200,"headers":{"b":["x",[121]]}}"#,
            r#"{"statusCode":200,"headers":{"b":[[121],"x"]}}"#,
            r#"{"statusCode":200,"headers":{"a":["café"]}}"#,
            r#"{"statusCode":200,"headers":{"a":"café"}}"#,
            r#"{"statusCode":200,"headers":{"a":[[300]]}}"#,
            r#"{"statusCode":200,"headers":{"a":5}}"#,
            r#"{"statusCode":200,"headers":{"a":true}}"#,
            r#"{"statusCode":200,"headers":{"a":null}}"#,
            r#"{"statusCode":200,"headers":{"a":{"b":"c"}}}"#,
            r#"{"statusCode":200,"headers":"x"}"#,
            r#"{"statusCode":200,"headers":[]}"#,
            r#"{"statusCode":200,"headers":{"bad name":"x"}}"#,
            r#"{"statusCode":200,"headers":{"a":"line
break"}}"#,
            r#"{"statusCode":200,"headers":{"ab":"escaped"}}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"x":"one"}}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"x":7}}"#,
            r#"{"statusCode":200,"cookies":null}"#,
            r#"{"statusCode":200,"cookies":["a=1",2]}"#,
            r#"{"statusCode":200,"cookies":"a=1"}"#,
            r#"{"statusCode":200,"cookies":["bad
cookie"]}"#,
            r#"{"statusCode":200,"cookies":[]}"#,
            r#"{"statusCode":200,"body":""}"#,
            r#"{"statusCode":200,"body":"","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"body":"aGk","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"body":"esc"apedé
"}"#,
            r#"{"statusCode":200,"body":{"an":"object"}}"#,
            r#"{"statusCode":200,"body":5}"#,
            r#"{"statusCode":200,"body":"x","isBase64Encoded":"true"}"#,
            r#"{"statusCode":200,"body":"x","isBase64Encoded":1}"#,
            r#"{"statusCode":"200"}"#,
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":200.0}"#,
            r#"{"statusCode":99}"#,
            r#"{"statusCode":600}"#,
            r#"{"statusCode":-1}"#,
            r#"{"statusCode":99999999999999999999}"#,
            r#"{"statusCode":null}"#,
            r#"{"statusCode":200,"extra":{"deep":[1,{"x":null}]},"other":"y"}"#,
            r#"{"statusCode":202}"#,
            r#"{"hello":"world"}"#,
            r#"{}"#,
            r#"[1,2]"#,
            r#"[{"statusCode":200}]"#,
            r#""text""#,
            "42",
            "-1.5e3",
            "true",
            "null",
            r#" {"statusCode": 200} "#,
            "{not json",
            r#"{"statusCode":200}x"#,
            "",
            r#"{"statusCode":200,"headers":{"a":"1"}"#,
        ];
        for payload in payloads {
            for format in [PayloadFormat::ApigwV1, PayloadFormat::ApigwV2] {
                let bytes = Bytes::copy_from_slice(payload.as_bytes());
                let direct = from_payload(format, bytes.clone());
                let reference = from_payload_with_crate(format, bytes);
                match (&direct, &reference) {
                    (Ok(d), Ok(r)) => {
                        assert_eq!(
                            (d.status, &d.headers, &d.body),
                            (r.status, &r.headers, &r.body),
                            "{format:?} {payload}"
                        );
                    }
                    (Err(d), Err(r)) => {
                        let prefix = |e: &str| e.starts_with("the function");
                        assert!(prefix(d) && prefix(r), "{format:?} {payload}: {d} / {r}");
                    }
                    _ => panic!("{format:?} {payload}: {direct:?} against {reference:?}"),
                }
            }
        }
    }

    fn answer(format: PayloadFormat, payload: &str) -> Result<Answer, String> {
        from_payload(format, Bytes::copy_from_slice(payload.as_bytes()))
    }

    #[test]
    fn proxy_responses() {
        let a = answer(
            PayloadFormat::ApigwV2,
            r#"{"statusCode":201,"headers":{"X-A":"1","Set-Cookie":"x=0"},
                "cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(a.headers["x-a"], "1");
        let cookies: Vec<_> = a.headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["x=0", "a=1", "b=2"]);
        assert_eq!(a.body, "hi");

        let a = answer(
            PayloadFormat::ApigwV1,
            r#"{"statusCode":200,"headers":{"x-m":"single","x-s":"s"},
                "multiValueHeaders":{"X-M":["1","2"]},"body":"text"}"#,
        )
        .unwrap();
        let multi: Vec<_> = a.headers.get_all("x-m").iter().collect();
        assert_eq!(multi, ["1", "2"]);
        assert_eq!(a.headers["x-s"], "s");
        assert_eq!(a.body, "text");
    }

    /// A name given twice in different case: the later in the document wins, as it
    /// would in JSON.parse (through a `serde_json::Value` it was the later in byte order).
    #[test]
    fn names_repeated_in_another_case() {
        let a = answer(
            PayloadFormat::ApigwV1,
            r#"{"statusCode":200,"headers":{"a":"1","A":"2"},"multiValueHeaders":{"b":["1"],"B":["2","3"]}}"#,
        )
        .unwrap();
        assert_eq!(a.headers.get_all("a").iter().collect::<Vec<_>>(), ["2"]);
        let b: Vec<_> = a.headers.get_all("b").iter().collect();
        assert_eq!(b, ["1", "2", "3"]);
    }

    #[test]
    fn v2_ignores_multi_value_headers() {
        let a = answer(
            PayloadFormat::ApigwV2,
            r#"{"statusCode":200,"headers":{"x-m":"1,2"},
                "multiValueHeaders":{"X-M":["a","b"],"X-Only":["o"]}}"#,
        )
        .unwrap();
        assert_eq!(a.headers.get_all("x-m").iter().collect::<Vec<_>>(), ["1,2"]);
        assert!(a.headers.get("x-only").is_none());
    }

    #[test]
    fn content_type_defaults() {
        for format in [PayloadFormat::ApigwV1, PayloadFormat::ApigwV2] {
            let a = answer(format, r#"{"statusCode":200,"body":"<p>hi</p>"}"#).unwrap();
            assert_eq!(a.headers[CONTENT_TYPE], "application/json", "{format:?}");
            let a = answer(
                format,
                r#"{"statusCode":200,"headers":{"Content-Type":"text/html"},"body":"x"}"#,
            )
            .unwrap();
            assert_eq!(a.headers[CONTENT_TYPE], "text/html", "{format:?}");
        }
        let a = answer(
            PayloadFormat::ApigwV1,
            r#"{"statusCode":200,"multiValueHeaders":{"content-type":["text/csv"]}}"#,
        )
        .unwrap();
        assert_eq!(a.headers[CONTENT_TYPE], "text/csv");
        let raw = answer(PayloadFormat::Raw, "not json at all").unwrap();
        assert_eq!(raw.headers[CONTENT_TYPE], "application/octet-stream");
        let raw = answer(PayloadFormat::Raw, " [1, 2] ").unwrap();
        assert_eq!(raw.headers[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn other_payloads_are_json_bodies() {
        let a = answer(PayloadFormat::ApigwV2, r#"{"hello":"world"}"#).unwrap();
        assert_eq!(
            (a.status, &a.body[..]),
            (200, &b"{\"hello\":\"world\"}"[..])
        );
        assert_eq!(a.headers[CONTENT_TYPE], "application/json");
        assert_eq!(
            answer(PayloadFormat::ApigwV1, "\"text\"").unwrap().status,
            200
        );
        let raw = answer(PayloadFormat::Raw, "not json at all").unwrap();
        assert_eq!(raw.body, "not json at all");
    }

    #[test]
    fn malformed() {
        for bad in [
            "{not json",
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":99}"#,
            r#"{"statusCode":200,"body":{"an":"object"}}"#,
            r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"headers":{"bad name":"x"}}"#,
        ] {
            let e = answer(PayloadFormat::ApigwV2, bad).unwrap_err();
            assert!(e.starts_with("the function"), "{bad}: {e}");
        }
    }

    #[test]
    fn api_errors() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("TooManyRequestsException:http://internal"),
        );
        let (s, m) = api_error(429, &h, br#"{"message":"Rate Exceeded."}"#, &[]);
        assert_eq!(s, 429);
        assert_eq!(
            m,
            "Lambda Invoke API answered 429 TooManyRequestsException: Rate Exceeded."
        );
        let body = br#"{"Type":"User","message":"The request signature we calculated does not match. The Canonical String for this request should have been 'x-amz-security-token:TOKEN'"}"#;
        let (s, m) = api_error(403, &HeaderMap::new(), body, &["TOKEN"]);
        assert_eq!(s, 502);
        assert_eq!(
            m,
            "Lambda Invoke API answered 403 User: The request signature we calculated does not match."
        );
        // Lambda's own form: blank lines, then both quotes.
        let body = br#"{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/\n\nhost:x\n'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260101T000000Z'\n"}"#;
        let (_, m) = api_error(403, &HeaderMap::new(), body, &[]);
        assert!(
            m.ends_with("Consult the service documentation for details."),
            "{m}"
        );
        let body = br#"{"message":"Signature mismatch.\nthe string-to-sign should have been 'AWS4-HMAC-SHA256'"}"#;
        let (_, m) = api_error(403, &HeaderMap::new(), body, &[]);
        assert!(m.ends_with("error: Signature mismatch."), "{m}");
        let (s, _) = api_error(409, &HeaderMap::new(), b"", &[]);
        assert_eq!(s, 503);
        let (s, m) = api_error(404, &HeaderMap::new(), b"<html>", &[]);
        assert_eq!(
            (s, m.as_str()),
            (502, "Lambda Invoke API answered 404 error: ")
        );
    }

    #[test]
    fn function_errors_and_tails() {
        let m = function_error(
            "Unhandled",
            br#"{"errorType":"TypeError","errorMessage":"bad\nthing"}"#,
        );
        assert_eq!(m, "the function failed (Unhandled): TypeError: bad\\nthing");
        let mut h = HeaderMap::new();
        h.insert("x-amz-log-result", HeaderValue::from_static("aGVsbG8K"));
        assert_eq!(log_tail(&h).as_deref(), Some("hello"));
        let tail = "a\n2026/01/01 00:00:00 [alert] forged\r\x1b[0m\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        h.insert("x-amz-log-result", HeaderValue::from_str(&encoded).unwrap());
        assert_eq!(
            log_tail(&h).as_deref(),
            Some("a\\n2026/01/01 00:00:00 [alert] forged\\r\\u{1b}[0m")
        );
        let long = format!("first\n{}last", "x".repeat(2000));
        let encoded = base64::engine::general_purpose::STANDARD.encode(long);
        h.insert("x-amz-log-result", HeaderValue::from_str(&encoded).unwrap());
        let tail = log_tail(&h).unwrap();
        assert!(
            tail.starts_with("...xxx") && tail.ends_with("xlast"),
            "{tail}"
        );
        assert_eq!(tail.len(), 3 + TAIL_LIMIT);
    }

    #[test]
    fn retry_after_for_429_and_503() {
        let mut h = HeaderMap::new();
        assert!(retry_after(429, &h).is_empty());
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(429, &h), b"Retry-After:7\n");
        assert_eq!(retry_after(503, &h), b"Retry-After:7\n");
        assert!(retry_after(502, &h).is_empty());
    }

    #[test]
    fn executed_version_is_passed_on_unless_the_answer_has_one() {
        let mut lambda = HeaderMap::new();
        assert!(executed_version(&lambda, None).is_empty());
        lambda.insert("x-amz-executed-version", HeaderValue::from_static("7"));
        assert_eq!(
            executed_version(&lambda, None),
            b"X-Amz-Executed-Version:7\n"
        );
        let mut own = HeaderMap::new();
        assert_eq!(
            executed_version(&lambda, Some(&own)),
            b"X-Amz-Executed-Version:7\n"
        );
        own.insert("x-amz-executed-version", HeaderValue::from_static("mine"));
        assert!(executed_version(&lambda, Some(&own)).is_empty());
        lambda.insert(
            "x-amz-executed-version",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert!(executed_version(&lambda, None).is_empty());
    }
}
