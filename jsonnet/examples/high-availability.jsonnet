// Two replicas of each of three shards, on persistent volumes, with a
// replica label that Thanos or Mimir can deduplicate on.
local hearth = (import 'hearth.libsonnet') + {
  values+:: {
    operator+: { replicas: 3 },
    prometheus+: {
      replicas: 2,
      shards: 3,
      retention: '30d',
      retentionSize: '45GB',
      volumeClaimTemplate: {
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '50Gi' } },
        },
      },
    },
  },
};

hearth.manifests
