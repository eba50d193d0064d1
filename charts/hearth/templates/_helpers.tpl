{{/*
Names are fixed (not derived from the release name): the operator's Lease
`hearth-operator` and the ClusterRole `hearth-server-discovery` it applies
are cluster-wide singletons, so one install per cluster is all that works,
and the Jsonnet manifests (manifests/) name the objects the same way.
*/}}

{{/* The image of the operator and of the server pods it creates. */}}
{{- define "hearth.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "hearth.commonLabels" -}}
app.kubernetes.io/part-of: hearth
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The operator's own labels; `name` alone is its pods' selector. */}}
{{- define "hearth.operatorLabels" -}}
{{ include "hearth.commonLabels" . }}
app.kubernetes.io/name: hearth-operator
app.kubernetes.io/component: operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "hearth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default "hearth-operator" }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end }}
