// ServiceMonitors for Kubernetes components: kube-state-metrics,
// node-exporter and CoreDNS (plain HTTP through a Service), and, as in
// kube-prometheus, the API server, the kubelet (with cAdvisor), the
// scheduler and the controller manager. Those authorize `/metrics` by the
// scraper's identity, so their endpoints present the server pod's own
// service-account token (`bearerTokenFile`); the operator then binds the
// server's discovery ClusterRole cluster-wide, which grants `nodes/metrics`
// and the URLs `/metrics` and `/metrics/cadvisor`.
//
// Each monitor takes `name`, `namespace`, `selector`, `interval`, and either
// `port` with `endpoint` (extra fields of its one endpoint) or `endpoints`
// (a list of endpoint objects, each given `interval` unless it sets one);
// `jobLabel` names the Service label that becomes `job`.
local meta = import 'meta.libsonnet';

function(values) {
  local monitor(key) =
    local m = values.kubernetesMonitors[key];
    local endpoints =
      if std.objectHas(m, 'endpoints')
      then [{ interval: m.interval } + e for e in m.endpoints]
      else [{ port: m.port, interval: m.interval } + std.get(m, 'endpoint', {})];
    {
      apiVersion: 'monitoring.hearth.dev/v1alpha1',
      kind: 'ServiceMonitor',
      metadata: meta.metadata(m.name, values.namespace, meta.componentLabels(values, m.name, 'kubernetes-monitor')),
      spec: {
        jobLabel: std.get(m, 'jobLabel', 'app.kubernetes.io/name'),
        namespaceSelector: { matchNames: [m.namespace] },
        selector: { matchLabels: m.selector },
        endpoints: endpoints,
      },
    },
  [key]: monitor(key)
  for key in std.objectFields(values.kubernetesMonitors)
  if values.kubernetesMonitors[key] != null
}
