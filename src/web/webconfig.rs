//! `--web.config.file`: Prometheus' web configuration (TLS and basic auth for
//! the server's own endpoints), so users need no reverse proxy in front.
//!
//! The file is re-read when it (or a certificate it names) changes; an
//! invalid new file is logged and the running settings stay. TLS itself is
//! switched on or off only at startup, as in Prometheus.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The file's structure, with Prometheus' field names; unknown fields are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    pub http_server_config: HttpServerConfig,
    /// User name → bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    #[serde(default)]
    pub curve_preferences: Vec<String>,
    pub prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    pub client_allowed_sans: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    pub http2: Option<bool>,
    /// Headers added to every response.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The settings in force.
pub struct Loaded {
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Verified (user, password hash) pairs: bcrypt is deliberately slow.
    verified: Mutex<HashMap<(String, u64), bool>>,
    stamp: Vec<Option<SystemTime>>,
}

/// The web configuration of a running server.
pub struct WebSecurity {
    path: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

/// Files whose change triggers a reload.
fn watched(path: &Path, cfg: &WebConfig) -> Vec<PathBuf> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut v = vec![path.to_path_buf()];
    if let Some(t) = &cfg.tls_server_config {
        for f in [&t.cert_file, &t.key_file, &t.client_ca_file].into_iter().flatten() {
            v.push(resolve(base, f));
        }
    }
    v
}

fn mtimes(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

/// Reads and validates a web configuration file, naming the file in errors.
/// Whether a `basic_auth_users` value looks like a bcrypt hash (`$2a$`,
/// `$2b$`, `$2y$`…), so a plaintext password is refused up front.
pub fn is_bcrypt_hash(s: &str) -> bool {
    s.starts_with("$2")
}

pub fn load(path: &Path) -> Result<(WebConfig, Loaded), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg: WebConfig = if text.trim().is_empty() {
        WebConfig::default()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for (user, hash) in &cfg.basic_auth_users {
        if !is_bcrypt_hash(hash) {
            return Err(format!("{}: basic_auth_users.{user}: not a bcrypt hash", path.display()));
        }
    }
    let mut headers = Vec::new();
    for (k, v) in &cfg.http_server_config.headers {
        let name = HeaderName::try_from(k.as_str()).map_err(|e| format!("{}: http_server_config.headers.{k}: {e}", path.display()))?;
        let value = HeaderValue::try_from(v.as_str()).map_err(|e| format!("{}: http_server_config.headers.{k}: {e}", path.display()))?;
        headers.push((name, value));
    }
    let tls = match &cfg.tls_server_config {
        Some(t) => Some(Arc::new(tls_config(base, t).map_err(|e| format!("{}: tls_server_config: {e}", path.display()))?)),
        None => None,
    };
    let stamp = mtimes(&watched(path, &cfg));
    let loaded = Loaded { users: cfg.basic_auth_users.clone(), headers, tls, verified: Mutex::new(HashMap::new()), stamp };
    Ok((cfg, loaded))
}

fn tls_config(base: &Path, t: &TlsServerConfig) -> Result<rustls::ServerConfig, String> {
    let cert_file = t.cert_file.as_deref().ok_or("cert_file is required")?;
    let key_file = t.key_file.as_deref().ok_or("key_file is required")?;
    let cert_path = resolve(base, cert_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cert_file {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("cert_file {}: no certificate found", cert_path.display()));
    }
    let key_path = resolve(base, key_file);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| format!("key_file {}: {e}", key_path.display()))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match t.min_version.as_deref() {
        None | Some("TLS12") => vec![&rustls::version::TLS12, &rustls::version::TLS13],
        Some("TLS13") => vec![&rustls::version::TLS13],
        Some(v @ ("TLS10" | "TLS11")) => return Err(format!("min_version {v} is not supported (insecure); use TLS12 or TLS13")),
        Some(v) => return Err(format!("unknown min_version {v:?} (expected TLS12 or TLS13)")),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions).map_err(|e| e.to_string())?;
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca_file = t.client_ca_file.as_deref().ok_or_else(|| format!("client_auth_type {auth} needs client_ca_file"))?;
            let ca_path = resolve(base, ca_file);
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(&ca_path).map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))? {
                roots
                    .add(c.map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?)
                    .map_err(|e| format!("client_ca_file {}: {e}", ca_path.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == "VerifyClientCertIfGiven" { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "client_auth_type {other:?} is not supported (use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            ));
        }
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| format!("cert_file/key_file: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl WebSecurity {
    /// No web configuration: plain HTTP, no authentication.
    pub fn none() -> Arc<Self> {
        Arc::new(WebSecurity {
            path: None,
            current: RwLock::new(Arc::new(Loaded {
                users: BTreeMap::new(),
                headers: Vec::new(),
                tls: None,
                verified: Mutex::new(HashMap::new()),
                stamp: Vec::new(),
            })),
        })
    }

    /// Loads `path`; failing here stops the server from starting.
    pub fn from_file(path: &Path) -> Result<Arc<Self>, String> {
        let (_, loaded) = load(path)?;
        Ok(Arc::new(WebSecurity { path: Some(path.to_path_buf()), current: RwLock::new(Arc::new(loaded)) }))
    }

    fn current(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether connections must be TLS (decided at startup).
    pub fn tls_enabled(&self) -> bool {
        self.current().tls.is_some()
    }

    /// Re-reads the file if it or a file it names changed; keeps the running
    /// settings when the new ones are invalid.
    pub fn reload_if_changed(&self) {
        let Some(path) = &self.path else { return };
        let cur = self.current();
        let files = match std::fs::read_to_string(path).ok().and_then(|t| serde_saphyr::from_str::<WebConfig>(&t).ok()) {
            Some(cfg) => watched(path, &cfg),
            None => vec![path.clone()],
        };
        if mtimes(&files) == cur.stamp {
            return;
        }
        match load(path) {
            Ok((_, mut new)) => {
                if cur.tls.is_some() != new.tls.is_some() {
                    tracing::warn!(file = %path.display(), "turning TLS on or off needs a restart; keeping the current mode");
                    if new.tls.is_none() {
                        new.tls = cur.tls.clone();
                    } else {
                        new.tls = None;
                    }
                }
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                tracing::info!(file = %path.display(), "web configuration reloaded");
            }
            Err(e) => tracing::error!(error = %e, "invalid web configuration; keeping the running one"),
        }
    }

    /// Checks the file every `every` until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) {
        if self.path.is_none() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let m = me.clone();
                let _ = tokio::task::spawn_blocking(move || m.reload_if_changed()).await;
            }
        });
    }
}

/// Decodes standard base64 (for `Authorization: Basic`).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Paths open without credentials: they say only whether the server is up
/// and which configuration it runs, and the kubelet's probes and the
/// operator's configuration check cannot present a password.
const OPEN_PATHS: &[&str] = &["/-/healthy", "/-/ready", "/-/config-hash"];

/// Basic authentication and configured headers for every request.
pub async fn middleware(State(sec): State<Arc<WebSecurity>>, req: Request, next: Next) -> Response {
    let cur = sec.current();
    if !cur.users.is_empty() && !OPEN_PATHS.contains(&req.uri().path()) {
        let creds = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(base64_decode)
            .and_then(|b| String::from_utf8(b).ok());
        let ok = match creds.as_deref().and_then(|c| c.split_once(':')) {
            Some((user, pass)) => {
                let c = cur.clone();
                let (user, pass) = (user.to_string(), pass.to_string());
                tokio::task::spawn_blocking(move || verify(&c, &user, &pass)).await.unwrap_or(false)
            }
            None => false,
        };
        if !ok {
            let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return r;
        }
    }
    let mut resp = next.run(req).await;
    for (k, v) in &cur.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

fn verify(cur: &Loaded, user: &str, pass: &str) -> bool {
    let Some(hash) = cur.users.get(user) else {
        // Spend the same time as a real check so user names cannot be probed.
        let _ = bcrypt::verify(pass, "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi");
        return false;
    };
    let key = (user.to_string(), xxhash_rust::xxh3::xxh3_64(pass.as_bytes()));
    if let Some(&v) = cur.verified.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return v;
    }
    let ok = bcrypt::verify(pass, hash).unwrap_or(false);
    cur.verified.lock().unwrap_or_else(|p| p.into_inner()).insert(key, ok);
    ok
}

/// Accepts TLS connections, handshaking off the accept path so a slow client
/// cannot hold up others, using the current certificates for each connection.
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, sec: Arc<WebSecurity>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(cfg) = sec.current().tls.clone() else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), TlsAcceptor::from(cfg).accept(tcp)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, peer = %addr, "TLS handshake failed"),
                        Err(_) => tracing::debug!(peer = %addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").as_deref(), Some(&b"user:pass"[..]));
        assert_eq!(base64_decode("YTpi").as_deref(), Some(&b"a:b"[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert!(base64_decode("!!").is_none());
    }

    #[test]
    fn invalid_files_are_rejected_with_the_path_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "basic_auth_users:\n  alice: plaintext\n").expect("write");
        let e = load(&p).err().expect("not bcrypt");
        assert!(e.contains("web.yml") && e.contains("alice"), "{e}");
        std::fs::write(&p, "unknown_field: 1\n").expect("write");
        assert!(load(&p).is_err());
        std::fs::write(&p, "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n").expect("write");
        let e = load(&p).err().expect("missing cert");
        assert!(e.contains("missing.crt"), "{e}");
    }
}
