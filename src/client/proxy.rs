//! Through a forward proxy (`proxy_url`): a CONNECT tunnel for HTTPS endpoints, and
//! absolute-form requests for plain HTTP ones (RFC 9110 §9.3.6, RFC 9112 §3.2.2).

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ClientError, Endpoint, HeaderValue, Proxy, HOST, PROXY_AUTHORIZATION};

/// The most a proxy's answer to CONNECT may take; proxies answer in a few lines.
const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// Asks `proxy` (already connected on `tcp`) for a tunnel to `ep`. The TLS handshake
/// with the function then runs inside it, so the proxy sees only the host and port.
pub(super) async fn tunnel(
    ep: &Endpoint,
    proxy: &Proxy,
    mut tcp: TcpStream,
) -> Result<TcpStream, ClientError> {
    let fail = |why: String| ClientError::Proxy(format!("proxy {proxy} for {ep}: {why}"));
    let mut head = format!("CONNECT {ep} HTTP/1.1\r\nHost: {ep}\r\n");
    if let Some(auth) = &proxy.authorization {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| fail(format!("sending CONNECT failed: {e}")))?;

    let mut answer = Vec::with_capacity(256);
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| fail(format!("reading the answer to CONNECT failed: {e}")))?;
        if n == 0 {
            return Err(fail(
                "connection closed before the answer to CONNECT".into(),
            ));
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if answer.len() > MAX_CONNECT_ANSWER {
            return Err(fail("answer to CONNECT too large".into()));
        }
    };
    let status_line = status_line(&answer);
    let ok = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .is_some_and(|code| (200..300).contains(&code));
    if !ok || !status_line.starts_with("HTTP/1.") {
        return Err(fail(format!("CONNECT refused: {status_line}")));
    }
    // The client speaks first in TLS: nothing may follow the proxy's answer yet.
    if end != answer.len() {
        return Err(fail("data after the answer to CONNECT".into()));
    }
    Ok(tcp)
}

/// The answer's first line for the log, printable ASCII only and cut at 100 bytes.
fn status_line(answer: &[u8]) -> String {
    answer
        .iter()
        .take_while(|&&b| b != b'\r' && b != b'\n')
        .take(100)
        .map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// A plain HTTP request through the proxy: absolute-form target and the proxy's
/// credentials. The signed parts (method, path, query, Host) are unchanged.
pub(super) fn absolute_form(req: &mut Request<Full<Bytes>>, proxy: &Proxy) {
    let authority = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    if let Some(authority) = authority {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        if let Ok(uri) = format!("http://{authority}{path}").parse() {
            *req.uri_mut() = uri;
        }
    }
    if let Some(auth) = &proxy.authorization {
        if let Ok(mut value) = HeaderValue::from_str(auth) {
            value.set_sensitive(true);
            req.headers_mut().insert(PROXY_AUTHORIZATION, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_printable() {
        assert_eq!(
            status_line(b"HTTP/1.1 403 Forbidden\r\nX: y\r\n\r\n"),
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status_line(b"HTTP/1.1 200 \x1b[31m\n"),
            "HTTP/1.1 200 ?[31m"
        );
    }

    /// A one-shot proxy on loopback that answers CONNECT with `answer`; returns what it
    /// received and the outcome of `tunnel`.
    fn connect_through(answer: &'static [u8]) -> (String, Result<(), String>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                while !got.ends_with(b"\r\n\r\n") {
                    let mut b = [0u8; 256];
                    let n = sock.read(&mut b).await.unwrap();
                    got.extend_from_slice(&b[..n]);
                }
                sock.write_all(answer).await.unwrap();
                String::from_utf8(got).unwrap()
            });
            let proxy = Proxy {
                host: "127.0.0.1".into(),
                port,
                authorization: Some("Basic dTpw".into()),
                credentials: Some(("u".into(), "p".into())),
            };
            let ep = Endpoint {
                tls: true,
                host: "fn.example".into(),
                port: 443,
                ssl_verify: true,
                proxy: Some(proxy.clone()),
                http2: false,
            };
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let outcome = tunnel(&ep, &proxy, tcp)
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            (server.await.unwrap(), outcome)
        })
    }

    #[test]
    fn connect_asks_for_the_function_with_the_credentials() {
        let (sent, outcome) = connect_through(b"HTTP/1.1 200 Connection established\r\n\r\n");
        assert_eq!(
            sent,
            "CONNECT fn.example:443 HTTP/1.1\r\nHost: fn.example:443\r\n\
             Proxy-Authorization: Basic dTpw\r\n\r\n"
        );
        assert_eq!(outcome, Ok(()));
    }

    #[test]
    fn refusals_and_odd_answers_are_proxy_errors_without_credentials() {
        for (answer, want) in [
            (
                &b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"[..],
                "CONNECT refused: HTTP/1.1 407 Proxy Authentication Required",
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nextra",
                "data after the answer to CONNECT",
            ),
            (b"SSH-2.0-x\r\n\r\n", "CONNECT refused: SSH-2.0-x"),
            (
                b"HTTP/1.1 200",
                "connection closed before the answer to CONNECT",
            ),
        ] {
            let (_, outcome) = connect_through(answer);
            let err = outcome.unwrap_err();
            assert!(err.contains(want), "{err}");
            assert!(err.starts_with("proxy 127.0.0.1:"), "{err}");
            assert!(!err.contains("dTpw"), "{err}");
        }
    }

    #[test]
    fn absolute_form_keeps_the_signed_parts() {
        let proxy = Proxy {
            host: "proxy".into(),
            port: 3128,
            authorization: Some("Basic dTpw".into()),
            credentials: Some(("u".into(), "p".into())),
        };
        let mut req = Request::builder()
            .uri("/fn/a%20b?x=1")
            .header(HOST, "example.com:8080")
            .body(Full::new(Bytes::new()))
            .unwrap();
        absolute_form(&mut req, &proxy);
        assert_eq!(req.uri(), "http://example.com:8080/fn/a%20b?x=1");
        assert_eq!(req.headers()[HOST], "example.com:8080");
        assert!(req.headers()[PROXY_AUTHORIZATION].is_sensitive());
    }
}
