{{/*
The controller's RBAC rules, least privilege: exactly the calls of controller/ and of kopf
as the controller runs it (standalone: no peering; scanning off: no cluster-wide watch of
CRDs or namespaces, only API discovery, which every authenticated user may do).

asyncendpoints.controller.workloadRules: the rules on pools and what they own, granted
cluster-wide (ClusterRole) when the controller watches every namespace, else in the
watched namespace only (Role). The Lease rules are always a Role in the release namespace.
*/}}
{{- define "asyncendpoints.controller.workloadRules" -}}
# kopf: watch the pools and keep its finalizer on them (the daemon stops before a pool goes)
- apiGroups: ["asyncendpoints.io"]
  resources: ["asyncworkerpools"]
  verbs: ["list", "watch", "patch"]
# the pool's status: replicas, queues, conditions, last recovery
- apiGroups: ["asyncendpoints.io"]
  resources: ["asyncworkerpools/status"]
  verbs: ["patch"]
# the pool owns its Deployment with blockOwnerDeletion, which clusters that enable the
# OwnerReferencesPermissionEnforcement admission plugin allow only with this
- apiGroups: ["asyncendpoints.io"]
  resources: ["asyncworkerpools/finalizers"]
  verbs: ["update"]
# the worker Deployment of each pool: read, created, kept to the spec (update), scaled (patch)
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "update", "patch"]
# worker pods: watched so that a lost worker's jobs are recovered at once; listed and
# annotated with a pod-deletion cost before a scale-down (idle workers go first)
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
# an Event for every scale and every recovery (kopf posts core/v1 Events)
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# the Redis URL of a pool, read from the Secret its spec.redis.secretRef names
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
  {{- if not .Values.controller.rbac.readAllSecrets }}
  resourceNames:
    {{- $names := .Values.controller.rbac.secretNames | default (list (include "asyncendpoints.redisSecretName" .)) }}
    {{- range $names }}
    - {{ tpl . $ | quote }}
    {{- end }}
  {{- end }}
{{- end }}

{{/* Rules in the controller's own namespace: the leader-election Lease. */}}
{{- define "asyncendpoints.controller.leaseRules" -}}
# leader election: only one controller replica acts
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "asyncendpoints.controller.leaseName" . | quote }}]
  verbs: ["get", "update"]
{{- end }}
