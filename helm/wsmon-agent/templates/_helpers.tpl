{{- define "wsmon-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wsmon-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "wsmon-agent.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "wsmon-agent.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "wsmon-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsmon-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wsmon-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "wsmon-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "wsmon-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wsmon-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
A value kept in a Secret: `existingSecret` when given, else the chart's own Secret (secret.yaml), under the
key `existingSecretKey` in both cases. Called with (dict "root" $ "item" .Values.token).
*/}}
{{- define "wsmon-agent.secretKeyRef" -}}
name: {{ .item.existingSecret | default (include "wsmon-agent.fullname" .root) }}
key: {{ .item.existingSecretKey }}
{{- end }}

{{/* A volume from a Secret (preferred) or a ConfigMap, for (dict "name" "tls-ca" "source" .Values.tls.ca). */}}
{{- define "wsmon-agent.fileVolume" -}}
- name: {{ .name }}
  {{- if .source.secret }}
  secret:
    secretName: {{ .source.secret }}
  {{- else }}
  configMap:
    name: {{ .source.configMap }}
  {{- end }}
{{- end }}
