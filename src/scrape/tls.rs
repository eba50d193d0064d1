//! `tls_config.server_name`: verify the target's certificate against a
//! configured name rather than the URL's host. Targets are usually reached
//! by pod IP while their certificates name a Service DNS name, which is
//! what ServiceMonitors' `tlsConfig.serverName` is for.
//!
//! reqwest cannot verify against another name, so the client gets a rustls
//! configuration of its own with a verifier that substitutes the name. The
//! SNI extension still carries the URL's host (none for an IP address).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::{TlsConfig, TlsVersion};

/// The rustls configuration of a client whose certificates are checked
/// against `name`. Errors name the file or setting at fault.
pub fn client_config(t: &TlsConfig, name: &str, http2: bool) -> Result<rustls::ClientConfig, String> {
    let server = ServerName::try_from(name.to_string()).map_err(|_| format!("tls_config.server_name {name:?} is not a valid DNS name"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &t.ca_file {
        Some(ca) => {
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("unable to load specified CA cert {ca}: {e}"))? {
                let c = c.map_err(|e| format!("unable to use specified CA cert {ca}: {e}"))?;
                roots.add(c).map_err(|e| format!("unable to use specified CA cert {ca}: {e}"))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                // The system store may hold certificates rustls cannot use; skip those.
                let _ = roots.add(c);
            }
        }
    }
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| format!("tls_config: {e}"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(TlsVersion::Tls12, &rustls::version::TLS12), (TlsVersion::Tls13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| t.min_version.is_none_or(|min| *v >= min) && t.max_version.is_none_or(|max| *v <= max))
            .map(|(_, p)| p)
            .collect();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_config min_version/max_version: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name: server }));
    let mut cfg = match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("unable to read specified client cert {cert}: {e}"))?;
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("unable to read specified client key {key}: {e}"))?;
            builder.with_client_auth_cert(certs, k).map_err(|e| format!("unable to use client cert {cert} and key {key}: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(cfg)
}

/// WebPKI verification against a fixed name.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::config::HttpClientConfig;

    /// An HTTPS server on 127.0.0.1 whose certificate names only
    /// `target.example`; answers every connection with a metric. Returns
    /// its address and the CA file.
    async fn serve(dir: &std::path::Path) -> (String, String) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["target.example".to_string()]).expect("params").signed_by(&key, &issuer).expect("cert");
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, ca.pem()).expect("write");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .expect("server config");
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            for _ in 0..8 {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let body = "up_test 1\n";
                    let _ = tls
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes(),
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (addr, ca_file.display().to_string())
    }

    #[tokio::test]
    async fn server_name_replaces_the_url_host_in_verification() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addr, ca) = serve(dir.path()).await;
        let mut c = HttpClientConfig::default();
        c.tls_config.ca_file = Some(ca);
        let url = format!("https://{addr}/metrics");

        let plain = crate::scrape::client::build(&c).expect("client");
        assert!(plain.get(&url).send().await.is_err(), "the certificate does not name 127.0.0.1");

        c.tls_config.server_name = Some("target.example".into());
        let named = crate::scrape::client::build(&c).expect("client");
        let resp = named.get(&url).send().await.expect("verified against target.example");
        assert_eq!(resp.text().await.expect("body"), "up_test 1\n");

        c.tls_config.server_name = Some("other.example".into());
        let wrong = crate::scrape::client::build(&c).expect("client");
        assert!(wrong.get(&url).send().await.is_err(), "a name the certificate lacks fails");
    }
}
