//! What goes on the wire to the function: the path, the query, which headers are
//! forwarded and which are signed.
//!
//! Each function fixes a way APISIX's Lua plugin gets a request wrong: a suffix sent
//! decoded, a query re-encoded differently from what was signed, hop-by-hop or
//! proxy-rewritten headers signed or forwarded.

use std::borrow::Cow;

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 §2.3: everything but the unreserved characters is percent-encoded. This is
/// also the set `aws-sigv4` encodes canonical query names and values with.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path suffix keeps its segment separators.
const PATH_SUFFIX: &AsciiSet = &UNRESERVED.remove(b'/');

/// Joins the configured function path and the route's wildcard suffix into the request
/// path.
///
/// `base` is the path of `function_uri` as it appears in the URL (already percent-encoded;
/// `""` means `/`). `ext` is the suffix as APISIX gives it (`ctx.curr_req_matched[":ext"]`):
/// decoded bytes, so it is percent-encoded here, keeping only unreserved characters and
/// `/` (APISIX sent it raw: a space or `?` in it broke the request line or the query).
/// The join is APISIX's: concatenate when `base` ends with `/` or `ext` starts with `/`,
/// otherwise insert one `/`. The result always starts with `/`.
pub fn join_path(base: &str, ext: Option<&[u8]>) -> String {
    let ext = ext.unwrap_or_default();
    let mut out = String::with_capacity(1 + base.len() + 1 + ext.len() * 3);
    if !base.starts_with('/') {
        out.push('/');
    }
    out.push_str(base);
    if ext.is_empty() {
        return out;
    }
    if !out.ends_with('/') && ext[0] != b'/' {
        out.push('/');
    }
    out.extend(percent_encode(ext, PATH_SUFFIX));
    out
}

/// The canonical form of the client's query (nginx `$args`, without `?`), byte for byte
/// what `aws-sigv4` puts in the canonical request for the same query.
///
/// Pieces are split on `&` (empty ones skipped) and on their first `=`; names and values
/// are decoded as a form is (`+` is a space, `%XX` a byte, a `%` not followed by two hex
/// digits stays as it is), which is how both `ngx.req.get_uri_args` and `aws-sigv4` read
/// them. Then each is encoded again, byte for byte, keeping only unreserved characters
/// (uppercase hex), the pairs are sorted by name then value, and joined as `name=value`
/// with `&` (a valueless name gives `name=`).
///
/// SigV4 signs bytes: decoded bytes that are not UTF-8 are kept as they are (`%FF` stays
/// `%FF`), as botocore and APISIX's plugin sign them. `aws-sigv4` alone would replace them
/// with U+FFFD (`%EF%BF%BD`); for valid UTF-8 the two are the same.
///
/// Sending this string instead of the client's means the function receives exactly the
/// query that was signed; the result is its own canonical form.
pub fn canonical_query(raw: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &piece[piece.len()..]),
            };
            (
                reencode_form_component(name),
                reencode_form_component(value),
            )
        })
        .collect();
    // Equal pairs are identical strings, so an unstable sort gives the same order.
    pairs.sort_unstable();
    let len = pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (name, value) in &pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Whether every name and value of the query decodes (as `canonical_query` decodes them)
/// to valid UTF-8: only then does `aws-sigv4` sign the same canonical query.
pub fn query_is_utf8(raw: &[u8]) -> bool {
    raw.split(|b| *b == b'&' || *b == b'=')
        .all(|part| percent_decode(part).decode_utf8().is_ok())
}

/// Decodes one name or value as `form_urlencoded` does, then encodes it as `aws-sigv4`'s
/// canonical query does.
fn reencode_form_component(raw: &[u8]) -> String {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let decoded: Cow<'_, [u8]> = percent_decode(&spaced).into();
    percent_encode(&decoded, UNRESERVED).to_string()
}

/// The client's query made safe to send as it is, for requests that are not signed.
///
/// Every byte RFC 3986 §3.4 allows in a query is kept (so `+`, `=`, `&`, `/`, `?` and the
/// client's own `%XX` escapes are untouched); anything else (space, controls, `"`, `#`,
/// `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, non-ASCII bytes, and a `%` not followed by
/// two hex digits) becomes `%XX`.
pub fn sanitize_query(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        let keep = match b {
            b'%' => matches!(
                (raw.get(i + 1), raw.get(i + 2)),
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit()
            ),
            _ => is_query_char(b),
        };
        if keep {
            out.push(char::from(b));
        } else {
            push_pct(&mut out, b);
        }
    }
    out
}

/// RFC 3986 §3.4: `query = *( pchar / "/" / "?" )`, without `%` (handled by the caller).
fn is_query_char(b: u8) -> bool {
    is_pchar(b) || matches!(b, b'/' | b'?')
}

/// RFC 3986 §3.3 `pchar` without its `pct-encoded` part: unreserved, sub-delims, `:`, `@`.
pub(crate) fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn push_pct(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

// Header classification.
//
// Hop-by-hop: RFC 9110 §7.6.1 (Connection and the fields it names; Proxy-Connection,
// Keep-Alive, TE, Transfer-Encoding, Upgrade), Trailer, Proxy-Authorization and
// Proxy-Authenticate from RFC 2616 §13.5.1 (credentials between the client and its proxy:
// never forwarded, signed or put into an event), and Expect (RFC 9110 §10.1.1), which
// nginx has already answered and must not be repeated.
//
// Unsigned: the AWS SigV4 docs ("Create a canonical request": sign host and the x-amz-*
// headers; others are optional), botocore's SIGNED_HEADERS_BLACKLIST (expect,
// transfer-encoding, user-agent, x-amzn-trace-id), aws-sigv4's default excluded headers
// (authorization, user-agent, x-amzn-trace-id, transfer-encoding) and Envoy's
// aws_request_signing default excludes (x-forwarded-for, x-forwarded-proto,
// x-amzn-trace-id).

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Headers that belong to one connection and are never forwarded (request or response).
/// Add the names from [`connection_listed`].
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The lowercase field names listed in `Connection` header values (comma separated,
/// whitespace trimmed, empty items skipped): hop-by-hop as well (RFC 9110 §7.6.1).
pub fn connection_listed(connection_values: &[&str]) -> Vec<String> {
    connection_values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Headers that may be forwarded but are never signed, because something between the
/// gateway and the function may add, change or drop them, or because signing produces
/// them. An entry ending in `*` matches names with that prefix.
///
/// `content-length` is not listed: the plugin sets it itself from the body it sends
/// (the client's is dropped, never forwarded), so its signed value is the one on the
/// wire, as the AWS SDKs sign it. `host` is not listed either: SigV4 requires it.
pub const DEFAULT_UNSIGNED: &[&str] = &[
    // Produced by signing; a client's would be replaced.
    "authorization",
    // Proxies and CDNs rewrite or append to these.
    "user-agent",
    "x-forwarded-*",
    "forwarded",
    "via",
    // AWS's front ends add or extend the trace header.
    "x-amzn-trace-id",
    // Hop-by-hop (also never forwarded); listed for callers that do not filter first.
    "expect",
    "transfer-encoding",
];

/// Whether a header is left out of the signature: [`DEFAULT_UNSIGNED`], the hop-by-hop
/// headers, and `extra` (lowercase names from configuration; a trailing `*` matches a
/// prefix, e.g. `x-custom-*`). `name` may be in any case.
pub fn is_unsigned(name: &str, extra: &[String]) -> bool {
    DEFAULT_UNSIGNED.iter().any(|p| name_matches(p, name))
        || is_hop_by_hop(name)
        || extra.iter().any(|p| name_matches(p, name))
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
        None => name.eq_ignore_ascii_case(pattern),
    }
}

/// RFC 9110 §5.5: a field value containing CR, LF or NUL is invalid (they would split or
/// truncate the header); other bytes, including obs-text, are passed on.
pub fn valid_header_value(v: &[u8]) -> bool {
    !v.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// RFC 9110 §5.1: a field name is a token (§5.6.2), one or more `tchar`.
pub fn valid_header_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&b| is_tchar(b))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod utf8_tests {
    use super::query_is_utf8;

    #[test]
    fn query_utf8() {
        assert!(query_is_utf8(b"a=%C3%A9&b=caf\xc3\xa9&c"));
        assert!(!query_is_utf8(b"a=%FF"));
        assert!(!query_is_utf8(b"%FE=1"));
        assert!(!query_is_utf8(b"a=\xff"));
        assert!(query_is_utf8(b"a=%zz&b=+"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::{sign, Credentials, SigningConfig};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn join_rule() {
        assert_eq!(join_path("", None), "/");
        assert_eq!(join_path("", Some(b"")), "/");
        assert_eq!(join_path("/fn", None), "/fn");
        assert_eq!(join_path("/fn", Some(b"")), "/fn");
        assert_eq!(join_path("/fn", Some(b"a/b")), "/fn/a/b");
        assert_eq!(join_path("/fn/", Some(b"a")), "/fn/a");
        assert_eq!(join_path("/fn", Some(b"/a")), "/fn/a");
        // APISIX's rule concatenates, so both slashes stay.
        assert_eq!(join_path("/fn/", Some(b"/a")), "/fn//a");
        assert_eq!(join_path("", Some(b"a")), "/a");
        assert_eq!(join_path("/", Some(b"a")), "/a");
        assert_eq!(join_path("", Some(b"/a")), "//a");
        // The base is already encoded and is kept as it is.
        assert_eq!(
            join_path("/a%20b/c%2Fd", Some(b"x y")),
            "/a%20b/c%2Fd/x%20y"
        );
        assert_eq!(join_path("fn", Some(b"a")), "/fn/a");
    }

    #[test]
    fn join_encodes_the_suffix() {
        let cases: &[(&[u8], &str)] = &[
            (b"with space", "/fn/with%20space"),
            ("é".as_bytes(), "/fn/%C3%A9"),
            (b"\xff\xfe", "/fn/%FF%FE"),
            (b"!*'():@,;", "/fn/%21%2A%27%28%29%3A%40%2C%3B"),
            (b"=+$&", "/fn/%3D%2B%24%26"),
            (b"100%", "/fn/100%25"),
            (b"%41", "/fn/%2541"),
            (b"a?b=c", "/fn/a%3Fb%3Dc"),
            (b"a#frag", "/fn/a%23frag"),
            (b"a//b/", "/fn/a//b/"),
            (b"-._~AZaz09", "/fn/-._~AZaz09"),
            (b"\0\r\n\t", "/fn/%00%0D%0A%09"),
            (b"[]{}|\\^`\"<>", "/fn/%5B%5D%7B%7D%7C%5C%5E%60%22%3C%3E"),
        ];
        for (ext, want) in cases {
            let got = join_path("/fn", Some(ext));
            assert_eq!(&got, want, "ext {ext:?}");
            assert!(got.parse::<http::uri::PathAndQuery>().is_ok(), "{got}");
        }
    }

    #[test]
    fn apisix_query_example() {
        assert_eq!(
            canonical_query(b"with%20space=a%2Fb%20c&multi=m2&multi=m1&flag&a=*&a-=x"),
            "a=%2A&a-=x&flag=&multi=m1&multi=m2&with%20space=a%2Fb%20c"
        );
    }

    #[test]
    fn awkward_queries() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"&&", ""),
            (b"&a=1&&b=2&", "a=1&b=2"),
            (b"b=2&a=1", "a=1&b=2"),
            (b"a=2&a=1&a=10", "a=1&a=10&a=2"),
            (b"k", "k="),
            (b"k=", "k="),
            (b"=v", "=v"),
            (b"k==v=w", "k=%3Dv%3Dw"),
            (b"a+b=c+d", "a%20b=c%20d"),
            (b"p=%2B%2b", "p=%2B%2B"),
            (b"p=%zz&q=%&r=%2", "p=%25zz&q=%25&r=%252"),
            (b"p=%%41", "p=%25A"),
            (b"e=%C3%A9&f=\xc3\xa9", "e=%C3%A9&f=%C3%A9"),
            (b"bad=%FF", "bad=%FF"),
            (b"bad=\xff", "bad=%FF"),
            (b"k=%FF%C3%28", "k=%FF%C3%28"),
            (b"%fe=%c3&%EF%BF%BD=1", "%EF%BF%BD=1&%FE=%C3"),
            (b"u=-._~", "u=-._~"),
            (b"r=!*'();:@$,/?", "r=%21%2A%27%28%29%3B%3A%40%24%2C%2F%3F"),
            (b"sp=a b", "sp=a%20b"),
            (b"h=a#b", "h=a%23b"),
            (b"B=1&a=1&_=1&~=1&-=1", "-=1&B=1&_=1&a=1&~=1"),
            (b"%61=1&a=0", "a=0&a=1"),
        ];
        for (raw, want) in cases {
            let got = canonical_query(raw);
            assert_eq!(&got, want, "raw {:?}", String::from_utf8_lossy(raw));
            assert_eq!(canonical_query(got.as_bytes()), got, "not idempotent");
        }
    }

    /// The query `aws-sigv4` signs for `raw` is the one `canonical_query` sends.
    #[test]
    fn canonical_query_matches_aws_sigv4() {
        let cfg = SigningConfig::new("us-east-1", "lambda");
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None);
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let auth = |query: &str| {
            let uri = format!("https://example.com/p?{query}");
            sign(&cfg, &creds, "GET", &uri, &[], b"", time)
                .unwrap_or_else(|e| panic!("{uri}: {e}"))
                .signature
        };
        let raws: &[&[u8]] = &[
            b"with%20space=a%2Fb%20c&multi=m2&multi=m1&flag&a=*&a-=x",
            b"&&a=1&&b=2&",
            b"k==v=w&=v&k",
            b"a+b=c+d&p=%2B%2b",
            b"p=%zz&q=%&r=%2&s=%%41",
            b"e=%C3%A9&f=\xc3\xa9&g=%E1%88%B4",
            b"bad=%FF&worse=%C3",
            b"r=!*'();:@$,/?&t=~-._",
            b"B=1&a=1&_=1&~=1&-=1&%61=0",
            b"sp=a b&h=a#b&br=[x]&q=\"{|}\"&bad=\xff",
            b"x=1&x=1&x=",
            // From the sign fuzz target: bytes that are not UTF-8 around a plain one.
            b"\xfaA\xfd&%FAA%FD=%FD",
        ];
        for raw in raws {
            let canonical = canonical_query(raw);
            // A raw query that is not a valid URI is sent only in its sanitized form.
            let as_sent = match std::str::from_utf8(raw) {
                Ok(s)
                    if format!("/?{s}").parse::<http::uri::PathAndQuery>().is_ok()
                        && !s.contains('#') =>
                {
                    s.to_owned()
                }
                _ => sanitize_query(raw),
            };
            assert_eq!(
                auth(&as_sent),
                auth(&canonical),
                "raw {:?}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(canonical_query(as_sent.as_bytes()), canonical);
        }
    }

    #[test]
    fn sanitized_queries() {
        assert_eq!(sanitize_query(b"a=1&b=%2F+c"), "a=1&b=%2F+c");
        assert_eq!(sanitize_query(b"a b"), "a%20b");
        assert_eq!(sanitize_query(b"x=%zz&y=%&z=%4"), "x=%25zz&y=%25&z=%254");
        assert_eq!(
            sanitize_query(b"h=#\"<>\\^`{|}"),
            "h=%23%22%3C%3E%5C%5E%60%7B%7C%7D"
        );
        assert_eq!(sanitize_query("é\u{0}".as_bytes()), "%C3%A9%00");
        assert_eq!(sanitize_query(b"\xff"), "%FF");
        assert_eq!(sanitize_query(b"p=/?:@!$'()*,;"), "p=/?:@!$'()*,;");
    }

    #[test]
    fn hop_by_hop() {
        for name in [
            "Connection",
            "keep-alive",
            "Proxy-Connection",
            "proxy-authorization",
            "Proxy-Authenticate",
            "TE",
            "trailer",
            "Transfer-Encoding",
            "UPGRADE",
            "expect",
        ] {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in ["content-length", "host", "trailers", "x-connection", "te2"] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
        assert_eq!(
            connection_listed(&["close, X-Foo", " Keep-Alive ,,\tx-bar\t", ""]),
            ["close", "x-foo", "keep-alive", "x-bar"]
        );
        assert!(connection_listed(&[]).is_empty());
    }

    #[test]
    fn unsigned() {
        let none: &[String] = &[];
        for name in [
            "Authorization",
            "user-agent",
            "X-Forwarded-For",
            "x-forwarded-proto",
            "x-forwarded-",
            "Forwarded",
            "via",
            "X-Amzn-Trace-Id",
            "expect",
            "transfer-encoding",
            "connection",
        ] {
            assert!(is_unsigned(name, none), "{name}");
        }
        for name in [
            "host",
            "content-length",
            "content-type",
            "x-amz-date",
            "x-forwarded",
            "x-custom-a",
            "vias",
        ] {
            assert!(!is_unsigned(name, none), "{name}");
        }
        let extra = vec![
            "x-custom-*".to_owned(),
            "x-exact".to_owned(),
            "*".to_owned(),
        ];
        assert!(is_unsigned("X-Custom-A", &extra[..2]));
        assert!(is_unsigned("x-custom-", &extra[..2]));
        assert!(!is_unsigned("x-custom", &extra[..2]));
        assert!(is_unsigned("X-EXACT", &extra[..2]));
        assert!(!is_unsigned("x-exact-not", &extra[..2]));
        // A lone `*` matches every name.
        assert!(is_unsigned("content-type", &extra));
        // A multi-byte name cannot split a character: the comparison is on bytes.
        assert!(!is_unsigned("é", &["x*".to_owned()]));
    }

    #[test]
    fn header_values_and_names() {
        assert!(valid_header_value(b""));
        assert!(valid_header_value(b"a b\t\"c\"\x7f\xff"));
        assert!(!valid_header_value(b"a\rb"));
        assert!(!valid_header_value(b"a\nb"));
        assert!(!valid_header_value(b"a\0b"));

        assert!(valid_header_name(b"X-Amz-Date"));
        assert!(valid_header_name(b"!#$%&'*+-.^_`|~09azAZ"));
        for bad in [
            &b""[..],
            b"a b",
            b"a:b",
            b"a\tb",
            b"(a)",
            b"a/b",
            b"a\"b",
            b"\xc3\xa9",
            b"a\0",
        ] {
            assert!(!valid_header_name(bad), "{bad:?}");
        }
    }
}
