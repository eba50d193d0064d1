// Send everything to Mimir with basic auth. The credentials stay in a
// Secret you create yourself (never in manifests):
//   kubectl -n monitoring create secret generic mimir-credentials \
//     --from-literal=username=tenant-1 --from-literal=password=...
local hearth = (import 'hearth.libsonnet') + {
  values+:: {
    prometheus+: {
      externalLabels: { cluster: 'prod-eu-1' },
      remoteWrite: [{
        name: 'mimir',
        url: 'https://mimir.example.com/api/v1/push',
        basicAuth: {
          username: { name: 'mimir-credentials', key: 'username' },
          password: { name: 'mimir-credentials', key: 'password' },
        },
        queueConfig: { maxSamplesPerSend: 2000, maxShards: 20 },
      }],
    },
  },
};

hearth.manifests
