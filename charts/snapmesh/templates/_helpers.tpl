{{/*
The services, from files/services.yaml (generated from the service manifest by `npm run chart:manifest`):
name, values key, schema, subscribed fact types, the peers it calls and their URL variables, tasks.
*/}}
{{- define "snapmesh.services" -}}
{{- .Files.Get "files/services.yaml" -}}
{{- end -}}

{{- define "snapmesh.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name (at most 40 characters, so service suffixes fit in 63). */}}
{{- define "snapmesh.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else -}}
{{- $name := include "snapmesh.name" . -}}
{{- if contains $name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- end -}}

{{- define "snapmesh.labels" -}}
app.kubernetes.io/name: {{ include "snapmesh.name" . | quote }}
app.kubernetes.io/part-of: snapmesh
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/* <registry>/<repository>-<service>@<digest> when image.digests has the service, else :<tag>. */}}
{{- define "snapmesh.image" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{- $ref := printf "%s-%s" $root.Values.image.repository $name -}}
{{- if $root.Values.image.registry -}}{{- $ref = printf "%s/%s" $root.Values.image.registry $ref -}}{{- end -}}
{{- $digest := index ($root.Values.image.digests | default dict) $name | default "" -}}
{{- if $digest -}}{{ printf "%s@%s" $ref $digest }}{{- else -}}{{ printf "%s:%s" $ref ($root.Values.image.tag | default $root.Chart.AppVersion) }}{{- end -}}
{{- end -}}

{{/* The Broker's name (Knative Eventing). */}}
{{- define "snapmesh.brokerName" -}}
{{- printf "%s-%s" (include "snapmesh.fullname" .) .Values.eventing.broker.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "snapmesh.serviceHost" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
{{- printf "%s-%s.%s.svc.cluster.local" (include "snapmesh.fullname" $root) $name $root.Release.Namespace -}}
{{- end -}}

{{- define "snapmesh.egressProxyUrl" -}}
{{- printf "http://%s-egress-proxy.%s.svc.cluster.local:%d" (include "snapmesh.fullname" .) .Release.Namespace (int .Values.egress.proxy.port) -}}
{{- end -}}

{{/* Environment every service gets. */}}
{{- define "snapmesh.commonEnv" -}}
{{- $root := index . 0 -}}{{- $name := index . 1 -}}
- name: LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef: { name: {{ $root.Values.database.secretName }}, key: {{ $name }} }
- name: MIGRATE_ON_START
  value: {{ ternary "0" "1" $root.Values.database.migrationJob | quote }}
- name: NATS_URL
  value: {{ $root.Values.nats.url | quote }}
{{- if $root.Values.eventing.enabled }}
# Facts go to the Broker (K_SINK from the SinkBinding); subscribed facts arrive from Triggers.
- name: EVENT_SINK
  value: http
- name: EVENT_CONSUMERS
  value: "off"
{{- if not $root.Values.eventing.deadLetterUri }}
# Triggers dead-letter to the service's /dead-letters, kept in the JetStream dead-letter stream.
- name: DEAD_LETTERS
  value: nats
{{- end }}
{{- else }}
- name: EVENT_SINK
  value: nats
- name: EVENT_CONSUMERS
  value: "on"
{{- end }}
- name: SNAPMESH_JWKS_URL
  value: {{ printf "http://%s/.well-known/jwks.json" (include "snapmesh.serviceHost" (list $root "auth")) | quote }}
- name: EGRESS_ALLOW_HOSTS
  value: {{ join "," $root.Values.egress.allowHosts | quote }}
{{- if eq $root.Values.egress.mode "proxy" }}
- name: EGRESS_PROXY
  value: {{ include "snapmesh.egressProxyUrl" $root | quote }}
- name: EGRESS_REQUIRE_PROXY
  value: "1"
# For anything else that honours the usual variables; NO_PROXY also tells the egress client what is in-cluster.
- name: HTTPS_PROXY
  value: {{ include "snapmesh.egressProxyUrl" $root | quote }}
- name: HTTP_PROXY
  value: {{ include "snapmesh.egressProxyUrl" $root | quote }}
- name: NO_PROXY
  value: {{ include "snapmesh.egress.noProxy" $root | quote }}
{{- end }}
{{- end -}}

{{/* Labels for pod templates: no chart version, so a chart bump alone makes no new Knative Revision. */}}
{{- define "snapmesh.podLabels" -}}
app.kubernetes.io/name: {{ include "snapmesh.name" . | quote }}
app.kubernetes.io/part-of: snapmesh
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/*
Container security context every snapmesh container runs with: what restricted Pod Security demands and
Knative Serving allows at container level (the pod-level context needs a Knative feature flag).
*/}}
{{- define "snapmesh.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod security context for plain pods (Jobs, CronJobs). */}}
{{- define "snapmesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
A name of at most 63 characters (or the limit given: `list name 52` for a CronJob, whose Jobs add a suffix);
a longer one keeps its start and gets a hash of the whole, so two long names never collide.
*/}}
{{- define "snapmesh.dnsName" -}}
{{- $name := . -}}{{- $max := 63 -}}
{{- if kindIs "slice" . -}}{{- $name = index . 0 -}}{{- $max = index . 1 -}}{{- end -}}
{{- if le (len $name) $max -}}{{ $name }}{{- else -}}{{ printf "%s-%s" ($name | trunc (int (sub $max 9)) | trimSuffix "-") (sha256sum $name | trunc 8) }}{{- end -}}
{{- end -}}

{{/* The enabled services' in-cluster URLs as JSON (the helm test reads them). */}}
{{- define "snapmesh.smokeUrls" -}}
{{- $root := . -}}{{- $urls := dict -}}
{{- range $s := include "snapmesh.services" . | fromYamlArray }}
{{- if (index $root.Values.services $s.key).enabled }}{{ $_ := set $urls $s.name (printf "http://%s" (include "snapmesh.serviceHost" (list $root $s.name))) }}{{ end }}
{{- end }}
{{- toJson $urls -}}
{{- end -}}

{{/*
The enabled services as `name=url,…` for the console: their in-cluster URLs (`list $root dict`), or the URLs in
the map given for the names it has (`list $root console.publicUrls`; empty when it has none).
*/}}
{{- define "snapmesh.console.services" -}}
{{- $root := index . 0 -}}{{- $urls := index . 1 -}}{{- $pairs := list -}}
{{- range $s := include "snapmesh.services" $root | fromYamlArray }}
{{- if (index $root.Values.services $s.key).enabled }}
{{- if not $urls }}{{ $pairs = append $pairs (printf "%s=http://%s" $s.name (include "snapmesh.serviceHost" (list $root $s.name))) }}
{{- else if index $urls $s.name }}{{ $pairs = append $pairs (printf "%s=%s" $s.name (index $urls $s.name)) }}{{ end }}
{{- end }}
{{- end }}
{{- join "," $pairs -}}
{{- end -}}
