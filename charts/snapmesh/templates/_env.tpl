{{- /* What every service's HTTP doors need: which tokens to accept, whose X-Forwarded-For to trust, timeouts. */ -}}
{{- define "snapmesh.env.doors" -}}
- name: SNAPMESH_DEV_AUTH
  value: {{ ternary "1" "0" .Values.auth.devAuth | quote }}
- name: TRUST_PROXY_HOPS
  value: {{ .Values.http.trustProxyHops | quote }}
- name: HEADERS_TIMEOUT_MS
  value: {{ .Values.http.headersTimeoutMs | int64 | quote }}
- name: REQUEST_TIMEOUT_MS
  value: {{ .Values.http.requestTimeoutMs | int64 | quote }}
{{- end -}}

{{- /* The WeChat app's credentials: auth signs in with them, share-code draws mini-program codes. */ -}}
{{- define "snapmesh.env.wechat" -}}
{{- with .Values.auth.wechat }}
{{- if .secretName }}
- name: WECHAT_API_BASE
  value: {{ .apiBase | quote }}
- name: WECHAT_APP_ID
  valueFrom: { secretKeyRef: { name: {{ .secretName }}, key: appId } }
- name: WECHAT_APP_SECRET
  valueFrom: { secretKeyRef: { name: {{ .secretName }}, key: appSecret } }
{{- end }}
{{- end }}
{{- end -}}

{{- define "snapmesh.env.auth" -}}
{{ include "snapmesh.env.doors" . }}
- name: AUTH_SIGNING_KEYS_FILE
  value: /var/run/snapmesh/auth-keys/keys.json
- name: AUTH_TOKEN_TTL_SECONDS
  value: {{ .Values.auth.tokenTtlSeconds | quote }}
- name: PERMISSION_CACHE_TTL_SECONDS
  value: {{ .Values.auth.permissionCacheTtlSeconds | quote }}
{{- include "snapmesh.env.wechat" . }}
{{- with .Values.auth.oidc }}
{{- if .issuer }}
- name: OIDC_ISSUER
  value: {{ .issuer | quote }}
- name: OIDC_AUDIENCE
  value: {{ .audience | quote }}
{{- if .jwksUrl }}
- name: OIDC_JWKS_URL
  value: {{ .jwksUrl | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.auth.legacy }}
{{- if .permissionUrl }}
- name: LEGACY_PERMISSION_URL
  value: {{ .permissionUrl | quote }}
- name: LEGACY_FAIL_OPEN
  value: {{ ternary "1" "0" .failOpen | quote }}
- name: LEGACY_TIMEOUT_MS
  value: {{ .timeoutMs | quote }}
{{- if .authHeaderSecret }}
- name: LEGACY_AUTH_HEADER
  valueFrom: { secretKeyRef: { name: {{ .authHeaderSecret }}, key: header } }
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "snapmesh.env.social" -}}
{{ include "snapmesh.env.doors" . }}
- name: SOCIAL_PERMISSION_CHECK
  value: {{ ternary "1" "0" .Values.social.permissionCheck | quote }}
{{- end -}}

{{- define "snapmesh.env.shareCode" -}}
{{ include "snapmesh.env.doors" . }}
- name: SHARECODE_CONTENT_TEMPLATE
  value: {{ .Values.shareCode.contentTemplate | quote }}
{{- include "snapmesh.env.wechat" . }}
{{- end -}}

{{- define "snapmesh.env.storage" -}}
{{ include "snapmesh.env.doors" . }}
- name: STORAGE_BACKEND
  value: {{ .Values.storage.backend | quote }}
- name: STORAGE_SIGNING_KEYS
  valueFrom: { secretKeyRef: { name: {{ .Values.storage.signingKeysSecret }}, key: keys } }
- name: STORAGE_MAX_OBJECT_BYTES
  value: {{ .Values.storage.maxObjectBytes | int64 | quote }}
- name: STORAGE_USER_QUOTA_BYTES
  value: {{ .Values.storage.userQuotaBytes | int64 | quote }}
{{- if .Values.storage.publicUrl }}
- name: STORAGE_PUBLIC_URL
  value: {{ .Values.storage.publicUrl | quote }}
{{- end }}
{{- if eq .Values.storage.backend "s3" }}
- name: STORAGE_S3_BUCKET
  value: {{ .Values.storage.s3.bucket | quote }}
- name: STORAGE_S3_REGION
  value: {{ .Values.storage.s3.region | quote }}
- name: STORAGE_S3_FORCE_PATH_STYLE
  value: {{ ternary "1" "0" .Values.storage.s3.forcePathStyle | quote }}
{{- if .Values.storage.s3.endpoint }}
- name: STORAGE_S3_ENDPOINT
  value: {{ .Values.storage.s3.endpoint | quote }}
{{- end }}
{{- if .Values.storage.s3.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: { secretKeyRef: { name: {{ .Values.storage.s3.credentialsSecret }}, key: AWS_ACCESS_KEY_ID } }
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: { secretKeyRef: { name: {{ .Values.storage.s3.credentialsSecret }}, key: AWS_SECRET_ACCESS_KEY } }
{{- end }}
{{- else if eq .Values.storage.backend "nats" }}
- name: STORAGE_NATS_BUCKET
  value: {{ .Values.storage.natsBucket | quote }}
{{- end }}
{{- end -}}
