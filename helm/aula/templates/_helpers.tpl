{{/*
The service catalog: the one place the chart knows each service's ports, gRPC name and peers.
A copy of services/catalogue.toml (Helm reads no TOML): tests/k8s/test_catalogue.py fails, printing
this block as it should read, when the two differ.
calls: the peers a service calls; its callers are derived from them (aula.callers).
*/}}
{{- define "aula.catalog" -}}
cursos:
  port: 50051
  metricsPort: 9051
  grpcService: services.CursosService
  calls: [midia, chatbot, notificacoes]
  stateful: true
  http: false
chatbot:
  port: 50052
  metricsPort: 9052
  grpcService: services.ChatbotService
  calls: [insights]
  stateful: false
  http: false
cpar:
  port: 50053
  metricsPort: 9053
  grpcService: services.CPARService
  calls: [notificacoes]
  stateful: true
  http: false
notificacoes:
  port: 50054
  metricsPort: 9054
  grpcService: services.NotificacoesService
  calls: []
  stateful: true
  http: false
insights:
  port: 50055
  metricsPort: 9055
  grpcService: services.InsightsService
  calls: []
  stateful: true
  http: false
midia:
  port: 50056
  metricsPort: 9056
  grpcService: services.MidiaConteudoService
  calls: []
  stateful: true
  http: false
gateway:
  port: 8080
  metricsPort: 9080
  http: true
  calls: [cursos, chatbot, cpar, notificacoes, insights, midia]
  stateful: false
{{- end }}

{{/* The catalog as a dict. */}}
{{- define "aula.services" -}}
{{- include "aula.catalog" . | fromYaml | toJson -}}
{{- end }}

{{/* Names of the services that call $name: (dict "root" $ "name" $name) -> JSON list. */}}
{{- define "aula.callers" -}}
{{- $callers := list -}}
{{- range $caller, $c := (include "aula.services" .root | fromJson) -}}
{{- if has $.name $c.calls }}{{ $callers = append $callers $caller }}{{ end -}}
{{- end -}}
{{- toJson $callers -}}
{{- end }}

{{/* Object names: <release>-<name>. Checked so "<release>-notificacoes-headless" fits 63 chars. */}}
{{- define "aula.fullname" -}}
{{- if gt (len .root.Release.Name) 41 -}}
{{- fail (printf "release name %q is longer than 41 characters: <release>-notificacoes-headless must fit a 63-character DNS label" .root.Release.Name) -}}
{{- end -}}
{{- printf "%s-%s" .root.Release.Name .name -}}
{{- end }}

{{- define "aula.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Labels of every object of service .name. */}}
{{- define "aula.labels" -}}
helm.sh/chart: {{ include "aula.chart" .root }}
{{ include "aula.selectorLabels" . }}
app.kubernetes.io/version: {{ include "aula.tag" .root | quote }}
app.kubernetes.io/component: {{ .component | default "server" }}
app.kubernetes.io/part-of: aula
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "aula.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "aula.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end }}

{{/* <registry>/aula/<name>:<tag> */}}
{{- define "aula.image" -}}
{{- printf "%s/aula/%s:%s" (trimSuffix "/" .root.Values.image.registry) .name (include "aula.tag" .root) -}}
{{- end }}

{{/* Whether the services have a shared database: "true" or "". */}}
{{- define "aula.hasDatabase" -}}
{{- if or .Values.postgresql.enabled .Values.database.url .Values.database.existingSecret }}true{{ end -}}
{{- end }}

{{/* The Secret and key holding DATABASE_URL. */}}
{{- define "aula.databaseSecretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "aula.fullname" (dict "root" . "name" "postgresql") -}}
{{- else if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else -}}
{{- include "aula.fullname" (dict "root" . "name" "database") -}}
{{- end -}}
{{- end }}

{{- define "aula.databaseSecretKey" -}}
{{- if or .Values.postgresql.enabled (not .Values.database.existingSecret) }}url{{ else }}{{ .Values.database.existingSecretKey }}{{ end -}}
{{- end }}

{{/* Whether the chatbot gets a Gemini key: "true" or "". */}}
{{- define "aula.hasGemini" -}}
{{- if or .Values.gemini.apiKey .Values.gemini.existingSecret }}true{{ end -}}
{{- end }}

{{- define "aula.geminiSecretName" -}}
{{- .Values.gemini.existingSecret | default (include "aula.fullname" (dict "root" . "name" "gemini")) -}}
{{- end }}

{{- define "aula.geminiSecretKey" -}}
{{- if .Values.gemini.existingSecret }}{{ .Values.gemini.existingSecretKey }}{{ else }}api-key{{ end -}}
{{- end }}

{{/* The OTLP endpoint's port (4317 unless the URL names one). */}}
{{- define "aula.otelPort" -}}
{{- $u := urlParse .Values.otel.endpoint -}}
{{- $parts := splitList ":" $u.host -}}
{{- if gt (len $parts) 1 }}{{ last $parts }}{{ else if eq $u.scheme "https" }}443{{ else }}4317{{ end -}}
{{- end }}

{{/*
The restricted Pod Security profile, shared by the services, the test pods and PostgreSQL.
*/}}
{{- define "aula.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
fsGroup: {{ .uid | default 65532 }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "aula.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 65532 }}
runAsGroup: {{ .uid | default 65532 }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The Secret holding a service's certificate (tls.crt, tls.key, ca.crt): (dict "root" $ "name" $name). */}}
{{- define "aula.tlsSecretName" -}}
{{- $existing := .root.Values.tls.existingSecrets | default dict -}}
{{- if hasKey $existing .name -}}
{{- index $existing .name -}}
{{- else -}}
{{- include "aula.fullname" . -}}-tls
{{- end -}}
{{- end }}

{{/* A service's certificate's DNS SANs, JSON: its name first (the identity, docs/CONFIG.md), then
the names it is dialed by (peers: <fullname>-headless; helm test: <fullname>) and localhost. */}}
{{- define "aula.tlsDnsNames" -}}
{{- $full := include "aula.fullname" . -}}
{{- $ns := .root.Release.Namespace -}}
{{- toJson (list .name $full (printf "%s.%s.svc" $full $ns) (printf "%s-headless" $full) (printf "%s-headless.%s" $full $ns) (printf "%s-headless.%s.svc" $full $ns) (printf "%s-headless.%s.svc.cluster.local" $full $ns) "localhost") -}}
{{- end }}

{{/* Where a pod finds its certificate. */}}
{{- define "aula.tlsDir" -}}/var/run/secrets/aula/tls{{- end }}

{{/* AULA_TLS_TRUST_DOMAIN of every pod: tls.trustDomain when cert-manager issues the certificates,
since the chart then writes that domain into their SPIFFE URI SANs itself and the runtime's check
(a peer's SPIFFE ID outside it names nobody; our own outside it stops the start) matches what is
issued by construction. Empty otherwise: the generated certificates carry no SPIFFE URI (the
identity is their first DNS name), and existing Secrets are the owner's to describe
(services.<name>.env.AULA_TLS_TRUST_DOMAIN). */}}
{{- define "aula.tlsTrustDomain" -}}
{{- if and .Values.tls.enabled .Values.tls.certManager.issuerRef.name -}}{{ .Values.tls.trustDomain }}{{- end -}}
{{- end }}

{{/* Where the CA of an https auth.jwksUrl is mounted (AULA_JWT_JWKS_CA): a ConfigMap volume of its own. */}}
{{- define "aula.jwksCaDir" -}}/etc/aula/auth-ca{{- end }}

{{/* The fault flags ConfigMap (docs/FLAGS.md), mounted as a directory (not subPath, so an edit of
the ConfigMap reaches running pods). */}}
{{- define "aula.flagsName" -}}
{{- include "aula.fullname" (dict "root" . "name" "flags") -}}
{{- end }}
{{- define "aula.flagsDir" -}}/etc/aula/flags{{- end }}

{{/* The PersistentVolumeClaim holding a stateful service's SQLite file (persistence.enabled). */}}
{{- define "aula.dataClaimName" -}}
{{- printf "%s-data" (include "aula.fullname" .) -}}
{{- end }}
