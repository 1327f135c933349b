{{- define "wsmon-control-plane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wsmon-control-plane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "wsmon-control-plane.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "wsmon-control-plane.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "wsmon-control-plane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsmon-control-plane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wsmon-control-plane.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "wsmon-control-plane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "wsmon-control-plane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wsmon-control-plane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
A value kept in a Secret: `existingSecret` when given, else the chart's own Secret (secret.yaml), under the
key `existingSecretKey` in both cases. Called with (dict "root" $ "item" .Values.database).
*/}}
{{- define "wsmon-control-plane.secretKeyRef" -}}
name: {{ .item.existingSecret | default (include "wsmon-control-plane.fullname" .root) }}
key: {{ .item.existingSecretKey }}
{{- end }}
