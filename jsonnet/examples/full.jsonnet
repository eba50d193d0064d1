// Everything the library has: the default install plus ServiceMonitors
// for kube-state-metrics, node-exporter, CoreDNS, the API server, the
// kubelet (and cAdvisor), the scheduler and the controller manager, and
// the alert mixin.
local hearth = import 'hearth.libsonnet';

hearth.manifests + {
  'hearth-kubernetes': hearth.kubernetesMonitors,
  'hearth-alertRule': hearth.alertRule,
}
