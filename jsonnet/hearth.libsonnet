// Hearth's Jsonnet library, in the spirit of kube-prometheus.
//
//   local hearth = (import 'hearth.libsonnet') + { values+:: { namespace: 'observability' } };
//   hearth.manifests
//
// `values` holds every setting (override with `values+::`); the other
// fields are the components, each an object of Kubernetes objects;
// `manifests` lays out the default install as files for `hearth render -m`.
{
  values:: {
    namespace: 'monitoring',
    // The release; the image tag follows it.
    version: '0.1.0',
    image: 'ghcr.io/hearth-dev/hearth:' + self.version,
    imagePullPolicy: 'IfNotPresent',

    operator: {
      name: 'hearth-operator',
      replicas: 2,
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      nodeSelector: {},
      tolerations: [],
    },

    // The Prometheus object (the `hearth server` pods).
    prometheus: {
      name: 'hearth',
      replicas: 1,
      shards: 1,
      retention: '15d',
      retentionSize: null,
      scrapeInterval: '30s',
      evaluationInterval: null,
      externalLabels: {},
      // {} selects everything, in every namespace.
      serviceMonitorSelector: {},
      serviceMonitorNamespaceSelector: {},
      ruleSelector: {},
      ruleNamespaceSelector: {},
      resources: { requests: { cpu: '100m', memory: '512Mi' } },
      // Alertmanager Services: [{ namespace, name, port }] (plus optional `extra` fields of the CRD's entry).
      alertmanagers: [],
      // Alertmanagers by URL, for those without a Service to discover (outside the
      // cluster, behind an Ingress): ['https://am.example.com/alertmanager', ...],
      // or objects with `url` and the CRD entry's other fields ({ url, timeout, tlsConfig, basicAuth, authorization }).
      alertmanagerUrls: [],
      // remoteWrite entries as the CRD takes them: [{ url, basicAuth, queueConfig, ... }].
      remoteWrite: [],
      // A PersistentVolumeClaim template ({ spec: ... }); null keeps data in an emptyDir.
      volumeClaimTemplate: null,
    },

    // ServiceMonitors for Kubernetes components (component `kubernetesMonitors`); null leaves one out.
    kubernetesMonitors: {
      kubeStateMetrics: {
        name: 'kube-state-metrics',
        namespace: 'kube-system',
        selector: { 'app.kubernetes.io/name': 'kube-state-metrics' },
        port: 'http-metrics',
        interval: '30s',
        endpoint: { honorLabels: true },
      },
      nodeExporter: {
        name: 'node-exporter',
        namespace: 'kube-system',
        selector: { 'app.kubernetes.io/name': 'node-exporter' },
        port: 'metrics',
        interval: '30s',
        // The node's name as `instance`, as the node-exporter mixin expects.
        endpoint: { relabelings: [{ action: 'replace', sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'instance' }] },
      },
      coreDNS: {
        name: 'coredns',
        namespace: 'kube-system',
        selector: { 'k8s-app': 'kube-dns' },
        port: 'metrics',
        interval: '30s',
      },
      // The API server through the Service `kubernetes` in `default`, verified
      // against the cluster CA with the server pod's own token, job `apiserver`.
      apiServer: {
        name: 'kube-apiserver',
        namespace: 'default',
        selector: { component: 'apiserver', provider: 'kubernetes' },
        jobLabel: 'component',
        port: 'https',
        interval: '30s',
        endpoint: {
          scheme: 'https',
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          tlsConfig: { caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt', serverName: 'kubernetes' },
        },
      },
      // The kubelet and its cAdvisor. Kubernetes has no kubelet Service:
      // prometheus-operator creates one, Hearth does not. Provide a Service
      // (or EndpointSlices) labelled app.kubernetes.io/name: kubelet in
      // kube-system with the port https-metrics (10250), or set this to null.
      // Kubelet certificates are commonly self-signed: insecureSkipVerify.
      kubelet: {
        name: 'kubelet',
        namespace: 'kube-system',
        selector: { 'app.kubernetes.io/name': 'kubelet' },
        interval: '30s',
        local endpoint(path) = {
          port: 'https-metrics',
          path: path,
          scheme: 'https',
          honorLabels: true,
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          tlsConfig: { insecureSkipVerify: true },
          relabelings: [{ action: 'replace', sourceLabels: ['__metrics_path__'], targetLabel: 'metrics_path' }],
        },
        endpoints: [endpoint('/metrics'), endpoint('/metrics/cadvisor') + { honorTimestamps: false }],
      },
      // The scheduler and the controller manager need a Service each in
      // kube-system (labelled as below, port https-metrics: 10259 and 10257),
      // which most distributions do not create; null leaves them out.
      kubeScheduler: {
        name: 'kube-scheduler',
        namespace: 'kube-system',
        selector: { 'app.kubernetes.io/name': 'kube-scheduler' },
        port: 'https-metrics',
        interval: '30s',
        endpoint: {
          scheme: 'https',
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          tlsConfig: { insecureSkipVerify: true },
        },
      },
      kubeControllerManager: {
        name: 'kube-controller-manager',
        namespace: 'kube-system',
        selector: { 'app.kubernetes.io/name': 'kube-controller-manager' },
        port: 'https-metrics',
        interval: '30s',
        endpoint: {
          scheme: 'https',
          bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          tlsConfig: { insecureSkipVerify: true },
        },
      },
    },

    // The alert mixin (component `alertRule`).
    alerts: {
      name: 'hearth-alerts',
      // Label matchers added to every selector, e.g. 'namespace="monitoring"'.
      selector: '',
      targetsDownPercent: 10,
      remoteWriteBehindSeconds: 120,
    },
  },

  namespace: {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: $.values.namespace, labels: (import 'lib/meta.libsonnet').commonLabels($.values) },
  },
  crds: import 'lib/crds.libsonnet',
  operator: (import 'lib/operator.libsonnet')($.values),
  prometheus: (import 'lib/prometheus.libsonnet')($.values),
  kubernetesMonitors: (import 'lib/kubernetes-monitors.libsonnet')($.values),
  alertRule: (import 'lib/alerts.libsonnet')($.values),
  dashboards: (import 'lib/dashboards.libsonnet')($.values),

  // The default install as files: setup/ (Namespace, CRDs), the operator,
  // the Prometheus object and the dashboards.
  manifests:: {
    '0namespace': { namespace: $.namespace },
  } + {
    [name + '-customResourceDefinition']: $.crds[name]
    for name in std.objectFields($.crds)
  } + {
    'hearth-operator': $.operator,
    'hearth-prometheus': $.prometheus,
  } + {
    ['hearth-dashboard-' + name + '-configMap']: $.dashboards[name]
    for name in std.objectFields($.dashboards)
  },
}
