//! The HTTP client of a scrape pool, built from the scrape config's HTTP
//! settings (TLS, redirects, HTTP/2, proxy) plus its credentials, which are
//! read at every request so rotated secret files are picked up. With
//! `tls_config.server_name` the TLS setup is [`super::tls`]'s.

use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::config::{HttpClientConfig, TlsVersion};

/// Credentials added to each request.
#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    None,
    Basic { username: String, password: Option<String>, password_file: Option<String> },
    Header { kind: String, credentials: Option<String>, credentials_file: Option<String> },
}

impl Credentials {
    pub fn from_config(c: &HttpClientConfig) -> Credentials {
        if let Some(b) = &c.basic_auth {
            return Credentials::Basic {
                username: b.username.clone(),
                password: b.password.as_ref().map(|p| p.expose().to_string()),
                password_file: b.password_file.clone(),
            };
        }
        if let Some(a) = &c.authorization {
            let kind = if a.auth_type.is_empty() { "Bearer".to_string() } else { a.auth_type.clone() };
            return Credentials::Header {
                kind,
                credentials: a.credentials.as_ref().map(|p| p.expose().to_string()),
                credentials_file: a.credentials_file.clone(),
            };
        }
        Credentials::None
    }

    /// The `Authorization` header value, reading secret files now.
    pub fn header(&self) -> Result<Option<HeaderValue>, String> {
        let read = |f: &str| std::fs::read_to_string(f).map(|s| s.trim().to_string()).map_err(|e| format!("reading {f}: {e}"));
        let value = match self {
            Credentials::None => return Ok(None),
            Credentials::Basic { username, password, password_file } => {
                let pw = match password_file {
                    Some(f) => read(f)?,
                    None => password.clone().unwrap_or_default(),
                };
                format!("Basic {}", base64(format!("{username}:{pw}").as_bytes()))
            }
            Credentials::Header { kind, credentials, credentials_file } => {
                let c = match credentials_file {
                    Some(f) => read(f)?,
                    None => credentials.clone().unwrap_or_default(),
                };
                format!("{kind} {c}")
            }
        };
        HeaderValue::from_str(&value).map(Some).map_err(|_| "credentials contain characters not allowed in a header".to_string())
    }
}

/// Builds the client. Errors name the file or setting at fault.
pub fn build(c: &HttpClientConfig) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")))
        .redirect(if c.follow_redirects { reqwest::redirect::Policy::limited(10) } else { reqwest::redirect::Policy::none() })
        .danger_accept_invalid_certs(c.tls_config.insecure_skip_verify);
    if !c.enable_http2 {
        b = b.http1_only();
    }
    b = match &c.proxy_url {
        Some(p) => b.proxy(reqwest::Proxy::all(p).map_err(|e| format!("proxy_url {p:?}: {e}"))?),
        None => b.no_proxy(),
    };
    let t = &c.tls_config;
    if let (Some(name), false) = (&t.server_name, t.insecure_skip_verify) {
        let tls = super::tls::client_config(t, name, c.enable_http2)?;
        return b.use_preconfigured_tls(tls).build().map_err(|e| format!("building the HTTP client: {e}"));
    }
    if let Some(ca) = &t.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("unable to load specified CA cert {ca}: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("unable to use specified CA cert {ca}: {e}"))? {
            b = b.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
        let mut pem = std::fs::read(cert).map_err(|e| format!("unable to read specified client cert {cert}: {e}"))?;
        pem.extend(std::fs::read(key).map_err(|e| format!("unable to read specified client key {key}: {e}"))?);
        b = b.identity(reqwest::Identity::from_pem(&pem).map_err(|e| format!("unable to use client cert {cert} and key {key}: {e}"))?);
    }
    if let Some(v) = t.min_version {
        b = b.min_tls_version(tls_version(v));
    }
    if let Some(v) = t.max_version {
        b = b.max_tls_version(tls_version(v));
    }
    b.build().map_err(|e| format!("building the HTTP client: {e}"))
}

fn tls_version(v: TlsVersion) -> reqwest::tls::Version {
    match v {
        TlsVersion::Tls10 => reqwest::tls::Version::TLS_1_0,
        TlsVersion::Tls11 => reqwest::tls::Version::TLS_1_1,
        TlsVersion::Tls12 => reqwest::tls::Version::TLS_1_2,
        TlsVersion::Tls13 => reqwest::tls::Version::TLS_1_3,
    }
}

/// Adds the credentials to a request.
pub fn authorize(req: reqwest::RequestBuilder, creds: &Credentials) -> Result<reqwest::RequestBuilder, String> {
    Ok(match creds.header()? {
        Some(v) => req.header(AUTHORIZATION, v),
        None => req,
    })
}

/// Standard base64 with padding (for basic auth).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn credentials_files_are_read_per_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, "one\n").expect("write");
        let c = Credentials::Header { kind: "Bearer".into(), credentials: None, credentials_file: Some(f.display().to_string()) };
        assert_eq!(c.header().expect("header"), Some(HeaderValue::from_static("Bearer one")));
        std::fs::write(&f, "two").expect("write");
        assert_eq!(c.header().expect("header"), Some(HeaderValue::from_static("Bearer two")));
        let b = Credentials::Basic { username: "u".into(), password: Some("p".into()), password_file: None };
        assert_eq!(b.header().expect("header"), Some(HeaderValue::from_static("Basic dTpw")));
    }
}
