// The operator: its ServiceAccount and RBAC, the leader-election Role, the
// Deployment, the Service of its metrics and the ServiceMonitor scraping them.
local meta = import 'meta.libsonnet';

function(values) {
  local v = values.operator,
  local labels = meta.componentLabels(values, v.name, 'operator'),
  local selector = { 'app.kubernetes.io/name': v.name },
  local metadata = meta.metadata(v.name, values.namespace, labels),
  local metricsPort = 8080,

  serviceAccount: {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata,
  },

  // What the operator reads and writes. It applies the ClusterRole
  // hearth-server-discovery and binds it, so it holds those permissions itself
  // (including nodes/metrics and the URLs /metrics and /metrics/cadvisor, for
  // ServiceMonitors that scrape the kubelet and the API server with the
  // server's own token).
  clusterRole: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: v.name, labels: labels },
    local rule(groups, resources, verbs) = { apiGroups: groups, resources: resources, verbs: verbs },
    local all = ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
    local read = ['get', 'list', 'watch'],
    rules: [
      rule(['apiextensions.k8s.io'], ['customresourcedefinitions'], ['get', 'list', 'watch', 'create', 'patch', 'update']),
      rule(['monitoring.hearth.dev'], ['prometheuses', 'servicemonitors', 'alertrules'], ['get', 'list', 'watch', 'patch', 'update']),
      rule(['monitoring.hearth.dev'], ['prometheuses/status', 'servicemonitors/status', 'alertrules/status'], ['get', 'patch', 'update']),
      rule(['monitoring.hearth.dev'], ['prometheuses/finalizers'], ['update']),
      rule([''], ['secrets', 'services', 'serviceaccounts'], all),
      rule([''], ['pods', 'namespaces', 'endpoints', 'nodes'], read),
      rule([''], ['events'], ['create', 'patch']),
      rule(['events.k8s.io'], ['events'], ['create', 'patch']),
      rule(['apps'], ['statefulsets'], all),
      rule(['discovery.k8s.io'], ['endpointslices'], read),
      rule(['networking.k8s.io'], ['ingresses'], read),
      rule(['rbac.authorization.k8s.io'], ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'], all),
      rule([''], ['nodes/metrics'], ['get']),
      { nonResourceURLs: ['/metrics', '/metrics/cadvisor'], verbs: ['get'] },
    ],
  },

  clusterRoleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: v.name, labels: labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: v.name },
    subjects: [{ kind: 'ServiceAccount', name: v.name, namespace: values.namespace }],
  },

  // The Lease that lets only one replica reconcile.
  role: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta.metadata(v.name + '-leader-election', values.namespace, labels),
    rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] }],
  },

  roleBinding: {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta.metadata(v.name + '-leader-election', values.namespace, labels),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: v.name + '-leader-election' },
    subjects: [{ kind: 'ServiceAccount', name: v.name, namespace: values.namespace }],
  },

  deployment: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata,
    spec: {
      replicas: v.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: labels },
        spec: {
          serviceAccountName: v.name,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 },
          [if v.nodeSelector != {} then 'nodeSelector']: v.nodeSelector,
          [if v.tolerations != [] then 'tolerations']: v.tolerations,
          containers: [{
            name: 'operator',
            image: values.image,
            imagePullPolicy: values.imagePullPolicy,
            args: ['operator', 'run', '--metrics-address=0.0.0.0:%d' % metricsPort, '--leader-election=true'],
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              // The image of the `hearth server` pods the operator creates.
              { name: 'HEARTH_SERVER_IMAGE', value: values.image },
            ],
            ports: [{ name: 'metrics', containerPort: metricsPort }],
            readinessProbe: { httpGet: { path: '/healthz', port: 'metrics' } },
            livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' } },
            resources: v.resources,
            securityContext: {
              runAsNonRoot: true,
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'] },
              seccompProfile: { type: 'RuntimeDefault' },
            },
          }],
        },
      },
    },
  },

  service: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata,
    spec: {
      selector: selector,
      ports: [{ name: 'metrics', port: metricsPort, targetPort: 'metrics' }],
    },
  },

  serviceMonitor: {
    apiVersion: 'monitoring.hearth.dev/v1alpha1',
    kind: 'ServiceMonitor',
    metadata: metadata,
    spec: {
      selector: { matchLabels: selector },
      endpoints: [{ port: 'metrics' }],
    },
  },
}
