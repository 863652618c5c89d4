{{/*
Names, labels and shared pieces of the asyncendpoints chart.
Templates that take a component are called with a dict:
  include "asyncendpoints.labels" (dict "ctx" $ "component" "api")
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "asyncendpoints.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else <release>-<chart>, else the
release name alone when it already holds the chart name. 63 characters at most (DNS labels).
*/}}
{{- define "asyncendpoints.fullname" -}}
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

{{/* The name of a component's objects: <fullname>-<component> (dict "ctx" $ "component" "api"). */}}
{{- define "asyncendpoints.componentName" -}}
{{- printf "%s-%s" (include "asyncendpoints.fullname" .ctx | trunc 50 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "asyncendpoints.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The namespace of the namespaced objects. */}}
{{- define "asyncendpoints.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: app.kubernetes.io/name, instance and (when given) component only, so that they
never change across upgrades (a Deployment's selector is immutable).
Takes the root context or (dict "ctx" $ "component" "api").
*/}}
{{- define "asyncendpoints.selectorLabels" -}}
{{- $ctx := .ctx | default . -}}
app.kubernetes.io/name: {{ include "asyncendpoints.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/*
Every label of an object: the selector labels, version, part-of, managed-by, helm.sh/chart and
commonLabels. Takes the root context or (dict "ctx" $ "component" "api").
*/}}
{{- define "asyncendpoints.labels" -}}
{{- $ctx := .ctx | default . -}}
{{ include "asyncendpoints.selectorLabels" . }}
helm.sh/chart: {{ include "asyncendpoints.chart" $ctx }}
app.kubernetes.io/version: {{ include "asyncendpoints.imageTag" $ctx | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: asyncendpoints
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.annotations lines from commonAnnotations merged with an object's own (dict "ctx" $ "annotations" .Values.api.annotations). */}}
{{- define "asyncendpoints.annotations" -}}
{{- $all := merge (dict) (.annotations | default dict) (.ctx.Values.commonAnnotations | default dict) -}}
{{- if $all }}
{{- toYaml $all }}
{{- end }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "asyncendpoints.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{/* The full image reference: [registry/]repository(:tag|@digest). */}}
{{- define "asyncendpoints.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" $repo .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" $repo (include "asyncendpoints.imageTag" .) }}
{{- end }}
{{- end }}

{{/* The image of the helm test pod. */}}
{{- define "asyncendpoints.testImage" -}}
{{- $img := .Values.tests.image -}}
{{- $repo := $img.repository -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{ printf "%s:%s" $repo ($img.tag | toString) }}
{{- end }}

{{/* The Secret that holds the Redis URL: redis.existingSecret, else the chart's. */}}
{{- define "asyncendpoints.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}
{{- tpl .Values.redis.existingSecret . }}
{{- else }}
{{- tpl .Values.redis.secretName . }}
{{- end }}
{{- end }}

{{/* Whether authentication is on ("true" or ""). */}}
{{- define "asyncendpoints.authEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.tokens }}true{{ end }}
{{- end }}

{{/* The Secret that holds the API tokens: auth.existingSecret, else the chart's. */}}
{{- define "asyncendpoints.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- tpl .Values.auth.existingSecret . }}
{{- else }}
{{- printf "%s-auth" (include "asyncendpoints.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the controller. */}}
{{- define "asyncendpoints.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "asyncendpoints.componentName" (dict "ctx" . "component" "controller")) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the API. */}}
{{- define "asyncendpoints.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "asyncendpoints.componentName" (dict "ctx" . "component" "api")) .Values.api.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace the controller watches ("" for every namespace). */}}
{{- define "asyncendpoints.controller.watchNamespace" -}}
{{- tpl (.Values.controller.watchNamespace | default "") . }}
{{- end }}

{{/* Pod annotations that roll the pods when a Secret the chart makes changes. */}}
{{- define "asyncendpoints.secretChecksums" -}}
{{- if not .Values.redis.existingSecret }}
checksum/redis: {{ .Values.redis.url | toString | sha256sum }}
{{- end }}
{{- if and (not .Values.auth.existingSecret) .Values.auth.tokens }}
checksum/auth: {{ join "\n" .Values.auth.tokens | sha256sum }}
{{- end }}
{{- end }}

{{/* Environment variables every AsyncEndpoints container gets: the logs and the pod's identity. */}}
{{- define "asyncendpoints.commonEnv" -}}
- name: ASYNCENDPOINTS_LOG_LEVEL
  value: {{ .Values.logs.level | quote }}
- name: ASYNCENDPOINTS_LOG_FORMAT
  value: {{ .Values.logs.format | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/* The job store of the API: the Redis URL as a file (never in the environment) and the key prefix. */}}
{{- define "asyncendpoints.redisEnv" -}}
- name: ASYNCENDPOINTS_REDIS_URL_FILE
  value: /etc/asyncendpoints/redis/{{ .Values.redis.secretKey }}
- name: ASYNCENDPOINTS_KEY_PREFIX
  value: {{ .Values.redis.keyPrefix | quote }}
{{- end }}

{{/* The volume of the Redis URL Secret (mounted at /etc/asyncendpoints/redis). */}}
{{- define "asyncendpoints.redisVolume" -}}
- name: redis-url
  secret:
    secretName: {{ include "asyncendpoints.redisSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.redis.secretKey }}
        path: {{ .Values.redis.secretKey }}
{{- end }}

{{/* The writable /tmp of every pod (the root filesystem is read-only). */}}
{{- define "asyncendpoints.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpSizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}

{{/* The leader-election Lease of the controller (in the release namespace). */}}
{{- define "asyncendpoints.controller.leaseName" -}}
{{- .Values.controller.leaderElection.leaseName | default (include "asyncendpoints.componentName" (dict "ctx" . "component" "controller")) }}
{{- end }}
