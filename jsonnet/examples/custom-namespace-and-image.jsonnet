// Install into another namespace, from a mirrored image.
local hearth = (import 'hearth.libsonnet') + {
  values+:: {
    namespace: 'observability',
    image: 'registry.example.com/mirror/hearth:' + self.version,
  },
};

hearth.manifests
