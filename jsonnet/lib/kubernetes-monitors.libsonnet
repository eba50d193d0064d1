// ServiceMonitors for Kubernetes components that serve plain HTTP metrics
// through a Service: kube-state-metrics, node-exporter and CoreDNS. (The
// kubelet, cAdvisor and the API server need the pod's service-account token
// as a bearer token file, which a ServiceMonitor cannot express yet.)
local meta = import 'meta.libsonnet';

function(values) {
  local monitor(key) =
    local m = values.kubernetesMonitors[key];
    {
      apiVersion: 'monitoring.hearth.dev/v1alpha1',
      kind: 'ServiceMonitor',
      metadata: meta.metadata(m.name, values.namespace, meta.componentLabels(values, m.name, 'kubernetes-monitor')),
      spec: {
        jobLabel: 'app.kubernetes.io/name',
        namespaceSelector: { matchNames: [m.namespace] },
        selector: { matchLabels: m.selector },
        endpoints: [{ port: m.port, interval: m.interval } + std.get(m, 'endpoint', {})],
      },
    },
  [key]: monitor(key)
  for key in std.objectFields(values.kubernetesMonitors)
  if values.kubernetesMonitors[key] != null
}
