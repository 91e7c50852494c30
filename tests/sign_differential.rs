//! The signing fast path against `aws-sigv4`: `sign::sign` and
//! `sign::sign_with_aws_sigv4` must give the same headers and signature (or both fail)
//! for many generated requests: odd paths (dot segments, empty segments, escapes,
//! sub-delims), queries (repeats, `+`, bad escapes, empty names and values), repeated
//! headers in mixed case, values with spaces and tabs, a given host, the signer's own
//! headers given by the caller, with and without a session token, every settings
//! combination, dates across the whole range, and credentials reused (so that cached
//! signing keys are hit and evicted).
//!
//! A query whose names or values are not UTF-8 once decoded is the exception: SigV4 signs
//! its bytes, where `aws-sigv4` signs U+FFFD in their place. Those requests take the fast
//! path or are refused, and `queries_that_are_not_utf8_sign_their_bytes` checks the fast
//! path against a canonical request written out here, signed with `aws-sigv4`'s own key
//! derivation and HMAC.
//!
//! `sign::sign_target`, what the plugin signs its
//! requests with (the same request in parts, the query already canonical), is held to
//! the same reference.

use std::time::{Duration, UNIX_EPOCH};

use aws_lambda_native::sign::{
    sign, sign_fast_only, sign_target, sign_with_aws_sigv4, Credentials, SigningConfig, Target,
};
use aws_lambda_native::wire;
use aws_sigv4::sign::v4;

/// xorshift64*: deterministic, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    /// Mostly from `usual`, now and then from `declined` (what the fast path leaves to
    /// aws-sigv4).
    fn usually<T: Copy>(&mut self, usual: &[T], declined: &[T]) -> T {
        if self.chance(3) {
            self.pick(declined)
        } else {
            self.pick(usual)
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "X-Custom",
];
const HOSTS: &[&str] = &[
    "abcdef1234.execute-api.us-east-1.amazonaws.com",
    "lambda.us-east-2.amazonaws.com",
    "Example.COM",
    "127.0.0.1",
    "h",
];
const PORTS: &[&str] = &["", ":443", ":80", ":8443", ":1", ":65535", ":0443"];
const SEGMENTS: &[&str] = &[
    "a",
    "prod",
    "fn",
    "b.c",
    ".",
    "..",
    "...",
    "",
    "%20",
    "%2F",
    "%2f",
    "x%zz",
    "100%",
    "%C3%A9",
    "~user",
    "a:b",
    "@",
    "!$&'()*+,;=",
    "-_.~",
    "2015-03-31",
    "arn%3Aaws%3Alambda%3Aus-west-2%3A123%3Afunction%3Af",
];
const SEGMENTS_DECLINED: &[&str] = &["with space", "é", "[x]", "a\"b", "{}"];
const QUERY_PIECES: &[&str] = &[
    "a=1",
    "a=2",
    "a=1",
    "b",
    "b=",
    "=v",
    "k==v",
    "a+b=c+d",
    "p=%2B%2b",
    "p=%zz",
    "q=%",
    "e=%C3%A9",
    "bad=%FF",
    "r=!*'();:@$,/?",
    "t=~-._",
    "B=1",
    "_=1",
    "",
    "x-id=7f3c9b8e-2d4a",
];
const QUERY_PIECES_DECLINED: &[&str] = &["sp=a b", "br=[x]"];
const NAMES: &[&str] = &[
    "accept",
    "Accept",
    "content-type",
    "Content-Type",
    "content-length",
    "x-request-id",
    "X-Tenant",
    "x-tenant",
    "x-amz-date",
    "X-Amz-Security-Token",
    "x-amz-content-sha256",
    "Host",
    "x-custom",
    "a",
    "Z",
    "x_underscore",
    "x.dot",
    "!#$%&'*+-.^_`|~",
];
const NAMES_DECLINED: &[&str] = &["bad name", ""];
const VALUES: &[&str] = &[
    "application/json",
    "gzip, deflate, br",
    "  leading and trailing  ",
    "inner   runs  of    spaces",
    "",
    " ",
    "\ttab\t",
    "a \t b",
    "v",
    "42",
    "example.com:8443",
    "20150830T123600Z",
    "UTF-8 é ü",
    "quotes \"x\" and 'y'",
    "a,b,c",
];
const VALUES_DECLINED: &[&str] = &["new\nline", "nul\0", "del\x7f"];
const REGIONS: &[&str] = &["us-east-1", "eu-west-3", "ap-southeast-2", "x"];
const SERVICES: &[&str] = &["execute-api", "lambda", "s3", "service"];
const SECRETS: &[&str] = &[
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "notrealrnrELgWzOk3IfjzDKtFBhDby",
    "s",
];
const TOKENS: &[&str] = &[
    "IQoJb3JpZ2luX2VjEXAMPLETOKEN/abc+def==",
    "token with  spaces ",
    "t",
];

fn gen_uri(rng: &mut Rng) -> String {
    let mut uri = String::from(if rng.chance(70) {
        "https://"
    } else {
        "http://"
    });
    uri.push_str(rng.pick(HOSTS));
    uri.push_str(rng.pick(PORTS));
    for _ in 0..=rng.below(6) {
        uri.push('/');
        uri.push_str(rng.usually(SEGMENTS, SEGMENTS_DECLINED));
    }
    if rng.chance(15) {
        uri.push('/');
    }
    if rng.chance(60) {
        uri.push('?');
        let pieces: Vec<&str> = (0..rng.below(6))
            .map(|_| rng.usually(QUERY_PIECES, QUERY_PIECES_DECLINED))
            .collect();
        uri.push_str(&pieces.join("&"));
    }
    uri
}

#[test]
fn fast_path_matches_aws_sigv4() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Shared objects, so that keys are cached across requests, dates and scopes.
    let creds: Vec<Credentials> = (0..6)
        .map(|i| {
            let token = (i % 2 == 1).then(|| TOKENS[i / 2 % TOKENS.len()].to_owned());
            Credentials::new(format!("AKID{i}EXAMPLE"), SECRETS[i % SECRETS.len()], token)
        })
        .collect();
    // A few days per run: some requests fall on the same day and hit the cache.
    let days: Vec<u64> = (0..8).map(|_| rng.next() % 2_932_896).collect();

    let (mut fast, mut total, mut errors, mut bytes, mut parts_signed) = (0, 0, 0, 0, 0);
    for case in 0..20_000 {
        let mut cfg = SigningConfig::new(rng.pick(REGIONS), rng.pick(SERVICES));
        cfg.normalize_path = rng.chance(70);
        cfg.sign_body = rng.chance(30);
        cfg.double_encode_path = rng.chance(70);
        let creds = &creds[rng.below(creds.len())];
        let method = rng.pick(METHODS);
        let uri = gen_uri(&mut rng);
        let headers: Vec<(&str, &str)> = (0..rng.below(9))
            .map(|_| {
                (
                    rng.usually(NAMES, NAMES_DECLINED),
                    rng.usually(VALUES, VALUES_DECLINED),
                )
            })
            .collect();
        let body: Vec<u8> = (0..rng.below(3) * rng.below(80))
            .map(|_| rng.next() as u8)
            .collect();
        let secs = rng.pick(&days) * 86_400 + rng.next() % 86_400;
        let time = UNIX_EPOCH
            + Duration::from_secs(secs)
            + Duration::from_nanos(rng.next() % 1_000_000_000);

        let got = sign(&cfg, creds, method, &uri, &headers, &body, time);
        let fast_only = sign_fast_only(&cfg, creds, method, &uri, &headers, &body, time);
        let fast_taken = matches!(fast_only, Some(Ok(_)));
        let query = uri.split_once('?').map_or("", |(_, q)| q);
        let want = if wire::query_is_utf8(query.as_bytes()) {
            sign_with_aws_sigv4(&cfg, creds, method, &uri, &headers, &body, time)
        } else {
            // Only the fast path signs the bytes (see the module's comment).
            bytes += 1;
            match fast_only {
                Some(Ok(s)) => Ok(s),
                _ => {
                    assert!(got.is_err(), "case {case}: {uri} signed off the fast path");
                    fast += usize::from(fast_taken);
                    errors += 1;
                    total += 1;
                    continue;
                }
            }
        };
        let context = || {
            format!("case {case}: {method} {uri} {headers:?} body {} bytes, {cfg:?}, token {}, t={secs}",
                body.len(), creds.has_session_token())
        };
        match (&got, &want) {
            (Ok(got), Ok(want)) => {
                assert_eq!(got.signature, want.signature, "{}", context());
                assert_eq!(got.headers, want.headers, "{}", context());
            }
            (Err(_), Err(_)) => errors += 1,
            _ => panic!(
                "{}: fast {:?}, aws-sigv4 {:?}",
                context(),
                got.as_ref().err(),
                want.as_ref().err()
            ),
        }
        if fast_taken {
            fast += 1;
        }
        total += 1;

        // The same request in parts, as the plugin builds it: the canonical query is
        // what it sends, so the reference signs the uri with that query.
        if let Some(parts) = split(&uri) {
            let query = wire::canonical_query(parts.3.as_bytes());
            let target = Target {
                tls: parts.0,
                authority: parts.1,
                path: parts.2,
                canonical_query: &query,
            };
            let got = sign_target(&cfg, creds, method, &target, &headers, &body, time);
            // A query that is not UTF-8: aws-sigv4 signs another one (U+FFFD for its
            // bytes), so `sign` of the uri, checked above and in
            // `queries_that_are_not_utf8_sign_their_bytes`, is the reference.
            let want = if wire::query_is_utf8(query.as_bytes()) {
                sign_with_aws_sigv4(&cfg, creds, method, &target.uri(), &headers, &body, time)
            } else {
                sign(&cfg, creds, method, &target.uri(), &headers, &body, time)
            };
            match (&got, &want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.signature, want.signature, "parts: {}", context());
                    assert_eq!(got.headers, want.headers, "parts: {}", context());
                    parts_signed += 1;
                }
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "parts: {}: {:?}, aws-sigv4 {:?}",
                    context(),
                    got.as_ref().err(),
                    want.as_ref().err()
                ),
            }
        }
    }
    // The generator is meant to send most requests through the fast path, and some
    // through each fallback.
    assert!(
        fast * 2 > total,
        "only {fast} of {total} took the fast path"
    );
    // Queries that are not UTF-8 are refused off the fast path as well.
    assert!(
        errors > 0 && errors * 3 < total,
        "{errors} of {total} were rejected"
    );
    assert!(bytes * 20 > total, "only {bytes} queries not UTF-8");
    assert!(
        parts_signed * 2 > total,
        "only {parts_signed} of {total} were signed from parts"
    );
}

/// Queries that are not UTF-8 once decoded: the fast path signs their bytes. The
/// reference is the canonical request as SigV4 defines it (botocore's, and what the mock
/// function verifies), hashed with `sha2` and signed with `aws-sigv4`'s key derivation and
/// HMAC.
#[test]
fn queries_that_are_not_utf8_sign_their_bytes() {
    use sha2::{Digest, Sha256};
    let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160); // 2015-08-30T12:36:00Z
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let creds = Credentials::new("AKIDEXAMPLE", secret, None);
    let cfg = SigningConfig::new("us-east-1", "lambda");
    let cases = [
        ("k=%FF%C3%28", "k=%FF%C3%28"),
        ("name=caf%e9&a=1", "a=1&name=caf%E9"),
        ("%FE=%FF&%FE=%41&e=%C3%A9", "%FE=%FF&%FE=A&e=%C3%A9"),
        ("b=%C3&a+b=%zz&c=%", "a%20b=%25zz&b=%C3&c=%25"),
    ];
    for (query, canonical_query) in cases {
        assert!(!wire::query_is_utf8(query.as_bytes()), "{query}");
        let uri = format!("https://example.amazonaws.com/fn?{query}");
        let creq = format!(
            "GET\n/fn\n{canonical_query}\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\n{}",
            hex::encode(Sha256::digest(b""))
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/lambda/aws4_request\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let key = v4::generate_signing_key(secret, time, "us-east-1", "lambda");
        let want = v4::calculate_signature(key, sts.as_bytes());
        let got = sign(&cfg, &creds, "GET", &uri, &[], b"", time).expect(query);
        assert_eq!(got.signature, want, "{query}");
        assert_eq!(wire::canonical_query(query.as_bytes()), canonical_query);
        // aws-sigv4 alone signs another query: U+FFFD in place of the bytes.
        let lossy = sign_with_aws_sigv4(&cfg, &creds, "GET", &uri, &[], b"", time).unwrap();
        assert_ne!(lossy.signature, want, "{query}");
    }
    // Outside the fast path (here a header value with a control byte) such a query is
    // refused rather than signed as another one.
    let uri = "https://example.amazonaws.com/fn?k=%FF";
    let err = sign(&cfg, &creds, "GET", uri, &[("x-a", "a\x01")], b"", time).unwrap_err();
    assert!(err.is_bad_query(), "{err}");
}

/// Scheme (whether TLS), authority, path and raw query of a generated uri.
fn split(uri: &str) -> Option<(bool, &str, &str, &str)> {
    let (tls, rest) = match uri.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, uri.strip_prefix("http://")?),
    };
    let slash = rest.find('/')?;
    let (authority, path_query) = rest.split_at(slash);
    if path_query.contains('#') {
        return None;
    }
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Some((tls, authority, path, query))
}

/// The plugin's own request shapes all take the fast path.
#[test]
fn plugin_requests_take_the_fast_path() {
    let time = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let cases: &[(&str, &str)] = &[
        ("POST", "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod/orders/42?expand=items&page=2"),
        ("GET", "https://abc.lambda-url.eu-west-1.on.aws/"),
        ("POST", "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-2%3A123456789012%3Afunction%3Af/invocations"),
        ("PUT", "http://127.0.0.1:3290/fn/a%20b/c?x=%2F&y="),
    ];
    let headers = [
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("content-length", "2"),
        ("x-custom", "  spaced   value "),
    ];
    for token in [None, Some("session-token".to_owned())] {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", token);
        for (method, uri) in cases {
            let cfg = SigningConfig::new("us-east-1", "execute-api");
            let fast = sign_fast_only(&cfg, &creds, method, uri, &headers, b"{}", time)
                .unwrap_or_else(|| panic!("{method} {uri} left the fast path"))
                .unwrap();
            let want =
                sign_with_aws_sigv4(&cfg, &creds, method, uri, &headers, b"{}", time).unwrap();
            assert_eq!(fast.headers, want.headers, "{method} {uri}");
        }
    }
}
