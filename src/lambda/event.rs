//! The client's request as the event an API Gateway or a function URL would send.
//!
//! The shapes are `aws_lambda_events`' (the AWS Rust runtime's own definitions); this
//! module only fills them in. Two touch-ups after serializing, both to match what AWS
//! sends: the crate's v2 request also carries the fields of API Gateway's Lambda
//! authorizer event (`type`, `methodArn`, `httpMethod`, ...), which are dropped because
//! frameworks tell v1 from v2 by `httpMethod`; and v1 sends `null`, not `{}`, for an
//! empty query, path parameters and stage variables.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayRequestIdentity,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::config::PayloadFormat;
use crate::wire;

mod v2;

/// Why no event could be built: always the client's request (a 400).
pub type EventError = String;

/// What nginx knows of the request beyond method, headers, query and body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// The path as the client sent it (percent-encoding kept), without the query.
    pub path: &'a str,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    /// The host the client asked for.
    pub host: &'a str,
    /// The request's start, in milliseconds since the epoch.
    pub epoch_ms: i64,
    /// The route's path pattern (`/aws/*`, `/users/:id`), empty when not known.
    pub route: &'a str,
    /// The route's path parameters as the router names them (`:ext` for `*`).
    pub params: Vec<(&'a str, &'a str)>,
}

impl<'a> Context<'a> {
    /// Parses the context the Lua side sends: the request URI (its query is cut here),
    /// client address, request id, protocol, host, start time in milliseconds and route
    /// pattern, then parameter names and values, each followed by a NUL byte.
    pub fn parse(raw: &'a [u8]) -> Result<Self, EventError> {
        let mut fields = raw
            .strip_suffix(b"\0")
            .ok_or("malformed request context")?
            .split(|b| *b == 0)
            .map(std::str::from_utf8);
        let mut next = |what: &str| -> Result<&'a str, EventError> {
            match fields.next() {
                Some(Ok(s)) => Ok(s),
                Some(Err(_)) => Err(format!("the request {what} is not valid UTF-8")),
                None => Err("malformed request context".to_owned()),
            }
        };
        let uri = next("path")?;
        let mut ctx = Context {
            path: uri.split_once('?').map_or(uri, |(path, _)| path),
            source_ip: next("address")?,
            request_id: next("id")?,
            protocol: next("protocol")?,
            host: next("host")?,
            epoch_ms: next("time")?
                .parse()
                .map_err(|_| "malformed request context".to_owned())?,
            route: next("route")?,
            params: Vec::new(),
        };
        // The rest are parameter names and values, in pairs.
        let rest = fields
            .collect::<Result<Vec<&'a str>, _>>()
            .map_err(|_| "a path parameter is not valid UTF-8".to_owned())?;
        if rest.len() % 2 != 0 {
            return Err("malformed request context".to_owned());
        }
        ctx.params = rest.chunks(2).map(|p| (p[0], p[1])).collect();
        Ok(ctx)
    }

    /// The request's start as API Gateway writes `requestContext.time`, in UTC:
    /// `25/Nov/2026:21:18:28 +0000` (nginx's `$time_local` format).
    pub fn time(&self) -> RequestTime {
        RequestTime::from_epoch_ms(self.epoch_ms)
    }
}

/// A time in `dd/Mon/yyyy:HH:MM:SS +0000` form, formatted without allocating.
pub struct RequestTime([u8; 26]);

impl RequestTime {
    fn from_epoch_ms(ms: i64) -> Self {
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        // Years 0 to 9999 fit the four digits; a clock outside them is clamped.
        const MAX_SECS: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        let secs = ms.div_euclid(1000).clamp(-62_167_219_200, MAX_SECS);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);

        let mut out = *b"dd/Mon/yyyy:HH:MM:SS +0000";
        let mut put = |at: usize, value: i64, width: usize| {
            let mut v = value;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, day, 2);
        put(7, year, 4);
        put(12, rem / 3600, 2);
        put(15, rem / 60 % 60, 2);
        put(18, rem % 60, 2);
        out[3..6].copy_from_slice(MONTHS[(month - 1) as usize]);
        RequestTime(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, letters and punctuation were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The event for `format` (not `Raw`) as JSON bytes. `headers` are the client's
/// headers for the function (names in any case; they are lowercased, as API Gateway
/// does), repeated names repeated.
pub fn build(
    format: PayloadFormat,
    method: &str,
    headers: &[(&str, &[u8])],
    query: &[u8],
    body: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<u8>, EventError> {
    if format != PayloadFormat::ApigwV1 {
        return v2::build(method, headers, query, body, ctx);
    }
    build_with_crate(format, method, headers, query, body, ctx)
}

/// [`build`] through `aws_lambda_events`' types and a `serde_json::Value`: API Gateway
/// 1.0's event, and for 2.0 the reference `v2` is tested against.
fn build_with_crate(
    format: PayloadFormat,
    method: &str,
    headers: &[(&str, &[u8])],
    query: &[u8],
    body: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<u8>, EventError> {
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| "invalid request method".to_owned())?;
    let query = std::str::from_utf8(query)
        .ok()
        .filter(|q| wire::query_is_utf8(q.as_bytes()))
        .ok_or("the query string is not valid UTF-8 once decoded and cannot be put in the event")?;
    let mut text_headers: Vec<(&str, &str)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let value = std::str::from_utf8(value).map_err(|_| {
            format!("request header {name} is not valid UTF-8 and cannot be put in the event")
        })?;
        text_headers.push((name, value));
    }
    let content_type = text_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    let (body, is_base64_encoded) = encode_body(body, content_type);
    let params: HashMap<String, String> = ctx
        .params
        .iter()
        .map(|(name, value)| (param_name(name).to_owned(), (*value).to_owned()))
        .collect();
    let resource = resource(ctx.route, ctx.path);
    let user_agent = text_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| (*v).to_owned());
    // What a function URL would have: the first label of the host is the URL's id.
    let domain_prefix = ctx.host.split('.').next().unwrap_or_default().to_owned();

    let event = match format {
        PayloadFormat::ApigwV1 => {
            let mut rc = ApiGatewayProxyRequestContext::default();
            rc.account_id = Some("anonymous".into());
            rc.apiid = Some(domain_prefix.clone());
            rc.stage = Some("$default".into());
            rc.request_id = Some(ctx.request_id.into());
            rc.resource_path = Some(resource.clone());
            rc.path = Some(ctx.path.into());
            rc.http_method = method.clone();
            rc.request_time = Some(ctx.time().as_str().into());
            rc.request_time_epoch = ctx.epoch_ms;
            rc.protocol = Some(ctx.protocol.into());
            rc.domain_name = Some(ctx.host.into());
            rc.domain_prefix = Some(domain_prefix);
            let mut identity = ApiGatewayRequestIdentity::default();
            identity.source_ip = Some(ctx.source_ip.into());
            identity.user_agent = user_agent;
            rc.identity = identity;

            let mut ev = ApiGatewayProxyRequest::default();
            ev.resource = Some(resource);
            ev.path = Some(ctx.path.into());
            ev.http_method = method;
            // `headers` keeps the last of repeated values, `multiValueHeaders` all.
            ev.headers = header_map(&text_headers, |map, name, value| {
                map.insert(name, value);
            })?;
            ev.multi_value_headers = header_map(&text_headers, |map, name, value| {
                map.append(name, value);
            })?;
            let all = query_values(query);
            // The crate writes the first of repeated values; API Gateway sends the last.
            ev.query_string_parameters = QueryMap::from(
                all.iter()
                    .map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default()))
                    .collect::<HashMap<String, String>>(),
            );
            ev.multi_value_query_string_parameters = QueryMap::from(all);
            ev.path_parameters = params;
            ev.request_context = rc;
            ev.body = body;
            ev.is_base64_encoded = is_base64_encoded;
            let mut value = to_value(&ev)?;
            for key in [
                "queryStringParameters",
                "multiValueQueryStringParameters",
                "pathParameters",
                "stageVariables",
            ] {
                if value[key].as_object().is_some_and(|o| o.is_empty()) {
                    value[key] = Value::Null;
                }
            }
            value
        }
        PayloadFormat::ApigwV2 | PayloadFormat::Raw => {
            let route_key = if ctx.route.is_empty() {
                "$default".to_owned()
            } else {
                format!("ANY {resource}")
            };
            let mut http_desc = ApiGatewayV2httpRequestContextHttpDescription::default();
            http_desc.method = method;
            http_desc.path = Some(ctx.path.into());
            http_desc.protocol = Some(ctx.protocol.into());
            http_desc.source_ip = Some(ctx.source_ip.into());
            // Function URLs always carry one, empty when the client sent none.
            http_desc.user_agent = Some(user_agent.unwrap_or_default());
            let mut rc = ApiGatewayV2httpRequestContext::default();
            rc.route_key = Some(route_key.clone());
            rc.account_id = Some("anonymous".into());
            rc.apiid = Some(domain_prefix.clone());
            rc.stage = Some("$default".into());
            rc.request_id = Some(ctx.request_id.into());
            rc.domain_name = Some(ctx.host.into());
            rc.domain_prefix = Some(domain_prefix);
            rc.time = Some(ctx.time().as_str().into());
            rc.time_epoch = ctx.epoch_ms;
            rc.http = http_desc;

            // Cookies travel in their own list; other repeated headers are joined by
            // commas, as API Gateway and function URLs do.
            let cookies: Vec<String> = text_headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
                .flat_map(|(_, v)| v.split(';'))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let mut joined: Vec<(&str, String)> = Vec::new();
            for (name, value) in text_headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("cookie"))
            {
                match joined
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    Some((_, v)) => {
                        v.push(',');
                        v.push_str(value);
                    }
                    None => joined.push((name, (*value).to_owned())),
                }
            }
            let joined: Vec<(&str, &str)> = joined.iter().map(|(n, v)| (*n, v.as_str())).collect();

            let mut ev = ApiGatewayV2httpRequest::default();
            ev.version = Some("2.0".into());
            ev.route_key = Some(route_key);
            ev.raw_path = Some(ctx.path.into());
            ev.raw_query_string = Some(query.into());
            ev.cookies = (!cookies.is_empty()).then_some(cookies);
            ev.headers = header_map(&joined, |map, name, value| {
                map.insert(name, value);
            })?;
            ev.query_string_parameters = QueryMap::from(query_values(query));
            ev.path_parameters = params;
            ev.request_context = rc;
            ev.body = body;
            ev.is_base64_encoded = is_base64_encoded;
            let mut value = to_value(&ev)?;
            if let Some(obj) = value.as_object_mut() {
                for key in [
                    "type",
                    "methodArn",
                    "httpMethod",
                    "identitySource",
                    "authorizationToken",
                    "resource",
                    "stageVariables",
                ] {
                    obj.remove(key);
                }
            }
            value
        }
    };
    serde_json::to_vec(&event).map_err(|e| format!("cannot encode the event: {e}"))
}

fn to_value<T: serde::Serialize>(event: &T) -> Result<Value, EventError> {
    serde_json::to_value(event).map_err(|e| format!("cannot encode the event: {e}"))
}

fn header_map(
    headers: &[(&str, &str)],
    put: impl Fn(&mut HeaderMap, HeaderName, HeaderValue),
) -> Result<HeaderMap, EventError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| "invalid request header name".to_owned())?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value in request header {name}"))?;
        put(&mut map, name, value);
    }
    Ok(map)
}

/// Names and decoded values, repeated names collected in order.
fn query_values(query: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(decode(name)).or_default().push(decode(value));
    }
    map
}

/// Percent-decoding as API Gateway does it: `+` stays a plus sign. The caller checked
/// that the result is UTF-8.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// API Gateway's name for the greedy parameter is `proxy` (`/{proxy+}`).
fn param_name(name: &str) -> &str {
    if name == ":ext" {
        "proxy"
    } else {
        name.strip_prefix(':').unwrap_or(name)
    }
}

/// The route pattern in API Gateway's notation: `/aws/*` is `/aws/{proxy+}`, `/u/:id`
/// is `/u/{id}`. Without a pattern, the request path.
fn resource(route: &str, path: &str) -> String {
    if route.is_empty() {
        return path.to_owned();
    }
    route
        .split('/')
        .map(|seg| {
            if seg == "*" {
                "{proxy+}".to_owned()
            } else if let Some(name) = seg.strip_prefix('*') {
                format!("{{{name}+}}")
            } else if let Some(name) = seg.strip_prefix(':') {
                format!("{{{name}}}")
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Text bodies go as they are; anything else (a binary type, or bytes that are not
/// UTF-8) base64-encoded, as function URLs do.
fn encode_body(body: &[u8], content_type: Option<&str>) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) if content_type.is_none_or(is_text) => (Some(text.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

/// The media types function URLs pass as text.
fn is_text(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "application/yaml"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            path: "/aws/a%20b",
            source_ip: "192.0.2.7",
            request_id: "req-1",
            protocol: "HTTP/1.1",
            host: "gw.example.com",
            epoch_ms: 1_795_900_708_000,
            route: "/aws/*",
            params: vec![(":ext", "a b")],
        }
    }

    fn event(format: PayloadFormat, headers: &[(&str, &[u8])], query: &str, body: &[u8]) -> Value {
        let bytes = build(format, "POST", headers, query.as_bytes(), body, &ctx()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn context_round_trip() {
        let raw = b"/p?a=1?b\x001.2.3.4\0id\0HTTP/2.0\0h\x0042\0/r/:x\0:x\0v\0";
        let c = Context::parse(raw).unwrap();
        assert_eq!((c.path, c.epoch_ms, c.route), ("/p", 42, "/r/:x"));
        assert_eq!(
            (c.source_ip, c.request_id, c.protocol),
            ("1.2.3.4", "id", "HTTP/2.0")
        );
        assert_eq!(c.host, "h");
        assert_eq!(c.params, [(":x", "v")]);
        assert_eq!(
            Context::parse(b"/%3F\0a\0i\0p\0h\x001\0\0").unwrap().path,
            "/%3F"
        );
        assert!(Context::parse(b"/p\0").is_err());
        assert!(Context::parse(b"/p\x001\0i\0p\0h\0x\0r\0").is_err());
        assert!(Context::parse(b"/\xff\x001\0i\0p\0h\x001\0r\0").is_err());
        assert!(Context::parse(b"/p\x001\0i\0p\0h\x001\0r\0name\0").is_err());
    }

    /// nginx's `$time_local` format, in UTC as API Gateway writes it.
    #[test]
    fn request_times() {
        let at = |ms: i64| RequestTime::from_epoch_ms(ms).as_str().to_owned();
        assert_eq!(at(1_795_900_708_000), "28/Nov/2026:21:18:28 +0000");
        assert_eq!(at(1_795_900_708_999), "28/Nov/2026:21:18:28 +0000");
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
        assert_eq!(at(4_102_444_799_000), "31/Dec/2099:23:59:59 +0000");
        assert_eq!(at(-1), "31/Dec/1969:23:59:59 +0000");
        assert_eq!(at(i64::MAX), "31/Dec/9999:23:59:59 +0000");
        assert_eq!(at(i64::MIN), "01/Jan/0000:00:00:00 +0000");
        // Every day of four years, against the standard library's own calendar walk.
        let mut day = 1_i64;
        let (mut y, mut m) = (2023_i64, 1_usize);
        let days_in = |y: i64, m: usize| match m {
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for n in 0..(4 * 366) {
            let ms = (1_672_531_200 + n * 86_400 + 3_723) * 1000;
            assert_eq!(
                at(ms),
                format!("{day:02}/{}/{y}:01:02:03 +0000", months[m - 1])
            );
            day += 1;
            if day > days_in(y, m) {
                day = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn v2_shape() {
        let h: &[(&str, &[u8])] = &[
            ("host", b"gw.example.com"),
            ("user-agent", b"curl/8"),
            ("x-multi", b"1"),
            ("x-multi", b"2"),
            ("cookie", b"a=1; b=2"),
            ("content-type", b"application/json"),
        ];
        let ev = event(PayloadFormat::ApigwV2, h, "a=1&a=2&b=x+y%21", b"{\"k\":1}");
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "ANY /aws/{proxy+}");
        assert_eq!(ev["rawPath"], "/aws/a%20b");
        assert_eq!(ev["rawQueryString"], "a=1&a=2&b=x+y%21");
        assert_eq!(ev["cookies"], serde_json::json!(["a=1", "b=2"]));
        assert_eq!(ev["headers"]["x-multi"], "1,2");
        assert!(ev["headers"].get("cookie").is_none());
        assert_eq!(ev["queryStringParameters"]["a"], "1,2");
        assert_eq!(ev["queryStringParameters"]["b"], "x+y!");
        assert_eq!(ev["pathParameters"]["proxy"], "a b");
        assert_eq!(ev["body"], "{\"k\":1}");
        assert_eq!(ev["isBase64Encoded"], false);
        let rc = &ev["requestContext"];
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["sourceIp"], "192.0.2.7");
        assert_eq!(rc["http"]["userAgent"], "curl/8");
        assert_eq!(rc["domainPrefix"], "gw");
        assert_eq!(rc["timeEpoch"], 1_795_900_708_000_i64);
        for gone in [
            "httpMethod",
            "type",
            "methodArn",
            "resource",
            "stageVariables",
        ] {
            assert!(ev.get(gone).is_none(), "{gone}");
        }
    }

    #[test]
    fn v1_shape() {
        let h: &[(&str, &[u8])] = &[("x-multi", b"1"), ("x-multi", b"2")];
        let ev = event(PayloadFormat::ApigwV1, h, "a=1&a=2", b"");
        assert_eq!(ev["resource"], "/aws/{proxy+}");
        assert_eq!(ev["httpMethod"], "POST");
        assert_eq!(ev["headers"]["x-multi"], "2");
        assert_eq!(
            ev["multiValueHeaders"]["x-multi"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(ev["queryStringParameters"]["a"], "2");
        assert_eq!(
            ev["multiValueQueryStringParameters"]["a"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(ev["body"], Value::Null);
        assert_eq!(ev["stageVariables"], Value::Null);
        assert_eq!(ev["requestContext"]["identity"]["sourceIp"], "192.0.2.7");
        let empty = event(PayloadFormat::ApigwV1, &[], "", b"");
        assert_eq!(empty["queryStringParameters"], Value::Null);
    }

    #[test]
    fn header_names_in_any_case() {
        let h: &[(&str, &[u8])] = &[("Cookie", b"a=1"), ("X-M", b"1"), ("x-m", b"2")];
        let ev = event(PayloadFormat::ApigwV2, h, "", b"");
        assert_eq!(ev["cookies"], serde_json::json!(["a=1"]));
        assert_eq!(ev["headers"], serde_json::json!({"x-m": "1,2"}));
    }

    #[test]
    fn binary_bodies_are_base64() {
        let ev = event(PayloadFormat::ApigwV2, &[], "", b"\xff\x00bin");
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["body"], "/wBiaW4=");
        let typed: &[(&str, &[u8])] = &[("content-type", b"image/png")];
        assert_eq!(
            event(PayloadFormat::ApigwV2, typed, "", b"png")["isBase64Encoded"],
            true
        );
        let text: &[(&str, &[u8])] = &[("content-type", b"text/plain; charset=utf-8")];
        assert_eq!(event(PayloadFormat::ApigwV2, text, "", b"hi")["body"], "hi");
    }

    #[test]
    fn refuses_what_json_cannot_carry() {
        let c = ctx();
        let bad_header: &[(&str, &[u8])] = &[("x", b"\xff")];
        let e = build(PayloadFormat::ApigwV2, "GET", bad_header, b"", b"", &c).unwrap_err();
        assert!(e.contains("request header x is not valid UTF-8"), "{e}");
        let e = build(PayloadFormat::ApigwV2, "GET", &[], b"a=%ff", b"", &c).unwrap_err();
        assert!(e.contains("query string"), "{e}");
    }

    #[test]
    fn resources() {
        assert_eq!(resource("/aws/*", "/aws/x"), "/aws/{proxy+}");
        assert_eq!(resource("/u/:id/*rest", "/u/1/x"), "/u/{id}/{rest+}");
        assert_eq!(resource("", "/x"), "/x");
    }

    /// The 2.0 event written straight into the buffer is the crate's, field for field.
    #[test]
    fn v2_direct_matches_the_crate() {
        let headers: &[&[(&str, &[u8])]] = &[
            &[],
            &[("host", b"gw.example.com")],
            &[("cookie", b"a=1; ; b=2"), ("Cookie", b"c=3")],
            &[
                ("Host", b"h"),
                ("User-Agent", b"ua/1"),
                ("user-agent", b"ua/2"),
                ("X-Multi", b"1"),
                ("x-multi", b"2"),
                ("content-type", b"application/octet-stream"),
                ("x-empty", b""),
            ],
            &[
                ("content-type", b"text/plain; charset=utf-8"),
                ("x-tab", b"a\tb"),
            ],
        ];
        let queries = [
            "",
            "a=1",
            "a=1&a=2&b=x+y%21&&c&=v&d=",
            "%E2%82%AC=%E2%82%AC&a=%2B",
        ];
        let bodies: [&[u8]; 4] = [b"", b"{\"k\":1}", b"\xff\x00binary", b"text"];
        let mut long_query = String::new();
        for i in 0..100 {
            long_query.push_str(&format!("k{}={i}&", i % 40));
        }
        let contexts = [
            ctx(),
            Context {
                route: "",
                params: Vec::new(),
                host: "nodots",
                ..ctx()
            },
            Context {
                route: "/u/:id/*",
                params: vec![(":id", "7"), (":ext", "x/y"), (":id", "8")],
                ..ctx()
            },
        ];
        let mut n = 0;
        for h in headers {
            for q in queries.iter().copied().chain([long_query.as_str()]) {
                for b in bodies {
                    for c in &contexts {
                        for method in ["GET", "POST", "PROPFIND"] {
                            let direct = v2::build(method, h, q.as_bytes(), b, c).unwrap();
                            let reference = build_with_crate(
                                PayloadFormat::ApigwV2,
                                method,
                                h,
                                q.as_bytes(),
                                b,
                                c,
                            )
                            .unwrap();
                            let direct: Value = serde_json::from_slice(&direct).unwrap();
                            let reference: Value = serde_json::from_slice(&reference).unwrap();
                            assert_eq!(direct, reference, "{method} {h:?} {q} {b:?} {c:?}");
                            n += 1;
                        }
                    }
                }
            }
        }
        assert!(n > 100);
        // Both refuse the same bad input.
        for (h, q) in [
            (&[("x", &b"\xff"[..])][..], ""),
            (&[][..], "a=%FF"),
            (&[("bad name", &b"v"[..])][..], ""),
        ] {
            assert!(v2::build("GET", h, q.as_bytes(), b"", &ctx()).is_err());
            assert!(
                build_with_crate(PayloadFormat::ApigwV2, "GET", h, q.as_bytes(), b"", &ctx())
                    .is_err()
            );
        }
    }
}
