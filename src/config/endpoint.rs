//! Where `function_uri` points: the parts the client needs to connect and to build requests.

use http::Uri;

/// The function endpoint parsed from `function_uri`.
///
/// Only scheme, host, port and path are kept: the URL's own query string is ignored, as
/// APISIX ignores it (its `request_uri` call always passes the client's query args), and
/// so is a fragment, which is never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` (true) or `http`.
    pub tls: bool,
    /// The host to resolve and connect to (and the TLS server name): lowercased, an IPv6
    /// literal without its brackets.
    pub host: String,
    /// The explicit port, or 443/80 for the scheme.
    pub port: u16,
    /// The Host header value: host as written (IPv6 in brackets), lowercased, with
    /// `:port` only when the port is not the scheme's default.
    pub authority: String,
    /// The URL path exactly as written (percent-encoding kept), `/` when empty.
    pub base_path: String,
}

const NOT_ABSOLUTE: &str = "must be an absolute http or https URL";

/// Parses `function_uri`; the error is the reason, for a `property ... validation failed` message.
/// No part of the input is echoed, since a rejected URL may carry credentials.
pub(crate) fn parse(uri: &str) -> Result<Endpoint, &'static str> {
    let uri: Uri = uri.parse().map_err(|_| NOT_ABSOLUTE)?;
    let tls = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => true,
        Some(s) if s.eq_ignore_ascii_case("http") => false,
        _ => return Err(NOT_ABSOLUTE),
    };
    let authority = uri.authority().ok_or(NOT_ABSOLUTE)?;
    if authority.as_str().contains('@') {
        // It would be dropped (APISIX drops it too); refuse it rather than hold a credential
        // nobody uses.
        return Err("must not contain user information; use \"authorization\"");
    }
    let written_host = authority.host().to_ascii_lowercase();
    if written_host.is_empty() {
        return Err("must be an absolute http or https URL with a host");
    }
    let default_port = if tls { 443 } else { 80 };
    // `port_u16` is None both without a port and for one that does not fit in 16 bits:
    // the latter must not fall back to the scheme's port.
    let written = authority.as_str();
    let after_host = &written[written.rfind(']').map_or(0, |i| i + 1)..];
    let port_text = after_host.rsplit_once(':').map_or("", |(_, p)| p);
    let port = match authority.port_u16() {
        Some(0) => return Err("port 0 is not a valid port"),
        Some(port) => port,
        None if !port_text.is_empty() => return Err("port must be between 1 and 65535"),
        None => default_port,
    };
    let host = written_host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&written_host)
        .to_owned();
    let authority = if port == default_port {
        written_host
    } else {
        format!("{written_host}:{port}")
    };
    let base_path = match uri.path() {
        "" => "/".to_owned(),
        path => path.to_owned(),
    };
    Ok(Endpoint {
        tls,
        host,
        port,
        authority,
        base_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(uri: &str) -> Endpoint {
        match parse(uri) {
            Ok(ep) => ep,
            Err(why) => panic!("{uri}: {why}"),
        }
    }

    #[test]
    fn function_url() {
        let e = ep("https://abc.lambda-url.us-west-2.on.aws/");
        assert!(e.tls);
        assert_eq!(e.host, "abc.lambda-url.us-west-2.on.aws");
        assert_eq!(e.port, 443);
        assert_eq!(e.authority, "abc.lambda-url.us-west-2.on.aws");
        assert_eq!(e.base_path, "/");
    }

    #[test]
    fn empty_path_is_root() {
        assert_eq!(ep("https://api.example.com").base_path, "/");
        assert_eq!(ep("https://api.example.com?x=1").base_path, "/");
    }

    #[test]
    fn path_kept_as_written_query_and_fragment_ignored() {
        let e = ep("https://id.execute-api.us-west-2.amazonaws.com/default/a%20b/c%2Fd?x=1#frag");
        assert_eq!(e.base_path, "/default/a%20b/c%2Fd");
        assert_eq!(ep("http://h/p#frag").base_path, "/p");
    }

    #[test]
    fn ports() {
        let e = ep("http://localhost:8765/httptrigger");
        assert!(!e.tls);
        assert_eq!((e.host.as_str(), e.port), ("localhost", 8765));
        assert_eq!(e.authority, "localhost:8765");
        assert_eq!(ep("http://h:80/").authority, "h");
        assert_eq!(ep("https://h:443/").authority, "h");
        assert_eq!(ep("https://h:80/").authority, "h:80");
        assert_eq!(ep("http://h/").port, 80);
    }

    #[test]
    fn ipv6_and_case() {
        let e = ep("HTTPS://[::1]:8443/Path");
        assert!(e.tls);
        assert_eq!(e.host, "::1");
        assert_eq!(e.authority, "[::1]:8443");
        assert_eq!(e.base_path, "/Path");
        let e = ep("http://[::1]/");
        assert_eq!((e.host.as_str(), e.authority.as_str()), ("::1", "[::1]"));
        assert_eq!(ep("https://API.Example.COM/").host, "api.example.com");
    }

    #[test]
    fn rejected() {
        for bad in [
            "",
            "/relative/path",
            "relative",
            "example.com/path",
            "//example.com/path",
            "ftp://example.com/file",
            "ws://example.com/",
            "https://",
            "https:///path",
            "http://exa mple.com/",
            "mailto:someone@example.com",
        ] {
            assert_eq!(parse(bad).err(), Some(NOT_ABSOLUTE), "{bad:?}");
        }
        assert!(parse("https://user:pass@example.com/")
            .is_err_and(|why| why.contains("user information")));
        assert!(parse("http://h:0/").is_err_and(|why| why.contains("port 0")));
        for big in [
            "http://h:65536/",
            "http://h:99999/",
            "https://h:4294967376/",
        ] {
            assert_eq!(
                parse(big).err(),
                Some("port must be between 1 and 65535"),
                "{big}"
            );
        }
        assert_eq!(parse("http://h:65535/").map(|e| e.port), Ok(65535));
    }
}
