"""Exporters: where the KPIs go beyond the agent (InfluxDB, Prometheus)."""
