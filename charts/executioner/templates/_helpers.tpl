{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "executioner.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<chart>" (or just the release name when it contains the chart name), truncated to 63 characters.
Components append "-api", "-worker", ...; the prefix leaves them room. */}}
{{- define "executioner.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "executioner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "executioner.labels" -}}
helm.sh/chart: {{ include "executioner.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: executioner
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/name: {{ include "executioner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: include "executioner.selectorLabels" (list . "api") */}}
{{- define "executioner.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "executioner.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component's objects: include "executioner.componentLabels" (list . "api") */}}
{{- define "executioner.componentLabels" -}}
{{ include "executioner.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* ServiceAccount name of one component: include "executioner.serviceAccountName" (list . "worker") */}}
{{- define "executioner.serviceAccountName" -}}
{{- printf "%s-%s" (include "executioner.fullname" (index . 0)) (index . 1) }}
{{- end }}

{{- define "executioner.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "executioner.sandboxImage" -}}
{{- printf "%s:%s" .Values.sandboxImage.repository (default .Chart.AppVersion .Values.sandboxImage.tag) }}
{{- end }}

{{- define "executioner.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "executioner.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "executioner.redisSecretName" -}}
{{- default (printf "%s-redis" (include "executioner.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}

{{/* Prefix of the environment variables the kubelet injects for a Service (name upper-cased, "-" -> "_"). */}}
{{- define "executioner.serviceEnvPrefix" -}}
{{- . | upper | replace "-" "_" }}
{{- end }}

{{/* Host of an in-chart Service: its DNS name, or the injected Service variable when there is no cluster DNS. */}}
{{- define "executioner.serviceHost" -}}
{{- $root := index . 0 }}{{ $service := index . 1 -}}
{{- if $root.Values.clusterDNS }}
{{- printf "%s.%s.svc" $service $root.Release.Namespace }}
{{- else }}
{{- printf "$(%s_SERVICE_HOST)" (include "executioner.serviceEnvPrefix" $service) }}
{{- end }}
{{- end }}

{{/* EXECUTIONER_REDIS_URL (and the password it is built from) for the application containers. */}}
{{- define "executioner.redisEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "executioner.redisSecretName" . }}
      key: {{ .Values.redis.auth.secretKey }}
- name: EXECUTIONER_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "executioner.serviceHost" (list . (printf "%s-redis" (include "executioner.fullname" .)))) | quote }}
{{- else }}
- name: EXECUTIONER_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-redis-url" (include "executioner.fullname" .) }}
      key: redis-url
{{- end }}
{{- end }}

{{/* Settings shared by the worker and the operator (both drive sandbox Jobs). */}}
{{- define "executioner.sandboxEnv" -}}
- name: EXECUTIONER_BACKEND
  value: kubernetes
- name: EXECUTIONER_SANDBOX_NAMESPACE
  value: {{ .Values.sandbox.namespace | quote }}
- name: EXECUTIONER_SANDBOX_IMAGE
  value: {{ include "executioner.sandboxImage" . | quote }}
{{- with .Values.sandbox.runtimeClassName }}
- name: EXECUTIONER_RUNTIME_CLASS_NAME
  value: {{ . | quote }}
{{- end }}
- name: EXECUTIONER_WORKER_CONCURRENCY
  value: {{ .Values.worker.concurrency | quote }}
{{- end }}

{{/* Pod-level settings every application pod shares. */}}
{{- define "executioner.podCommon" -}}
enableServiceLinks: {{ not .Values.clusterDNS }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "executioner.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{/* Invalid combinations stop the render with a message. */}}
{{- define "executioner.validate" -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.externalUrl) }}
{{- fail "redis.enabled is false: set redis.externalUrl to the Redis the components should use" }}
{{- end }}
{{- if eq .Values.sandbox.namespace .Release.Namespace }}
{{- fail "sandbox.namespace must differ from the release namespace: sandbox pods get a deny-all network and Pod Security \"restricted\" there" }}
{{- end }}
{{- if and (not .Values.auth.enabled) .Values.auth.existingSecret }}
{{- fail "auth.existingSecret is set but auth.enabled is false" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.auth.enabled) }}
{{- fail "an Ingress without API keys would let anyone run code: set auth.enabled=true" }}
{{- end }}
{{- end }}
