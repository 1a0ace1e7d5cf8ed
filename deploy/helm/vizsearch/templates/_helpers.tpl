{{/* Names, labels and the addresses services find each other by. */}}

{{/* Truncated to 50: components add up to 13 characters (-minio-notifications is the longest). */}}
{{- define "vizsearch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vizsearch.labels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "vizsearch.selector" -}}
app.kubernetes.io/name: {{ default .root.Chart.Name .root.Values.nameOverride }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference: global.imageRegistry in front when set, a digest pinning it when
     given: (dict "root" $ "image" .Values.image) */}}
{{- define "vizsearch.imageRef" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- printf "%s%s:%s" (ternary (printf "%s/" $registry) "" (ne $registry "")) .image.repository $tag -}}
{{- with .image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{- define "vizsearch.image" -}}
{{- include "vizsearch.imageRef" (dict "root" . "image" .Values.image) -}}
{{- end -}}

{{- define "vizsearch.tritonImage" -}}
{{- include "vizsearch.imageRef" (dict "root" . "image" .Values.tritonImage) -}}
{{- end -}}

{{/* Whether an autoscaler owns the component's replica count (then the Deployment leaves
     it alone: every upgrade would reset what the autoscaler chose). */}}
{{- define "vizsearch.autoscaled" -}}
{{- $v := index .root.Values .component -}}
{{- if or (and (hasKey $v "autoscaling") (hasKey $v.autoscaling "enabled") $v.autoscaling.enabled) (and (eq .component "worker") .root.Values.keda.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/* The pod settings every workload shares: its ServiceAccount (no token mounted: no
     component calls the Kubernetes API), pull secrets, security context, placement. */}}
{{- define "vizsearch.podCommon" -}}
serviceAccountName: {{ include "vizsearch.fullname" .root }}-{{ .component }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
securityContext: {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* host:port of a component's Service (headless for gRPC backends: clients balance over every pod) */}}
{{- define "vizsearch.address" -}}
{{- printf "%s-%s:%v" (include "vizsearch.fullname" .root) .component .port -}}
{{- end -}}

{{/* A dependency chart's full name, by that chart's own rule (fullnameOverride; else the
     release name when it contains the chart's name; else release-chart):
     (dict "root" $ "chart" "milvus" "values" .Values.milvus) */}}
{{- define "vizsearch.subchartFullname" -}}
{{- if .values.fullnameOverride -}}
{{- .values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .chart .values.nameOverride -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vizsearch.milvusUri" -}}
{{- if .Values.milvus.enabled -}}
{{- printf "http://%s:19530" (include "vizsearch.subchartFullname" (dict "root" . "chart" "milvus" "values" .Values.milvus)) -}}
{{- else -}}
{{- required "milvus.external.uri is required when milvus.enabled is false" .Values.milvus.external.uri -}}
{{- end -}}
{{- end -}}

{{- define "vizsearch.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "%s:9000" (include "vizsearch.subchartFullname" (dict "root" . "chart" "minio" "values" .Values.minio)) -}}
{{- else -}}
{{- required "minio.external.endpoint is required when minio.enabled is false" .Values.minio.external.endpoint -}}
{{- end -}}
{{- end -}}

{{/* Redis's URL; the chart's own Redis is reached with the password from its Secret,
     which the container's environment supplies as $(VIZSEARCH_REDIS_PASSWORD). */}}
{{- define "vizsearch.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://:$(VIZSEARCH_REDIS_PASSWORD)@%s-redis:%v/0" (include "vizsearch.fullname" .) .Values.redis.port -}}
{{- else -}}
{{- required "redis.external.url is required when redis.enabled is false" .Values.redis.external.url -}}
{{- end -}}
{{- end -}}

{{- define "vizsearch.secretName" -}}
{{- $secret := index .root.Values.secrets .name -}}
{{- $own := printf "%s-%s" (include "vizsearch.fullname" .root) (kebabcase .name) -}}
{{- default (default $own $secret.name) $secret.existingSecret -}}
{{- end -}}

{{/* Environment every Python service shares: the storage, Redis and Milvus secrets (the
     ConfigMap holds the rest). */}}
{{- define "vizsearch.commonEnv" -}}
- name: VIZSEARCH_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "vizsearch.secretName" (dict "root" . "name" "storage") }}, key: rootUser}
- name: VIZSEARCH_S3_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "vizsearch.secretName" (dict "root" . "name" "storage") }}, key: rootPassword}
{{- if .Values.redis.enabled }}
- name: VIZSEARCH_REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "vizsearch.secretName" (dict "root" . "name" "redis") }}, key: redis-password}
{{- end }}
- name: VIZSEARCH_REDIS_URL
  value: {{ include "vizsearch.redisUrl" . | quote }}
{{- if .Values.security.internalToken.enabled }}
- name: VIZSEARCH_INTERNAL_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ include "vizsearch.secretName" (dict "root" . "name" "internal") }}, key: token}
{{- end }}
{{- if or .Values.secrets.milvus.existingSecret .Values.secrets.milvus.token }}
- name: VIZSEARCH_MILVUS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ include "vizsearch.secretName" (dict "root" . "name" "milvus") }}, key: token}
{{- end }}
{{- end -}}

{{/*
A Deployment of one Python service.
(dict "root" $ "component" "query" "values" .Values.query "command" (list ...) "ports" (list (dict "name" "grpc" "port" 50053)) "env" (dict ...) "probe" (dict ...) "volumes" ... )
*/}}
{{- define "vizsearch.deployment" -}}
{{- $root := .root -}}
{{- $probes := dict "readiness" (mergeOverwrite (deepCopy .probe.readiness) (default (dict) .values.probes.readiness))
                    "liveness" (mergeOverwrite (deepCopy .probe.liveness) (default (dict) .values.probes.liveness)) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "vizsearch.fullname" $root }}-{{ .component }}
  labels:
    {{- include "vizsearch.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (include "vizsearch.autoscaled" (dict "root" $root "component" .component)) }}
  replicas: {{ .values.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "vizsearch.selector" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "vizsearch.selector" (dict "root" $root "component" .component) | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ .values.metricsPort | quote }}
        {{- with .annotations }}{{ toYaml . | nindent 8 }}{{- end }}
        {{- with .values.podAnnotations }}{{ toYaml . | nindent 8 }}{{- end }}
    spec:
      {{- include "vizsearch.podCommon" (dict "root" $root "component" .component "values" .values) | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "vizsearch.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: {{- toYaml .command | nindent 12 }}
          securityContext: {{- toYaml $root.Values.securityContext | nindent 12 }}
          ports:
            {{- range .ports }}
            - {name: {{ .name }}, containerPort: {{ .port }}}
            {{- end }}
          envFrom:
            - configMapRef: {name: {{ include "vizsearch.fullname" $root }}-config}
          env:
            {{- include "vizsearch.commonEnv" $root | nindent 12 }}
            {{- range $name, $value := .env }}
            - {name: {{ $name }}, value: {{ $value | quote }}}
            {{- end }}
            {{- with .secretEnv }}{{ toYaml . | nindent 12 }}{{- end }}
            {{- with .values.extraEnv }}{{ toYaml . | nindent 12 }}{{- end }}
          readinessProbe: {{- toYaml $probes.readiness | nindent 12 }}
          livenessProbe: {{- toYaml $probes.liveness | nindent 12 }}
          resources: {{- toYaml .values.resources | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
            {{- with .mounts }}{{ toYaml . | nindent 12 }}{{- end }}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- with .volumes }}{{ toYaml . | nindent 8 }}{{- end }}
{{- end -}}

{{/* A Service; headless (every pod's address) for gRPC backends. */}}
{{- define "vizsearch.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "vizsearch.fullname" .root }}-{{ .component }}
  labels:
    {{- include "vizsearch.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if .headless }}
  clusterIP: None
  {{- else }}
  type: {{ .type | default "ClusterIP" }}
  {{- end }}
  selector:
    {{- include "vizsearch.selector" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    {{- range .ports }}
    - {name: {{ .name }}, port: {{ .port }}, targetPort: {{ .name }}{{ if hasPrefix "grpc" .name }}, appProtocol: grpc{{ end }}}
    {{- end }}
{{- end -}}

{{/* Ready when gRPC health says SERVING (backends reached); alive while the port answers,
     so a service waiting for a slow backend is not restarted. */}}
{{- define "vizsearch.grpcProbes" -}}
readiness: {grpc: {port: {{ . }}}, periodSeconds: 5, failureThreshold: 3}
liveness: {tcpSocket: {port: {{ . }}}, periodSeconds: 10, failureThreshold: 6, initialDelaySeconds: 10}
{{- end -}}
