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

{{/* EXECUTIONER_RUNTIME_IMAGES: each offered runtime besides python (which runs sandboxImage) to its image. */}}
{{- define "executioner.runtimeImages" -}}
{{- $images := dict }}
{{- range $name := .Values.runtimes.offered }}
{{- if ne $name "python" }}
{{- $image := index $.Values.runtimes.images $name | default dict }}
{{- if not $image.repository }}
{{- fail (printf "runtimes.offered names %s but runtimes.images.%s.repository is not set" $name $name) }}
{{- end }}
{{- $_ := set $images $name (printf "%s:%s" $image.repository (default $.Chart.AppVersion $image.tag)) }}
{{- end }}
{{- end }}
{{- toJson $images }}
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

{{/* The sandbox namespace: `sandbox.namespace`, else "<fullname>-sandbox" (executioner-sandbox for a release named
executioner), so two releases never share one. */}}
{{- define "executioner.sandboxNamespace" -}}
{{- .Values.sandbox.namespace | default (printf "%s-sandbox" (include "executioner.fullname" .)) | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* The bounds of every execution (api, worker, operator; the CRD's schema is rendered from the same values). */}}
{{- define "executioner.executionsEnv" -}}
{{- $x := .Values.executions }}
- name: EXECUTIONER_RUNTIMES
  value: {{ join "," .Values.runtimes.offered | quote }}
- name: EXECUTIONER_DEFAULT_TIMEOUT_SECONDS
  value: {{ $x.defaultTimeoutSeconds | quote }}
- name: EXECUTIONER_MAX_TIMEOUT_SECONDS
  value: {{ $x.maxTimeoutSeconds | quote }}
- name: EXECUTIONER_DEFAULT_MEMORY_MB
  value: {{ $x.defaultMemoryMb | quote }}
- name: EXECUTIONER_MIN_MEMORY_MB
  value: {{ $x.minMemoryMb | quote }}
- name: EXECUTIONER_MAX_MEMORY_MB
  value: {{ $x.maxMemoryMb | quote }}
- name: EXECUTIONER_MAX_CODE_BYTES
  value: {{ $x.maxCodeBytes | int64 | quote }}
- name: EXECUTIONER_MAX_STDIN_BYTES
  value: {{ $x.maxStdinBytes | int64 | quote }}
{{- end }}

{{/* The sandbox pods' Localhost seccomp profile, relative to the kubelet's seccomp directory (one per release). */}}
{{- define "executioner.seccompProfileName" -}}
executioner/{{ .Release.Namespace }}-{{ include "executioner.fullname" . }}.json
{{- end }}

{{/* Settings shared by the worker and the operator (both drive sandbox Jobs). */}}
{{- define "executioner.sandboxEnv" -}}
- name: EXECUTIONER_BACKEND
  value: kubernetes
- name: EXECUTIONER_SANDBOX_NAMESPACE
  value: {{ include "executioner.sandboxNamespace" . | quote }}
- name: EXECUTIONER_SANDBOX_IMAGE
  value: {{ include "executioner.sandboxImage" . | quote }}
- name: EXECUTIONER_RUNTIME_IMAGES
  value: {{ include "executioner.runtimeImages" . | quote }}
{{- with .Values.sandbox.runtimeClassName }}
- name: EXECUTIONER_RUNTIME_CLASS_NAME
  value: {{ . | quote }}
{{- end }}
{{- if .Values.sandbox.seccompProfile.enabled }}
- name: EXECUTIONER_SANDBOX_SECCOMP_PROFILE
  value: {{ include "executioner.seccompProfileName" . | quote }}
{{- end }}
- name: EXECUTIONER_WORKER_CONCURRENCY
  value: {{ .Values.worker.concurrency | quote }}
- name: EXECUTIONER_SANDBOX_EPHEMERAL_STORAGE_MB
  value: {{ .Values.sandbox.ephemeralStorageMb | quote }}
{{- if .Values.operator.enabled }}
- name: EXECUTIONER_KUBERNETES_POOL_SIZES
  value: {{ include "executioner.poolSizes" . | quote }}
{{- end }}
{{- end }}

{{/* Pool pods the operator keeps (the sum of sandbox.pool.sizes): 0 without the operator, which alone fills the pool
(the worker only claims from it). Above 0, the worker may attach to sandbox pods and the operator create Jobs. */}}
{{- define "executioner.poolPods" -}}
{{- $pods := 0 }}
{{- if .Values.operator.enabled }}
{{- range include "executioner.poolSizes" . | fromJson }}{{ $pods = add $pods . }}{{ end }}
{{- end }}
{{- $pods }}
{{- end }}

{{/* sandbox.pool.sizes as JSON ({} when unset or null). */}}
{{- define "executioner.poolSizes" -}}
{{- (.Values.sandbox.pool | default dict).sizes | default dict | toJson }}
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

{{/* Bytes of a Kubernetes memory quantity ("256Mi", "1.5Gi", "500M", "268435456") or a number. */}}
{{- define "executioner.bytes" -}}
{{- if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- int64 . }}
{{- else }}
{{- $s := toString . }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $s }}
{{- $suffix := trimPrefix $number $s }}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if or (not $number) (not (hasKey $factors $suffix)) }}
{{- fail (printf "%q is not a memory quantity (bytes, or a number with k, M, G, T, Ki, Mi, Gi or Ti)" $s) }}
{{- end }}
{{- mulf (float64 $number) (index $factors $suffix) | floor | int64 }}
{{- end }}
{{- end }}

{{/* Redis's maxmemory in bytes: redis.maxmemory, or 80% of the container's memory limit. */}}
{{- define "executioner.redisMaxmemory" -}}
{{- $limit := include "executioner.bytes" .Values.redis.resources.limits.memory | int64 }}
{{- if .Values.redis.maxmemory }}
{{- include "executioner.bytes" .Values.redis.maxmemory }}
{{- else }}
{{- div (mul $limit 8) 10 }}
{{- end }}
{{- end }}

{{/* Percent-decoding of the characters a URL's user info must encode (sprig has no URL decoder). */}}
{{- define "executioner.urlDecode" -}}
{{- $s := . }}
{{- $codes := dict "20" " " "21" "!" "22" "\"" "23" "#" "24" "$" "26" "&" "27" "'" "28" "(" "29" ")" "2A" "*" "2B" "+" "2C" "," "2F" "/" "3A" ":" "3B" ";" "3C" "<" "3D" "=" "3E" ">" "3F" "?" "40" "@" "5B" "[" "5C" "\\" "5D" "]" "5E" "^" "60" "`" "7B" "{" "7C" "|" "7D" "}" }}
{{- range $code, $char := $codes }}
{{- $s = $s | replace (printf "%%%s" $code) $char | replace (printf "%%%s" (lower $code)) $char }}
{{- end }}
{{- $s | replace "%25" "%" }}
{{- end }}

{{/* User name and password of an external Redis URL, as written (then percent-decoded): dict user, password. */}}
{{- define "executioner.redisUrlCredentials" -}}
{{- $userinfo := regexReplaceAll "^[a-z]+://" (regexFind "^[a-z]+://[^@/]*@" .) "" | trimSuffix "@" }}
{{- $user := $userinfo }}{{ $password := "" }}
{{- if contains ":" $userinfo }}
{{- $user = first (splitList ":" $userinfo) }}
{{- $password = trimPrefix (printf "%s:" $user) $userinfo }}
{{- end }}
{{- dict "user" (include "executioner.urlDecode" $user) "password" (include "executioner.urlDecode" $password) | toJson }}
{{- end }}

{{/* Invalid combinations stop the render with a message. */}}
{{- define "executioner.validate" -}}
{{- if and (not .Values.redis.enabled) (not .Values.redis.externalUrl) }}
{{- fail "redis.enabled is false: set redis.externalUrl to the Redis the components should use" }}
{{- end }}
{{- if eq (include "executioner.sandboxNamespace" .) .Release.Namespace }}
{{- fail "sandbox.namespace must differ from the release namespace: sandbox pods get a deny-all network and Pod Security \"restricted\" there" }}
{{- end }}
{{- $x := .Values.executions }}
{{- if not (and (le (float64 $x.minMemoryMb) (float64 $x.defaultMemoryMb)) (le (float64 $x.defaultMemoryMb) (float64 $x.maxMemoryMb))) }}
{{- fail "executions: minMemoryMb <= defaultMemoryMb <= maxMemoryMb must hold" }}
{{- end }}
{{- if gt (float64 $x.defaultTimeoutSeconds) (float64 $x.maxTimeoutSeconds) }}
{{- fail "executions: defaultTimeoutSeconds must not exceed maxTimeoutSeconds" }}
{{- end }}
{{- if and (not .Values.auth.enabled) .Values.auth.existingSecret }}
{{- fail "auth.existingSecret is set but auth.enabled is false" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.auth.enabled) }}
{{- fail "an Ingress without API keys would let anyone run code: set auth.enabled=true" }}
{{- end }}
{{- if .Values.redis.enabled }}
{{- $limit := include "executioner.bytes" .Values.redis.resources.limits.memory | int64 }}
{{- $maxmemory := include "executioner.redisMaxmemory" . | int64 }}
{{- if gt $maxmemory (div (mul $limit 9) 10) }}
{{- fail (printf "redis.maxmemory (%d bytes) must be at most 90%% of redis.resources.limits.memory (%d bytes): the rest is for the append-only file rewrite, client buffers and fragmentation" $maxmemory $limit) }}
{{- end }}
{{- if lt $maxmemory 1048576 }}
{{- fail (printf "redis.maxmemory (%d bytes) must be at least 1Mi" $maxmemory) }}
{{- end }}
{{- end }}
{{- /* a StatefulSet's volumeClaimTemplates cannot change: say what to do instead of the API server's refusal */}}
{{- $redisName := printf "%s-redis" (include "executioner.fullname" .) }}
{{- $live := lookup "apps/v1" "StatefulSet" .Release.Namespace $redisName }}
{{- if and .Values.redis.enabled $live }}
{{- $liveClaims := $live.spec.volumeClaimTemplates | default list }}
{{- if and .Values.redis.persistence.enabled (not $liveClaims) }}
{{- fail (printf "the running Redis (StatefulSet %s) keeps no data on disk and a StatefulSet cannot gain a volume claim: either keep redis.persistence.enabled=false, or `kubectl -n %s delete statefulset %s --cascade=orphan` and upgrade again (the Redis pod is then replaced: what it holds in memory, queued and finished executions, is lost this once)" $redisName .Release.Namespace $redisName) }}
{{- end }}
{{- if and (not .Values.redis.persistence.enabled) $liveClaims }}
{{- fail (printf "the running Redis (StatefulSet %s) keeps its data on a claim: set redis.persistence.enabled=true (or delete the StatefulSet with --cascade=orphan to go back to an emptyDir, losing that data)" $redisName) }}
{{- end }}
{{- if and .Values.redis.persistence.enabled $liveClaims }}
{{- $liveSize := (first $liveClaims).spec.resources.requests.storage }}
{{- if ne (include "executioner.bytes" $liveSize) (include "executioner.bytes" .Values.redis.persistence.size) }}
{{- fail (printf "redis.persistence.size is %v but the StatefulSet %s was made with %v, and its claim template cannot change: keep %v (grow the claim itself with `kubectl edit pvc` if its StorageClass allows expansion)" .Values.redis.persistence.size $redisName $liveSize $liveSize) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $runtime, $size := include "executioner.poolSizes" . | fromJson }}
{{- if not (has $runtime $.Values.runtimes.offered) }}
{{- fail (printf "sandbox.pool.sizes names the runtime %s, which runtimes.offered does not offer" $runtime) }}
{{- end }}
{{- end }}
{{- $poolPods := include "executioner.poolPods" . | int }}
{{- /* each pool pod is a Job with one pod: a pool that fills the quota would leave no room for any other execution */}}
{{- $quota := .Values.sandbox.resourceQuota }}
{{- range $key := list "pods" "count/jobs.batch" }}
{{- if and $quota.enabled (hasKey $quota.hard $key) (ge $poolPods (index $quota.hard $key | int)) }}
{{- fail (printf "sandbox.pool.sizes asks for %d pool pods, but sandbox.resourceQuota.hard.%s is %v: the pool would leave no room for other executions" $poolPods $key (index $quota.hard $key)) }}
{{- end }}
{{- end }}
{{- with .Values.worker.autoscaling.keda }}
{{- if and .enabled (gt (int .minReplicas) (int .maxReplicas)) }}
{{- fail "worker.autoscaling.keda.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- end }}
{{- with .Values.api.autoscaling }}
{{- if and .enabled (gt (int .minReplicas) (int .maxReplicas)) }}
{{- fail "api.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- end }}
{{- end }}

{{/* checksum/secrets of a component's pods: the Secrets the chart renders (secret.yaml) and the live data of every
existingSecret the component reads (lookup; empty under `helm template`), so a `helm upgrade` after a key or
password changed rolls the pods. Argument: (list $ "<component>"). */}}
{{- define "executioner.secretsChecksum" -}}
{{- $root := index . 0 }}{{ $component := index . 1 -}}
{{- $existing := list }}
{{- if and (eq $component "api") $root.Values.auth.enabled $root.Values.auth.existingSecret }}
{{- $existing = append $existing $root.Values.auth.existingSecret }}
{{- end }}
{{- if and $root.Values.redis.enabled $root.Values.redis.auth.existingSecret }}
{{- $existing = append $existing $root.Values.redis.auth.existingSecret }}
{{- end }}
{{- $live := dict }}
{{- range $existing }}
{{- $secret := lookup "v1" "Secret" $root.Release.Namespace . | default dict }}
{{- $_ := set $live . ($secret.data | default dict) }}
{{- end }}
{{- /* only the Secrets' names and data: a label change (a new chart version) rolls nothing */}}
{{- $rendered := dict }}
{{- range splitList "\n---" (include (print $root.Template.BasePath "/secret.yaml") $root) }}
{{- $doc := fromYaml . }}
{{- if $doc.metadata }}
{{- $_ := set $rendered $doc.metadata.name (list ($doc.data | default dict) ($doc.stringData | default dict)) }}
{{- end }}
{{- end }}
{{- toJson (dict "rendered" $rendered "existing" $live) | sha256sum }}
{{- end }}

{{/* With more than one pod of a component (replicas, or an autoscaler that may add them), spread its pods across
nodes where it can (ScheduleAnyway: a single-node cluster still runs them all). Argument: (list $ "<component>"). */}}
{{- define "executioner.scalesOut" -}}
{{- $root := index . 0 }}{{ $component := index . 1 -}}
{{- if eq $component "api" -}}
{{- if or (gt (int $root.Values.api.replicas) 1) $root.Values.api.autoscaling.enabled }}true{{ end -}}
{{- else -}}
{{- if or (gt (int $root.Values.worker.replicas) 1) $root.Values.worker.autoscaling.keda.enabled }}true{{ end -}}
{{- end -}}
{{- end }}

{{- define "executioner.topologySpread" -}}
{{- if include "executioner.scalesOut" . }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "executioner.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/* The egress rule to the Kubernetes API server: its real address and port, which is what most CNIs see after the
Service's NAT (networkPolicy.kubernetesApi). */}}
{{- define "executioner.kubernetesApiEgress" -}}
{{- with .Values.networkPolicy.kubernetesApi }}
- ports:
    {{- range .ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .cidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . | quote }}}
    {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The egress rule to the cluster's DNS (only where it has one: clusterDNS). */}}
{{- define "executioner.dnsEgress" -}}
{{- if .Values.clusterDNS }}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
  {{- with .Values.networkPolicy.dnsTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
