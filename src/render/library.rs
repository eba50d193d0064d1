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
