//! AWS Signature Version 4 for requests to the function: the project's one signing
//! entry point.
//!
//! Requests go through the fast path in `fast` (own canonical request, cached signing
//! key, `aws-sigv4`'s key derivation and HMAC), which takes the usual ones; the rest go
//! through `aws_sigv4::http_request::sign`. This module fixes the settings the plugin
//! needs and turns the crate's panics into errors by checking its preconditions first.

mod fast;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Shown as the provider in `aws-credential-types` (it appears in its debug output only).
const PROVIDER: &str = "aws-lambda-native";

/// AWS credentials, built once per configuration and shared by its requests.
///
/// The `aws-sigv4` [`Identity`] is built here rather than per request: it costs two
/// allocations and a reference count. The secret lives only inside
/// `aws_credential_types::Credentials`, which zeroes it on drop. Clones share the cache
/// of derived signing keys; new credentials start with an empty one.
#[derive(Clone)]
pub struct Credentials {
    inner: aws_credential_types::Credentials,
    identity: Identity,
    keys: Arc<fast::KeyCache>,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        let inner = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token,
            None,
            PROVIDER,
        );
        let identity = Identity::from(inner.clone());
        Self {
            inner,
            identity,
            keys: Arc::default(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        self.inner.access_key_id()
    }

    pub fn has_session_token(&self) -> bool {
        self.inner.session_token().is_some()
    }

    /// The secret key and the token, for scrubbing them from text that came from AWS.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.inner.secret_access_key()];
        secrets.extend(self.inner.session_token());
        secrets
    }
}

/// Never prints the secret or the token: configurations and errors get logged.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.inner.access_key_id())
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.inner.session_token().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// What to sign for. Built once per configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningConfig {
    pub region: String,
    pub service: String,
    /// Normalize the path (`.`/`..` segments, RFC 3986 §5.2.4) in the canonical request, as
    /// every service but S3 expects.
    pub normalize_path: bool,
    /// Add `x-amz-content-sha256` (the body's hash) as a signed header.
    pub sign_body: bool,
    /// Encode each path segment twice in the canonical request, as every service but S3
    /// requires (true by default).
    pub double_encode_path: bool,
}

impl SigningConfig {
    /// A configuration with the defaults: path normalization on, no body-hash header, the
    /// path encoded twice.
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            service: service.into(),
            normalize_path: true,
            sign_body: false,
            double_encode_path: true,
        }
    }
}

/// What the caller adds to the outgoing request.
pub struct Signature {
    /// In this order: `authorization`, `x-amz-date`, `x-amz-security-token` (when the
    /// credentials have a token), `x-amz-content-sha256` (when `sign_body`). Each replaces
    /// any header of the same name.
    pub headers: Vec<(&'static str, String)>,
    /// The signature alone (lowercase hex), as it appears in `authorization`.
    pub signature: String,
}

/// Never prints the session token.
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in &self.headers {
            if *name == "x-amz-security-token" {
                list.entry(&(name, "** redacted **"));
            } else {
                list.entry(&(name, value));
            }
        }
        list.finish()
    }
}

/// Why a request could not be signed. The message never holds the secret key or the
/// token: it is built only from fixed text, the uri and `aws-sigv4`'s fixed messages.
#[derive(Debug)]
pub struct SignError(String);

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SignError {}

impl SignError {
    /// The client's query is the cause (not UTF-8 once decoded, in a request only
    /// `aws-sigv4` could sign): a 400 rather than a fault of the plugin.
    pub fn is_bad_query(&self) -> bool {
        self.0 == NOT_UTF8_QUERY
    }
}

/// The end of year 9999: `aws-sigv4` formats the time through the `time` crate, which
/// panics past its range.
const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// Signs a request for the headers signature location.
///
/// `uri` is the absolute, already percent-encoded request URI
/// (`https://host[:port]/path?query`); the path is encoded a second time in the canonical
/// request (what `lambda` and `execute-api` expect) unless `cfg.double_encode_path` is off
/// (S3), and the query is canonicalized (see
/// `wire::canonical_query`): as bytes, so a query that is not UTF-8 once decoded signs
/// as it is, where `aws-sigv4` would sign U+FFFD in its place. `headers` are exactly the headers to sign, in any case; `host`
/// comes from `uri` unless one is passed. `x-amz-date`, `x-amz-security-token` and
/// `x-amz-content-sha256` passed here are replaced by the signer's own values.
///
/// # Errors
/// An invalid method, uri, header name or value, an empty region or service, or a time
/// outside 1970..=9999; a query that is not UTF-8 once decoded in a request the fast
/// path does not take ([`SignError::is_bad_query`]).
pub fn sign(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Signature, SignError> {
    check(cfg, method, uri, time)?;
    match fast::sign(cfg, creds, method, uri, headers, body, time) {
        Some(signature) => Ok(signature),
        None if !crate::wire::query_is_utf8(query_of(uri).as_bytes()) => {
            Err(SignError(NOT_UTF8_QUERY.into()))
        }
        None => sign_slow(cfg, creds, method, uri, headers, body, time),
    }
}

/// Why a query that is not UTF-8 once decoded may not be signed: only the fast path signs
/// its bytes, and it does not take uris over 16 KiB, hosts other than names and IPv4
/// addresses, or header values with control bytes. `aws-sigv4` would sign U+FFFD in
/// place of those bytes, a query other than the one sent.
pub(crate) const NOT_UTF8_QUERY: &str =
    "the query string is not valid UTF-8 once decoded and this request cannot be signed with it";

/// The query of an absolute uri, without `?` and fragment.
fn query_of(uri: &str) -> &str {
    uri.split_once('?')
        .map_or("", |(_, q)| q.split_once('#').map_or(q, |(q, _)| q))
}

/// Where a request goes, in the parts the request path has already built: the query
/// is the canonical one that is sent, so nothing is formatted into a uri, parsed back
/// and canonicalised again.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub tls: bool,
    /// `host[:port]` as in the uri; a default port is not signed.
    pub authority: &'a str,
    /// The path as sent (percent-encoded, starting with `/`).
    pub path: &'a str,
    /// The query as sent, already canonical (`wire::canonical_query`); empty for none.
    pub canonical_query: &'a str,
}

impl Target<'_> {
    /// The absolute uri [`sign`] takes for the same request.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let mut uri = format!("{scheme}://{}{}", self.authority, self.path);
        if !self.canonical_query.is_empty() {
            uri.push('?');
            uri.push_str(self.canonical_query);
        }
        uri
    }
}

/// [`sign`] for a request given as a [`Target`]: the same signature as `sign` of
/// `target.uri()`, without building and parsing that uri on the usual path. Requests the
/// fast path declines go to `aws-sigv4` through the uri.
///
/// # Errors
/// As [`sign`].
pub fn sign_target(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    target: &Target<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Signature, SignError> {
    check_method(method)?;
    check_time(time)?;
    check_scope(cfg)?;
    if let Some(signature) = fast::sign_target(cfg, creds, method, target, headers, body, time) {
        return Ok(signature);
    }
    // As in `sign`: only the fast path signs a query's bytes that are not UTF-8.
    if !crate::wire::query_is_utf8(target.canonical_query.as_bytes()) {
        return Err(SignError(NOT_UTF8_QUERY.into()));
    }
    let uri = target.uri();
    check_uri(&uri)?;
    sign_slow(cfg, creds, method, &uri, headers, body, time)
}

/// [`sign`] through `aws_sigv4::http_request::sign` only: the reference the fast path is
/// tested and benchmarked against.
#[doc(hidden)]
pub fn sign_with_aws_sigv4(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Signature, SignError> {
    check(cfg, method, uri, time)?;
    sign_slow(cfg, creds, method, uri, headers, body, time)
}

/// [`sign`] through the fast path only: `None` when it leaves the request to
/// `aws-sigv4`. For tests.
#[doc(hidden)]
pub fn sign_fast_only(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Option<Result<Signature, SignError>> {
    if let Err(e) = check(cfg, method, uri, time) {
        return Some(Err(e));
    }
    fast::sign(cfg, creds, method, uri, headers, body, time).map(Ok)
}

fn check(cfg: &SigningConfig, method: &str, uri: &str, time: SystemTime) -> Result<(), SignError> {
    check_method(method)?;
    check_uri(uri)?;
    check_time(time)?;
    check_scope(cfg)
}

fn check_scope(cfg: &SigningConfig) -> Result<(), SignError> {
    if cfg.region.is_empty() || cfg.service.is_empty() {
        return Err(SignError(
            "signing region and service must not be empty".into(),
        ));
    }
    Ok(())
}

fn sign_slow(
    cfg: &SigningConfig,
    creds: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Signature, SignError> {
    let params = v4::SigningParams::builder()
        .identity(&creds.identity)
        .region(&cfg.region)
        .name(&cfg.service)
        .time(time)
        .settings(settings(cfg).clone())
        .build()
        .map_err(|e| SignError(format!("signing parameters: {e}")))?
        .into();
    let request = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| sigv4_error(&e, uri))?;
    let (instructions, signature) = aws_sigv4::http_request::sign(request, &params)
        .map_err(|e| sigv4_error(&e, uri))?
        .into_parts();

    // `Header` keeps its value private, so each one is copied out once.
    let (out, _) = instructions.into_parts();
    let mut headers: Vec<(&'static str, String)> = out
        .iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect();
    headers.sort_by_key(|(name, _)| header_rank(name));
    Ok(Signature { headers, signature })
}

fn header_rank(name: &str) -> u8 {
    match name {
        "authorization" => 0,
        "x-amz-date" => 1,
        "x-amz-security-token" => 2,
        "x-amz-content-sha256" => 3,
        _ => 4,
    }
}

/// The eight possible settings, built once: `SigningSettings::default()` allocates the
/// excluded-header list that is then thrown away.
fn settings(cfg: &SigningConfig) -> &'static SigningSettings {
    static SETTINGS: OnceLock<[SigningSettings; 8]> = OnceLock::new();
    let all = SETTINGS.get_or_init(|| {
        // Entry i has normalize_path = bit 2, sign_body = bit 1, double_encode_path = bit 0.
        std::array::from_fn(|i| {
            let (normalize, body, double) = (i & 4 != 0, i & 2 != 0, i & 1 != 0);
            let mut s = SigningSettings::default();
            s.signature_location = SignatureLocation::Headers;
            // Every service but S3 checks the path encoded once more than it was sent.
            s.percent_encoding_mode = if double {
                PercentEncodingMode::Double
            } else {
                PercentEncodingMode::Single
            };
            s.uri_path_normalization_mode = if normalize {
                UriPathNormalizationMode::Enabled
            } else {
                UriPathNormalizationMode::Disabled
            };
            s.session_token_mode = SessionTokenMode::Include;
            s.payload_checksum_kind = if body {
                PayloadChecksumKind::XAmzSha256
            } else {
                PayloadChecksumKind::NoHeader
            };
            // The caller chooses the signed headers (wire::is_unsigned); the crate's own
            // list would silently leave some of them out.
            s.excluded_headers = None;
            s
        })
    });
    &all[usize::from(cfg.normalize_path) * 4
        + usize::from(cfg.sign_body) * 2
        + usize::from(cfg.double_encode_path)]
}

/// RFC 9110 §9.1: a method is a token. `aws-sigv4` copies it into the canonical request
/// unchecked, where a newline would forge a different one.
fn check_method(method: &str) -> Result<(), SignError> {
    if crate::wire::valid_header_name(method.as_bytes()) {
        Ok(())
    } else {
        Err(SignError("invalid request method".into()))
    }
}

/// `aws-sigv4` panics (`expect`) on a uri without an authority when no `host` header is
/// passed, so only absolute http(s) uris with a host get through.
fn check_uri(uri: &str) -> Result<(), SignError> {
    let rest = strip_prefix_ignore_case(uri, "https://")
        .or_else(|| strip_prefix_ignore_case(uri, "http://"))
        .ok_or_else(|| SignError(format!("uri to sign is not absolute http(s): {uri}")))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Userinfo is not expected, but the host is what follows it.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(SignError(format!("uri to sign has no host: {uri}")));
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn check_time(time: SystemTime) -> Result<(), SignError> {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= MAX_UNIX_SECS => Ok(()),
        _ => Err(SignError("signing time out of range".into())),
    }
}

/// `aws-sigv4`'s messages are fixed text; the source says which part was invalid.
fn sigv4_error(e: &dyn std::error::Error, uri: &str) -> SignError {
    let mut message = format!("{e}");
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if message.contains("uri") {
        message.push_str(" (");
        message.push_str(uri);
        message.push(')');
    }
    SignError(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "session-token-value";

    fn time() -> SystemTime {
        // 2015-08-30T12:36:00Z
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn cfg() -> SigningConfig {
        SigningConfig::new("us-east-1", "service")
    }

    #[test]
    fn vanilla_get() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let sig = sign(
            &cfg(),
            &creds,
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            time(),
        )
        .unwrap();
        // The get-vanilla vector of the AWS signing test suite.
        assert_eq!(
            sig.signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let names: Vec<&str> = sig.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["authorization", "x-amz-date"]);
        assert_eq!(sig.headers[1].1, "20150830T123600Z");
    }

    #[test]
    fn header_order_with_token_and_body_hash() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some(TOKEN.into()));
        let mut cfg = cfg();
        cfg.sign_body = true;
        let sig = sign(
            &cfg,
            &creds,
            "POST",
            "https://example.amazonaws.com/",
            &[],
            b"{}",
            time(),
        )
        .unwrap();
        let names: Vec<&str> = sig.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "x-amz-date",
                "x-amz-security-token",
                "x-amz-content-sha256"
            ]
        );
        assert!(sig.headers[0]
            .1
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
        assert_eq!(sig.headers[2].1, TOKEN);
    }

    #[test]
    fn no_default_exclusions() {
        // aws-sigv4's default settings would leave user-agent out of the signature.
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let sig = sign(
            &cfg(),
            &creds,
            "GET",
            "https://example.amazonaws.com/",
            &[("User-Agent", "x"), ("X-Amzn-Trace-Id", "y")],
            b"",
            time(),
        )
        .unwrap();
        assert!(sig.headers[0]
            .1
            .contains("SignedHeaders=host;user-agent;x-amz-date;x-amzn-trace-id,"));
    }

    #[test]
    fn host_from_uri_or_header() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let sign_with = |uri: &str, headers: &[(&str, &str)]| {
            sign(&cfg(), &creds, "GET", uri, headers, b"", time())
                .unwrap()
                .signature
        };
        let plain = sign_with("https://example.amazonaws.com/", &[]);
        // The default port is not part of the host header.
        assert_eq!(plain, sign_with("https://example.amazonaws.com:443/", &[]));
        assert_ne!(plain, sign_with("https://example.amazonaws.com:8443/", &[]));
        assert_eq!(
            plain,
            sign_with("https://other/", &[("Host", "example.amazonaws.com")])
        );
    }

    #[test]
    fn rejects_instead_of_panicking() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some(TOKEN.into()));
        let bad_uris = [
            "/relative",
            "example.amazonaws.com/",
            "https:///path",
            "https://:443/",
            "https://user@/",
            "ftp://host/",
            "",
            "https://host/with space",
            "https://host/\n",
        ];
        let mut single = cfg();
        single.double_encode_path = false;
        for cfg in [cfg(), single] {
            for uri in bad_uris {
                let err = sign(&cfg, &creds, "GET", uri, &[], b"", time())
                    .err()
                    .unwrap_or_else(|| panic!("{uri:?} was accepted ({cfg:?})"));
                assert!(!err.to_string().contains(SECRET));
                assert!(!err.to_string().contains(TOKEN));
            }
        }
        let uri = "https://h/";
        for (name, value) in [("bad name", "v"), ("x", "a\nb"), ("", "v")] {
            assert!(sign(&cfg(), &creds, "GET", uri, &[(name, value)], b"", time()).is_err());
        }
        assert!(sign(&cfg(), &creds, "GET\nX", uri, &[], b"", time()).is_err());
        assert!(sign(&cfg(), &creds, "", uri, &[], b"", time()).is_err());
        let far = UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECS + 1);
        assert!(sign(&cfg(), &creds, "GET", uri, &[], b"", far).is_err());
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert!(sign(&cfg(), &creds, "GET", uri, &[], b"", before).is_err());
        let mut empty = cfg();
        empty.region.clear();
        assert!(sign(&empty, &creds, "GET", uri, &[], b"", time()).is_err());
    }

    #[test]
    fn double_or_single_path_encoding() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let sign_path = |cfg: &SigningConfig, uri: &str| {
            sign(cfg, &creds, "GET", uri, &[], b"", time())
                .unwrap()
                .signature
        };
        let double = cfg();
        assert!(double.double_encode_path, "double encoding is the default");
        let mut single = cfg();
        single.double_encode_path = false;

        let uri = "https://example.amazonaws.com/example%20space/";
        // Single encoding signs `/example%20space/`: the get-space-normalized vector of the
        // AWS signing test suite (which assumes S3-style encoding).
        assert_eq!(
            sign_path(&single, uri),
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"
        );
        // Double encoding signs `/example%2520space/`.
        assert_ne!(sign_path(&double, uri), sign_path(&single, uri));
        // A path with nothing to encode signs the same either way (get-vanilla).
        let plain = "https://example.amazonaws.com/";
        assert_eq!(sign_path(&double, plain), sign_path(&single, plain));

        // The double-url-encode vector (botocore's non-S3 signing of a Lambda invoke): the
        // canonical path has `%253A` for the `%3A` sent, and only double encoding matches.
        let mut lambda = SigningConfig::new("us-east-2", "lambda");
        let uri = "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/\
                   arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/\
                   invocations";
        // 2021-05-11T15:40:45Z
        let at = UNIX_EPOCH + Duration::from_secs(1_620_747_645);
        let sign_lambda = |cfg: &SigningConfig| {
            sign(cfg, &creds, "POST", uri, &[], b"", at)
                .unwrap()
                .signature
        };
        let expected = "4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804";
        assert_eq!(sign_lambda(&lambda), expected);
        lambda.double_encode_path = false;
        assert_ne!(sign_lambda(&lambda), expected);
    }

    #[test]
    fn cached_settings_follow_the_config() {
        for i in 0..8 {
            let mut c = cfg();
            c.normalize_path = i & 4 != 0;
            c.sign_body = i & 2 != 0;
            c.double_encode_path = i & 1 != 0;
            let s = settings(&c);
            assert_eq!(
                s.uri_path_normalization_mode,
                if c.normalize_path {
                    UriPathNormalizationMode::Enabled
                } else {
                    UriPathNormalizationMode::Disabled
                }
            );
            assert_eq!(
                s.payload_checksum_kind,
                if c.sign_body {
                    PayloadChecksumKind::XAmzSha256
                } else {
                    PayloadChecksumKind::NoHeader
                }
            );
            assert_eq!(
                s.percent_encoding_mode,
                if c.double_encode_path {
                    PercentEncodingMode::Double
                } else {
                    PercentEncodingMode::Single
                }
            );
            assert_eq!(s.signature_location, SignatureLocation::Headers);
            assert_eq!(s.session_token_mode, SessionTokenMode::Include);
            assert!(s.excluded_headers.is_none());
        }
    }

    #[test]
    fn cached_keys_follow_rotation() {
        let uri = "https://example.amazonaws.com/";
        let sign_with = |creds: &Credentials, at: SystemTime| {
            sign(&cfg(), creds, "GET", uri, &[], b"", at)
                .unwrap()
                .signature
        };
        let old = Credentials::new("AKIDEXAMPLE", SECRET, None);
        let first = sign_with(&old, time());
        // A second request (a clone, as each request gets) hits the cache: same result.
        assert_eq!(sign_with(&old.clone(), time()), first);
        assert_eq!(old.keys.len(), 1);
        // Rotated credentials (same key id, new secret) are a new object: no stale key.
        let rotated = Credentials::new("AKIDEXAMPLE", "another-secret", None);
        let after = sign_with(&rotated, time());
        assert_ne!(after, first);
        assert_eq!(
            after,
            sign_with_aws_sigv4(&cfg(), &rotated, "GET", uri, &[], b"", time())
                .unwrap()
                .signature
        );
        // The next day derives a new key; the cache stays bounded.
        for day in 1..10 {
            let at = time() + Duration::from_secs(86_400 * day);
            assert_eq!(
                sign_with(&old, at),
                sign_with_aws_sigv4(&cfg(), &old, "GET", uri, &[], b"", at)
                    .unwrap()
                    .signature
            );
        }
        assert!(old.keys.len() <= 4);
    }

    #[test]
    fn debug_redacts_secrets() {
        let creds = Credentials::new("AKIDEXAMPLE", SECRET, Some(TOKEN.into()));
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains(SECRET));
        assert!(!shown.contains(TOKEN));

        let sig = sign(&cfg(), &creds, "GET", "https://h/", &[], b"", time()).unwrap();
        assert!(!format!("{sig:?}").contains(TOKEN));
    }
}
