//! The Jsonnet library embedded in the binary, so that
//! `import 'hearth.libsonnet'` works with no vendor directory: every file
//! under `jsonnet/` the library needs, and the CRD files it reads. A test
//! fails when a library file is missing here.

/// The directory imports are searched in last (as if it were a `-J` directory).
pub const ROOT: &str = "jsonnet";

/// The embedded files, by their path in the repository.
pub const FILES: &[(&str, &str)] = &[
    ("jsonnet/hearth.libsonnet", include_str!("../../jsonnet/hearth.libsonnet")),
    ("jsonnet/lib/meta.libsonnet", include_str!("../../jsonnet/lib/meta.libsonnet")),
    ("jsonnet/lib/crds.libsonnet", include_str!("../../jsonnet/lib/crds.libsonnet")),
    ("jsonnet/lib/operator.libsonnet", include_str!("../../jsonnet/lib/operator.libsonnet")),
    ("jsonnet/lib/prometheus.libsonnet", include_str!("../../jsonnet/lib/prometheus.libsonnet")),
    ("jsonnet/lib/kubernetes-monitors.libsonnet", include_str!("../../jsonnet/lib/kubernetes-monitors.libsonnet")),
    ("jsonnet/lib/alerts.libsonnet", include_str!("../../jsonnet/lib/alerts.libsonnet")),
    ("jsonnet/lib/grafana.libsonnet", include_str!("../../jsonnet/lib/grafana.libsonnet")),
    ("jsonnet/lib/dashboards.libsonnet", include_str!("../../jsonnet/lib/dashboards.libsonnet")),
    ("crds/alertrules.monitoring.hearth.dev.yaml", include_str!("../../crds/alertrules.monitoring.hearth.dev.yaml")),
    ("crds/prometheuses.monitoring.hearth.dev.yaml", include_str!("../../crds/prometheuses.monitoring.hearth.dev.yaml")),
    ("crds/servicemonitors.monitoring.hearth.dev.yaml", include_str!("../../crds/servicemonitors.monitoring.hearth.dev.yaml")),
];

/// The text of an embedded file.
pub fn file(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Library files under `dir` (recursively), leaving out the entry point and the examples, which are not imported.
    fn library_files(repo: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.strip_prefix(repo).map_err(std::io::Error::other)?.to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                if name != "jsonnet/examples" {
                    library_files(repo, &path, out)?;
                }
            } else if name != "jsonnet/main.jsonnet" {
                out.push(name);
            }
        }
        Ok(())
    }

    #[test]
    fn every_library_file_and_crd_is_embedded() -> std::io::Result<()> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        library_files(repo, &repo.join(ROOT), &mut on_disk)?;
        for (file, _) in crate::operator::crd::definitions() {
            on_disk.push(format!("crds/{file}"));
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "src/render/library.rs must embed exactly these files");
        assert_eq!(file("jsonnet/lib/meta.libsonnet"), std::fs::read_to_string(repo.join("jsonnet/lib/meta.libsonnet")).ok().as_deref());
        assert_eq!(file("jsonnet/nothing.libsonnet"), None);
        Ok(())
    }
}
