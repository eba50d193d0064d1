// Size the operator and the server for a larger cluster, and pin the
// operator to system nodes.
local hearth = (import 'hearth.libsonnet') + {
  values+:: {
    operator+: {
      resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      nodeSelector: { 'node-role.kubernetes.io/system': 'true' },
      tolerations: [{ key: 'node-role.kubernetes.io/system', operator: 'Exists', effect: 'NoSchedule' }],
    },
    prometheus+: {
      resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { memory: '12Gi' } },
    },
  },
};

hearth.manifests
