//! Credentials and certificates that ServiceMonitors and Prometheus objects
//! take from Secrets.
//!
//! Each referenced Secret key becomes a file of the config Secret, named
//! `secret_<namespace>_<name>_<key>`; the server writes it beside its
//! configuration and the generated configuration names it (`ca_file`,
//! `password_file`, `credentials_file`...). So values never appear in the
//! configuration text, the server re-reads credentials at each request, and
//! the config hash covers them: a rotated Secret reaches the pods like any
//! configuration change, with the same confirmation. Basic-auth user names
//! are written inline (Prometheus 2.x has no `username_file`), as
//! prometheus-operator does.
//!
//! A ServiceMonitor reads Secrets of its own namespace; a Prometheus object
//! reads Secrets of its namespace.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Secret, SecretKeySelector};
use serde_json::{Map, Value, json};

use super::crd::common::{Authorization, BasicAuth, TlsConfig};
use super::crd::{Prometheus, ServiceMonitor};

/// `(namespace, name)` of a Secret.
pub type SecretName = (String, String);

/// A Secret's data: key → value.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// Prefix of the config Secret's keys that hold Secret values.
pub const FILE_PREFIX: &str = "secret_";

/// One use of a Secret: a key (or, for `web.basicAuthUsersSecret`, all
/// keys), and the field that names it, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretUse {
    pub what: String,
    pub namespace: String,
    pub name: String,
    /// `None`: the whole Secret.
    pub key: Option<String>,
    /// A missing optional Secret or key reads as empty.
    pub optional: bool,
}

impl SecretUse {
    fn of(what: String, namespace: &str, sel: &SecretKeySelector) -> SecretUse {
        SecretUse {
            what,
            namespace: namespace.into(),
            name: sel.name.clone(),
            key: Some(sel.key.clone()),
            optional: sel.optional == Some(true),
        }
    }
}

/// The Secrets a ServiceMonitor's endpoints use.
pub fn service_monitor_uses(sm: &ServiceMonitor) -> Vec<SecretUse> {
    let ns = sm.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    for (i, ep) in sm.spec.endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        client_uses(&mut out, &at, ns, ep.tls_config.as_ref(), ep.basic_auth.as_ref(), ep.authorization.as_ref());
        if let Some(s) = &ep.bearer_token_secret {
            out.push(SecretUse::of(format!("{at}.bearerTokenSecret"), ns, s));
        }
    }
    out
}

/// The Secrets a Prometheus object's own fields use (remote write,
/// Alertmanagers, the server's web TLS and users).
pub fn prometheus_uses(p: &Prometheus) -> Vec<SecretUse> {
    let ns = p.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = Vec::new();
    for (i, rw) in p.spec.remote_write.iter().enumerate() {
        client_uses(&mut out, &format!("remoteWrite[{i}]"), ns, rw.tls_config.as_ref(), rw.basic_auth.as_ref(), rw.authorization.as_ref());
    }
    for (i, am) in p.spec.alerting.iter().flat_map(|a| &a.alertmanagers).enumerate() {
        let at = format!("alerting.alertmanagers[{i}]");
        client_uses(&mut out, &at, ns, am.tls_config.as_ref(), am.basic_auth.as_ref(), am.authorization.as_ref());
    }
    if let Some(web) = &p.spec.web {
        if let Some(t) = &web.tls_config {
            out.push(SecretUse::of("web.tlsConfig.cert".into(), ns, &t.cert));
            out.push(SecretUse::of("web.tlsConfig.keySecret".into(), ns, &t.key_secret));
            if let Some(ca) = &t.client_ca {
                out.push(SecretUse::of("web.tlsConfig.clientCA".into(), ns, ca));
            }
        }
        if let Some(name) = &web.basic_auth_users_secret {
            out.push(SecretUse {
                what: "web.basicAuthUsersSecret".into(),
                namespace: ns.into(),
                name: name.clone(),
                key: None,
                optional: false,
            });
        }
    }
    out
}

fn client_uses(
    out: &mut Vec<SecretUse>,
    at: &str,
    ns: &str,
    tls: Option<&TlsConfig>,
    basic: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
) {
    if let Some(t) = tls {
        for (field, sel) in [("ca", &t.ca), ("cert", &t.cert), ("keySecret", &t.key_secret)] {
            if let Some(s) = sel {
                out.push(SecretUse::of(format!("{at}.tlsConfig.{field}"), ns, s));
            }
        }
    }
    if let Some(b) = basic {
        out.push(SecretUse::of(format!("{at}.basicAuth.username"), ns, &b.username));
        out.push(SecretUse::of(format!("{at}.basicAuth.password"), ns, &b.password));
    }
    if let Some(a) = authorization {
        out.push(SecretUse::of(format!("{at}.authorization.credentials"), ns, &a.credentials));
    }
}

/// The contents of the Secrets a generation may read, by namespace and
/// name. A Secret not recorded (or recorded as `None`) does not exist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretValues {
    secrets: BTreeMap<SecretName, Option<SecretData>>,
}

impl SecretValues {
    /// Records what `namespace/name` holds (`None`: it does not exist).
    pub fn insert(&mut self, namespace: &str, name: &str, data: Option<SecretData>) {
        self.secrets.insert((namespace.into(), name.into()), data);
    }

    /// Records a Secret object.
    pub fn insert_secret(&mut self, s: &Secret) {
        let data = s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone()));
        // `stringData` only exists in manifests (the API server folds it into `data`).
        let strings = s.string_data.iter().flatten().map(|(k, v)| (k.clone(), v.clone().into_bytes()));
        self.insert(
            s.metadata.namespace.as_deref().unwrap_or("default"),
            s.metadata.name.as_deref().unwrap_or(""),
            Some(data.chain(strings).collect()),
        );
    }

    /// The whole Secret a use names.
    fn secret(&self, u: &SecretUse) -> Result<Option<&SecretData>, String> {
        match self.secrets.get(&(u.namespace.clone(), u.name.clone())) {
            Some(Some(data)) => Ok(Some(data)),
            _ if u.optional => Ok(None),
            _ => Err(format!("{}: Secret {}/{} not found", u.what, u.namespace, u.name)),
        }
    }

    /// The value of a key use; an optional missing value is empty.
    pub fn value(&self, u: &SecretUse) -> Result<&[u8], String> {
        let key = u.key.as_deref().unwrap_or("");
        match self.secret(u)?.and_then(|d| d.get(key)) {
            Some(v) => Ok(v),
            None if u.optional => Ok(&[]),
            None => Err(format!("{}: Secret {}/{} has no key {key:?}", u.what, u.namespace, u.name)),
        }
    }

    /// A fingerprint of the values `uses` read, so that memoized results
    /// are redone when a Secret they read changes.
    pub fn fingerprint(&self, uses: &[SecretUse]) -> u64 {
        let mut h = Vec::new();
        for u in uses {
            let v = match &u.key {
                Some(_) => self.value(u).map(<[u8]>::to_vec),
                None => self.secret(u).map(|s| format!("{s:?}").into_bytes()),
            };
            match v {
                Ok(v) => {
                    h.extend_from_slice(&(v.len() as u64).to_le_bytes());
                    h.extend_from_slice(&v);
                }
                Err(e) => h.extend_from_slice(e.as_bytes()),
            }
        }
        xxhash_rust::xxh3::xxh3_64(&h)
    }
}

/// The name, among the config Secret's keys, of a Secret key's file.
pub fn file_name(namespace: &str, name: &str, key: &str) -> String {
    format!("{FILE_PREFIX}{namespace}_{name}_{key}")
}

/// Turns Secret references into configuration: files for the config
/// Secret, paths and inline values for the configuration text.
pub struct Assets<'a> {
    values: &'a SecretValues,
    namespace: &'a str,
    /// Config Secret key → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl<'a> Assets<'a> {
    /// Resolves references made from `namespace`.
    pub fn new(values: &'a SecretValues, namespace: &'a str) -> Assets<'a> {
        Assets { values, namespace, files: BTreeMap::new() }
    }

    fn use_of(&self, what: &str, sel: &SecretKeySelector) -> SecretUse {
        SecretUse::of(what.into(), self.namespace, sel)
    }

    /// The path of the file that will hold `sel`'s value: relative, so the
    /// server takes it from its configuration file's directory wherever
    /// the Secret is mounted.
    pub fn file(&mut self, what: &str, sel: &SecretKeySelector) -> Result<String, String> {
        let u = self.use_of(what, sel);
        let value = self.values.value(&u)?.to_vec();
        let name = file_name(self.namespace, &sel.name, &sel.key);
        self.files.insert(name.clone(), value);
        Ok(name)
    }

    /// `sel`'s value as text, for fields that must be inline.
    pub fn text(&self, what: &str, sel: &SecretKeySelector) -> Result<String, String> {
        let u = self.use_of(what, sel);
        let v = self.values.value(&u)?;
        String::from_utf8(v.to_vec())
            .map(|s| s.trim().to_string())
            .map_err(|_| format!("{what}: Secret {}/{} key {:?} is not UTF-8", u.namespace, u.name, sel.key))
    }

    /// Every key of the Secret `name` as text.
    pub fn all_text(&self, what: &str, name: &str) -> Result<BTreeMap<String, String>, String> {
        let u = SecretUse { what: what.into(), namespace: self.namespace.into(), name: name.into(), key: None, optional: false };
        let data = self.values.secret(&u)?.cloned().unwrap_or_default();
        data.into_iter()
            .map(|(k, v)| match String::from_utf8(v) {
                Ok(s) => Ok((k, s.trim().to_string())),
                Err(_) => Err(format!("{what}: Secret {}/{name} key {k:?} is not UTF-8", self.namespace)),
            })
            .collect()
    }

    /// Adds `tls_config`, `basic_auth` and `authorization` to a generated
    /// section (scrape job, remote write, Alertmanager). `at` names the
    /// section in errors. `bearer_file` is a token file in the server pod
    /// (a ServiceMonitor's `bearerTokenFile`), used as it is.
    pub fn http_client(
        &mut self,
        o: &mut Map<String, Value>,
        at: &str,
        tls: Option<&TlsConfig>,
        credentials: Credentials<'_>,
    ) -> Result<(), String> {
        let Credentials { basic, authorization, bearer, bearer_file } = credentials;
        // The CRDs say so too (CEL), but objects that never met the API
        // server (preview) reach here unchecked; without this a bearer
        // token would silently replace an `authorization`.
        let given: Vec<&str> = [
            (basic.is_some(), "basicAuth"),
            (authorization.is_some(), "authorization"),
            (bearer.is_some(), "bearerTokenSecret"),
            (bearer_file.is_some(), "bearerTokenFile"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if given.len() > 1 {
            return Err(format!(
                "{at}: at most one of basicAuth, authorization, bearerTokenSecret and bearerTokenFile may be set, not {}",
                given.join(" and ")
            ));
        }
        if let Some(t) = tls {
            if t.ca.is_some() && t.ca_file.is_some() {
                return Err(format!("{at}: at most one of tlsConfig.ca and tlsConfig.caFile may be set"));
            }
            let mut c = Map::new();
            if let Some(f) = &t.ca_file {
                c.insert("ca_file".into(), json!(checked_pod_path(&format!("{at}.tlsConfig.caFile"), f)?));
            }
            for (field, key, sel) in [("ca", "ca_file", &t.ca), ("cert", "cert_file", &t.cert), ("keySecret", "key_file", &t.key_secret)] {
                if let Some(s) = sel {
                    c.insert(key.into(), json!(self.file(&format!("{at}.tlsConfig.{field}"), s)?));
                }
            }
            if let Some(n) = &t.server_name {
                c.insert("server_name".into(), json!(n));
            }
            if let Some(v) = t.insecure_skip_verify {
                c.insert("insecure_skip_verify".into(), json!(v));
            }
            o.insert("tls_config".into(), Value::Object(c));
        }
        if let Some(b) = basic {
            let username = self.text(&format!("{at}.basicAuth.username"), &b.username)?;
            let password = self.file(&format!("{at}.basicAuth.password"), &b.password)?;
            o.insert("basic_auth".into(), json!({"username": username, "password_file": password}));
        }
        if let Some(a) = authorization {
            let file = self.file(&format!("{at}.authorization.credentials"), &a.credentials)?;
            let mut c = json!({"credentials_file": file});
            if let Some(t) = &a.type_ {
                c["type"] = json!(t);
            }
            o.insert("authorization".into(), c);
        }
        if let Some(s) = bearer {
            let file = self.file(&format!("{at}.bearerTokenSecret"), s)?;
            o.insert("authorization".into(), json!({"credentials_file": file}));
        }
        if let Some(f) = bearer_file {
            let file = checked_pod_path(&format!("{at}.bearerTokenFile"), f)?;
            o.insert("authorization".into(), json!({"type": "Bearer", "credentials_file": file}));
        }
        Ok(())
    }
}

/// The credential fields of a section, at most one of them set: grouped
/// so that [`Assets::http_client`] can check that in one place.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    pub basic: Option<&'a BasicAuth>,
    pub authorization: Option<&'a Authorization>,
    /// A ServiceMonitor's `bearerTokenSecret`.
    pub bearer: Option<&'a SecretKeySelector>,
    /// A ServiceMonitor's `bearerTokenFile`: a path in the server pod.
    pub bearer_file: Option<&'a str>,
}

/// A file path in the server pod, given by a ServiceMonitor. It must be
/// absolute: a relative one would be resolved against the configuration's
/// directory, i.e. name a file of the operator's config Secret.
fn checked_pod_path<'a>(what: &str, path: &'a str) -> Result<&'a str, String> {
    if path.starts_with('/') { Ok(path) } else { Err(format!("{what}: {path:?} is not an absolute path")) }
}

/// The Secrets (`namespace`, `name`) behind `uses`.
pub fn secret_names<'a>(uses: impl IntoIterator<Item = &'a SecretUse>) -> BTreeSet<SecretName> {
    uses.into_iter().map(|u| (u.namespace.clone(), u.name.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector { name: name.into(), key: key.into(), optional: None }
    }

    fn values() -> SecretValues {
        let mut v = SecretValues::default();
        v.insert("apps", "creds", Some(BTreeMap::from([("user".into(), b"alice\n".to_vec()), ("pw".into(), b"s3cret".to_vec())])));
        v.insert("apps", "gone", None);
        v
    }

    #[test]
    fn credentials_become_files_and_the_user_name_is_inline() {
        let v = values();
        let mut a = Assets::new(&v, "apps");
        let mut o = Map::new();
        let basic = BasicAuth { username: sel("creds", "user"), password: sel("creds", "pw") };
        a.http_client(&mut o, "endpoints[0]", None, Credentials { basic: Some(&basic), ..Credentials::default() }).expect("resolved");
        assert_eq!(Value::Object(o), json!({"basic_auth": {"username": "alice", "password_file": "secret_apps_creds_pw"}}));
        assert_eq!(a.files, BTreeMap::from([("secret_apps_creds_pw".to_string(), b"s3cret".to_vec())]));
    }

    #[test]
    fn at_most_one_credential_kind() {
        let v = values();
        let mut a = Assets::new(&v, "apps");
        let basic = BasicAuth { username: sel("creds", "user"), password: sel("creds", "pw") };
        let authorization = Authorization { type_: None, credentials: sel("creds", "pw") };
        let token = sel("creds", "pw");
        let err = a.http_client(
            &mut Map::new(),
            "alerting.alertmanagers[0]",
            None,
            Credentials { basic: Some(&basic), authorization: Some(&authorization), ..Credentials::default() },
        );
        assert_eq!(
            err,
            Err("alerting.alertmanagers[0]: at most one of basicAuth, authorization, bearerTokenSecret and bearerTokenFile may be set, not basicAuth and authorization".into())
        );
        let err = a.http_client(
            &mut Map::new(),
            "endpoints[0]",
            None,
            Credentials { authorization: Some(&authorization), bearer: Some(&token), ..Credentials::default() },
        );
        assert!(err.is_err_and(|e| e.contains("not authorization and bearerTokenSecret")));
        // The pod's own token file is one more kind.
        let file = Some(TOKEN);
        for (b, au, t, other) in [
            (Some(&basic), None, None, "basicAuth"),
            (None, Some(&authorization), None, "authorization"),
            (None, None, Some(&token), "bearerTokenSecret"),
        ] {
            let err = a.http_client(
                &mut Map::new(),
                "endpoints[2]",
                None,
                Credentials { basic: b, authorization: au, bearer: t, bearer_file: file },
            );
            assert_eq!(
                err,
                Err(format!(
                    "endpoints[2]: at most one of basicAuth, authorization, bearerTokenSecret and bearerTokenFile may be set, not {other} and bearerTokenFile"
                ))
            );
        }
        for (b, au, t, f) in [
            (Some(&basic), None, None, None),
            (None, Some(&authorization), None, None),
            (None, None, Some(&token), None),
            (None, None, None, file),
        ] {
            assert!(
                a.http_client(&mut Map::new(), "x", None, Credentials { basic: b, authorization: au, bearer: t, bearer_file: f }).is_ok()
            );
        }
    }

    const TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    const CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

    /// The pod's token and CA files are named as they are, with no Secret
    /// read and no file added to the config Secret.
    #[test]
    fn pod_files_are_used_in_place() {
        let v = values();
        let mut a = Assets::new(&v, "apps");
        let mut o = Map::new();
        let tls = TlsConfig { ca_file: Some(CA.into()), server_name: Some("kubernetes".into()), ..TlsConfig::default() };
        a.http_client(&mut o, "endpoints[0]", Some(&tls), Credentials { bearer_file: Some(TOKEN), ..Credentials::default() })
            .expect("generated");
        assert_eq!(
            Value::Object(o),
            json!({
                "tls_config": {"ca_file": CA, "server_name": "kubernetes"},
                "authorization": {"type": "Bearer", "credentials_file": TOKEN},
            })
        );
        assert!(a.files.is_empty());
    }

    /// `caFile` excludes the `ca` Secret, and a relative path (which the
    /// server would resolve inside its config directory) is refused.
    #[test]
    fn pod_files_are_checked() {
        let v = values();
        let mut a = Assets::new(&v, "apps");
        let both = TlsConfig { ca: Some(sel("creds", "pw")), ca_file: Some(CA.into()), ..TlsConfig::default() };
        assert_eq!(
            a.http_client(&mut Map::new(), "endpoints[0]", Some(&both), Credentials::default()),
            Err("endpoints[0]: at most one of tlsConfig.ca and tlsConfig.caFile may be set".into())
        );
        let relative = TlsConfig { ca_file: Some("ca.crt".into()), ..TlsConfig::default() };
        assert_eq!(
            a.http_client(&mut Map::new(), "endpoints[1]", Some(&relative), Credentials::default()),
            Err("endpoints[1].tlsConfig.caFile: \"ca.crt\" is not an absolute path".into())
        );
        assert_eq!(
            a.http_client(&mut Map::new(), "endpoints[2]", None, Credentials { bearer_file: Some("token"), ..Credentials::default() }),
            Err("endpoints[2].bearerTokenFile: \"token\" is not an absolute path".into())
        );
    }

    #[test]
    fn missing_secrets_and_keys_are_named_unless_optional() {
        let v = values();
        let mut a = Assets::new(&v, "apps");
        assert_eq!(
            a.file("endpoints[1].bearerTokenSecret", &sel("gone", "t")),
            Err("endpoints[1].bearerTokenSecret: Secret apps/gone not found".into())
        );
        assert_eq!(
            a.file("endpoints[1].bearerTokenSecret", &sel("creds", "token")),
            Err("endpoints[1].bearerTokenSecret: Secret apps/creds has no key \"token\"".into())
        );
        let optional = SecretKeySelector { optional: Some(true), ..sel("gone", "t") };
        assert_eq!(a.file("x", &optional), Ok("secret_apps_gone_t".into()));
        assert_eq!(a.files.get("secret_apps_gone_t"), Some(&Vec::new()));
    }

    #[test]
    fn fingerprint_follows_the_values_read() {
        let mut v = values();
        let uses = vec![SecretUse::of("a".into(), "apps", &sel("creds", "pw"))];
        let before = v.fingerprint(&uses);
        v.insert("apps", "creds", Some(BTreeMap::from([("pw".into(), b"rotated".to_vec())])));
        assert_ne!(before, v.fingerprint(&uses));
        assert_eq!(v.fingerprint(&uses), v.fingerprint(&uses));
    }
}
