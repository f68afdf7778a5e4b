"""OTLP/HTTP metrics for an OpenTelemetry Collector: the settings
(`otlp:` and OTEL_* variables), the engine's families as the SDK's
MetricsData, and the exporter that sends them each interval."""
