// Labels and metadata shared by every object of an install, so that
// `kubectl get -l app.kubernetes.io/part-of=hearth` finds all of them.
{
  // The labels every object carries: what it belongs to and which version made it.
  commonLabels(values):: {
    'app.kubernetes.io/part-of': 'hearth',
    'app.kubernetes.io/version': values.version,
  },

  // The common labels plus the component's name (also its selector label) and role.
  componentLabels(values, name, component):: self.commonLabels(values) {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': component,
  },

  // metadata of a namespaced object.
  metadata(name, namespace, labels):: {
    name: name,
    namespace: namespace,
    labels: labels,
  },
}
