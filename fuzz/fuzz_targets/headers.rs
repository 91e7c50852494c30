//! The request path between nginx and the function: the header lines the Lua side
//! passes (`name:value\n`), the request built from them for each kind of route, and
//! the response head handed back to nginx. Never panic; what goes out is well-formed.
#![no_main]

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use aws_lambda_native::config::PluginConfig;
use aws_lambda_native::fuzzing::{parse_headers, request_for, response_head, Refusal};
use aws_lambda_native::invoke::{Body, Incoming, Route};
use aws_lambda_native::sign::Credentials;
use aws_lambda_native::wire;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const SECRET: &str = "S3NTINEL-SECRET-KEY";
const APIKEY: &str = "S3NTINEL-APIKEY";

struct Kind {
    route: Arc<Route>,
    cfg: PluginConfig,
}

/// One route of each kind: apikey, SigV4 (function URL, API Gateway with a session
/// token and unsigned headers, S3-style signing, both apikey and IAM), no authorisation.
static ROUTES: LazyLock<Vec<Kind>> = LazyLock::new(|| {
    let iam = json!({"accesskey": "AKIDFUZZ", "secretkey": SECRET});
    [
        json!({"function_uri": "http://127.0.0.1:9000/fn",
               "authorization": {"apikey": APIKEY}}),
        json!({"function_uri": "https://abc.lambda-url.us-east-1.on.aws/",
               "authorization": {"iam": {"accesskey": "AKIDFUZZ", "secretkey": SECRET,
                                         "aws_region": "us-east-1", "service": "lambda"}}}),
        json!({"function_uri": "https://x.execute-api.eu-west-1.amazonaws.com/stage/a%20b",
               "unsigned_headers": ["x-debug-*", "x-trace"],
               "authorization": {"iam": {"accesskey": "ASIAFUZZ", "secretkey": SECRET,
                                         "session_token": "S3NTINEL-TOKEN"}}}),
        json!({"function_uri": "http://[::1]:8080/a/../b/",
               "authorization": {"iam": {"accesskey": "AKIDFUZZ", "secretkey": SECRET,
                                         "service": "s3"}}}),
        json!({"function_uri": "https://h.example/p",
               "authorization": {"apikey": APIKEY, "iam": iam}}),
        json!({"function_uri": "http://localhost"}),
    ]
    .iter()
    .map(|conf| {
        let cfg = PluginConfig::from_value(conf).expect("fuzz route configuration");
        Kind {
            route: Route::new(cfg.clone()),
            cfg,
        }
    })
    .collect()
});

static CREDS: LazyLock<Credentials> =
    LazyLock::new(|| Credentials::new("AKIDFUZZ", SECRET, Some("S3NTINEL-TOKEN".into())));

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    route: u8,
    method: &'a [u8],
    ext: Option<&'a [u8]>,
    query: &'a [u8],
    headers: &'a [u8],
    body: &'a [u8],
    response: Vec<(&'a [u8], &'a [u8])>,
    head_only: bool,
}

impl Input<'_> {
    /// Whether the client's request itself holds `text` (then it may be echoed).
    fn mentions(&self, text: &str) -> bool {
        let has = |b: &[u8]| {
            b.windows(text.len())
                .any(|w| w.eq_ignore_ascii_case(text.as_bytes()))
        };
        has(self.headers) || has(self.query) || self.ext.is_some_and(has)
    }
}

fuzz_target!(|input: Input<'_>| {
    let parsed = parse_headers(input.headers);
    check_parsed(input.headers, &parsed);
    check_request(&input, parsed.is_ok());
    check_response(&input.response, input.head_only);
});

/// Header lines split into names and values.
type Lines<'a> = Vec<(&'a str, &'a [u8])>;

fn check_parsed(raw: &[u8], parsed: &Result<Lines<'_>, Refusal>) {
    match parsed {
        Ok(list) => {
            let lines = raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            assert_eq!(list.len(), lines);
            for (name, value) in list {
                assert!(wire::valid_header_name(name.as_bytes()), "{name:?}");
                assert!(wire::valid_header_value(value), "{value:?}");
            }
        }
        Err((status, _)) => assert_eq!(*status, 400),
    }
}

fn check_request(input: &Input<'_>, headers_ok: bool) {
    let kind = &ROUTES[usize::from(input.route) % ROUTES.len()];
    let body = Bytes::copy_from_slice(input.body);
    let incoming = Incoming {
        method: input.method.to_vec(),
        ext: input.ext.map(<[u8]>::to_vec),
        query: input.query.to_vec(),
        headers: input.headers.to_vec(),
        body: Body::Memory(body.clone()),
        context: None,
    };
    let req = match request_for(&kind.route, &incoming, &CREDS, body) {
        Ok(req) => req,
        Err((status, message)) => {
            // The route is valid: only the client's request can be refused, with a
            // message that names no secret.
            assert_eq!(status, 400, "{message}");
            assert!(
                !message.contains(SECRET) || input.mentions(SECRET),
                "{message}"
            );
            return;
        }
    };
    assert!(headers_ok, "a request with unparsable headers was built");
    let client: Lines<'_> = parse_headers(input.headers).expect("parsed before");
    let connection: Vec<&str> = client
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    let listed = wire::connection_listed(&connection);
    // What the client sent for the function (the rest belongs to its connection).
    // Names may come in any case through the C ABI.
    let end_to_end = |name: &str| {
        !wire::is_hop_by_hop(name)
            && !listed.iter().any(|l| l.eq_ignore_ascii_case(name))
            && !name.eq_ignore_ascii_case("host")
            && !name.eq_ignore_ascii_case("content-length")
    };
    let client_has = |name: &str| {
        client
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name) && end_to_end(n))
    };
    let cfg = &kind.cfg;
    let out = req.headers();

    assert_eq!(
        out.get(http::header::HOST).unwrap(),
        cfg.endpoint.authority.as_str()
    );
    let apikey = cfg.apikey.is_some() && !client_has("x-api-key");
    let signed = cfg.iam.is_some() && !apikey && !client_has("authorization");
    // Every header sent is the client's (end to end) or the plugin's own.
    for name in out.keys() {
        let name = name.as_str();
        let own = match name {
            "host" | "content-length" => true,
            "x-api-key" => apikey,
            "authorization" | "x-amz-date" | "x-amz-security-token" => signed,
            _ => false,
        };
        assert!(own || client_has(name), "{name} sent");
    }
    if let Some(len) = out.get(http::header::CONTENT_LENGTH) {
        assert_eq!(len.to_str().unwrap(), input.body.len().to_string());
    }

    let path = req.uri().path();
    let base = cfg.endpoint.base_path.trim_end_matches('/');
    assert!(path.starts_with(base), "{path} outside {base}");

    if apikey {
        assert_eq!(out.get("x-api-key").unwrap(), APIKEY);
    }
    if signed {
        let auth = out
            .get(http::header::AUTHORIZATION)
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDFUZZ/"),
            "{auth}"
        );
        assert!(out.get("x-amz-date").is_some());
        // The function receives exactly the query that was signed.
        let sent = req.uri().query().unwrap_or("");
        assert_eq!(sent, wire::canonical_query(input.query));
    } else {
        let sent = req.uri().query().unwrap_or("");
        assert_eq!(sent, wire::sanitize_query(input.query));
    }
    for (name, value) in out {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !value.contains(SECRET) || input.mentions(SECRET),
            "secret in {name}"
        );
    }
}

fn check_response(pairs: &[(&[u8], &[u8])], head_only: bool) {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    let head = response_head(&map, head_only);
    let mut lines = 0;
    for line in head.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .expect("line without a colon");
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let lower = String::from_utf8(name.to_ascii_lowercase()).expect("ASCII name");
        assert!(
            map.contains_key(lower.as_str()),
            "{lower} was not in the response"
        );
        assert!(!wire::is_hop_by_hop(&lower), "{lower} passed on");
        assert!(head_only || lower != "content-length");
        assert!(!value.contains(&b'\r'));
    }
    assert!(lines <= map.len());
    assert!(head.is_empty() || head.ends_with(b"\n"));
}
