{{- /*
egress.allowHosts as a list of { host, port, squidDomain }: `host` or `host:port` (port 443 when absent, since
the services call HTTPS); squid's dstdomain takes `.x` for "x and its subdomains" and `*.x` literally.
*/ -}}
{{- define "snapmesh.egress.hosts" -}}
{{- $out := list -}}
{{- range .Values.egress.allowHosts -}}
{{- $parts := split ":" . -}}
{{- $host := $parts._0 -}}
{{- $port := $parts._1 | default "443" -}}
{{- $squid := ternary (trimPrefix "*" $host) $host (hasPrefix "*." $host) -}}
{{- $out = append $out (dict "host" $host "port" (int $port) "squidDomain" $squid "wildcard" (hasPrefix "*." $host)) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- /* The S3 endpoint's host and port, or AWS's (`*.amazonaws.com`, STS included) when no endpoint is set. */ -}}
{{- define "snapmesh.egress.s3" -}}
{{- if .Values.storage.s3.endpoint -}}
{{- $u := urlParse .Values.storage.s3.endpoint -}}
{{- $hp := split ":" $u.host -}}
{{- dict "host" $hp._0 "noProxy" $hp._0 "port" (int ($hp._1 | default (ternary "80" "443" (eq $u.scheme "http")))) | toYaml -}}
{{- else -}}
{{- dict "host" "*.amazonaws.com" "noProxy" ".amazonaws.com" "port" 443 | toYaml -}}
{{- end -}}
{{- end -}}

{{- /*
NO_PROXY in proxy mode: what is inside the cluster (services, the Broker ingress behind K_SINK, NATS), S3 (the
AWS SDK does not use a proxy; storage reaches it directly, see egress.s3CIDRs), and egress.noProxy (PostgreSQL).
*/ -}}
{{- define "snapmesh.egress.noProxy" -}}
{{- $hosts := list "localhost" "127.0.0.1" ".svc" ".cluster.local" -}}
{{- if .Values.eventing.enabled -}}
{{- $hosts = append $hosts (ternary "broker-ingress.knative-eventing.svc.cluster.local" ".knative-eventing.svc.cluster.local" (eq .Values.eventing.broker.class "channel")) -}}
{{- end -}}
{{- range splitList "," .Values.nats.url -}}
{{- $hosts = append $hosts (split ":" (urlParse (trim .)).host)._0 -}}
{{- end -}}
{{- if eq .Values.storage.backend "s3" -}}
{{- $hosts = append $hosts (include "snapmesh.egress.s3" . | fromYaml).noProxy -}}
{{- end -}}
{{- $hosts = concat $hosts .Values.egress.noProxy -}}
{{- $hosts | uniq | join "," -}}
{{- end -}}

{{- /* Pods of every service of the manifest (files/services.yaml): a service added there is covered at once. */ -}}
{{- define "snapmesh.egress.servicePods" -}}
{{- $names := list -}}
{{- range $s := include "snapmesh.services" . | fromYamlArray }}{{ $names = append $names $s.name }}{{ end -}}
matchExpressions:
  - { key: app.kubernetes.io/instance, operator: In, values: [{{ .Release.Name | quote }}] }
  - { key: app.kubernetes.io/component, operator: In, values: {{ toJson $names }} }
{{- end -}}

{{- /* Label map values quoted: `--set …nodeSelector.x=true` gives a boolean, and label values are strings. */ -}}
{{- define "snapmesh.egress.labelMap" -}}
{{- $lines := list -}}
{{- range $k, $v := . -}}{{- $lines = append $lines (printf "%s: %s" $k ($v | toString | quote)) -}}{{- end -}}
{{- join "\n" $lines -}}
{{- end -}}

{{- /* DNS: only the cluster's resolver (kube-dns), not port 53 anywhere. */ -}}
{{- define "snapmesh.egress.dnsRule" -}}
- to:
    - namespaceSelector:
        matchLabels: { kubernetes.io/metadata.name: {{ .Values.egress.dns.namespace | quote }} }
      podSelector:
        matchLabels:
          {{- include "snapmesh.egress.labelMap" .Values.egress.dns.podLabels | nindent 10 }}
  ports:
    - { protocol: UDP, port: 53 }
    - { protocol: TCP, port: 53 }
{{- end -}}

{{- /* The storage pods reach S3 (and STS) directly: the AWS SDK takes no proxy. */ -}}
{{- define "snapmesh.egress.s3Policy" -}}
{{- $s3 := include "snapmesh.egress.s3" . | fromYaml }}
{{- $inCluster := or (hasSuffix ".svc" $s3.host) (hasSuffix ".cluster.local" $s3.host) }}
{{- if and (eq .Values.storage.backend "s3") .Values.services.storage.enabled .Values.egress.s3CIDRs (not $inCluster) }}
---
# S3 and STS authenticate by signature, not by source address: storage reaches them directly.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "snapmesh.fullname" . }}-storage-s3
  labels:
    {{- include "snapmesh.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name | quote }}
      app.kubernetes.io/component: storage
  policyTypes: [Egress]
  egress:
    - to:
        {{- range .Values.egress.s3CIDRs }}
        - ipBlock: { cidr: {{ . | quote }} }
        {{- end }}
      ports:
        - { protocol: TCP, port: {{ $s3.port }} }
{{- end }}
{{- end -}}
