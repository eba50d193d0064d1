// The Prometheus object the operator turns into `hearth server` StatefulSets.
local meta = import 'meta.libsonnet';

function(values) {
  local v = values.prometheus,
  apiVersion: 'monitoring.hearth.dev/v1alpha1',
  kind: 'Prometheus',
  metadata: meta.metadata(v.name, values.namespace, meta.componentLabels(values, 'hearth', 'prometheus')),
  spec: {
    replicas: v.replicas,
    shards: v.shards,
    retention: v.retention,
    [if v.retentionSize != null then 'retentionSize']: v.retentionSize,
    scrapeInterval: v.scrapeInterval,
    [if v.evaluationInterval != null then 'evaluationInterval']: v.evaluationInterval,
    [if v.externalLabels != {} then 'externalLabels']: v.externalLabels,
    serviceMonitorSelector: v.serviceMonitorSelector,
    serviceMonitorNamespaceSelector: v.serviceMonitorNamespaceSelector,
    ruleSelector: v.ruleSelector,
    ruleNamespaceSelector: v.ruleNamespaceSelector,
    resources: v.resources,
    [if v.alertmanagers != [] || v.alertmanagerUrls != [] then 'alerting']: {
      alertmanagers: [{ namespace: am.namespace, name: am.name, port: am.port } + std.get(am, 'extra', {}) for am in v.alertmanagers]
                     + [if std.isString(am) then { url: am } else am for am in v.alertmanagerUrls],
    },
    [if v.remoteWrite != [] then 'remoteWrite']: v.remoteWrite,
    // Without a claim template the operator gives the pods an emptyDir.
    [if v.volumeClaimTemplate != null then 'storage']: { volumeClaimTemplate: v.volumeClaimTemplate },
  },
}
