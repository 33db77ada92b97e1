{{/* Names the image's `certwatch serve` accepts; anything else fails rendering. */}}
{{- define "certwatch.knownServices" -}}
inventory prober classifier notifier hosting vod console
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

{{/* A service's ServiceAccount: its own (serviceAccount.create), else serviceAccount.name. */}}
{{- define "certwatch.componentServiceAccount" -}}
{{- if .root.Values.serviceAccount.create }}
{{- include "certwatch.componentName" . }}
{{- else }}
{{- default "default" .root.Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The chart's own Secret holds what is given as a value or generated (never an existing Secret's). */}}
{{- define "certwatch.secretName" -}}
{{- include "certwatch.fullname" . }}
{{- end }}

{{- define "certwatch.databaseSecretName" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret }}
{{- .Values.externalDatabase.existingSecret }}
{{- else }}
{{- include "certwatch.secretName" . }}
{{- end }}
{{- end }}

{{- define "certwatch.databaseSecretKey" -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalDatabase.existingSecret }}
{{- .Values.externalDatabase.existingSecretKey }}
{{- else }}database-url{{ end }}
{{- end }}

{{- define "certwatch.masterKeySecretName" -}}
{{- .Values.masterKey.existingSecret | default (include "certwatch.secretName" .) }}
{{- end }}

{{- define "certwatch.masterKeySecretKey" -}}
{{- if .Values.masterKey.existingSecret }}{{ .Values.masterKey.existingSecretKey }}{{ else }}master-key{{ end }}
{{- end }}

{{- define "certwatch.previousMasterKeysSecretName" -}}
{{- .Values.previousMasterKeys.existingSecret | default (include "certwatch.secretName" .) }}
{{- end }}

{{- define "certwatch.previousMasterKeysSecretKey" -}}
{{- if .Values.previousMasterKeys.existingSecret }}{{ .Values.previousMasterKeys.existingSecretKey }}{{ else }}previous-master-keys{{ end }}
{{- end }}

{{- define "certwatch.needsMasterKey" -}}
{{- range $name, $svc := .Values.services }}
{{- if and $svc.enabled $svc.masterKey }}true{{ end }}
{{- end }}
{{- end }}

{{- define "certwatch.postgresqlName" -}}
{{- printf "%s-postgresql" (include "certwatch.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "certwatch.natsName" -}}
{{- printf "%s-nats" (include "certwatch.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* CERTWATCH_NATS_URL: every bundled node (clients fail over among them), or the external URL. */}}
{{- define "certwatch.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- $name := include "certwatch.natsName" . }}
{{- $urls := list }}
{{- range $i := until (.Values.nats.replicas | int) }}
{{- $urls = append $urls (printf "nats://%s-%d.%s-headless:4222" $name $i $name) }}
{{- end }}
{{- join "," $urls }}
{{- else }}
{{- .Values.externalNats.url }}
{{- end }}
{{- end }}

{{- define "certwatch.streamReplicas" -}}
{{- if .Values.streamReplicas }}{{ .Values.streamReplicas }}{{ else if .Values.nats.enabled }}{{ min 3 (.Values.nats.replicas | int) }}{{ else }}1{{ end }}
{{- end }}

{{/* A value of the chart's Secret: the one already in the cluster (generated once), else `new`.
     Call with (dict "root" $ "key" K "new" V). */}}
{{- define "certwatch.kept" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "certwatch.secretName" .root) }}
{{- if and $existing (hasKey ($existing.data | default dict) .key) }}
{{- index $existing.data .key | b64dec }}
{{- else }}
{{- .new }}
{{- end }}
{{- end }}

{{/* The database and NATS environment of every certwatch container (services and Jobs). */}}
{{- define "certwatch.connectionEnv" -}}
- name: CERTWATCH_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "certwatch.databaseSecretName" . }}
      key: {{ include "certwatch.databaseSecretKey" . }}
{{- if and (not .Values.nats.enabled) .Values.externalNats.existingSecret }}
- name: CERTWATCH_NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalNats.existingSecret }}
      key: {{ .Values.externalNats.existingSecretKey }}
{{- end }}
{{- end }}

{{/* A Job's pod (migrations, bootstrap): call with (dict "root" $ "component" NAME "args" LIST
     "env" EXTRA-ENV-YAML). */}}
{{- define "certwatch.jobPod" -}}
{{- $ := .root }}
metadata:
  labels:
    {{- include "certwatch.selectorLabels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  restartPolicy: OnFailure
  automountServiceAccountToken: false
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "certwatch.image" $ | quote }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      args: {{ toJson .args }}
      securityContext:
        {{- toYaml $.Values.securityContext | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "certwatch.fullname" $ }}
      env:
        {{- include "certwatch.connectionEnv" $ | nindent 8 }}
        {{- with .env }}
        {{- . | nindent 8 }}
        {{- end }}
      resources:
        requests: {cpu: 50m, memory: 128Mi}
        limits: {memory: 256Mi}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $.Values.tmpSizeLimit }}
{{- end }}

{{/* Probe action: native gRPC health checks; HTTP GET healthPath for http services; TCP when
     the gRPC server speaks TLS (kubelet's gRPC probe is plaintext only).
     Call with (dict "root" $ "svc" $svc). */}}
{{- define "certwatch.probeAction" -}}
{{- if eq (.svc.protocol | default "grpc") "http" }}
httpGet:
  path: {{ .svc.healthPath | default "/healthz" }}
  port: main
{{- else if .root.Values.grpcTls.existingSecret }}
tcpSocket:
  port: main
{{- else }}
grpc:
  port: {{ .svc.port | int }}
{{- end }}
{{- end }}

{{/* Fails rendering with a message naming the missing or wrong value. */}}
{{- define "certwatch.validate" -}}
{{- if not (or .Values.postgresql.enabled .Values.externalDatabase.url .Values.externalDatabase.existingSecret) }}
{{- fail "externalDatabase.url (postgresql://user:password@host:5432/certwatch) or externalDatabase.existingSecret is required when postgresql.enabled is false" }}
{{- end }}
{{- if not (or .Values.nats.enabled .Values.externalNats.url .Values.externalNats.existingSecret) }}
{{- fail "externalNats.url (nats://host:4222, JetStream enabled) or externalNats.existingSecret is required when nats.enabled is false" }}
{{- end }}
{{- if and .Values.masterKey.value (ne (len (b64dec .Values.masterKey.value)) 32) }}
{{- fail "masterKey.value must be 32 bytes, base64-encoded (`head -c32 /dev/urandom | base64`)" }}
{{- end }}
{{- range $key := splitList "," .Values.previousMasterKeys.value }}
{{- if and $key (ne (len (b64dec $key)) 32) }}
{{- fail "previousMasterKeys.value must be comma-separated keys, each 32 bytes, base64-encoded" }}
{{- end }}
{{- end }}
{{- if and (eq .Values.acme.dnsProvider "rfc2136") (not .Values.acme.rfc2136Server) }}
{{- fail "acme.rfc2136Server (HOST:PORT of the primary that takes updates) is required with acme.dnsProvider rfc2136" }}
{{- end }}
{{- $known := splitList " " (include "certwatch.knownServices" .) }}
{{- range $name, $svc := .Values.services }}
{{- if not (has $name $known) }}
{{- fail (printf "services.%s: unknown service; certwatch serves %s" $name (join ", " $known)) }}
{{- end }}
{{- if and $svc.enabled (not $svc.port) }}
{{- fail (printf "services.%s.port is required" $name) }}
{{- end }}
{{- range $svc.calls }}
{{- if not (has . $known) }}
{{- fail (printf "services.%s.calls: unknown service %q" $name .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Egress every certwatch pod needs: DNS and PostgreSQL. */}}
{{- define "certwatch.egressBase" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- if .Values.postgresql.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "certwatch.componentSelectorLabels" (dict "root" . "name" "postgresql") | nindent 10 }}
  ports:
    - {port: 5432, protocol: TCP}
{{- else }}
- {{- with .Values.externalDatabase.cidr }}
  to:
    - ipBlock: {cidr: {{ . }}}
  {{- end }}
  ports:
    - {port: {{ .Values.externalDatabase.port | int }}, protocol: TCP}
{{- end }}
{{- end }}

{{- define "certwatch.egressNats" -}}
{{- if .Values.nats.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "certwatch.componentSelectorLabels" (dict "root" . "name" "nats") | nindent 10 }}
  ports:
    - {port: 4222, protocol: TCP}
{{- else }}
- {{- with .Values.externalNats.cidr }}
  to:
    - ipBlock: {cidr: {{ . }}}
  {{- end }}
  ports:
    - {port: {{ .Values.externalNats.port | int }}, protocol: TCP}
{{- end }}
{{- end }}
