//! Every header-signing case of the AWS SigV4 test suite (from the AWS CRT) through
//! `aws_lambda_native::sign::sign`, the way the plugin calls it: an absolute, percent-encoded
//! uri and all request headers, `host` included. Query signing (`query-*` files) is not
//! used by the plugin and is not checked.
//!
//! The suite ships inside the aws-sigv4 crate's own package (`aws-signing-test-suite/v4/`,
//! Apache-2.0), so it is on disk wherever this crate builds: it is found through
//! `cargo metadata` for the locked aws-sigv4 version. `$AWS_SIGNING_SUITE_DIR` overrides
//! that. A missing suite fails the test.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_native::sign::{sign, Credentials, Signature, SigningConfig};

/// Cases whose expected output assumes the path is percent-encoded once in the canonical
/// request, as S3 signs it. They run through `sign` with `double_encode_path = false`, and
/// must also sign differently with the default (double) encoding, so this list stays true.
/// Every other case runs with the default configuration.
const SINGLE_ENCODED_CASES: &[(&str, &str)] = &[
    (
        "get-space-normalized",
        "expects the path encoded once (/example%20space/); the default encodes it twice \
         (/example%2520space/), as lambda and execute-api require (see double-url-encode)",
    ),
    (
        "get-space-unnormalized",
        "expects the path encoded once (/example%20space/); the default encodes it twice \
         (/example%2520space/), as lambda and execute-api require (see double-url-encode)",
    ),
    (
        "get-utf8",
        "expects the path encoded once (/%E1%88%B4); the default encodes it twice \
         (/%25E1%2588%25B4), as lambda and execute-api require (see double-url-encode)",
    ),
];

/// Secrets of the two cases aws-sigv4 migrated from the old suite format, which have no
/// context.json: `ANOTREAL` is aws-credential-types' `Credentials::for_tests()`, and
/// `AKIDEXAMPLE` is the suite's example key.
const LEGACY_SECRETS: &[(&str, &str)] = &[
    ("ANOTREAL", "notrealrnrELgWzOk3IfjzDKtFBhDby"),
    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
];

#[test]
fn aws_signing_test_suite_v4() {
    let dir = suite_dir();
    let mut cases: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("request.txt").is_file())
            .collect(),
        Err(e) => panic!(
            "the AWS signing test suite is missing at {} ({e}); set AWS_SIGNING_SUITE_DIR",
            dir.display()
        ),
    };
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no cases (directories with request.txt) in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    let mut passed_double = 0;
    let mut passed_single = 0;
    for case in &cases {
        let name = case_name(case);
        if SINGLE_ENCODED_CASES.iter().any(|(n, _)| *n == name) {
            match run_single_encoded(case) {
                Ok(()) => passed_single += 1,
                Err(e) => failures.push(format!("{name} (listed in SINGLE_ENCODED_CASES): {e}")),
            }
        } else {
            match run_case(case, true) {
                Ok(()) => passed_double += 1,
                Err(e) => {
                    // Only a hint: the case still fails.
                    let hint = if run_case(case, false).is_ok() {
                        "\n  (passes with single path encoding: does it belong in \
                         SINGLE_ENCODED_CASES?)"
                    } else {
                        ""
                    };
                    failures.push(format!("{name}: {e}{hint}"));
                }
            }
        }
    }
    for (name, _) in SINGLE_ENCODED_CASES {
        if !cases.iter().any(|c| case_name(c) == *name) {
            failures.push(format!(
                "{name}: listed in SINGLE_ENCODED_CASES but not found in the suite"
            ));
        }
    }
    eprintln!(
        "AWS signing test suite ({}): {} cases through sign(), {passed_double} passed with the \
         default (double) path encoding, {passed_single} with double_encode_path = false:",
        dir.display(),
        cases.len()
    );
    for (name, reason) in SINGLE_ENCODED_CASES {
        eprintln!("  {name}: {reason}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn suite_dir() -> PathBuf {
    match std::env::var_os("AWS_SIGNING_SUITE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => aws_sigv4_package_dir().join("aws-signing-test-suite/v4"),
    }
}

/// The source directory of the aws-sigv4 package this crate is locked to, from
/// `cargo metadata` (cargo's registry sources, or a vendored copy).
fn aws_sigv4_package_dir() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("running cargo metadata failed: {e}"));
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "aws-sigv4")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("aws-sigv4 is not among this crate's dependencies");
    Path::new(manifest)
        .parent()
        .expect("manifest_path has a parent")
        .to_path_buf()
}

fn case_name(case: &Path) -> String {
    case.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One case's signing inputs.
struct Case {
    request: Request,
    signed: Request,
    uri: String,
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    /// The token is added after signing and is not part of the signature.
    omit_session_token: bool,
    cfg: SigningConfig,
    time: SystemTime,
    authorization: String,
    signature: String,
}

fn load(case: &Path) -> Result<Case, String> {
    let request = parse_request(&read(case, "request.txt")?)?;
    let signed = parse_request(&read(case, "header-signed-request.txt")?)?;
    let host = request
        .header("host")
        .ok_or("request.txt has no Host header")?;
    // The request-line target is already encoded; only bytes that cannot appear in a URI
    // (a raw space, UTF-8) are escaped, as the plugin's wire layer does.
    let uri = format!("https://{host}{}", escape_non_uri(&request.target));
    let authorization = signed
        .header("authorization")
        .ok_or("header-signed-request.txt has no Authorization header")?
        .to_owned();
    let signature = match fs::read_to_string(case.join("header-signature.txt")) {
        Ok(s) => s.trim().to_owned(),
        // The legacy cases only have the signed request.
        Err(_) => authorization
            .rsplit_once("Signature=")
            .map(|(_, s)| s.trim().to_owned())
            .ok_or("no header-signature.txt and no Signature= in Authorization")?,
    };

    let context_path = case.join("context.json");
    if context_path.is_file() {
        let context: serde_json::Value = serde_json::from_slice(&read(case, "context.json")?)
            .map_err(|e| format!("context.json: {e}"))?;
        let text = |v: &serde_json::Value, key: &str| {
            v.get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or(format!("context.json: no string {key}"))
        };
        let flag = |key: &str| context.get(key).and_then(|v| v.as_bool());
        let creds = context
            .get("credentials")
            .ok_or("context.json: no credentials")?;
        let mut cfg = SigningConfig::new(text(&context, "region")?, text(&context, "service")?);
        cfg.normalize_path = flag("normalize").unwrap_or(true);
        cfg.sign_body = flag("sign_body").unwrap_or(false);
        Ok(Case {
            access_key_id: text(creds, "access_key_id")?,
            secret_access_key: text(creds, "secret_access_key")?,
            token: text(creds, "token").ok(),
            omit_session_token: flag("omit_session_token").unwrap_or(false),
            cfg,
            time: parse_time(&text(&context, "timestamp")?)?,
            request,
            signed,
            uri,
            authorization,
            signature,
        })
    } else {
        // Legacy format: the scope comes from the Authorization line, the time from the
        // request's X-Amz-Date.
        let credential = authorization
            .split_once("Credential=")
            .and_then(|(_, rest)| rest.split(',').next())
            .ok_or("no Credential= in Authorization")?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, _date, region, service, "aws4_request"] = scope[..] else {
            return Err(format!("unexpected credential scope {credential}"));
        };
        let secret = LEGACY_SECRETS
            .iter()
            .find(|(ak, _)| *ak == access_key_id)
            .map(|(_, sk)| (*sk).to_owned())
            .ok_or(format!("no known secret for {access_key_id}"))?;
        let time = parse_time(
            request
                .header("x-amz-date")
                .ok_or("legacy case without X-Amz-Date")?,
        )?;
        Ok(Case {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret,
            token: None,
            omit_session_token: false,
            cfg: SigningConfig::new(region, service),
            time,
            request,
            signed,
            uri,
            authorization,
            signature,
        })
    }
}

/// Runs a case through `sign` with the configuration its files give and the path encoded
/// twice (the default) or once.
fn run_case(case: &Path, double_encode_path: bool) -> Result<(), String> {
    let mut c = load(case)?;
    c.cfg.double_encode_path = double_encode_path;
    check(&c)
}

/// A case of `SINGLE_ENCODED_CASES`: passes with the path encoded once, and signs
/// differently with the default double encoding (else it does not belong in the list).
fn run_single_encoded(case: &Path) -> Result<(), String> {
    let mut c = load(case)?;
    c.cfg.double_encode_path = false;
    check(&c).map_err(|e| format!("fails with double_encode_path = false: {e}"))?;
    c.cfg.double_encode_path = true;
    let double = sign_case(&c)?;
    if double.signature == c.signature {
        return Err(
            "passes with the default double path encoding too: remove it from the list".into(),
        );
    }
    Ok(())
}

/// Signs a case the way the plugin does.
fn sign_case(c: &Case) -> Result<Signature, String> {
    // sign() always signs a token it has; a token left out of the signature is the same as
    // signing without one and adding the header afterwards, which the caller does.
    let signing_token = if c.omit_session_token {
        None
    } else {
        c.token.clone()
    };
    let creds = Credentials::new(&c.access_key_id, &c.secret_access_key, signing_token);
    let headers = c.request.header_refs();
    sign(
        &c.cfg,
        &creds,
        &c.request.method,
        &c.uri,
        &headers,
        &c.request.body,
        c.time,
    )
    .map_err(|e| format!("sign failed: {e}"))
}

/// Signs a case and compares the result with its signed request.
fn check(c: &Case) -> Result<(), String> {
    let out = sign_case(c)?;

    let mut errors = String::new();
    let auth = out
        .headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .map(|(_, v)| v.as_str());
    if auth != Some(c.authorization.as_str()) {
        let _ = write!(
            errors,
            "\n  authorization: got {auth:?}\n                 want {:?}",
            c.authorization
        );
    }
    if out.signature != c.signature {
        let _ = write!(
            errors,
            "\n  signature: got {} want {}",
            out.signature, c.signature
        );
    }
    // Every other header sign() adds is in the signed request with the same value.
    for (name, value) in out.headers.iter().filter(|(n, _)| *n != "authorization") {
        if c.signed.header(name) != Some(value.as_str()) {
            let _ = write!(
                errors,
                "\n  {name}: got {value:?}, signed request has {:?}",
                c.signed.header(name)
            );
        }
    }
    let order: Vec<&str> = out.headers.iter().map(|(n, _)| *n).collect();
    if order.first() != Some(&"authorization") || order.get(1) != Some(&"x-amz-date") {
        let _ = write!(errors, "\n  header order {order:?}");
    }
    if c.omit_session_token {
        // The signed request carries the token that was added after signing.
        if c.signed.header("x-amz-security-token") != c.token.as_deref() {
            let _ = write!(errors, "\n  signed request lacks the unsigned token");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("uri {}{errors}", c.uri))
    }
}

fn read(case: &Path, file: &str) -> Result<Vec<u8>, String> {
    fs::read(case.join(file)).map_err(|e| format!("{file}: {e}"))
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_refs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// A raw HTTP/1.1 request: request line, header lines (obs-fold continuation lines are
/// joined with a space, RFC 9112 §5.2), a blank line, the body.
fn parse_request(raw: &[u8]) -> Result<Request, String> {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, &raw[raw.len()..]),
        },
    };
    let head = std::str::from_utf8(head).map_err(|e| format!("request head: {e}"))?;
    let mut lines = head.lines();
    let request_line = lines.next().ok_or("empty request")?;
    // The target may hold raw spaces (get-space-unnormalized): the method ends at the
    // first space, the version starts at the last one.
    let (method, rest) = request_line
        .split_once(' ')
        .ok_or(format!("bad request line {request_line:?}"))?;
    let target = match rest.rsplit_once(' ') {
        Some((target, version)) if version.starts_with("HTTP/") => target,
        _ => rest,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers
                .last_mut()
                .ok_or(format!("continuation line without a header: {line:?}"))?;
            value.push(' ');
            value.push_str(line.trim_matches([' ', '\t']));
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(format!("bad header line {line:?}"))?;
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    Ok(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: body.to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Escapes the bytes RFC 3986 does not allow anywhere in a URI; `%` and the delimiters
/// stay as they are.
fn escape_non_uri(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for b in target.bytes() {
        let allowed = b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b);
        if allowed {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `2015-08-30T12:36:00Z` (context.json) or `20150830T123600Z` (X-Amz-Date).
fn parse_time(s: &str) -> Result<SystemTime, String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        digits
            .get(range)
            .and_then(|d| d.parse().ok())
            .ok_or(format!("bad timestamp {s:?}"))
    };
    if digits.len() != 14 || !s.ends_with('Z') {
        return Err(format!("bad timestamp {s:?}"));
    }
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let secs =
        days_from_civil(y, m, d) * 86_400 + num(8..10)? * 3600 + num(10..12)? * 60 + num(12..14)?;
    let secs = u64::try_from(secs).map_err(|_| format!("timestamp before 1970: {s:?}"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[test]
fn helpers() {
    assert_eq!(
        parse_time("2015-08-30T12:36:00Z"),
        Ok(UNIX_EPOCH + Duration::from_secs(1_440_938_160))
    );
    assert_eq!(
        parse_time("20150830T123600Z"),
        parse_time("2015-08-30T12:36:00Z")
    );
    assert_eq!(escape_non_uri("/a b/%20/\u{1234}"), "/a%20b/%20/%E1%88%B4");
    let r = parse_request(b"GET /a b HTTP/1.1\nA: 1\n  2\nB:x\n\nbody").unwrap();
    assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/a b"));
    assert_eq!(r.header("a"), Some("1 2"));
    assert_eq!(r.body, b"body");
}
