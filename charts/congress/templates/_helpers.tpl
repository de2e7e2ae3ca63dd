{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "congress.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: RELEASE-congress, or RELEASE when it already contains the chart name.
*/}}
{{- define "congress.fullname" -}}
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

{{/*
Chart label value: NAME-VERSION.
*/}}
{{- define "congress.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "congress.labels" -}}
helm.sh/chart: {{ include "congress.chart" . }}
{{ include "congress.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: congress
{{- end }}

{{/*
Selector labels (stable across upgrades: never add to them).
*/}}
{{- define "congress.selectorLabels" -}}
app.kubernetes.io/name: {{ include "congress.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Name of the ServiceAccount the operator runs as.
*/}}
{{- define "congress.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "congress.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image, REPOSITORY:TAG (the tag defaults to the chart's appVersion).
*/}}
{{- define "congress.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
apiVersion of PodDisruptionBudget: policy/v1 from Kubernetes 1.21, policy/v1beta1 before.
*/}}
{{- define "congress.pdbApiVersion" -}}
{{- if and (.Capabilities.APIVersions.Has "policy/v1") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end }}
{{- end }}

{{/*
Whether to render the wgpolicyk8s.io CRD named by .name ("true" or ""), per
.Values.policyReportCRDs.install: "true" always, "false" never, "auto" unless the CRD already
exists and is not owned by this release. Called with (dict "root" $ "name" CRDNAME).
*/}}
{{- define "congress.renderPolicyReportCRD" -}}
{{- $root := .root }}
{{- $mode := toString $root.Values.policyReportCRDs.install }}
{{- if eq $mode "true" }}
{{- print "true" }}
{{- else if eq $mode "auto" }}
{{- $existing := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" .name }}
{{- if not $existing }}
{{- print "true" }}
{{- else }}
{{- $annotations := $existing.metadata.annotations | default dict }}
{{- if and (eq (get $annotations "meta.helm.sh/release-name") $root.Release.Name) (eq (get $annotations "meta.helm.sh/release-namespace") $root.Release.Namespace) }}
{{- print "true" }}
{{- end }}
{{- end }}
{{- else if ne $mode "false" }}
{{- fail (printf "policyReportCRDs.install must be auto, true or false (got %q)" $mode) }}
{{- end }}
{{- end }}
