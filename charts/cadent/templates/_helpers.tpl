{{/* The chart name. */}}
{{- define "cadent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: <release>-cadent, or the release name when it already says cadent. */}}
{{- define "cadent.fullname" -}}
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

{{/* Cluster-scoped names must not collide between releases of the same name in two namespaces. */}}
{{- define "cadent.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "cadent.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cadent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "cadent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component (controller, worker, redis); pass (dict "ctx" $ "component" "x"). */}}
{{- define "cadent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cadent.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "cadent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cadent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cadent.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Lease name; unique per release so two releases in one namespace elect separately. */}}
{{- define "cadent.leaseName" -}}
{{- include "cadent.fullname" . }}
{{- end }}

{{/* The Secret and key holding REDIS_URL. */}}
{{- define "cadent.redisUrlSecretName" -}}
{{- default (printf "%s-redis-url" (include "cadent.fullname" .)) .Values.redisUrl.existingSecret }}
{{- end }}
{{- define "cadent.redisUrlSecretKey" -}}
{{- if .Values.redisUrl.existingSecret }}{{ .Values.redisUrl.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{/* The URL the chart stores when it makes the Secret itself. */}}
{{- define "cadent.redisUrlValue" -}}
{{- if .Values.redisUrl.value }}
{{- .Values.redisUrl.value }}
{{- else if .Values.redis.enabled }}
{{- printf "redis://%s-redis.%s.svc:6379/0" (include "cadent.fullname" .) .Release.Namespace }}
{{- else }}
{{- fail "set redisUrl.value, redisUrl.existingSecret, or redis.enabled=true: cadent needs a Redis" }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security container settings shared by every container of the chart. */}}
{{- define "cadent.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment shared by the controller and the worker: REDIS_URL, and the password file when set. */}}
{{- define "cadent.redisEnv" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "cadent.redisUrlSecretName" . }}
      key: {{ include "cadent.redisUrlSecretKey" . }}
{{- if .Values.redisPassword.existingSecret }}
- name: REDIS_PASSWORD_FILE
  value: /etc/cadent/redis/password
{{- end }}
{{- end }}

{{- define "cadent.redisPasswordVolumeMount" -}}
{{- if .Values.redisPassword.existingSecret -}}
- name: redis-password
  mountPath: /etc/cadent/redis
  readOnly: true
{{- end }}
{{- end }}

{{- define "cadent.redisPasswordVolume" -}}
{{- if .Values.redisPassword.existingSecret -}}
- name: redis-password
  secret:
    secretName: {{ .Values.redisPassword.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.redisPassword.existingSecretKey }}
        path: password
{{- end }}
{{- end }}

{{/* The controller's rules, for a ClusterRole or a Role per watched namespace (templates/rbac.yaml). */}}
{{- define "cadent.controllerRules" -}}
- apiGroups: [cadent.dev]
  resources: [periodictasks]
  verbs: [list, watch]
- apiGroups: [cadent.dev]
  resources: [periodictasks/status]
  verbs: [patch]
- apiGroups: [cadent.dev]
  resources: [tasks]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [cadent.dev]
  resources: [tasks/status]
  verbs: [patch]
- apiGroups: [cadent.dev]
  resources: [periodictasks/finalizers, tasks/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
