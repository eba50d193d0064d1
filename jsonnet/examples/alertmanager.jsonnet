// Send alerts to an Alertmanager Service, and install the alert mixin
// (alerts on Hearth's own metrics) so there is something to send.
local hearth = (import 'hearth.libsonnet') + {
  values+:: {
    prometheus+: {
      evaluationInterval: '30s',
      alertmanagers: [{ namespace: 'monitoring', name: 'alertmanager-main', port: 'web' }],
    },
    alerts+: { selector: 'namespace="monitoring"' },
  },
};

hearth.manifests + { 'hearth-alertRule': hearth.alertRule }
