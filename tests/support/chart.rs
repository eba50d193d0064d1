//! Renders charts/hearth with a real helm (tests/support/install_helm.sh
//! installs it once, cached under target/peers/helm).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The helm binary, installed on first use.
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(root().join("tests/support/install_helm.sh")).output().expect("running install_helm.sh");
        assert!(out.status.success(), "install_helm.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("install_helm.sh prints the helm path").trim())
    })
}

/// Runs helm with `args`; stdout on success, stderr as the error.
pub fn run_helm(args: &[&str]) -> Result<String, String> {
    // HOME-less caches and configs: helm must not read the user's repositories.
    let home = root().join("target/peers/helm/home");
    let out = Command::new(helm())
        .args(args)
        .current_dir(root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(|e| format!("running helm: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// `helm template hearth charts/hearth --namespace monitoring` plus `extra`
/// (e.g. `--set`, `-f`): the rendered objects, or helm's error.
pub fn render(extra: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = vec!["template", "hearth", "charts/hearth", "--namespace", "monitoring"];
    args.extend_from_slice(extra);
    let text = run_helm(&args)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| format!("helm's output is not YAML: {e}\n{text}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}
