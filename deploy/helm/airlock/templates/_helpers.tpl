{{- define "airlock.fullname" -}}{{ .Release.Name }}-airlock{{- end -}}
{{- define "airlock.labels" -}}
app.kubernetes.io/name: airlock
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
