//! The signing fast path: the canonical request and the string to sign built here, with
//! the derived signing key cached per credentials, date, region and service.
//!
//! Why by hand: `aws_sigv4::http_request::sign` derives the signing key (four HMACs)
//! on every call and offers no way to pass a precomputed one, and it parses the uri and
//! builds an `http::HeaderMap` per request. Measured (benches/sign.rs): about 5 µs per
//! typical request against a budget of 3 µs. The crate's public `generate_signing_key`
//! and `calculate_signature` still do the key derivation and the HMAC; SHA-256 is the
//! same `sha2` crate.
//!
//! Byte-exactness with `aws-sigv4` is the contract: this path takes only the requests
//! whose canonical form it is sure of (plain ASCII uris, token header names, no control
//! bytes; see [`sign`]) and returns `None` for anything else, which then goes through
//! `aws-sigv4` (including every input it rejects). `tests/sign_differential.rs` compares
//! the two on many generated requests.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_sigv4::sign::v4;
use parking_lot::Mutex;
use percent_encoding::{percent_encode, AsciiSet, CONTROLS};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::{header_rank, Credentials, Signature, SigningConfig};
use crate::wire;

/// What `aws-sigv4` encodes a path with in double-encoding mode (aws-smithy-http's
/// `label::fmt_string` with `EncodingStrategy::Greedy`: its `BASE_SET` without `/`).
const PATH_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b':')
    .add(b',')
    .add(b'?')
    .add(b'#')
    .add(b'[')
    .add(b']')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'@')
    .add(b'!')
    .add(b'$')
    .add(b'&')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'^')
    .add(b'`')
    .add(b'\\');

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Longer uris go to `aws-sigv4` (`http::Uri` refuses 64 KiB and more).
const MAX_URI: usize = 16 * 1024;

/// Signing keys kept per credentials: a route signs for one region and service, and the
/// date changes once a day, so a few entries cover a credentials object shared by routes.
const KEYS_PER_CREDENTIALS: usize = 4;

/// Derived signing keys of one credentials object, shared by its clones.
///
/// Living inside [`Credentials`] makes rotation immediate: new credentials are a new
/// object with an empty cache, and the old keys go when the last request holding the
/// old credentials ends. Only derived keys are held (never the secret), zeroed when
/// replaced or dropped, and never printed.
#[derive(Default)]
pub(super) struct KeyCache {
    entries: Mutex<Vec<CachedKey>>,
}

struct CachedKey {
    /// yyyymmdd in UTC.
    date: u32,
    region: Box<str>,
    service: Box<str>,
    key: [u8; 32],
}

impl Drop for CachedKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl KeyCache {
    /// The signing key for the scope, derived by `aws-sigv4` on a miss.
    fn get(
        &self,
        secret: &str,
        date: u32,
        time: SystemTime,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let mut entries = self.entries.lock();
        if let Some(e) = entries
            .iter()
            .find(|e| e.date == date && *e.region == *region && *e.service == *service)
        {
            return e.key;
        }
        let derived = v4::generate_signing_key(secret, time, region, service);
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        // Keep the newest dates: drop the oldest entry when full.
        if entries.len() >= KEYS_PER_CREDENTIALS {
            let oldest = (0..entries.len())
                .min_by_key(|&i| entries[i].date)
                .unwrap_or(0);
            entries.swap_remove(oldest);
        }
        entries.push(CachedKey {
            date,
            region: region.into(),
            service: service.into(),
            key,
        });
        key
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

/// Signs like `aws-sigv4` with the settings of `super::settings`, or returns `None` when
/// the request is outside what this path handles, for the caller to sign it the slow way.
/// The caller has checked the method, the time range, and that region and service are
/// not empty.
///
/// Taken: `http://` or `https://` (lowercase), a host of letters, digits, `-` and `.`
/// with an optional decimal port, a path that starts with `/`, path and query bytes
/// from RFC 3986's `pchar`, `/` and `?` (with `%`), no fragment; header names that are
/// tokens and values without control bytes (tab allowed); a session token that is a
/// valid header value.
pub(super) fn sign(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Option<Signature> {
    let parts = split_uri(uri)?;
    let query = wire::canonical_query(parts.query.as_bytes());
    sign_parts(
        cfg,
        creds,
        method,
        &parts.with_query(&query),
        headers,
        body,
        time,
    )
}

/// [`sign`] for a request given in parts, its query already canonical (what the
/// request path sends): nothing is formatted into a uri, parsed back or canonicalised
/// twice. `None` for what [`sign`] would decline.
pub(super) fn sign_target(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    target: &super::Target<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Option<Signature> {
    let default_port = if target.tls { "443" } else { "80" };
    let parts = UriParts {
        host_header: host_header(target.authority, default_port)?,
        path: target.path,
        query: target.canonical_query,
    };
    if target.path.len() + target.canonical_query.len() + target.authority.len() + 9 > MAX_URI
        || !parts.path.starts_with('/')
        || !parts.plain()
    {
        return None;
    }
    sign_parts(cfg, creds, method, &parts, headers, body, time)
}

/// Signs `parts`, whose query is canonical.
fn sign_parts(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    parts: &UriParts<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Option<Signature> {
    let token = creds.inner.session_token();
    if token.is_some_and(|t| !valid_value(t)) {
        return None;
    }

    let when = time::OffsetDateTime::from(time);
    let (year, month, day) = (when.year(), u8::from(when.month()), when.day());
    let date = u32::try_from(year).ok()? * 10_000 + u32::from(month) * 100 + u32::from(day);
    let mut date_time = [0u8; 16];
    put_digits(&mut date_time[0..8], date);
    date_time[8] = b'T';
    put_digits(&mut date_time[9..11], u32::from(when.hour()));
    put_digits(&mut date_time[11..13], u32::from(when.minute()));
    put_digits(&mut date_time[13..15], u32::from(when.second()));
    date_time[15] = b'Z';
    let date_time = std::str::from_utf8(&date_time).ok()?;
    let date_str = &date_time[..8];

    let mut payload_hex = [0u8; 64];
    let payload_hash = hex_digest(body, &mut payload_hex);

    // The canonical headers: the caller's (names lowercased, values trimmed and inner
    // runs of spaces collapsed), host unless given, then the signer's own, which replace
    // any of the same name. A stable sort by name keeps each name's values in order.
    let mut list: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(headers.len() + 4);
    for (name, value) in headers {
        if name.len() > 1024 || !wire::valid_header_name(name.as_bytes()) || !valid_value(value) {
            return None;
        }
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(*name)
        };
        list.push((name, trim_all(value)));
    }
    if !list.iter().any(|(n, _)| n == "host") {
        list.push((Cow::Borrowed("host"), Cow::Borrowed(parts.host_header)));
    }
    replace(&mut list, "x-amz-date", date_time);
    if let Some(token) = token {
        replace(&mut list, "x-amz-security-token", token);
    }
    if cfg.sign_body {
        replace(&mut list, "x-amz-content-sha256", payload_hash);
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));

    let mut creq =
        String::with_capacity(256 + parts.path.len() + parts.query.len() + 64 * list.len());
    creq.push_str(method);
    creq.push('\n');
    let path = if cfg.normalize_path {
        normalize_path(parts.path)
    } else {
        Cow::Borrowed(parts.path)
    };
    if cfg.double_encode_path {
        creq.extend(percent_encode(path.as_bytes(), PATH_ENCODE));
    } else {
        creq.push_str(&path);
    }
    creq.push('\n');
    creq.push_str(parts.query);
    creq.push('\n');
    let mut signed_headers = String::with_capacity(16 * list.len());
    let mut prev: Option<&str> = None;
    for (name, value) in &list {
        if prev == Some(name) {
            creq.push(',');
        } else {
            if prev.is_some() {
                creq.push('\n');
                signed_headers.push(';');
            }
            creq.push_str(name);
            creq.push(':');
            signed_headers.push_str(name);
            prev = Some(name);
        }
        creq.push_str(value);
    }
    creq.push_str("\n\n");
    creq.push_str(&signed_headers);
    creq.push('\n');
    creq.push_str(payload_hash);

    let scope_len = 8 + 1 + cfg.region.len() + 1 + cfg.service.len() + 13;
    let mut sts = String::with_capacity(ALGORITHM.len() + 1 + 16 + 1 + scope_len + 1 + 64);
    sts.push_str(ALGORITHM);
    sts.push('\n');
    sts.push_str(date_time);
    sts.push('\n');
    let scope_at = sts.len();
    sts.push_str(date_str);
    sts.push('/');
    sts.push_str(&cfg.region);
    sts.push('/');
    sts.push_str(&cfg.service);
    sts.push_str("/aws4_request");
    let scope_end = sts.len();
    sts.push('\n');
    let mut creq_hex = [0u8; 64];
    sts.push_str(hex_digest(creq.as_bytes(), &mut creq_hex));

    let mut key = creds.keys.get(
        creds.inner.secret_access_key(),
        date,
        time,
        &cfg.region,
        &cfg.service,
    );
    let signature = v4::calculate_signature(key, sts.as_bytes());
    key.zeroize();

    let access_key = creds.inner.access_key_id();
    let mut authorization = String::with_capacity(
        ALGORITHM.len() + 12 + access_key.len() + scope_len + 16 + signed_headers.len() + 12 + 64,
    );
    authorization.push_str(ALGORITHM);
    authorization.push_str(" Credential=");
    authorization.push_str(access_key);
    authorization.push('/');
    authorization.push_str(&sts[scope_at..scope_end]);
    authorization.push_str(", SignedHeaders=");
    authorization.push_str(&signed_headers);
    authorization.push_str(", Signature=");
    authorization.push_str(&signature);

    let mut out: Vec<(&'static str, String)> = Vec::with_capacity(4);
    out.push(("authorization", authorization));
    out.push(("x-amz-date", date_time.to_owned()));
    if let Some(token) = token {
        out.push(("x-amz-security-token", token.to_owned()));
    }
    if cfg.sign_body {
        out.push(("x-amz-content-sha256", payload_hash.to_owned()));
    }
    debug_assert!(out
        .windows(2)
        .all(|w| header_rank(w[0].0) < header_rank(w[1].0)));
    Some(Signature {
        headers: out,
        signature,
    })
}

struct UriParts<'a> {
    /// The host header `aws-sigv4` signs when none is given: the authority without the
    /// scheme's default port.
    host_header: &'a str,
    path: &'a str,
    query: &'a str,
}

impl<'a> UriParts<'a> {
    fn with_query<'b>(&self, query: &'b str) -> UriParts<'b>
    where
        'a: 'b,
    {
        UriParts {
            host_header: self.host_header,
            path: self.path,
            query,
        }
    }

    /// Path and query of bytes whose canonical form is sure.
    fn plain(&self) -> bool {
        self.path.bytes().all(is_path_byte)
            && self.query.bytes().all(|b| is_path_byte(b) || b == b'?')
    }
}

fn split_uri(uri: &str) -> Option<UriParts<'_>> {
    if uri.len() > MAX_URI {
        return None;
    }
    let (rest, default_port) = if let Some(rest) = uri.strip_prefix("https://") {
        (rest, "443")
    } else {
        (uri.strip_prefix("http://")?, "80")
    };
    let authority_end = rest.find('/')?;
    let host_header = host_header(&rest[..authority_end], default_port)?;
    let path_and_query = &rest[authority_end..];
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_and_query, ""),
    };
    let parts = UriParts {
        host_header,
        path,
        query,
    };
    parts.plain().then_some(parts)
}

/// The host `aws-sigv4` signs for `authority` (`host[:port]`): without the scheme's
/// default port. `None` unless the host is letters, digits, `-` and `.`, and the port
/// a decimal u16.
fn host_header<'a>(authority: &'a str, default_port: &str) -> Option<&'a str> {
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return None;
    }
    if let Some(port) = port {
        // What `http::Uri` takes as a port: a u16 in decimal.
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        port.parse::<u16>().ok()?;
    }
    Some(if port == Some(default_port) {
        host
    } else {
        authority
    })
}

/// RFC 3986 `pchar` (unreserved, sub-delims, `:`, `@`, and `%`) and `/`.
fn is_path_byte(b: u8) -> bool {
    wire::is_pchar(b) || matches!(b, b'%' | b'/')
}

/// What `http::HeaderValue` accepts: no control bytes but tab.
fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// `aws-sigv4`'s header value normalization: spaces (only spaces) trimmed at both ends
/// and each run of them inside collapsed to one.
fn trim_all(value: &str) -> Cow<'_, str> {
    let value = value.trim_matches(' ');
    if !value.contains("  ") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut prev_space = false;
    for c in value.chars() {
        if c == ' ' && prev_space {
            continue;
        }
        prev_space = c == ' ';
        out.push(c);
    }
    Cow::Owned(out)
}

/// `HeaderMap::insert`: every value of `name` is replaced by `value`.
fn replace<'a>(list: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>, name: &'static str, value: &'a str) {
    list.retain(|(n, _)| n != name);
    list.push((Cow::Borrowed(name), Cow::Borrowed(value)));
}

/// `aws-sigv4`'s path normalization (RFC 3986 §5.2.4, with empty segments dropped) for
/// a path that starts with `/`.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if !(path.contains('.') || path.contains("//")) {
        return Cow::Borrowed(path);
    }
    let mut segments: Vec<&str> = Vec::with_capacity(8);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty()
        || (["/", "/.", "/./", "/..", "/../"]
            .iter()
            .any(|end| path.ends_with(end))
            && !out.ends_with('/'))
    {
        out.push('/');
    }
    Cow::Owned(out)
}

/// The SHA-256 of `data` in lowercase hex, written into `out` (`hex::encode` goes
/// through a char iterator and costs more than the hash of a small body).
fn hex_digest<'a>(data: &[u8], out: &'a mut [u8; 64]) -> &'a str {
    let digest = Sha256::digest(data);
    match hex::encode_to_slice(digest.as_slice(), out) {
        Ok(()) => std::str::from_utf8(out).unwrap_or_default(),
        Err(_) => "",
    }
}

/// Writes `n` as decimal digits filling `out` (zero-padded on the left).
fn put_digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_like_aws_sigv4() {
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//", "/"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/.", "/"),
            ("/..", "/"),
            ("/a.b/c", "/a.b/c"),
            ("/a/.../b", "/a/.../b"),
            ("/a/", "/a/"),
            ("/a//", "/a/"),
        ];
        for (path, want) in cases {
            assert_eq!(normalize_path(path), want, "{path}");
        }
    }

    #[test]
    fn trims_like_aws_sigv4() {
        assert_eq!(trim_all("  a  b   c  "), "a b c");
        assert_eq!(trim_all("a b"), "a b");
        assert_eq!(trim_all("\ta  b\t"), "\ta b\t");
        assert_eq!(trim_all("   "), "");
    }

    #[test]
    fn uri_parts() {
        let p = split_uri("https://h.example:443/p?q=1").unwrap();
        assert_eq!((p.host_header, p.path, p.query), ("h.example", "/p", "q=1"));
        let p = split_uri("https://h:80/").unwrap();
        assert_eq!(p.host_header, "h:80");
        let p = split_uri("http://h:80/").unwrap();
        assert_eq!(p.host_header, "h");
        for declined in [
            "https://h",
            "https://h?x",
            "HTTPS://h/",
            "https://u@h/",
            "https://[::1]/",
            "https://h:/",
            "https://h:99999/",
            "https://h/a b",
            "https://h/a#f",
            "https://h/é",
            "https://h/a?b=\"",
        ] {
            assert!(split_uri(declined).is_none(), "{declined}");
        }
    }

    #[test]
    fn key_cache_is_bounded_and_keeps_newest() {
        let cache = KeyCache::default();
        let t = SystemTime::UNIX_EPOCH;
        for date in 1..=10 {
            cache.get("s", date, t, "r", "svc");
        }
        assert_eq!(cache.len(), KEYS_PER_CREDENTIALS);
        let dates: Vec<u32> = cache.entries.lock().iter().map(|e| e.date).collect();
        assert!(dates.iter().all(|d| *d > 6), "{dates:?}");
    }
}
