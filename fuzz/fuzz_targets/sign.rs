//! SigV4 signing (`sign::sign`) and the wire canonicalisation of `wire` with arbitrary
//! requests: never panic, and the properties that make "the function receives exactly
//! what was signed" hold.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use aws_lambda_native::sign::{sign, Credentials, SigningConfig};
use aws_lambda_native::wire;
use http::uri::PathAndQuery;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    region: &'a str,
    service: &'a str,
    normalize_path: bool,
    sign_body: bool,
    double_encode_path: bool,
    access_key: &'a str,
    secret_key: &'a str,
    session_token: Option<&'a str>,
    method: &'a str,
    /// The whole uri for a first signature, as the caller might pass anything.
    uri: &'a str,
    /// The request as the plugin builds it: function path, suffix, raw client query.
    base_path: &'a str,
    ext: Option<&'a [u8]>,
    query: &'a [u8],
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    secs: u64,
    nanos: u32,
    before_epoch: bool,
}

fuzz_target!(|input: Input<'_>| {
    check_wire(&input);

    let cfg = SigningConfig {
        region: input.region.to_owned(),
        service: input.service.to_owned(),
        normalize_path: input.normalize_path,
        sign_body: input.sign_body,
        double_encode_path: input.double_encode_path,
    };
    let creds = Credentials::new(
        input.access_key,
        input.secret_key,
        input.session_token.map(str::to_owned),
    );
    let offset = Duration::new(input.secs, input.nanos % 1_000_000_000);
    let time = if input.before_epoch {
        UNIX_EPOCH.checked_sub(offset)
    } else {
        UNIX_EPOCH.checked_add(offset)
    };
    let Some(time) = time else { return };
    let sign = |uri: &str| {
        sign(
            &cfg,
            &creds,
            input.method,
            uri,
            &input.headers,
            input.body,
            time,
        )
    };

    // Arbitrary uri: an error or a well-formed signature, never a panic.
    if let Ok(sig) = sign(input.uri) {
        check_signature(&sig.signature, &sig.headers, &cfg, &creds);
    }

    // The plugin's uri: the query is sent sanitized (unsigned requests) or canonical
    // (signed ones); both forms must sign alike, or AWS would see another query.
    // The base path comes from function_uri's parsed path: it never holds `?` or `#`.
    let base = if is_base_path(input.base_path) {
        input.base_path
    } else {
        "/fn"
    };
    let path = wire::join_path(base, input.ext);
    let sanitized = wire::sanitize_query(input.query);
    let canonical = wire::canonical_query(input.query);
    let with = |q: &str| match q {
        "" => format!("https://fn.example{path}"),
        q => format!("https://fn.example{path}?{q}"),
    };
    if let (Ok(a), Ok(b)) = (sign(&with(&sanitized)), sign(&with(&canonical))) {
        check_signature(&a.signature, &a.headers, &cfg, &creds);
        assert_eq!(
            a.signature, b.signature,
            "sanitized {sanitized:?} and canonical {canonical:?} sign differently"
        );
        // Signing is a function of its inputs.
        let again = sign(&with(&canonical)).expect("signed once, then failed");
        assert_eq!(again.signature, b.signature);
    }
});

fn check_wire(input: &Input<'_>) {
    let raw = input.query;
    let canonical = wire::canonical_query(raw);
    assert_eq!(
        wire::canonical_query(canonical.as_bytes()),
        canonical,
        "not idempotent"
    );
    assert!(
        is_query(&canonical),
        "canonical query not sendable: {canonical:?}"
    );

    let sanitized = wire::sanitize_query(raw);
    assert!(
        is_query(&sanitized),
        "sanitized query not sendable: {sanitized:?}"
    );
    assert_eq!(
        wire::sanitize_query(sanitized.as_bytes()),
        sanitized,
        "not idempotent"
    );
    // Sanitizing changes how the query is written, not what it means.
    assert_eq!(wire::canonical_query(sanitized.as_bytes()), canonical);
    assert_eq!(
        wire::query_is_utf8(sanitized.as_bytes()),
        wire::query_is_utf8(raw)
    );
    if wire::query_is_utf8(raw) {
        assert!(!canonical.contains("%EF%BF%BD") || contains_replacement(raw));
    }

    // A suffix never adds a query or a fragment to a path that has none.
    let path = wire::join_path(input.base_path, input.ext);
    assert!(path.starts_with('/'));
    if is_base_path(input.base_path) {
        let parsed = path
            .parse::<PathAndQuery>()
            .unwrap_or_else(|e| panic!("joined path {path:?}: {e}"));
        assert_eq!(parsed.path(), path);
        assert_eq!(parsed.query(), None);
    }

    let values: Vec<&str> = input.headers.iter().map(|(_, v)| *v).collect();
    for name in wire::connection_listed(&values) {
        assert!(!name.is_empty() && !name.contains(','));
        assert_eq!(name, name.to_ascii_lowercase());
    }
    let extra: Vec<String> = input.headers.iter().map(|(n, _)| n.to_string()).collect();
    for (name, value) in &input.headers {
        let _ = wire::is_unsigned(name, &extra);
        if wire::valid_header_name(name.as_bytes()) {
            assert!(
                http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                "{name:?}"
            );
        }
        if !wire::valid_header_value(value.as_bytes()) {
            assert!(
                http::HeaderValue::from_bytes(value.as_bytes()).is_err(),
                "{value:?}"
            );
        }
    }
}

/// Whether `p` can be the path of a parsed `function_uri` (`""` stands for `/`).
fn is_base_path(p: &str) -> bool {
    (p.is_empty() || p.starts_with('/'))
        && !p.contains(['?', '#'])
        && p.parse::<PathAndQuery>().is_ok()
}

/// Whether a query can go on the wire as it is: a valid request target, no fragment.
fn is_query(q: &str) -> bool {
    format!("/?{q}").parse::<PathAndQuery>().is_ok() && !q.contains('#')
}

/// Whether the decoded query holds U+FFFD itself (then its encoding is expected).
fn contains_replacement(raw: &[u8]) -> bool {
    let decoded: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_decode(&decoded);
    String::from_utf8_lossy(&decoded).contains('\u{FFFD}')
}

fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn check_signature(
    signature: &str,
    headers: &[(&'static str, String)],
    cfg: &SigningConfig,
    creds: &Credentials,
) {
    assert_eq!(signature.len(), 64);
    assert!(signature
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    let mut want = vec!["authorization", "x-amz-date"];
    if creds.has_session_token() {
        want.push("x-amz-security-token");
    }
    if cfg.sign_body {
        want.push("x-amz-content-sha256");
    }
    assert_eq!(names, want);
    let auth = &headers[0].1;
    assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
    assert!(auth.ends_with(&format!("Signature={signature}")), "{auth}");
}
