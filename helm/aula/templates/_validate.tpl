{{/* Checks across values that the JSON schema cannot express. Fails the render with a reason. */}}
{{- define "aula.validate" -}}
{{- $db := include "aula.hasDatabase" . -}}
{{- range $name, $svc := (include "aula.services" . | fromJson) -}}
{{- $v := index $.Values.services $name -}}
{{- if and $v.enabled $svc.stateful (not $db) (or (gt (int $v.replicas) 1) $.Values.autoscaling.enabled) -}}
{{- fail (printf "services.%s: more than one replica (replicas or autoscaling) needs a shared database: a service on SQLite has one file, written by one pod (on a PersistentVolumeClaim by default). Set postgresql.enabled=true or database.url / database.existingSecret" $name) -}}
{{- end -}}
{{- end -}}
{{- if lt (int .Values.shutdown.preStopSleepSeconds) (int .Values.shutdown.dnsRefreshSeconds) -}}
{{- fail "shutdown.preStopSleepSeconds must be at least shutdown.dnsRefreshSeconds, so callers re-resolve before the pod stops" -}}
{{- end -}}
{{- if gt (int .Values.shutdown.dnsRefreshSeconds) 30 -}}
{{- fail "shutdown.dnsRefreshSeconds is at most 30 (AULA_DNS_REFRESH)" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.gemini.apiKey .Values.gemini.existingSecret -}}
{{- fail "set gemini.apiKey or gemini.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.database.url .Values.database.existingSecret -}}
{{- fail "set database.url or database.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.postgresql.enabled (or .Values.database.url .Values.database.existingSecret) -}}
{{- fail "postgresql.enabled bundles a database: leave database.url and database.existingSecret empty" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.services.gateway.enabled) -}}
{{- fail "ingress.enabled routes to the gateway: enable services.gateway" -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- if not (and .Values.auth.issuer .Values.auth.audience) -}}
{{- fail "auth.enabled: set auth.issuer and auth.audience (the iss and aud every token must carry)" -}}
{{- end -}}
{{- if eq (empty .Values.auth.jwksUrl) (empty .Values.auth.jwks) -}}
{{- fail "auth.enabled: set exactly one of auth.jwksUrl (the provider's https jwks_uri) and auth.jwks (the key set's JSON)" -}}
{{- end -}}
{{- if and .Values.auth.jwksCa (not .Values.auth.jwksUrl) -}}
{{- fail "auth.jwksCa is the CA of the https server behind auth.jwksUrl: set auth.jwksUrl, or leave auth.jwksCa empty with an inline auth.jwks" -}}
{{- end -}}
{{- if not (or (and .Values.tls.enabled (eq .Values.tls.clientAuth "require")) .Values.auth.trustNetwork) -}}
{{- fail "auth.enabled: services cannot prove who they are to each other; enable tls (clientAuth require), or set auth.trustNetwork=true to accept calls without a token from inside the cluster" -}}
{{- end -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- range $name, $svc := (include "aula.services" . | fromJson) -}}
{{- if and $.Values.tls.existingSecrets ($.Values.services | dig $name "enabled" false) (not (hasKey $.Values.tls.existingSecrets $name)) -}}
{{- fail (printf "tls.existingSecrets names no Secret for %s: name one for every enabled service (certificates from one CA), or none" $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.existingSecrets .Values.tls.certManager.issuerRef.name -}}
{{- fail "set tls.certManager.issuerRef or tls.existingSecrets, not both" -}}
{{- end -}}
{{- end -}}
{{- end }}
