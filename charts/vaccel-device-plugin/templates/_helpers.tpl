{{/* The labels every object carries; the selector uses the name only. */}}
{{- define "vaccel.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/part-of: vaccel
{{- end -}}

{{/* The daemon config: the values' config, plus the auto-deploy folder when asked for. */}}
{{- define "vaccel.config" -}}
{{ .Values.config | trimSuffix "\n" }}
{{- if .Values.k3s.autoDeploy }}
k3s:
  autoDeployDir: /var/lib/rancher/k3s/server/manifests
{{- end }}
{{- end -}}

{{- define "vaccel.k3s" -}}
{{- if or .Values.k3s.enabled .Values.k3s.autoDeploy }}true{{ end -}}
{{- end -}}
