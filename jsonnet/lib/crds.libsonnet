// The CustomResourceDefinitions, read from crds/ (written by `hearth crds`),
// keyed by their names. `hearth render` writes them byte-identical to crds/.
{
  'prometheuses.monitoring.hearth.dev': std.parseYaml(importstr '../../crds/prometheuses.monitoring.hearth.dev.yaml'),
  'servicemonitors.monitoring.hearth.dev': std.parseYaml(importstr '../../crds/servicemonitors.monitoring.hearth.dev.yaml'),
  'alertrules.monitoring.hearth.dev': std.parseYaml(importstr '../../crds/alertrules.monitoring.hearth.dev.yaml'),
}
