{{/* Names the image's `certwatch serve` accepts; anything else fails rendering. */}}
{{- define "certwatch.knownServices" -}}
inventory prober classifier notifier hosting vod
{{- end }}

{{- define "certwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "certwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "certwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "certwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "certwatch.labels" -}}
helm.sh/chart: {{ include "certwatch.chart" . }}
{{ include "certwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: certwatch
{{- end }}

{{/* Per-service names and labels: call with (dict "root" $ "name" $name). */}}
{{- define "certwatch.componentName" -}}
{{- printf "%s-%s" (include "certwatch.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "certwatch.componentSelectorLabels" -}}
{{ include "certwatch.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "certwatch.componentLabels" -}}
{{ include "certwatch.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "certwatch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{- define "certwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "certwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart's own Secret holds whatever is given as a value rather than an existing Secret. */}}
{{- define "certwatch.databaseSecretName" -}}
{{- .Values.externalDatabase.existingSecret | default (include "certwatch.fullname" .) }}
{{- end }}

{{- define "certwatch.masterKeySecretName" -}}
{{- .Values.masterKey.existingSecret | default (include "certwatch.fullname" .) }}
{{- end }}

{{- define "certwatch.needsMasterKey" -}}
{{- range $name, $svc := .Values.services }}
{{- if and $svc.enabled $svc.masterKey }}true{{ end }}
{{- end }}
{{- end }}

{{/* Probe action: native gRPC health checks; TCP when the server speaks TLS (kubelet's gRPC
     probe is plaintext only). Call with (dict "root" $ "port" N). */}}
{{- define "certwatch.probeAction" -}}
{{- if .http }}
httpGet:
  path: /healthz
  port: {{ .port }}
{{- else if .root.Values.grpcTls.existingSecret }}
tcpSocket:
  port: {{ .port }}
{{- else }}
grpc:
  port: {{ .port }}
{{- end }}
{{- end }}

{{/* Fails rendering with a message naming the missing or wrong value. */}}
{{- define "certwatch.validate" -}}
{{- if not (or .Values.externalDatabase.url .Values.externalDatabase.existingSecret) }}
{{- fail "externalDatabase.url (postgresql://user:password@host:5432/certwatch) or externalDatabase.existingSecret is required: this chart does not deploy PostgreSQL" }}
{{- end }}
{{- if not (or .Values.externalNats.url .Values.externalNats.existingSecret) }}
{{- fail "externalNats.url (nats://host:4222, JetStream enabled) or externalNats.existingSecret is required: this chart does not deploy NATS" }}
{{- end }}
{{- if and (include "certwatch.needsMasterKey" .) (not (or .Values.masterKey.value .Values.masterKey.existingSecret)) }}
{{- fail "masterKey.value (32 random bytes, base64: `head -c32 /dev/urandom | base64`) or masterKey.existingSecret is required" }}
{{- end }}
{{- if and .Values.masterKey.value (ne (len (b64dec .Values.masterKey.value)) 32) }}
{{- fail "masterKey.value must be 32 bytes, base64-encoded" }}
{{- end }}
{{- $known := splitList " " (include "certwatch.knownServices" .) }}
{{- range $name, $svc := .Values.services }}
{{- if not (has $name $known) }}
{{- fail (printf "services.%s: unknown service; certwatch serves %s" $name (join ", " $known)) }}
{{- end }}
{{- if and $svc.enabled (not $svc.port) }}
{{- fail (printf "services.%s.port is required" $name) }}
{{- end }}
{{- end }}
{{- end }}
