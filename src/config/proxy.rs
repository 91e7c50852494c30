//! `proxy_url`: the forward proxy between the gateway and AWS (Kong's field of the same
//! name).

use std::fmt;

use base64::Engine;
use http::Uri;
use percent_encoding::percent_decode_str;

/// A forward proxy, parsed from `http://[user:pass@]host:port`.
///
/// Also part of the connection pool's key: connections through a proxy are pooled apart
/// from direct ones and from those through another proxy or with other credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// The host to connect to: lowercased, an IPv6 literal without its brackets.
    pub host: String,
    pub port: u16,
    /// `Basic <base64(user:pass)>` for `Proxy-Authorization`, when the URL has
    /// credentials. Never printed.
    pub authorization: Option<String>,
    /// The same user and password, decoded, for the credential providers' client
    /// (bytes that are not UTF-8 replaced). Never printed.
    pub credentials: Option<(String, String)>,
}

/// Host and port only: the credentials stay out of every message and log line.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

const SHAPE: &str = "must be an http URL of a proxy: http://[user:pass@]host:port";

/// Parses `proxy_url`; the error is the reason, for a `property ... validation failed`
/// message. No part of the input is echoed: it may carry the proxy's password.
pub(crate) fn parse(url: &str) -> Result<Proxy, &'static str> {
    let uri: Uri = url.parse().map_err(|_| SHAPE)?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        _ => return Err(SHAPE),
    }
    let authority = uri.authority().ok_or(SHAPE)?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must not have a path or a query: http://[user:pass@]host:port");
    }
    let port = match authority.port_u16() {
        Some(0) | None => return Err("must name a port between 1 and 65535"),
        Some(port) => port,
    };
    let host = authority.host().to_ascii_lowercase();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .to_owned();
    if host.is_empty() {
        return Err(SHAPE);
    }
    let (authorization, credentials) = match authority.as_str().rsplit_once('@') {
        None => (None, None),
        Some((userinfo, _)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| percent_decode_str(s).collect::<Vec<u8>>();
            let (user, pass) = (decode(user), decode(pass));
            let mut pair = user.clone();
            pair.push(b':');
            pair.extend(&pass);
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )),
                Some((text(&user), text(&pass))),
            )
        }
    };
    Ok(Proxy {
        host,
        port,
        authorization,
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies() {
        let p = parse("http://proxy.corp:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.authorization, None);
        let p = parse("HTTP://Us%3Aer:p%40ss:w@[::1]:8080/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
        // base64("Us:er:p@ss:w")
        assert_eq!(p.authorization.as_deref(), Some("Basic VXM6ZXI6cEBzczp3"));
        assert_eq!(p.credentials, Some(("Us:er".into(), "p@ss:w".into())));
        assert_eq!(p.to_string(), "[::1]:8080");
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("VXM6") && !debug.contains("p@ss") && debug.contains("<redacted>"),
            "{debug}"
        );
        let p = parse("http://user@10.0.0.1:80").unwrap();
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjo="));
    }

    #[test]
    fn refused_without_echoing_the_url() {
        for bad in [
            "proxy:3128",
            "https://proxy:3128",
            "socks5://proxy:1080",
            "http://proxy",
            "http://proxy:0",
            "http://proxy:99999",
            "http://u:secret@proxy:3128/path",
            "http://proxy:3128?x=1",
            "http://:3128",
            "",
        ] {
            let why = parse(bad).expect_err(bad);
            assert!(!why.contains("secret"), "{bad}: {why}");
        }
    }
}
