//! `--web.config.file`: real TLS (with client certificates) and bcrypt basic
//! auth on a running server, and re-reading the file when it changes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Pki {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

/// Writes a CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let srv_key = KeyPair::generate().expect("key");
    let srv = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params").signed_by(&srv_key, &issuer).expect("server cert");
    let cli_key = KeyPair::generate().expect("key");
    let cli = CertificateParams::new(vec!["client".to_string()]).expect("params").signed_by(&cli_key, &issuer).expect("client cert");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write");
    std::fs::write(dir.join("server.crt"), srv.pem()).expect("write");
    std::fs::write(dir.join("server.key"), srv_key.serialize_pem()).expect("write");
    Pki { ca_pem: ca.pem(), client_cert_pem: cli.pem(), client_key_pem: cli_key.serialize_pem() }
}

fn web_yml(user: &str, pass: &str) -> String {
    let hash = bcrypt::hash(pass, 4).expect("bcrypt");
    format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  {user}: {hash}\n"
    )
}

fn client_config(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(c.expect("ca pem")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(if with_cert {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.client_cert_pem.as_bytes()).collect::<Result<_, _>>().expect("cert");
        let key = PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).expect("key");
        b.with_client_auth_cert(certs, key).expect("client auth")
    } else {
        b.with_no_client_auth()
    })
}

/// GET over TLS; returns the raw response, or an error if TLS fails.
fn tls_get(addr: &str, cfg: Arc<rustls::ClientConfig>, path: &str, auth: Option<(&str, &str)>) -> std::io::Result<String> {
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    let mut conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let auth_header = auth.map(|(u, p)| format!("Authorization: Basic {}\r\n", b64(&format!("{u}:{p}")))).unwrap_or_default();
    write!(tls, "GET {path} HTTP/1.0\r\nHost: x\r\n{auth_header}\r\n")?;
    let mut out = String::new();
    tls.read_to_string(&mut out)?;
    Ok(out)
}

fn b64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_client_certs_and_basic_auth_guard_every_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_yml("alice", "secret")).expect("write");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .current_dir(dir.path())
            .args(["server", "--web.listen-address", &addr, "--self-scrape-interval", "200ms", "--web.config.file"])
            .arg(&web)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let good = client_config(&pki, true);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut resp = String::new();
    while Instant::now() < deadline {
        if let Ok(r) = tls_get(&addr, good.clone(), "/api/v1/query?query=up", Some(("alice", "secret")))
            && r.contains("\"up\"")
        {
            resp = r;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(resp.starts_with("HTTP/1.0 200"), "authorised TLS query: {resp}");
    assert!(resp.to_ascii_lowercase().contains("x-frame-options: deny"), "configured headers are added");

    for auth in [Some(("alice", "wrong")), Some(("mallory", "secret")), None] {
        let r = tls_get(&addr, good.clone(), "/api/v1/query?query=up", auth).expect("TLS works");
        assert!(r.starts_with("HTTP/1.0 401"), "{auth:?}: {r}");
        assert!(!r.contains("\"up\"") && !r.contains("hearth"), "no data leaks on 401: {r}");
        assert!(r.to_ascii_lowercase().contains("www-authenticate: basic"));
    }
    // Probes and the operator's configuration check present no password.
    for path in ["/-/healthy", "/-/ready", "/-/config-hash"] {
        let r = tls_get(&addr, good.clone(), path, None).expect("TLS works");
        assert!(r.starts_with("HTTP/1.0 200"), "{path} is open: {r}");
    }
    assert!(
        tls_get(&addr, client_config(&pki, false), "/-/healthy", Some(("alice", "secret"))).is_err(),
        "a client without a certificate is refused"
    );
    let mut plain = TcpStream::connect(&addr).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let _ = write!(plain, "GET /-/healthy HTTP/1.0\r\n\r\n");
    let mut buf = String::new();
    let _ = plain.read_to_string(&mut buf);
    assert!(!buf.contains("Healthy"), "plain HTTP gets nothing: {buf}");

    // A changed file is picked up: the new user works, the old one no longer does.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&web, web_yml("bob", "hunter2")).expect("rewrite");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut switched = false;
    while Instant::now() < deadline {
        let r = tls_get(&addr, good.clone(), "/api/v1/status/buildinfo", Some(("bob", "hunter2"))).expect("TLS");
        if r.starts_with("HTTP/1.0 200") {
            switched = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(switched, "new credentials accepted after the file changed");
    let r = tls_get(&addr, good, "/api/v1/status/buildinfo", Some(("alice", "secret"))).expect("TLS");
    assert!(r.starts_with("HTTP/1.0 401"), "old credentials refused: {r}");
}
