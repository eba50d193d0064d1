// The default install: `hearth render jsonnet/main.jsonnet -m manifests`
// writes manifests/ (a test fails when it drifts).
(import 'hearth.libsonnet').manifests
