// Add a ServiceMonitor for an application in its own namespace. The
// default Prometheus object selects ServiceMonitors in every namespace.
local hearth = import 'hearth.libsonnet';

hearth.manifests + {
  'shop-frontend-serviceMonitor': {
    apiVersion: 'monitoring.hearth.dev/v1alpha1',
    kind: 'ServiceMonitor',
    metadata: { name: 'frontend', namespace: 'shop', labels: { team: 'shop' } },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': 'frontend' } },
      endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }],
    },
  },
}
