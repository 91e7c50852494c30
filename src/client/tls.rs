//! TLS client configurations, built once per worker.
//!
//! Verification is on unless a route sets `ssl_verify: false`. Roots come from the system
//! store (rustls-native-certs, which honours `SSL_CERT_FILE`/`SSL_CERT_DIR` like OpenSSL).
//! Each configuration has its own session store, so new connections resume the sessions
//! of earlier ones to the same server instead of paying a full handshake.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme};

/// TLS 1.3 tickets kept per server name. A ticket resumes one connection only, and
/// rustls's own store keeps 8 per server: a burst of new connections then runs out and
/// most of it pays full handshakes. The server sends one or two tickets per
/// connection, so a larger store covers a burst as wide as the connections it replaces.
const TICKETS_PER_SERVER: usize = 128;
/// Server names with sessions kept; past it, one is forgotten to make room.
const MAX_SERVERS: usize = 64;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(verify: bool, h2: bool) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = if verify {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err("TLS setup failed: no trusted root certificates found".into());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
            .with_no_client_auth()
    };
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.resumption = Resumption::store(Arc::new(SessionStore::default()));
    Ok(Arc::new(config))
}

/// The shared configuration for `ssl_verify` on or off, offering h2 by ALPN or not;
/// the root store is read once for each.
pub fn config(verify: bool, h2: bool) -> Result<Arc<ClientConfig>, String> {
    type Cell = OnceLock<Result<Arc<ClientConfig>, String>>;
    static CONFIGS: [Cell; 4] = [Cell::new(), Cell::new(), Cell::new(), Cell::new()];
    let cell = &CONFIGS[usize::from(verify) * 2 + usize::from(h2)];
    cell.get_or_init(|| build(verify, h2)).clone()
}

#[derive(Default)]
struct ServerSessions {
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Oldest first.
    tls13: VecDeque<Tls13ClientSessionValue>,
}

/// The sessions of one configuration (one worker, `ssl_verify` on or off) by server
/// name: rustls's in-memory store with room for more tickets per server.
#[derive(Default)]
struct SessionStore {
    servers: Mutex<HashMap<ServerName<'static>, ServerSessions>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sessions hold secrets: only their count is shown.
        f.debug_struct("SessionStore")
            .field("servers", &self.servers.lock().len())
            .finish()
    }
}

impl SessionStore {
    fn edit(&self, name: ServerName<'static>, f: impl FnOnce(&mut ServerSessions)) {
        let mut servers = self.servers.lock();
        if !servers.contains_key(&name) && servers.len() >= MAX_SERVERS {
            if let Some(any) = servers.keys().next().cloned() {
                servers.remove(&any);
            }
        }
        f(servers.entry(name).or_default());
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.edit(name, |s| s.kx_hint = Some(group));
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.servers.lock().get(name).and_then(|s| s.kx_hint)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.edit(name, |s| s.tls12 = Some(value));
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.servers.lock().get(name).and_then(|s| s.tls12.clone())
    }

    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        if let Some(s) = self.servers.lock().get_mut(name) {
            s.tls12 = None;
        }
    }

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.edit(name, |s| {
            if s.tls13.len() >= TICKETS_PER_SERVER {
                s.tls13.pop_front();
            }
            s.tls13.push_back(value);
        });
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        // The newest: the furthest from its lifetime's end.
        self.servers.lock().get_mut(name)?.tls13.pop_back()
    }
}

/// `ssl_verify: false`: accept any certificate, still check handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{
        ClientConnection, ConnectionCommon, HandshakeKind, ServerConfig, ServerConnection,
    };

    /// A TLS 1.3 server that, like nginx, sends two tickets after each handshake.
    fn server() -> Arc<ServerConfig> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/t/cert/");
        let certs = CertificateDer::pem_file_iter(format!("{dir}server.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{dir}server.key")).unwrap();
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        config.ticketer = rustls::crypto::ring::Ticketer::new().unwrap();
        config.send_tls13_tickets = 2;
        Arc::new(config)
    }

    /// Opens `n` connections at once (each client takes its ticket, if any, when it
    /// writes its ClientHello), then completes them in memory; returns how many resumed.
    fn burst(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>, n: usize) -> usize {
        let name = ServerName::try_from("burst.test").unwrap();
        let mut conns: Vec<_> = (0..n)
            .map(|_| {
                let c = ClientConnection::new(client.clone(), name.clone()).unwrap();
                (c, ServerConnection::new(server.clone()).unwrap())
            })
            .collect();
        let mut resumed = 0;
        for (c, s) in &mut conns {
            complete(c, s);
            resumed += usize::from(c.handshake_kind() == Some(HandshakeKind::Resumed));
        }
        resumed
    }

    fn complete(c: &mut ClientConnection, s: &mut ServerConnection) {
        while c.wants_write() || s.wants_write() {
            deliver(c, s);
            deliver(s, c);
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
    }

    /// What `from` has to write, read and processed by `to`.
    fn deliver<A, B>(from: &mut ConnectionCommon<A>, to: &mut ConnectionCommon<B>) {
        let mut wire = Vec::new();
        from.write_tls(&mut wire).unwrap();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    #[test]
    fn a_burst_as_wide_as_the_one_before_resumes() {
        let server = server();
        // One store per configuration: a name of this test's own keeps it apart.
        let ours = config(false, false).unwrap();
        assert_eq!(burst(&ours, &server, 32), 0);
        assert_eq!(burst(&ours, &server, 32), 32);
        // and again: each resumed connection brought a ticket for the next
        assert_eq!(burst(&ours, &server, 32), 32);

        // Why the store is ours: rustls's keeps 8 tickets per server.
        let mut theirs = ClientConfig::clone(&ours);
        theirs.resumption = Resumption::default();
        let theirs = Arc::new(theirs);
        burst(&theirs, &server, 32);
        assert!(burst(&theirs, &server, 32) < 32);
    }
}
