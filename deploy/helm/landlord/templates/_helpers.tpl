{{- define "landlord.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "landlord.labels" -}}
app.kubernetes.io/name: landlord
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Settings and secrets-as-files shared by every landlord container. */}}
{{- define "landlord.env" -}}
- name: LANDLORD_STEP_TIMEOUT_SECS
  value: {{ .Values.stepTimeoutSecs | quote }}
{{- range $name, $value := .Values.env }}
{{- if $value }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- range $name, $key := .Values.secretFiles }}
- name: {{ $name }}_FILE
  value: /run/secrets/landlord/{{ $key }}
{{- end }}
{{- end -}}

{{/* The Secret as files; /tmp writable under a read-only root. */}}
{{- define "landlord.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ .Values.existingSecret }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "landlord.secretMount" -}}
- name: secrets
  mountPath: /run/secrets/landlord
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "landlord.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
