//! TLS for the admission webhook: a private CA and the serving certificates it issues
//! ([`new_ca`], [`Ca::issue`]), or cert-manager's Secret ([`from_secret`]); a certificate
//! store that swaps the serving certificate without a restart ([`CertStore`]: new handshakes
//! get the new one, connections in flight keep theirs); the HTTPS accept loop ([`serve`]);
//! and when to rotate ([`rotation_due`]).
//!
//! ring only: nothing here may pull aws-lc-rs. Key material never reaches a log, an error
//! or a `Debug` string.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's headers may take to arrive.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight are given to finish once shutdown is asked.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Backdating of `notBefore`, for clocks a little behind ours.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The Secret keys, as cert-manager writes them.
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_CRT: &str = "ca.crt";

/// Why a certificate could not be made, read or served. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("the secret has no `{0}`")]
    MissingKey(&'static str),
    #[error("`{0}` is not PEM, or holds nothing of the expected kind")]
    BadPem(&'static str),
    #[error("the validity of the certificate in `{0}` cannot be read")]
    BadValidity(&'static str),
    #[error("`tls.key` does not match the certificate in `tls.crt`")]
    KeyMismatch,
    #[error("the serving certificate or key was refused: {0}")]
    Refused(#[source] rustls::Error),
}

/// A serving certificate: the CA that clients trust, the certificate (chain) and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServingCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's `notAfter`.
    pub not_after: SystemTime,
}

impl fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingCert")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<hidden>")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A private CA: its key pair and self-signed certificate; it issues serving certificates.
/// Kept in a Secret as `ca.crt` and `ca.key` ([`Ca::to_secret_data`], [`Ca::from_secret`]).
#[derive(Clone)]
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    not_after: SystemTime,
}

/// The Secret key of a generated CA's private key.
pub const CA_KEY: &str = "ca.key";

/// The CA's parameters: always the same, so an issuer rebuilt from the CA's key names the
/// same subject and key identifier as the CA's certificate, and what it signs chains to it.
fn ca_params(valid_for: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "congress webhook CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, valid_for);
    params
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .field("key", &"<hidden>")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A new CA (ECDSA P-256), valid from a few minutes ago for `valid_for`.
pub fn new_ca(valid_for: Duration) -> Result<Ca, TlsError> {
    let generate = |source| TlsError::Generate { what: "the CA", source };
    let key = KeyPair::generate().map_err(generate)?;
    let cert = ca_params(valid_for).self_signed(&key).map_err(generate)?;
    let not_after = not_after(cert.der(), "the CA certificate")?;
    Ok(Ca { cert_pem: cert.pem(), key_pem: key.serialize_pem(), not_after })
}

impl Ca {
    /// The CA kept in a Secret by [`Ca::to_secret_data`]: `ca.crt` and `ca.key`.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Ca, TlsError> {
        let get = |key: &'static str| data.get(key).ok_or(TlsError::MissingKey(key));
        let text = |key: &'static str, bytes: &[u8]| {
            std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| TlsError::BadPem(key))
        };
        let (cert_pem, key_pem) = (text(CA_CRT, get(CA_CRT)?)?, text(CA_KEY, get(CA_KEY)?)?);
        KeyPair::from_pem(&key_pem).map_err(|_| TlsError::BadPem(CA_KEY))?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| TlsError::BadPem(CA_CRT))?;
        let not_after = not_after(&der, "the CA certificate")?;
        Ok(Ca { cert_pem, key_pem, not_after })
    }

    /// The Secret data that keeps this CA and `cert`, its serving certificate: cert-manager's
    /// `tls.crt`, `tls.key`, `ca.crt`, and the CA's `ca.key`.
    pub fn to_secret_data(&self, cert: &ServingCert) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            (TLS_CRT.to_string(), cert.cert_pem.clone().into_bytes()),
            (TLS_KEY.to_string(), cert.key_pem.clone().into_bytes()),
            (CA_CRT.to_string(), self.cert_pem.clone().into_bytes()),
            (CA_KEY.to_string(), self.key_pem.clone().into_bytes()),
        ])
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, TlsError> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(|_| TlsError::BadPem(CA_KEY))?;
        Ok(Issuer::new(ca_params(Duration::from_secs(1)), key))
    }

    /// The CA's certificate, for clients to trust (the webhook's `caBundle`).
    #[cfg(test)]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    #[cfg(test)]
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// A serving certificate (a fresh ECDSA P-256 key) for `dns_names` and `ips`, all in its
    /// subjectAltName (kube-apiserver ignores the CN since v1.19), valid from a few minutes ago for
    /// `valid_for`.
    pub fn issue(&self, dns_names: &[String], ips: &[IpAddr], valid_for: Duration) -> Result<ServingCert, TlsError> {
        let generate = |source| TlsError::Generate { what: "the serving certificate", source };
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "congress webhook");
        for name in dns_names {
            let name = name.clone().try_into().map_err(generate)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params.subject_alt_names.extend(ips.iter().copied().map(SanType::IpAddress));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, valid_for);
        // The serial number is derived from the (fresh) public key: a new one each time.
        let cert = params.signed_by(&key, &self.issuer()?).map_err(generate)?;
        Ok(ServingCert {
            ca_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: not_after(cert.der(), "the serving certificate")?,
        })
    }
}

fn set_validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + valid_for).into();
}

/// A serving certificate from a `kubernetes.io/tls` Secret's data as cert-manager writes it:
/// `tls.crt` (the certificate, then any intermediates), `tls.key`, `ca.crt`. The key must match
/// the certificate.
pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<ServingCert, TlsError> {
    let get = |key: &'static str| data.get(key).ok_or(TlsError::MissingKey(key));
    let (crt, key, ca) = (get(TLS_CRT)?, get(TLS_KEY)?, get(CA_CRT)?);
    let text = |key: &'static str, bytes: &[u8]| {
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| TlsError::BadPem(key))
    };
    let serving = ServingCert {
        ca_pem: text(CA_CRT, ca)?,
        cert_pem: text(TLS_CRT, crt)?,
        key_pem: text(TLS_KEY, key)?,
        not_after: SystemTime::UNIX_EPOCH,
    };
    certs(&serving.ca_pem, CA_CRT)?;
    // Parses the chain and the key, and checks that they match.
    let certified = certified_key(&serving)?;
    let not_after = not_after(&certified.cert[0], TLS_CRT)?;
    Ok(ServingCert { not_after, ..serving })
}

/// Every certificate in `pem`; at least one.
fn certs(pem: &str, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::BadPem(key))?;
    if certs.is_empty() {
        return Err(TlsError::BadPem(key));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The chain and key of `cert` for rustls, checked to match.
fn certified_key(cert: &ServingCert) -> Result<CertifiedKey, TlsError> {
    let chain = certs(&cert.cert_pem, TLS_CRT)?;
    // The PEM error is dropped: it can quote the key's text.
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|_| TlsError::BadPem(TLS_KEY))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        other => TlsError::Refused(other),
    })
}

/// The `notAfter` of a DER certificate: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version OPTIONAL, serialNumber, signature, issuer, validity SEQUENCE { notBefore,
/// notAfter }, ... }, ... }.
fn not_after(der: &[u8], what: &'static str) -> Result<SystemTime, TlsError> {
    parse_not_after(der).ok_or(TlsError::BadValidity(what))
}

fn parse_not_after(der: &[u8]) -> Option<SystemTime> {
    let (0x30, cert, _) = tlv(der)? else { return None };
    let (0x30, tbs, _) = tlv(cert)? else { return None };
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag != 0xa0 {
        rest = tbs; // no version: v1
    }
    for _ in 0..3 {
        rest = tlv(rest)?.2; // serialNumber, signature, issuer
    }
    let (0x30, validity, _) = tlv(rest)? else { return None };
    let (_, _, validity) = tlv(validity)?; // notBefore
    let (tag, time, _) = tlv(validity)?;
    let time = std::str::from_utf8(time).ok()?;
    let digits = time.strip_suffix('Z')?;
    let full = match (tag, digits.len()) {
        // UTCTime: YYMMDDHHMMSS, 50..99 are 19xx.
        (0x17, 12) => format!("{}{digits}", if digits[..2] >= *"50" { "19" } else { "20" }),
        // GeneralizedTime: YYYYMMDDHHMMSS.
        (0x18, 14) => digits.to_owned(),
        _ => return None,
    };
    let at = chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").ok()?.and_utc().timestamp();
    Some(match u64::try_from(at) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(at.unsigned_abs()),
    })
}

/// One DER element: its tag, its contents and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (bytes, rest) = input.split_at(n);
        input = rest;
        bytes.iter().fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    (input.len() >= len).then(|| (tag, &input[..len], &input[len..]))
}

/// The webhook's serving certificate, swappable while serving: each TLS handshake takes the
/// current one, so a [`replace`](CertStore::replace) reaches new connections only.
pub struct CertStore {
    current: RwLock<Current>,
}

struct Current {
    key: Arc<CertifiedKey>,
    cert: ServingCert,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore").field("cert", &self.current().cert_pem).finish_non_exhaustive()
    }
}

impl CertStore {
    pub fn new(cert: &ServingCert) -> Result<Arc<CertStore>, TlsError> {
        let key = Arc::new(certified_key(cert)?);
        Ok(Arc::new(CertStore { current: RwLock::new(Current { key, cert: cert.clone() }) }))
    }

    /// Serve `cert` from the next handshake on; connections already open keep theirs.
    /// On an error the current certificate stays.
    pub fn replace(&self, cert: &ServingCert) -> Result<(), TlsError> {
        let key = Arc::new(certified_key(cert)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Current { key, cert: cert.clone() };
        Ok(())
    }

    pub fn current(&self) -> ServingCert {
        self.current.read().unwrap_or_else(|e| e.into_inner()).cert.clone()
    }

    /// A rustls server configuration (ring, HTTP/1.1) whose certificate is this store's.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).key.clone())
    }
}

/// Serve `router` over HTTPS on `listener` until `shutdown` turns true (or its sender is
/// dropped); then connections in flight are given [`DRAIN_TIMEOUT`] to finish. A failed
/// handshake is logged at debug and the loop goes on.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "webhook: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, mut stop) = (acceptor.clone(), router.clone(), shutdown.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "webhook: TLS handshake timed out");
                    return;
                }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "webhook: connection ended with an error");
            }
        });
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::debug!("webhook: connections still open after the drain timeout, closing them");
        connections.shutdown().await;
    }
}

/// Resolves once `shutdown` is true or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Whether a certificate valid for `valid_for` and expiring at `not_after` should be renewed
/// at `now`: less than a third of its lifetime left, or expired.
pub fn rotation_due(not_after: SystemTime, valid_for: Duration, now: SystemTime) -> bool {
    match not_after.duration_since(now) {
        Ok(left) => left < valid_for / 3,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::{Ipv4Addr, SocketAddr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const DNS: &str = "congress-webhook.congress.svc";

    fn localhost() -> Vec<IpAddr> {
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    }

    fn issue(ca: &Ca) -> ServingCert {
        ca.issue(&[DNS.to_owned()], &localhost(), DAY).unwrap()
    }

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    /// The webhook answering `GET /ping` with `pong` on 127.0.0.1, and how to stop it.
    async fn start(store: &Arc<CertStore>) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/ping", get(|| async { "pong" }));
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, store.server_config(), router, rx));
        (addr, tx, server)
    }

    /// A TLS connection trusting only `ca_pem`, checking the certificate against `name`.
    async fn connect(addr: SocketAddr, ca_pem: &str, name: &str) -> Result<TlsStream<TcpStream>, std::io::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
        connector.connect(name, TcpStream::connect(addr).await?).await
    }

    fn peer_cert(stream: &TlsStream<TcpStream>) -> Vec<u8> {
        stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    /// `GET /ping` on an open (keep-alive) connection: the status line and the body.
    async fn ping(stream: &mut TlsStream<TcpStream>) -> (String, String) {
        stream.write_all(b"GET /ping HTTP/1.1\r\nHost: webhook\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap();
            if body.len() >= len {
                return (head.lines().next().unwrap().to_owned(), body.to_owned());
            }
        }
    }

    #[tokio::test]
    async fn webhook_serves_and_swaps_the_certificate_for_new_connections_only() {
        let ca = new_ca(10 * DAY).unwrap();
        let first = issue(&ca);
        let store = CertStore::new(&first).unwrap();
        let (addr, stop, server) = start(&store).await;

        // An ordinary HTTPS client trusting the CA, by IP (the e2e tests' `IP:127.0.0.1`).
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(first.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let resp = client.get(format!("https://{addr}/ping")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "pong");

        // By DNS name too; and a name not in the SAN is refused.
        let mut before = connect(addr, &first.ca_pem, DNS).await.unwrap();
        assert_eq!(peer_cert(&before), der(&first.cert_pem));
        assert_eq!(ping(&mut before).await, ("HTTP/1.1 200 OK".to_owned(), "pong".to_owned()));
        assert!(connect(addr, &first.ca_pem, "other.congress.svc").await.is_err());

        let second = issue(&ca);
        assert_ne!(second.cert_pem, first.cert_pem);
        store.replace(&second).unwrap();
        assert_eq!(store.current(), second);

        // A new connection gets the new certificate...
        let mut after = connect(addr, &second.ca_pem, "127.0.0.1").await.unwrap();
        assert_eq!(peer_cert(&after), der(&second.cert_pem));
        assert_eq!(ping(&mut after).await.1, "pong");
        // ...the one opened before keeps its own and is still served.
        assert_eq!(peer_cert(&before), der(&first.cert_pem));
        assert_eq!(ping(&mut before).await.1, "pong");

        // A failed handshake does not stop the loop.
        let untrusted = new_ca(DAY).unwrap();
        assert!(connect(addr, untrusted.cert_pem(), "127.0.0.1").await.is_err());
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(b"GET /ping HTTP/1.1\r\n\r\n").await.unwrap();
        drop(plain);
        assert_eq!(ping(&mut connect(addr, &second.ca_pem, DNS).await.unwrap()).await.1, "pong");

        // Shutdown ends the server, closing the idle keep-alive connections.
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn webhook_issued_certificates_carry_their_names_and_validity() {
        let ca = new_ca(10 * DAY).unwrap();
        let now = SystemTime::now();
        let cert = issue(&ca);
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!((secs(cert.not_after) - secs(now + DAY)).abs() < 5.0, "{cert:?}");
        assert!((secs(ca.not_after()) - secs(now + 10 * DAY)).abs() < 5.0);
        assert_eq!(cert.ca_pem, ca.cert_pem());
        // Kept in a Secret and read back, the CA issues certificates that chain to it.
        let data = ca.to_secret_data(&cert);
        let back = Ca::from_secret(&data).expect("the CA reads back");
        let again = back.issue(&["x.example".to_string()], &[], 10 * DAY).expect("re-issued");
        assert_eq!(again.ca_pem, ca.cert_pem());
        assert_eq!(from_secret(&data).expect("the serving certificate reads back").cert_pem, cert.cert_pem);
        let mut no_key = data.clone();
        no_key.remove(CA_KEY);
        assert!(matches!(Ca::from_secret(&no_key), Err(TlsError::MissingKey(CA_KEY))));
        // The names are in the subjectAltName: its DER holds the DNS name and the IP's 4 bytes.
        let der = der(&cert.cert_pem);
        assert!(der.windows(DNS.len()).any(|w| w == DNS.as_bytes()));
        assert!(der.windows(6).any(|w| w == [0x87, 4, 127, 0, 0, 1]), "no IP:127.0.0.1 SAN");
        // A name rcgen cannot encode is an error, not a panic.
        assert!(matches!(ca.issue(&["bad\u{e9}.svc".to_owned()], &[], DAY), Err(TlsError::Generate { .. })));
    }

    fn secret(cert: &ServingCert) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            (TLS_CRT.to_owned(), cert.cert_pem.clone().into_bytes()),
            (TLS_KEY.to_owned(), cert.key_pem.clone().into_bytes()),
            (CA_CRT.to_owned(), cert.ca_pem.clone().into_bytes()),
        ])
    }

    #[test]
    fn webhook_from_secret_reads_cert_managers_layout() {
        let ca = new_ca(DAY).unwrap();
        let cert = issue(&ca);
        assert_eq!(from_secret(&secret(&cert)).unwrap(), cert);
    }

    #[test]
    fn webhook_from_secret_errors_name_the_key_and_hide_the_material() {
        let ca = new_ca(DAY).unwrap();
        let (cert, other) = (issue(&ca), issue(&ca));
        let shown = |e: TlsError| {
            let text = format!("{e} {e:?}");
            assert!(!text.contains("PRIVATE KEY") && !text.contains(cert.key_pem.lines().nth(1).unwrap()), "{text}");
            text
        };

        for key in [TLS_CRT, TLS_KEY, CA_CRT] {
            let mut data = secret(&cert);
            data.remove(key);
            let e = from_secret(&data).unwrap_err();
            assert!(matches!(e, TlsError::MissingKey(k) if k == key));
            assert!(shown(e).contains(&format!("`{key}`")));
        }

        let mut data = secret(&cert);
        data.insert(TLS_KEY.to_owned(), other.key_pem.clone().into_bytes());
        let e = from_secret(&data).unwrap_err();
        assert!(matches!(e, TlsError::KeyMismatch), "{e:?}");
        shown(e);
        assert!(matches!(
            CertStore::new(&ServingCert { key_pem: other.key_pem.clone(), ..cert.clone() }),
            Err(TlsError::KeyMismatch)
        ));

        for (key, garbage) in [
            (TLS_CRT, &b"not a certificate"[..]),
            (TLS_KEY, b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"),
            (TLS_KEY, b"garbage"),
            (CA_CRT, b"\xff\xfe"),
            (TLS_CRT, cert.key_pem.as_bytes()),
        ] {
            let mut data = secret(&cert);
            data.insert(key.to_owned(), garbage.to_vec());
            let e = from_secret(&data).unwrap_err();
            match &e {
                TlsError::BadPem(k) => assert_eq!(*k, key),
                // Well-formed PEM that is no key.
                TlsError::Refused(_) => assert_eq!(key, TLS_KEY),
                other => panic!("{key}: {other:?}"),
            }
            shown(e);
        }
    }

    #[test]
    fn webhook_a_failed_replace_keeps_the_current_certificate() {
        let ca = new_ca(DAY).unwrap();
        let cert = issue(&ca);
        let store = CertStore::new(&cert).unwrap();
        let broken = ServingCert { key_pem: "garbage".to_owned(), ..issue(&ca) };
        assert!(store.replace(&broken).is_err());
        assert_eq!(store.current(), cert);
    }

    #[test]
    fn webhook_rotation_due_when_less_than_a_third_is_left() {
        let valid_for = Duration::from_secs(3000);
        let not_after = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |left: i64| UNIX_EPOCH + Duration::from_secs((1_000_000 - left) as u64);
        assert!(!rotation_due(not_after, valid_for, at(3000)));
        assert!(!rotation_due(not_after, valid_for, at(1001)));
        assert!(!rotation_due(not_after, valid_for, at(1000)), "exactly a third left");
        assert!(rotation_due(not_after, valid_for, at(999)));
        assert!(rotation_due(not_after, valid_for, at(0)));
        assert!(rotation_due(not_after, valid_for, at(-1)), "expired");
    }

    #[test]
    fn webhook_debug_hides_the_key() {
        let ca = new_ca(DAY).unwrap();
        let cert = issue(&ca);
        let store = CertStore::new(&cert).unwrap();
        for shown in [format!("{cert:?}"), format!("{ca:?}"), format!("{store:?}")] {
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            assert!(!shown.contains(cert.key_pem.lines().nth(1).unwrap()), "{shown}");
        }
        assert!(format!("{cert:?}").contains("key_pem: \"<hidden>\""));
    }

    #[test]
    fn webhook_not_after_reads_both_time_encodings() {
        // UTCTime before 2050, GeneralizedTime after.
        let mut params = CertificateParams::default();
        let key = KeyPair::generate().unwrap();
        for (year, secs) in [(2049, 2_493_072_000u64), (2051, 2_556_144_000)] {
            params.not_after = rcgen::date_time_ymd(year, 1, 1);
            let cert = params.self_signed(&key).unwrap();
            assert_eq!(not_after(cert.der(), "test").unwrap(), UNIX_EPOCH + Duration::from_secs(secs));
        }
        assert!(matches!(not_after(b"\x30\x03\x02\x01\x01", "x"), Err(TlsError::BadValidity("x"))));
        assert!(parse_not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
