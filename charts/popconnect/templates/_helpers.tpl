{{/*
The chart name, or nameOverride.
*/}}
{{- define "popconnect.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name that prefixes every object: fullnameOverride, or the release
name when it already contains the chart name, or "<release>-<chart>".
Truncated to leave room for the longest suffix.
*/}}
{{- define "popconnect.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 30 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 30 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 30 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
chart label value.
*/}}
{{- define "popconnect.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the manager pods. They must never change between
upgrades (a Deployment's selector is immutable).
*/}}
{{- define "popconnect.selectorLabels" -}}
app.kubernetes.io/name: {{ include "popconnect.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/*
Labels on every object the chart installs. managed-by is Helm, never
"popconnect": the operator's caches select the objects it writes itself by
app.kubernetes.io/managed-by=popconnect.
*/}}
{{- define "popconnect.labels" -}}
helm.sh/chart: {{ include "popconnect.chart" . }}
{{ include "popconnect.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: popconnect
{{- end }}

{{/*
The manager's ServiceAccount name.
*/}}
{{- define "popconnect.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "popconnect.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the digest wins, the tag
defaults to the chart's appVersion.
*/}}
{{- define "popconnect.image" -}}
{{- $img := index . 0 }}
{{- $root := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}
