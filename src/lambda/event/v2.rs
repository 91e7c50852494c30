//! API Gateway 2.0's event (and a function URL's), serialized straight into the payload
//! buffer: no `aws_lambda_events` struct to fill, no `serde_json::Value` to edit.
//!
//! The shape is exactly what [`super::build_with_crate`] makes from the crate's
//! `ApiGatewayV2httpRequest` (the tests compare the two): the authorizer event's fields
//! are absent, empty maps and lists are left out, and names are lowercased.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Serialize as DeriveSerialize;

use super::{encode_body, param_name, resource, Context, EventError};
use crate::wire;

#[derive(DeriveSerialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cookies: &'a [&'a str],
    headers: Pairs<'a>,
    #[serde(skip_serializing_if = "Pairs::is_empty")]
    query_string_parameters: Pairs<'a>,
    #[serde(skip_serializing_if = "Pairs::is_empty")]
    path_parameters: Pairs<'a>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(DeriveSerialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    route_key: &'a str,
    account_id: &'static str,
    stage: &'static str,
    request_id: &'a str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    time: &'a str,
    time_epoch: i64,
    http: Http<'a>,
}

#[derive(DeriveSerialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
}

/// A JSON object from name, value pairs (names unique).
struct Pairs<'a>(&'a [(String, String)]);

impl Pairs<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Appends `value` to `name`'s entry (comma-joined), or adds the entry.
fn join(pairs: &mut Vec<(String, String)>, name: String, value: &str) {
    match pairs.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => {
            v.push(',');
            v.push_str(value);
        }
        None => pairs.push((name, value.to_owned())),
    }
}

/// Entries beyond which `join` would get slow: a query of thousands of names goes
/// through an index instead.
const LINEAR_MAX: usize = 32;

pub(super) fn build(
    method: &str,
    headers: &[(&str, &[u8])],
    query: &[u8],
    body: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<u8>, EventError> {
    if !wire::valid_header_name(method.as_bytes()) {
        return Err("invalid request method".to_owned());
    }
    let query = std::str::from_utf8(query)
        .ok()
        .filter(|q| wire::query_is_utf8(q.as_bytes()))
        .ok_or("the query string is not valid UTF-8 once decoded and cannot be put in the event")?;

    // Cookies travel in their own list; other repeated headers are joined by commas, as
    // API Gateway and function URLs do. Names are lowercased, as API Gateway does.
    let mut cookies: Vec<&str> = Vec::new();
    let mut joined: Vec<(String, String)> = Vec::with_capacity(headers.len());
    let mut user_agent = None;
    let mut content_type = None;
    for (name, value) in headers {
        let value = std::str::from_utf8(value).map_err(|_| {
            format!("request header {name} is not valid UTF-8 and cannot be put in the event")
        })?;
        if !wire::valid_header_name(name.as_bytes()) {
            return Err("invalid request header name".to_owned());
        }
        if !wire::valid_header_value(value.as_bytes()) {
            return Err(format!(
                "invalid value in request header {}",
                name.to_ascii_lowercase()
            ));
        }
        if name.eq_ignore_ascii_case("cookie") {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()));
            continue;
        }
        if user_agent.is_none() && name.eq_ignore_ascii_case("user-agent") {
            user_agent = Some(value);
        }
        if content_type.is_none() && name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value);
        }
        join(&mut joined, name.to_ascii_lowercase(), value);
    }
    let (body, is_base64_encoded) = encode_body(body, content_type);

    let mut params: Vec<(String, String)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (super::decode(name), super::decode(value));
        if params.len() < LINEAR_MAX {
            join(&mut params, name, &value);
            continue;
        }
        if index.is_empty() {
            index = params
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect();
        }
        match index.get(&name) {
            Some(&i) => {
                params[i].1.push(',');
                params[i].1.push_str(&value);
            }
            None => {
                index.insert(name.clone(), params.len());
                params.push((name, value));
            }
        }
    }

    // Later path parameters of the same name win, as in a map.
    let mut path_params: Vec<(String, String)> = Vec::with_capacity(ctx.params.len());
    for (name, value) in &ctx.params {
        let name = param_name(name);
        match path_params.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = (*value).to_owned(),
            None => path_params.push((name.to_owned(), (*value).to_owned())),
        }
    }

    let route_key = if ctx.route.is_empty() {
        "$default".to_owned()
    } else {
        format!("ANY {}", resource(ctx.route, ctx.path))
    };
    // What a function URL would have: the first label of the host is the URL's id.
    let domain_prefix = ctx.host.split('.').next().unwrap_or_default();
    let time = ctx.time();
    let event = Event {
        version: "2.0",
        route_key: &route_key,
        raw_path: ctx.path,
        raw_query_string: query,
        cookies: &cookies,
        headers: Pairs(&joined),
        query_string_parameters: Pairs(&params),
        path_parameters: Pairs(&path_params),
        request_context: RequestContext {
            route_key: &route_key,
            account_id: "anonymous",
            stage: "$default",
            request_id: ctx.request_id,
            api_id: domain_prefix,
            domain_name: ctx.host,
            domain_prefix,
            time: time.as_str(),
            time_epoch: ctx.epoch_ms,
            http: Http {
                method,
                path: ctx.path,
                protocol: ctx.protocol,
                source_ip: ctx.source_ip,
                // Function URLs always carry one, empty when the client sent none.
                user_agent: user_agent.unwrap_or_default(),
            },
        },
        body: body.as_deref(),
        is_base64_encoded,
    };
    let mut out = Vec::with_capacity(
        512 + ctx.path.len() * 2
            + query.len() * 2
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 6)
                .sum::<usize>()
            + body.as_ref().map_or(0, |b| b.len() + 16),
    );
    serde_json::to_writer(&mut out, &event).map_err(|e| format!("cannot encode the event: {e}"))?;
    Ok(out)
}
