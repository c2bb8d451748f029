{{/*
Names, labels and the few values every template derives. One home per decision: the operator's
RBAC rules live in `kubeloop.operatorRules`, the watched namespaces in `kubeloop.watchedNamespaces`,
the checks across values that a JSON Schema cannot word clearly in `kubeloop.validate`.
*/}}

{{- define "kubeloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-scoped name: "<release>-kubeloop", or the release name when it says kubeloop. */}}
{{- define "kubeloop.fullname" -}}
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

{{- define "kubeloop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of everything the chart makes but the operator's own objects (no component). */}}
{{- define "kubeloop.commonLabels" -}}
helm.sh/chart: {{ include "kubeloop.chart" . }}
app.kubernetes.io/name: {{ include "kubeloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kubeloop
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the operator's Deployment, ServiceAccount, RBAC and Services. */}}
{{- define "kubeloop.labels" -}}
{{ include "kubeloop.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubeloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubeloop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: repository, then @digest if set, else :tag (default: the appVersion). */}}
{{- define "kubeloop.image" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (default .appVersion .tag) }}
{{- end }}
{{- end }}

{{- define "kubeloop.operatorImage" -}}
{{- include "kubeloop.image" (merge (dict "appVersion" .Chart.AppVersion) .Values.image) }}
{{- end }}

{{- define "kubeloop.runtimeImage" -}}
{{- include "kubeloop.image" (merge (dict "appVersion" .Chart.AppVersion) .Values.runtime.image) }}
{{- end }}

{{/* The namespaces the operator serves, one per line; empty in cluster mode (all of them). */}}
{{- define "kubeloop.watchedNamespaces" -}}
{{- if eq .Values.watch.mode "namespaces" }}
{{- range (uniq .Values.watch.namespaces) }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Namespaces that get the chart-made artifact claim: the watched ones, or the release's. */}}
{{- define "kubeloop.claimNamespaces" -}}
{{- $namespaces := .Values.artifactStore.pvc.namespaces }}
{{- if not $namespaces }}
{{- if eq .Values.watch.mode "namespaces" }}
{{- $namespaces = .Values.watch.namespaces }}
{{- else }}
{{- $namespaces = list .Release.Namespace }}
{{- end }}
{{- end }}
{{- range (uniq $namespaces) }}
{{ . }}
{{- end }}
{{- end }}

{{/* The store URI the operator gives Jobs and serving Pods when a resource names none. */}}
{{- define "kubeloop.artifactStoreUri" -}}
{{- $store := .Values.artifactStore }}
{{- if eq $store.type "pvc" }}
{{- printf "pvc://%s/" $store.pvc.name }}
{{- else if eq $store.type "existingClaim" }}
{{- printf "pvc://%s/" $store.existingClaim }}
{{- else }}
{{- $store.s3.uri }}
{{- end }}
{{- end }}

{{/*
Rules across values, with messages that say what to change. values.schema.json checks each value
on its own (types, enums, patterns, ranges); these need two values at once.
*/}}
{{- define "kubeloop.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail (printf "replicaCount is %d but peering.enabled is false: two operators without Kopf peering would both reconcile every object; set peering.enabled=true or replicaCount=1" (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq .Values.watch.mode "namespaces") (not .Values.watch.namespaces) }}
{{- fail "watch.mode is namespaces but watch.namespaces is empty: list the namespaces to watch, or set watch.mode=cluster" }}
{{- end }}
{{- if and (eq .Values.watch.mode "cluster") .Values.watch.namespaces }}
{{- fail "watch.namespaces is set but watch.mode is cluster: set watch.mode=namespaces to watch only those, or empty watch.namespaces" }}
{{- end }}
{{- if and (eq .Values.artifactStore.type "existingClaim") (not .Values.artifactStore.existingClaim) }}
{{- fail "artifactStore.type is existingClaim but artifactStore.existingClaim is empty: name the PersistentVolumeClaim" }}
{{- end }}
{{- if and (eq .Values.artifactStore.type "s3") (not .Values.artifactStore.s3.uri) }}
{{- fail "artifactStore.type is s3 but artifactStore.s3.uri is empty: give an s3://bucket/prefix URI" }}
{{- end }}
{{- end }}

{{/*
Everything the operator does in a namespace it serves, and nothing else. Each rule names the part
of the operator that needs it; docs/rbac.md explains them. Rendered into the ClusterRole
(watch.mode=cluster) or into one Role per watched namespace (watch.mode=namespaces).
*/}}
{{- define "kubeloop.operatorRules" -}}
# Its own kinds: watched by Kopf, which keeps its progress in annotations (patch); ModelVersions
# are registered (create) when a TrainingJob passes its gate, TrainingJobs created on drift.
- apiGroups: [kubeloop.dev]
  resources: [datasets, inferenceservices]
  verbs: [get, list, watch, patch]
- apiGroups: [kubeloop.dev]
  resources: [trainingjobs, modelversions]
  verbs: [get, list, watch, create, patch]
# The status subresource is the operator's to write (server-side apply / merge patch).
# inferenceservices/status is also granted onward to the drift sidecars' Roles, so the operator
# must hold it: Kubernetes refuses a Role that grants more than its creator has.
- apiGroups: [kubeloop.dev]
  resources: [datasets/status, trainingjobs/status, modelversions/status, inferenceservices/status]
  verbs: [get, patch]
# Owner references with blockOwnerDeletion need update on the owner's finalizers where the
# OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened clusters).
- apiGroups: [kubeloop.dev]
  resources: [datasets/finalizers, trainingjobs/finalizers, inferenceservices/finalizers]
  verbs: [update]
# Profile, train and verify Jobs of the runtime image, created once each (deterministic names);
# finished ones are removed by their ttlSecondsAfterFinished, not by the operator.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create]
# Read only: a Job's result is its Pod's termination message; a candidate's failure reason is its
# Pods' state. No pods/log, no pods/exec, no create.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The blue and green Deployments, scaled in place; never deleted (owner references clean up).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# The active and preview Services.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# The drift sidecar's identity: ServiceAccount, Role (get its InferenceService, patch its status,
# by resourceNames) and RoleBinding. No bind or escalate: the Role can only grant what is above.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch]
# The per-model version counter: a ConfigMap `kubeloop-versions-<model>`, replaced with its
# resourceVersion (update) so two TrainingJobs finishing at once get consecutive versions.
# Read by name only: no list or watch of ConfigMaps, no delete.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update]
# Events on every transition: core/v1 Events, created once each (Kopf posts the same kind).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.peering.enabled }}
# Kopf peering: each replica keeps itself alive in the peering object and pauses while a peer
# with a higher priority runs. The chart makes the object; the operator's create-if-missing at
# startup then only meets "already exists".
- apiGroups: [kopf.dev]
  resources: [{{ if eq .Values.watch.mode "cluster" }}clusterkopfpeerings{{ else }}kopfpeerings{{ end }}]
  verbs: [get, list, watch, create, patch]
{{- end }}
{{- end }}
